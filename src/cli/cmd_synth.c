/* anomalyctl synth: writes examples of the synthetic defects the learned
 * head is trained on, so a person can see what it learns from. Each example
 * is one PNG: the good crop, the same crop with the defect, and the mask. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/dataset.h"
#include "anomalyd/image.h"
#include "anomalyd/synth.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"

static const char *shape_names[] = {"blob", "scratch", "crack"};
static const char *fill_names[] = {"other-image", "shift", "contrast", "blur", "texture"};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyctl synth --config FILE --images DIR --out DIR [--count N] [--seed S]\n"
            "\n"
            "Writes N example sheets (good | with synthetic defect | mask) of the synthetic\n"
            "defects the learned head trains on, from the good images in DIR, at the\n"
            "model's input size, plus index.csv naming each example's shape and fill.\n"
            "  --count N   examples to write (default 16)\n"
            "  --seed S    random seed (default: train.seed from the config)\n"
            "exit codes: 0 ok, 1 runtime failure, 2 usage or config error\n");
}

static void put_plane(ad_image *sheet, int col, const float *src, int c, int w, int h, int as_mask)
{
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < sheet->c; ch++) {
                float v = as_mask ? src[(size_t)y * w + x] * 2.0f - 1.0f
                                  : src[(c == 1 ? 0 : ch) * plane + (size_t)y * w + x];
                float u = (v + 1.0f) * 127.5f;
                uint8_t b = (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u + 0.5f);
                sheet->px[((size_t)y * sheet->w + col * (w + 2) + x) * sheet->c + ch] = b;
            }
}

/* What the command line asks for. */
typedef struct synth_args {
    const char *config, *images, *out_dir;
    long count;
    long long seed;              /* -1 = train.seed */
} synth_args;

static int parse_args(synth_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"images", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},    {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const ad_cli cli = {"synth", usage};
    memset(a, 0, sizeof *a);
    a->count = 16;
    a->seed = -1;
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "c:i:o:n:s:h", longopts)) != -1) {
        long v;
        switch (opt) {
        case 'c': a->config = optarg; break;
        case 'i': a->images = optarg; break;
        case 'o': a->out_dir = optarg; break;
        case 'n':
            if (ad_parse_long(optarg, 1, 100000, &a->count) < 0)
                return ad_cli_usage_error(&cli, "--count must be 1..100000, got '%s'", optarg);
            break;
        case 's':
            if (ad_parse_long(optarg, 0, LONG_MAX, &v) < 0)
                return ad_cli_usage_error(&cli, "--seed must be a non-negative integer, got '%s'",
                                          optarg);
            a->seed = v;
            break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!a->config || !a->images || !a->out_dir)
        return ad_cli_usage_error(&cli, "--config, --images and --out are required");
    return AD_CLI_RUN;
}

/* Writes the a->count example sheets and index.csv from the good images in
 * ds: the exit code (1 with the reason printed when a file cannot be
 * written). */
static int write_examples(const synth_args *a, const ad_config *cfg, const ad_dataset *ds)
{
    int C = (int)cfg->model.color, W = cfg->model.input_width, H = cfg->model.input_height;
    char err[AD_ERRLEN];
    size_t per = (size_t)C * W * H, plane = (size_t)W * H;
    float *clean = ad_xcalloc(per, sizeof(float)), *other = ad_xcalloc(per, sizeof(float));
    float *out = ad_xcalloc(per, sizeof(float)), *mask = ad_xcalloc(plane, sizeof(float));
    float *scratch = ad_xcalloc(ad_synth_scratch_floats(C, H, W), sizeof(float));
    ad_image sheet = {0, 0, 0, NULL};
    ad_image_alloc(&sheet, 3 * W + 4, H, C);
    ad_synth_opts so;
    ad_synth_default_opts(&so);
    ad_rng rng;
    ad_rng_seed(&rng, a->seed >= 0 ? (uint64_t)a->seed : cfg->train.seed);
    char path[AD_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/index.csv", a->out_dir);
    FILE *index = fopen(path, "w");
    int rc = AD_EXIT_OK;
    if (!index) {
        fprintf(stderr, "anomalyctl synth: %s: cannot write\n", path);
        rc = AD_EXIT_FAILURE;
    }
    if (index) fprintf(index, "file,shape,fill,opacity,area\n");
    for (long i = 0; rc == 0 && i < a->count; i++) {
        int x = (int)ad_rng_below(&rng, (uint32_t)ds->n), y = (int)ad_rng_below(&rng, (uint32_t)ds->n);
        for (size_t k = 0; k < per; k++) {
            clean[k] = ds->lut[ds->px[(size_t)x * per + k]];
            other[k] = ds->lut[ds->px[(size_t)y * per + k]];
        }
        ad_synth_info info;
        ad_synth_sample(out, mask, clean, ds->n > 1 ? other : NULL, C, H, W, &so, &rng, scratch, &info);
        memset(sheet.px, 255, (size_t)sheet.w * sheet.h * sheet.c);
        put_plane(&sheet, 0, clean, C, W, H, 0);
        put_plane(&sheet, 1, out, C, W, H, 0);
        put_plane(&sheet, 2, mask, 1, W, H, 1);
        snprintf(path, sizeof path, "%s/synth_%04ld.png", a->out_dir, i);
        if (ad_png_write(path, &sheet, err, sizeof err)) {
            fprintf(stderr, "anomalyctl synth: %s\n", err);
            rc = AD_EXIT_FAILURE;
            break;
        }
        fprintf(index, "synth_%04ld.png,%s,%s,%.2f,%ld\n", i, info.shape < 0 ? "clean" : shape_names[info.shape],
                info.fill < 0 ? "none" : fill_names[info.fill], info.opacity, info.area);
    }
    if (index && fclose(index) != 0 && rc == 0) {
        fprintf(stderr, "anomalyctl synth: %s/index.csv: write failed\n", a->out_dir);
        rc = AD_EXIT_FAILURE;
    }
    ad_image_free(&sheet);
    free(clean);
    free(other);
    free(out);
    free(mask);
    free(scratch);
    return rc;
}

/* The config, the good images and the output folder, then the examples:
 * the exit code (2 for the config, 1 otherwise). */
static int run(const synth_args *a)
{
    char err[AD_ERRLEN];
    ad_config cfg;
    if (ad_config_load(a->config, &cfg, err, sizeof err)) {
        fprintf(stderr, "anomalyctl synth: %s\n", err);
        return AD_EXIT_USAGE;
    }
    int C = (int)cfg.model.color, W = cfg.model.input_width, H = cfg.model.input_height;
    ad_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (ad_dataset_load(&ds, a->images, C, W, H, 8, err, sizeof err)) {
        fprintf(stderr, "anomalyctl synth: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    int rc;
    if (ad_mkdirs(a->out_dir, 0755, err, sizeof err)) {
        fprintf(stderr, "anomalyctl synth: %s\n", err);
        rc = AD_EXIT_FAILURE;
    } else {
        rc = write_examples(a, &cfg, &ds);
    }
    ad_dataset_free(&ds);
    return rc;
}

static void report(const synth_args *a)
{
    printf("wrote %ld examples to %s (index.csv lists shape and fill)\n", a->count, a->out_dir);
}

int ad_cmd_synth(int argc, char **argv)
{
    synth_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    rc = run(&a);
    if (rc == AD_EXIT_OK) report(&a);
    return rc;
}

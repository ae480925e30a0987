/* anomalyctl synth: writes examples of the synthetic defects the learned
 * head is trained on, so a person can see what it learns from. Each example
 * is one PNG: the good crop, the same crop with the defect, and the mask.
 * With --dataset the same samples become a dataset in MVTec AD layout that
 * `anomalyctl eval` scores: a label-free check of detector settings. */
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
            "usage: anomalyctl synth --config FILE --images DIR --out OUT [--count N] [--seed S]\n"
            "                        [--dataset]\n"
            "\n"
            "Draws N samples of the synthetic defects the learned head trains on from the\n"
            "good images in DIR, at the model's input size, and writes each to OUT as an\n"
            "example sheet (good | with synthetic defect | mask), plus OUT/index.csv\n"
            "naming each sample's shape and fill (\"clean\": about 30%% are drawn without\n"
            "a defect). With train.head_detail: true they are the fine defects that head\n"
            "trains on (lines down to a third of a pixel, straight cracks, defects at the\n"
            "edges), drawn here at the input size and in training at twice that size.\n"
            "  --count N   samples to write (default 16)\n"
            "  --seed S    random seed (default: train.seed from the config)\n"
            "  --dataset   write the samples as a dataset in MVTec AD layout instead of\n"
            "              sheets: OUT/test/good/synth_NNNN.png (every sample's good\n"
            "              image), OUT/test/synthetic/synth_NNNN.png and its mask\n"
            "              OUT/ground_truth/synthetic/synth_NNNN_mask.png (the samples\n"
            "              with a defect; the same pixels as the sheets of the same\n"
            "              seed); index.csv names each sample synth_NNNN. For estimating,\n"
            "              without any real defect, how detector settings such as\n"
            "              detector.sigma or detector.mirror score synthetic defects on\n"
            "              good images the head was trained on:\n"
            "                anomalyctl eval --config FILE --dataset OUT\n"
            "              Optimistic, because the head learned these defect kinds.\n"
            "              Needs a config without camera.roi (eval reads masks in\n"
            "              camera-frame pixels when one is set).\n"
            "exit codes: 0 ok, 1 runtime failure, 2 usage or config error\n");
}

/* Plane src (c = 1 or dst->c channels, planar floats in [-1, 1]; a mask in
 * {0, 1} when as_mask) into dst's 8-bit pixels from column x0 on. The one
 * conversion of both modes, so a dataset's images are the sheets' panels. */
static void put_plane(ad_image *dst, int x0, const float *src, int c, int w, int h, int as_mask)
{
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < dst->c; ch++) {
                float v = as_mask ? src[(size_t)y * w + x] * 2.0f - 1.0f
                                  : src[(c == 1 ? 0 : ch) * plane + (size_t)y * w + x];
                float u = (v + 1.0f) * 127.5f;
                uint8_t b = (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u + 0.5f);
                dst->px[((size_t)y * dst->w + x0 + x) * dst->c + ch] = b;
            }
}

/* What the command line asks for. */
typedef struct synth_args {
    const char *config, *images, *out_dir;
    long count;
    long long seed;              /* -1 = train.seed */
    int dataset;                 /* MVTec AD layout instead of sheets */
} synth_args;

static int parse_args(synth_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"images", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},    {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},   {"dataset", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    static const ad_cli cli = {"synth", usage};
    memset(a, 0, sizeof *a);
    a->count = 16;
    a->seed = -1;
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "c:i:o:n:s:dh", longopts)) != -1) {
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
        case 'd': a->dataset = 1; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!a->config || !a->images || !a->out_dir)
        return ad_cli_usage_error(&cli, "--config, --images and --out are required");
    return AD_CLI_RUN;
}

/* What the run wrote, for the report. */
typedef struct synth_result {
    long defects;                /* samples that got a defect */
} synth_result;

/* One sample's planes at the model input size and the draws that make
 * them: the seed alone decides every sample, whichever mode writes them. */
typedef struct synth_draw {
    int c, w, h;
    float *clean, *other, *out, *mask, *scratch;
    ad_synth_opts opts;
    ad_rng rng;
    ad_synth_info info;          /* of the last sample */
} synth_draw;

static void draw_init(synth_draw *d, const synth_args *a, const ad_config *cfg)
{
    d->c = (int)cfg->model.color;
    d->w = cfg->model.input_width;
    d->h = cfg->model.input_height;
    size_t per = (size_t)d->c * d->w * d->h, plane = (size_t)d->w * d->h;
    d->clean = ad_xcalloc(per, sizeof(float));
    d->other = ad_xcalloc(per, sizeof(float));
    d->out = ad_xcalloc(per, sizeof(float));
    d->mask = ad_xcalloc(plane, sizeof(float));
    d->scratch = ad_xcalloc(ad_synth_scratch_floats(d->c, d->h, d->w), sizeof(float));
    ad_synth_default_opts(&d->opts);
    d->opts.fine = cfg->train.head_detail;   /* what the head trains on */
    ad_rng_seed(&d->rng, a->seed >= 0 ? (uint64_t)a->seed : cfg->train.seed);
}

/* The next sample: a good image, another one for the fill, the defect. */
static void draw_next(synth_draw *d, const ad_dataset *ds)
{
    size_t per = (size_t)d->c * d->w * d->h;
    int x = (int)ad_rng_below(&d->rng, (uint32_t)ds->n);
    int y = (int)ad_rng_below(&d->rng, (uint32_t)ds->n);
    for (size_t k = 0; k < per; k++) {
        d->clean[k] = ds->lut[ds->px[(size_t)x * per + k]];
        d->other[k] = ds->lut[ds->px[(size_t)y * per + k]];
    }
    ad_synth_sample(d->out, d->mask, d->clean, ds->n > 1 ? d->other : NULL, d->c, d->h, d->w,
                    &d->opts, &d->rng, d->scratch, &d->info);
}

static void draw_free(synth_draw *d)
{
    free(d->clean);
    free(d->other);
    free(d->out);
    free(d->mask);
    free(d->scratch);
}

/* The folders of dataset mode under out_dir. */
static const char *const dataset_dirs[] = {"test/good", "test/synthetic", "ground_truth/synthetic"};

/* The output folder (with dataset mode's sub-folders); 0 or -1 with err. */
static int make_folders(const synth_args *a, char *err, size_t errlen)
{
    if (!a->dataset) return ad_mkdirs(a->out_dir, 0755, err, errlen);
    char path[AD_PATH_MAX + 64];
    for (size_t i = 0; i < sizeof dataset_dirs / sizeof dataset_dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", a->out_dir, dataset_dirs[i]);
        if (ad_mkdirs(path, 0755, err, errlen) < 0) return -1;
    }
    return 0;
}

/* Plane src, converted by put_plane into im, written to out_dir/rel. */
static int write_plane(const synth_args *a, const char *rel, ad_image *im, const float *src,
                       int c, int as_mask, char *err, size_t errlen)
{
    char path[AD_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", a->out_dir, rel);
    put_plane(im, 0, src, c, im->w, im->h, as_mask);
    return ad_png_write(path, im, err, errlen);
}

/* Sample i in dataset mode: its good image, and with a defect the
 * defective image and its mask. image is (w, h, c), mask (w, h, 1). */
static int write_dataset_sample(const synth_args *a, const synth_draw *d, long i, ad_image *image,
                                ad_image *mask, char *err, size_t errlen)
{
    char rel[128];
    snprintf(rel, sizeof rel, "test/good/synth_%04ld.png", i);
    if (write_plane(a, rel, image, d->clean, d->c, 0, err, errlen) < 0) return -1;
    if (d->info.shape < 0) return 0;
    snprintf(rel, sizeof rel, "test/synthetic/synth_%04ld.png", i);
    if (write_plane(a, rel, image, d->out, d->c, 0, err, errlen) < 0) return -1;
    snprintf(rel, sizeof rel, "ground_truth/synthetic/synth_%04ld_mask.png", i);
    return write_plane(a, rel, mask, d->mask, 1, 1, err, errlen);
}

/* Sample i as one example sheet: good | with the defect | mask. */
static int write_sheet(const synth_args *a, const synth_draw *d, long i, ad_image *sheet,
                       char *err, size_t errlen)
{
    int w = d->w, h = d->h;
    memset(sheet->px, 255, (size_t)sheet->w * sheet->h * sheet->c);
    put_plane(sheet, 0, d->clean, d->c, w, h, 0);
    put_plane(sheet, w + 2, d->out, d->c, w, h, 0);
    put_plane(sheet, 2 * (w + 2), d->mask, 1, w, h, 1);
    char path[AD_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/synth_%04ld.png", a->out_dir, i);
    return ad_png_write(path, sheet, err, errlen);
}

/* Writes the a->count samples (sheets or dataset) and index.csv from the
 * good images in ds: the exit code (1 with the reason printed when a file
 * cannot be written). */
static int write_samples(const synth_args *a, const ad_config *cfg, const ad_dataset *ds,
                         synth_result *res)
{
    char err[AD_ERRLEN];
    synth_draw d;
    draw_init(&d, a, cfg);
    ad_image sheet = {0, 0, 0, NULL}, image = {0, 0, 0, NULL}, mask = {0, 0, 0, NULL};
    if (a->dataset) {
        ad_image_alloc(&image, d.w, d.h, d.c);
        ad_image_alloc(&mask, d.w, d.h, 1);
    } else {
        ad_image_alloc(&sheet, 3 * d.w + 4, d.h, d.c);
    }
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
        draw_next(&d, ds);
        int written = a->dataset ? write_dataset_sample(a, &d, i, &image, &mask, err, sizeof err)
                                 : write_sheet(a, &d, i, &sheet, err, sizeof err);
        if (written < 0) {
            fprintf(stderr, "anomalyctl synth: %s\n", err);
            rc = AD_EXIT_FAILURE;
            break;
        }
        const ad_synth_info *info = &d.info;
        res->defects += info->shape >= 0;
        fprintf(index, "synth_%04ld%s,%s,%s,%.2f,%ld\n", i, a->dataset ? "" : ".png",
                info->shape < 0 ? "clean" : shape_names[info->shape],
                info->fill < 0 ? "none" : fill_names[info->fill], info->opacity, info->area);
    }
    if (index && fclose(index) != 0 && rc == 0) {
        fprintf(stderr, "anomalyctl synth: %s/index.csv: write failed\n", a->out_dir);
        rc = AD_EXIT_FAILURE;
    }
    ad_image_free(&sheet);
    ad_image_free(&image);
    ad_image_free(&mask);
    draw_free(&d);
    return rc;
}

/* The config, the good images and the output folders, then the samples:
 * the exit code (2 for the config, 1 otherwise). */
static int run(const synth_args *a, synth_result *res)
{
    char err[AD_ERRLEN];
    ad_config cfg;
    if (ad_config_load(a->config, &cfg, err, sizeof err)) {
        fprintf(stderr, "anomalyctl synth: %s\n", err);
        return AD_EXIT_USAGE;
    }
    /* with a ROI, eval reads masks in camera-frame pixels */
    if (a->dataset && cfg.camera.roi_width > 0 && cfg.camera.roi_height > 0 &&
        (cfg.camera.width != cfg.model.input_width || cfg.camera.height != cfg.model.input_height))
        fprintf(stderr, "anomalyctl synth: warning: %s sets camera.roi, so eval wants masks of "
                "the camera frame (%dx%d), not of the model input written here (%dx%d)\n",
                a->config, cfg.camera.width, cfg.camera.height, cfg.model.input_width,
                cfg.model.input_height);
    int C = (int)cfg.model.color, W = cfg.model.input_width, H = cfg.model.input_height;
    ad_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (ad_dataset_load(&ds, a->images, C, W, H, 8, err, sizeof err)) {
        fprintf(stderr, "anomalyctl synth: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    int rc;
    if (make_folders(a, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl synth: %s\n", err);
        rc = AD_EXIT_FAILURE;
    } else {
        rc = write_samples(a, &cfg, &ds, res);
    }
    ad_dataset_free(&ds);
    return rc;
}

static void report(const synth_args *a, const synth_result *res)
{
    if (!a->dataset) {
        printf("wrote %ld examples to %s (index.csv lists shape and fill)\n", a->count, a->out_dir);
        return;
    }
    printf("wrote %ld good and %ld synthetic images to %s in MVTec AD layout (index.csv lists "
           "shape and fill); score them with: anomalyctl eval --config %s --dataset %s\n",
           a->count, res->defects, a->out_dir, a->config, a->out_dir);
}

int ad_cmd_synth(int argc, char **argv)
{
    synth_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    synth_result res = {0};
    rc = run(&a, &res);
    if (rc == AD_EXIT_OK) report(&a, &res);
    return rc;
}

/* anomalyctl score: images in, score + verdict + defect box out, heat maps
 * on request. Goes through ad_detector_inspect like the daemon. Parse the
 * options, then run, which reports each image as soon as it is scored. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyctl score --config FILE [--heatmap DIR] IMAGE...\n"
            "\n"
            "Scores each PNG as the daemon scores a camera frame (camera.roi crop,\n"
            "resize to model.input_width x input_height) and prints one line per image:\n"
            "  PATH score=S threshold=T verdict=pass|reject box=X,Y,W,H area=A\n"
            "box: bounding box of the smoothed anomaly map over the pixel threshold, in\n"
            "ROI pixels (0,0,0,0 when no pixel is over it); area: those pixels.\n"
            "The image must have the model's channels (model.color); when camera.roi is\n"
            "set it must be a whole camera frame (camera.width x camera.height).\n"
            "\n"
            "  --config FILE   the line's YAML config (model, detector, threshold)\n"
            "  --heatmap DIR   also write DIR/NAME_heatmap.png, the map over the ROI\n"
            "                  (colour scale 0 .. 2 x pixel threshold)\n"
            "\n"
            "exit codes: 0 every image passed, 3 at least one image rejected,\n"
            "            1 runtime failure (model or an image unreadable or of the wrong\n"
            "              size/channels; the other images are still scored),\n"
            "            2 usage or config error\n");
}

static int write_heatmap(const ad_detector *d, const ad_image *roi, const char *dir,
                         const char *path, char *err, size_t errlen)
{
    char name[AD_PATH_MAX], out[AD_PATH_MAX * 2];
    snprintf(name, sizeof name, "%s", path);
    char *base = basename(name);
    size_t bl = strlen(base);
    if (bl > 4 && !strcasecmp(base + bl - 4, ".png")) base[bl - 4] = 0;
    snprintf(out, sizeof out, "%s/%s_heatmap.png", dir, base);
    ad_image hm = {0};
    if (ad_detector_heatmap(d, roi, &hm, err, errlen) < 0) return -1;
    int rc = ad_png_write(out, &hm, err, errlen);
    ad_image_free(&hm);
    return rc;
}

/* What the command line asks for. */
typedef struct score_args {
    const char *config_path, *heatmap_dir;
    char **images;               /* the IMAGE operands */
    int n_images;
} score_args;

static int parse_args(score_args *a, int argc, char **argv)
{
    static const ad_cli cli = {"score", usage};
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"heatmap", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'c': a->config_path = optarg; break;
        case 'm': a->heatmap_dir = optarg; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    a->images = argv + optind;
    a->n_images = argc - optind;
    if (!a->config_path) return ad_cli_usage_error(&cli, "--config FILE is required");
    if (a->n_images <= 0) return ad_cli_usage_error(&cli, "no IMAGE given");
    return AD_CLI_RUN;
}

/* What scoring the images came to. */
typedef struct score_result {
    int failed, rejected;        /* images (or heat maps) that failed; images rejected */
} score_result;

/* One image's line, printed as soon as it is scored. */
static void report_image(const char *path, const ad_result *r)
{
    printf("%s score=%.6f threshold=%.6f verdict=%s box=%d,%d,%d,%d area=%ld\n", path,
           r->score, r->threshold, r->reject ? "reject" : "pass", r->box_x, r->box_y, r->box_w,
           r->box_h, r->area);
    fflush(stdout);
}

/* Scores one image (and writes its heat map) into res; an image that
 * cannot be read or scored counts as failed, the others go on. */
static void score_image(const score_args *a, const ad_config *cfg, ad_detector *d,
                        const char *path, score_result *res)
{
    char err[AD_ERRLEN];
    ad_image roi = {0};
    ad_result r;
    if (ad_load_frame_file(cfg, path, &roi, err, sizeof err) < 0 ||
        ad_detector_inspect(d, &roi, &r, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl score: %s\n", err);
        res->failed++;
        ad_image_free(&roi);
        return;
    }
    report_image(path, &r);
    res->rejected += r.reject;
    if (a->heatmap_dir && write_heatmap(d, &roi, a->heatmap_dir, path, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl score: heat map of %s: %s\n", path, err);
        res->failed++;
    }
    ad_image_free(&roi);
}

/* The config, the heat-map folder and the detector, then each image: the
 * exit code (2 for the config, 1 when the detector does not open or an
 * image failed, 3 when one was rejected). */
static int run(const score_args *a)
{
    char err[AD_ERRLEN];
    ad_config cfg;
    if (ad_config_load(a->config_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl score: %s\n", err);
        return AD_EXIT_USAGE;
    }
    if (a->heatmap_dir && ad_mkdirs(a->heatmap_dir, 0755, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl score: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    ad_detector *d = NULL;
    if (ad_detector_open(&d, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl score: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    score_result res = {0, 0};
    for (int i = 0; i < a->n_images; i++) score_image(a, &cfg, d, a->images[i], &res);
    ad_detector_close(d);
    if (res.failed) return AD_EXIT_FAILURE;
    return res.rejected ? 3 : AD_EXIT_OK;
}

int ad_cmd_score(int argc, char **argv)
{
    score_args a;
    int rc = parse_args(&a, argc, argv);
    return rc != AD_CLI_RUN ? rc : run(&a);
}

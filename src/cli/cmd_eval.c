/* anomalyctl eval: a dataset in MVTec AD layout in; image AUROC, exact pixel
 * AUROC, per-defect-type image AUROC and inspections/s out. Every image goes
 * through ad_detector_inspect, the daemon's path. */
#include <dirent.h>
#include <stdbool.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomalyd/calib.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"

#define WORST_MISSES 5

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyctl eval --config FILE --dataset DIR [--csv FILE] [--heatmaps DIR]\n"
            "                       [--limit N] [--fit-stats DIR] [--tune KEY=VALUE]...\n"
            "\n"
            "Scores DIR/test/<type>/*.png (MVTec AD layout; <type> good = defect-free)\n"
            "with masks DIR/ground_truth/<type>/NAME_mask.png, and prints image AUROC,\n"
            "pixel AUROC (exact, every test pixel at the model input size; masks get\n"
            "the same ROI crop and resize as the images), image AUROC of each defect\n"
            "type against the good images, and inspections per second (time inside\n"
            "the detector). The last line is machine-readable:\n"
            "  RESULT image_auroc=A pixel_auroc=P inspections_per_s=S images=N\n"
            "\n"
            "  --config FILE     the line's YAML config\n"
            "  --dataset DIR     dataset root holding test/ and ground_truth/\n"
            "  --csv FILE        per-image rows: path,type,label,score,verdict,box,area,ms\n"
            "  --heatmaps DIR    heat maps of the %d worst misses each way (lowest-scored\n"
            "                    defects, highest-scored good parts)\n"
            "  --limit N         at most N images (sorted by name) of each test type\n"
            "  --fit-stats DIR   good images for per-pixel statistics fitted here (z-score\n"
            "                    baseline, tune normalize=1); default DIR/train/good.\n"
            "                    detector.normalize: true alone reads them from\n"
            "                    NAME.stats.safetensors instead, like the daemon\n"
            "  --tune KEY=VALUE  ablation settings that are not config keys:\n"
            "                    baseline=zscore|contrast (no model), ssim=W, draws=N,\n"
            "                    scales=N, flips=1|2|4 (head passes, over detector.mirror),\n"
            "                    normalize=0|1 (see docs/accuracy.md)\n"
            "\n"
            "exit codes: 0 ok, 1 runtime failure (model, image or mask unreadable,\n"
            "            dataset layout wrong), 2 usage or config error\n",
            WORST_MISSES);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the sub-folders of dir (the defect types); the images in
 * each come from ad_png_list. */
static int list_subfolders(const char *dir, char ***names, int *count, char *err, size_t errlen)
{
    DIR *dp = opendir(dir);
    if (!dp) return ad_err(err, errlen, "cannot open folder %s: %m", dir);
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.') continue;
        char full[AD_PATH_MAX * 2];
        struct stat st;
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= sizeof full ||
            stat(full, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = ad_xrealloc(v, (size_t)cap * sizeof *v);
        }
        v[n++] = ad_xstrdup(de->d_name);
    }
    closedir(dp);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return 0;
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

typedef struct sample {
    char *path;
    int type;            /* index into types; good has label 0 */
    uint8_t label;
    ad_result r;
} sample;

/* Mask of a test image at the detector's input size, 0/1 per pixel. */
static int load_mask(const ad_config *cfg, const char *dataset, const char *type,
                     const char *name, int fw, int fh, int iw, int ih, uint8_t *labels,
                     char *err, size_t errlen)
{
    char stem[AD_PATH_MAX], path[AD_PATH_MAX * 3];
    snprintf(stem, sizeof stem, "%s", name);
    size_t l = strlen(stem);
    if (l > 4) stem[l - 4] = 0;
    snprintf(path, sizeof path, "%s/ground_truth/%s/%s_mask.png", dataset, type, stem);
    ad_image m = {0}, crop = {0}, small = {0};
    char e[AD_ERRLEN];
    if (ad_png_read(path, 1, &m, e, sizeof e) < 0) return ad_err(err, errlen, "mask: %s", e);
    int rc = -1;
    if (m.w != fw || m.h != fh) {
        ad_err(err, errlen, "%s is %dx%d but its image is %dx%d", path, m.w, m.h, fw, fh);
        goto done;
    }
    const ad_image *src = &m;
    if (cfg->camera.roi_width > 0 && cfg->camera.roi_height > 0) {
        if (ad_image_crop(&crop, &m, cfg->camera.roi_x, cfg->camera.roi_y, cfg->camera.roi_width,
                          cfg->camera.roi_height, e, sizeof e) < 0) {
            ad_err(err, errlen, "%s: %s", path, e);
            goto done;
        }
        src = &crop;
    }
    if (src->w != iw || src->h != ih) {
        if (ad_image_resize(&small, src, iw, ih) < 0) {
            ad_err(err, errlen, "%s: cannot resize the mask", path);
            goto done;
        }
        src = &small;
    }
    for (size_t i = 0; i < (size_t)iw * ih; i++) labels[i] = src->px[i] >= 128;
    rc = 0;
done:
    ad_image_free(&m);
    ad_image_free(&crop);
    ad_image_free(&small);
    return rc;
}

static int cmp_score_asc(const void *a, const void *b)
{
    double x = (*(sample *const *)a)->r.score, y = (*(sample *const *)b)->r.score;
    return (x > y) - (x < y);
}

static int write_miss(ad_detector *d, const ad_config *cfg, const sample *s, const char *dir,
                      const char *kind, int rank, const char *type, char *err, size_t errlen)
{
    ad_image roi = {0}, hm = {0};
    ad_result r;
    int rc = -1;
    if (ad_load_frame_file(cfg, s->path, &roi, err, errlen) < 0 ||
        ad_detector_inspect(d, &roi, &r, err, errlen) < 0 ||
        ad_detector_heatmap(d, &roi, &hm, err, errlen) < 0)
        goto done;
    const char *base = strrchr(s->path, '/');
    base = base ? base + 1 : s->path;
    char out[AD_PATH_MAX * 3];
    snprintf(out, sizeof out, "%s/%s%d_%s_%.*s_score%.4f.png", dir, kind, rank, type,
             (int)strlen(base) - 4, base, r.score);
    rc = ad_png_write(out, &hm, err, errlen);
done:
    ad_image_free(&roi);
    ad_image_free(&hm);
    return rc;
}

/* What the command line asks for. */
typedef struct eval_args {
    const char *config_path, *dataset, *csv_path, *heatmap_dir, *stats_dir;
    long limit;                  /* images per type, 0 = all */
    ad_detector_tuning tune;
} eval_args;

static int parse_args(eval_args *a, int argc, char **argv)
{
    static const ad_cli cli = {"eval", usage};
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},    {"dataset", required_argument, NULL, 'd'},
        {"csv", required_argument, NULL, 'v'},       {"heatmaps", required_argument, NULL, 'm'},
        {"fit-stats", required_argument, NULL, 'f'}, {"limit", required_argument, NULL, 'l'},
        {"tune", required_argument, NULL, 't'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    char err[AD_ERRLEN];
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'c': a->config_path = optarg; break;
        case 'd': a->dataset = optarg; break;
        case 'v': a->csv_path = optarg; break;
        case 'm': a->heatmap_dir = optarg; break;
        case 'f': a->stats_dir = optarg; break;
        case 'l':
            if (ad_parse_long(optarg, 1, LONG_MAX, &a->limit) < 0)
                return ad_cli_usage_error(&cli, "--limit must be a positive integer, got '%s'",
                                          optarg);
            break;
        case 't':
            if (ad_detector_tuning_parse(&a->tune, optarg, err, sizeof err) < 0)
                return ad_cli_usage_error(&cli, "--tune: %s", err);
            break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!a->config_path || !a->dataset)
        return ad_cli_usage_error(&cli, "--config FILE and --dataset DIR are required");
    return AD_CLI_RUN;
}

/* The run: the detector, the test types, every image's result, the pixel
 * AUROC accumulated as the maps come. */
typedef struct eval_run {
    ad_config cfg;
    ad_detector *det;
    int iw, ih;                  /* the detector's input size */
    char test_dir[AD_PATH_MAX * 2];
    char **types;                /* sub-folders of test/, sorted */
    int ntypes, good_type;
    sample *samples;
    int nsamples, cap;
    ad_auroc_acc pix;
    uint8_t *labels;             /* one mask at the input size */
    FILE *csv;
    double ms_total;             /* time inside the detector */
    double wall;                 /* the whole loop, PNG decoding included */
} eval_run;

/* The detector with its tuning, and its per-pixel statistics when the
 * tuning asks for them. */
static int open_detector(const eval_args *a, eval_run *e, char *err, size_t errlen)
{
    if (ad_detector_open_tuned(&e->det, &e->cfg, &a->tune, err, errlen) < 0) return -1;
    ad_detector_input_size(e->det, &e->iw, &e->ih, NULL);
    e->labels = ad_xmalloc((size_t)e->iw * e->ih);
    if (ad_detector_needs_stats(e->det)) {
        char def[AD_PATH_MAX * 2];
        snprintf(def, sizeof def, "%s/train/good", a->dataset);
        const char *sd = a->stats_dir ? a->stats_dir : def;
        int n;
        if (ad_detector_fit_stats_dir(e->det, sd, &n, err, errlen) < 0) return -1;
        fprintf(stderr, "eval: per-pixel statistics from %d good images in %s\n", n, sd);
    }
    return 0;
}

static int list_types(const eval_args *a, eval_run *e, char *err, size_t errlen)
{
    snprintf(e->test_dir, sizeof e->test_dir, "%s/test", a->dataset);
    if (list_subfolders(e->test_dir, &e->types, &e->ntypes, err, errlen) < 0) return -1;
    e->good_type = -1;
    for (int t = 0; t < e->ntypes; t++)
        if (!strcmp(e->types[t], "good")) e->good_type = t;
    if (e->good_type < 0 || e->ntypes < 2)
        return ad_err(err, errlen, "%s must hold good/ and at least one defect folder (MVTec AD "
                      "layout)", e->test_dir);
    return 0;
}

/* One test image of type t: inspect, its mask into the pixel AUROC, its
 * result kept (and written to the CSV). */
static int inspect_image(const eval_args *a, eval_run *e, int t, const char *dir,
                         const char *name, char *err, size_t errlen)
{
    const ad_config *cfg = &e->cfg;
    char p[AD_PATH_MAX * 4];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    ad_image roi = {0};
    ad_result r;
    if (ad_load_frame_file(cfg, p, &roi, err, errlen) < 0 ||
        ad_detector_inspect(e->det, &roi, &r, err, errlen) < 0) {
        ad_image_free(&roi);
        return -1;
    }
    /* masks are in frame pixels: the camera frame when a ROI is set, else the ROI */
    bool roi_set = cfg->camera.roi_width > 0 && cfg->camera.roi_height > 0;
    int fw = roi_set ? cfg->camera.width : roi.w, fh = roi_set ? cfg->camera.height : roi.h;
    ad_image_free(&roi);
    if (t == e->good_type)
        memset(e->labels, 0, (size_t)e->iw * e->ih);
    else if (load_mask(cfg, a->dataset, e->types[t], name, fw, fh, e->iw, e->ih, e->labels, err,
                       errlen) < 0)
        return -1;
    int mw, mh;
    const float *map = ad_detector_last_map(e->det, &mw, &mh);
    ad_auroc_acc_add(&e->pix, map, e->labels, (size_t)mw * mh);
    if (e->nsamples == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 256;
        e->samples = ad_xrealloc(e->samples, (size_t)e->cap * sizeof *e->samples);
    }
    sample *s = &e->samples[e->nsamples++];
    s->path = ad_xstrdup(p);
    s->type = t;
    s->label = t != e->good_type;
    s->r = r;
    e->ms_total += r.ms;
    if (e->csv)
        fprintf(e->csv, "%s,%s,%d,%.6f,%s,%d,%d,%d,%d,%ld,%.2f\n", p, e->types[t], s->label,
                r.score, r.reject ? "reject" : "pass", r.box_x, r.box_y, r.box_w, r.box_h,
                r.area, r.ms);
    if (e->nsamples % 50 == 0)
        fprintf(stderr, "eval: %d images, %.1f ms per inspection\n", e->nsamples,
                e->ms_total / e->nsamples);
    return 0;
}

/* The images of type t, sorted by name, at most --limit. */
static int inspect_type(const eval_args *a, eval_run *e, int t, char *err, size_t errlen)
{
    char dir[AD_PATH_MAX * 3];
    snprintf(dir, sizeof dir, "%s/%s", e->test_dir, e->types[t]);
    char **names;
    int total;
    if (ad_png_list(dir, &names, &total, err, errlen) < 0) return -1;
    int n = a->limit && total > a->limit ? (int)a->limit : total;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = inspect_image(a, e, t, dir, names[i], err, errlen);
    ad_png_list_free(names, total);
    return rc;
}

/* Returns 0, AD_EXIT_USAGE (the config) or AD_EXIT_FAILURE, with err. */
static int run(const eval_args *a, eval_run *e, char *err, size_t errlen)
{
    if (ad_config_load(a->config_path, &e->cfg, err, errlen) < 0) return AD_EXIT_USAGE;
    if (open_detector(a, e, err, errlen) < 0 || list_types(a, e, err, errlen) < 0)
        return AD_EXIT_FAILURE;
    if (a->csv_path) {
        e->csv = fopen(a->csv_path, "w");
        if (!e->csv) {
            ad_err(err, errlen, "cannot write %s: %m", a->csv_path);
            return AD_EXIT_FAILURE;
        }
        fprintf(e->csv, "path,type,label,score,verdict,box_x,box_y,box_w,box_h,area,ms\n");
    }
    double t_start = ad_now_sec();
    for (int t = 0; t < e->ntypes; t++)
        if (inspect_type(a, e, t, err, errlen) < 0) return AD_EXIT_FAILURE;
    e->wall = ad_now_sec() - t_start;
    return 0;
}

static void report(const eval_args *a, eval_run *e)
{
    int nsamples = e->nsamples;
    const sample *samples = e->samples;
    double *scores = ad_xmalloc((size_t)nsamples * sizeof *scores);
    uint8_t *lab = ad_xmalloc((size_t)nsamples);
    size_t ngood = 0;
    for (int i = 0; i < nsamples; i++) {
        scores[i] = samples[i].r.score;
        lab[i] = samples[i].label;
        ngood += !lab[i];
    }
    double img_auc = ad_auroc(scores, lab, (size_t)nsamples);
    size_t npix = e->pix.npos + e->pix.nneg, ndefpix = e->pix.npos;
    double pix_auc = ad_auroc_acc_compute(&e->pix);
    double ips = e->ms_total > 0 ? nsamples / (e->ms_total / 1000.0) : 0;
    printf("dataset       %s\n", a->dataset);
    printf("config        %s (input %dx%d)\n", a->config_path, e->iw, e->ih);
    printf("images        %d (good %zu, defect %zu)\n", nsamples, ngood, (size_t)nsamples - ngood);
    printf("image AUROC   %.4f\n", img_auc);
    printf("pixel AUROC   %.4f  (%zu pixels, %zu defect)\n", pix_auc, npix, ndefpix);
    printf("per defect type, image AUROC against the good images:\n");
    for (int t = 0; t < e->ntypes; t++) {
        if (t == e->good_type) continue;
        size_t k = 0;
        for (int i = 0; i < nsamples; i++)
            if (samples[i].type == t || samples[i].type == e->good_type) {
                scores[k] = samples[i].r.score;
                lab[k++] = samples[i].type == t;
            }
        printf("  %-16s %.4f  (%zu images)\n", e->types[t], ad_auroc(scores, lab, k), k - ngood);
    }
    printf("inspections/s %.2f  (%.1f ms per inspection, %.1f s wall with PNG decoding)\n", ips,
           nsamples ? e->ms_total / nsamples : 0.0, e->wall);
    printf("RESULT image_auroc=%.4f pixel_auroc=%.4f inspections_per_s=%.3f images=%d\n", img_auc,
           pix_auc, ips, nsamples);
    fflush(stdout);
    free(scores);
    free(lab);
}

/* --heatmaps: the WORST_MISSES lowest-scored defects and highest-scored
 * good parts. */
static int write_misses(const eval_args *a, const eval_run *e, char *err, size_t errlen)
{
    int nsamples = e->nsamples;
    if (!a->heatmap_dir || nsamples == 0) return 0;
    if (ad_mkdirs(a->heatmap_dir, 0755, err, errlen) < 0) return -1;
    sample **order = ad_xmalloc((size_t)nsamples * sizeof *order);
    for (int i = 0; i < nsamples; i++) order[i] = &e->samples[i];
    if (nsamples > 1) qsort(order, (size_t)nsamples, sizeof *order, cmp_score_asc);
    int written = 0, rc = 0;
    for (int i = 0; i < nsamples && written < WORST_MISSES && rc == 0; i++)
        if (order[i]->label)
            rc = write_miss(e->det, &e->cfg, order[i], a->heatmap_dir, "missed_defect", ++written,
                            e->types[order[i]->type], err, errlen);
    written = 0;
    for (int i = nsamples - 1; i >= 0 && written < WORST_MISSES && rc == 0; i--)
        if (!order[i]->label)
            rc = write_miss(e->det, &e->cfg, order[i], a->heatmap_dir, "false_alarm", ++written,
                            "good", err, errlen);
    free(order);
    return rc;
}

/* Closes the CSV (a failed close fails a run that went well) and frees. */
static int run_free(const eval_args *a, eval_run *e, int status)
{
    if (e->csv && fclose(e->csv) != 0 && status == 0) {
        fprintf(stderr, "anomalyctl eval: cannot write %s\n", a->csv_path);
        status = AD_EXIT_FAILURE;
    }
    for (int i = 0; i < e->nsamples; i++) free(e->samples[i].path);
    free(e->samples);
    free(e->labels);
    ad_auroc_acc_free(&e->pix);
    free_names(e->types, e->ntypes);
    ad_detector_close(e->det);
    return status;
}

int ad_cmd_eval(int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    eval_run *e = ad_xcalloc(1, sizeof *e);
    char err[AD_ERRLEN];
    rc = run(&a, e, err, sizeof err);
    if (rc == 0) {
        report(&a, e);
        if (write_misses(&a, e, err, sizeof err) < 0) rc = AD_EXIT_FAILURE;
    }
    if (rc != 0) fprintf(stderr, "anomalyctl eval: %s\n", err);
    rc = run_free(&a, e, rc);
    free(e);
    return rc;
}

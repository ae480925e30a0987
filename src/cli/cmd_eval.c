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
            "                    scales=N, normalize=0|1 (see docs/accuracy.md)\n"
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

int ad_cmd_eval(int argc, char **argv)
{
    const char *config_path = NULL, *dataset = NULL, *csv_path = NULL, *heatmap_dir = NULL;
    const char *stats_dir = NULL;
    long limit = 0;
    ad_detector_tuning tune = {0};
    char err[AD_ERRLEN];
    static const ad_cli cli = {"eval", usage};
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},    {"dataset", required_argument, NULL, 'd'},
        {"csv", required_argument, NULL, 'v'},       {"heatmaps", required_argument, NULL, 'm'},
        {"fit-stats", required_argument, NULL, 'f'}, {"limit", required_argument, NULL, 'l'},
        {"tune", required_argument, NULL, 't'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'd': dataset = optarg; break;
        case 'v': csv_path = optarg; break;
        case 'm': heatmap_dir = optarg; break;
        case 'f': stats_dir = optarg; break;
        case 'l':
            if (ad_parse_long(optarg, 1, LONG_MAX, &limit) < 0)
                return ad_cli_usage_error(&cli, "--limit must be a positive integer, got '%s'",
                                          optarg);
            break;
        case 't':
            if (ad_detector_tuning_parse(&tune, optarg, err, sizeof err) < 0)
                return ad_cli_usage_error(&cli, "--tune: %s", err);
            break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!config_path || !dataset)
        return ad_cli_usage_error(&cli, "--config FILE and --dataset DIR are required");
    ad_config cfg;
    if (ad_config_load(config_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl eval: %s\n", err);
        return 2;
    }

    int status = 1;
    ad_detector *d = NULL;
    char **types = NULL;
    int ntypes = 0, nsamples = 0, cap = 0;
    sample *samples = NULL;
    ad_auroc_acc pix = {0};
    uint8_t *labels = NULL;
    FILE *csv = NULL;
    double *scores = NULL;
    uint8_t *lab = NULL;
    char test_dir[AD_PATH_MAX * 2];
    snprintf(test_dir, sizeof test_dir, "%s/test", dataset);

    if (ad_detector_open_tuned(&d, &cfg, &tune, err, sizeof err) < 0) goto fail;
    int iw, ih;
    ad_detector_input_size(d, &iw, &ih, NULL);
    labels = ad_xmalloc((size_t)iw * ih);

    if (ad_detector_needs_stats(d)) {
        char def[AD_PATH_MAX * 2];
        snprintf(def, sizeof def, "%s/train/good", dataset);
        const char *sd = stats_dir ? stats_dir : def;
        int n;
        if (ad_detector_fit_stats_dir(d, sd, &n, err, sizeof err) < 0) goto fail;
        fprintf(stderr, "eval: per-pixel statistics from %d good images in %s\n", n, sd);
    }

    if (list_subfolders(test_dir, &types, &ntypes, err, sizeof err) < 0) goto fail;
    int good_type = -1;
    for (int t = 0; t < ntypes; t++)
        if (!strcmp(types[t], "good")) good_type = t;
    if (good_type < 0 || ntypes < 2) {
        ad_err(err, sizeof err, "%s must hold good/ and at least one defect folder (MVTec AD layout)",
               test_dir);
        goto fail;
    }
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) {
            ad_err(err, sizeof err, "cannot write %s: %m", csv_path);
            goto fail;
        }
        fprintf(csv, "path,type,label,score,verdict,box_x,box_y,box_w,box_h,area,ms\n");
    }

    double t_start = ad_now_sec(), ms_total = 0;
    for (int t = 0; t < ntypes; t++) {
        char dir[AD_PATH_MAX * 3];
        snprintf(dir, sizeof dir, "%s/%s", test_dir, types[t]);
        char **names;
        int total, n;
        if (ad_png_list(dir, &names, &total, err, sizeof err) < 0) goto fail;
        n = limit && total > limit ? (int)limit : total;
        for (int i = 0; i < n; i++) {
            char p[AD_PATH_MAX * 4];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            ad_image roi = {0};
            ad_result r;
            if (ad_load_frame_file(&cfg, p, &roi, err, sizeof err) < 0 ||
                ad_detector_inspect(d, &roi, &r, err, sizeof err) < 0) {
                ad_image_free(&roi);
                ad_png_list_free(names, total);
                goto fail;
            }
            /* masks are in frame pixels: the camera frame when a ROI is set, else the ROI */
            bool roi_set = cfg.camera.roi_width > 0 && cfg.camera.roi_height > 0;
            int fw = roi_set ? cfg.camera.width : roi.w, fh = roi_set ? cfg.camera.height : roi.h;
            ad_image_free(&roi);
            if (t == good_type) memset(labels, 0, (size_t)iw * ih);
            else if (load_mask(&cfg, dataset, types[t], names[i], fw, fh, iw, ih, labels, err,
                               sizeof err) < 0) {
                ad_png_list_free(names, total);
                goto fail;
            }
            int mw, mh;
            const float *map = ad_detector_last_map(d, &mw, &mh);
            ad_auroc_acc_add(&pix, map, labels, (size_t)mw * mh);
            if (nsamples == cap) {
                cap = cap ? cap * 2 : 256;
                samples = ad_xrealloc(samples, (size_t)cap * sizeof *samples);
            }
            sample *s = &samples[nsamples++];
            s->path = ad_xstrdup(p);
            s->type = t;
            s->label = t != good_type;
            s->r = r;
            ms_total += r.ms;
            if (csv)
                fprintf(csv, "%s,%s,%d,%.6f,%s,%d,%d,%d,%d,%ld,%.2f\n", p, types[t], s->label,
                        r.score, r.reject ? "reject" : "pass", r.box_x, r.box_y, r.box_w, r.box_h,
                        r.area, r.ms);
            if (nsamples % 50 == 0)
                fprintf(stderr, "eval: %d images, %.1f ms per inspection\n", nsamples,
                        ms_total / nsamples);
        }
        ad_png_list_free(names, total);
    }
    double wall = ad_now_sec() - t_start;

    scores = ad_xmalloc((size_t)nsamples * sizeof *scores);
    lab = ad_xmalloc((size_t)nsamples);
    size_t ngood = 0;
    for (int i = 0; i < nsamples; i++) {
        scores[i] = samples[i].r.score;
        lab[i] = samples[i].label;
        ngood += !lab[i];
    }
    double img_auc = ad_auroc(scores, lab, (size_t)nsamples);
    size_t npix = pix.npos + pix.nneg, ndefpix = pix.npos;
    double pix_auc = ad_auroc_acc_compute(&pix);
    double ips = ms_total > 0 ? nsamples / (ms_total / 1000.0) : 0;
    printf("dataset       %s\n", dataset);
    printf("config        %s (input %dx%d)\n", config_path, iw, ih);
    printf("images        %d (good %zu, defect %zu)\n", nsamples, ngood, (size_t)nsamples - ngood);
    printf("image AUROC   %.4f\n", img_auc);
    printf("pixel AUROC   %.4f  (%zu pixels, %zu defect)\n", pix_auc, npix, ndefpix);
    printf("per defect type, image AUROC against the good images:\n");
    for (int t = 0; t < ntypes; t++) {
        if (t == good_type) continue;
        size_t k = 0;
        for (int i = 0; i < nsamples; i++)
            if (samples[i].type == t || samples[i].type == good_type) {
                scores[k] = samples[i].r.score;
                lab[k++] = samples[i].type == t;
            }
        printf("  %-16s %.4f  (%zu images)\n", types[t], ad_auroc(scores, lab, k), k - ngood);
    }
    printf("inspections/s %.2f  (%.1f ms per inspection, %.1f s wall with PNG decoding)\n", ips,
           nsamples ? ms_total / nsamples : 0.0, wall);
    printf("RESULT image_auroc=%.4f pixel_auroc=%.4f inspections_per_s=%.3f images=%d\n", img_auc,
           pix_auc, ips, nsamples);
    fflush(stdout);

    if (heatmap_dir && nsamples > 0) {
        if (ad_mkdirs(heatmap_dir, 0755, err, sizeof err) < 0) goto fail;
        sample **order = ad_xmalloc((size_t)nsamples * sizeof *order);
        for (int i = 0; i < nsamples; i++) order[i] = &samples[i];
        qsort(order, (size_t)nsamples, sizeof *order, cmp_score_asc);
        int written = 0, rc = 0;
        for (int i = 0; i < nsamples && written < WORST_MISSES && rc == 0; i++)
            if (order[i]->label)
                rc = write_miss(d, &cfg, order[i], heatmap_dir, "missed_defect", ++written,
                                types[order[i]->type], err, sizeof err);
        written = 0;
        for (int i = nsamples - 1; i >= 0 && written < WORST_MISSES && rc == 0; i--)
            if (!order[i]->label)
                rc = write_miss(d, &cfg, order[i], heatmap_dir, "false_alarm", ++written, "good",
                                err, sizeof err);
        free(order);
        if (rc < 0) goto fail;
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "anomalyctl eval: %s\n", err);
done:
    if (csv && fclose(csv) != 0 && status == 0) {
        fprintf(stderr, "anomalyctl eval: cannot write %s\n", csv_path);
        status = 1;
    }
    for (int i = 0; i < nsamples; i++) free(samples[i].path);
    free(samples);
    free(scores);
    free(lab);
    free(labels);
    ad_auroc_acc_free(&pix);
    free_names(types, ntypes);
    ad_detector_close(d);
    return status;
}

/* The map statistics file beside the model (detector.normalize): per-pixel
 * mean and spread of the raw anomaly map over good images, with what they
 * were fitted for, so a detector never normalizes with the statistics of
 * another model, head or setting. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/detect.h"
#include "anomalyd/head.h"
#include "anomalyd/model.h"
#include "anomalyd/util.h"
#include "detect_internal.h"

#define STATS_FORMAT "anomalyd-map-stats-1"
#define META_MODEL_SHA "anomalyd.model_sha256"
#define META_HEAD_SHA "anomalyd.head_sha256"
#define META_SOURCE "anomalyd.source"

void ad_stats_path(char *out, size_t outlen, const char *model_path)
{
    /* the head's naming rule, with "stats" in place of "head" */
    char head[AD_PATH_MAX + 32];
    ad_head_path(head, sizeof head, model_path);
    size_t stem = strlen(head) - strlen(".head.safetensors");
    snprintf(out, outlen, "%.*s.stats.safetensors", (int)stem, head);
}

int ad_detector_fit_stats_dir(ad_detector *d, const char *dir, int *count, char *err,
                              size_t errlen)
{
    char **names = NULL;
    int n = 0;
    *count = 0;
    if (ad_png_list(dir, &names, &n, err, errlen) < 0) return -1;
    ad_image *rois = ad_xcalloc((size_t)n, sizeof *rois);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[AD_PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = ad_load_frame_file(&d->cfg, path, &rois[i], err, errlen);
    }
    if (rc == 0) rc = ad_detector_fit_stats(d, rois, n, err, errlen);
    if (rc == 0) *count = n;
    for (int i = 0; i < n; i++) ad_image_free(&rois[i]);
    free(rois);
    ad_png_list_free(names, n);
    return rc;
}

/* What the raw map depends on besides the model and the head: metadata key,
 * the name a user knows it by, and this detector's value. Sigma is not one:
 * the map is normalized before it is smoothed. */
enum { NUM_SETTINGS = 8 };
typedef struct setting {
    const char *key, *name;
    char value[40];
} setting;

static const char *map_name(enum ad_map_mode map)
{
    const ad_config_key *k = ad_config_key_find("detector.map");
    for (int i = 0; k && k->choices[i]; i++)
        if (k->choice_values[i] == (int)map) return k->choices[i];
    return "?";
}

static void detector_settings(const ad_detector *d, setting s[NUM_SETTINGS])
{
    const ad_config *c = &d->cfg;
    s[0] = (setting){"anomalyd.detector.map", "detector.map", ""};
    snprintf(s[0].value, sizeof s[0].value, "%s", map_name(c->detector.map));
    s[1] = (setting){"anomalyd.detector.noise_level", "detector.noise_level", ""};
    snprintf(s[1].value, sizeof s[1].value, "%.17g", c->detector.noise_level);
    s[2] = (setting){"anomalyd.detector.steps", "detector.steps", ""};
    snprintf(s[2].value, sizeof s[2].value, "%d", c->detector.steps);
    s[3] = (setting){"anomalyd.detector.guidance", "detector.guidance", ""};
    snprintf(s[3].value, sizeof s[3].value, "%.17g", c->detector.guidance);
    s[4] = (setting){"anomalyd.detector.draws", "detector.draws", ""};
    snprintf(s[4].value, sizeof s[4].value, "%d", c->detector.draws);
    s[5] = (setting){"anomalyd.tune.ssim", "eval --tune ssim", ""};
    snprintf(s[5].value, sizeof s[5].value, "%.17g", d->tune.ssim_weight);
    s[6] = (setting){"anomalyd.tune.draws", "eval --tune draws", ""};
    snprintf(s[6].value, sizeof s[6].value, "%d", d->tune.map_draws > 1 ? d->tune.map_draws : 1);
    s[7] = (setting){"anomalyd.tune.scales", "eval --tune scales", ""};
    snprintf(s[7].value, sizeof s[7].value, "%d", d->tune.scales > 1 ? d->tune.scales : 1);
}

int ad_detector_save_stats(const ad_detector *d, const char *path, const char *source, int count,
                           char *err, size_t errlen)
{
    if (!d->normalize || !d->have_stats || !d->model)
        return ad_err(err, errlen, "%s: the detector has no fitted map statistics to write", path);
    setting s[NUM_SETTINGS];
    detector_settings(d, s);
    char width[16], height[16], images[16], date[32];
    snprintf(width, sizeof width, "%d", d->w);
    snprintf(height, sizeof height, "%d", d->h);
    snprintf(images, sizeof images, "%d", count);
    ad_utc_timestamp(date);
    const char *mk[8 + NUM_SETTINGS] = {"anomalyd.format", "anomalyd.input_width",
                                        "anomalyd.input_height", META_MODEL_SHA,
                                        "anomalyd.images", META_SOURCE, "anomalyd.date"};
    const char *mv[8 + NUM_SETTINGS] = {STATS_FORMAT, width, height, d->model->sha256,
                                        images, source ? source : "", date};
    int nm = 7;
    if (d->head) {
        mk[nm] = META_HEAD_SHA;
        mv[nm++] = d->head_sha256;
    }
    for (int i = 0; i < NUM_SETTINGS; i++, nm++) {
        mk[nm] = s[i].key;
        mv[nm] = s[i].value;
    }
    ad_st_out ts[2] = {{.name = "mean", .ndim = 2, .shape = {d->h, d->w}, .data = d->stat_mean},
                       {.name = "std", .ndim = 2, .shape = {d->h, d->w}, .data = d->stat_std}};
    return ad_safetensors_write(path, ts, 2, mk, mv, nm, err, errlen);
}

/* err = the problem, then how to make a good file. */
__attribute__((format(printf, 5, 6)))
static int refuse(const ad_detector *d, const char *source, char *err, size_t errlen,
                  const char *fmt, ...)
{
    char what[AD_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ad_err(err, errlen, "%s; refit it with 'anomalyctl train --config %s --images %s "
                  "--stats-only'", what, d->cfg.path, source && *source ? source : "GOOD_DIR");
}

/* The tensor `name` at the input size, (H, W), copied out value by value
 * (the data buffer need not be aligned); -1 with err filled otherwise. */
static int read_plane(const ad_detector *d, const ad_safetensors *st, const char *path,
                      const char *name, const char *source, float *out, char *err, size_t errlen)
{
    const ad_st_tensor *t = ad_safetensors_find(st, name);
    if (!t) return refuse(d, source, err, errlen, "%s: tensor '%s' is missing", path, name);
    if (t->ndim != 2 || t->shape[0] != d->h || t->shape[1] != d->w)
        return refuse(d, source, err, errlen,
                      "%s: tensor '%s' is not (H, W) = (%d, %d), the input size "
                      "model.input_height x input_width", path, name, d->h, d->w);
    for (size_t k = 0; k < d->n; k++) {
        float v;
        memcpy(&v, st->data + t->offset + k * sizeof v, sizeof v);
        if (!isfinite(v))
            return refuse(d, source, err, errlen, "%s: tensor '%s' holds a NaN or infinite value "
                          "at row %zu, column %zu", path, name, k / d->w, k % d->w);
        out[k] = v;
    }
    return 0;
}

int ad_detector_load_stats(ad_detector *d, const char *path, char *err, size_t errlen)
{
    d->have_stats = false;
    if (!d->normalize || !d->model)
        return ad_err(err, errlen, "%s: map statistics are for the diffusion map with "
                      "normalization only", path);
    if (access(path, F_OK) != 0)
        return ad_err(err, errlen,
                      "detector.normalize is true in %s but %s is missing; fit it with 'anomalyctl "
                      "train --config %s --images GOOD_DIR --stats-only' (or set "
                      "detector.normalize: false)", d->cfg.path, path, d->cfg.path);
    ad_safetensors st;
    memset(&st, 0, sizeof st);
    char e[AD_ERRLEN];
    if (ad_safetensors_read(path, &st, e, sizeof e) < 0) return refuse(d, NULL, err, errlen, "%s", e);
    int rc = -1;
    const char *source = ad_safetensors_meta(&st, META_SOURCE);
    const char *format = ad_safetensors_meta(&st, "anomalyd.format");
    const char *model_sha = ad_safetensors_meta(&st, META_MODEL_SHA);
    const char *head_sha = ad_safetensors_meta(&st, META_HEAD_SHA);
    float *mean = ad_xmalloc(d->n * sizeof *mean), *sd = ad_xmalloc(d->n * sizeof *sd);
    setting s[NUM_SETTINGS];
    detector_settings(d, s);
    if (!format || strcmp(format, STATS_FORMAT)) {
        refuse(d, source, err, errlen, "%s: not an anomalyd map statistics file (metadata "
               "anomalyd.format is '%s', expected '" STATS_FORMAT "')", path,
               format ? format : "missing");
        goto out;
    }
    if (!model_sha || strcmp(model_sha, d->model->sha256)) {
        refuse(d, source, err, errlen, "%s: fitted for the model with sha256 %.12s, but %s has "
               "sha256 %.12s (trained again since?)", path, model_sha ? model_sha : "(missing)",
               d->cfg.model.path, d->model->sha256);
        goto out;
    }
    if (d->head && (!head_sha || strcmp(head_sha, d->head_sha256))) {
        refuse(d, source, err, errlen, "%s: fitted %s, but the map uses the head with sha256 "
               "%.12s (trained again since?)", path,
               head_sha ? "for another head" : "without the head", d->head_sha256);
        goto out;
    }
    for (int i = 0; i < NUM_SETTINGS; i++) {
        const char *v = ad_safetensors_meta(&st, s[i].key);
        if (!v || strcmp(v, s[i].value)) {
            refuse(d, source, err, errlen, "%s: fitted with %s %s, but it is %s now", path,
                   s[i].name, v ? v : "(missing)", s[i].value);
            goto out;
        }
    }
    if (st.num_tensors != 2) {
        refuse(d, source, err, errlen, "%s: holds %d tensors, expected two: mean and std", path,
               st.num_tensors);
        goto out;
    }
    if (read_plane(d, &st, path, "mean", source, mean, err, errlen) < 0 ||
        read_plane(d, &st, path, "std", source, sd, err, errlen) < 0)
        goto out;
    for (size_t k = 0; k < d->n; k++)
        if (!(sd[k] > 0)) {
            refuse(d, source, err, errlen, "%s: tensor 'std' is %g at row %zu, column %zu; "
                   "a spread must be above 0", path, sd[k], k / d->w, k % d->w);
            goto out;
        }
    memcpy(d->stat_mean, mean, d->n * sizeof *mean);
    memcpy(d->stat_std, sd, d->n * sizeof *sd);
    d->have_stats = true;
    rc = 0;
out:
    free(mean);
    free(sd);
    ad_safetensors_free(&st);
    return rc;
}

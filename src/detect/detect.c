/* The detector: preprocess, partial-noise reconstruction, anomaly map,
 * score, verdict, defect box. One object per input size owns the model and
 * every scratch buffer, so inspection never allocates (except once when a
 * ROI larger than any before arrives). */
#include "anomalyd/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/calib.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/head.h"
#include "anomalyd/model.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"
#include "detect_internal.h"

/* ---- preprocessing ---- */

int ad_preprocess_roi(const ad_config *cfg, const ad_image *frame, ad_image *roi,
                      char *err, size_t errlen)
{
    int want_c = (int)cfg->model.color;
    if (frame->c != 1 && frame->c != 3)
        return ad_err(err, errlen, "frame has %d channels, expected 1 (gray) or 3 (RGB)", frame->c);
    int x = cfg->camera.roi_x, y = cfg->camera.roi_y;
    int w = cfg->camera.roi_width, h = cfg->camera.roi_height;
    if (w == 0 || h == 0) {
        x = y = 0;
        w = frame->w;
        h = frame->h;
    }
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > frame->w || y + h > frame->h)
        return ad_err(err, errlen,
                      "camera.roi (x %d, y %d, %dx%d) does not fit inside the %dx%d frame",
                      x, y, w, h, frame->w, frame->h);
    ad_image crop = {0};
    const ad_image *cut = frame;
    if (x != 0 || y != 0 || w != frame->w || h != frame->h) {
        if (ad_image_crop(&crop, frame, x, y, w, h, err, errlen) < 0) return -1;
        cut = &crop;
    }
    int rc = 0;
    if (cut->c != want_c) {
        rc = ad_image_convert(roi, cut, want_c);
        ad_image_free(&crop);
    } else if (cut == &crop) {
        *roi = crop; /* hand the crop over */
    } else {
        rc = ad_image_copy(roi, cut);
    }
    if (rc < 0) return ad_err(err, errlen, "cannot convert the ROI to %d channels", want_c);
    return 0;
}

/* ---- tuning ---- */

int ad_detector_tuning_parse(ad_detector_tuning *t, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq) return ad_err(err, errlen, "tuning '%s' is not KEY=VALUE", kv);
    size_t klen = (size_t)(eq - kv);
    const char *val = eq + 1;
    char *end;
    if (klen == 8 && !strncmp(kv, "baseline", 8)) {
        if (!strcmp(val, "none")) t->baseline = AD_BASELINE_NONE;
        else if (!strcmp(val, "zscore")) t->baseline = AD_BASELINE_ZSCORE;
        else if (!strcmp(val, "contrast")) t->baseline = AD_BASELINE_CONTRAST;
        else return ad_err(err, errlen, "baseline must be none, zscore or contrast, got '%s'", val);
        return 0;
    }
    double v = strtod(val, &end);
    if (end == val || *end) return ad_err(err, errlen, "tuning %.*s: '%s' is not a number", (int)klen, kv, val);
    if (klen == 4 && !strncmp(kv, "ssim", 4)) {
        if (v < 0 || v > 100) return ad_err(err, errlen, "ssim weight must be 0..100, got %g", v);
        t->ssim_weight = v;
    } else if (klen == 5 && !strncmp(kv, "draws", 5)) {
        if (v < 1 || v > 16 || v != (int)v) return ad_err(err, errlen, "draws must be 1..16, got %g", v);
        t->map_draws = (int)v;
    } else if (klen == 6 && !strncmp(kv, "scales", 6)) {
        if (v < 1 || v > 4 || v != (int)v) return ad_err(err, errlen, "scales must be 1..4, got %g", v);
        t->scales = (int)v;
    } else if (klen == 5 && !strncmp(kv, "flips", 5)) {
        if (v != 1 && v != 2 && v != 4) return ad_err(err, errlen, "flips must be 1, 2 or 4, got %g", v);
        t->flips = (int)v;
    } else if (klen == 9 && !strncmp(kv, "normalize", 9)) {
        if (v != 0 && v != 1) return ad_err(err, errlen, "normalize must be 0 or 1, got %g", v);
        t->normalize = (int)v;
    } else {
        return ad_err(err, errlen, "unknown tuning key '%.*s' (baseline, ssim, draws, scales, flips, normalize)",
                      (int)klen, kv);
    }
    return 0;
}

/* ---- open / close ---- */

int ad_detector_open(ad_detector **out, const ad_config *cfg, char *err, size_t errlen)
{
    ad_detector_tuning none = {0};
    return ad_detector_open_tuned(out, cfg, &none, err, errlen);
}

/* A working buffer that does not fit: say which config keys set its size. */
static void size_error(const ad_config *cfg, const ad_detector *d, const char *why, char *err,
                       size_t errlen)
{
    ad_err(err, errlen, "model.input_width/height %dx%d in %s is too large for %s: %s", d->w, d->h,
           cfg->path, cfg->model.path, why);
}

int ad_detector_open_tuned(ad_detector **out, const ad_config *cfg,
                           const ad_detector_tuning *tuning, char *err, size_t errlen)
{
    *out = NULL;
    ad_detector *d = ad_xcalloc(1, sizeof *d);
    d->cfg = *cfg;
    d->tune = *tuning;
    if (tuning->flips) d->cfg.detector.mirror = tuning->flips; /* the ablation overrides the key */
    d->normalize = tuning->baseline == AD_BASELINE_NONE &&
                   (tuning->normalize || cfg->detector.normalize);
    d->c = (int)cfg->model.color;
    d->w = cfg->model.input_width;
    d->h = cfg->model.input_height;
    d->n = (size_t)d->w * d->h;
    if (d->w < 8 || d->h < 8) {
        ad_err(err, errlen, "model.input_width/height %dx%d is too small", d->w, d->h);
        goto fail;
    }
    ad_nn_set_threads(cfg->detector.threads);

    if (tuning->baseline == AD_BASELINE_NONE) {
        if (ad_model_load(cfg->model.path, &d->model, err, errlen) < 0) goto fail;
        ad_unet *u = d->model->unet;
        const ad_unet_hparams *hp = ad_unet_hp(u);
        if (hp->in_channels != d->c) {
            ad_err(err, errlen, "%s: model has %d channel(s) but model.color is %s in %s",
                   cfg->model.path, hp->in_channels, d->c == 1 ? "gray" : "rgb", cfg->path);
            goto fail;
        }
        int mult = ad_unet_size_multiple(u);
        if (d->w % mult || d->h % mult) {
            ad_err(err, errlen,
                   "model.input_width/height %dx%d must be multiples of %d for this model (%s)",
                   d->w, d->h, mult, cfg->model.path);
            goto fail;
        }
        char e[AD_ERRLEN];
        if (ad_unet_reserve(u, 1, d->h, d->w, false, e, sizeof e) < 0) {
            size_error(cfg, d, e, err, errlen);
            goto fail;
        }
        if (cfg->detector.map != AD_MAP_DIFF) {
            char hpath[AD_PATH_MAX + 32];
            ad_head_path(hpath, sizeof hpath, cfg->model.path);
            if (access(hpath, F_OK) != 0) {
                ad_err(err, errlen,
                       "detector.map is %s but %s has no learned head (%s is missing; train "
                       "one with train.head_steps > 0, or set detector.map: diff)",
                       cfg->detector.map == AD_MAP_HEAD ? "head" : "both", cfg->model.path, hpath);
                goto fail;
            }
            /* the map statistics name the head they were fitted with */
            if (ad_head_load(hpath, &d->head, e, sizeof e) < 0 ||
                (d->normalize && ad_sha256_file(hpath, d->head_sha256, e, sizeof e) < 0)) {
                ad_err(err, errlen, "%s", e);
                goto fail;
            }
            if (ad_head_hp(d->head)->image_channels != d->c) {
                ad_err(err, errlen, "%s: head reads %d channel(s) but the model has %d", hpath,
                       ad_head_hp(d->head)->image_channels, d->c);
                goto fail;
            }
            int sh = d->h, sw = d->w;
            if (ad_head_hp(d->head)->zscore) ad_head_frame_stats(d->head, NULL, &sh, &sw);
            if (sh != d->h || sw != d->w) {
                ad_err(err, errlen,
                       "%s: the head's frame statistics are %dx%d but model.input_width/height is "
                       "%dx%d in %s; train the head again at this input size "
                       "(anomalyctl train --head-only)", hpath, sw, sh, d->w, d->h, cfg->path);
                goto fail;
            }
            int mult = ad_head_size_multiple(d->head);
            if (d->w % mult || d->h % mult) {
                ad_err(err, errlen, "model.input_width/height %dx%d must be multiples of %d for the head",
                       d->w, d->h, mult);
                goto fail;
            }
            /* The head's scratch comes on top of the UNet's. (Where RLIMIT_AS
             * binds, the UNet's is already mapped and so counted twice: the
             * check errs on the safe side.) */
            size_t both = ad_unet_scratch_bytes(u) + ad_head_scratch_bytes(d->head, 1, d->h, d->w,
                                                                            false);
            if (ad_memory_check(both, "UNet and head scratch together", e, sizeof e) < 0 ||
                ad_head_reserve(d->head, 1, d->h, d->w, false, e, sizeof e) < 0) {
                size_error(cfg, d, e, err, errlen);
                goto fail;
            }
        }
        if (ad_schedule_init(&d->sched, d->model->schedule, d->model->T, err, errlen) < 0) goto fail;
        d->sched_ok = true;
        if (ad_sampler_create(&d->sampler, u, &d->sched, d->c, d->h, d->w, err, errlen) < 0)
            goto fail;
        d->recon.noise_level = cfg->detector.noise_level;
        d->recon.steps = cfg->detector.steps;
        d->recon.guidance = cfg->detector.guidance;
        d->recon.draws = cfg->detector.draws;
    }

    size_t cn = (size_t)d->c * d->n;
    d->x = ad_xalloc_aligned(cn * sizeof(float));
    d->xhat = ad_xalloc_aligned(cn * sizeof(float));
    d->raw = ad_xalloc_aligned(d->n * sizeof(float));
    d->map = ad_xalloc_aligned(d->n * sizeof(float));
    d->logits = ad_xalloc_aligned(d->n * sizeof(float));
    if (d->head && ad_head_hp(d->head)->zscore) {
        d->z = ad_xalloc_aligned(cn * sizeof(float));
        d->z_mirror = ad_xalloc_aligned(cn * sizeof(float));
    }
    if (d->head && ad_head_hp(d->head)->detail) {
        d->x2 = ad_xalloc_aligned(4 * cn * sizeof(float));
        d->x2_mirror = ad_xalloc_aligned(4 * cn * sizeof(float));
    }
    d->queue = ad_xalloc_aligned(d->n * sizeof(int));
    d->seen = ad_xalloc_aligned(d->n);
    d->work = ad_xalloc_aligned(8 * d->n * sizeof(float));
    d->stat_mean = ad_xalloc_aligned(cn * sizeof(float));
    d->stat_std = ad_xalloc_aligned(cn * sizeof(float));
    if (d->normalize && !tuning->normalize) {
        char spath[AD_PATH_MAX + 32];
        ad_stats_path(spath, sizeof spath, cfg->model.path);
        if (ad_detector_load_stats(d, spath, err, errlen) < 0) goto fail;
    }
    d->threshold = cfg->threshold;
    d->pixel_threshold = cfg->detector.pixel_threshold > 0 ? cfg->detector.pixel_threshold
                                                           : cfg->threshold;
    *out = d;
    return 0;
fail:
    ad_detector_close(d);
    return -1;
}

void ad_detector_close(ad_detector *d)
{
    if (!d) return;
    ad_sampler_free(d->sampler);
    if (d->sched_ok) ad_schedule_free(&d->sched);
    ad_model_free(d->model);
    ad_head_free(d->head);
    free(d->x);
    free(d->xhat);
    free(d->raw);
    free(d->map);
    free(d->logits);
    free(d->z);
    free(d->z_mirror);
    free(d->x2);
    free(d->x2_mirror);
    free(d->queue);
    free(d->seen);
    free(d->work);
    free(d->stat_mean);
    free(d->stat_std);
    free(d->src);
    free(d->src_tmp);
    free(d);
}

void ad_detector_set_threshold(ad_detector *d, double threshold)
{
    d->threshold = threshold;
    d->pixel_threshold = d->cfg.detector.pixel_threshold > 0 ? d->cfg.detector.pixel_threshold
                                                             : threshold;
}

const char *ad_detector_model_sha256(const ad_detector *d)
{
    return d->model ? d->model->sha256 : "";
}

bool ad_detector_needs_stats(const ad_detector *d)
{
    return (d->tune.baseline == AD_BASELINE_ZSCORE || d->normalize) && !d->have_stats;
}

const float *ad_detector_last_map(const ad_detector *d, int *w, int *h)
{
    if (w) *w = d->w;
    if (h) *h = d->h;
    return d->have_last ? d->map : NULL;
}

const float *ad_detector_last_recon(const ad_detector *d)
{
    return d->have_last && d->model ? d->xhat : NULL;
}

int ad_detector_input_size(const ad_detector *d, int *w, int *h, int *c)
{
    if (w) *w = d->w;
    if (h) *h = d->h;
    if (c) *c = d->c;
    return 0;
}

/* ---- the pipeline ---- */

/* ROI (8-bit interleaved, any size) -> d->x planar [-1, 1] at input size
 * (and d->x2 at twice that for a detail head). */
static int load_input(ad_detector *d, const ad_image *roi, char *err, size_t errlen)
{
    if (roi->c != d->c)
        return ad_err(err, errlen, "image has %d channel(s) but the model expects %d (model.color %s)",
                      roi->c, d->c, d->c == 1 ? "gray" : "rgb");
    if (roi->w < 1 || roi->h < 1 || !roi->px) return ad_err(err, errlen, "empty image");
    if (roi->w == d->w && roi->h == d->h && !d->x2) {
        ad_image_to_float(d->x, roi);
        return 0;
    }
    size_t need = (size_t)roi->c * roi->w * roi->h, need_tmp = (size_t)roi->h * 2 * d->w;
    if (need > d->src_cap) {
        free(d->src);
        d->src = ad_xalloc_aligned(need * sizeof(float));
        d->src_cap = need;
    }
    if (need_tmp > d->src_tmp_cap) {
        free(d->src_tmp);
        d->src_tmp = ad_xalloc_aligned(need_tmp * sizeof(float));
        d->src_tmp_cap = need_tmp;
    }
    ad_image_to_float(d->src, roi);
    size_t plane = (size_t)roi->w * roi->h;
    for (int ch = 0; ch < d->c; ch++) {
        ad_resample_plane(d->x + ch * d->n, d->w, d->h, d->src + ch * plane, roi->w, roi->h,
                          d->src_tmp);
        if (d->x2)
            ad_resample_plane(d->x2 + 4 * ch * d->n, 2 * d->w, 2 * d->h, d->src + ch * plane, roi->w,
                              roi->h, d->src_tmp);
    }
    return 0;
}

/* raw += |a - b| averaged over channels, optionally at coarser scales too. */
static void add_diff(ad_detector *d, float *raw, const float *a, const float *b)
{
    size_t n = d->n;
    int scales = d->tune.scales > 1 ? d->tune.scales : 1;
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int ch = 0; ch < d->c; ch++) s += fabsf(a[ch * n + i] - b[ch * n + i]);
        raw[i] += s / d->c / scales;
    }
    if (d->tune.ssim_weight > 0) {
        float *ss = d->work, *scratch = d->work + n;
        for (int ch = 0; ch < d->c; ch++) {
            ad_ssim_map(ss, a + ch * n, b + ch * n, d->w, d->h, scratch);
            float k = (float)(d->tune.ssim_weight * 0.5 / d->c);
            for (size_t i = 0; i < n; i++) raw[i] += k * (1.0f - ss[i]);
        }
    }
    /* Coarser scales: average-pool both by 2^s, difference, upsample, add. */
    for (int s = 1; s < scales; s++) {
        int f = 1 << s, sw = d->w / f, sh = d->h / f;
        if (sw < 2 || sh < 2) break;
        float *small = d->work, *up = d->work + n, *tmp = d->work + 2 * n;
        memset(small, 0, (size_t)sw * sh * sizeof(float));
        for (int ch = 0; ch < d->c; ch++) {
            const float *pa = a + ch * n, *pb = b + ch * n;
            for (int y = 0; y < sh; y++)
                for (int x = 0; x < sw; x++) {
                    float acc = 0;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++) {
                            size_t k = (size_t)(y * f + dy) * d->w + x * f + dx;
                            acc += pa[k] - pb[k];
                        }
                    small[y * sw + x] += fabsf(acc / (f * f)) / d->c;
                }
        }
        ad_resample_plane(up, d->w, d->h, small, sw, sh, tmp);
        for (size_t i = 0; i < n; i++) raw[i] += up[i] / scales;
    }
}

/* dst = src (c planes of h x w) mirrored left-right (fx) and/or upside
 * down (fy); its own inverse. */
static void mirror(float *dst, const float *src, int c, int h, int w, bool fx, bool fy)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            const float *row = src + ((size_t)ch * h + (fy ? h - 1 - y : y)) * w;
            float *out = dst + ((size_t)ch * h + y) * w;
            for (int x = 0; x < w; x++) out[x] = row[fx ? w - 1 - x : x];
        }
}

/* Adds the head's defect probability for d->x and d->xhat (and a zscore
 * head's z of d->x) to map (`both` adds it to the difference). With
 * detector.mirror lr or all (2 or 4 passes; tune.flips replaced it at open)
 * the head also reads the mirrored inputs (left-right, then upside down and
 * both) and the probabilities, mirrored back, are averaged. z is taken of
 * the frame as it is, against the statistics where they belong, and then
 * mirrored like the frame: a mirrored pass sees a mirrored part, not a part
 * compared with mirrored statistics. */
static void head_map(ad_detector *d, float *map)
{
    size_t n = d->n, cn = (size_t)d->c * n;
    int flips = d->cfg.detector.mirror == 2 || d->cfg.detector.mirror == 4 ? d->cfg.detector.mirror : 1;
    float *fx = d->work, *fxhat = d->work + cn, *prob = d->work + 2 * cn;
    if (d->z) {
        const float *sd, *mean = ad_head_frame_stats(d->head, &sd, NULL, NULL);
        ad_head_zscore(d->z, d->x, mean, sd, cn);
    }
    for (int f = 0; f < flips; f++) {
        bool mx = f & 1, my = f & 2;
        if (f == 0) {
            ad_head_forward(d->head, d->logits, d->x, d->xhat, d->z, d->x2, 1, d->h, d->w);
        } else {
            mirror(fx, d->x, d->c, d->h, d->w, mx, my);
            mirror(fxhat, d->xhat, d->c, d->h, d->w, mx, my);
            if (d->z) mirror(d->z_mirror, d->z, d->c, d->h, d->w, mx, my);
            if (d->x2) mirror(d->x2_mirror, d->x2, d->c, 2 * d->h, 2 * d->w, mx, my);
            ad_head_forward(d->head, prob, fx, fxhat, d->z ? d->z_mirror : NULL,
                            d->x2 ? d->x2_mirror : NULL, 1, d->h, d->w);
            mirror(d->logits, prob, 1, d->h, d->w, mx, my);
        }
        for (size_t i = 0; i < n; i++) map[i] += 1.0f / (1.0f + expf(-d->logits[i])) / flips;
    }
}

/* Raw (unsmoothed, unnormalized) anomaly map of d->x into d->raw. */
static void raw_map(ad_detector *d, uint64_t seed)
{
    size_t n = d->n;
    memset(d->raw, 0, n * sizeof(float));
    if (d->tune.baseline == AD_BASELINE_CONTRAST) {
        for (int ch = 0; ch < d->c; ch++) {
            float *bl = d->work, *tmp = d->work + n;
            ad_blur_gaussian(bl, d->x + ch * n, tmp, d->w, d->h, 8.0f);
            for (size_t i = 0; i < n; i++) d->raw[i] += fabsf(d->x[ch * n + i] - bl[i]) / d->c;
        }
        return;
    }
    if (d->tune.baseline == AD_BASELINE_ZSCORE) {
        if (!d->have_stats) return; /* fit_stats reads raw pixels itself */
        for (int ch = 0; ch < d->c; ch++)
            for (size_t i = 0; i < n; i++) {
                size_t k = ch * n + i;
                d->raw[i] += fabsf(d->x[k] - d->stat_mean[k]) / d->stat_std[k] / d->c;
            }
        return;
    }
    int draws = d->tune.map_draws > 1 ? d->tune.map_draws : 1;
    for (int k = 0; k < draws; k++) {
        ad_sampler_reconstruct(d->sampler, d->xhat, d->x, &d->recon,
                               seed + 0x9e3779b97f4a7c15ull * (uint64_t)k);
        if (d->cfg.detector.map != AD_MAP_HEAD) add_diff(d, d->raw, d->x, d->xhat);
        if (d->head) head_map(d, d->raw);
    }
    if (draws > 1)
        for (size_t i = 0; i < n; i++) d->raw[i] /= draws;
}

int ad_detector_fit_stats(ad_detector *d, const ad_image *rois, int count, char *err, size_t errlen)
{
    if (count < 2) return ad_err(err, errlen, "per-pixel statistics need at least 2 good images, got %d", count);
    bool pixels = d->tune.baseline == AD_BASELINE_ZSCORE;
    size_t len = pixels ? (size_t)d->c * d->n : d->n;
    ad_moments mom;
    ad_moments_init(&mom, len);
    d->have_stats = false;
    int rc = 0;
    for (int i = 0; i < count; i++) {
        if (load_input(d, &rois[i], err, errlen) < 0) {
            rc = -1;
            break;
        }
        const float *v = d->x;
        if (!pixels) {
            raw_map(d, ad_hash64(rois[i].px, (size_t)rois[i].w * rois[i].h * rois[i].c, 0));
            v = d->raw;
        }
        ad_moments_add(&mom, v);
    }
    if (rc == 0) {
        ad_moments_finish(&mom, d->stat_mean, d->stat_std);
        double mean_sd = 0;
        for (size_t k = 0; k < len; k++) mean_sd += d->stat_std[k];
        mean_sd /= (double)len;
        /* floor: one gray level for pixels, a tenth of the typical spread for maps */
        float floor_sd = pixels ? 1.0f / 127.5f : (float)(0.1 * mean_sd + 1e-6);
        for (size_t k = 0; k < len; k++)
            if (d->stat_std[k] < floor_sd) d->stat_std[k] = floor_sd;
        d->have_stats = true;
    }
    ad_moments_free(&mom);
    return rc;
}

/* The defect: the 8-connected region of map pixels over the pixel threshold
 * that holds the map's peak (scattered single pixels elsewhere do not
 * stretch the box); box and area mapped back to ROI pixels. */
static void locate_defect(ad_detector *d, const ad_image *roi, ad_result *res)
{
    size_t n = d->n, peak = 0;
    for (size_t i = 1; i < n; i++)
        if (d->map[i] > d->map[peak]) peak = i;
    float pthr = (float)d->pixel_threshold;
    if (!(d->map[peak] > pthr)) return;
    memset(d->seen, 0, n);
    int x0 = d->w, y0 = d->h, x1 = -1, y1 = -1;
    size_t head = 0, tail = 0;
    d->queue[tail++] = (int)peak;
    d->seen[peak] = 1;
    while (head < tail) {
        int p = d->queue[head++], x = p % d->w, y = p / d->w;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int nx = x + dx, ny = y + dy;
                if (nx < 0 || ny < 0 || nx >= d->w || ny >= d->h) continue;
                size_t q = (size_t)ny * d->w + nx;
                if (d->seen[q] || !(d->map[q] > pthr)) continue;
                d->seen[q] = 1;
                d->queue[tail++] = (int)q;
            }
    }
    double sx = (double)roi->w / d->w, sy = (double)roi->h / d->h;
    res->box_x = (int)floor(x0 * sx);
    res->box_y = (int)floor(y0 * sy);
    res->box_w = (int)ceil((x1 + 1) * sx) - res->box_x;
    res->box_h = (int)ceil((y1 + 1) * sy) - res->box_y;
    res->area = lround((double)tail * sx * sy);
}

int ad_detector_inspect(ad_detector *d, const ad_image *roi, ad_result *res,
                        char *err, size_t errlen)
{
    double t0 = ad_now_sec();
    memset(res, 0, sizeof *res);
    ad_nn_thread_follow();
    if (ad_detector_needs_stats(d))
        return ad_err(err, errlen, "this detector setting needs per-pixel statistics of good images first");
    if (load_input(d, roi, err, errlen) < 0) return -1;
    uint64_t seed = ad_hash64(roi->px, (size_t)roi->w * roi->h * roi->c,
                              ((uint64_t)roi->w << 32) ^ (uint64_t)roi->h);
    raw_map(d, seed);
    size_t n = d->n;
    if (d->normalize)
        for (size_t i = 0; i < n; i++) d->raw[i] = (d->raw[i] - d->stat_mean[i]) / d->stat_std[i];
    ad_blur_gaussian(d->map, d->raw, d->work, d->w, d->h, (float)d->cfg.detector.sigma);

    if (d->cfg.detector.score == AD_SCORE_TOPK) {
        size_t k = (size_t)llround(d->cfg.detector.topk_percent / 100.0 * (double)n);
        memcpy(d->work, d->map, n * sizeof(float));
        res->score = ad_topk_mean(d->work, n, k);
    } else {
        float m = d->map[0];
        for (size_t i = 1; i < n; i++)
            if (d->map[i] > m) m = d->map[i];
        res->score = m;
    }
    res->threshold = d->threshold;
    res->reject = res->score > d->threshold;

    locate_defect(d, roi, res);
    d->have_last = true;
    res->ms = (ad_now_sec() - t0) * 1000.0;
    return 0;
}

int ad_detector_heatmap(const ad_detector *d, const ad_image *roi, ad_image *out,
                        char *err, size_t errlen)
{
    if (!d->have_last) return ad_err(err, errlen, "no inspection yet, so no heat map");
    size_t rn = (size_t)roi->w * roi->h;
    float *m = ad_xmalloc(rn * sizeof(float));
    float *tmp = ad_xmalloc((size_t)d->h * roi->w * sizeof(float));
    ad_resample_plane(m, roi->w, roi->h, d->map, d->w, d->h, tmp);
    float hi = (float)(2.0 * d->pixel_threshold);
    if (!(hi > 0)) hi = 1.0f;
    int rc = ad_heatmap_overlay(out, roi, m, 0.0f, hi, 0.5f);
    free(m);
    free(tmp);
    if (rc < 0) return ad_err(err, errlen, "cannot draw the heat map");
    return 0;
}

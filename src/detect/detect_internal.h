/* Helpers shared by the files of src/detect/ (not part of the public API). */
#ifndef ANOMALYD_DETECT_INTERNAL_H
#define ANOMALYD_DETECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/head.h"
#include "anomalyd/model.h"

/* The detector's state; detect.c runs it, stats.c reads and writes its
 * per-pixel statistics. */
struct ad_detector {
    ad_config cfg;
    ad_detector_tuning tune;
    ad_model *model;                 /* NULL for the no-learning baselines */
    ad_head *head;                   /* learned map (detector.map head | both), else NULL */
    char head_sha256[65];            /* of the head file when normalizing, else "" */
    ad_noise_schedule sched;
    bool sched_ok;
    ad_sampler *sampler;
    ad_recon_opts recon;
    int c, w, h;                     /* input size */
    size_t n;                        /* w * h */
    double threshold, pixel_threshold;

    float *x, *xhat, *raw, *map;     /* (c,h,w), (c,h,w), (h,w), (h,w) */
    float *logits;                   /* (h,w) head output */
    float *z, *z_mirror;             /* (c,h,w) each: a zscore head's input for the frame and a
                                        mirror image of it; NULL for other heads */
    float *x2, *x2_mirror;           /* (c,2h,2w) each: a detail head's frame at twice the input
                                        size and a mirror image of it; NULL for other heads */
    int *queue;                      /* (h*w) flood fill of the defect region */
    uint8_t *seen;                   /* (h*w) */
    float *work;                     /* scratch: 8 * n floats (SSIM, blur, scales, top-k) */
    /* The raw map is normalized, (raw - mean) / std per pixel, before it is
     * smoothed: detector.normalize (statistics from the file beside the
     * model) or tuning.normalize (fitted by the caller). */
    bool normalize;
    float *stat_mean, *stat_std;     /* per-pixel stats (c*n for z-score, n for maps) */
    bool have_stats;

    float *src, *src_tmp;            /* ROI as float planes + resample scratch, grown on demand */
    size_t src_cap, src_tmp_cap;

    bool have_last;
};

/* in is (ih, iw), out is (oh, ow); tmp holds ih * ow floats. */
void ad_resample_plane(float *out, int ow, int oh, const float *in, int iw, int ih, float *tmp);

/* SSIM map of two planes (h, w) with a Gaussian window (sigma 1.5) for data
 * in [-1, 1]; scratch holds 6 * h * w floats. */
void ad_ssim_map(float *out, const float *x, const float *y, int w, int h, float *scratch);

/* Mean of the k largest of v[0..n) (reorders v). */
double ad_topk_mean(float *v, size_t n, size_t k);

#endif

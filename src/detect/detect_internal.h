/* Helpers shared by the files of src/detect/ (not part of the public API). */
#ifndef ANOMALYD_DETECT_INTERNAL_H
#define ANOMALYD_DETECT_INTERNAL_H

#include <stddef.h>

/* in is (ih, iw), out is (oh, ow); tmp holds ih * ow floats. */
void ad_resample_plane(float *out, int ow, int oh, const float *in, int iw, int ih, float *tmp);

/* SSIM map of two planes (h, w) with a Gaussian window (sigma 1.5) for data
 * in [-1, 1]; scratch holds 6 * h * w floats. */
void ad_ssim_map(float *out, const float *x, const float *y, int w, int h, float *scratch);

/* Mean of the k largest of v[0..n) (reorders v). */
double ad_topk_mean(float *v, size_t n, size_t k);

#endif

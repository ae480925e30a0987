/* Synthetic defects pasted on good images (DRAEM / DiffusionAD style), the
 * training signal of the learned anomaly head. Everything is seeded through
 * the caller's ad_rng, so the same seed gives the same samples.
 *
 * Images are planar float (C, H, W) in [-1, 1]; masks are (H, W) in {0, 1}. */
#ifndef ANOMALYD_SYNTH_H
#define ANOMALYD_SYNTH_H

#include <stdbool.h>
#include <stddef.h>

#include "anomalyd/util.h"

enum ad_synth_shape { AD_SYNTH_BLOB = 0, AD_SYNTH_SCRATCH = 1, AD_SYNTH_CRACK = 2 };
enum ad_synth_fill {
    AD_SYNTH_FILL_OTHER = 0,      /* region taken from another good image, flipped/rotated */
    AD_SYNTH_FILL_SHIFT = 1,      /* intensity shift */
    AD_SYNTH_FILL_CONTRAST = 2,   /* contrast change around the local mean */
    AD_SYNTH_FILL_BLUR = 3,       /* blurred copy of the image */
    AD_SYNTH_FILL_TEXTURE = 4,    /* procedural noise texture */
    AD_SYNTH_FILL_COUNT = 5
};

typedef struct ad_synth_opts {
    float p_clean;                /* share of samples left without a defect */
    float p_shape[3];             /* relative odds of blob, scratch, crack */
    float p_fill[AD_SYNTH_FILL_COUNT]; /* relative odds of each blob fill */
    float min_opacity, max_opacity;
    bool fine;                    /* lines down to a third of a pixel, straight cracks, defects
                                     at the edges (synth.c; off by default) */
} ad_synth_opts;

void ad_synth_default_opts(ad_synth_opts *o);

/* What one call produced (for example sheets and tests). */
typedef struct ad_synth_info {
    int shape;                    /* enum ad_synth_shape, -1 when clean */
    int fill;                     /* enum ad_synth_fill, -1 when clean */
    float opacity;
    long area;                    /* mask pixels */
} ad_synth_info;

/* Scratch floats needed for (c, h, w). */
size_t ad_synth_scratch_floats(int c, int h, int w);

/* out = img with one synthetic defect (or clean), mask = where it is.
 * other is a different good image of the same shape (used by FILL_OTHER;
 * may be NULL, then another fill is chosen). out must not alias img. */
void ad_synth_sample(float *out, float *mask, const float *img, const float *other,
                     int c, int h, int w, const ad_synth_opts *opts, ad_rng *rng,
                     float *scratch, ad_synth_info *info);

#endif

/* Float-plane resampling for the detector: area averaging when an axis
 * shrinks, bilinear (pixel-centre aligned) when it grows, the same rule as
 * ad_image_resize, but into caller-owned buffers so inspection never
 * allocates. */
#include "detect_internal.h"

#include <math.h>

/* One axis: out[i * ostride] from in[j * istride], n_in -> n_out samples. */
static void resample_line(float *out, int n_out, size_t ostride, const float *in, int n_in,
                          size_t istride)
{
    if (n_out == n_in) {
        for (int i = 0; i < n_out; i++) out[i * ostride] = in[i * istride];
        return;
    }
    double scale = (double)n_in / n_out;
    if (n_out < n_in) {
        for (int i = 0; i < n_out; i++) {
            double a = i * scale, b = (i + 1) * scale, acc = 0;
            int j0 = (int)floor(a), j1 = (int)ceil(b);
            if (j1 > n_in) j1 = n_in;
            for (int j = j0; j < j1; j++) {
                double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
                if (hi > lo) acc += (hi - lo) * in[j * istride];
            }
            out[i * ostride] = (float)(acc / scale);
        }
        return;
    }
    for (int i = 0; i < n_out; i++) {
        double c = (i + 0.5) * scale - 0.5;
        if (c < 0) c = 0;
        if (c > n_in - 1) c = n_in - 1;
        int j = (int)floor(c);
        if (j > n_in - 2) j = n_in - 2 < 0 ? 0 : n_in - 2;
        double f = c - j;
        float v0 = in[j * istride], v1 = n_in > 1 ? in[(j + 1) * istride] : v0;
        out[i * ostride] = (float)((1 - f) * v0 + f * v1);
    }
}

void ad_resample_plane(float *out, int ow, int oh, const float *in, int iw, int ih, float *tmp)
{
    /* rows first: (ih, iw) -> (ih, ow) in tmp, then columns -> (oh, ow) */
    for (int y = 0; y < ih; y++)
        resample_line(tmp + (size_t)y * ow, ow, 1, in + (size_t)y * iw, iw, 1);
    for (int x = 0; x < ow; x++) resample_line(out + x, oh, (size_t)ow, tmp + x, ih, (size_t)ow);
}

/* Nearest-neighbour 2x upsample: each input pixel becomes a 2x2 block. */
#include "anomalyd/nn_layers.h"

void ad_upsample2x_forward(float *out, const float *in, int n, int c, int h, int w)
{
    const size_t planes = (size_t)n * c;
    for (size_t p = 0; p < planes; p++) {
        const float *x = in + p * h * w;
        float *y = out + p * 4 * h * w;
        for (int iy = 0; iy < h; iy++) {
            float *r0 = y + (size_t)(2 * iy) * 2 * w, *r1 = r0 + 2 * w;
            const float *xr = x + (size_t)iy * w;
            for (int ix = 0; ix < w; ix++) {
                r0[2 * ix] = r0[2 * ix + 1] = xr[ix];
            }
            for (int ox = 0; ox < 2 * w; ox++) r1[ox] = r0[ox];
        }
    }
}

void ad_upsample2x_backward(float *din, const float *dout, int n, int c, int h, int w)
{
    const size_t planes = (size_t)n * c;
    for (size_t p = 0; p < planes; p++) {
        float *dx = din + p * h * w;
        const float *dy = dout + p * 4 * h * w;
        for (int iy = 0; iy < h; iy++) {
            const float *r0 = dy + (size_t)(2 * iy) * 2 * w, *r1 = r0 + 2 * w;
            for (int ix = 0; ix < w; ix++)
                dx[(size_t)iy * w + ix] += r0[2 * ix] + r0[2 * ix + 1] + r1[2 * ix] + r1[2 * ix + 1];
        }
    }
}

/* Channel concat, residual add and per-channel broadcast add. */
#include <string.h>

#include "anomalyd/nn_layers.h"

void ad_concat_forward(float *out, const float *a, const float *b, int n, int ca, int cb, int hw)
{
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * (ca + cb) * hw;
        memcpy(o, a + (size_t)i * ca * hw, sizeof(float) * ca * hw);
        memcpy(o + (size_t)ca * hw, b + (size_t)i * cb * hw, sizeof(float) * cb * hw);
    }
}

void ad_concat_backward(float *da, float *db, const float *dout, int n, int ca, int cb, int hw)
{
    for (int i = 0; i < n; i++) {
        const float *d = dout + (size_t)i * (ca + cb) * hw;
        if (da) ad_add_backward(da + (size_t)i * ca * hw, d, (size_t)ca * hw);
        if (db) ad_add_backward(db + (size_t)i * cb * hw, d + (size_t)ca * hw, (size_t)cb * hw);
    }
}

void ad_add_forward(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void ad_add_backward(float *dx, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] += dout[i];
}

void ad_add_channel_forward(float *x, const float *v, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        float *xp = x + p * hw, add = v[p];
        for (int i = 0; i < hw; i++) xp[i] += add;
    }
}

void ad_add_channel_backward(float *dv, const float *dx, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const float *d = dx + p * hw;
        float acc = 0.0f;
        for (int i = 0; i < hw; i++) acc += d[i];
        dv[p] += acc;
    }
}

/* SiLU activation: x * sigmoid(x). */
#include <math.h>

#include "anomalyd/nn_layers.h"

void ad_silu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = in[i] / (1.0f + expf(-in[i]));
}

void ad_silu_backward(float *din, const float *dout, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-in[i]));
        din[i] += dout[i] * s * (1.0f + in[i] * (1.0f - s));
    }
}

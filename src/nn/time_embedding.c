/* Sinusoidal timestep embedding (Transformer / DDPM style). */
#include <math.h>

#include "anomalyd/nn_layers.h"

void ad_time_embedding(float *out, const float *t, int n, int dim)
{
    const int half = dim / 2;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * (double)k / (double)half);
            double a = (double)t[i] * f;
            out[(size_t)i * dim + k] = (float)sin(a);
            out[(size_t)i * dim + half + k] = (float)cos(a);
        }
}

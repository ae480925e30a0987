/* Fully connected layer, weights (OUT, IN) like torch.nn.Linear. Tiny in this
 * network (time embedding only), so plain loops. */
#include "anomalyd/nn_layers.h"

void ad_linear_forward(float *out, const float *in, const float *w, const float *b,
                       int n, int in_f, int out_f)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            const float *x = in + (size_t)i * in_f, *wr = w + (size_t)o * in_f;
            float acc = b ? b[o] : 0.0f;
            for (int k = 0; k < in_f; k++) acc += wr[k] * x[k];
            out[(size_t)i * out_f + o] = acc;
        }
}

void ad_linear_backward(float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, int n, int in_f, int out_f)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            float d = dout[(size_t)i * out_f + o];
            const float *x = in + (size_t)i * in_f, *wr = w + (size_t)o * in_f;
            if (db) db[o] += d;
            if (dw) {
                float *dwr = dw + (size_t)o * in_f;
                for (int k = 0; k < in_f; k++) dwr[k] += d * x[k];
            }
            if (din) {
                float *dx = din + (size_t)i * in_f;
                for (int k = 0; k < in_f; k++) dx[k] += d * wr[k];
            }
        }
}

/* GroupNorm over (C/G channels x HW) per sample, optionally fused with SiLU
 * so the normalized tensor is never written out: one read of the input for
 * the statistics, one read + one write for the affine + activation. */
#include <math.h>

#include "anomalyd/nn_layers.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

static void group_stats(float *mean, float *rstd, const float *x, size_t m)
{
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < m; i++) s += x[i];
    double mu = s / (double)m;
    for (size_t i = 0; i < m; i++) {
        double d = x[i] - mu;
        ss += d * d;
    }
    *mean = (float)mu;
    *rstd = (float)(1.0 / sqrt(ss / (double)m + AD_GN_EPS));
}

void ad_groupnorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta,
                          int n, int c, int hw, int groups, int silu)
{
    const int cg = c / groups;
    const size_t m = (size_t)cg * hw;
    for (int b = 0; b < n; b++)
        for (int g = 0; g < groups; g++) {
            size_t base = ((size_t)b * c + (size_t)g * cg) * hw;
            float mu, rs;
            group_stats(&mu, &rs, in + base, m);
            mean[b * groups + g] = mu;
            rstd[b * groups + g] = rs;
            for (int ci = 0; ci < cg; ci++) {
                int ch = g * cg + ci;
                float scale = rs * gamma[ch], shift = beta[ch] - mu * scale;
                const float *x = in + base + (size_t)ci * hw;
                float *y = out + base + (size_t)ci * hw;
                if (silu) {
                    for (int i = 0; i < hw; i++) {
                        float v = x[i] * scale + shift;
                        y[i] = v / (1.0f + expf(-v));
                    }
                } else {
                    for (int i = 0; i < hw; i++) y[i] = x[i] * scale + shift;
                }
            }
        }
}

void ad_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, const float *beta,
                           int n, int c, int hw, int groups, int silu)
{
    const int cg = c / groups;
    const size_t m = (size_t)cg * hw;
    for (int b = 0; b < n; b++)
        for (int g = 0; g < groups; g++) {
            size_t base = ((size_t)b * c + (size_t)g * cg) * hw;
            float mu = mean[b * groups + g], rs = rstd[b * groups + g];
            double sum_dxh = 0.0, sum_dxh_xh = 0.0;
            /* pass 1: per-channel sums of dy and dy*xhat (dy = grad before the affine) */
            for (int ci = 0; ci < cg; ci++) {
                int ch = g * cg + ci;
                const float *x = in + base + (size_t)ci * hw;
                const float *d = dout + base + (size_t)ci * hw;
                double sdy = 0.0, sdyx = 0.0;
                for (int i = 0; i < hw; i++) {
                    float xh = (x[i] - mu) * rs;
                    float dy = d[i];
                    if (silu) {
                        float y = xh * gamma[ch] + beta[ch];
                        float s = sigmoidf(y);
                        dy *= s * (1.0f + y * (1.0f - s));
                    }
                    sdy += dy;
                    sdyx += (double)dy * xh;
                }
                if (dgamma) dgamma[ch] += (float)sdyx;
                if (dbeta) dbeta[ch] += (float)sdy;
                sum_dxh += gamma[ch] * sdy;
                sum_dxh_xh += gamma[ch] * sdyx;
            }
            if (!din) continue;
            float mean_dxh = (float)(sum_dxh / (double)m);
            float mean_dxh_xh = (float)(sum_dxh_xh / (double)m);
            /* pass 2: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
            for (int ci = 0; ci < cg; ci++) {
                int ch = g * cg + ci;
                const float *x = in + base + (size_t)ci * hw;
                const float *d = dout + base + (size_t)ci * hw;
                float *dx = din + base + (size_t)ci * hw;
                for (int i = 0; i < hw; i++) {
                    float xh = (x[i] - mu) * rs;
                    float dy = d[i];
                    if (silu) {
                        float y = xh * gamma[ch] + beta[ch];
                        float s = sigmoidf(y);
                        dy *= s * (1.0f + y * (1.0f - s));
                    }
                    dx[i] += rs * (dy * gamma[ch] - mean_dxh - xh * mean_dxh_xh);
                }
            }
        }
}

void ad_groupnorm_forward_ref(float *out, float *mean, float *rstd, const float *in,
                              const float *gamma, const float *beta,
                              int n, int c, int hw, int groups, int silu)
{
    const int cg = c / groups;
    for (int b = 0; b < n; b++)
        for (int g = 0; g < groups; g++) {
            double s = 0.0, ss = 0.0;
            for (int ci = 0; ci < cg; ci++)
                for (int i = 0; i < hw; i++) s += in[((size_t)b * c + g * cg + ci) * hw + i];
            double mu = s / ((double)cg * hw);
            for (int ci = 0; ci < cg; ci++)
                for (int i = 0; i < hw; i++) {
                    double d = in[((size_t)b * c + g * cg + ci) * hw + i] - mu;
                    ss += d * d;
                }
            double rs = 1.0 / sqrt(ss / ((double)cg * hw) + AD_GN_EPS);
            mean[b * groups + g] = (float)mu;
            rstd[b * groups + g] = (float)rs;
            for (int ci = 0; ci < cg; ci++)
                for (int i = 0; i < hw; i++) {
                    size_t k = ((size_t)b * c + g * cg + ci) * hw + i;
                    double y = (in[k] - mu) * rs * gamma[g * cg + ci] + beta[g * cg + ci];
                    if (silu) y = y / (1.0 + exp(-y));
                    out[k] = (float)y;
                }
        }
}

/* GroupNorm over (C/G channels x HW) per sample, optionally fused with SiLU
 * so the normalized tensor is never written out: one read of the input for
 * the statistics, one read + one write for the affine + activation. */
#pragma GCC diagnostic ignored "-Wpsabi"   /* see vmath.h */
#include <math.h>
#include <omp.h>

#include "anomalyd/nn_layers.h"
#include "vmath.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Sums of a plane in float vectors, folded into double every 1024 values so
 * the statistics keep double-like accuracy at vector speed. */
static double plane_sum(const float *x, int hw)
{
    double total = 0.0;
    int i = 0;
    while (i + 16 <= hw) {
        int end = i + 1024 < hw ? i + 1024 : hw;
        v16 acc = {0};
        for (; i + 16 <= end; i += 16) acc += v16_load(x + i);
        total += v16_sum(acc);
    }
    for (; i < hw; i++) total += x[i];
    return total;
}

static double plane_sqdev(const float *x, int hw, float mu)
{
    double total = 0.0;
    int i = 0;
    while (i + 16 <= hw) {
        int end = i + 1024 < hw ? i + 1024 : hw;
        v16 acc = {0};
        for (; i + 16 <= end; i += 16) {
            v16 d = v16_load(x + i) - mu;
            acc += d * d;
        }
        total += v16_sum(acc);
    }
    for (; i < hw; i++) total += (double)(x[i] - mu) * (x[i] - mu);
    return total;
}

void ad_groupnorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta,
                          int n, int c, int hw, int groups, int silu)
{
    const int cg = c / groups;
    const double m = (double)cg * hw;
    /* groups are independent: spread (sample, group) pairs over threads when
     * there is enough work to pay for the fork */
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * hw >= 65536)
    for (int b = 0; b < n; b++)
        for (int g = 0; g < groups; g++) {
            size_t base = ((size_t)b * c + (size_t)g * cg) * hw;
            double s = 0.0, ss = 0.0;
            for (int ci = 0; ci < cg; ci++) s += plane_sum(in + base + (size_t)ci * hw, hw);
            float mu = (float)(s / m);
            for (int ci = 0; ci < cg; ci++) ss += plane_sqdev(in + base + (size_t)ci * hw, hw, mu);
            float rs = (float)(1.0 / sqrt(ss / m + AD_GN_EPS));
            mean[b * groups + g] = mu;
            rstd[b * groups + g] = rs;
            for (int ci = 0; ci < cg; ci++) {
                int ch = g * cg + ci;
                float scale = rs * gamma[ch], shift = beta[ch] - mu * scale;
                const float *x = in + base + (size_t)ci * hw;
                float *y = out + base + (size_t)ci * hw;
                int i = 0;
                if (silu) {
                    for (; i + 16 <= hw; i += 16) v16_store(y + i, v16_silu(v16_load(x + i) * scale + shift));
                    for (; i < hw; i++) {
                        float v = x[i] * scale + shift;
                        y[i] = v / (1.0f + expf(-v));
                    }
                } else {
                    for (; i + 16 <= hw; i += 16) v16_store(y + i, v16_load(x + i) * scale + shift);
                    for (; i < hw; i++) y[i] = x[i] * scale + shift;
                }
            }
        }
}

/* d/dy silu(y) = s (1 + y (1 - s)), s = sigmoid(y) */
static inline __attribute__((always_inline)) v16 v16_dsilu(v16 y)
{
    v16 s = 1.0f / (1.0f + v16_exp(-y));
    return s * (1.0f + y * (1.0f - s));
}

void ad_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, const float *beta,
                           int n, int c, int hw, int groups, int silu)
{
    const int cg = c / groups;
    const size_t m = (size_t)cg * hw;
    /* parallel over groups only: samples of one group add into the same
     * dgamma/dbeta entries */
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= 65536)
    for (int g = 0; g < groups; g++)
        for (int b = 0; b < n; b++) {
            size_t base = ((size_t)b * c + (size_t)g * cg) * hw;
            float mu = mean[b * groups + g], rs = rstd[b * groups + g];
            double sum_dxh = 0.0, sum_dxh_xh = 0.0;
            /* pass 1: per-channel sums of dy and dy*xhat (dy = grad before the affine) */
            for (int ci = 0; ci < cg; ci++) {
                int ch = g * cg + ci;
                const float ga = gamma[ch], be = beta[ch];
                const float *x = in + base + (size_t)ci * hw;
                const float *d = dout + base + (size_t)ci * hw;
                double sdy = 0.0, sdyx = 0.0;
                int i = 0;
                while (i + 16 <= hw) {
                    int end = i + 1024 < hw ? i + 1024 : hw;
                    v16 a1 = {0}, a2 = {0};
                    for (; i + 16 <= end; i += 16) {
                        v16 xh = (v16_load(x + i) - mu) * rs, dy = v16_load(d + i);
                        if (silu) dy *= v16_dsilu(xh * ga + be);
                        a1 += dy;
                        a2 += dy * xh;
                    }
                    sdy += v16_sum(a1);
                    sdyx += v16_sum(a2);
                }
                for (; i < hw; i++) {
                    float xh = (x[i] - mu) * rs, dy = d[i];
                    if (silu) {
                        float y = xh * ga + be, s = sigmoidf(y);
                        dy *= s * (1.0f + y * (1.0f - s));
                    }
                    sdy += dy;
                    sdyx += (double)dy * xh;
                }
                if (dgamma) dgamma[ch] += (float)sdyx;
                if (dbeta) dbeta[ch] += (float)sdy;
                sum_dxh += ga * sdy;
                sum_dxh_xh += ga * sdyx;
            }
            if (!din) continue;
            const float mean_dxh = (float)(sum_dxh / (double)m);
            const float mean_dxh_xh = (float)(sum_dxh_xh / (double)m);
            /* pass 2: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
            for (int ci = 0; ci < cg; ci++) {
                int ch = g * cg + ci;
                const float ga = gamma[ch], be = beta[ch];
                const float *x = in + base + (size_t)ci * hw;
                const float *d = dout + base + (size_t)ci * hw;
                float *dx = din + base + (size_t)ci * hw;
                int i = 0;
                for (; i + 16 <= hw; i += 16) {
                    v16 xh = (v16_load(x + i) - mu) * rs, dy = v16_load(d + i);
                    if (silu) dy *= v16_dsilu(xh * ga + be);
                    v16_store(dx + i, v16_load(dx + i) + rs * (dy * ga - mean_dxh - xh * mean_dxh_xh));
                }
                for (; i < hw; i++) {
                    float xh = (x[i] - mu) * rs, dy = d[i];
                    if (silu) {
                        float y = xh * ga + be, s = sigmoidf(y);
                        dy *= s * (1.0f + y * (1.0f - s));
                    }
                    dx[i] += rs * (dy * ga - mean_dxh - xh * mean_dxh_xh);
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

/* 2D convolution, square kernel, stride 1 or 2, zero padding.
 * Fast path: 1x1 stride-1 convs are one sgemm per image; others unfold a band
 * of output rows (im2col) into the workspace and call sgemm per band, so the
 * workspace stays a few MB even at 256x256 with 96 channels. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "anomalyd/nn_layers.h"
#include "anomalyd/unet.h"

/* Floats of unfolded columns per band: bounded so a band stays cache-friendly. */
#define CONV_BAND_FLOATS (1u << 20)

static int conv_is_pointwise(const ad_conv_shape *s)
{
    return s->k == 1 && s->stride == 1 && s->pad == 0;
}

/* Output rows per band for this shape (at least one). */
static int conv_band_rows(const ad_conv_shape *s)
{
    int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    size_t per_row = (size_t)s->c * s->k * s->k * wo;
    int rows = (int)(CONV_BAND_FLOATS / per_row);
    if (rows < 1) rows = 1;
    if (rows > ho) rows = ho;
    return rows;
}

size_t ad_conv2d_workspace(const ad_conv_shape *s)
{
    if (conv_is_pointwise(s)) return 0;
    int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    /* columns + their gradient in backward */
    return 2 * (size_t)s->c * s->k * s->k * conv_band_rows(s) * wo;
}

/* col is (C*k*k, rows*Wo) for output rows [oy0, oy0+rows) of one image. */
static void im2col_band(float *col, const float *in, const ad_conv_shape *s, int oy0, int rows, int wo)
{
    const int k = s->k, st = s->stride, pad = s->pad, h = s->h, w = s->w;
    const size_t p = (size_t)rows * wo;
    for (int c = 0; c < s->c; c++) {
        const float *ic = in + (size_t)c * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *dst = col + ((size_t)(c * k + ky) * k + kx) * p;
                for (int r = 0; r < rows; r++) {
                    int iy = (oy0 + r) * st - pad + ky;
                    float *d = dst + (size_t)r * wo;
                    if (iy < 0 || iy >= h) {
                        memset(d, 0, sizeof(float) * wo);
                        continue;
                    }
                    const float *row = ic + (size_t)iy * w;
                    if (st == 1) {
                        int ox = 0, ix = kx - pad;
                        for (; ox < wo && ix < 0; ox++, ix++) d[ox] = 0.0f;
                        int n = wo - ox;
                        if (ix + n > w) n = w - ix;
                        if (n > 0) {
                            memcpy(d + ox, row + ix, sizeof(float) * n);
                            ox += n;
                        }
                        for (; ox < wo; ox++) d[ox] = 0.0f;
                    } else {
                        for (int ox = 0; ox < wo; ox++) {
                            int ix = ox * st - pad + kx;
                            d[ox] = (ix >= 0 && ix < w) ? row[ix] : 0.0f;
                        }
                    }
                }
            }
        }
    }
}

/* din += fold(col): the adjoint of im2col_band. */
static void col2im_band(float *din, const float *col, const ad_conv_shape *s, int oy0, int rows, int wo)
{
    const int k = s->k, st = s->stride, pad = s->pad, h = s->h, w = s->w;
    const size_t p = (size_t)rows * wo;
    for (int c = 0; c < s->c; c++) {
        float *dc = din + (size_t)c * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *src = col + ((size_t)(c * k + ky) * k + kx) * p;
                /* the outputs ox whose input column ox * st - pad + kx is
                 * inside the row, so the loops below need no test and
                 * vectorize (stride 1: a plain contiguous add) */
                const int off = kx - pad;
                const int lo = off >= 0 ? 0 : (-off + st - 1) / st;
                const int last = w - 1 - off; /* the last ox * st inside the row */
                int hi = last < 0 ? 0 : last / st + 1;
                if (hi > wo) hi = wo;
                for (int r = 0; r < rows; r++) {
                    int iy = (oy0 + r) * st - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    const float *restrict sr = src + (size_t)r * wo;
                    float *restrict row = dc + (size_t)iy * w;
                    if (st == 1)
                        for (int ox = lo; ox < hi; ox++) row[ox + off] += sr[ox];
                    else
                        for (int ox = lo; ox < hi; ox++) row[ox * st + off] += sr[ox];
                }
            }
        }
    }
}

/* [lo, hi) of n items for thread t of nt, in multiples of `align` */
static void split(int n, int align, int t, int nt, int *lo, int *hi)
{
    int units = (n + align - 1) / align;
    int a = (int)((long)units * t / nt), b = (int)((long)units * (t + 1) / nt);
    *lo = a * align < n ? a * align : n;
    *hi = b * align < n ? b * align : n;
}

/* All threading is OpenMP: sgemm runs single-threaded (ad_nn_set_threads
 * keeps OpenBLAS at one thread) on each thread's share of the product, so
 * OpenBLAS's own pool never competes with OpenMP's for the cores. */
void ad_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const ad_conv_shape *s, float *work)
{
    const int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    const int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    const size_t hwo = (size_t)ho * wo, hwi = (size_t)s->h * s->w;
    const int kk = s->c * s->k * s->k;
    const int band = conv_band_rows(s);
    const int nt = ad_nn_get_threads();
#pragma omp parallel num_threads(nt) if ((size_t)s->n * s->oc * hwo * kk >= 1000000)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        for (int n = 0; n < s->n; n++) {
            const float *x = in + (size_t)n * s->c * hwi;
            float *y = out + (size_t)n * s->oc * hwo;
            if (conv_is_pointwise(s)) {
                int p0, p1;
                split((int)hwo, 16, t, T, &p0, &p1);
                for (int o = 0; o < s->oc; o++)
                    for (int i = p0; i < p1; i++) y[(size_t)o * hwo + i] = b ? b[o] : 0.0f;
                if (p1 > p0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, p1 - p0, kk, 1.0f, w, kk,
                                x + p0, (int)hwi, 1.0f, y + p0, (int)hwo);
                continue;
            }
            for (int oy0 = 0; oy0 < ho; oy0 += band) {
                int rows = ho - oy0 < band ? ho - oy0 : band;
                int p = rows * wo, c0, c1, p0, p1;
                ad_conv_shape part = *s;
                split(s->c, 1, t, T, &c0, &c1);
                part.c = c1 - c0;
                if (c1 > c0)
                    im2col_band(work + (size_t)c0 * s->k * s->k * p, x + (size_t)c0 * hwi, &part, oy0, rows, wo);
#pragma omp barrier
                split(p, 16, t, T, &p0, &p1);
                float *yb = y + (size_t)oy0 * wo;
                for (int o = 0; o < s->oc; o++)
                    for (int i = p0; i < p1; i++) yb[(size_t)o * hwo + i] = b ? b[o] : 0.0f;
                if (p1 > p0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, p1 - p0, kk, 1.0f, w, kk,
                                work + p0, p, 1.0f, yb + p0, (int)hwo);
#pragma omp barrier
            }
        }
    }
}

void ad_conv2d_backward(float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const ad_conv_shape *s, float *work)
{
    const int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    const int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    const size_t hwo = (size_t)ho * wo, hwi = (size_t)s->h * s->w;
    const int k2 = s->k * s->k, kk = s->c * k2;
    const int band = conv_band_rows(s);
    const int nt = ad_nn_get_threads();
    float *col = work, *dcol = work + (size_t)kk * band * wo;
#pragma omp parallel num_threads(nt) if ((size_t)s->n * s->oc * hwo * kk >= 1000000)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        int o0, o1, c0, c1;
        split(s->oc, 1, t, T, &o0, &o1);   /* this thread's rows of dw and db */
        split(s->c, 1, t, T, &c0, &c1);    /* this thread's input channels of din */
        for (int n = 0; n < s->n; n++) {
            const float *x = in + (size_t)n * s->c * hwi;
            const float *dy = dout + (size_t)n * s->oc * hwo;
            float *dx = din ? din + (size_t)n * s->c * hwi : NULL;
            if (db)
                for (int o = o0; o < o1; o++) {
                    const float *d = dy + (size_t)o * hwo;
                    float acc = 0.0f;
                    for (size_t i = 0; i < hwo; i++) acc += d[i];
                    db[o] += acc;
                }
            if (conv_is_pointwise(s)) {
                if (dw && o1 > o0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o1 - o0, kk, (int)hwo, 1.0f,
                                dy + (size_t)o0 * hwo, (int)hwo, x, (int)hwi, 1.0f, dw + (size_t)o0 * kk, kk);
                if (dx && c1 > c0)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, (int)hwo, s->oc, 1.0f,
                                w + c0, kk, dy, (int)hwo, 1.0f, dx + (size_t)c0 * hwi, (int)hwi);
                continue;
            }
            for (int oy0 = 0; oy0 < ho; oy0 += band) {
                int rows = ho - oy0 < band ? ho - oy0 : band;
                int p = rows * wo;
                const float *dyb = dy + (size_t)oy0 * wo;
                ad_conv_shape part = *s;
                part.c = c1 - c0;
                if (dw) {
                    if (c1 > c0) im2col_band(col + (size_t)c0 * k2 * p, x + (size_t)c0 * hwi, &part, oy0, rows, wo);
#pragma omp barrier
                    if (o1 > o0)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o1 - o0, kk, p, 1.0f,
                                    dyb + (size_t)o0 * hwo, (int)hwo, col, p, 1.0f, dw + (size_t)o0 * kk, kk);
                }
                if (dx && c1 > c0) {
                    float *dc = dcol + (size_t)c0 * k2 * p;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (c1 - c0) * k2, p, s->oc, 1.0f,
                                w + (size_t)c0 * k2, kk, dyb, (int)hwo, 0.0f, dc, p);
                    col2im_band(dx + (size_t)c0 * hwi, dc, &part, oy0, rows, wo);
                }
#pragma omp barrier
            }
        }
    }
}

void ad_conv2d_forward_ref(float *out, const float *in, const float *w, const float *b,
                           const ad_conv_shape *s)
{
    const int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    const int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->oc; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < s->c; c++)
                        for (int ky = 0; ky < s->k; ky++)
                            for (int kx = 0; kx < s->k; kx++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                                acc += (double)in[(((size_t)n * s->c + c) * s->h + iy) * s->w + ix] *
                                       w[(((size_t)o * s->c + c) * s->k + ky) * s->k + kx];
                            }
                    out[(((size_t)n * s->oc + o) * ho + oy) * wo + ox] = (float)acc;
                }
}

void ad_conv2d_backward_ref(float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, const ad_conv_shape *s)
{
    const int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    const int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->oc; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    float d = dout[(((size_t)n * s->oc + o) * ho + oy) * wo + ox];
                    if (db) db[o] += d;
                    for (int c = 0; c < s->c; c++)
                        for (int ky = 0; ky < s->k; ky++)
                            for (int kx = 0; kx < s->k; kx++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                                size_t ii = (((size_t)n * s->c + c) * s->h + iy) * s->w + ix;
                                size_t wi = (((size_t)o * s->c + c) * s->k + ky) * s->k + kx;
                                if (dw) dw[wi] += d * in[ii];
                                if (din) din[ii] += d * w[wi];
                            }
                }
}

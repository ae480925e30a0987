/* 2D convolution, square kernel, stride 1 or 2, zero padding.
 * Fast path: 1x1 stride-1 convs are one sgemm per image; others unfold a band
 * of output rows (im2col) into the workspace and call sgemm per band, so the
 * workspace stays a few MB even at 256x256 with 96 channels. */
#include <cblas.h>
#include <string.h>

#include "anomalyd/nn_layers.h"

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
                for (int r = 0; r < rows; r++) {
                    int iy = (oy0 + r) * st - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    const float *sr = src + (size_t)r * wo;
                    float *row = dc + (size_t)iy * w;
                    for (int ox = 0; ox < wo; ox++) {
                        int ix = ox * st - pad + kx;
                        if (ix >= 0 && ix < w) row[ix] += sr[ox];
                    }
                }
            }
        }
    }
}

void ad_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const ad_conv_shape *s, float *work)
{
    const int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    const int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    const size_t hwo = (size_t)ho * wo, hwi = (size_t)s->h * s->w;
    const int kk = s->c * s->k * s->k;
    for (int n = 0; n < s->n; n++) {
        const float *x = in + (size_t)n * s->c * hwi;
        float *y = out + (size_t)n * s->oc * hwo;
        for (int o = 0; o < s->oc; o++) {
            float bv = b ? b[o] : 0.0f;
            float *yo = y + (size_t)o * hwo;
            for (size_t i = 0; i < hwo; i++) yo[i] = bv;
        }
        if (conv_is_pointwise(s)) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, (int)hwo, kk,
                        1.0f, w, kk, x, (int)hwi, 1.0f, y, (int)hwo);
            continue;
        }
        const int band = conv_band_rows(s);
        for (int oy0 = 0; oy0 < ho; oy0 += band) {
            int rows = ho - oy0 < band ? ho - oy0 : band;
            int p = rows * wo;
            im2col_band(work, x, s, oy0, rows, wo);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, p, kk,
                        1.0f, w, kk, work, p, 1.0f, y + (size_t)oy0 * wo, (int)hwo);
        }
    }
}

void ad_conv2d_backward(float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const ad_conv_shape *s, float *work)
{
    const int ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    const int wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    const size_t hwo = (size_t)ho * wo, hwi = (size_t)s->h * s->w;
    const int kk = s->c * s->k * s->k;
    for (int n = 0; n < s->n; n++) {
        const float *x = in + (size_t)n * s->c * hwi;
        const float *dy = dout + (size_t)n * s->oc * hwo;
        if (db) {
            for (int o = 0; o < s->oc; o++) {
                const float *d = dy + (size_t)o * hwo;
                float acc = 0.0f;
                for (size_t i = 0; i < hwo; i++) acc += d[i];
                db[o] += acc;
            }
        }
        if (conv_is_pointwise(s)) {
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, kk, (int)hwo,
                            1.0f, dy, (int)hwo, x, (int)hwi, 1.0f, dw, kk);
            if (din)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, (int)hwo, s->oc,
                            1.0f, w, kk, dy, (int)hwo, 1.0f, din + (size_t)n * s->c * hwi, (int)hwi);
            continue;
        }
        const int band = conv_band_rows(s);
        float *col = work;
        float *dcol = work + (size_t)kk * band * wo;
        for (int oy0 = 0; oy0 < ho; oy0 += band) {
            int rows = ho - oy0 < band ? ho - oy0 : band;
            int p = rows * wo;
            const float *dyb = dy + (size_t)oy0 * wo;
            if (dw) {
                im2col_band(col, x, s, oy0, rows, wo);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, kk, p,
                            1.0f, dyb, (int)hwo, col, p, 1.0f, dw, kk);
            }
            if (din) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, p, s->oc,
                            1.0f, w, kk, dyb, (int)hwo, 0.0f, dcol, p);
                col2im_band(din + (size_t)n * s->c * hwi, dcol, s, oy0, rows, wo);
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

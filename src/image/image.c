/* 8-bit image buffers, channel conversion, crop and resize. */
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ad_image_alloc(ad_image *im, int w, int h, int c)
{
    memset(im, 0, sizeof *im);
    if ((c != 1 && c != 3) || !ad_image_dims_ok(w, h)) return -1;
    im->px = ad_xcalloc((size_t)w * (size_t)h, (size_t)c);
    im->w = w;
    im->h = h;
    im->c = c;
    return 0;
}

void ad_image_free(ad_image *im)
{
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

int ad_image_copy(ad_image *dst, const ad_image *src)
{
    if (ad_image_alloc(dst, src->w, src->h, src->c) != 0) return -1;
    memcpy(dst->px, src->px, (size_t)src->w * src->h * src->c);
    return 0;
}

void ad_rgb_to_gray(uint8_t *gray, const uint8_t *rgb, size_t n)
{
    for (size_t i = 0; i < n; i++, rgb += 3)
        gray[i] = (uint8_t)((299u * rgb[0] + 587u * rgb[1] + 114u * rgb[2] + 500u) / 1000u);
}

int ad_image_convert(ad_image *dst, const ad_image *src, int c)
{
    if (c == src->c) return ad_image_copy(dst, src);
    if (ad_image_alloc(dst, src->w, src->h, c) != 0) return -1;
    size_t n = (size_t)src->w * src->h;
    if (c == 1) {
        ad_rgb_to_gray(dst->px, src->px, n);
    } else {
        for (size_t i = 0; i < n; i++)
            dst->px[3 * i] = dst->px[3 * i + 1] = dst->px[3 * i + 2] = src->px[i];
    }
    return 0;
}

int ad_image_crop(ad_image *dst, const ad_image *src, int x, int y, int w, int h,
                  char *err, size_t errlen)
{
    memset(dst, 0, sizeof *dst);
    if (w < 1 || h < 1 || x < 0 || y < 0 || x > src->w - w || y > src->h - h)
        return ad_err(err, errlen,
                      "crop %dx%d at (%d,%d) does not lie inside the %dx%d image", w, h, x,
                      y, src->w, src->h);
    if (ad_image_alloc(dst, w, h, src->c) != 0)
        return ad_err(err, errlen, "crop %dx%d: invalid image", w, h);
    size_t row = (size_t)w * src->c;
    for (int r = 0; r < h; r++)
        memcpy(dst->px + (size_t)r * row,
               src->px + ((size_t)(y + r) * src->w + (size_t)x) * src->c, row);
    return 0;
}

/* One axis of a separable resampler: output i = sum over taps of
 * weight * input[first[i] + k], k < count[i]. */
typedef struct axis_taps {
    int *first, *count;
    float *weight;   /* max_taps per output, row-major */
    int max_taps;
} axis_taps;

static void axis_taps_free(axis_taps *t)
{
    free(t->first);
    free(t->count);
    free(t->weight);
}

static void axis_taps_build(axis_taps *t, int n_in, int n_out)
{
    t->first = ad_xcalloc((size_t)n_out, sizeof(int));
    t->count = ad_xcalloc((size_t)n_out, sizeof(int));
    if (n_out < n_in) {
        /* Area averaging: output i covers input [i*s, (i+1)*s), s = n_in/n_out;
         * each input pixel weighs by its overlap with that interval. */
        double s = (double)n_in / n_out;
        t->max_taps = (int)ceil(s) + 1;
        t->weight = ad_xcalloc((size_t)n_out * t->max_taps, sizeof(float));
        for (int i = 0; i < n_out; i++) {
            double a = i * s, b = (i + 1) * s;
            int j0 = (int)floor(a), j1 = (int)ceil(b);
            if (j1 > n_in) j1 = n_in;
            t->first[i] = j0;
            int k = 0;
            for (int j = j0; j < j1 && k < t->max_taps; j++, k++) {
                double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
                t->weight[(size_t)i * t->max_taps + k] = (float)((hi - lo) / s);
            }
            t->count[i] = k;
        }
    } else {
        /* Bilinear with pixel centres aligned: x = (i + 0.5) n_in/n_out - 0.5,
         * clamped to the first and last input pixel. */
        t->max_taps = 2;
        t->weight = ad_xcalloc((size_t)n_out * 2, sizeof(float));
        double s = (double)n_in / n_out;
        for (int i = 0; i < n_out; i++) {
            double x = (i + 0.5) * s - 0.5;
            if (x < 0) x = 0;
            if (x > n_in - 1) x = n_in - 1;
            int j = (int)floor(x);
            if (j > n_in - 2) j = n_in - 2 < 0 ? 0 : n_in - 2;
            double f = x - j;
            t->first[i] = j;
            t->count[i] = n_in > 1 ? 2 : 1;
            t->weight[(size_t)i * 2] = (float)(1.0 - f);
            t->weight[(size_t)i * 2 + 1] = (float)f;
            if (n_in == 1) t->weight[(size_t)i * 2] = 1.0f;
        }
    }
}

static inline uint8_t clamp_round_u8(float v)
{
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)(v + 0.5f);
}

int ad_image_resize(ad_image *dst, const ad_image *src, int w, int h)
{
    memset(dst, 0, sizeof *dst);
    if (!src->px || !ad_image_dims_ok(src->w, src->h)) return -1;
    if (w == src->w && h == src->h) return ad_image_copy(dst, src);
    if (ad_image_alloc(dst, w, h, src->c) != 0) return -1;
    int c = src->c;
    axis_taps tx, ty;
    axis_taps_build(&tx, src->w, w);
    axis_taps_build(&ty, src->h, h);
    /* Horizontal pass into float rows (src->h x w x c), then vertical. */
    float *mid = ad_xmalloc(sizeof(float) * (size_t)src->h * w * c);
    for (int y = 0; y < src->h; y++) {
        const uint8_t *in = src->px + (size_t)y * src->w * c;
        float *o = mid + (size_t)y * w * c;
        for (int x = 0; x < w; x++) {
            const float *wt = tx.weight + (size_t)x * tx.max_taps;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int k = 0; k < tx.count[x]; k++)
                    acc += wt[k] * in[(size_t)(tx.first[x] + k) * c + ch];
                o[(size_t)x * c + ch] = acc;
            }
        }
    }
    size_t row = (size_t)w * c;
    float *acc = ad_xmalloc(sizeof(float) * row);
    for (int y = 0; y < h; y++) {
        memset(acc, 0, sizeof(float) * row);
        const float *wt = ty.weight + (size_t)y * ty.max_taps;
        for (int k = 0; k < ty.count[y]; k++) {
            const float *in = mid + (size_t)(ty.first[y] + k) * row;
            float wk = wt[k];
            for (size_t i = 0; i < row; i++) acc[i] += wk * in[i];
        }
        uint8_t *o = dst->px + (size_t)y * row;
        for (size_t i = 0; i < row; i++) o[i] = clamp_round_u8(acc[i]);
    }
    free(acc);
    free(mid);
    axis_taps_free(&tx);
    axis_taps_free(&ty);
    return 0;
}

/* Float conversion, Gaussian blur, colour map and heat-map overlay. */
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ad_image_to_float(float *out, const ad_image *im)
{
    size_t n = (size_t)im->w * im->h;
    for (int ch = 0; ch < im->c; ch++) {
        float *o = out + (size_t)ch * n;
        const uint8_t *p = im->px + ch;
        for (size_t i = 0; i < n; i++) o[i] = p[i * im->c] * (2.0f / 255.0f) - 1.0f;
    }
}

void ad_image_from_float(ad_image *im, const float *in)
{
    size_t n = (size_t)im->w * im->h;
    for (int ch = 0; ch < im->c; ch++) {
        const float *s = in + (size_t)ch * n;
        uint8_t *p = im->px + ch;
        for (size_t i = 0; i < n; i++) {
            float v = (s[i] + 1.0f) * 127.5f;
            p[i * im->c] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)(v + 0.5f);
        }
    }
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void ad_blur_gaussian(float *out, const float *in, float *tmp, int w, int h, float sigma)
{
    size_t n = (size_t)w * h;
    if (!(sigma > 0.0f)) {
        if (out != in) memmove(out, in, sizeof(float) * n);
        return;
    }
    int r = (int)ceilf(3.0f * sigma);
    float *k = ad_xmalloc(sizeof(float) * (size_t)(2 * r + 1));
    double sum = 0.0;
    for (int j = -r; j <= r; j++) sum += exp(-(double)j * j / (2.0 * (double)sigma * sigma));
    for (int j = -r; j <= r; j++)
        k[j + r] = (float)(exp(-(double)j * j / (2.0 * (double)sigma * sigma)) / sum);

    /* Horizontal: in -> tmp, through a copy of the row padded with its end
     * values, taps outer and pixels inner so the inner loop vectorizes. */
    float *pad = ad_xmalloc(sizeof(float) * ((size_t)w + 2 * (size_t)r));
    for (int y = 0; y < h; y++) {
        const float *row = in + (size_t)y * w;
        float *o = tmp + (size_t)y * w;
        for (int j = 0; j < r; j++) {
            pad[j] = row[0];
            pad[r + w + j] = row[w - 1];
        }
        memcpy(pad + r, row, sizeof(float) * (size_t)w);
        for (int x = 0; x < w; x++) o[x] = 0.0f;
        for (int j = 0; j <= 2 * r; j++) {
            const float *p = pad + j;
            float kj = k[j];
            for (int x = 0; x < w; x++) o[x] += kj * p[x];
        }
    }
    free(pad);
    /* Vertical: tmp -> out, a row at a time (reads only tmp, so out may be in). */
    for (int y = 0; y < h; y++) {
        float *o = out + (size_t)y * w;
        for (int x = 0; x < w; x++) o[x] = 0.0f;
        for (int j = -r; j <= r; j++) {
            const float *src = tmp + (size_t)clampi(y + j, 0, h - 1) * w;
            float kj = k[j + r];
            for (int x = 0; x < w; x++) o[x] += kj * src[x];
        }
    }
    free(k);
}

/* Nine stops from dark blue-violet through teal and green to yellow. Chosen
 * so luma (BT.601) rises steadily, 35 -> 214, and hue turns one way: the
 * property that makes viridis read as "more" without a legend. */
static const uint8_t colormap_stops[9][3] = {
    {48, 18, 84},   {62, 38, 122},  {58, 72, 140},  {44, 104, 142}, {34, 134, 138},
    {42, 162, 122}, {92, 190, 92},  {170, 214, 54}, {250, 230, 40},
};

void ad_colormap(float v, uint8_t rgb[3])
{
    if (!(v > 0.0f)) v = 0.0f;   /* also NaN */
    if (v > 1.0f) v = 1.0f;
    float pos = v * 8.0f;
    int i = (int)pos;
    if (i > 7) i = 7;
    float f = pos - (float)i;
    for (int ch = 0; ch < 3; ch++) {
        float a = colormap_stops[i][ch], b = colormap_stops[i + 1][ch];
        rgb[ch] = (uint8_t)(a + (b - a) * f + 0.5f);
    }
}

int ad_heatmap_overlay(ad_image *dst, const ad_image *frame, const float *map,
                       float lo, float hi, float alpha)
{
    memset(dst, 0, sizeof *dst);
    if (!frame->px || (frame->c != 1 && frame->c != 3) || !(alpha >= 0.0f && alpha <= 1.0f))
        return -1;
    if (ad_image_alloc(dst, frame->w, frame->h, 3) != 0) return -1;
    size_t n = (size_t)frame->w * frame->h;
    float scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float v = hi > lo ? (map[i] - lo) * scale : (map[i] > lo ? 1.0f : 0.0f);
        uint8_t col[3];
        ad_colormap(v, col);
        for (int ch = 0; ch < 3; ch++) {
            float base = frame->px[i * frame->c + (frame->c == 3 ? ch : 0)];
            float o = (1.0f - alpha) * base + alpha * col[ch];
            dst->px[3 * i + ch] = (uint8_t)(o + 0.5f);
        }
    }
    return 0;
}

/* Synthetic defects for training the learned anomaly head.
 *
 * A sample is a mask shape (blobs from thresholded value noise inside a random
 * ellipse, a thin scratch, or a jagged crack) and a fill (another good image
 * flipped or rotated, an intensity shift, a contrast change, a blur, or a
 * procedural texture), blended with a random opacity over soft mask edges.
 * The target mask is the hard mask: where the blend weight is at least half.
 *
 * The fine defects (opts.fine, those of train.head_detail) differ in three
 * ways: lines are drawn by how much of each pixel they cover, down to a
 * third of a pixel wide at 128x128 (the mask: the pixels covered at least
 * LINE_MASK), cracks run from straight to jagged and up to 0.9 of the side,
 * and every defect may lie anywhere in the image, edges included. */
#include "anomalyd/synth.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "anomalyd/image.h"

/* A line's pixel is part of the defect's mask when the line covers at
 * least this much of it. */
static const float LINE_MASK = 0.3f;

void ad_synth_default_opts(ad_synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->p_clean = 0.3f;
    o->p_shape[AD_SYNTH_BLOB] = 0.6f;
    o->p_shape[AD_SYNTH_SCRATCH] = 0.2f;
    o->p_shape[AD_SYNTH_CRACK] = 0.2f;
    for (int i = 0; i < AD_SYNTH_FILL_COUNT; i++) o->p_fill[i] = 1.0f;
    o->min_opacity = 0.2f;
    o->max_opacity = 1.0f;
}

size_t ad_synth_scratch_floats(int c, int h, int w)
{
    /* soft mask, noise plane, fill image, blur temp */
    return (size_t)h * w * 3 + (size_t)c * h * w;
}

static int pick(ad_rng *rng, const float *odds, int n)
{
    float total = 0;
    for (int i = 0; i < n; i++) total += odds[i] > 0 ? odds[i] : 0;
    if (total <= 0) return 0;
    float u = ad_rng_uniform(rng) * total;
    for (int i = 0; i < n; i++) {
        float p = odds[i] > 0 ? odds[i] : 0;
        if (u < p) return i;
        u -= p;
    }
    return n - 1;
}

static float uniform_in(ad_rng *rng, float lo, float hi)
{
    return lo + (hi - lo) * ad_rng_uniform(rng);
}

static float smooth(float t) { return t * t * (3.0f - 2.0f * t); }

/* Adds amplitude * value noise with cells of `cell` pixels to plane (h, w). */
static void add_value_noise(float *plane, int h, int w, float cell, float amplitude, ad_rng *rng)
{
    enum { MAXG = 130 };
    int gh = (int)(h / cell) + 2, gw = (int)(w / cell) + 2;
    if (gh > MAXG) gh = MAXG;
    if (gw > MAXG) gw = MAXG;
    float grid[MAXG * MAXG];
    for (int i = 0; i < gh * gw; i++) grid[i] = ad_rng_uniform(rng);
    for (int y = 0; y < h; y++) {
        float gy = y / cell;
        int y0 = (int)gy;
        if (y0 > gh - 2) y0 = gh - 2;
        float ty = smooth(gy - y0 > 1 ? 1 : gy - y0);
        for (int x = 0; x < w; x++) {
            float gx = x / cell;
            int x0 = (int)gx;
            if (x0 > gw - 2) x0 = gw - 2;
            float tx = smooth(gx - x0 > 1 ? 1 : gx - x0);
            float a = grid[y0 * gw + x0], b = grid[y0 * gw + x0 + 1];
            float c = grid[(y0 + 1) * gw + x0], d = grid[(y0 + 1) * gw + x0 + 1];
            float top = a + (b - a) * tx, bot = c + (d - c) * tx;
            plane[y * w + x] += amplitude * (top + (bot - top) * ty);
        }
    }
}

/* Where a defect is placed along one side, as a share of it: 10-90%, or
 * for the fine defects anywhere, so that they also break into the edges. */
static float position(ad_rng *rng, bool fine)
{
    return fine ? uniform_in(rng, 0.0f, 1.0f) : uniform_in(rng, 0.1f, 0.9f);
}

/* Blobs: three octaves of value noise with a lattice of 2 to 16 cells
 * across the image, stretched to [0, 1] and thresholded at 0.2-0.6, kept
 * inside a random ellipse of 8-40% of the side so the defect is local. Low
 * thresholds give solid patches, high ones scattered spots. The ellipse's
 * centre: position(). */
static void mask_blob(float *mask, float *noise, int h, int w, bool fine, ad_rng *rng)
{
    int size = h < w ? h : w;
    memset(noise, 0, sizeof(float) * h * w);
    float cell = size / uniform_in(rng, 2.0f, 16.0f);
    if (cell < 2) cell = 2;
    add_value_noise(noise, h, w, cell, 1.0f, rng);
    add_value_noise(noise, h, w, cell / 2 > 1 ? cell / 2 : 1, 0.5f, rng);
    add_value_noise(noise, h, w, cell / 4 > 1 ? cell / 4 : 1, 0.25f, rng);
    float lo = noise[0], hi = noise[0];
    for (int i = 1; i < h * w; i++) {
        lo = noise[i] < lo ? noise[i] : lo;
        hi = noise[i] > hi ? noise[i] : hi;
    }
    float span = hi - lo > 1e-6f ? hi - lo : 1e-6f;
    float cx = position(rng, fine) * w, cy = position(rng, fine) * h;
    float rx = uniform_in(rng, 0.04f, 0.2f) * w, ry = uniform_in(rng, 0.04f, 0.2f) * h;
    float level = uniform_in(rng, 0.2f, 0.6f);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float dx = (x - cx) / rx, dy = (y - cy) / ry;
            float inside = 1.0f - (dx * dx + dy * dy);
            float v = (noise[y * w + x] - lo) / span;
            mask[y * w + x] = inside > 0 && v > level ? 1.0f : 0.0f;
        }
}

/* Distance from (px, py) to the segment a-b. */
static float seg_dist(float px, float py, float ax, float ay, float bx, float by)
{
    float vx = bx - ax, vy = by - ay;
    float len2 = vx * vx + vy * vy;
    float t = len2 > 0 ? ((px - ax) * vx + (py - ay) * vy) / len2 : 0;
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    float dx = px - (ax + t * vx), dy = py - (ay + t * vy);
    return sqrtf(dx * dx + dy * dy);
}

/* Adds the segment a-b, half_width pixels to either side, to the line's
 * coverage: 1 inside and 0 outside, or (soft_edge) falling to 0 over the
 * pixel at its edge, so a line thinner than a pixel is drawn faint, as a
 * camera sees it. */
static void draw_segment(float *cover, int h, int w, float ax, float ay, float bx, float by,
                         float half_width, bool soft_edge)
{
    int x0 = (int)floorf(fminf(ax, bx) - half_width - 1), x1 = (int)ceilf(fmaxf(ax, bx) + half_width + 1);
    int y0 = (int)floorf(fminf(ay, by) - half_width - 1), y1 = (int)ceilf(fmaxf(ay, by) + half_width + 1);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > w - 1) x1 = w - 1;
    if (y1 > h - 1) y1 = h - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float d = seg_dist((float)x, (float)y, ax, ay, bx, by);
            float c = soft_edge ? half_width + 0.5f - d : d <= half_width ? 1.0f : 0.0f;
            c = c > 1.0f ? 1.0f : c;
            if (c > cover[y * w + x]) cover[y * w + x] = c;
        }
}

/* A scratch: a few long, gently turning segments; a crack: many short,
 * sharply turning ones, thinner. Fine: cracks from nearly straight to
 * sharply turning, down to a third of a pixel wide at 128x128 and up to
 * nearly the whole side long, lines starting anywhere. Writes the coverage
 * of each pixel, 0 to 1 (only 0 or 1 unless fine). */
static void cover_line(float *cover, int h, int w, int crack, bool fine, ad_rng *rng)
{
    int size = h < w ? h : w;
    memset(cover, 0, sizeof(float) * h * w);
    float x = position(rng, fine) * w, y = position(rng, fine) * h;
    float angle = uniform_in(rng, 0, 2 * (float)M_PI);
    float unit = size / 64.0f > 1 ? size / 64.0f : 1;
    float half_width = !crack ? 0.5f * unit * uniform_in(rng, 1.0f, 2.5f)
                       : fine ? 0.5f * unit * uniform_in(rng, 0.3f, 1.2f)
                              : 0.5f * unit * uniform_in(rng, 0.8f, 1.6f);
    /* at least 0.3: then every column (or row) the line crosses has a pixel
     * LINE_MASK covered, so the mask follows the whole line */
    if (fine) half_width = fmaxf(half_width, 0.3f);
    int segments = crack ? 6 + (int)ad_rng_below(rng, 10) : 1 + (int)ad_rng_below(rng, 3);
    float total = (crack && fine ? uniform_in(rng, 0.2f, 0.9f) : uniform_in(rng, 0.15f, 0.5f)) * size;
    float step = total / segments;
    float turn = !crack ? 0.3f : fine ? uniform_in(rng, 0.05f, 1.0f) : 1.0f;
    for (int i = 0; i < segments; i++) {
        angle += uniform_in(rng, -turn, turn);
        float nx = x + step * cosf(angle), ny = y + step * sinf(angle);
        draw_segment(cover, h, w, x, y, nx, ny, half_width, fine);
        x = nx;
        y = ny;
    }
}

/* Fill image for blob regions. */
static int make_fill(float *fill, const float *img, const float *other, int c, int h, int w,
                     const ad_synth_opts *o, ad_rng *rng, float *noise, float *tmp)
{
    size_t plane = (size_t)h * w;
    float odds[AD_SYNTH_FILL_COUNT];
    memcpy(odds, o->p_fill, sizeof odds);
    if (!other) odds[AD_SYNTH_FILL_OTHER] = 0;
    int kind = pick(rng, odds, AD_SYNTH_FILL_COUNT);
    switch (kind) {
    case AD_SYNTH_FILL_OTHER: {
        int flip_x = (int)ad_rng_below(rng, 2), flip_y = (int)ad_rng_below(rng, 2);
        int transpose = h == w ? (int)ad_rng_below(rng, 2) : 0;
        int ox = (int)ad_rng_below(rng, (uint32_t)w), oy = (int)ad_rng_below(rng, (uint32_t)h);
        /* foreign material: another good surface, brighter or darker, with
         * more or less contrast */
        float gain = uniform_in(rng, 0.5f, 1.5f), offset = uniform_in(rng, -0.5f, 0.5f);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int sx = transpose ? y : x, sy = transpose ? x : y;
                    if (flip_x) sx = w - 1 - sx;
                    if (flip_y) sy = h - 1 - sy;
                    sx = (sx + ox) % w;
                    sy = (sy + oy) % h;
                    fill[ch * plane + y * w + x] = gain * other[ch * plane + sy * w + sx] + offset;
                }
        break;
    }
    case AD_SYNTH_FILL_SHIFT: {
        float delta = uniform_in(rng, 0.15f, 0.6f) * (ad_rng_below(rng, 2) ? 1.0f : -1.0f);
        for (size_t i = 0; i < (size_t)c * plane; i++) fill[i] = img[i] + delta;
        break;
    }
    case AD_SYNTH_FILL_CONTRAST: {
        float k = ad_rng_below(rng, 2) ? uniform_in(rng, 0.1f, 0.5f) : uniform_in(rng, 1.6f, 3.0f);
        for (int ch = 0; ch < c; ch++) {
            const float *src = img + ch * plane;
            ad_blur_gaussian(tmp, src, noise, w, h, 4.0f);
            for (size_t i = 0; i < plane; i++) fill[ch * plane + i] = tmp[i] + k * (src[i] - tmp[i]);
        }
        break;
    }
    case AD_SYNTH_FILL_BLUR: {
        float sigma = uniform_in(rng, 1.5f, 4.0f);
        for (int ch = 0; ch < c; ch++) ad_blur_gaussian(fill + ch * plane, img + ch * plane, noise, w, h, sigma);
        break;
    }
    default: {
        memset(noise, 0, sizeof(float) * plane);
        float cell = uniform_in(rng, 1.0f, 4.0f);
        add_value_noise(noise, h, w, cell, 1.0f, rng);
        float amp = uniform_in(rng, 0.3f, 1.0f), offset = uniform_in(rng, -0.5f, 0.5f);
        for (int ch = 0; ch < c; ch++) {
            float tint = c > 1 ? uniform_in(rng, 0.7f, 1.3f) : 1.0f;
            for (size_t i = 0; i < plane; i++)
                fill[ch * plane + i] = offset + tint * amp * (2.0f * noise[i] - 1.0f);
        }
        break;
    }
    }
    return kind;
}

void ad_synth_sample(float *out, float *mask, const float *img, const float *other,
                     int c, int h, int w, const ad_synth_opts *opts, ad_rng *rng,
                     float *scratch, ad_synth_info *info)
{
    size_t plane = (size_t)h * w;
    float *soft = scratch, *noise = scratch + plane, *tmp = scratch + 2 * plane;
    float *fill = scratch + 3 * plane;
    ad_synth_info local = {-1, -1, 0, 0};

    memcpy(out, img, sizeof(float) * c * plane);
    memset(mask, 0, sizeof(float) * plane);
    if (ad_rng_uniform(rng) < opts->p_clean) {
        if (info) *info = local;
        return;
    }
    int shape = pick(rng, opts->p_shape, 3);
    float opacity = uniform_in(rng, opts->min_opacity, opts->max_opacity);
    int fill_kind;
    for (int attempt = 0;; attempt++) {
        if (shape == AD_SYNTH_BLOB) {
            mask_blob(mask, noise, h, w, opts->fine, rng);
        } else {
            /* the target: pixels the line covers by at least LINE_MASK */
            cover_line(soft, h, w, shape == AD_SYNTH_CRACK, opts->fine, rng);
            for (size_t i = 0; i < plane; i++) mask[i] = soft[i] >= LINE_MASK ? 1.0f : 0.0f;
        }
        long area = 0;
        for (size_t i = 0; i < plane; i++) area += mask[i] > 0.5f;
        if (area >= 4 || attempt >= 8) break;
    }
    if (shape == AD_SYNTH_BLOB) {
        fill_kind = make_fill(fill, img, other, c, h, w, opts, rng, noise, tmp);
    } else {
        /* lines are darker or brighter than the surface around them */
        float delta = uniform_in(rng, 0.3f, 0.9f) * (ad_rng_below(rng, 3) ? -1.0f : 1.0f);
        for (size_t i = 0; i < (size_t)c * plane; i++) fill[i] = img[i] + delta;
        fill_kind = AD_SYNTH_FILL_SHIFT;
    }
    /* Blobs get soft edges for the blend (the target stays the hard mask);
     * lines are blended by their coverage (a fine thin one is faint). */
    bool line = shape != AD_SYNTH_BLOB;
    if (!line) ad_blur_gaussian(soft, mask, tmp, w, h, 0.7f);
    long area = 0;
    for (size_t i = 0; i < plane; i++) {
        float a = opacity * (line || mask[i] <= 0.5f ? soft[i] : 1.0f);
        for (int ch = 0; ch < c; ch++) {
            float v = (1.0f - a) * img[ch * plane + i] + a * fill[ch * plane + i];
            out[ch * plane + i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        }
        mask[i] = mask[i] > 0.5f ? 1.0f : 0.0f;
        area += mask[i] > 0.5f;
    }
    local.shape = shape;
    local.fill = fill_kind;
    local.opacity = opacity;
    local.area = area;
    if (info) *info = local;
}

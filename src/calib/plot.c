/* PNG plot of the score histograms: drawn pixel by pixel into an RGB image
 * (axes, ticks, bars, threshold line, text with the built-in font). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

static const uint8_t BLACK[3] = {0, 0, 0};
static const uint8_t GRID[3] = {225, 225, 225};
static const uint8_t AXIS_TEXT[3] = {40, 40, 40};
static const uint8_t GOOD_RGB[3] = {31, 119, 180};
static const uint8_t BAD_RGB[3] = {255, 127, 14};
static const uint8_t THRESH_RGB[3] = {214, 39, 40};

enum { SCALE = 2, CHAR_H = 7 * SCALE };

static void fill_rect(ad_image *im, int x0, int y0, int x1, int y1, const uint8_t rgb[3],
                      float alpha)
{
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > im->w) x1 = im->w;
    if (y1 > im->h) y1 = im->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint8_t *d = im->px + ((size_t)y * im->w + x) * 3;
            for (int c = 0; c < 3; c++) d[c] = (uint8_t)lroundf(d[c] * (1 - alpha) + rgb[c] * alpha);
        }
}

double ad_axis_step(double span, int want)
{
    double raw = span / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

int ad_axis_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 12 ? 12 : d;
}

int ad_calib_plot(ad_image *out, int w, int h, const double *good, size_t ngood,
                  const double *bad, size_t nbad, double threshold, const char *title,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (w < 320 || h < 200 || w > 8192 || h > 8192)
        return ad_err(err, errlen, "plot size %dx%d out of range (320x200 .. 8192x8192)", w, h);
    if (ngood == 0 && nbad == 0) return ad_err(err, errlen, "no scores to plot");
    if (ad_image_alloc(out, w, h, 3) != 0) return ad_err(err, errlen, "cannot allocate plot");
    memset(out->px, 255, (size_t)w * h * 3);

    /* Plot area. */
    const int left = 90, right = w - 24, top = 34 + 3 * CHAR_H, bottom = h - 30 - 2 * CHAR_H;

    double lo, hi;
    ad_score_range(good, ngood, bad, nbad, threshold, &lo, &hi);
    size_t total = ngood + nbad;
    int bins = (int)ceil(2 * cbrt((double)total)) * 2;
    bins = bins < 10 ? 10 : bins > 60 ? 60 : bins;
    double *fg = ad_xcalloc((size_t)bins, sizeof *fg), *fb = ad_xcalloc((size_t)bins, sizeof *fb);
    for (size_t i = 0; i < ngood; i++) fg[ad_score_bin(good[i], lo, hi, bins)] += 100.0 / ngood;
    for (size_t i = 0; i < nbad; i++) fb[ad_score_bin(bad[i], lo, hi, bins)] += 100.0 / nbad;
    double ymax = 0;
    for (int i = 0; i < bins; i++) ymax = fmax(ymax, fmax(fg[i], fb[i]));

    double pad = (hi - lo) * 0.04, xlo = lo - pad, xhi = hi + pad;
    double ystep = ad_axis_step(ymax * 1.1, 5);
    double ytop = ceil(ymax * 1.1 / ystep) * ystep;
#define XPIX(v) (left + (int)lround(((v) - xlo) / (xhi - xlo) * (right - left)))
#define YPIX(v) (bottom - (int)lround((v) / ytop * (bottom - top)))

    /* Grid and y ticks. */
    char label[96];
    int yd = ad_axis_decimals(ystep);
    for (double v = 0; v <= ytop + ystep * 0.01; v += ystep) {
        int y = YPIX(v);
        fill_rect(out, left, y, right, y + 1, GRID, 1);
        fill_rect(out, left - 6, y, left, y + 1, BLACK, 1);
        snprintf(label, sizeof label, "%.*f", yd, v);
        ad_font_draw(out, left - 10 - ad_font_width(label, SCALE), y - CHAR_H / 2, label, SCALE,
                     AXIS_TEXT);
    }
    /* x ticks. */
    double xstep = ad_axis_step(xhi - xlo, (right - left) / 130 > 2 ? (right - left) / 130 : 2);
    int xd = ad_axis_decimals(xstep);
    for (double v = ceil(xlo / xstep) * xstep; v <= xhi; v += xstep) {
        int x = XPIX(v);
        fill_rect(out, x, top, x + 1, bottom, GRID, 1);
        fill_rect(out, x, bottom, x + 1, bottom + 6, BLACK, 1);
        snprintf(label, sizeof label, "%.*f", xd, fabs(v) < xstep * 1e-6 ? 0.0 : v);
        ad_font_draw(out, x - ad_font_width(label, SCALE) / 2, bottom + 10, label, SCALE,
                     AXIS_TEXT);
    }

    /* Bars: good first, bad blended over it so overlaps stay visible. */
    for (int i = 0; i < bins; i++) {
        int x0 = XPIX(lo + (hi - lo) * i / bins), x1 = XPIX(lo + (hi - lo) * (i + 1) / bins);
        if (fg[i] > 0) fill_rect(out, x0 + 1, YPIX(fg[i]), x1, bottom, GOOD_RGB, 0.65f);
        if (fb[i] > 0) fill_rect(out, x0 + 1, YPIX(fb[i]), x1, bottom, BAD_RGB, 0.6f);
    }
    free(fg);
    free(fb);

    /* Axes. */
    fill_rect(out, left - 1, top, left + 1, bottom + 1, BLACK, 1);
    fill_rect(out, left - 1, bottom, right, bottom + 2, BLACK, 1);

    /* Threshold line and its value. */
    int tx = XPIX(threshold);
    fill_rect(out, tx - 1, top, tx + 2, bottom, THRESH_RGB, 1);
    snprintf(label, sizeof label, "THRESHOLD %.6g", threshold);
    int lw = ad_font_width(label, SCALE);
    int lx = tx + 8 + lw <= right ? tx + 8 : tx - 8 - lw;
    fill_rect(out, lx - 3, top + 4, lx + lw + 3, top + 8 + CHAR_H, (const uint8_t[3]){255, 255, 255}, 0.85f);
    ad_font_draw(out, lx, top + 6, label, SCALE, THRESH_RGB);

    /* Legend, top right, under the threshold label. */
    int ly = top + 14 + CHAR_H;
    const struct { const char *name; size_t n; const uint8_t *rgb; } legend[2] = {
        {"GOOD", ngood, GOOD_RGB}, {"BAD", nbad, BAD_RGB}};
    for (int k = 0; k < 2; k++) {
        if (legend[k].n == 0) continue;
        snprintf(label, sizeof label, "%s (%zu)", legend[k].name, legend[k].n);
        int x = right - 10 - ad_font_width(label, SCALE) - 22;
        fill_rect(out, x - 4, ly - 3, right - 4, ly + CHAR_H + 3, (const uint8_t[3]){255, 255, 255}, 0.85f);
        fill_rect(out, x, ly, x + 16, ly + CHAR_H, legend[k].rgb, 0.65f);
        ad_font_draw(out, x + 22, ly, label, SCALE, AXIS_TEXT);
        ly += CHAR_H + 8;
    }

    /* Labels and title. */
    const char *xl = "ANOMALY SCORE", *yl = "% OF SET";
    ad_font_draw(out, (left + right - ad_font_width(xl, SCALE)) / 2, h - 10 - CHAR_H, xl, SCALE,
                 BLACK);
    ad_font_draw(out, 8, top - 2 * CHAR_H - 6, yl, SCALE, BLACK);
    if (title && *title)
        ad_font_draw(out, (w - ad_font_width(title, SCALE)) / 2, 10, title, SCALE, BLACK);
#undef XPIX
#undef YPIX
    return 0;
}

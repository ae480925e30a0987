/* Text histogram of good and bad scores for the terminal. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

void ad_score_range(const double *good, size_t ngood, const double *bad, size_t nbad,
                    double threshold, double *lo, double *hi)
{
    double a = threshold, b = threshold;
    for (size_t i = 0; i < ngood; i++) a = fmin(a, good[i]), b = fmax(b, good[i]);
    for (size_t i = 0; i < nbad; i++) a = fmin(a, bad[i]), b = fmax(b, bad[i]);
    if (!(b > a)) {
        double pad = a != 0 ? fabs(a) * 0.05 : 0.05;
        a -= pad;
        b += pad;
    }
    *lo = a;
    *hi = b;
}

int ad_score_bin(double v, double lo, double hi, int bins)
{
    int i = (int)floor((v - lo) / (hi - lo) * bins);
    return i < 0 ? 0 : i >= bins ? bins - 1 : i;
}

static void bar(FILE *out, char ch, size_t count, size_t max, int width)
{
    int len = max ? (int)lround((double)count / (double)max * width) : 0;
    if (count > 0 && len == 0) len = 1;
    for (int i = 0; i < width; i++) fputc(i < len ? ch : ' ', out);
}

void ad_histogram_print(FILE *out, const double *good, size_t ngood, const double *bad,
                        size_t nbad, double threshold, int bins, int width)
{
    if (bins < 1) bins = 1;
    double lo, hi;
    ad_score_range(good, ngood, bad, nbad, threshold, &lo, &hi);
    size_t *cg = ad_xcalloc((size_t)bins, sizeof *cg), *cb = ad_xcalloc((size_t)bins, sizeof *cb);
    for (size_t i = 0; i < ngood; i++) cg[ad_score_bin(good[i], lo, hi, bins)]++;
    for (size_t i = 0; i < nbad; i++) cb[ad_score_bin(bad[i], lo, hi, bins)]++;
    /* Each column is scaled to its own largest bin: a handful of bad images
     * stays visible beside hundreds of good ones; the counts are exact. */
    size_t maxg = 1, maxb = 1;
    for (int i = 0; i < bins; i++) maxg = cg[i] > maxg ? cg[i] : maxg, maxb = cb[i] > maxb ? cb[i] : maxb;
    int tbin = ad_score_bin(threshold, lo, hi, bins);
    int bw = nbad ? width / 2 : width;
    fprintf(out, "  %-20s | %-*s", "score", bw + 5, "good");
    if (nbad) fprintf(out, " | %s", "bad");
    fputc('\n', out);
    for (int i = 0; i < bins; i++) {
        double a = lo + (hi - lo) * i / bins, b = lo + (hi - lo) * (i + 1) / bins;
        fprintf(out, "  %8.4g .. %-8.4g | ", a, b);
        bar(out, '#', cg[i], maxg, bw);
        fprintf(out, " %4zu", cg[i]);
        if (nbad) {
            fputs(" | ", out);
            bar(out, 'x', cb[i], maxb, bw);
            fprintf(out, " %4zu", cb[i]);
        }
        if (i == tbin) fprintf(out, "  <- threshold %.6g", threshold);
        fputc('\n', out);
    }
    free(cg);
    free(cb);
}

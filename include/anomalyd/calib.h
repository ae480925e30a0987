/* Threshold calibration: score statistics, AUROC, threshold choice for a
 * target false-reject rate or for the best separation of good and bad
 * images, a text histogram and a PNG plot.
 *
 * Everything here is pure: arrays of scores in, numbers/text/pixels out.
 * `anomalyctl calibrate` (src/cli/cmd_calibrate.c) does the scoring through
 * ad_detector_inspect and the YAML write-back (ad_config_write_threshold).
 *
 * Convention, the same as the detector's verdict: an image is rejected when
 * its score is strictly greater than the threshold. */
#ifndef ANOMALYD_CALIB_H
#define ANOMALYD_CALIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anomalyd/image.h"

/* Area under the ROC curve: the probability that a random positive
 * (labels[i] != 0, a defect) scores above a random negative (labels[i] == 0,
 * a good part), ties counting one half (Mann-Whitney U). n values. Returns
 * NaN when there are no positives or no negatives. The one implementation
 * (src/calib/auroc.c), for image AUROC in `calibrate` and `eval` and pixel
 * AUROC in `eval`: values become order-preserving keys, radix-sorted per
 * class, O(n) time; 8 bytes a double score, 4 a float value. */
double ad_auroc(const double *scores, const uint8_t *labels, size_t n);
/* The same for float scores (pixel AUROC over whole anomaly maps). */
double ad_auroc_f(const float *scores, const uint8_t *labels, size_t n);
/* The same from two separate arrays (good = negatives, bad = positives). */
double ad_auroc_sets(const double *good, size_t ngood, const double *bad, size_t nbad);
/* Pixel AUROC over a whole test set (tens of millions of values), added a
 * map at a time. Start from a zeroed struct; compute sorts in place (adding
 * after it is fine); NaN when either class is empty. ad_auroc_f is add +
 * compute + free. */
typedef struct ad_auroc_acc {
    uint32_t *pos, *neg;
    size_t npos, nneg, cap_pos, cap_neg;
} ad_auroc_acc;
void ad_auroc_acc_add(ad_auroc_acc *a, const float *values, const uint8_t *labels, size_t n);
double ad_auroc_acc_compute(ad_auroc_acc *a);
void ad_auroc_acc_free(ad_auroc_acc *a);

/* Sorts ascending in place (no NaN: callers reject non-finite scores). */
void ad_sort_doubles(double *v, size_t n);
/* Quantile p in [0,1] of an ascending array by linear interpolation between
 * order statistics (Hyndman-Fan type 7, the numpy default). n >= 1. */
double ad_quantile_sorted(const double *sorted, size_t n, double p);
/* Number of values strictly greater than t. */
size_t ad_count_above(const double *v, size_t n, double t);

/* Per-element mean and standard deviation of arrays of `len` floats added one
 * at a time (per-pixel statistics of good images or of their anomaly maps):
 * sums in double, so thousands of images keep full precision. init
 * allocates, free releases; finish writes the mean and the population
 * standard deviation (len floats each) of what was added (count >= 1). */
typedef struct ad_moments {
    double *sum, *sq;
    size_t len;
    int count;
} ad_moments;
void ad_moments_init(ad_moments *m, size_t len);
void ad_moments_add(ad_moments *m, const float *v);
void ad_moments_finish(const ad_moments *m, float *mean, float *std);
void ad_moments_free(ad_moments *m);

/* The threshold for a target false-reject rate from good scores only.
 *
 * Two estimates, the larger (the safer) wins:
 *  - order statistic (distribution-free): with the n good scores sorted,
 *    X_(r) with r = ceil((n+1)(1-rate)). For a new good part from the same
 *    process, P(score > X_(r)) = (n+1-r)/(n+1) <= rate (exchangeability).
 *    Exists only when r <= n, i.e. rate >= 1/(n+1).
 *  - exponential tail (peaks over threshold): the top k = max(5, ceil(n/10))
 *    scores (k <= n-1) above u = the (k+1)-th largest score are fitted with an
 *    exponential excess of mean beta; P(score > t) = k/(n+1) exp(-(t-u)/beta).
 *    beta is taken at its upper one-sigma bound beta (1 + 1/sqrt(k)) as the
 *    margin for the uncertainty of the fit, and
 *    t = u + beta_up ln(k / ((n+1) rate)) (t >= u). This extrapolates past
 *    the largest score when the set is too small for the rate.
 * The set supports a rate demonstrably only when n >= 3/rate (rule of three:
 * with no rejects among n parts the 95% upper bound of the rate is 3/n);
 * otherwise `undersized` is set and `supported_rate` = 3/n.
 * Needs n >= 2 (returns -1 otherwise). */
typedef struct ad_frr_threshold {
    double threshold;          /* max of the two estimates (or the tail alone) */
    double order_stat;         /* X_(r), or NaN when r > n */
    size_t order_rank;         /* r (n + 1 when there is none) */
    double confidence;         /* as asked; 0 = expected rate */
    double tail;               /* exponential tail estimate */
    int tail_k;                /* exceedances used for the fit */
    double tail_u, tail_beta;  /* fit: location and (unadjusted) mean excess */
    double model_frr;          /* tail model's P(good > threshold); the order-statistic
                                  estimate below where the threshold is under the fit */
    double order_frr;          /* distribution-free expected rate (above + 1)/(n + 1) of a
                                  threshold at or below the largest score, else NaN */
    double set_frr;            /* fraction of the given good scores > threshold */
    int undersized;            /* n < 3 / rate */
    double supported_rate;     /* 3 / n */
    size_t min_images;         /* ceil(3 / rate): images needed for the rate (with a
                                  confidence at least what the order statistic needs) */
} ad_frr_threshold;
int ad_threshold_for_frr(const double *good, size_t n, double rate, ad_frr_threshold *out);
/* The same with a confidence level (0.5 <= confidence < 1; 0 = the expected
 * rate as above): the threshold's true false-reject rate is <= rate with at
 * least this probability over calibration sets, instead of on average.
 *  - order statistic: the true rate of X_(r) is Beta(n+1-r, r)-distributed,
 *    so r is the smallest rank with P(Binomial(n, rate) >= n+1-r) >=
 *    confidence; it exists only when (1-rate)^n <= 1-confidence (0.9 at 1%
 *    needs 230 images, at 5% 45);
 *  - tail: beta at its one-sided upper bound 2k beta / chi2_{1-conf}(2k).
 * min_images also covers the order statistic's need. */
int ad_threshold_for_frr_conf(const double *good, size_t n, double rate, double confidence,
                              ad_frr_threshold *out);

/* Youden's J = TPR - FPR = (1 - escape rate) - false-reject rate, maximized
 * over every cut between two neighbouring distinct scores; among cuts with
 * the same J the widest gap wins, and the threshold is the middle of that
 * gap (so a small shift of scores does not flip a verdict). When no cut has
 * J > 0 (bad images never score above good ones) the threshold is the
 * largest score and J = 0. Needs ngood, nbad >= 1. */
typedef struct ad_separation {
    double threshold;
    double j;                  /* Youden's J at the threshold */
    double frr;                /* fraction of good > threshold */
    double escape;             /* fraction of bad <= threshold */
} ad_separation;
int ad_threshold_youden(const double *good, size_t ngood, const double *bad, size_t nbad,
                        ad_separation *out);

/* Shortest "%.Ng" text (N >= 4) of t, rounded to nearest or else up, that
 * gives every score the same verdict as t itself does; writes it into buf
 * and returns the parsed value. */
double ad_threshold_round(double t, const double *good, size_t ngood,
                          const double *bad, size_t nbad, char *buf, size_t buflen);

/* Range [lo, hi] of all scores and the threshold (widened when empty), and
 * the bin of v among `bins` equal bins over it (clamped). Shared by the text
 * histogram and the plot so both show the same bins. */
void ad_score_range(const double *good, size_t ngood, const double *bad, size_t nbad,
                    double threshold, double *lo, double *hi);
int ad_score_bin(double v, double lo, double hi, int bins);

/* Text histogram of good (and bad, nbad may be 0) scores in `bins` equal bins
 * across the range of all scores and the threshold, with the bin holding the
 * threshold marked. Bars are scaled to `width` characters. */
void ad_histogram_print(FILE *out, const double *good, size_t ngood, const double *bad,
                        size_t nbad, double threshold, int bins, int width);

/* Plot of the two score histograms (good blue, bad orange), the threshold as a
 * red line, axes with ticks and numbers, labels and a legend, drawn with the
 * built-in 5x7 bitmap font. out is allocated RGB, w x h (>= 320 x 200). */
int ad_calib_plot(ad_image *out, int w, int h, const double *good, size_t ngood,
                  const double *bad, size_t nbad, double threshold, const char *title,
                  char *err, size_t errlen);

/* Axis ticks shared by the PNG plot and the report's SVG charts: a step of
 * about `want` ticks over span (span > 0, want >= 1), 1, 2 or 5 times a
 * power of ten; and the decimals that print every multiple of it (0..12). */
double ad_axis_step(double span, int want);
int ad_axis_decimals(double step);

/* Bitmap font used by the plot: draws text with its top-left corner at (x, y),
 * each font pixel a scale x scale square; lowercase letters are drawn as
 * capitals. Returns the advance width in pixels. Clips at the image border. */
int ad_font_draw(ad_image *im, int x, int y, const char *text, int scale, const uint8_t rgb[3]);
int ad_font_width(const char *text, int scale);

/* The edit behind ad_config_write_threshold (config.h, src/config/
 * threshold_write.c) without the file: `text` with only the value of its
 * top-level `threshold:` key replaced by `value` (shortest text that reads
 * back exactly). *out is malloc'd (NUL-terminated, *out_len bytes); the
 * caller frees it. Refusals as documented there, with err naming `name`. */
int ad_threshold_edit(const char *name, const char *text, size_t len, double value,
                      char **out, size_t *out_len, char *err, size_t errlen);

#endif

/* Score statistics and threshold rules (see calib.h for the rules). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void ad_sort_doubles(double *v, size_t n)
{
    if (n > 1) qsort(v, n, sizeof *v, cmp_double);
}

double ad_quantile_sorted(const double *sorted, size_t n, double p)
{
    AD_ASSERT(n >= 1);
    if (p <= 0) return sorted[0];
    if (p >= 1) return sorted[n - 1];
    double h = p * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) return sorted[n - 1];
    double f = h - (double)lo;
    return sorted[lo] + f * (sorted[lo + 1] - sorted[lo]);
}

size_t ad_count_above(const double *v, size_t n, double t)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += v[i] > t;
    return c;
}

void ad_moments_init(ad_moments *m, size_t len)
{
    m->sum = ad_xcalloc(len, sizeof *m->sum);
    m->sq = ad_xcalloc(len, sizeof *m->sq);
    m->len = len;
    m->count = 0;
}

void ad_moments_add(ad_moments *m, const float *v)
{
    for (size_t k = 0; k < m->len; k++) {
        m->sum[k] += v[k];
        m->sq[k] += (double)v[k] * v[k];
    }
    m->count++;
}

void ad_moments_finish(const ad_moments *m, float *mean, float *std)
{
    AD_ASSERT(m->count >= 1);
    for (size_t k = 0; k < m->len; k++) {
        double mu = m->sum[k] / m->count, var = m->sq[k] / m->count - mu * mu;
        mean[k] = (float)mu;
        std[k] = (float)sqrt(var > 0 ? var : 0);
    }
}

void ad_moments_free(ad_moments *m)
{
    free(m->sum);
    free(m->sq);
    memset(m, 0, sizeof *m);
}

/* Largest m <= n with P(Binomial(n, p) >= m) >= conf (0 if none); the
 * probabilities are summed in log space, one term per step. */
static size_t binom_largest_tail(size_t n, double p, double conf)
{
    double cdf = 0, lp = log(p), lq = log1p(-p), ln_n1 = lgamma((double)n + 1);
    size_t m = 0;
    while (m < n) {
        /* cdf becomes P(X <= m); P(X >= m + 1) = 1 - cdf */
        cdf += exp(ln_n1 - lgamma((double)m + 1) - lgamma((double)(n - m) + 1) +
                   (double)m * lp + (double)(n - m) * lq);
        if (1 - cdf < conf) break;
        m++;
    }
    return m;
}

/* Standard normal quantile by bisection on erfc (plenty fast here). */
static double normal_quantile(double p)
{
    double lo = -40, hi = 40;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2)) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Chi-square quantile, Wilson-Hilferty (within ~1% for nu >= 10). */
static double chi2_quantile(double p, double nu)
{
    double z = normal_quantile(p), a = 2 / (9 * nu);
    double c = 1 - a + z * sqrt(a);
    return c > 0 ? nu * c * c * c : 0;
}

int ad_threshold_for_frr(const double *good, size_t n, double rate, ad_frr_threshold *out)
{
    return ad_threshold_for_frr_conf(good, n, rate, 0, out);
}

int ad_threshold_for_frr_conf(const double *good, size_t n, double rate, double confidence,
                              ad_frr_threshold *out)
{
    memset(out, 0, sizeof *out);
    if (n < 2 || !(rate > 0 && rate < 1)) return -1;
    if (confidence != 0 && !(confidence >= 0.5 && confidence < 1)) return -1;
    double *s = ad_xmalloc(n * sizeof *s);
    memcpy(s, good, n * sizeof *s);
    ad_sort_doubles(s, n);
    double n1 = (double)n + 1;

    /* Order statistic X_(r), r = ceil((n+1)(1-rate)); the small epsilon keeps
     * exact products such as 20 * 0.95 from rounding up a whole rank. */
    double rr = ceil(n1 * (1 - rate) - 1e-9);
    if (rr < 1) rr = 1;
    if (confidence > 0) {
        /* The true rate of X_(r) is Beta(n+1-r, r): P(rate_true <= rate) =
         * P(Binomial(n, rate) >= n+1-r). Largest m = n+1-r that still has
         * probability >= confidence; none when even the maximum (m = 1)
         * falls short, i.e. (1-rate)^n > 1-confidence. */
        size_t m = binom_largest_tail(n, rate, confidence);
        rr = m ? (double)(n + 1 - m) : (double)n + 1;
    }
    out->order_rank = (size_t)rr;
    out->order_stat = rr <= (double)n ? s[(size_t)rr - 1] : NAN;

    /* Exponential tail over the top k scores. */
    size_t k = (size_t)ceil((double)n / 10);
    if (k < 5) k = 5;
    if (k > n - 1) k = n - 1;
    double u = s[n - 1 - k], sum = 0;
    for (size_t i = n - k; i < n; i++) sum += s[i] - u;
    double beta = sum / (double)k;
    double p_u = (double)k / n1;
    /* Margin for the fit: 2 k beta_hat / beta is chi-square with 2k degrees
     * of freedom for exponential excesses; without a confidence asked the
     * upper one-sigma bound, with one the one-sided bound at that level. */
    double beta_up = confidence > 0
                         ? 2 * (double)k * beta / chi2_quantile(1 - confidence, 2 * (double)k)
                         : beta * (1 + 1 / sqrt((double)k));
    out->confidence = confidence;
    out->tail_k = (int)k;
    out->tail_u = u;
    out->tail_beta = beta;
    out->tail = rate < p_u ? u + beta_up * log(p_u / rate) : NAN;

    if (isnan(out->order_stat))
        out->threshold = out->tail;
    else if (isnan(out->tail))
        out->threshold = out->order_stat;
    else
        out->threshold = fmax(out->order_stat, out->tail);

    double t = out->threshold;
    size_t above = ad_count_above(s, n, t);
    out->set_frr = (double)above / (double)n;
    if (t >= u && beta > 0)
        out->model_frr = p_u * exp(-(t - u) / beta);
    else if (t >= u)
        out->model_frr = 0;
    else
        out->model_frr = ((double)above + 1) / n1;
    out->order_frr = t <= s[n - 1] ? ((double)above + 1) / n1 : NAN;
    out->supported_rate = 3.0 / (double)n;
    double need = ceil(3.0 / rate - 1e-9);
    if (confidence > 0) {
        /* n such that even the largest score holds the rate at the
         * confidence: (1-rate)^n <= 1-confidence. */
        need = fmax(need, ceil(log(1 - confidence) / log1p(-rate) - 1e-9));
    }
    out->min_images = need > 1e15 ? (size_t)1e15 : (size_t)need;
    out->undersized = (double)n < need;
    free(s);
    return 0;
}

typedef struct tagged {
    double s;
    int bad;
} tagged;

static int cmp_tagged(const void *a, const void *b)
{
    double x = ((const tagged *)a)->s, y = ((const tagged *)b)->s;
    return (x > y) - (x < y);
}

int ad_threshold_youden(const double *good, size_t ngood, const double *bad, size_t nbad,
                        ad_separation *out)
{
    memset(out, 0, sizeof *out);
    if (ngood == 0 || nbad == 0) return -1;
    size_t n = ngood + nbad;
    tagged *v = ad_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < ngood; i++) v[i] = (tagged){good[i], 0};
    for (size_t i = 0; i < nbad; i++) v[ngood + i] = (tagged){bad[i], 1};
    if (n > 1) qsort(v, n, sizeof *v, cmp_tagged);

    /* Walk the cuts after each run of equal scores: everything up to and
     * including the run passes, everything above is rejected. */
    size_t good_below = 0, bad_below = 0;
    double best_j = 0, best_gap = -1, best_t = v[n - 1].s;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) {
            if (v[j].bad) bad_below++;
            else good_below++;
            j++;
        }
        if (j < n) {
            double frr = (double)(ngood - good_below) / (double)ngood;
            double esc = (double)bad_below / (double)nbad;
            double jj = 1 - frr - esc;
            double gap = v[j].s - v[i].s;
            if (jj > best_j + 1e-12 || (fabs(jj - best_j) <= 1e-12 && jj > 0 && gap > best_gap)) {
                best_j = jj;
                best_gap = gap;
                best_t = v[i].s + 0.5 * gap;
            }
        }
        i = j;
    }
    free(v);
    out->threshold = best_t;
    out->frr = (double)ad_count_above(good, ngood, best_t) / (double)ngood;
    out->escape = 1 - (double)ad_count_above(bad, nbad, best_t) / (double)nbad;
    out->j = 1 - out->frr - out->escape;
    return 0;
}

static int same_verdicts(double a, double b, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((v[i] > a) != (v[i] > b)) return 0;
    return 1;
}

double ad_threshold_round(double t, const double *good, size_t ngood,
                          const double *bad, size_t nbad, char *buf, size_t buflen)
{
    for (int digits = 4; digits <= 17; digits++) {
        /* nearest first, then rounded up (a threshold equal to a score
         * usually has room above it before the next score) */
        for (int up = 0; up <= 1; up++) {
            double c = t;
            if (up && t > 0) {
                double m = pow(10, digits - 1 - floor(log10(t)));
                c = ceil(t * m) / m;
            }
            snprintf(buf, buflen, "%.*g", digits, c);
            double r = strtod(buf, NULL);
            if (same_verdicts(t, r, good, ngood) && same_verdicts(t, r, bad, nbad)) return r;
        }
    }
    snprintf(buf, buflen, "%.17g", t);
    return strtod(buf, NULL);
}

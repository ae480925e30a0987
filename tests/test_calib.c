/* Pure calibration statistics: AUROC, quantiles, threshold rules. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

/* Brute-force AUROC over all pairs: the definition, for checking ranks. */
static double auroc_pairs(const double *good, size_t ng, const double *bad, size_t nb)
{
    double w = 0;
    for (size_t i = 0; i < ng; i++)
        for (size_t j = 0; j < nb; j++) w += bad[j] > good[i] ? 1 : bad[j] == good[i] ? 0.5 : 0;
    return w / ((double)ng * (double)nb);
}

static void test_auroc_known_values(void **state)
{
    (void)state;
    double s[] = {0.1, 0.2, 0.3, 0.4};
    uint8_t perfect[] = {0, 0, 1, 1}, inverse[] = {1, 1, 0, 0}, half[] = {0, 1, 0, 1};
    assert_float_equal(ad_auroc(s, perfect, 4), 1.0, 1e-12);
    assert_float_equal(ad_auroc(s, inverse, 4), 0.0, 1e-12);
    assert_float_equal(ad_auroc(s, half, 4), 0.75, 1e-12);
    /* All tied: one half. */
    double t[] = {1, 1, 1, 1};
    assert_float_equal(ad_auroc(t, half, 4), 0.5, 1e-12);
    /* One class only: undefined. */
    uint8_t none[] = {0, 0, 0, 0};
    assert_true(isnan(ad_auroc(s, none, 4)));
    assert_true(isnan(ad_auroc(s, none, 0)));
    assert_true(isnan(ad_auroc_sets(s, 4, NULL, 0)));
}

static void test_auroc_matches_pairs_with_ties(void **state)
{
    (void)state;
    ad_rng rng;
    ad_rng_seed(&rng, 7);
    for (int rep = 0; rep < 20; rep++) {
        size_t ng = 1 + ad_rng_below(&rng, 60), nb = 1 + ad_rng_below(&rng, 40);
        double *g = malloc(ng * sizeof *g), *b = malloc(nb * sizeof *b);
        double *all = malloc((ng + nb) * sizeof *all);
        float *allf = malloc((ng + nb) * sizeof *allf);
        uint8_t *lab = malloc(ng + nb);
        /* coarse values so ties are frequent */
        for (size_t i = 0; i < ng; i++) g[i] = (double)ad_rng_below(&rng, 10);
        for (size_t i = 0; i < nb; i++) b[i] = (double)ad_rng_below(&rng, 10) + 2;
        for (size_t i = 0; i < ng; i++) all[i] = g[i], lab[i] = 0;
        for (size_t i = 0; i < nb; i++) all[ng + i] = b[i], lab[ng + i] = 1;
        for (size_t i = 0; i < ng + nb; i++) allf[i] = (float)all[i];
        double want = auroc_pairs(g, ng, b, nb);
        assert_float_equal(ad_auroc_sets(g, ng, b, nb), want, 1e-12);
        assert_float_equal(ad_auroc(all, lab, ng + nb), want, 1e-12);
        assert_float_equal(ad_auroc_f(allf, lab, ng + nb), want, 1e-12);
        free(g), free(b), free(all), free(allf), free(lab);
    }
}

static double acc_auroc(const float *v, const uint8_t *l, size_t n)
{
    ad_auroc_acc a = {0};
    ad_auroc_acc_add(&a, v, l, n);
    double r = ad_auroc_acc_compute(&a);
    ad_auroc_acc_free(&a);
    return r;
}

/* The pixel accumulator by hand: ties, negative values, -0 and +0. */
static void test_pixel_auroc_hand_values(void **state)
{
    (void)state;
    float v1[] = {0.1f, 0.2f, 0.3f, 0.9f};
    uint8_t l1[] = {0, 0, 1, 1}, l2[] = {1, 1, 0, 0};
    assert_float_equal(acc_auroc(v1, l1, 4), 1.0, 1e-12);
    assert_float_equal(acc_auroc(v1, l2, 4), 0.0, 1e-12);
    /* pos {0.4, 0.8}, neg {0.1, 0.4, 0.5}: 0.4 beats 0.1, ties 0.4 (1/2),
     * loses to 0.5 -> 1.5; 0.8 beats all -> 3. U = 4.5 of 6 -> 0.75 */
    float v3[] = {0.1f, 0.4f, 0.5f, 0.4f, 0.8f};
    uint8_t l3[] = {0, 0, 0, 1, 1};
    assert_float_equal(acc_auroc(v3, l3, 5), 0.75, 1e-12);
    float v4[] = {2, 2, 2, 2, 2};
    uint8_t l4[] = {1, 0, 0, 1, 0};
    assert_float_equal(acc_auroc(v4, l4, 5), 0.5, 1e-12);
    /* pos {-1, 0}, neg {-2, -0.5, 3}: -1 beats -2 -> 1; 0 beats -2, -0.5 -> 2;
     * U = 3 of 6 */
    float v5[] = {-2, -0.5f, 3, -1, 0};
    uint8_t l5[] = {0, 0, 0, 1, 1};
    assert_float_equal(acc_auroc(v5, l5, 5), 0.5, 1e-12);
    /* -0 and +0 are one value: a tie */
    float v6[] = {-0.0f, 0.0f};
    double d6[] = {0.0, -0.0};
    uint8_t l6[] = {1, 0};
    assert_float_equal(acc_auroc(v6, l6, 2), 0.5, 1e-12);
    assert_float_equal(ad_auroc(d6, l6, 2), 0.5, 1e-12);
    uint8_t none[] = {0, 0, 0, 0, 0};
    assert_true(isnan(acc_auroc(v5, none, 5)));
}

/* Every entry point against the definition on signed values with many ties,
 * the accumulator fed in two chunks; double scores keep the precision a
 * float would lose. */
static void test_auroc_entry_points_agree_with_pairs(void **state)
{
    (void)state;
    ad_rng rng;
    ad_rng_seed(&rng, 5);
    size_t n = 3000;
    float *v = malloc(n * sizeof *v);
    double *d = malloc(n * sizeof *d), *g = malloc(n * sizeof *g), *b = malloc(n * sizeof *b);
    uint8_t *l = malloc(n);
    size_t ng = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        l[i] = ad_rng_uniform(&rng) < 0.2f;
        v[i] = floorf((ad_rng_normal(&rng) + (l[i] ? 0.7f : 0.0f)) * 8) / 8;
        d[i] = v[i];
        if (l[i]) b[nb++] = d[i];
        else g[ng++] = d[i];
    }
    double want = auroc_pairs(g, ng, b, nb);
    ad_auroc_acc a = {0};
    ad_auroc_acc_add(&a, v, l, n / 3);
    ad_auroc_acc_add(&a, v + n / 3, l + n / 3, n - n / 3);
    assert_float_equal(ad_auroc_acc_compute(&a), want, 1e-12);
    ad_auroc_acc_free(&a);
    assert_float_equal(ad_auroc_f(v, l, n), want, 1e-12);
    assert_float_equal(ad_auroc(d, l, n), want, 1e-12);
    assert_float_equal(ad_auroc_sets(g, ng, b, nb), want, 1e-12);
    assert_true(want > 0.6 && want < 0.8);
    /* 1 + 1e-12 is 1 as a float but above 1 as a double */
    double close[] = {1.0, 1.0 + 1e-12};
    uint8_t up[] = {0, 1};
    assert_float_equal(ad_auroc(close, up, 2), 1.0, 0);
    free(v), free(d), free(g), free(b), free(l);
}

static void test_quantile_type7(void **state)
{
    (void)state;
    double v[] = {1, 2, 3, 4, 5};
    assert_float_equal(ad_quantile_sorted(v, 5, 0), 1, 0);
    assert_float_equal(ad_quantile_sorted(v, 5, 1), 5, 0);
    assert_float_equal(ad_quantile_sorted(v, 5, 0.5), 3, 1e-12);
    assert_float_equal(ad_quantile_sorted(v, 5, 0.9), 4.6, 1e-12); /* numpy: 4.6 */
    assert_float_equal(ad_quantile_sorted(v, 1, 0.3), 1, 0);
    double w[] = {3, 1, 2};
    ad_sort_doubles(w, 3);
    assert_true(w[0] == 1 && w[1] == 2 && w[2] == 3);
    assert_int_equal(ad_count_above(v, 5, 3), 2);
    assert_int_equal(ad_count_above(v, 5, 5), 0);
}


enum dist { DIST_NORMAL, DIST_GUMBEL, DIST_GAMMA4, DIST_LOGNORMAL, DIST_UNIFORM };
static const char *dist_names[] = {"normal", "gumbel", "gamma4", "lognormal", "uniform"};

/* Score-like draws: positive, offset and scaled like anomaly scores. */
static double draw(ad_rng *rng, enum dist d)
{
    switch (d) {
    case DIST_NORMAL: return 0.1 + 0.01 * ad_rng_normal(rng);
    case DIST_GUMBEL: {
        double u = ad_rng_uniform(rng);
        if (u < 1e-300) u = 1e-300;
        return 0.1 + 0.01 * -log(-log(u));
    }
    case DIST_GAMMA4: {
        double s = 0;
        for (int i = 0; i < 4; i++) s += -log(1 - ad_rng_uniform(rng));
        return 0.01 * s;
    }
    case DIST_LOGNORMAL: return 0.05 * exp(0.5 * ad_rng_normal(rng));
    case DIST_UNIFORM: return 0.05 + 0.1 * ad_rng_uniform(rng);
    }
    return 0;
}

/* The promise of ad_threshold_for_frr on data it never saw: over many
 * calibration sets of n good scores, the mean false-reject rate on a large
 * held-out set stays at or below the rate asked for (within the Monte Carlo
 * noise), and is not absurdly conservative (never the "reject nothing /
 * reject everything" failure). Extrapolation (rate < 1/(n+1)) is promised
 * only for tails no heavier than exponential; the order-statistic range is
 * distribution-free, so the log-normal is checked only there. */
/* Per-element mean and population standard deviation, by hand: element 0
 * sees 1, 2, 3, 6 (mean 3, variance 3.5), element 1 a constant (spread 0,
 * never the NaN of a slightly negative variance). */
static void test_moments(void **state)
{
    (void)state;
    const float rows[4][2] = {{1, 0.1f}, {2, 0.1f}, {3, 0.1f}, {6, 0.1f}};
    ad_moments m;
    ad_moments_init(&m, 2);
    for (int i = 0; i < 4; i++) ad_moments_add(&m, rows[i]);
    float mean[2], sd[2];
    ad_moments_finish(&m, mean, sd);
    assert_true(fabsf(mean[0] - 3.0f) < 1e-6f);
    assert_true(fabsf(sd[0] - sqrtf(3.5f)) < 1e-6f);
    assert_true(fabsf(mean[1] - 0.1f) < 1e-7f);
    assert_true(sd[1] >= 0 && sd[1] < 1e-6f);
    ad_moments_free(&m);
    assert_null(m.sum);
}

static void test_frr_threshold_holds_on_held_out(void **state)
{
    (void)state;
    const size_t n = 200, held = 20000, reps = 40;
    const double rates[] = {0.05, 0.01, 0.001};
    double *cal = malloc(n * sizeof *cal), *ho = malloc(held * sizeof *ho);
    ad_rng rng;
    ad_rng_seed(&rng, 42);
    for (int d = 0; d <= DIST_UNIFORM; d++) {
        for (size_t ri = 0; ri < 3; ri++) {
            double rate = rates[ri];
            if (d == DIST_LOGNORMAL && rate < 1.0 / (double)(n + 1)) continue;
            double sum_frr = 0;
            for (size_t rep = 0; rep < reps; rep++) {
                for (size_t i = 0; i < n; i++) cal[i] = draw(&rng, d);
                for (size_t i = 0; i < held; i++) ho[i] = draw(&rng, d);
                ad_frr_threshold ft;
                assert_int_equal(ad_threshold_for_frr(cal, n, rate, &ft), 0);
                assert_true(ft.threshold >= ft.tail_u);
                /* bounded scores: past the top, but not absurdly far */
                if (d == DIST_UNIFORM) assert_true(ft.threshold < 0.25);
                sum_frr += (double)ad_count_above(ho, held, ft.threshold) / (double)held;
            }
            double mean = sum_frr / (double)reps;
            print_message("  %-9s rate %.3f: mean held-out false-reject rate %.5f\n",
                          dist_names[d], rate, mean);
            /* Monte Carlo noise of the mean: well under 15% of the rate here. */
            assert_true(mean <= rate * 1.15);
            if (d != DIST_UNIFORM) assert_true(mean >= rate / 20);
        }
    }
    free(cal);
    free(ho);
}

/* Exact survival function of the synthetic distributions (no sampling noise). */
static double survival(enum dist d, double t)
{
    switch (d) {
    case DIST_NORMAL: return 0.5 * erfc((t - 0.1) / 0.01 / sqrt(2));
    case DIST_GUMBEL: return -expm1(-exp(-(t - 0.1) / 0.01));
    case DIST_GAMMA4: {
        double x = t / 0.01;
        return x <= 0 ? 1 : exp(-x) * (1 + x + x * x / 2 + x * x * x / 6);
    }
    default: return NAN;
    }
}

/* With a confidence level the promise is per calibration set: the true
 * false-reject rate of the threshold is at or below the rate in at least
 * that share of sets (nominal 90%; 80% allowed for the finite number of
 * sets), both where the order statistic applies and where the tail fit
 * extrapolates. */
static void test_frr_threshold_confidence(void **state)
{
    (void)state;
    const size_t n = 200, reps = 80;
    const double rates[] = {0.05, 0.01, 0.001};
    double cal[200];
    ad_rng rng;
    ad_rng_seed(&rng, 99);
    for (int d = DIST_NORMAL; d <= DIST_GAMMA4; d++)
        for (size_t ri = 0; ri < 3; ri++) {
            double rate = rates[ri];
            size_t held = 0;
            double sum = 0;
            for (size_t rep = 0; rep < reps; rep++) {
                for (size_t i = 0; i < n; i++) cal[i] = draw(&rng, d);
                ad_frr_threshold ft;
                assert_int_equal(ad_threshold_for_frr_conf(cal, n, rate, 0.9, &ft), 0);
                double true_rate = survival(d, ft.threshold);
                held += true_rate <= rate;
                sum += true_rate;
            }
            print_message("  %-9s rate %.3f at 90%%: %zu of %zu sets hold it, mean rate %.5f\n",
                          dist_names[d], rate, held, reps, sum / reps);
            assert_true(held >= reps * 8 / 10);
            assert_true(sum / reps >= rate / 40); /* not absurdly far out */
        }
}

static void test_frr_threshold_confidence_ranks(void **state)
{
    (void)state;
    double v[60];
    for (int i = 0; i < 60; i++) v[i] = i + 1;
    ad_frr_threshold ft;
    /* 0.95^45 = 0.0994 <= 0.1: the maximum holds 5% at 90% with 45 images */
    assert_int_equal(ad_threshold_for_frr_conf(v, 45, 0.05, 0.9, &ft), 0);
    assert_int_equal(ft.order_rank, 45);
    assert_float_equal(ft.order_stat, 45, 0);
    /* 0.95^44 = 0.105 > 0.1: no order statistic with 44 */
    assert_int_equal(ad_threshold_for_frr_conf(v, 44, 0.05, 0.9, &ft), 0);
    assert_true(isnan(ft.order_stat));
    assert_float_equal(ft.threshold, ft.tail, 0); /* the tail fit alone */
    assert_true(ft.threshold > ft.tail_u);
    assert_int_equal(ft.min_images, 60); /* rule of three still the larger */
    /* 0.99^230 = 0.099: 230 images for 1% at 90% */
    double *w = malloc(400 * sizeof *w);
    for (int i = 0; i < 400; i++) w[i] = i;
    assert_int_equal(ad_threshold_for_frr_conf(w, 229, 0.01, 0.9, &ft), 0);
    assert_true(isnan(ft.order_stat));
    assert_int_equal(ad_threshold_for_frr_conf(w, 230, 0.01, 0.9, &ft), 0);
    assert_int_equal(ft.order_rank, 230);
    assert_int_equal(ad_threshold_for_frr_conf(w, 10, 0.01, 0.99, &ft), 0);
    assert_int_equal(ft.min_images, 459); /* ln(0.01) / ln(0.99) = 458.2 */
    /* more confidence, never a lower threshold */
    double t0, t9;
    assert_int_equal(ad_threshold_for_frr_conf(w, 400, 0.05, 0, &ft), 0);
    t0 = ft.threshold;
    assert_int_equal(ad_threshold_for_frr_conf(w, 400, 0.05, 0.9, &ft), 0);
    t9 = ft.threshold;
    assert_true(t9 >= t0);
    /* confidence out of range */
    assert_int_equal(ad_threshold_for_frr_conf(w, 400, 0.05, 1, &ft), -1);
    assert_int_equal(ad_threshold_for_frr_conf(w, 400, 0.05, 0.3, &ft), -1);
    free(w);
}

static void test_frr_threshold_reports(void **state)
{
    (void)state;
    /* 20 scores 1..20: rate 0.1 -> r = ceil(21 * 0.9) = 19 -> X_(19) = 19. */
    double v[20];
    for (int i = 0; i < 20; i++) v[i] = 20 - i; /* unsorted input is fine */
    ad_frr_threshold ft;
    assert_int_equal(ad_threshold_for_frr(v, 20, 0.1, &ft), 0);
    assert_float_equal(ft.order_stat, 19, 0);
    assert_int_equal(ft.tail_k, 5);
    assert_float_equal(ft.tail_u, 15, 0);
    assert_float_equal(ft.tail_beta, 3, 1e-12);         /* mean of 1..5 */
    assert_true(ft.threshold >= 19);
    assert_true(ft.undersized);                          /* 20 < 3 / 0.1 = 30 */
    assert_int_equal(ft.min_images, 30);
    assert_float_equal(ft.supported_rate, 0.15, 1e-12);
    /* Too small a rate for any order statistic: the tail alone, past the max. */
    assert_int_equal(ad_threshold_for_frr(v, 20, 0.001, &ft), 0);
    assert_true(isnan(ft.order_stat));
    assert_true(ft.threshold > 20);
    assert_float_equal(ft.set_frr, 0, 0);
    assert_true(ft.model_frr < 0.002);
    /* Large set, moderate rate: supported. */
    double *w = malloc(4000 * sizeof *w);
    for (int i = 0; i < 4000; i++) w[i] = i;
    assert_int_equal(ad_threshold_for_frr(w, 4000, 0.001, &ft), 0);
    assert_false(ft.undersized);
    free(w);
    /* Bad arguments. */
    assert_int_equal(ad_threshold_for_frr(v, 1, 0.1, &ft), -1);
    assert_int_equal(ad_threshold_for_frr(v, 20, 0, &ft), -1);
    assert_int_equal(ad_threshold_for_frr(v, 20, 1, &ft), -1);
    /* All scores equal: a threshold that passes them all. */
    double c[10] = {0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3};
    assert_int_equal(ad_threshold_for_frr(c, 10, 0.01, &ft), 0);
    assert_float_equal(ft.threshold, 0.3, 0);
    assert_float_equal(ft.set_frr, 0, 0);
}

static void test_youden(void **state)
{
    (void)state;
    /* Separable: threshold in the middle of the gap, J = 1. */
    double g[] = {0.1, 0.2, 0.3}, b[] = {0.7, 0.9};
    ad_separation s;
    assert_int_equal(ad_threshold_youden(g, 3, b, 2, &s), 0);
    assert_float_equal(s.threshold, 0.5, 1e-12);
    assert_float_equal(s.j, 1, 1e-12);
    assert_float_equal(s.frr, 0, 0);
    assert_float_equal(s.escape, 0, 0);
    /* Overlap: good {1,2,3,4}, bad {3.5,5,6}: best cut between 4 and 5
     * (frr 0, escape 1/3, J 2/3) beats the cut between 3 and 3.5 (frr 1/4,
     * escape 0, J 3/4)? No: 3/4 > 2/3, so the cut is at 3.25. */
    double g2[] = {4, 1, 3, 2}, b2[] = {6, 3.5, 5};
    assert_int_equal(ad_threshold_youden(g2, 4, b2, 3, &s), 0);
    assert_float_equal(s.threshold, 3.25, 1e-12);
    assert_float_equal(s.j, 0.75, 1e-12);
    assert_float_equal(s.frr, 0.25, 1e-12);
    assert_float_equal(s.escape, 0, 0);
    /* Never "reject everything": inverted classes give J = 0 at the max. */
    double g3[] = {5, 6}, b3[] = {1, 2};
    assert_int_equal(ad_threshold_youden(g3, 2, b3, 2, &s), 0);
    assert_float_equal(s.threshold, 6, 0);
    assert_float_equal(s.frr, 0, 0);
    assert_float_equal(s.j, 0, 1e-12);
    assert_int_equal(ad_threshold_youden(g3, 0, b3, 2, &s), -1);
}

static void test_round_keeps_verdicts(void **state)
{
    (void)state;
    char buf[64];
    double g[] = {0.123456789, 0.2}, b[] = {0.30001};
    /* An order statistic threshold equal to a score must not round below it. */
    double r = ad_threshold_round(0.123456789, g, 2, b, 1, buf, sizeof buf);
    assert_true(r >= 0.123456789);
    assert_true((0.123456789 > r) == 0);
    assert_string_equal(buf, "0.1235"); /* rounded up: nothing between */
    double g2[] = {0.48354304, 0.4836};
    ad_threshold_round(0.48354304, g2, 2, NULL, 0, buf, sizeof buf);
    assert_string_equal(buf, "0.48355"); /* 0.4836 would pass the second score */
    double r2 = ad_threshold_round(0.25000123, g, 2, b, 1, buf, sizeof buf);
    assert_string_equal(buf, "0.25");
    assert_float_equal(r2, 0.25, 0);
}

static int has_colour(const ad_image *im, int r, int g, int b, int tol)
{
    for (size_t i = 0; i < (size_t)im->w * im->h; i++) {
        const uint8_t *p = im->px + i * 3;
        if (abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol) return 1;
    }
    return 0;
}

static void test_plot(void **state)
{
    (void)state;
    double g[200], b[30];
    ad_rng rng;
    ad_rng_seed(&rng, 3);
    for (int i = 0; i < 200; i++) g[i] = 0.1 + 0.01 * ad_rng_normal(&rng);
    for (int i = 0; i < 30; i++) b[i] = 0.2 + 0.02 * ad_rng_normal(&rng);
    ad_image im;
    char err[AD_ERRLEN];
    assert_int_equal(ad_calib_plot(&im, 800, 480, g, 200, b, 30, 0.14, "TEST", err, sizeof err), 0);
    assert_int_equal(im.w, 800);
    assert_int_equal(im.h, 480);
    assert_int_equal(im.c, 3);
    /* threshold line: a full-height run of pure red in one column */
    int best_run = 0;
    for (int x = 0; x < im.w; x++) {
        int run = 0;
        for (int y = 0; y < im.h; y++) {
            const uint8_t *p = im.px + ((size_t)y * im.w + x) * 3;
            run = (p[0] == 214 && p[1] == 39 && p[2] == 40) ? run + 1 : 0;
            if (run > best_run) best_run = run;
        }
    }
    assert_true(best_run > im.h / 2);
    /* bars: blue (good) and orange (bad) blended over white */
    assert_true(has_colour(&im, 109, 167, 206, 3));
    assert_true(has_colour(&im, 255, 178, 110, 4));
    /* black axis text */
    assert_true(has_colour(&im, 0, 0, 0, 0));
    ad_image_free(&im);
    /* good only: no orange */
    assert_int_equal(ad_calib_plot(&im, 400, 300, g, 200, NULL, 0, 0.14, NULL, err, sizeof err), 0);
    assert_false(has_colour(&im, 255, 178, 110, 4));
    ad_image_free(&im);
    /* all scores equal still draws */
    double c[3] = {1, 1, 1};
    assert_int_equal(ad_calib_plot(&im, 320, 200, c, 3, NULL, 0, 1, "", err, sizeof err), 0);
    ad_image_free(&im);
    assert_int_equal(ad_calib_plot(&im, 100, 100, g, 200, b, 30, 0.14, "", err, sizeof err), -1);
    assert_non_null(strstr(err, "plot size"));
    assert_int_equal(ad_calib_plot(&im, 800, 480, g, 0, b, 0, 0.14, "", err, sizeof err), -1);
}

static void test_font(void **state)
{
    (void)state;
    assert_int_equal(ad_font_width("", 2), 0);
    assert_int_equal(ad_font_width("AB", 1), 11);
    assert_int_equal(ad_font_width("AB", 2), 22);
    ad_image im;
    assert_int_equal(ad_image_alloc(&im, 12, 8, 3), 0);
    const uint8_t white[3] = {255, 255, 255};
    assert_int_equal(ad_font_draw(&im, 0, 0, "1l", 1, white), 12);
    /* '1': "..#.." / ".##.." / ... / ".###." */
    const char *rows[7] = {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."};
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++)
            assert_int_equal(im.px[((size_t)y * 12 + x) * 3] == 255, rows[y][x] == '#');
    /* lowercase 'l' drawn as 'L': left column inked, bottom row full */
    for (int y = 0; y < 7; y++) assert_int_equal(im.px[((size_t)y * 12 + 6) * 3], 255);
    for (int x = 6; x < 11; x++) assert_int_equal(im.px[((size_t)6 * 12 + x) * 3], 255);
    /* spacing column and the row under the glyphs stay empty */
    for (int y = 0; y < 8; y++) assert_int_equal(im.px[((size_t)y * 12 + 5) * 3], 0);
    for (int x = 0; x < 12; x++) assert_int_equal(im.px[((size_t)7 * 12 + x) * 3], 0);
    /* clipping: drawing off the edges touches nothing and does not crash */
    ad_font_draw(&im, -20, -20, "WWWW", 3, white);
    ad_font_draw(&im, 10, 5, "\x01~", 4, white);
    ad_image_free(&im);
}

static void test_histogram_text(void **state)
{
    (void)state;
    double g[] = {1, 1.5, 2, 2, 3}, b[] = {4, 5};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ad_histogram_print(f, g, 5, b, 2, 3.5, 4, 20);
    fclose(f);
    /* header + 4 bins */
    int lines = 0;
    for (char *p = buf; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 5);
    /* range 1..5 in 4 bins of 1: good 1,1.5 | 2,2 | 3 | - ; bad - | - | 4 | 5 */
    assert_non_null(strstr(buf, "good"));
    assert_non_null(strstr(buf, "bad"));
    char *t = strstr(buf, "<- threshold 3.5");
    assert_non_null(t);
    assert_null(strstr(t + 1, "<- threshold"));
    /* the threshold's bin is the third (3 .. 4) */
    char *line3 = buf;
    for (int i = 0; i < 3; i++) line3 = strchr(line3, '\n') + 1;
    assert_true(t > line3 && t < strchr(line3, '\n'));
    free(buf);
    /* bins share the same edges with the plot */
    double lo, hi;
    ad_score_range(g, 5, b, 2, 3.5, &lo, &hi);
    assert_float_equal(lo, 1, 0);
    assert_float_equal(hi, 5, 0);
    assert_int_equal(ad_score_bin(5, lo, hi, 4), 3);
    assert_int_equal(ad_score_bin(0, lo, hi, 4), 0);
    assert_int_equal(ad_score_bin(2.99, lo, hi, 4), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auroc_known_values),
        cmocka_unit_test(test_auroc_matches_pairs_with_ties),
        cmocka_unit_test(test_pixel_auroc_hand_values),
        cmocka_unit_test(test_auroc_entry_points_agree_with_pairs),
        cmocka_unit_test(test_quantile_type7),
        cmocka_unit_test(test_moments),
        cmocka_unit_test(test_frr_threshold_holds_on_held_out),
        cmocka_unit_test(test_frr_threshold_reports),
        cmocka_unit_test(test_frr_threshold_confidence),
        cmocka_unit_test(test_frr_threshold_confidence_ranks),
        cmocka_unit_test(test_youden),
        cmocka_unit_test(test_round_keeps_verdicts),
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_font),
        cmocka_unit_test(test_histogram_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

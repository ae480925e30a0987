/* Pure calibration statistics: AUROC, quantiles, threshold rules. */
#include "test_support.h"

#include <math.h>
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
    double r2 = ad_threshold_round(0.25000123, g, 2, b, 1, buf, sizeof buf);
    assert_string_equal(buf, "0.25");
    assert_float_equal(r2, 0.25, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auroc_known_values),
        cmocka_unit_test(test_auroc_matches_pairs_with_ties),
        cmocka_unit_test(test_quantile_type7),
        cmocka_unit_test(test_frr_threshold_holds_on_held_out),
        cmocka_unit_test(test_frr_threshold_reports),
        cmocka_unit_test(test_youden),
        cmocka_unit_test(test_round_keeps_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

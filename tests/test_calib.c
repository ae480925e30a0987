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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auroc_known_values),
        cmocka_unit_test(test_auroc_matches_pairs_with_ties),
        cmocka_unit_test(test_quantile_type7),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

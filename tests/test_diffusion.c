/* Noise schedules and the reconstruction sampler's math, with analytic noise
 * predictors whose answers are known in closed form (no UNet needed). */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/diffusion.h"
#include "anomalyd/util.h"

#define GOLDEN 0x9e3779b97f4a7c15ULL

static void linear_schedule_matches_ddpm(void **state)
{
    (void)state;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, 1000, err, sizeof err), 0);
    assert_int_equal(s.T, 1000);
    assert_true(fabs(s.betas[0] - 1e-4) < 1e-15);
    assert_true(fabs(s.betas[999] - 0.02) < 1e-15);
    /* numpy: np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)) */
    assert_true(fabs(s.alphas_cumprod[0] - 0.9999) < 1e-15);
    assert_true(fabs(s.alphas_cumprod[249] - 0.5240853738253606) < 1e-12);
    assert_true(fabs(s.alphas_cumprod[999] - 4.035829765375676e-05) < 1e-15);
    for (int t = 1; t < 1000; t++) assert_true(s.alphas_cumprod[t] < s.alphas_cumprod[t - 1]);
    ad_schedule_free(&s);
    assert_null(s.betas);
    ad_schedule_free(&s); /* twice is safe */
}

static void cosine_schedule_matches_nichol_dhariwal(void **state)
{
    (void)state;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_COSINE, 1000, err, sizeof err), 0);
    /* improved-diffusion betas_for_alpha_bar with s = 0.008, max beta 0.999 */
    assert_true(fabs(s.alphas_cumprod[0] - 0.999958715775178) < 1e-12);
    assert_true(fabs(s.alphas_cumprod[249] - 0.847012161326905) < 1e-12);
    assert_true(fabs(s.alphas_cumprod[999] - 2.4287669070348567e-09) < 1e-15);
    assert_true(fabs(s.betas[999] - 0.999) < 1e-15);
    for (int t = 0; t < 1000; t++) {
        assert_true(s.betas[t] > 0 && s.betas[t] <= 0.999);
        if (t) assert_true(s.alphas_cumprod[t] < s.alphas_cumprod[t - 1]);
    }
    ad_schedule_free(&s);
}

static void schedule_rejects_bad_arguments(void **state)
{
    (void)state;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "between 2 and"));
    assert_int_equal(ad_schedule_init(&s, 7, 1000, err, sizeof err), -1);
    assert_non_null(strstr(err, "schedule"));
    ad_schedule_free(&s);
}

static void timesteps_from_noise_level(void **state)
{
    (void)state;
    assert_int_equal(ad_recon_t0(1000, 0.25), 249);
    assert_int_equal(ad_recon_t0(1000, 1.0), 999);
    assert_int_equal(ad_recon_t0(1000, 0.001), 0);
    assert_int_equal(ad_recon_t0(1000, 0.0), 0);
    assert_int_equal(ad_recon_t0(1000, 2.0), 999);
    int ts[1000];
    assert_int_equal(ad_recon_timesteps(249, 1, ts, 1000), 1);
    assert_int_equal(ts[0], 249);
    assert_int_equal(ad_recon_timesteps(249, 5, ts, 1000), 5);
    int want[5] = {249, 199, 149, 99, 49};
    for (int i = 0; i < 5; i++) assert_int_equal(ts[i], want[i]);
    /* more steps than timesteps: every timestep once */
    assert_int_equal(ad_recon_timesteps(3, 10, ts, 1000), 4);
    for (int i = 0; i < 4; i++) assert_int_equal(ts[i], 3 - i);
    for (int t0 = 0; t0 < 1000; t0 += 37)
        for (int k = 1; k <= 100; k += 7) {
            int n = ad_recon_timesteps(t0, k, ts, 1000);
            assert_int_equal(n, k < t0 + 1 ? k : t0 + 1);
            assert_int_equal(ts[0], t0);
            assert_true(ts[n - 1] >= 0);
            for (int i = 1; i < n; i++) assert_true(ts[i] < ts[i - 1]);
        }
}

/* ---- analytic noise predictors ---- */

typedef struct oracle {
    const float *x0;        /* the clean image the oracle knows */
    const double *abar;
    size_t n;               /* floats per image */
    int calls, seen_t[128];
} oracle;

/* The exact noise: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar). */
static void perfect_eps(void *user, float *eps, const float *x, const float *t, int n, int h, int w)
{
    (void)n, (void)h, (void)w;
    oracle *o = user;
    int ti = (int)t[0];
    if (o->calls < 128) o->seen_t[o->calls] = ti;
    o->calls++;
    double a = o->abar[ti];
    for (size_t j = 0; j < o->n; j++)
        eps[j] = (float)((x[j] - sqrt(a) * o->x0[j]) / sqrt(1.0 - a));
}

static void zero_eps(void *user, float *eps, const float *x, const float *t, int n, int h, int w)
{
    (void)x, (void)t, (void)n, (void)h, (void)w;
    oracle *o = user;
    o->calls++;
    memset(eps, 0, o->n * sizeof *eps);
}

static void constant_eps(void *user, float *eps, const float *x, const float *t, int n, int h,
                         int w)
{
    (void)x, (void)t, (void)n, (void)h, (void)w;
    oracle *o = user;
    o->calls++;
    for (size_t j = 0; j < o->n; j++) eps[j] = 0.3f;
}

static float *test_image(int c, int h, int w, uint64_t seed)
{
    size_t n = (size_t)c * h * w;
    float *x = ad_xmalloc(n * sizeof *x);
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    for (size_t j = 0; j < n; j++) x[j] = 1.8f * ad_rng_uniform(&rng) - 0.9f;
    return x;
}

static void perfect_eps_recovers_the_input(void **state)
{
    (void)state;
    const int c = 3, h = 8, w = 12;
    size_t n = (size_t)c * h * w;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    float *x0 = test_image(c, h, w, 5), *out = ad_xmalloc(n * sizeof *out);
    for (int kind = 0; kind < 2; kind++) {
        assert_int_equal(ad_schedule_init(&s, kind, 1000, err, sizeof err), 0);
        oracle o = {.x0 = x0, .abar = s.alphas_cumprod, .n = n};
        ad_sampler *sm;
        assert_int_equal(ad_sampler_create_fn(&sm, perfect_eps, &o, &s, c, h, w, err, sizeof err),
                         0);
        int ks[] = {1, 2, 5, 10, 50};
        double levels[] = {0.05, 0.25, 0.6};
        double ws[] = {0, 1, 5};
        for (size_t ki = 0; ki < 5; ki++)
            for (size_t li = 0; li < 3; li++)
                for (size_t wi = 0; wi < 3; wi++) {
                    ad_recon_opts opts = {.noise_level = levels[li], .steps = ks[ki],
                                          .guidance = ws[wi], .draws = 1 + (int)wi};
                    o.calls = 0;
                    ad_sampler_reconstruct(sm, out, x0, &opts, 1234 + ki);
                    assert_int_equal(o.calls, ks[ki] * opts.draws);
                    for (size_t j = 0; j < n; j++) assert_float_equal(out[j], x0[j], 2e-4);
                }
        ad_sampler_free(sm);
        ad_schedule_free(&s);
    }
    free(x0);
    free(out);
}

static void ddim_walks_the_expected_timesteps(void **state)
{
    (void)state;
    const int c = 1, h = 4, w = 4;
    size_t n = (size_t)c * h * w;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, 1000, err, sizeof err), 0);
    float *x0 = test_image(c, h, w, 9), *out = ad_xmalloc(n * sizeof *out);
    oracle o = {.x0 = x0, .abar = s.alphas_cumprod, .n = n};
    ad_sampler *sm;
    assert_int_equal(ad_sampler_create_fn(&sm, perfect_eps, &o, &s, c, h, w, err, sizeof err), 0);
    ad_recon_opts opts = {.noise_level = 0.25, .steps = 5, .guidance = 0, .draws = 1};
    ad_sampler_reconstruct(sm, out, x0, &opts, 1);
    int want[5] = {249, 199, 149, 99, 49};
    assert_int_equal(o.calls, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(o.seen_t[i], want[i]);
    ad_sampler_free(sm);
    ad_schedule_free(&s);
    free(x0);
    free(out);
}

/* With eps = 0 every DDIM step only rescales: x_hat = x_t0 / sqrt(abar_t0)
 * = x0 + sqrt((1 - abar)/abar) n whatever K is, with n the seeded noise. */
static void zero_eps_exposes_the_seeded_noise(void **state)
{
    (void)state;
    const int c = 1, h = 16, w = 16;
    size_t n = (size_t)c * h * w;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, 1000, err, sizeof err), 0);
    float *x0 = test_image(c, h, w, 11), *out = ad_xmalloc(n * sizeof *out);
    float *out2 = ad_xmalloc(n * sizeof *out);
    oracle o = {.n = n};
    ad_sampler *sm;
    assert_int_equal(ad_sampler_create_fn(&sm, zero_eps, &o, &s, c, h, w, err, sizeof err), 0);
    double a = s.alphas_cumprod[9]; /* noise_level 0.01 -> t0 = 9 */
    for (int k = 1; k <= 4; k++) {
        ad_recon_opts opts = {.noise_level = 0.01, .steps = k, .draws = 1};
        ad_sampler_reconstruct(sm, out, x0, &opts, 77);
        ad_rng rng;
        ad_rng_seed(&rng, 77);
        for (size_t j = 0; j < n; j++) {
            float xt = (float)sqrt(a) * x0[j] + (float)sqrt(1 - a) * ad_rng_normal(&rng);
            double want = xt / sqrt(a);
            want = want < -1 ? -1 : want > 1 ? 1 : want;
            assert_float_equal(out[j], want, 1e-5);
        }
    }
    /* two draws = the mean of the two single draws with seeds s and s + golden
     * (compare where no clamping happened) */
    ad_recon_opts one = {.noise_level = 0.01, .steps = 1, .draws = 1};
    ad_recon_opts two = {.noise_level = 0.01, .steps = 1, .draws = 2};
    ad_sampler_reconstruct(sm, out, x0, &one, 5);
    ad_sampler_reconstruct(sm, out2, x0, &one, 5 + GOLDEN);
    float *mean2 = ad_xmalloc(n * sizeof *mean2);
    ad_sampler_reconstruct(sm, mean2, x0, &two, 5);
    int compared = 0;
    for (size_t j = 0; j < n; j++)
        if (fabsf(out[j]) < 0.999f && fabsf(out2[j]) < 0.999f) {
            assert_float_equal(mean2[j], 0.5f * (out[j] + out2[j]), 1e-5);
            compared++;
        }
    assert_true(compared > (int)n / 2);
    /* same seed, same output; another seed, another output; in place works */
    ad_sampler_reconstruct(sm, out2, x0, &one, 5);
    assert_memory_equal(out, out2, n * sizeof *out);
    ad_sampler_reconstruct(sm, out2, x0, &one, 6);
    assert_true(memcmp(out, out2, n * sizeof *out) != 0);
    memcpy(out2, x0, n * sizeof *out2);
    ad_sampler_reconstruct(sm, out2, out2, &one, 5);
    assert_memory_equal(out, out2, n * sizeof *out);
    ad_sampler_free(sm);
    ad_schedule_free(&s);
    free(x0);
    free(out);
    free(out2);
    free(mean2);
}

/* One guided step with a constant eps, against the formula worked in double. */
static void guidance_follows_ddad(void **state)
{
    (void)state;
    const int c = 1, h = 8, w = 8;
    size_t n = (size_t)c * h * w;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, 1000, err, sizeof err), 0);
    float *x0 = test_image(c, h, w, 3), *out = ad_xmalloc(n * sizeof *out);
    float *plain = ad_xmalloc(n * sizeof *plain);
    oracle o = {.n = n};
    ad_sampler *sm;
    assert_int_equal(ad_sampler_create_fn(&sm, constant_eps, &o, &s, c, h, w, err, sizeof err),
                     0);
    const double wgt = 2.0;
    ad_recon_opts opts = {.noise_level = 0.1, .steps = 1, .guidance = wgt, .draws = 1};
    ad_sampler_reconstruct(sm, out, x0, &opts, 42);
    opts.guidance = 0;
    ad_sampler_reconstruct(sm, plain, x0, &opts, 42);
    double a = s.alphas_cumprod[99];
    ad_rng rng;
    ad_rng_seed(&rng, 42);
    int differs = 0;
    for (size_t j = 0; j < n; j++) {
        double xt = (float)sqrt(a) * x0[j] + (float)sqrt(1 - a) * ad_rng_normal(&rng);
        double e = 0.3;
        double yt = sqrt(a) * x0[j] + sqrt(1 - a) * e;
        double eh = e - wgt * sqrt(1 - a) * (yt - xt);
        double want = (xt - sqrt(1 - a) * eh) / sqrt(a);
        double want_plain = (xt - sqrt(1 - a) * e) / sqrt(a);
        want = want < -1 ? -1 : want > 1 ? 1 : want;
        want_plain = want_plain < -1 ? -1 : want_plain > 1 ? 1 : want_plain;
        assert_float_equal(out[j], want, 1e-5);
        assert_float_equal(plain[j], want_plain, 1e-5);
        if (fabs(want - want_plain) > 1e-3) differs++;
    }
    assert_true(differs > (int)n / 2);
    ad_sampler_free(sm);
    ad_schedule_free(&s);
    free(x0);
    free(out);
    free(plain);
}

static void sampler_rejects_bad_shapes(void **state)
{
    (void)state;
    ad_noise_schedule s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, 1000, err, sizeof err), 0);
    oracle o = {.n = 1};
    ad_sampler *sm = (ad_sampler *)&o;
    assert_int_equal(ad_sampler_create_fn(&sm, zero_eps, &o, &s, 2, 8, 8, err, sizeof err), -1);
    assert_null(sm);
    assert_non_null(strstr(err, "channels"));
    assert_int_equal(ad_sampler_create_fn(&sm, NULL, &o, &s, 1, 8, 8, err, sizeof err), -1);
    ad_schedule_free(&s);
    assert_int_equal(ad_sampler_create_fn(&sm, zero_eps, &o, &s, 1, 8, 8, err, sizeof err), -1);
    ad_sampler_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_schedule_matches_ddpm),
        cmocka_unit_test(cosine_schedule_matches_nichol_dhariwal),
        cmocka_unit_test(schedule_rejects_bad_arguments),
        cmocka_unit_test(timesteps_from_noise_level),
        cmocka_unit_test(perfect_eps_recovers_the_input),
        cmocka_unit_test(ddim_walks_the_expected_timesteps),
        cmocka_unit_test(zero_eps_exposes_the_seeded_noise),
        cmocka_unit_test(guidance_follows_ddad),
        cmocka_unit_test(sampler_rejects_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

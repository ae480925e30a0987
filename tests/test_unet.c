/* UNet parity with the PyTorch reference (tests/reference/make_golden.py):
 * forward output, loss, every parameter gradient, d loss / d x, and three
 * AdamW steps with gradient clipping, on tiny models from fixtures/golden/.
 *
 * Tolerances, relative to the largest magnitude of the reference tensor:
 * forward 1e-5 (float32 with different summation orders), gradients 1e-4
 * (they sum over many more terms); losses relative 2e-5; weights after
 * three AdamW steps in units of the learning rate (see below). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/model.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

#ifdef NN_COUNT_ALLOCS
/* Linked with -Wl,--wrap (tests/cmake/nn.cmake): counts the allocations made
 * by code linked into this program, including the static library. */
static long allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n) { allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocs++; return __real_realloc(p, n); }
int __wrap_posix_memalign(void **p, size_t a, size_t n) { allocs++; return __real_posix_memalign(p, a, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { allocs++; return __real_aligned_alloc(a, n); }
#endif

static float mse_and_grad(float *deps, const float *eps, const float *target, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)eps[i] - target[i];
        s += d * d;
        if (deps) deps[i] = (float)(2.0 * d / (double)n);
    }
    return (float)(s / (double)n);
}

static void check_golden(const char *name)
{
    char path[1024], err[AD_ERRLEN];
    ad_model *m = NULL;
    ad_safetensors data;
    ts_golden_path(path, sizeof(path), name);
    if (ad_model_load(path, &m, err, sizeof(err)) < 0) fail_msg("%s", err);
    ts_golden_data(name, &data);
    ad_unet *u = m->unet;
    const ad_unet_hparams *hp = ad_unet_hp(u);
    int n = (int)ts_golden_meta(&data, "n"), h = (int)ts_golden_meta(&data, "h");
    int w = (int)ts_golden_meta(&data, "w");
    size_t numel = (size_t)n * hp->in_channels * h * w;
    const float *x = ts_golden_tensor(&data, "x", numel), *t = ts_golden_tensor(&data, "t", (size_t)n);
    const float *target = ts_golden_tensor(&data, "target", numel);
    float *eps = malloc(sizeof(float) * numel), *deps = malloc(sizeof(float) * numel);
    float *dx = malloc(sizeof(float) * numel);

    assert_int_equal(ad_unet_reserve(u, n, h, w, true, err, sizeof(err)), 0);
    ad_unet_forward(u, eps, x, t, n, h, w);
    double e = ts_rel_err(eps, ts_golden_tensor(&data, "eps", numel), numel);
    printf("%s: forward rel err %.2e\n", name, e);
    assert_true(e < 1e-5);
    float loss = mse_and_grad(deps, eps, target, numel);
    float ref_loss = ts_golden_tensor(&data, "loss", 1)[0];
    assert_true(fabsf(loss - ref_loss) <= 1e-5f * fabsf(ref_loss));

    ad_unet_zero_grad(u);
    ad_unet_backward(u, dx, deps);
    double worst = 0.0;
    const char *worst_name = "";
    float *grads = ad_unet_grads(u);
    for (int i = 0; i < ad_unet_num_tensors(u); i++) {
        const ad_param_info *pi = ad_unet_tensor(u, i);
        double ge = ts_golden_grad_err(&data, pi, grads);
        if (ge > worst) {
            worst = ge;
            worst_name = pi->name;
        }
    }
    double dxe = ts_rel_err(dx, ts_golden_tensor(&data, "dx", numel), numel);
    printf("%s: worst gradient rel err %.2e (%s), dx %.2e\n", name, worst, worst_name, dxe);
    assert_true(worst < 1e-4);
    assert_true(dxe < 1e-4);

    /* three AdamW steps with clipping on the same batch, then one more loss */
    ad_adamw opt = {(float)ts_golden_meta(&data, "lr"), (float)ts_golden_meta(&data, "beta1"),
                    (float)ts_golden_meta(&data, "beta2"), (float)ts_golden_meta(&data, "eps"),
                    (float)ts_golden_meta(&data, "weight_decay"), 0};
    float clip = (float)ts_golden_meta(&data, "clip");
    const float *ref_losses = ts_golden_tensor(&data, "adam_losses", 4);
    size_t np = ad_unet_num_params(u);
    for (int step = 0; step < 4; step++) {
        ad_unet_forward(u, eps, x, t, n, h, w);
        float l = mse_and_grad(deps, eps, target, numel);
        printf("%s: adam loss %d: %.7f (torch %.7f)\n", name, step, l, ref_losses[step]);
        assert_true(fabsf(l - ref_losses[step]) <= 2e-5f * fabsf(ref_losses[step]));
        if (step == 3) break;
        ad_unet_zero_grad(u);
        ad_unet_backward(u, NULL, deps);
        float norm = ad_clip_grad_norm(grads, np, clip);
        if (step == 0) assert_true(fabsf(norm - ts_golden_tensor(&data, "grad_norm", 1)[0]) <= 1e-4f * norm);
        ad_adamw_update(&opt, ad_unet_params(u), grads, ad_unet_adam_m(u), ad_unet_adam_v(u), np);
    }
    assert_int_equal(opt.step, 3);
    /* Adam's first steps are nearly sign(g) * lr, so a weight whose gradient
     * is at float noise level may move differently by up to ~2 lr; judge the
     * weights by the largest difference in units of lr (all but a handful of
     * weights must agree to 1% of a step) */
    double worst_lr = 0.0;
    size_t off_by_1pct = 0;
    for (int i = 0; i < ad_unet_num_tensors(u); i++) {
        const ad_param_info *pi = ad_unet_tensor(u, i);
        char key[160];
        snprintf(key, sizeof(key), "after.%s", pi->name);
        const float *ref = ts_golden_tensor(&data, key, pi->count), *mine = ad_unet_params(u) + pi->offset;
        for (size_t k = 0; k < pi->count; k++) {
            double d = fabs((double)mine[k] - ref[k]) / opt.lr;
            if (d > worst_lr) worst_lr = d;
            if (d > 0.01) off_by_1pct++;
        }
    }
    printf("%s: weights after 3 AdamW steps: worst difference %.3f lr, %zu of %zu weights beyond 0.01 lr\n",
           name, worst_lr, off_by_1pct, np);
    assert_true(worst_lr < 0.5);
    assert_true(off_by_1pct <= np / 1000 + 2);

    free(eps);
    free(deps);
    free(dx);
    ad_safetensors_free(&data);
    ad_model_free(m);
}

static void test_golden_gray(void **state) { (void)state; check_golden("tiny_gray"); }
static void test_golden_rgb(void **state) { (void)state; check_golden("tiny_rgb"); }
static void test_golden_deep(void **state) { (void)state; check_golden("tiny_deep"); }

/* Inference scratch shares block temporaries; results must equal a training
 * plan, at the reserved size and at a smaller one planned into it. */
static void test_inference_plan_and_sizes(void **state)
{
    (void)state;
    ad_unet_hparams hp = {3, 8, 3, {1, 2, 2}, 2, 4};
    ad_unet *a = NULL, *b = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_unet_create(&a, &hp, err, sizeof(err)), 0);
    assert_int_equal(ad_unet_create(&b, &hp, err, sizeof(err)), 0);
    ad_unet_init(a, 99);
    ad_unet_init(b, 99);
    assert_memory_equal(ad_unet_params(a), ad_unet_params(b), sizeof(float) * ad_unet_num_params(a));
    assert_int_equal(ad_unet_size_multiple(a), 4);
    assert_int_equal(ad_unet_reserve(a, 2, 24, 20, false, err, sizeof(err)), 0);
    assert_int_equal(ad_unet_reserve(b, 2, 24, 20, true, err, sizeof(err)), 0);
    assert_int_equal(ad_unet_reserve(a, 2, 22, 20, false, err, sizeof(err)), -1);
    printf("refused: %s\n", err);
    assert_int_equal(ad_unet_reserve(a, 0, 24, 20, false, err, sizeof(err)), -1);
    size_t n = 2 * 3 * 24 * 20;
    float *x = malloc(sizeof(float) * n), *e1 = malloc(sizeof(float) * n), *e2 = malloc(sizeof(float) * n);
    float t[2] = {5.0f, 900.0f};
    ad_rng rng;
    ad_rng_seed(&rng, 3);
    for (size_t i = 0; i < n; i++) x[i] = ad_rng_normal(&rng);
    ad_unet_forward(a, e1, x, t, 2, 24, 20);
    ad_unet_forward(b, e2, x, t, 2, 24, 20);
    assert_memory_equal(e1, e2, sizeof(float) * n);
    /* smaller input and batch into the same scratch */
    ad_unet_forward(a, e1, x, t, 1, 8, 12);
    ad_unet_forward(b, e2, x, t, 1, 8, 12);
    assert_memory_equal(e1, e2, sizeof(float) * 3 * 8 * 12);
    /* batch items are independent: item 0 of a batch of 2 equals a batch of 1 */
    ad_unet_forward(a, e1, x, t, 2, 24, 20);
    ad_unet_forward(a, e2, x, t, 1, 24, 20);
    assert_memory_equal(e1, e2, sizeof(float) * 3 * 24 * 20);
    free(x);
    free(e1);
    free(e2);
    ad_unet_free(a);
    ad_unet_free(b);
}

/* Scratch is allocated by reserve; forward (inference and training),
 * backward, clipping and AdamW allocate nothing, also at a smaller size
 * planned into the reserved scratch. */
static void test_no_allocation_after_reserve(void **state)
{
    (void)state;
#ifndef NN_COUNT_ALLOCS
    skip();
#else
    ad_unet_hparams hp = {1, 8, 2, {1, 2}, 1, 4};
    ad_unet *u = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_unet_create(&u, &hp, err, sizeof(err)), 0);
    ad_unet_init(u, 1);
    size_t n = 2 * 32 * 32, np = ad_unet_num_params(u);
    float *x = calloc(n, sizeof(float)), *eps = calloc(n, sizeof(float)), *dx = calloc(n, sizeof(float));
    float t[2] = {1.0f, 500.0f};
    ad_adamw opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    float *g = ad_unet_grads(u), *m = ad_unet_adam_m(u), *v = ad_unet_adam_v(u), *p = ad_unet_params(u);
    assert_int_equal(ad_unet_reserve(u, 2, 32, 32, true, err, sizeof(err)), 0);
    ad_unet_forward(u, eps, x, t, 2, 32, 32);   /* first call may start the OpenMP pool */
    long before = allocs;
    for (int i = 0; i < 2; i++) {
        ad_unet_forward(u, eps, x, t, 2, 32, 32);
        ad_unet_zero_grad(u);
        ad_unet_backward(u, dx, eps);
        ad_clip_grad_norm(g, np, 1.0f);
        ad_adamw_update(&opt, p, g, m, v, np);
        ad_unet_forward(u, eps, x, t, 1, 16, 24);
    }
    printf("allocations during 2 training steps and 2 smaller forwards: %ld\n", allocs - before);
    assert_int_equal(allocs - before, 0);
    /* the counter works: reserving a larger size allocates */
    assert_int_equal(ad_unet_reserve(u, 4, 64, 64, true, err, sizeof(err)), 0);
    assert_true(allocs > before);
    free(x);
    free(eps);
    free(dx);
    ad_unet_free(u);
#endif
}

static void test_optim_helpers(void **state)
{
    (void)state;
    float g[4] = {3.0f, 4.0f, 0.0f, 0.0f};
    float norm = ad_clip_grad_norm(g, 4, 1.0f);
    assert_true(fabsf(norm - 5.0f) < 1e-6f);
    assert_true(fabsf(g[0] - 0.6f) < 1e-5f && fabsf(g[1] - 0.8f) < 1e-5f);
    float before[4];
    memcpy(before, g, sizeof g);
    norm = ad_clip_grad_norm(g, 4, 10.0f);     /* under the limit: unchanged, norm still told */
    assert_true(fabsf(norm - 1.0f) < 1e-5f);
    assert_memory_equal(g, before, sizeof g);
    float ema[2] = {1.0f, 0.0f}, p[2] = {0.0f, 1.0f};
    ad_ema_update(ema, p, 2, 0.9f);
    assert_true(fabsf(ema[0] - 0.9f) < 1e-7f && fabsf(ema[1] - 0.1f) < 1e-7f);
    /* first AdamW step moves every weight by lr (times sign), after decay */
    ad_adamw opt = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    float w[2] = {1.0f, 1.0f}, gr[2] = {0.5f, -2.0f}, m[2] = {0}, v[2] = {0};
    ad_adamw_update(&opt, w, gr, m, v, 2);
    assert_int_equal(opt.step, 1);
    assert_true(fabsf(w[0] - 0.9f) < 1e-6f && fabsf(w[1] - 1.1f) < 1e-6f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference_plan_and_sizes),
        cmocka_unit_test(test_optim_helpers),
        cmocka_unit_test(test_no_allocation_after_reserve),
        cmocka_unit_test(test_golden_gray),
        cmocka_unit_test(test_golden_rgb),
        cmocka_unit_test(test_golden_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

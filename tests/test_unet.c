/* UNet parity with the PyTorch reference (tests/reference/make_golden.py):
 * forward output, loss, every parameter gradient, d loss / d x, and three
 * AdamW steps with gradient clipping, on tiny models from fixtures/golden/.
 *
 * Tolerances, relative to the largest magnitude of the reference tensor:
 * forward 1e-5 (float32 with different summation orders), gradients 1e-4
 * (they sum over many more terms); losses
relative 2e-5. Adam divides by sqrt(v), so for near-zero gradients the
 * step is sign-like and amplifies float noise: weights get 3e-4. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/model.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

static const float *tensor_of(const ad_safetensors *st, const char *name, size_t expect)
{
    const ad_st_tensor *t = ad_safetensors_find(st, name);
    if (!t) fail_msg("golden tensor '%s' missing", name);
    if (expect && t->nbytes != expect * sizeof(float))
        fail_msg("golden tensor '%s' has %zu floats, expected %zu", name, t->nbytes / sizeof(float), expect);
    return (const float *)(st->data + t->offset);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0.0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

static double meta_num(const ad_safetensors *st, const char *key)
{
    const char *v = ad_safetensors_meta(st, key);
    assert_non_null(v);
    return atof(v);
}

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
    snprintf(path, sizeof(path), "%s/golden/%s.safetensors", FIXTURES_DIR, name);
    if (ad_model_load(path, &m, err, sizeof(err)) < 0) fail_msg("%s", err);
    snprintf(path, sizeof(path), "%s/golden/%s.data.safetensors", FIXTURES_DIR, name);
    if (ad_safetensors_read(path, &data, err, sizeof(err)) < 0) fail_msg("%s", err);
    ad_unet *u = m->unet;
    const ad_unet_hparams *hp = ad_unet_hp(u);
    int n = (int)meta_num(&data, "n"), h = (int)meta_num(&data, "h"), w = (int)meta_num(&data, "w");
    size_t numel = (size_t)n * hp->in_channels * h * w;
    const float *x = tensor_of(&data, "x", numel), *t = tensor_of(&data, "t", (size_t)n);
    const float *target = tensor_of(&data, "target", numel);
    float *eps = malloc(sizeof(float) * numel), *deps = malloc(sizeof(float) * numel);
    float *dx = malloc(sizeof(float) * numel);

    assert_int_equal(ad_unet_reserve(u, n, h, w, true, err, sizeof(err)), 0);
    ad_unet_forward(u, eps, x, t, n, h, w);
    double e = rel_err(eps, tensor_of(&data, "eps", numel), numel);
    printf("%s: forward rel err %.2e\n", name, e);
    assert_true(e < 1e-5);
    float loss = mse_and_grad(deps, eps, target, numel);
    float ref_loss = tensor_of(&data, "loss", 1)[0];
    assert_true(fabsf(loss - ref_loss) <= 1e-5f * fabsf(ref_loss));

    ad_unet_zero_grad(u);
    ad_unet_backward(u, dx, deps);
    double worst = 0.0;
    const char *worst_name = "";
    float *grads = ad_unet_grads(u);
    for (int i = 0; i < ad_unet_num_tensors(u); i++) {
        const ad_param_info *pi = ad_unet_tensor(u, i);
        char key[160];
        snprintf(key, sizeof(key), "grad.%s", pi->name);
        double ge = rel_err(grads + pi->offset, tensor_of(&data, key, pi->count), pi->count);
        if (ge > worst) {
            worst = ge;
            worst_name = pi->name;
        }
    }
    double dxe = rel_err(dx, tensor_of(&data, "dx", numel), numel);
    printf("%s: worst gradient rel err %.2e (%s), dx %.2e\n", name, worst, worst_name, dxe);
    assert_true(worst < 1e-4);
    assert_true(dxe < 1e-4);

    /* three AdamW steps with clipping on the same batch, then one more loss */
    ad_adamw opt = {(float)meta_num(&data, "lr"), (float)meta_num(&data, "beta1"),
                    (float)meta_num(&data, "beta2"), (float)meta_num(&data, "eps"),
                    (float)meta_num(&data, "weight_decay"), 0};
    float clip = (float)meta_num(&data, "clip");
    const float *ref_losses = tensor_of(&data, "adam_losses", 4);
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
        if (step == 0) assert_true(fabsf(norm - tensor_of(&data, "grad_norm", 1)[0]) <= 1e-4f * norm);
        ad_adamw_update(&opt, ad_unet_params(u), grads, ad_unet_adam_m(u), ad_unet_adam_v(u), np);
    }
    assert_int_equal(opt.step, 3);
    worst = 0.0;
    for (int i = 0; i < ad_unet_num_tensors(u); i++) {
        const ad_param_info *pi = ad_unet_tensor(u, i);
        char key[160];
        snprintf(key, sizeof(key), "after.%s", pi->name);
        double pe = rel_err(ad_unet_params(u) + pi->offset, tensor_of(&data, key, pi->count), pi->count);
        if (pe > worst) worst = pe;
    }
    printf("%s: weights after 3 AdamW steps rel err %.2e\n", name, worst);
    assert_true(worst < 3e-4);

    free(eps);
    free(deps);
    free(dx);
    ad_safetensors_free(&data);
    ad_model_free(m);
}

static void test_golden_gray(void **state) { (void)state; check_golden("tiny_gray"); }
static void test_golden_rgb(void **state) { (void)state; check_golden("tiny_rgb"); }
static void test_golden_deep(void **state) { (void)state; check_golden("tiny_deep"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_gray),
        cmocka_unit_test(test_golden_rgb),
        cmocka_unit_test(test_golden_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

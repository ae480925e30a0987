/* The learned anomaly head: loss gradient, network gradient (finite
 * differences), parity with the PyTorch reference (tests/reference/head.py,
 * golden files from make_golden.py), determinism, file round trip and
 * hostile files. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/head.h"
#include "anomalyd/model.h"
#include "anomalyd/util.h"

static void loss_gradient_matches_finite_differences(void **state)
{
    (void)state;
    enum { N = 64 };
    float z[N], m[N], g[N];
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    for (int i = 0; i < N; i++) {
        z[i] = 4.0f * ad_rng_normal(&rng);
        m[i] = ad_rng_uniform(&rng) < 0.3f;
    }
    for (float gamma = 0; gamma <= 2.0f; gamma += 2.0f) {
        ad_head_loss(g, z, m, N, gamma, 5.0f);
        for (int i = 0; i < N; i++) {
            float saved = z[i], e = 1e-2f;
            z[i] = saved + e;
            double up = ad_head_loss(NULL, z, m, N, gamma, 5.0f);
            z[i] = saved - e;
            double down = ad_head_loss(NULL, z, m, N, gamma, 5.0f);
            z[i] = saved;
            double fd = (up - down) / (2 * e);
            assert_true(fabs(fd - g[i]) <= 1e-3 * fabs(fd) + 2e-4);
        }
    }
    /* a confident right answer costs almost nothing, a confident wrong one a lot */
    float right = 8.0f, wrong = -8.0f, one = 1.0f;
    assert_true(ad_head_loss(NULL, &right, &one, 1, 2.0f, 5.0f) < 1e-3);
    assert_true(ad_head_loss(NULL, &wrong, &one, 1, 2.0f, 5.0f) > 8.0);
}

enum { BN = 2, C = 1, H = 8, W = 8 };

static ad_head *tiny_head(void)
{
    ad_head_hparams hp = {C, 4, 2, 3};
    ad_head *hd;
    char err[AD_ERRLEN];
    assert_int_equal(ad_head_create(&hd, &hp, err, sizeof err), 0);
    ad_head_init(hd, 11);
    assert_int_equal(ad_head_reserve(hd, BN, H, W, true, err, sizeof err), 0);
    return hd;
}

/* L = sum(logits * r): dL/dlogits = r. */
static double probe_loss(ad_head *hd, const float *x, const float *xh, const float *r)
{
    float logits[BN * H * W];
    ad_head_forward(hd, logits, x, xh, BN, H, W);
    double s = 0;
    for (int i = 0; i < BN * H * W; i++) s += (double)logits[i] * r[i];
    return s;
}

static void network_gradient_matches_finite_differences(void **state)
{
    (void)state;
    ad_head *hd = tiny_head();
    float x[BN * C * H * W], xh[BN * C * H * W], r[BN * H * W];
    ad_rng rng;
    ad_rng_seed(&rng, 2);
    for (int i = 0; i < BN * C * H * W; i++) {
        x[i] = ad_rng_normal(&rng) * 0.5f;
        xh[i] = x[i] + 0.2f * ad_rng_normal(&rng);
    }
    for (int i = 0; i < BN * H * W; i++) r[i] = ad_rng_normal(&rng);
    float logits[BN * H * W];
    ad_head_zero_grad(hd);
    ad_head_forward(hd, logits, x, xh, BN, H, W);
    ad_head_backward(hd, r);
    float *p = ad_head_params(hd), *g = ad_head_grads(hd);
    int checked = 0, bad = 0;
    for (int t = 0; t < ad_head_num_tensors(hd); t++) {
        const ad_param_info *ti = ad_head_tensor(hd, t);
        for (int k = 0; k < 3 && (size_t)k < ti->count; k++) {
            size_t idx = ti->offset + (size_t)ad_rng_below(&rng, (uint32_t)ti->count);
            float saved = p[idx], e = 1e-2f;
            p[idx] = saved + e;
            double up = probe_loss(hd, x, xh, r);
            p[idx] = saved - e;
            double down = probe_loss(hd, x, xh, r);
            p[idx] = saved;
            double fd = (up - down) / (2 * e);
            double tol = 3e-2 * fmax(fabs(fd), fabs(g[idx])) + 3e-3;
            if (fabs(fd - g[idx]) > tol) {
                bad++;
                print_message("%s[%zu]: finite difference %g, backward %g\n", ti->name,
                              idx - ti->offset, fd, g[idx]);
            }
            checked++;
        }
    }
    assert_true(checked > 60);
    assert_int_equal(bad, 0);
    ad_head_free(hd);
}

static void forward_is_deterministic_and_file_round_trips(void **state)
{
    (void)state;
    ad_head *hd = tiny_head();
    float x[BN * C * H * W], xh[BN * C * H * W], a[BN * H * W], b[BN * H * W];
    for (int i = 0; i < BN * C * H * W; i++) {
        x[i] = sinf((float)i);
        xh[i] = cosf((float)i);
    }
    ad_head_forward(hd, a, x, xh, BN, H, W);
    ad_head_forward(hd, b, x, xh, BN, H, W);
    assert_memory_equal(a, b, sizeof a);

    char *dir = ts_tmpdir("head");
    char path[1024], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    char head_path[1100];
    ad_head_path(head_path, sizeof head_path, path);
    assert_non_null(strstr(head_path, "/m.head.safetensors"));
    const char *k[] = {"anomalyd.head.steps"}, *v[] = {"10"};
    assert_int_equal(ad_head_save(head_path, hd, ad_head_params(hd), k, v, 1, err, sizeof err), 0);
    ad_head *back;
    assert_int_equal(ad_head_load(head_path, &back, err, sizeof err), 0);
    assert_int_equal(ad_head_num_params(back), ad_head_num_params(hd));
    assert_memory_equal(ad_head_params(back), ad_head_params(hd), sizeof(float) * ad_head_num_params(hd));
    assert_int_equal(ad_head_reserve(back, BN, H, W, false, err, sizeof err), 0);
    ad_head_forward(back, b, x, xh, BN, H, W);
    assert_memory_equal(a, b, sizeof a);
    ad_head_free(back);

    /* a file with a NaN weight is refused and says which tensor */
    float *p = ad_head_params(hd);
    p[ad_head_tensor(hd, 2)->offset] = NAN;
    assert_int_equal(ad_head_save(head_path, hd, p, NULL, NULL, 0, err, sizeof err), 0);
    assert_int_equal(ad_head_load(head_path, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "NaN"));
    assert_non_null(strstr(err, ad_head_tensor(hd, 2)->name));
    /* a UNet-style file without the head format tag is refused */
    const char *fk[] = {"anomalyd.format"}, *fv[] = {"something-else"};
    ad_st_out one = {"x", 1, {1}, p};
    assert_int_equal(ad_safetensors_write(head_path, &one, 1, fk, fv, 1, err, sizeof err), 0);
    assert_int_equal(ad_head_load(head_path, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an anomalyd head file"));
    /* a bad size is refused before any work */
    assert_int_equal(ad_head_reserve(hd, 1, 10, 8, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiple of 4"));
    /* a size whose scratch cannot fit memory is refused, not an abort, and
     * the head keeps the scratch it had */
    size_t before = ad_head_scratch_bytes(hd, BN, H, W, false);
    assert_true(ad_head_scratch_bytes(hd, 1, 8192, 8192, true) > ((size_t)8 << 30));
    if (ad_head_scratch_bytes(hd, 1, 8192, 8192, true) > ad_memory_limit(NULL, 0)) {
        /* (a machine with more memory would grant it: nothing to refuse) */
        assert_int_equal(ad_head_reserve(hd, 1, 8192, 8192, true, err, sizeof err), -1);
        assert_non_null(strstr(err, "head scratch for batch 1 at 8192x8192 (training) would need "));
    }
    assert_int_equal(ad_head_scratch_bytes(hd, BN, H, W, false), before);
    ts_rmtree(dir);
    free(dir);
    ad_head_free(hd);
}

/* An edited copy of the head file `good` at `bad`: tensor `drop` left out,
 * an extra tensor when `extra`, tensor `reshape` with its first two
 * dimensions swapped, metadata `key` set to `value` (NULL: removed). */
static void write_edited(const char *good, const char *bad, const char *drop, bool extra,
                         const char *reshape, const char *key, const char *value)
{
    char err[AD_ERRLEN];
    ad_safetensors st;
    if (ad_safetensors_read(good, &st, err, sizeof err) < 0) fail_msg("%s", err);
    ad_st_out ts[64];
    const char *mk[32], *mv[32];
    static const float zeros[4];
    int n = 0, m = 0;
    for (int i = 0; i < st.num_tensors; i++) {
        const ad_st_tensor *t = &st.tensors[i];
        if (drop && !strcmp(t->name, drop)) continue;
        ts[n] = (ad_st_out){.name = t->name, .ndim = t->ndim, .data = (const float *)(st.data + t->offset)};
        memcpy(ts[n].shape, t->shape, sizeof ts[n].shape);
        if (reshape && !strcmp(t->name, reshape)) {
            ts[n].shape[0] = t->shape[1];
            ts[n].shape[1] = t->shape[0];
        }
        n++;
    }
    if (extra) ts[n++] = (ad_st_out){.name = "head.bogus.weight", .ndim = 1, .shape = {4}, .data = zeros};
    for (int i = 0; i < st.num_meta; i++) {
        bool edited = key && !strcmp(st.meta_keys[i], key);
        if (edited && !value) continue;
        mk[m] = st.meta_keys[i];
        mv[m++] = edited ? value : st.meta_values[i];
    }
    assert_int_equal(ad_safetensors_write(bad, ts, n, mk, mv, m, err, sizeof err), 0);
    ad_safetensors_free(&st);
}

static void expect_load_error(const char *path, const char *needle)
{
    char err[AD_ERRLEN] = "";
    ad_head *hd = NULL;
    assert_int_equal(ad_head_load(path, &hd, err, sizeof err), -1);
    assert_null(hd);
    printf("  refused: %s\n", err);
    if (!strstr(err, needle)) fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_non_null(strstr(err, path));
}

/* Head files are checked by the same code as model files (param_table.c):
 * each refusal names the tensor or metadata key at fault. */
static void hostile_head_files_are_refused_by_name(void **state)
{
    (void)state;
    ad_head *hd = tiny_head();
    char *dir = ts_tmpdir("head_hostile");
    char good[1024], bad[1024], err[AD_ERRLEN];
    snprintf(good, sizeof good, "%s/good.head.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.head.safetensors", dir);
    assert_int_equal(ad_head_save(good, hd, ad_head_params(hd), NULL, NULL, 0, err, sizeof err), 0);
    const char *first = ad_head_tensor(hd, 0)->name;   /* head.enc1a.conv.weight, 4-D */

    write_edited(good, bad, NULL, false, NULL, NULL, NULL);
    ad_head *back = NULL;
    if (ad_head_load(bad, &back, err, sizeof err) < 0) fail_msg("unedited copy refused: %s", err);
    ad_head_free(back);

    write_edited(good, bad, "head.out.conv.bias", false, NULL, NULL, NULL);
    expect_load_error(bad, "tensor 'head.out.conv.bias' is missing");
    write_edited(good, bad, NULL, true, NULL, NULL, NULL);
    expect_load_error(bad, "unexpected tensor 'head.bogus.weight'");
    write_edited(good, bad, NULL, false, first, NULL, NULL);
    expect_load_error(bad, "has shape [3, 4, 3, 3] but the architecture needs [4, 3, 3, 3]");
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.levels", "9");
    expect_load_error(bad, "metadata 'anomalyd.head.levels' must be an integer in 2..5, got '9'");
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.groups", NULL);
    expect_load_error(bad, "metadata 'anomalyd.head.groups' is missing (not an anomalyd head file?)");
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.groups", "3");
    expect_load_error(bad, "groups (3) must divide the base channels (4)");

    /* extra metadata cannot overwrite the architecture the file declares */
    const char *k[] = {"anomalyd.head.levels"}, *v[] = {"4"};
    assert_int_equal(ad_head_save(bad, hd, ad_head_params(hd), k, v, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "'anomalyd.head.levels' is reserved for the architecture"));

    ts_rmtree(dir);
    free(dir);
    ad_head_free(hd);
}

/* The reference's head file loads; logits within 1e-5 and every gradient of
 * the training loss within 1e-4 of the reference's largest value (the UNet
 * golden test's tolerances), the loss within 1e-5 relative. */
static void check_golden(const char *name)
{
    char path[1024], err[AD_ERRLEN];
    ad_head *hd = NULL;
    ad_safetensors data;
    ts_golden_path(path, sizeof path, name);
    if (ad_head_load(path, &hd, err, sizeof err) < 0) fail_msg("%s", err);
    ts_golden_data(name, &data);
    int n = (int)ts_golden_meta(&data, "n"), h = (int)ts_golden_meta(&data, "h");
    int w = (int)ts_golden_meta(&data, "w");
    size_t in = (size_t)n * ad_head_hp(hd)->image_channels * h * w, out = (size_t)n * h * w;
    const float *x = ts_golden_tensor(&data, "x", in), *x_hat = ts_golden_tensor(&data, "x_hat", in);
    const float *mask = ts_golden_tensor(&data, "mask", out);
    float *logits = malloc(sizeof(float) * out), *dlogits = malloc(sizeof(float) * out);

    assert_int_equal(ad_head_reserve(hd, n, h, w, true, err, sizeof err), 0);
    ad_head_forward(hd, logits, x, x_hat, n, h, w);
    double e = ts_rel_err(logits, ts_golden_tensor(&data, "logits", out), out);
    printf("%s: forward rel err %.2e\n", name, e);
    assert_true(e < 1e-5);
    double loss = ad_head_loss(dlogits, logits, mask, out, (float)ts_golden_meta(&data, "gamma"),
                               (float)ts_golden_meta(&data, "focal_weight"));
    double ref_loss = ts_golden_tensor(&data, "loss", 1)[0];
    assert_true(fabs(loss - ref_loss) <= 1e-5 * fabs(ref_loss));

    ad_head_zero_grad(hd);
    ad_head_backward(hd, dlogits);
    double worst = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < ad_head_num_tensors(hd); i++) {
        const ad_param_info *pi = ad_head_tensor(hd, i);
        double ge = ts_golden_grad_err(&data, pi, ad_head_grads(hd));
        if (ge > worst) {
            worst = ge;
            worst_name = pi->name;
        }
    }
    printf("%s: loss %.7f (torch %.7f), worst gradient rel err %.2e (%s)\n", name, loss, ref_loss, worst,
           worst_name);
    assert_true(worst < 1e-4);

    free(logits);
    free(dlogits);
    ad_safetensors_free(&data);
    ad_head_free(hd);
}

static void golden_gray_four_levels(void **state) { (void)state; check_golden("tiny_head_gray"); }
static void golden_rgb_three_levels(void **state) { (void)state; check_golden("tiny_head_rgb"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_gradient_matches_finite_differences),
        cmocka_unit_test(network_gradient_matches_finite_differences),
        cmocka_unit_test(golden_gray_four_levels),
        cmocka_unit_test(golden_rgb_three_levels),
        cmocka_unit_test(forward_is_deterministic_and_file_round_trips),
        cmocka_unit_test(hostile_head_files_are_refused_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The learned anomaly head: loss gradient, network gradient (finite
 * differences), parity with the PyTorch reference (tests/reference/head.py,
 * golden files from make_golden.py), determinism, file round trip and
 * hostile files; the z-score input of a zscore head (value, channel
 * layout, its statistics in the file, leaving one image out of them). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
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
    ad_head_hparams hp = {C, 4, 2, 3, false, false};
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
    ad_head_forward(hd, logits, x, xh, NULL, NULL, BN, H, W);
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
    ad_head_forward(hd, logits, x, xh, NULL, NULL, BN, H, W);
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
    ad_head_forward(hd, a, x, xh, NULL, NULL, BN, H, W);
    ad_head_forward(hd, b, x, xh, NULL, NULL, BN, H, W);
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
    ad_head_forward(back, b, x, xh, NULL, NULL, BN, H, W);
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

/* ad_head_zscore against the formula written out in double: an ordinary
 * pixel, a spread of zero (the eps floor alone divides), and deviations
 * past the clamp on both sides. */
static void zscore_is_the_clamped_scaled_z_score(void **state)
{
    (void)state;
    enum { N = 6 };
    const float x[N] = {0.30f, -0.5f, 0.10f, 1.0f, -1.0f, 0.02f};
    const float mean[N] = {0.20f, -0.5f, 0.10f - 2.0f / 255.0f, -0.9f, 0.9f, 0.0f};
    const float sd[N] = {0.05f, 0.0f, 0.0f, 0.01f, 0.01f, 0.5f};
    float z[N];
    ad_head_zscore(z, x, mean, sd, N);
    for (int i = 0; i < N; i++) {
        double eps = 4.0 / 255.0;
        double v = ((double)x[i] - mean[i]) / sqrt((double)sd[i] * sd[i] + eps * eps);
        v = fmin(8.0, fmax(-8.0, v)) / 4.0;
        if (fabs(z[i] - v) > 1e-6) fail_msg("z[%d] = %g, expected %g", i, z[i], v);
    }
    assert_true(z[1] == 0.0f);
    assert_true(fabsf(z[2] - 0.125f) < 1e-6f);   /* one gray level over a zero spread: 1/2 sigma */
    assert_true(z[3] == 2.0f && z[4] == -2.0f);  /* clamped at 8 sigma, scaled by 1/4 */
}

/* ad_head_stats_leave_out against statistics fitted without the image:
 * four images of five pixels (one pixel equal in all, so its spread is 0),
 * each left out in turn; and one image alone is left as it is. */
static void leave_out_statistics_are_those_of_the_other_images(void **state)
{
    (void)state;
    enum { N = 4, P = 5 };
    const float img[N][P] = {{0.1f, 0.5f, -0.3f, 0.9f, 0.25f},
                             {0.2f, 0.5f, 0.4f, -0.9f, 0.25f},
                             {-0.6f, 0.5f, 0.0f, 0.8f, 0.30f},
                             {0.7f, 0.5f, 0.1f, 0.7f, 0.20f}};
    ad_moments all;
    float mean[P], sd[P];
    ad_moments_init(&all, P);
    for (int i = 0; i < N; i++) ad_moments_add(&all, img[i]);
    for (int out = 0; out < N; out++) {
        ad_moments rest;
        float want_mean[P], want_sd[P];
        ad_moments_init(&rest, P);
        for (int i = 0; i < N; i++)
            if (i != out) ad_moments_add(&rest, img[i]);
        ad_moments_finish(&rest, want_mean, want_sd);
        ad_moments_free(&rest);
        ad_moments_finish(&all, mean, sd);
        ad_head_stats_leave_out(mean, sd, img[out], P, N);
        for (int k = 0; k < P; k++)
            if (fabsf(mean[k] - want_mean[k]) > 1e-6f || fabsf(sd[k] - want_sd[k]) > 1e-5f)
                fail_msg("image %d left out, pixel %d: mean %g sd %g, expected %g %g", out, k, mean[k], sd[k],
                         want_mean[k], want_sd[k]);
        assert_true(sd[1] == 0.0f);
    }
    ad_moments_free(&all);
    float one_mean[1] = {0.3f}, one_sd[1] = {0.1f}, x[1] = {0.3f};
    ad_head_stats_leave_out(one_mean, one_sd, x, 1, 1);
    assert_true(one_mean[0] == 0.3f && one_sd[0] == 0.1f);
}

/* A zscore head whose weights are another head's, with zeros on its z
 * input channels, gives that head's logits: z comes after x, x_hat and
 * diff. One weight on the z channels moves them. */
static void zscore_channels_come_after_the_old_input(void **state)
{
    (void)state;
    ad_head *plain = tiny_head(), *zh;
    ad_head_hparams hp = *ad_head_hp(plain);
    hp.zscore = true;
    char err[AD_ERRLEN];
    assert_int_equal(ad_head_create(&zh, &hp, err, sizeof err), 0);
    assert_int_equal(ad_head_reserve(zh, BN, H, W, false, err, sizeof err), 0);
    assert_int_equal(ad_head_num_tensors(zh), ad_head_num_tensors(plain));
    const ad_param_info *first = ad_head_tensor(zh, 0);   /* enc1a weight (B, 3C+1, 3, 3) */
    assert_int_equal(first->shape[1], 3 * C + 1);
    assert_int_equal(ad_head_tensor(plain, 0)->shape[1], 2 * C + 1);
    float *pz = ad_head_params(zh);
    const float *pp = ad_head_params(plain);
    memset(pz, 0, sizeof(float) * ad_head_num_params(zh));
    for (int o = 0; o < first->shape[0]; o++)
        memcpy(pz + first->offset + (size_t)o * (3 * C + 1) * 9, pp + (size_t)o * (2 * C + 1) * 9,
               sizeof(float) * (2 * C + 1) * 9);
    for (int t = 1; t < ad_head_num_tensors(zh); t++) {
        const ad_param_info *a = ad_head_tensor(zh, t), *b = ad_head_tensor(plain, t);
        assert_string_equal(a->name, b->name);
        memcpy(pz + a->offset, pp + b->offset, sizeof(float) * a->count);
    }
    float x[BN * C * H * W], xh[BN * C * H * W], z[BN * C * H * W], a[BN * H * W], b[BN * H * W];
    ad_rng rng;
    ad_rng_seed(&rng, 5);
    for (int i = 0; i < BN * C * H * W; i++) {
        x[i] = ad_rng_normal(&rng) * 0.5f;
        xh[i] = x[i] + 0.2f * ad_rng_normal(&rng);
        z[i] = ad_rng_normal(&rng);
    }
    assert_int_equal(ad_head_reserve(plain, BN, H, W, false, err, sizeof err), 0);
    ad_head_forward(plain, a, x, xh, NULL, NULL, BN, H, W);
    ad_head_forward(zh, b, x, xh, z, NULL, BN, H, W);
    double e = ts_rel_err(b, a, BN * H * W);
    print_message("zero z weights: logits rel err %.2e against the head without z\n", e);
    assert_true(e < 1e-6);
    pz[first->offset + 2 * C + 1] = 0.5f;   /* output 0, the first z channel, tap (0, 0) */
    ad_head_forward(zh, b, x, xh, z, NULL, BN, H, W);
    assert_true(ts_rel_err(b, a, BN * H * W) > 1e-3);
    ad_head_free(zh);
    ad_head_free(plain);
}

/* A tiny zscore head with frame statistics of (C, h, w); std >= 0. */
static ad_head *tiny_zscore_head(int h, int w)
{
    ad_head_hparams hp = {C, 4, 2, 3, true, false};
    ad_head *hd;
    char err[AD_ERRLEN];
    assert_int_equal(ad_head_create(&hd, &hp, err, sizeof err), 0);
    ad_head_init(hd, 12);
    size_t count = (size_t)C * h * w;
    float *mean = malloc(sizeof(float) * count), *sd = malloc(sizeof(float) * count);
    for (size_t i = 0; i < count; i++) {
        mean[i] = sinf((float)i);
        sd[i] = i % 5 ? 0.1f + 0.01f * (float)(i % 7) : 0.0f;
    }
    ad_head_set_frame_stats(hd, mean, sd, h, w);
    free(mean);
    free(sd);
    return hd;
}

static void zscore_head_file_round_trips_with_its_statistics(void **state)
{
    (void)state;
    ad_head *hd = tiny_zscore_head(H, W);
    char *dir = ts_tmpdir("head_zscore");
    char path[1024], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/z.head.safetensors", dir);
    assert_int_equal(ad_head_save(path, hd, ad_head_params(hd), NULL, NULL, 0, err, sizeof err), 0);
    ad_head *back;
    if (ad_head_load(path, &back, err, sizeof err) < 0) fail_msg("%s", err);
    assert_true(ad_head_hp(back)->zscore);
    assert_memory_equal(ad_head_params(back), ad_head_params(hd), sizeof(float) * ad_head_num_params(hd));
    const float *sd0, *sd1, *m0 = ad_head_frame_stats(hd, &sd0, NULL, NULL);
    int h, w;
    const float *m1 = ad_head_frame_stats(back, &sd1, &h, &w);
    assert_int_equal(h, H);
    assert_int_equal(w, W);
    assert_memory_equal(m1, m0, sizeof(float) * C * H * W);
    assert_memory_equal(sd1, sd0, sizeof(float) * C * H * W);
    float x[BN * C * H * W], xh[BN * C * H * W], z[BN * C * H * W], a[BN * H * W], b[BN * H * W];
    for (int i = 0; i < BN * C * H * W; i++) {
        x[i] = sinf(0.3f * (float)i);
        xh[i] = cosf(0.7f * (float)i);
    }
    for (int i = 0; i < BN; i++) ad_head_zscore(z + i * C * H * W, x + i * C * H * W, m0, sd0, C * H * W);
    assert_int_equal(ad_head_reserve(hd, BN, H, W, false, err, sizeof err), 0);
    assert_int_equal(ad_head_reserve(back, BN, H, W, false, err, sizeof err), 0);
    ad_head_forward(hd, a, x, xh, z, NULL, BN, H, W);
    ad_head_forward(back, b, x, xh, z, NULL, BN, H, W);
    assert_memory_equal(a, b, sizeof a);
    ad_head_free(back);

    /* a zscore head without its statistics cannot be saved */
    ad_head_hparams hp = *ad_head_hp(hd);
    ad_head *bare;
    assert_int_equal(ad_head_create(&bare, &hp, err, sizeof err), 0);
    assert_int_equal(ad_head_save(path, bare, ad_head_params(bare), NULL, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "no frame statistics"));
    ad_head_free(bare);
    ts_rmtree(dir);
    free(dir);
    ad_head_free(hd);
}

/* Statistics the head could not use are refused like any bad tensor,
 * naming it: NaN, a negative spread, the wrong channels, two sizes that
 * disagree, one of the two missing, statistics without the metadata that
 * says the head reads them, and that metadata out of range. */
static void hostile_frame_statistics_are_refused_by_name(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("head_zscore_hostile");
    char good[1024], bad[1024], err[AD_ERRLEN];
    snprintf(good, sizeof good, "%s/good.head.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.head.safetensors", dir);
    ad_head *hd = tiny_zscore_head(H, W);
    assert_int_equal(ad_head_save(good, hd, ad_head_params(hd), NULL, NULL, 0, err, sizeof err), 0);

    /* values: through the head's own setter, which does not check */
    float mean[C * H * W], sd[C * H * W];
    for (int i = 0; i < C * H * W; i++) {
        mean[i] = 0;
        sd[i] = 0.1f;
    }
    sd[W + 2] = NAN;
    ad_head_set_frame_stats(hd, mean, sd, H, W);
    assert_int_equal(ad_head_save(bad, hd, ad_head_params(hd), NULL, NULL, 0, err, sizeof err), 0);
    expect_load_error(bad, "tensor 'head.frame_std' holds a non-finite value (NaN or Inf) at index 10");
    sd[W + 2] = -0.25f;
    ad_head_set_frame_stats(hd, mean, sd, H, W);
    assert_int_equal(ad_head_save(bad, hd, ad_head_params(hd), NULL, NULL, 0, err, sizeof err), 0);
    expect_load_error(bad, "tensor 'head.frame_std' is -0.25 at channel 0, row 1, column 2; a standard "
                           "deviation cannot be negative");
    ad_head_free(hd);

    /* shapes and presence: edited copies of the good file */
    write_edited(good, bad, NULL, false, "head.frame_mean", NULL, NULL);   /* [8, 1, 8] */
    expect_load_error(bad, "tensor 'head.frame_mean' must have shape [1, H, W]");
    write_edited(good, bad, NULL, false, "head.frame_std", NULL, NULL);
    expect_load_error(bad, "tensor 'head.frame_std' has shape [8, 1, 8] but the architecture needs [1, 8, 8]");
    write_edited(good, bad, "head.frame_mean", false, NULL, NULL, NULL);
    expect_load_error(bad, "tensor 'head.frame_mean' is missing (metadata anomalyd.head.zscore is 1");
    write_edited(good, bad, "head.frame_std", false, NULL, NULL, NULL);
    expect_load_error(bad, "tensor 'head.frame_std' is missing");
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.zscore", "2");
    expect_load_error(bad, "metadata 'anomalyd.head.zscore' must be an integer in 0..1, got '2'");
    /* without the key the file is an old head's, which has no statistics (and a
     * narrower first conv) */
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.zscore", NULL);
    expect_load_error(bad, "tensor 'head.enc1a.conv.weight' has shape [4, 4, 3, 3] but the architecture "
                           "needs [4, 3, 3, 3]");

    /* a head file from before z-scores (no key, no statistics) loads as one */
    ad_head *plain = tiny_head(), *back;
    assert_int_equal(ad_head_save(good, plain, ad_head_params(plain), NULL, NULL, 0, err, sizeof err), 0);
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.zscore", NULL);
    if (ad_head_load(bad, &back, err, sizeof err) < 0) fail_msg("%s", err);
    assert_false(ad_head_hp(back)->zscore);
    assert_null(ad_head_frame_stats(back, NULL, NULL, NULL));
    ad_head_free(back);
    ad_head_free(plain);
    ts_rmtree(dir);
    free(dir);
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
    size_t plane = (size_t)ad_head_hp(hd)->image_channels * h * w, in = n * plane, out = (size_t)n * h * w;
    const float *x = ts_golden_tensor(&data, "x", in), *x_hat = ts_golden_tensor(&data, "x_hat", in);
    const float *mask = ts_golden_tensor(&data, "mask", out);
    float *logits = malloc(sizeof(float) * out), *dlogits = malloc(sizeof(float) * out);
    float *z = NULL;
    if (ad_head_hp(hd)->zscore) {
        /* z from the statistics the file carries, as the detector makes it */
        const float *sd, *mean = ad_head_frame_stats(hd, &sd, NULL, NULL);
        z = malloc(sizeof(float) * in);
        for (int b = 0; b < n; b++) ad_head_zscore(z + b * plane, x + b * plane, mean, sd, plane);
        double ez = ts_rel_err(z, ts_golden_tensor(&data, "z", in), in);
        printf("%s: z rel err %.2e\n", name, ez);
        assert_true(ez < 1e-6);
    }

    /* a detail head's frame at twice the size, as the reference drew it */
    const float *x2 = ad_head_hp(hd)->detail ? ts_golden_tensor(&data, "x2", 4 * in) : NULL;

    assert_int_equal(ad_head_reserve(hd, n, h, w, true, err, sizeof err), 0);
    ad_head_forward(hd, logits, x, x_hat, z, x2, n, h, w);
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
    free(z);
    ad_safetensors_free(&data);
    ad_head_free(hd);
}

static void golden_gray_four_levels(void **state) { (void)state; check_golden("tiny_head_gray"); }
static void golden_rgb_three_levels(void **state) { (void)state; check_golden("tiny_head_rgb"); }
static void golden_rgb_zscore(void **state) { (void)state; check_golden("tiny_head_zscore"); }
static void golden_rgb_detail(void **state) { (void)state; check_golden("tiny_head_detail"); }

/* The detail key: the golden detail head loads as one; a bad value is
 * refused by name; without the key the file reads as a head without the
 * detail input, whose first conv is narrower than the file's. */
static void detail_key_is_read_and_checked(void **state)
{
    (void)state;
    char good[1024], err[AD_ERRLEN];
    char *dir = ts_tmpdir("head_detail");
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    ts_golden_path(good, sizeof good, "tiny_head_detail");
    ad_head *hd;
    if (ad_head_load(good, &hd, err, sizeof err) < 0) fail_msg("%s", err);
    assert_true(ad_head_hp(hd)->detail);
    assert_false(ad_head_hp(hd)->zscore);
    ad_head_free(hd);
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.detail", "2");
    expect_load_error(bad, "metadata 'anomalyd.head.detail' must be an integer in 0..1, got '2'");
    write_edited(good, bad, NULL, false, NULL, "anomalyd.head.detail", NULL);
    expect_load_error(bad, "tensor 'head.enc1a.conv.weight' has shape [4, 19, 3, 3] but the architecture "
                           "needs [4, 7, 3, 3]");
    /* a head cannot read both extra inputs */
    ad_head_hparams hp = {3, 4, 2, 3, true, true};
    assert_int_equal(ad_head_create(&hd, &hp, err, sizeof err), -1);
    assert_non_null(strstr(err, "not both"));
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_gradient_matches_finite_differences),
        cmocka_unit_test(network_gradient_matches_finite_differences),
        cmocka_unit_test(golden_gray_four_levels),
        cmocka_unit_test(golden_rgb_three_levels),
        cmocka_unit_test(golden_rgb_zscore),
        cmocka_unit_test(golden_rgb_detail),
        cmocka_unit_test(detail_key_is_read_and_checked),
        cmocka_unit_test(zscore_is_the_clamped_scaled_z_score),
        cmocka_unit_test(leave_out_statistics_are_those_of_the_other_images),
        cmocka_unit_test(zscore_channels_come_after_the_old_input),
        cmocka_unit_test(zscore_head_file_round_trips_with_its_statistics),
        cmocka_unit_test(hostile_frame_statistics_are_refused_by_name),
        cmocka_unit_test(forward_is_deterministic_and_file_round_trips),
        cmocka_unit_test(hostile_head_files_are_refused_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

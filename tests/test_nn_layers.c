/* Layer kernels: finite-difference gradient checks of every backward on
 * small random shapes, and fast kernels against their plain-loop references.
 *
 * The gradient check uses loss = sum(r * f(x)) for a fixed random r, so
 * backward is called with dout = r, and compares a sample of coordinates of
 * every input and parameter gradient against central differences in float32
 * with step 1e-2; the tolerance is 2e-3 of the gradient's scale (float32
 * differences of sums over up to a few hundred terms). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/nn_layers.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

static ad_rng rng;

static float *rnd(size_t n, float scale)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = scale * ad_rng_normal(&rng);
    return p;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* A layer under test: forward computes out from the current inputs. */
typedef void (*fwd_fn)(void *ctx, float *out);

static double dot_loss(void *ctx, fwd_fn f, float *out, const float *r, size_t nout)
{
    f(ctx, out);
    double s = 0.0;
    for (size_t i = 0; i < nout; i++) s += (double)r[i] * out[i];
    return s;
}

/* Checks analytic gradient g of variable v (n floats) by central differences. */
static void fd_check(const char *what, void *ctx, fwd_fn f, float *v, const float *g, size_t n,
                     const float *r, size_t nout)
{
    float *out = malloc(sizeof(float) * nout);
    double scale = 1e-3;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(g[i]));
    size_t stride = n > 40 ? n / 40 : 1;
    double worst = 0.0;
    for (size_t i = 0; i < n; i += stride) {
        const float h = 1e-2f;
        float keep = v[i];
        v[i] = keep + h;
        double lp = dot_loss(ctx, f, out, r, nout);
        v[i] = keep - h;
        double lm = dot_loss(ctx, f, out, r, nout);
        v[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double e = fabs(num - g[i]) / scale;
        if (e > worst) worst = e;
        if (e > 2e-3)
            fail_msg("%s: gradient[%zu] analytic %.6g numeric %.6g (scale %.3g)", what, i, g[i], num, scale);
    }
    printf("%-34s max rel err %.2e over %zu coords\n", what, worst, (n + stride - 1) / stride);
    free(out);
}

/* ---------------------------------------------------------------- conv */

typedef struct conv_ctx {
    ad_conv_shape s;
    float *in, *w, *b, *work;
    int fast;
} conv_ctx;

static void conv_fwd(void *p, float *out)
{
    conv_ctx *c = p;
    if (c->fast)
        ad_conv2d_forward(out, c->in, c->w, c->b, &c->s, c->work);
    else
        ad_conv2d_forward_ref(out, c->in, c->w, c->b, &c->s);
}

static void check_conv(int n, int cin, int h, int w, int oc, int k, int stride, int fast)
{
    conv_ctx c = {{n, cin, h, w, oc, k, stride, k / 2}, NULL, NULL, NULL, NULL, fast};
    int ho = ad_conv_out_size(h, k, stride, k / 2), wo = ad_conv_out_size(w, k, stride, k / 2);
    size_t nin = (size_t)n * cin * h * w, nw = (size_t)oc * cin * k * k, nout = (size_t)n * oc * ho * wo;
    c.in = rnd(nin, 1.0f);
    c.w = rnd(nw, 0.3f);
    c.b = rnd((size_t)oc, 0.3f);
    c.work = zeros(ad_conv2d_workspace(&c.s));
    float *r = rnd(nout, 1.0f), *din = zeros(nin), *dw = zeros(nw), *db = zeros((size_t)oc);
    if (fast)
        ad_conv2d_backward(din, dw, db, r, c.in, c.w, &c.s, c.work);
    else
        ad_conv2d_backward_ref(din, dw, db, r, c.in, c.w, &c.s);
    char what[96];
    snprintf(what, sizeof(what), "conv%s k%d s%d %dx%dx%dx%d->%d", fast ? "" : "_ref", k, stride, n, cin, h, w, oc);
    char lbl[128];
    snprintf(lbl, sizeof(lbl), "%s din", what);
    fd_check(lbl, &c, conv_fwd, c.in, din, nin, r, nout);
    snprintf(lbl, sizeof(lbl), "%s dw", what);
    fd_check(lbl, &c, conv_fwd, c.w, dw, nw, r, nout);
    snprintf(lbl, sizeof(lbl), "%s db", what);
    fd_check(lbl, &c, conv_fwd, c.b, db, (size_t)oc, r, nout);
    free(c.in); free(c.w); free(c.b); free(c.work); free(r); free(din); free(dw); free(db);
}

static void test_conv_gradients(void **state)
{
    (void)state;
    for (int fast = 0; fast < 2; fast++) {
        check_conv(2, 3, 6, 5, 4, 3, 1, fast);
        check_conv(2, 3, 6, 6, 4, 3, 2, fast);
        check_conv(1, 2, 7, 5, 3, 3, 2, fast);   /* odd sizes with stride 2 */
        check_conv(2, 5, 4, 3, 3, 1, 1, fast);
    }
}

/* fast vs reference on shapes that need several bands of im2col */
static void compare_conv(int n, int cin, int h, int w, int oc, int k, int stride)
{
    ad_conv_shape s = {n, cin, h, w, oc, k, stride, k / 2};
    int ho = ad_conv_out_size(h, k, stride, k / 2), wo = ad_conv_out_size(w, k, stride, k / 2);
    size_t nin = (size_t)n * cin * h * w, nw = (size_t)oc * cin * k * k, nout = (size_t)n * oc * ho * wo;
    float *in = rnd(nin, 1.0f), *wt = rnd(nw, 0.1f), *b = rnd((size_t)oc, 0.1f);
    float *work = zeros(ad_conv2d_workspace(&s));
    float *o1 = zeros(nout), *o2 = zeros(nout), *dout = rnd(nout, 1.0f);
    float *din1 = zeros(nin), *din2 = zeros(nin), *dw1 = zeros(nw), *dw2 = zeros(nw);
    float *db1 = zeros((size_t)oc), *db2 = zeros((size_t)oc);
    ad_conv2d_forward(o1, in, wt, b, &s, work);
    ad_conv2d_forward_ref(o2, in, wt, b, &s);
    ad_conv2d_backward(din1, dw1, db1, dout, in, wt, &s, work);
    ad_conv2d_backward_ref(din2, dw2, db2, dout, in, wt, &s);
    struct { const char *name; float *a, *b; size_t n; } cmp[] = {
        {"out", o1, o2, nout}, {"din", din1, din2, nin}, {"dw", dw1, dw2, nw}, {"db", db1, db2, (size_t)oc}};
    for (int i = 0; i < 4; i++) {
        double md = 0.0, mb = 1e-30;
        for (size_t j = 0; j < cmp[i].n; j++) {
            md = fmax(md, fabs((double)cmp[i].a[j] - cmp[i].b[j]));
            mb = fmax(mb, fabs((double)cmp[i].b[j]));
        }
        printf("conv k%d s%d %dx%dx%dx%d->%d %s: fast vs ref rel err %.2e\n", k, stride, n, cin, h, w, oc,
               cmp[i].name, md / mb);
        assert_true(md / mb < 2e-5);
    }
    free(in); free(wt); free(b); free(work); free(o1); free(o2); free(dout);
    free(din1); free(din2); free(dw1); free(dw2); free(db1); free(db2);
}

static void test_conv_fast_matches_ref(void **state)
{
    (void)state;
    ad_nn_set_threads(2);   /* exercise the split of bands and channels over threads */
    compare_conv(1, 128, 40, 40, 4, 3, 1);  /* 128*9*40 floats a row: two bands */
    compare_conv(2, 32, 40, 36, 16, 3, 2);
    compare_conv(2, 24, 16, 20, 12, 1, 1);
    compare_conv(1, 1, 33, 17, 4, 3, 1);
    compare_conv(2, 3, 40, 40, 1, 3, 1);    /* one output channel: one thread has no rows of dw */
    ad_nn_set_threads(3);
    compare_conv(1, 5, 70, 66, 7, 3, 2);
    compare_conv(1, 48, 20, 18, 9, 1, 1);
    ad_nn_set_threads(1);
}

/* Winograd F(4x4,3x3) against the reference: forward (with bias), and the
 * flipped form against the reference input gradient (accumulating). Shapes
 * cover partial tile groups, odd sizes, odd block counts and 1..3 threads.
 * Tolerance 1e-5 of the output scale (F(4,3) loses about one digit). */
static void compare_winograd(int n, int c, int h, int w, int oc, int threads)
{
    ad_conv_shape s = {n, c, h, w, oc, 3, 1, 1};
    size_t nin = (size_t)n * c * h * w, nw = (size_t)oc * c * 9, nout = (size_t)n * oc * h * w;
    float *in = rnd(nin, 1.0f), *wt = rnd(nw, 0.2f), *b = rnd((size_t)oc, 0.2f);
    float *work = zeros(ad_conv2d_winograd_workspace(&s, threads));
    float *o1 = zeros(nout), *o2 = zeros(nout), *dout = rnd(nout, 1.0f);
    float *din1 = rnd(nin, 1.0f), *din2 = malloc(sizeof(float) * nin);
    memcpy(din2, din1, sizeof(float) * nin);
    assert_true(ad_conv2d_winograd_ok(&s));
    ad_conv2d_winograd(o1, in, wt, b, &s, work, 0, 0, threads);
    ad_conv2d_forward_ref(o2, in, wt, b, &s);
    ad_conv2d_winograd(din1, dout, wt, NULL, &s, work, 1, 1, threads);
    ad_conv2d_backward_ref(din2, NULL, NULL, dout, in, wt, &s);
    float *dw1 = rnd(nw, 0.1f), *dw2 = malloc(sizeof(float) * nw);
    memcpy(dw2, dw1, sizeof(float) * nw);
    float *work2 = zeros(ad_conv2d_winograd_dw_workspace(&s, threads));
    ad_conv2d_winograd_dw(dw1, dout, in, &s, work2, threads);
    ad_conv2d_backward_ref(NULL, dw2, NULL, dout, in, wt, &s);
    double md3 = 0, mb3 = 1e-30;
    for (size_t i = 0; i < nw; i++) {
        md3 = fmax(md3, fabs((double)dw1[i] - dw2[i]));
        mb3 = fmax(mb3, fabs((double)dw2[i]));
    }
    printf("winograd weight gradient rel err %.2e\n", md3 / mb3);
    assert_true(md3 / mb3 < 1e-5);
    free(dw1); free(dw2); free(work2);
    double md = 0, mb = 1e-30, md2 = 0, mb2 = 1e-30;
    for (size_t i = 0; i < nout; i++) {
        md = fmax(md, fabs((double)o1[i] - o2[i]));
        mb = fmax(mb, fabs((double)o2[i]));
    }
    for (size_t i = 0; i < nin; i++) {
        md2 = fmax(md2, fabs((double)din1[i] - din2[i]));
        mb2 = fmax(mb2, fabs((double)din2[i]));
    }
    printf("winograd %dx%dx%dx%d->%d (%d threads): forward rel err %.2e, input gradient %.2e\n", n, c, h, w,
           oc, threads, md / mb, md2 / mb2);
    assert_true(md / mb < 1e-5);
    assert_true(md2 / mb2 < 1e-5);
    free(in); free(wt); free(b); free(work); free(o1); free(o2); free(dout); free(din1); free(din2);
}

static void test_winograd_matches_ref(void **state)
{
    (void)state;
    compare_winograd(1, 8, 16, 16, 8, 1);
    compare_winograd(2, 16, 13, 70, 12, 2);   /* partial tiles, 2 groups along x, odd channel blocks */
    compare_winograd(3, 4, 9, 5, 20, 3);      /* odd number of groups */
    compare_winograd(1, 32, 64, 64, 32, 2);
    compare_winograd(2, 12, 8, 136, 6, 2);    /* interior groups and a partial last group */
    compare_winograd(2, 8, 68, 130, 8, 2);    /* 102 groups: several weight-gradient chunks */
    compare_winograd(2, 1, 20, 20, 8, 2);     /* conv_in: one input channel */
    compare_winograd(2, 16, 20, 20, 1, 2);    /* conv_out: one output channel */
}

/* ---------------------------------------------------------------- groupnorm */

typedef struct gn_ctx {
    float *in, *gamma, *beta, *mean, *rstd;
    int n, c, hw, g, silu;
} gn_ctx;

static void gn_fwd(void *p, float *out)
{
    gn_ctx *c = p;
    ad_groupnorm_forward(out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->n, c->c, c->hw, c->g, c->silu);
}

static void check_groupnorm(int n, int ch, int hw, int groups, int silu)
{
    gn_ctx c = {NULL, NULL, NULL, NULL, NULL, n, ch, hw, groups, silu};
    size_t nin = (size_t)n * ch * hw;
    c.in = rnd(nin, 2.0f);
    for (size_t i = 0; i < nin; i++) c.in[i] += 0.5f;
    c.gamma = rnd((size_t)ch, 0.5f);
    for (int i = 0; i < ch; i++) c.gamma[i] += 1.0f;
    c.beta = rnd((size_t)ch, 0.5f);
    c.mean = zeros((size_t)n * groups);
    c.rstd = zeros((size_t)n * groups);
    float *out = zeros(nin), *out_ref = zeros(nin), *mr = zeros((size_t)n * groups), *rr = zeros((size_t)n * groups);
    ad_groupnorm_forward(out, c.mean, c.rstd, c.in, c.gamma, c.beta, n, ch, hw, groups, silu);
    ad_groupnorm_forward_ref(out_ref, mr, rr, c.in, c.gamma, c.beta, n, ch, hw, groups, silu);
    for (size_t i = 0; i < nin; i++) assert_true(fabsf(out[i] - out_ref[i]) <= 1e-5f * (1.0f + fabsf(out_ref[i])));
    float *r = rnd(nin, 1.0f), *din = zeros(nin), *dg = zeros((size_t)ch), *dbt = zeros((size_t)ch);
    ad_groupnorm_backward(din, dg, dbt, r, c.in, c.mean, c.rstd, c.gamma, c.beta, n, ch, hw, groups, silu);
    char what[96];
    snprintf(what, sizeof(what), "groupnorm%s %dx%dx%d g%d din", silu ? "+silu" : "", n, ch, hw, groups);
    fd_check(what, &c, gn_fwd, c.in, din, nin, r, nin);
    snprintf(what, sizeof(what), "groupnorm%s %dx%dx%d g%d dgamma", silu ? "+silu" : "", n, ch, hw, groups);
    fd_check(what, &c, gn_fwd, c.gamma, dg, (size_t)ch, r, nin);
    snprintf(what, sizeof(what), "groupnorm%s %dx%dx%d g%d dbeta", silu ? "+silu" : "", n, ch, hw, groups);
    fd_check(what, &c, gn_fwd, c.beta, dbt, (size_t)ch, r, nin);
    free(c.in); free(c.gamma); free(c.beta); free(c.mean); free(c.rstd); free(out); free(out_ref);
    free(mr); free(rr); free(r); free(din); free(dg); free(dbt);
}

static void test_groupnorm_gradients(void **state)
{
    (void)state;
    check_groupnorm(2, 6, 10, 3, 0);
    check_groupnorm(2, 6, 10, 3, 1);
    check_groupnorm(1, 4, 7, 1, 1);
    check_groupnorm(3, 8, 5, 8, 1);
}

/* ---------------------------------------------------------------- small layers */

typedef struct simple_ctx {
    float *a, *b, *w, *bias;
    int n, c, h, w_, k, m;
    int kind;
} simple_ctx;

enum { K_SILU, K_LINEAR, K_UPSAMPLE, K_CONCAT, K_ADDCH, K_ADD };

static void simple_fwd(void *p, float *out)
{
    simple_ctx *c = p;
    switch (c->kind) {
    case K_SILU: ad_silu_forward(out, c->a, (size_t)c->n); break;
    case K_LINEAR: ad_linear_forward(out, c->a, c->w, c->bias, c->n, c->k, c->m); break;
    case K_UPSAMPLE: ad_upsample2x_forward(out, c->a, c->n, c->c, c->h, c->w_); break;
    case K_CONCAT: ad_concat_forward(out, c->a, c->b, c->n, c->c, c->k, c->h); break;
    case K_ADDCH:
        memcpy(out, c->a, sizeof(float) * c->n * c->c * c->h);
        ad_add_channel_forward(out, c->b, c->n, c->c, c->h);
        break;
    case K_ADD: ad_add_forward(out, c->a, c->b, (size_t)c->n); break;
    }
}

static void test_small_layer_gradients(void **state)
{
    (void)state;
    /* SiLU */
    simple_ctx s = {rnd(50, 3.0f), NULL, NULL, NULL, 50, 0, 0, 0, 0, 0, K_SILU};
    float *r = rnd(50, 1.0f), *d = zeros(50);
    ad_silu_backward(d, r, s.a, 50);
    fd_check("silu din", &s, simple_fwd, s.a, d, 50, r, 50);
    free(s.a); free(r); free(d);

    /* Linear (3 x 7 -> 5) */
    simple_ctx l = {rnd(21, 1.0f), NULL, rnd(35, 0.5f), rnd(5, 0.5f), 3, 0, 0, 0, 7, 5, K_LINEAR};
    r = rnd(15, 1.0f);
    float *din = zeros(21), *dw = zeros(35), *db = zeros(5);
    ad_linear_backward(din, dw, db, r, l.a, l.w, 3, 7, 5);
    fd_check("linear din", &l, simple_fwd, l.a, din, 21, r, 15);
    fd_check("linear dw", &l, simple_fwd, l.w, dw, 35, r, 15);
    fd_check("linear db", &l, simple_fwd, l.bias, db, 5, r, 15);
    free(l.a); free(l.w); free(l.bias); free(r); free(din); free(dw); free(db);

    /* upsample (2,3,4,5) -> (2,3,8,10) */
    simple_ctx u = {rnd(120, 1.0f), NULL, NULL, NULL, 2, 3, 4, 5, 0, 0, K_UPSAMPLE};
    r = rnd(480, 1.0f);
    din = zeros(120);
    ad_upsample2x_backward(din, r, 2, 3, 4, 5);
    fd_check("upsample2x din", &u, simple_fwd, u.a, din, 120, r, 480);
    float *up = zeros(480);
    ad_upsample2x_forward(up, u.a, 2, 3, 4, 5);
    assert_true(up[0] == u.a[0] && up[1] == u.a[0] && up[10] == u.a[0] && up[11] == u.a[0]);
    assert_true(up[2] == u.a[1] && up[20] == u.a[5]);
    free(u.a); free(r); free(din); free(up);

    /* concat (2, 3+2, 6): c = ca, k = cb, h = hw */
    simple_ctx c = {rnd(36, 1.0f), rnd(24, 1.0f), NULL, NULL, 2, 3, 6, 0, 2, 0, K_CONCAT};
    r = rnd(60, 1.0f);
    float *da = zeros(36), *dbb = zeros(24);
    ad_concat_backward(da, dbb, r, 2, 3, 2, 6);
    fd_check("concat da", &c, simple_fwd, c.a, da, 36, r, 60);
    fd_check("concat db", &c, simple_fwd, c.b, dbb, 24, r, 60);
    free(c.a); free(c.b); free(r); free(da); free(dbb);

    /* per-channel add (2,3,5) += (2,3) */
    simple_ctx a = {rnd(30, 1.0f), rnd(6, 1.0f), NULL, NULL, 2, 3, 5, 0, 0, 0, K_ADDCH};
    r = rnd(30, 1.0f);
    float *dv = zeros(6);
    ad_add_channel_backward(dv, r, 2, 3, 5);
    fd_check("add_channel dv", &a, simple_fwd, a.b, dv, 6, r, 30);
    free(a.a); free(a.b); free(r); free(dv);

    /* residual add */
    simple_ctx ra = {rnd(12, 1.0f), rnd(12, 1.0f), NULL, NULL, 12, 0, 0, 0, 0, 0, K_ADD};
    r = rnd(12, 1.0f);
    da = zeros(12);
    ad_add_backward(da, r, 12);
    fd_check("add da", &ra, simple_fwd, ra.a, da, 12, r, 12);
    free(ra.a); free(ra.b); free(r); free(da);
}

static void test_time_embedding(void **state)
{
    (void)state;
    float t[2] = {0.0f, 10.0f}, e[16];
    ad_time_embedding(e, t, 2, 8);
    for (int i = 0; i < 4; i++) {
        assert_true(fabsf(e[i]) < 1e-7f);           /* sin(0) */
        assert_true(fabsf(e[4 + i] - 1.0f) < 1e-7f); /* cos(0) */
    }
    /* f_1 = 10000^(-1/4) = 0.1: sin(10 * 0.1) */
    assert_true(fabsf(e[8 + 1] - sinf(1.0f)) < 1e-6f);
    assert_true(fabsf(e[8 + 4] - cosf(10.0f)) < 1e-6f);
}

int main(void)
{
    ad_rng_seed(&rng, 42);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_gradients),
        cmocka_unit_test(test_conv_fast_matches_ref),
        cmocka_unit_test(test_winograd_matches_ref),
        cmocka_unit_test(test_groupnorm_gradients),
        cmocka_unit_test(test_small_layer_gradients),
        cmocka_unit_test(test_time_embedding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

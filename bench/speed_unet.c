/* Speed and interoperability helper for bench/speed.sh and
 * tests/reference/roundtrip.py. Prints key=value lines.
 *
 *   speed_unet sgemm THREADS                      OpenBLAS sgemm GFLOP/s at 1024^3
 *   speed_unet infer MODEL H W THREADS REPS       ms per UNet evaluation (batch 1)
 *   speed_unet train MODEL THREADS STEPS          samples/s, batch 8 of 64x64, fwd+bwd+AdamW
 *   speed_unet save PATH IN BASE MULT RB GROUPS SEED   write a freshly initialised model
 *   speed_unet forward MODEL DATA OUT             eps for DATA's x, t -> OUT (safetensors)
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/config.h"
#include "anomalyd/model.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static ad_model *load(const char *path)
{
    ad_model *m;
    char err[AD_ERRLEN];
    if (ad_model_load(path, &m, err, sizeof(err)) < 0) ad_die("%s", err);
    return m;
}

static int cmd_sgemm(int threads)
{
    const int n = 1024, reps = 5;
    ad_nn_set_threads(threads);
    float *a = ad_xalloc_aligned(sizeof(float) * n * n), *b = ad_xalloc_aligned(sizeof(float) * n * n);
    float *c = ad_xalloc_aligned(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = 1.0f / (1 + i % 7);
    double best = 1e9;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = ad_now_sec();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = ad_now_sec() - t0;
        if (r && dt < best) best = dt;
    }
    printf("sgemm_gflops=%.1f\n", 2.0 * n * n * n / best * 1e-9);
    free(a); free(b); free(c);
    return 0;
}

static int cmd_infer(const char *path, int h, int w, int threads, int reps)
{
    ad_model *m = load(path);
    ad_unet *u = m->unet;
    char err[AD_ERRLEN];
    ad_nn_set_threads(threads);
    if (ad_unet_reserve(u, 1, h, w, false, err, sizeof(err)) < 0) ad_die("%s", err);
    int c = ad_unet_hp(u)->in_channels;
    float *x = ad_xmalloc(sizeof(float) * c * h * w), *eps = ad_xmalloc(sizeof(float) * c * h * w), t = 250.0f;
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    for (int i = 0; i < c * h * w; i++) x[i] = ad_rng_normal(&rng);
    ad_unet_forward(u, eps, x, &t, 1, h, w);   /* warm-up: pages, OpenBLAS threads */
    double *ms = ad_xmalloc(sizeof(double) * reps);
    ad_unet_reset_stats(u);
    double c0 = cpu_sec();
    for (int r = 0; r < reps; r++) {
        double t0 = ad_now_sec();
        ad_unet_forward(u, eps, x, &t, 1, h, w);
        ms[r] = 1e3 * (ad_now_sec() - t0);
    }
    double cpu_ms = 1e3 * (cpu_sec() - c0) / reps;
    ad_unet_stats st;
    ad_unet_get_stats(u, &st);
    printf("cpu_ms=%.2f\n", cpu_ms);
    printf("ms=%.2f\nconv_gflop=%.3f\nconv_gflops=%.1f\nconv_share=%.2f\n", median(ms, reps),
           st.conv_gflop / reps, st.conv_gflop / st.conv_sec, st.conv_sec * 1e3 / reps / median(ms, reps));
    free(ms); free(x); free(eps);
    ad_model_free(m);
    return 0;
}

static int cmd_train(const char *path, int threads, int steps)
{
    const int n = 8, hw = 64;
    ad_model *m = load(path);
    ad_unet *u = m->unet;
    char err[AD_ERRLEN];
    ad_nn_set_threads(threads);
    if (ad_unet_reserve(u, n, hw, hw, true, err, sizeof(err)) < 0) ad_die("%s", err);
    int c = ad_unet_hp(u)->in_channels;
    size_t numel = (size_t)n * c * hw * hw, np = ad_unet_num_params(u);
    float *x = ad_xmalloc(sizeof(float) * numel), *eps = ad_xmalloc(sizeof(float) * numel);
    float *target = ad_xmalloc(sizeof(float) * numel), *deps = ad_xmalloc(sizeof(float) * numel), t[8];
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    ad_adamw opt = {2e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    double *ms = ad_xmalloc(sizeof(double) * steps), cpu = 0.0;
    for (int s = 0; s < steps + 1; s++) {
        for (size_t i = 0; i < numel; i++) {
            x[i] = ad_rng_normal(&rng);
            target[i] = ad_rng_normal(&rng);
        }
        for (int i = 0; i < n; i++) t[i] = (float)ad_rng_below(&rng, 1000);
        double t0 = ad_now_sec(), c0 = cpu_sec();
        ad_unet_forward(u, eps, x, t, n, hw, hw);
        for (size_t i = 0; i < numel; i++) deps[i] = 2.0f * (eps[i] - target[i]) / (float)numel;
        ad_unet_zero_grad(u);
        ad_unet_backward(u, NULL, deps);
        ad_clip_grad_norm(ad_unet_grads(u), np, 1.0f);
        ad_adamw_update(&opt, ad_unet_params(u), ad_unet_grads(u), ad_unet_adam_m(u), ad_unet_adam_v(u), np);
        if (s) {   /* the first step is warm-up */
            ms[s - 1] = 1e3 * (ad_now_sec() - t0);
            cpu += 1e3 * (cpu_sec() - c0);
        }
    }
    double med = median(ms, steps);
    printf("train_cpu_ms_per_step=%.1f\n", cpu / steps);
    printf("train_ms_per_step=%.1f\ntrain_samples_per_s=%.1f\n", med, n * 1e3 / med);
    free(ms); free(x); free(eps); free(target); free(deps);
    ad_model_free(m);
    return 0;
}

static int cmd_save(char **argv)
{
    ad_unet_hparams hp;
    char err[AD_ERRLEN];
    memset(&hp, 0, sizeof(hp));
    hp.in_channels = atoi(argv[3]);
    hp.base_channels = atoi(argv[4]);
    if (ad_model_parse_channel_mult(argv[5], &hp, err, sizeof(err)) < 0) ad_die("%s", err);
    hp.res_blocks = atoi(argv[6]);
    hp.groups = atoi(argv[7]);
    ad_unet *u;
    if (ad_unet_create(&u, &hp, err, sizeof(err)) < 0) ad_die("%s", err);
    ad_unet_init(u, strtoull(argv[8], NULL, 10));
    const char *k[] = {"anomalyd.provenance"}, *v[] = {"bench/speed_unet save"};
    if (ad_model_save(argv[2], u, ad_unet_params(u), 1000, AD_SCHEDULE_LINEAR, k, v, 1, err, sizeof(err)) < 0)
        ad_die("%s", err);
    printf("params=%zu\n", ad_unet_num_params(u));
    ad_unet_free(u);
    return 0;
}

static int cmd_forward(const char *model, const char *data, const char *out)
{
    ad_model *m = load(model);
    ad_safetensors st;
    char err[AD_ERRLEN];
    if (ad_safetensors_read(data, &st, err, sizeof(err)) < 0) ad_die("%s", err);
    const ad_st_tensor *x = ad_safetensors_find(&st, "x"), *t = ad_safetensors_find(&st, "t");
    if (!x || !t || x->ndim != 4) ad_die("%s: needs x (N,C,H,W) and t (N)", data);
    int n = (int)x->shape[0], h = (int)x->shape[2], w = (int)x->shape[3];
    if (ad_unet_reserve(m->unet, n, h, w, false, err, sizeof(err)) < 0) ad_die("%s", err);
    float *eps = ad_xmalloc(x->nbytes);
    ad_unet_forward(m->unet, eps, (const float *)(st.data + x->offset), (const float *)(st.data + t->offset),
                    n, h, w);
    ad_st_out o = {"eps", 4, {x->shape[0], x->shape[1], x->shape[2], x->shape[3]}, eps};
    if (ad_safetensors_write(out, &o, 1, NULL, NULL, 0, err, sizeof(err)) < 0) ad_die("%s", err);
    free(eps);
    ad_safetensors_free(&st);
    ad_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "sgemm")) return cmd_sgemm(atoi(argv[2]));
    if (argc >= 7 && !strcmp(argv[1], "infer"))
        return cmd_infer(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    if (argc >= 5 && !strcmp(argv[1], "train")) return cmd_train(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 9 && !strcmp(argv[1], "save")) return cmd_save(argv);
    if (argc >= 5 && !strcmp(argv[1], "forward")) return cmd_forward(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: see the comment at the top of bench/speed_unet.c\n");
    return 2;
}

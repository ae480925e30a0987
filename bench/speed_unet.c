/* Speed and interoperability helper for bench/speed.sh and
 * tests/reference/roundtrip.py. Prints key=value lines.
 *
 *   speed_unet sgemm THREADS                      OpenBLAS sgemm GFLOP/s at 1024^3
 *   speed_unet infer MODEL H W THREADS REPS       ms per UNet evaluation (batch 1)
 *   speed_unet train MODEL THREADS STEPS          samples/s, batch 8 of 64x64, fwd+bwd+AdamW
 *   speed_unet save PATH IN BASE MULT RB GROUPS SEED   write a freshly initialised model
 *   speed_unet savehead MODEL BASE GROUPS LEVELS SEED [H W | detail]  a freshly initialised
 *                                                 head beside MODEL; with H W one that reads
 *                                                 z-scores, frame statistics of HxW
 *                                                 (train.head_zscore's head); with detail one
 *                                                 that reads the frame at twice the size
 *                                                 (train.head_detail's head)
 *   speed_unet inspect MODEL H W THREADS REPS [FH FW]  the detector recipe (detector.map: head),
 *                                                 model input HxW, frame FHxFW (default HxW)
 *   speed_unet headtrain MODEL CROP THREADS STEPS head training step, batch 8 of CROPxCROP
 *   speed_unet forward MODEL DATA OUT             eps for DATA's x, t -> OUT (safetensors)
 *
 * inspect and headtrain read the head at ad_head_path(MODEL) (what savehead
 * writes) and use the default detector settings (noise_level 0.2, one step,
 * one draw, mirror all: four head passes, sigma 0, score max). inspect prints, as medians over REPS:
 * recon_ms (ad_sampler_reconstruct: noise + one UNet evaluation + x0),
 * head_ms (ad_head_forward on x, x_hat and, for a zscore head, z, for a
 * detail head the frame at twice the size) and ms,
 * the whole ad_detector_inspect of an FHxFW ROI (resize to HxW, 8-bit to
 * float, reconstruction, z, the head on the frame and its three mirror
 * images, sigmoid, average, max, defect box). headtrain prints per step the head's forward +
 * BCE/focal loss + backward + clip + AdamW + EMA (head_step_ms) and, apart,
 * the eight one-step reconstructions head training makes for its crops, one
 * at a time as src/head/head_train.c does (recon_ms).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/head.h"
#include "anomalyd/image.h"
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

/* ---- the detector recipe: one-step reconstruction + learned head ---- */

typedef void (*bench_fn)(void *ctx);

/* Median wall ms of reps calls after one warm-up call; *cpu_ms gets the mean
 * process CPU ms per call. */
static double time_median(bench_fn fn, void *ctx, int reps, double *cpu_ms)
{
    fn(ctx);
    double *ms = ad_xmalloc(sizeof(double) * reps), c0 = cpu_sec();
    for (int r = 0; r < reps; r++) {
        double t0 = ad_now_sec();
        fn(ctx);
        ms[r] = 1e3 * (ad_now_sec() - t0);
    }
    *cpu_ms = 1e3 * (cpu_sec() - c0) / reps;
    double med = median(ms, reps);
    free(ms);
    return med;
}

static ad_head *load_head_beside(const char *model)
{
    char path[AD_PATH_MAX + 32], err[AD_ERRLEN];
    ad_head *hd;
    ad_head_path(path, sizeof path, model);
    if (ad_head_load(path, &hd, err, sizeof err) < 0) ad_die("%s", err);
    return hd;
}

/* The recipe's config: defaults, the learned map, this model and size. */
static ad_config recipe_config(const char *model, int channels, int h, int w, int threads)
{
    ad_config cfg;
    ad_config_defaults(&cfg);
    snprintf(cfg.path, sizeof cfg.path, "bench/speed_unet");
    snprintf(cfg.model.path, sizeof cfg.model.path, "%s", model);
    cfg.model.color = channels == 3 ? AD_COLOR_RGB : AD_COLOR_GRAY;
    cfg.model.input_width = w;
    cfg.model.input_height = h;
    cfg.detector.map = AD_MAP_HEAD;
    cfg.detector.threads = threads;
    cfg.threshold = 0.5;
    return cfg;
}

static ad_recon_opts recipe_recon(const ad_config *cfg)
{
    ad_recon_opts ro = {cfg->detector.noise_level, cfg->detector.steps, cfg->detector.guidance,
                        cfg->detector.draws};
    return ro;
}

/* Reconstructs n images of c x h x w, one at a time as the detector and
 * head training do. */
typedef struct recon_bench {
    ad_model *model;
    ad_noise_schedule sched;
    ad_sampler *sampler;
    ad_recon_opts ro;
    int n;
    size_t per;
    const float *x;
    float *x_hat;
} recon_bench;

static void recon_open(recon_bench *rb, const char *model, const ad_config *cfg, int c, int h, int w)
{
    char err[AD_ERRLEN];
    rb->model = load(model);
    rb->ro = recipe_recon(cfg);
    rb->per = (size_t)c * h * w;
    if (ad_schedule_init(&rb->sched, rb->model->schedule, rb->model->T, err, sizeof err) < 0 ||
        ad_sampler_create(&rb->sampler, rb->model->unet, &rb->sched, c, h, w, err, sizeof err) < 0)
        ad_die("%s", err);
}

static void recon_close(recon_bench *rb)
{
    ad_sampler_free(rb->sampler);
    ad_schedule_free(&rb->sched);
    ad_model_free(rb->model);
}

static void run_recon(void *ctx)
{
    recon_bench *rb = ctx;
    for (int b = 0; b < rb->n; b++)
        ad_sampler_reconstruct(rb->sampler, rb->x_hat + rb->per * b, rb->x + rb->per * b, &rb->ro,
                               (uint64_t)b + 1);
}

typedef struct inspect_bench {
    ad_head *head;
    ad_detector *detector;
    ad_image roi;               /* the frame */
    int h, w;                   /* the model input */
    const float *x, *x_hat, *z; /* z: NULL unless the head reads z-scores */
    const float *x2;            /* NULL unless the head reads the frame at twice the size */
    float *logits;
} inspect_bench;

static void run_head(void *ctx)
{
    inspect_bench *ib = ctx;
    ad_head_forward(ib->head, ib->logits, ib->x, ib->x_hat, ib->z, ib->x2, 1, ib->h, ib->w);
}

/* n floats uniform in [-1, 1) (the values do not change the timing). */
static float *random_floats(size_t n, ad_rng *rng)
{
    float *v = ad_xalloc_aligned(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) v[i] = 2.0f * ad_rng_uniform(rng) - 1.0f;
    return v;
}

static void run_inspect(void *ctx)
{
    inspect_bench *ib = ctx;
    ad_result res;
    char err[AD_ERRLEN];
    if (ad_detector_inspect(ib->detector, &ib->roi, &res, err, sizeof err) < 0) ad_die("%s", err);
}

/* argv: BASE GROUPS LEVELS SEED [H W | detail] */
static int cmd_savehead(const char *model, int argc, char **argv)
{
    ad_model *m = load(model);
    bool detail = argc == 5 && !strcmp(argv[4], "detail");
    ad_head_hparams hp = {ad_unet_hp(m->unet)->in_channels, atoi(argv[0]), atoi(argv[1]), atoi(argv[2]),
                          argc >= 6, detail};
    ad_model_free(m);
    ad_head *hd;
    char err[AD_ERRLEN], path[AD_PATH_MAX + 32];
    if (ad_head_create(&hd, &hp, err, sizeof err) < 0) ad_die("%s", err);
    ad_head_init(hd, strtoull(argv[3], NULL, 10));
    if (hp.zscore) {
        /* the values do not change the timing */
        int h = atoi(argv[4]), w = atoi(argv[5]);
        size_t count = (size_t)hp.image_channels * h * w;
        float *mean = ad_xcalloc(count, sizeof(float)), *sd = ad_xmalloc(count * sizeof(float));
        for (size_t i = 0; i < count; i++) sd[i] = 0.25f;
        ad_head_set_frame_stats(hd, mean, sd, h, w);
        free(mean);
        free(sd);
    }
    ad_head_path(path, sizeof path, model);
    const char *k[] = {"anomalyd.provenance"}, *v[] = {"bench/speed_unet savehead"};
    if (ad_head_save(path, hd, ad_head_params(hd), k, v, 1, err, sizeof err) < 0) ad_die("%s", err);
    printf("head_params=%zu\n", ad_head_num_params(hd));
    ad_head_free(hd);
    return 0;
}

/* The recipe on a fh x fw frame (8-bit, random) with an h x w model input:
 * the reconstruction and head rows at the input size, the inspection row
 * the whole ad_detector_inspect, frame resize included. */
static int cmd_inspect(const char *model, int h, int w, int threads, int reps, int fh, int fw)
{
    char err[AD_ERRLEN];
    inspect_bench ib = {.h = h, .w = w};
    ib.head = load_head_beside(model);
    int c = ad_head_hp(ib.head)->image_channels;
    ad_config cfg = recipe_config(model, c, h, w, threads);
    if (ad_detector_open(&ib.detector, &cfg, err, sizeof err) < 0) ad_die("%s", err);
    if (ad_head_reserve(ib.head, 1, h, w, false, err, sizeof err) < 0) ad_die("%s", err);
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    ib.roi.w = fw;
    ib.roi.h = fh;
    ib.roi.c = c;
    ib.roi.px = ad_xmalloc((size_t)c * fh * fw);
    for (size_t i = 0; i < (size_t)c * fh * fw; i++) ib.roi.px[i] = (uint8_t)ad_rng_below(&rng, 256);
    ad_image in = {.w = w, .h = h, .c = c};
    size_t numel = (size_t)c * h * w;
    in.px = ad_xmalloc(numel);
    for (size_t i = 0; i < numel; i++) in.px[i] = (uint8_t)ad_rng_below(&rng, 256);
    float *x = ad_xalloc_aligned(sizeof(float) * numel), *x_hat = ad_xalloc_aligned(sizeof(float) * numel);
    ad_image_to_float(x, &in);
    ad_image_free(&in);
    ib.x = x;
    ib.x_hat = x_hat;
    float *z = NULL;
    const float *sd, *mean = ad_head_frame_stats(ib.head, &sd, NULL, NULL);
    if (mean) {
        z = ad_xalloc_aligned(sizeof(float) * numel);
        ad_head_zscore(z, x, mean, sd, numel);
    }
    ib.z = z;
    float *x2 = ad_head_hp(ib.head)->detail ? random_floats(4 * numel, &rng) : NULL;
    ib.x2 = x2;
    ib.logits = ad_xalloc_aligned(sizeof(float) * h * w);
    recon_bench rb = {.n = 1, .x = x, .x_hat = x_hat};
    recon_open(&rb, model, &cfg, c, h, w);

    double recon_cpu, head_cpu, cpu;
    double recon_ms = time_median(run_recon, &rb, reps, &recon_cpu);
    double head_ms = time_median(run_head, &ib, reps, &head_cpu);
    double ms = time_median(run_inspect, &ib, reps, &cpu);
    printf("recon_ms=%.2f\nrecon_cpu_ms=%.2f\nhead_ms=%.2f\nhead_cpu_ms=%.2f\nms=%.2f\ncpu_ms=%.2f\n",
           recon_ms, recon_cpu, head_ms, head_cpu, ms, cpu);
    recon_close(&rb);
    free(x);
    free(x_hat);
    free(z);
    free(x2);
    free(ib.logits);
    ad_image_free(&ib.roi);
    ad_detector_close(ib.detector);
    ad_head_free(ib.head);
    return 0;
}

/* One head training step as src/head/head_train.c takes it (its loss
 * constants: focal gamma 2, weight 5; clip 1; EMA 0.999), on a fixed batch. */
typedef struct head_step_bench {
    ad_head *head;
    int n, crop;
    const float *x, *x_hat, *z, *mask;   /* z: NULL unless the head reads z-scores */
    const float *x2;                     /* NULL unless the head reads the frame at twice the size */
    float *logits, *dlogits, *m, *v, *ema;
    ad_adamw opt;
} head_step_bench;

static void run_head_step(void *ctx)
{
    head_step_bench *hs = ctx;
    size_t np = ad_head_num_params(hs->head), count = (size_t)hs->n * hs->crop * hs->crop;
    ad_head_forward(hs->head, hs->logits, hs->x, hs->x_hat, hs->z, hs->x2, hs->n, hs->crop, hs->crop);
    ad_head_loss(hs->dlogits, hs->logits, hs->mask, count, 2.0f, 5.0f);
    ad_head_zero_grad(hs->head);
    ad_head_backward(hs->head, hs->dlogits);
    ad_clip_grad_norm(ad_head_grads(hs->head), np, 1.0f);
    ad_adamw_update(&hs->opt, ad_head_params(hs->head), ad_head_grads(hs->head), hs->m, hs->v, np);
    ad_ema_update(hs->ema, ad_head_params(hs->head), np, 0.999f);
}

static int cmd_headtrain(const char *model, int crop, int threads, int steps)
{
    enum { BATCH = 8 };
    char err[AD_ERRLEN];
    head_step_bench hs = {.n = BATCH, .crop = crop, .opt = {2e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 0}};
    hs.head = load_head_beside(model);
    int c = ad_head_hp(hs.head)->image_channels;
    ad_nn_set_threads(threads);
    if (ad_head_reserve(hs.head, BATCH, crop, crop, true, err, sizeof err) < 0) ad_die("%s", err);
    size_t per = (size_t)c * crop * crop, pix = (size_t)BATCH * crop * crop, np = ad_head_num_params(hs.head);
    float *x = ad_xmalloc(sizeof(float) * BATCH * per), *x_hat = ad_xmalloc(sizeof(float) * BATCH * per);
    float *mask = ad_xmalloc(sizeof(float) * pix);
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    for (size_t i = 0; i < BATCH * per; i++) x[i] = 2.0f * ad_rng_uniform(&rng) - 1.0f;
    for (size_t i = 0; i < pix; i++) mask[i] = ad_rng_uniform(&rng) < 0.05f;
    float *z = NULL;
    if (ad_head_hp(hs.head)->zscore) {
        z = ad_xmalloc(sizeof(float) * BATCH * per);
        for (size_t i = 0; i < BATCH * per; i++) z[i] = 0.5f * ad_rng_normal(&rng);
    }
    float *x2 = ad_head_hp(hs.head)->detail ? random_floats(4 * BATCH * per, &rng) : NULL;
    hs.x = x;
    hs.x_hat = x_hat;
    hs.z = z;
    hs.x2 = x2;
    hs.mask = mask;
    hs.logits = ad_xmalloc(sizeof(float) * pix);
    hs.dlogits = ad_xmalloc(sizeof(float) * pix);
    hs.m = ad_xcalloc(np, sizeof(float));
    hs.v = ad_xcalloc(np, sizeof(float));
    hs.ema = ad_xmalloc(sizeof(float) * np);
    memcpy(hs.ema, ad_head_params(hs.head), sizeof(float) * np);
    ad_config cfg = recipe_config(model, c, crop, crop, threads);
    recon_bench rb = {.n = BATCH, .x = x, .x_hat = x_hat};
    recon_open(&rb, model, &cfg, c, crop, crop);

    double recon_cpu, step_cpu;
    double recon_ms = time_median(run_recon, &rb, steps, &recon_cpu);
    double step_ms = time_median(run_head_step, &hs, steps, &step_cpu);
    printf("recon_ms=%.1f\nrecon_cpu_ms=%.1f\nhead_step_ms=%.1f\nhead_step_cpu_ms=%.1f\n", recon_ms,
           recon_cpu, step_ms, step_cpu);
    recon_close(&rb);
    free(x);
    free(x_hat);
    free(z);
    free(x2);
    free(mask);
    free(hs.logits);
    free(hs.dlogits);
    free(hs.m);
    free(hs.v);
    free(hs.ema);
    ad_head_free(hs.head);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "sgemm")) return cmd_sgemm(atoi(argv[2]));
    if (argc >= 7 && !strcmp(argv[1], "infer"))
        return cmd_infer(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    if (argc >= 5 && !strcmp(argv[1], "train")) return cmd_train(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 9 && !strcmp(argv[1], "save")) return cmd_save(argv);
    if ((argc == 7 || argc == 8 || argc == 9) && !strcmp(argv[1], "savehead")) return cmd_savehead(argv[2], argc - 3, argv + 3);
    if (argc >= 7 && !strcmp(argv[1], "inspect"))
        return cmd_inspect(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                           argc >= 9 ? atoi(argv[7]) : atoi(argv[3]), argc >= 9 ? atoi(argv[8]) : atoi(argv[4]));
    if (argc >= 6 && !strcmp(argv[1], "headtrain"))
        return cmd_headtrain(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc >= 5 && !strcmp(argv[1], "forward")) return cmd_forward(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: see the comment at the top of bench/speed_unet.c\n");
    return 2;
}

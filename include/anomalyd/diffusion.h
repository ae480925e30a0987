/* Noise schedule, partial-noise reconstruction sampler and the training loop.
 * Network (unet.h), schedule and sampler are separate: the sampler only calls
 * ad_unet_forward. */
#ifndef ANOMALYD_DIFFUSION_H
#define ANOMALYD_DIFFUSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/unet.h"

#define AD_DIFFUSION_T 1000

typedef struct ad_schedule_t {
    int T;
    int kind;                 /* enum ad_schedule */
    double *betas;            /* T entries */
    double *alphas_cumprod;   /* abar_t, T entries */
} ad_noise_schedule;

int ad_schedule_init(ad_noise_schedule *s, int kind, int T, char *err, size_t errlen);
void ad_schedule_free(ad_noise_schedule *s);

/* Reconstruction options (from detector config). */
typedef struct ad_recon_opts {
    double noise_level;       /* t0 = round(noise_level * T) - 1, clamped to [0, T-1] */
    int steps;                /* DDIM steps from t0 to 0; 1 = single x0 prediction */
    double guidance;          /* w of DDAD-style guidance; 0 = plain DDIM */
    int draws;                /* independent noise draws; output is their mean */
} ad_recon_opts;

/* Scratch for one (C, H, W) reconstruction; allocated once. The sampler
 * copies what it needs from the schedule; it borrows the unet, which must
 * outlive it. ad_sampler_create reserves the unet's inference scratch for
 * (1, h, w); h and w must be multiples of ad_unet_size_multiple. */
typedef struct ad_sampler ad_sampler;
int ad_sampler_create(ad_sampler **out, ad_unet *unet, const ad_noise_schedule *s,
                      int c, int h, int w, char *err, size_t errlen);
/* Same with any noise predictor (tests use an analytic one). fn must write
 * eps (n, C, h, w) for x (n, C, h, w) at timesteps t; the sampler calls it
 * with n = 1. */
typedef void (*ad_eps_fn)(void *user, float *eps, const float *x, const float *t,
                          int n, int h, int w);
int ad_sampler_create_fn(ad_sampler **out, ad_eps_fn fn, void *user,
                         const ad_noise_schedule *s, int c, int h, int w,
                         char *err, size_t errlen);
void ad_sampler_free(ad_sampler *sm);
/* x0 and x_hat are (C, H, W) in [-1, 1]; noise drawn from `seed` (callers
 * derive it from the frame content so a frame always gets the same score).
 * x_hat may equal x0. The result is clamped to [-1, 1]. No allocation.
 *
 * Math (eta = 0 DDIM): x_t0 = sqrt(abar_t0) x0 + sqrt(1 - abar_t0) n with
 * n ~ N(0, 1) from the seed (draw d uses seed + d * 0x9e3779b97f4a7c15);
 * then for each t in ad_recon_timesteps: eps = model(x_t, t); with guidance
 * w > 0, y_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps and
 * eps <- eps - w sqrt(1 - abar_t) (y_t - x_t); x0' = (x_t - sqrt(1 - abar_t)
 * eps) / sqrt(abar_t); x_prev = sqrt(abar_prev) x0' + sqrt(1 - abar_prev) eps
 * (abar_prev = 1 after the last step, so K = 1 returns x0'). Draws are
 * averaged. */
void ad_sampler_reconstruct(ad_sampler *sm, float *x_hat, const float *x0,
                            const ad_recon_opts *opts, uint64_t seed);

/* t0 for a noise level: round(noise_level * T) - 1 clamped to [0, T-1]. */
int ad_recon_t0(int T, double noise_level);
/* The DDIM timesteps from t0 down: fills ts (capacity max_ts) and returns
 * their count, min(steps, t0 + 1). ts[i] = (t0 + 1) * (K - i) / K - 1 in
 * integer arithmetic, strictly decreasing, ts[0] = t0. */
int ad_recon_timesteps(int t0, int steps, int *ts, int max_ts);

/* Training (anomalyctl train). Progress is reported through the callback. */
typedef struct ad_train_progress {
    long step, total_steps;
    double loss, loss_smoothed;
    double samples_per_sec;
    double eta_sec;
} ad_train_progress;

typedef struct ad_train_opts {
    const ad_config *cfg;
    const char *images_dir;
    const char *resume_path;          /* checkpoint to continue, or NULL */
    long steps;                       /* total steps; 0 = cfg->train.steps */
    volatile int *stop_flag;          /* set by SIGINT: save a checkpoint and stop */
    void (*progress)(const ad_train_progress *p, void *user); /* every step; may be NULL */
    void *user;
    ad_train_progress *last;          /* receives the final progress, may be NULL */
} ad_train_opts;

/* Returns 0 when training finished (model written to cfg->model.path),
 * 1 when stopped by the flag (checkpoint written), -1 on error.
 *
 * Each step: `batch` random crops (train.crop, flips per train.flip_h/v) of
 * the images in images_dir resized to model.input_width x input_height,
 * t ~ U{0..T-1}, noise ~ N(0, 1), loss = mean (eps_pred - noise)^2; then
 * global-norm clipping (train.grad_clip), AdamW (bias-corrected, beta
 * 0.9/0.999, eps 1e-8, train.weight_decay) with the learning rate ramped
 * linearly over train.warmup steps, and an EMA of the weights with decay
 * min(train.ema, (1 + s) / (10 + s)) after update s, so short runs are not
 * dominated by the random init. Every random number comes from one RNG
 * seeded by train.seed (the init from the same seed), so a run is
 * bit-for-bit repeatable on the same machine and thread count, and a
 * checkpoint (every train.checkpoint_every steps, at the end and on stop)
 * continues it exactly. The checkpoint path is train.checkpoint, or
 * model.path + ".ckpt" when empty. The model file gets the EMA weights.
 * If opts->last is non-NULL it receives the final progress. */
int ad_train_run(const ad_train_opts *opts, char *err, size_t errlen);

/* Checks what training needs of a config beyond the key table: a valid
 * architecture, and train.crop a multiple of 2^(levels-1) that fits the model
 * input. The error names the config file; callers exit 2. */
int ad_train_check_config(const ad_config *cfg, char *err, size_t errlen);

/* Path of the checkpoint for cfg (train.checkpoint or model.path + ".ckpt"). */
void ad_train_checkpoint_path(const ad_config *cfg, char *out, size_t len);

#endif

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

/* Scratch for one (C, H, W) reconstruction; allocated once. */
typedef struct ad_sampler ad_sampler;
int ad_sampler_create(ad_sampler **out, ad_unet *unet, const ad_noise_schedule *s,
                      int c, int h, int w, char *err, size_t errlen);
void ad_sampler_free(ad_sampler *sm);
/* x0 and x_hat are (C, H, W) in [-1, 1]; noise drawn from `seed` (callers
 * derive it from the frame content so a frame always gets the same score).
 * No allocation. */
void ad_sampler_reconstruct(ad_sampler *sm, float *x_hat, const float *x0,
                            const ad_recon_opts *opts, uint64_t seed);

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
    volatile int *stop_flag;          /* set by SIGINT: save a checkpoint and stop */
    void (*progress)(const ad_train_progress *p, void *user);
    void *user;
} ad_train_opts;

/* Returns 0 when training finished (model written to cfg->model.path),
 * 1 when stopped by the flag (checkpoint written), -1 on error. */
int ad_train_run(const ad_train_opts *opts, char *err, size_t errlen);

#endif

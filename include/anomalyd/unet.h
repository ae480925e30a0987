/* Noise-prediction UNet (DDPM style), forward and backward on the CPU.
 *
 * Layout (ARCHITECTURE §6): sinusoidal time embedding + 2-layer MLP; per level
 * `res_blocks` ResBlocks (GroupNorm, SiLU, 3x3 conv, time projection, GroupNorm,
 * SiLU, 3x3 conv, 1x1 skip when channels change) then a stride-2 3x3 conv
 * down (not after the last level); a middle of two ResBlocks; an up path that
 * mirrors it with skip concatenations and nearest-2x upsample + 3x3 conv;
 * GroupNorm, SiLU, 3x3 conv out. Tensor names follow the PyTorch reference
 * module in tests/reference/unet.py so a state_dict loads on either side.
 *
 * Ownership: ad_unet owns parameters, gradients, Adam moments (one allocation
 * each, same layout) and its scratch. All activations are NCHW float32. */
#ifndef ANOMALYD_UNET_H
#define ANOMALYD_UNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/param_table.h"

typedef struct ad_unet_hparams {
    int in_channels;                  /* 1 or 3; output has the same count */
    int base_channels;                /* e.g. 32 */
    int num_levels;                   /* entries in channel_mult */
    int channel_mult[AD_MAX_LEVELS];  /* e.g. 1,2,2 */
    int res_blocks;                   /* per level */
    int groups;                       /* GroupNorm groups */
} ad_unet_hparams;

typedef struct ad_unet ad_unet;

/* Validates hparams (sizes bounded so a hostile file cannot ask for gigabytes)
 * and builds the tensor table. The parameter array is allocated (zeroed) on
 * the first ad_unet_params / init / forward, so a loader can check a file's
 * tensors against the table before committing memory. */
int ad_unet_create(ad_unet **out, const ad_unet_hparams *hp, char *err, size_t errlen);
void ad_unet_free(ad_unet *u);
/* Checks hparams against the bounds above without allocating anything. */
int ad_unet_validate_hparams(const ad_unet_hparams *hp, char *err, size_t errlen);
/* Parameter count of an architecture (validated; refused above 64 M floats). */
int ad_unet_count_params(const ad_unet_hparams *hp, size_t *count, char *err, size_t errlen);
const ad_unet_hparams *ad_unet_hp(const ad_unet *u);

/* PyTorch-default-like init (kaiming uniform), seeded; deterministic. */
void ad_unet_init(ad_unet *u, uint64_t seed);

size_t ad_unet_num_params(const ad_unet *u);
float *ad_unet_params(ad_unet *u);
/* Gradients and Adam moments share the params layout; each is allocated
 * (zeroed) on first use, so inference-only users never pay for them. */
float *ad_unet_grads(ad_unet *u);
float *ad_unet_adam_m(ad_unet *u);
float *ad_unet_adam_v(ad_unet *u);
int ad_unet_num_tensors(const ad_unet *u);
const ad_param_info *ad_unet_tensor(const ad_unet *u, int i);
/* The whole table (what ad_model_save writes and ad_model_load checks). */
const ad_param_table *ad_unet_table(const ad_unet *u);
const ad_param_info *ad_unet_find_tensor(const ad_unet *u, const char *name);

/* Multiple of 2^(num_levels-1) required of H and W. */
int ad_unet_size_multiple(const ad_unet *u);

/* Allocates scratch for batch n at h x w once; `training` keeps every
 * activation for backward. Calling again with the same or smaller sizes is
 * free; forward never allocates. */
int ad_unet_reserve(ad_unet *u, int n, int h, int w, bool training, char *err, size_t errlen);
/* Bytes of scratch reserved so far. */
size_t ad_unet_scratch_bytes(const ad_unet *u);

/* eps is (n, C, h, w), x is (n, C, h, w), t holds n timesteps (float, 0..T-1).
 * Requires a prior reserve whose scratch covers (n, h, w). x must stay alive
 * and unchanged until backward (conv_in's weight gradient reads it). */
void ad_unet_forward(ad_unet *u, float *eps, const float *x, const float *t, int n, int h, int w);
/* Accumulates parameter gradients (+=) for the last training forward given
 * d loss / d eps; dx (may be NULL) is overwritten with d loss / d x. */
void ad_unet_backward(ad_unet *u, float *dx, const float *deps);
void ad_unet_zero_grad(ad_unet *u);

/* Time and arithmetic spent in convolutions since the last reset (forward
 * and backward), for the speed benchmark. */
typedef struct ad_unet_stats {
    double conv_sec, conv_gflop;
} ad_unet_stats;
void ad_unet_get_stats(const ad_unet *u, ad_unet_stats *st);
void ad_unet_reset_stats(ad_unet *u);

/* Threads for the compute kernels (OpenBLAS + OpenMP kept from oversubscribing).
 * Process-wide and atomic: a reload may set it while another thread's
 * kernels read it. */
void ad_nn_set_threads(int threads);
/* OpenMP keeps the team size per thread, so a thread that never called
 * ad_nn_set_threads (the daemon's inspection thread; the setting is made
 * where the detector is opened) would run every parallel region without an
 * explicit count on all cores. Makes the calling thread's default follow
 * the setting; the detector calls it before each use. */
void ad_nn_thread_follow(void);
/* The setting; the first call without a prior set applies OpenMP's default.
 * OpenBLAS always runs single-threaded: kernels split work over OpenMP
 * threads and call sgemm on each share. A UNet's scratch is sized at reserve
 * for the threads then; later forwards use at most that many. */
int ad_nn_get_threads(void);

/* AdamW over a flat parameter array; moments m, v of the same length (start
 * zeroed). Increments opt->step first, then applies the torch.optim.AdamW
 * update with bias correction for that step. */
typedef struct ad_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    long step;                        /* number of updates taken */
} ad_adamw;
void ad_adamw_update(ad_adamw *opt, float *params, const float *grads, float *m, float *v, size_t n);
/* Scales grads so their global L2 norm is <= max_norm; returns the norm before. */
float ad_clip_grad_norm(float *grads, size_t n, float max_norm);
/* ema = decay * ema + (1 - decay) * params */
void ad_ema_update(float *ema, const float *params, size_t n, float decay);

#endif

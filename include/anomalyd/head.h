/* The learned anomaly head (DRAEM / DiffusionAD style): a small fully
 * convolutional encoder-decoder without time input that reads a frame x and
 * its diffusion reconstruction x_hat (plus their channel-mean absolute
 * difference) and predicts a per-pixel defect logit. It is trained on
 * synthetic defects (synth.h) with the diffusion model frozen.
 *
 *   in (N, 2C+1, H, W) -> enc1 (B, H) -> enc2 (2B, H/2) -> ... -> encL (2^(L-1) B)
 *   -> up + conv ++ enc(L-1) -> conv -> ... -> up + conv (B) ++ enc1 -> conv (B)
 *   -> conv 3x3 -> logits (N, 1, H, W)
 * with L levels (2..AD_HEAD_MAX_LEVELS); every conv is 3x3 followed by
 * GroupNorm+SiLU except the last. Each level has two convs (the first of
 * an encoder level has stride 2), so deeper levels see more context.
 *
 * Ownership: ad_head owns parameters, gradients and scratch (one allocation
 * each); H and W must be multiples of 2^(L-1). Tensor names start with "head.". */
#ifndef ANOMALYD_HEAD_H
#define ANOMALYD_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/param_table.h"

typedef struct ad_head_hparams {
    int image_channels;   /* C of x and x_hat: 1 or 3 */
    int base_channels;    /* B, e.g. 16 */
    int groups;           /* GroupNorm groups, divides B */
    int levels;           /* L: resolution levels, 2..AD_HEAD_MAX_LEVELS (files without it: 3) */
} ad_head_hparams;

#define AD_HEAD_MAX_LEVELS 5

typedef struct ad_head ad_head;

int ad_head_create(ad_head **out, const ad_head_hparams *hp, char *err, size_t errlen);
void ad_head_free(ad_head *h);
const ad_head_hparams *ad_head_hp(const ad_head *h);
void ad_head_init(ad_head *h, uint64_t seed);

size_t ad_head_num_params(const ad_head *h);
/* Input sides must be multiples of this (2^(levels-1)). */
int ad_head_size_multiple(const ad_head *h);
float *ad_head_params(ad_head *h);
float *ad_head_grads(ad_head *h);
int ad_head_num_tensors(const ad_head *h);
const ad_param_info *ad_head_tensor(const ad_head *h, int i);

/* Scratch for batch n at h x w (multiples of ad_head_size_multiple); `training` also keeps what
 * backward needs. Forward never allocates. */
int ad_head_reserve(ad_head *hd, int n, int h, int w, bool training, char *err, size_t errlen);
/* Bytes of scratch a reserve for (n, h, w, training) would take; changes nothing. */
size_t ad_head_scratch_bytes(const ad_head *hd, int n, int h, int w, bool training);
/* x, x_hat are (n, C, h, w); logits (n, 1, h, w). */
void ad_head_forward(ad_head *hd, float *logits, const float *x, const float *x_hat,
                     int n, int h, int w);
/* Accumulates parameter gradients for the last forward given d loss/d logits. */
void ad_head_backward(ad_head *hd, const float *dlogits);
void ad_head_zero_grad(ad_head *hd);

/* Mean binary cross-entropy plus focal_weight * mean focal loss (gamma) of
 * logits against masks in {0, 1}; fills dlogits (may be NULL) with the
 * gradient of that mean. Returns the loss. */
double ad_head_loss(float *dlogits, const float *logits, const float *mask, size_t n,
                    float gamma, float focal_weight);

/* The head lives in its own safetensors file beside the model:
 * model.path "x.safetensors" -> "x.head.safetensors". */
void ad_head_path(char *out, size_t outlen, const char *model_path);
int ad_head_save(const char *path, const ad_head *hd, const float *params,
                 const char *const *keys, const char *const *values, int n,
                 char *err, size_t errlen);
int ad_head_load(const char *path, ad_head **out, char *err, size_t errlen);

/* Trains the head on synthetic defects over the good images in images_dir
 * with the frozen diffusion model at cfg->model.path, for cfg->train.head_steps
 * steps; writes ad_head_path(cfg->model.path) (EMA weights) and its training
 * checkpoint ad_head_path(...) + ".ckpt" every train.checkpoint_every steps
 * and at the end. With resume, goes on from that checkpoint (refused when it
 * belongs to another model, architecture, crop or image folder). Returns 0,
 * 1 when stopped by the flag, -1 on error. */
typedef struct ad_head_train_opts {
    const ad_config *cfg;
    const char *images_dir;
    bool resume;
    volatile int *stop_flag;
    void (*progress)(long step, long total, double loss, double samples_per_sec, void *user);
    void *user;
} ad_head_train_opts;
int ad_head_train_run(const ad_head_train_opts *opts, char *err, size_t errlen);

#endif

/* The learned anomaly head (DRAEM / DiffusionAD style): a small fully
 * convolutional encoder-decoder without time input that reads a frame x and
 * its diffusion reconstruction x_hat (plus their channel-mean absolute
 * difference) and predicts a per-pixel defect logit. It is trained on
 * synthetic defects (synth.h) with the diffusion model frozen.
 *
 * A zscore head also reads the frame's per-pixel z-score z against the good
 * training images (ad_head_zscore with the frame statistics it carries), so
 * it can learn where a pixel's distance from what good parts show there
 * matters (aligned parts) and where it does not (unaligned textures). Its
 * input is [x, x_hat, diff, z]: the first 2C+1 channels are those of a head
 * without statistics.
 *
 *   in (N, 2C+1 [+C], H, W) -> enc1 (B, H) -> enc2 (2B, H/2) -> ... -> encL (2^(L-1) B)
 *   -> up + conv ++ enc(L-1) -> conv -> ... -> up + conv (B) ++ enc1 -> conv (B)
 *   -> conv 3x3 -> logits (N, 1, H, W)
 * with L levels (2..AD_HEAD_MAX_LEVELS); every conv is 3x3 followed by
 * GroupNorm+SiLU except the last. Each level has two convs (the first of
 * an encoder level has stride 2), so deeper levels see more context.
 *
 * A detail head also reads the frame at twice the input size, x2 (C, 2H,
 * 2W), folded 2x2 into 4C channels at H x W (channel 4c + 2dy + dx holds
 * x2[c][2y + dy][2x + dx]): a crack one pixel wide at twice the size,
 * which averaging down to the input size turns into a faint half-pixel
 * line, reaches the first conv whole, for the cost of 4C more input
 * channels. Its input is [x, x_hat, diff, fold(x2)] (no z with it).
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
    bool zscore;          /* also reads z (C channels) (files without it: false) */
    bool detail;          /* also reads x2 folded (4C channels) (files without it: false) */
} ad_head_hparams;

#define AD_HEAD_MAX_LEVELS 5

/* z = clamp((x - mean) / sqrt(std^2 + EPS^2), -ZMAX, ZMAX) / ZSCALE, x in
 * the [-1, 1] units of ad_image_to_float (one gray level is 2/255). EPS is
 * two gray levels: where the good images agree exactly (a clipped
 * background) a level or two of sensor noise or rounding they happened not
 * to show is not a defect (one standard deviation or less), while a spread
 * of several levels counts in full. Beyond 8 standard deviations a pixel is
 * certainly unlike the good parts, and the clamp keeps such pixels from
 * dwarfing the other inputs; ZSCALE 4 puts z in [-2, 2], the order of x and
 * x_hat, with good pixels mostly within +-0.5. */
#define AD_HEAD_ZSCORE_EPS (4.0f / 255.0f)
#define AD_HEAD_ZSCORE_MAX 8.0f
#define AD_HEAD_ZSCORE_SCALE 4.0f

typedef struct ad_head ad_head;

int ad_head_create(ad_head **out, const ad_head_hparams *hp, char *err, size_t errlen);
void ad_head_free(ad_head *h);
const ad_head_hparams *ad_head_hp(const ad_head *h);
void ad_head_init(ad_head *h, uint64_t seed);

/* The frame statistics of a zscore head: per-pixel mean and standard
 * deviation (std >= 0) of the good training images at the model input size
 * h x w, (C, h, w) each. set copies them into the head (replacing any);
 * get returns the head's copies (NULL when it has none). */
void ad_head_set_frame_stats(ad_head *hd, const float *mean, const float *std, int h, int w);
const float *ad_head_frame_stats(const ad_head *hd, const float **std, int *h, int *w);
/* z (count floats) of x against mean and std, element by element (see
 * AD_HEAD_ZSCORE_EPS). */
void ad_head_zscore(float *z, const float *x, const float *mean, const float *std, size_t count);
/* Turns mean and std (count floats, population statistics of n images)
 * into those of the n - 1 images left when the image `left_out` is taken
 * out, element by element; unchanged when n < 2. Training z-scores use them
 * so a training image is measured against statistics that never saw it,
 * as every frame at inspection is. */
void ad_head_stats_leave_out(float *mean, float *std, const float *left_out, size_t count, int n);

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
/* x, x_hat are (n, C, h, w); logits (n, 1, h, w). z (n, C, h, w) is the
 * frame's z-score for a zscore head, x2 (n, C, 2h, 2w) the frame at twice
 * the size for a detail head (NULL for the others). */
void ad_head_forward(ad_head *hd, float *logits, const float *x, const float *x_hat, const float *z,
                     const float *x2, int n, int h, int w);
/* Accumulates parameter gradients for the last forward given d loss/d logits. */
void ad_head_backward(ad_head *hd, const float *dlogits);
void ad_head_zero_grad(ad_head *hd);

/* Mean binary cross-entropy plus focal_weight * mean focal loss (gamma) of
 * logits against masks in {0, 1}; fills dlogits (may be NULL) with the
 * gradient of that mean. Returns the loss. */
double ad_head_loss(float *dlogits, const float *logits, const float *mask, size_t n,
                    float gamma, float focal_weight);

/* The head lives in its own safetensors file beside the model:
 * model.path "x.safetensors" -> "x.head.safetensors". A zscore head's file
 * also holds its frame statistics, tensors head.frame_mean and
 * head.frame_std of shape (C, H, W), and metadata anomalyd.head.zscore 1;
 * load refuses statistics that are missing, misshapen, not finite or
 * negative. Saving a zscore head needs its statistics set. A detail head's
 * file has metadata anomalyd.head.detail 1. */
void ad_head_path(char *out, size_t outlen, const char *model_path);
int ad_head_save(const char *path, const ad_head *hd, const float *params,
                 const char *const *keys, const char *const *values, int n,
                 char *err, size_t errlen);
int ad_head_load(const char *path, ad_head **out, char *err, size_t errlen);

/* Trains the head on synthetic defects over the good images in images_dir
 * with the frozen diffusion model at cfg->model.path, for cfg->train.head_steps
 * steps; writes ad_head_path(cfg->model.path) (EMA weights) and its training
 * checkpoint ad_head_path(...) + ".ckpt" every train.checkpoint_every steps
 * and at the end. With train.head_zscore the head is a zscore head whose
 * statistics are those of the training images; with train.head_detail a
 * detail head, trained on the images loaded at twice the input size (the
 * synthetic defects drawn there, the frame and mask averaged down). With
 * resume, goes on from
 * that checkpoint (refused when it belongs to another model, architecture,
 * train.head_zscore, crop or image folder). Returns 0,
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

/* Training the learned head on synthetic defects, the diffusion model frozen.
 *
 * Per sample: a random crop of a good image (flipped as configured), a
 * synthetic defect pasted on it (synth.h) with another good crop as the
 * paste source, the frozen model's reconstruction of the defective crop
 * with the detector's own settings (noise level, steps, guidance, draws), so
 * the head learns on exactly the reconstructions it will see. With
 * train.head_zscore the head also reads the z-score of the defective crop
 * against the per-pixel mean and spread of the training images (computed
 * once at the start, saved in the head file), those statistics taken under
 * the same window and flips as the crop, so z says what it will say of a
 * whole frame at inspection. With train.head_detail the images are held at
 * twice the input size, the synthetic defect (the fine kind, synth.c) is
 * drawn there, and the head reads that crop beside the frame averaged down
 * to the input size (and the mask marks each pixel any part of the defect
 * reaches).
 *
 * The reconstruction costs about as much as the head's own step, so samples
 * are kept in a pool of POOL_SIZE: each step makes POOL_FRESH new ones
 * (replacing the oldest) and draws its batch from the pool, each under one
 * of the 8 rotations/reflections of the square (the 4 mirrorings only with
 * train.head_transpose off), applied alike to the frame, its
 * reconstruction, z and the mask. Sample g is made from the seed and g
 * alone, so a resumed run rebuilds the pool it had. In RECON_DROPOUT of the
 * batch the reconstruction is replaced by the frame itself (z stays: it is
 * the frame's), so the head cannot rely on the reconstruction alone. Loss:
 * mean BCE + FOCAL_WEIGHT x mean focal loss (gamma FOCAL_GAMMA); AdamW with the
 * train section's learning rate, warm-up, weight decay and clipping. The
 * saved head is the exponential moving average of the weights (train.ema),
 * which is far steadier from checkpoint to checkpoint than the raw weights.
 *
 * Every train.checkpoint_every steps the head file (EMA weights) and a
 * checkpoint beside it (HEAD.ckpt: weights, EMA, Adam moments, step) are
 * written, so a run stopped by Ctrl-C, a reboot or a session's end goes on
 * with `anomalyctl train --head-only --resume`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/calib.h"
#include "anomalyd/dataset.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/head.h"
#include "anomalyd/model.h"
#include "anomalyd/synth.h"
#include "anomalyd/util.h"

#define FOCAL_GAMMA 2.0f
#define FOCAL_WEIGHT 5.0f
#define HEAD_BASE_CHANNELS 16
#define HEAD_GROUPS 8
#define HEAD_LEVELS 4
#define HEAD_CKPT_FORMAT "anomalyd-head-checkpoint-1"
#define POOL_SIZE 64
#define POOL_FRESH 2
#define RECON_DROPOUT 0.5f

typedef struct head_trainer {
    const ad_config *cfg;
    ad_model *model;
    ad_noise_schedule sched;
    ad_sampler *sampler;
    ad_dataset ds;
    ad_head *head;
    int crop, batch;
    size_t per;                      /* floats per crop */
    float *x, *x_hat, *mask, *logits, *dlogits, *clean, *other, *scratch;
    float *m, *v, *ema;
    float *pool_x, *pool_x_hat, *pool_mask;   /* POOL_SIZE samples */
    /* train.head_zscore only (else NULL): z of the batch and of the pool,
     * and the frame statistics under one crop (window: before its flips) */
    float *z, *pool_z, *window, *crop_mean, *crop_std;
    /* train.head_detail only (else NULL): the crops at twice the size
     * (ds holds the images at twice the input size then), the batch's and
     * the pool's, and the mask at twice the size */
    float *x2, *pool_x2, *mask2;
    int scale;                       /* 2 with train.head_detail, else 1 */
    ad_rng rng;
    ad_synth_opts synth;
} head_trainer;

/* Where a crop was taken: image, offset, flips. */
typedef struct crop_at {
    int idx, ox, oy, fh, fv;
} crop_at;

/* A crop of tr->crop at the input size: tr->scale times that of ds, at an
 * offset on the input size's grid. */
static crop_at random_crop(head_trainer *tr, ad_rng *rng, float *dst)
{
    const ad_dataset *ds = &tr->ds;
    int s = tr->scale;
    crop_at at;
    at.idx = (int)ad_rng_below(rng, (uint32_t)ds->n);
    at.ox = (int)ad_rng_below(rng, (uint32_t)(ds->w / s - tr->crop + 1));
    at.oy = (int)ad_rng_below(rng, (uint32_t)(ds->h / s - tr->crop + 1));
    at.fh = tr->cfg->train.flip_h ? (int)ad_rng_below(rng, 2) : 0;
    at.fv = tr->cfg->train.flip_v ? (int)ad_rng_below(rng, 2) : 0;
    ad_dataset_crop(ds, dst, at.idx, s * at.ox, s * at.oy, s * tr->crop, at.fh, at.fv);
    return at;
}

/* dst (c, k, k) = src (c, 2k, 2k) averaged 2x2, as inspection's area
 * averaging does to a frame twice the input size. */
static void halve(float *dst, const float *src, int c, int k)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < k; y++) {
            const float *r0 = src + ((size_t)ch * 2 * k + 2 * y) * 2 * k, *r1 = r0 + 2 * k;
            float *o = dst + ((size_t)ch * k + y) * k;
            for (int x = 0; x < k; x++) o[x] = 0.25f * (r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]);
        }
}

/* dst (c planes of k x k) = src under dihedral transform d (bit 0 mirror x,
 * bit 1 mirror y, bit 2 transpose). */
static void dihedral(float *dst, const float *src, int c, int k, int d)
{
    for (int ch = 0; ch < c; ch++) {
        const float *s = src + (size_t)ch * k * k;
        float *o = dst + (size_t)ch * k * k;
        for (int y = 0; y < k; y++)
            for (int x = 0; x < k; x++) {
                int sx = d & 4 ? y : x, sy = d & 4 ? x : y;
                if (d & 1) sx = k - 1 - sx;
                if (d & 2) sy = k - 1 - sy;
                o[y * k + x] = s[sy * k + sx];
            }
    }
}

/* z of x, a crop taken at `at` (defects pasted since; clean: the crop
 * before), against the frame statistics under the same window, flipped as
 * ad_dataset_crop flipped the crop (its fh and fv are dihedral bits 0 and
 * 1). The statistics leave the crop's own image out: fitted with it, a
 * training image's z is pulled towards 0 (most where it strays: with 209
 * images a z of 6 reads about 5.5), so the head would learn a good surface
 * quieter than the good parts it meets at inspection, which the
 * statistics never saw. */
static void crop_zscore(head_trainer *tr, float *z, const float *x, const float *clean, crop_at at)
{
    const ad_dataset *ds = &tr->ds;
    int k = tr->crop;
    const float *sd, *mean = ad_head_frame_stats(tr->head, &sd, NULL, NULL);
    const float *src[2] = {mean, sd};
    float *dst[2] = {tr->crop_mean, tr->crop_std};
    for (int s = 0; s < 2; s++) {
        for (int ch = 0; ch < ds->c; ch++)
            for (int y = 0; y < k; y++)
                memcpy(tr->window + ((size_t)ch * k + y) * k,
                       src[s] + ((size_t)ch * ds->h + at.oy + y) * ds->w + at.ox, sizeof(float) * k);
        dihedral(dst[s], tr->window, ds->c, k, at.fh | at.fv << 1);
    }
    ad_head_stats_leave_out(tr->crop_mean, tr->crop_std, clean, tr->per, ds->n);
    ad_head_zscore(z, x, tr->crop_mean, tr->crop_std, tr->per);
}

/* Per-pixel mean and spread of the training images, as the head's frame
 * statistics. */
static void fit_frame_stats(head_trainer *tr)
{
    const ad_dataset *ds = &tr->ds;
    size_t per = (size_t)ds->c * ds->h * ds->w;
    float *image = ad_xmalloc(sizeof(float) * per), *mean = ad_xmalloc(sizeof(float) * per);
    float *sd = ad_xmalloc(sizeof(float) * per);
    ad_moments mom;
    ad_moments_init(&mom, per);
    for (int i = 0; i < ds->n; i++) {
        const uint8_t *px = ds->px + per * (size_t)i;
        for (size_t k = 0; k < per; k++) image[k] = ds->lut[px[k]];
        ad_moments_add(&mom, image);
    }
    ad_moments_finish(&mom, mean, sd);
    ad_head_set_frame_stats(tr->head, mean, sd, ds->h, ds->w);
    ad_moments_free(&mom);
    free(image);
    free(mean);
    free(sd);
}

/* Makes pool sample g (defective crop, its reconstruction, mask, z) into
 * slot g % POOL_SIZE, from the seed and g alone. */
static void make_sample(head_trainer *tr, long g)
{
    const ad_config *cfg = tr->cfg;
    int k = tr->crop, C = tr->ds.c;
    size_t slot = (size_t)(g % POOL_SIZE);
    ad_recon_opts ro = {cfg->detector.noise_level, cfg->detector.steps, cfg->detector.guidance,
                        cfg->detector.draws};
    ad_rng rng;
    ad_rng_seed(&rng, (cfg->train.seed ^ 0x73796e7468ULL) + 0x9e3779b97f4a7c15ULL * (uint64_t)g);
    crop_at at = random_crop(tr, &rng, tr->clean);
    random_crop(tr, &rng, tr->other);
    float *x = tr->pool_x + tr->per * slot, *mask = tr->pool_mask + (size_t)k * k * slot;
    if (tr->pool_x2) {
        /* the defect drawn at twice the size; the frame averaged down, the
         * mask marking each pixel any part of the defect reaches */
        float *x2 = tr->pool_x2 + 4 * tr->per * slot;
        ad_synth_sample(x2, tr->mask2, tr->clean, tr->other, C, 2 * k, 2 * k, &tr->synth, &rng,
                        tr->scratch, NULL);
        halve(x, x2, C, k);
        halve(mask, tr->mask2, 1, k);
        for (size_t i = 0; i < (size_t)k * k; i++) mask[i] = mask[i] > 0 ? 1.0f : 0.0f;
    } else {
        ad_synth_sample(x, mask, tr->clean, tr->other, C, k, k, &tr->synth, &rng, tr->scratch, NULL);
    }
    if (tr->pool_z) crop_zscore(tr, tr->pool_z + tr->per * slot, x, tr->clean, at);
    ad_sampler_reconstruct(tr->sampler, tr->pool_x_hat + tr->per * slot, x, &ro, ad_rng_u64(&rng));
}

/* Fills the pool as it stood before step `step`: the newest sample of each
 * slot among 0 .. POOL_SIZE + step * POOL_FRESH - 1. */
static void fill_pool(head_trainer *tr, long step)
{
    long newest = POOL_SIZE + step * POOL_FRESH - 1;
    for (long p = 0; p < POOL_SIZE; p++) make_sample(tr, newest - (newest - p) % POOL_SIZE);
}

static double head_step(head_trainer *tr, long step)
{
    const ad_config *cfg = tr->cfg;
    int k = tr->crop, C = tr->ds.c;
    for (int j = 0; j < POOL_FRESH; j++) make_sample(tr, POOL_SIZE + step * POOL_FRESH + j);
    for (int b = 0; b < tr->batch; b++) {
        size_t slot = ad_rng_below(&tr->rng, POOL_SIZE);
        int d = (int)ad_rng_below(&tr->rng, 8);
        if (!cfg->train.head_transpose) d &= 3;   /* mirrorings only (same draws) */
        dihedral(tr->x + tr->per * b, tr->pool_x + tr->per * slot, C, k, d);
        if (tr->z) dihedral(tr->z + tr->per * b, tr->pool_z + tr->per * slot, C, k, d);
        if (tr->x2) dihedral(tr->x2 + 4 * tr->per * b, tr->pool_x2 + 4 * tr->per * slot, C, 2 * k, d);
        /* without its reconstruction now and then, so the head learns what
         * a good surface looks like, not only where the reconstruction
         * removed something: real defects are often copied into it */
        if (ad_rng_uniform(&tr->rng) < RECON_DROPOUT)
            memcpy(tr->x_hat + tr->per * b, tr->x + tr->per * b, tr->per * sizeof(float));
        else
            dihedral(tr->x_hat + tr->per * b, tr->pool_x_hat + tr->per * slot, C, k, d);
        dihedral(tr->mask + (size_t)k * k * b, tr->pool_mask + (size_t)k * k * slot, 1, k, d);
    }
    size_t n = (size_t)tr->batch * k * k;
    ad_head_forward(tr->head, tr->logits, tr->x, tr->x_hat, tr->z, tr->x2, tr->batch, k, k);
    double loss = ad_head_loss(tr->dlogits, tr->logits, tr->mask, n, FOCAL_GAMMA, FOCAL_WEIGHT);
    ad_head_zero_grad(tr->head);
    ad_head_backward(tr->head, tr->dlogits);
    size_t np = ad_head_num_params(tr->head);
    float *g = ad_head_grads(tr->head);
    if (cfg->train.grad_clip > 0) ad_clip_grad_norm(g, np, (float)cfg->train.grad_clip);
    double lr = cfg->train.lr;
    if (cfg->train.warmup > 0 && step < cfg->train.warmup) lr *= (double)(step + 1) / cfg->train.warmup;
    ad_adamw opt = {(float)lr, 0.9f, 0.999f, 1e-8f, (float)cfg->train.weight_decay, step};
    float *p = ad_head_params(tr->head);
    ad_adamw_update(&opt, p, g, tr->m, tr->v, np);
    /* EMA with the usual warm-up so early checkpoints are not dominated by
     * the random initialization */
    float decay = (float)cfg->train.ema, warm = (float)(step + 1) / (float)(step + 10);
    if (decay > warm) decay = warm;
    for (size_t i = 0; i < np; i++) tr->ema[i] = decay * tr->ema[i] + (1.0f - decay) * p[i];
    return loss;
}

static void trainer_free(head_trainer *tr)
{
    ad_sampler_free(tr->sampler);
    ad_schedule_free(&tr->sched);
    ad_model_free(tr->model);
    ad_dataset_free(&tr->ds);
    ad_head_free(tr->head);
    free(tr->x);
    free(tr->x_hat);
    free(tr->mask);
    free(tr->logits);
    free(tr->dlogits);
    free(tr->clean);
    free(tr->other);
    free(tr->scratch);
    free(tr->m);
    free(tr->v);
    free(tr->ema);
    free(tr->pool_x);
    free(tr->pool_x_hat);
    free(tr->pool_mask);
    free(tr->z);
    free(tr->pool_z);
    free(tr->window);
    free(tr->crop_mean);
    free(tr->crop_std);
    free(tr->x2);
    free(tr->pool_x2);
    free(tr->mask2);
}

static void ckpt_path(char *out, size_t outlen, const ad_config *cfg)
{
    char head[AD_PATH_MAX + 32];
    ad_head_path(head, sizeof head, cfg->model.path);
    snprintf(out, outlen, "%s.ckpt", head);
}

/* The architecture a checkpoint records: C/B/G/L, "/detail" after it for a
 * detail head (so checkpoints of the others read as before). */
static void arch_string(char *out, size_t outlen, const ad_head_hparams *hp)
{
    snprintf(out, outlen, "%d/%d/%d/%d%s", hp->image_channels, hp->base_channels, hp->groups,
             hp->levels, hp->detail ? "/detail" : "");
}

static int save_ckpt(head_trainer *tr, long step, char *err, size_t errlen)
{
    char path[AD_PATH_MAX + 40], s_step[32], s_np[32], s_hash[32], s_crop[32];
    ckpt_path(path, sizeof path, tr->cfg);
    size_t np = ad_head_num_params(tr->head);
    const ad_head_hparams *hp = ad_head_hp(tr->head);
    char s_arch[64];
    arch_string(s_arch, sizeof s_arch, hp);
    snprintf(s_step, sizeof s_step, "%ld", step);
    snprintf(s_np, sizeof s_np, "%zu", np);
    snprintf(s_hash, sizeof s_hash, "%016llx", (unsigned long long)tr->ds.hash);
    snprintf(s_crop, sizeof s_crop, "%d", tr->crop);
    const char *keys[] = {"anomalyd.format", "anomalyd.head.step", "anomalyd.head.params",
                          "anomalyd.head.arch", "anomalyd.head.zscore", "anomalyd.head.model_sha256",
                          "anomalyd.head.data_hash", "anomalyd.head.crop"};
    const char *values[] = {HEAD_CKPT_FORMAT, s_step, s_np, s_arch, hp->zscore ? "1" : "0",
                            tr->model->sha256, s_hash, s_crop};
    ad_st_out ts[4];
    const char *names[4] = {"params", "ema", "adam_m", "adam_v"};
    const float *data[4] = {ad_head_params(tr->head), tr->ema, tr->m, tr->v};
    for (int i = 0; i < 4; i++) {
        memset(&ts[i], 0, sizeof ts[i]);
        ts[i].name = names[i];
        ts[i].ndim = 1;
        ts[i].shape[0] = (int64_t)np;
        ts[i].data = data[i];
    }
    return ad_safetensors_write(path, ts, 4, keys, values, (int)(sizeof keys / sizeof keys[0]), err,
                                errlen);
}

/* Loads the checkpoint into the trainer; returns the step to go on from or -1. */
static long load_ckpt(head_trainer *tr, char *err, size_t errlen)
{
    char path[AD_PATH_MAX + 40];
    ckpt_path(path, sizeof path, tr->cfg);
    ad_safetensors st;
    memset(&st, 0, sizeof st);
    if (ad_safetensors_read(path, &st, err, errlen)) return -1;
    long step = -1;
    size_t np = ad_head_num_params(tr->head);
    const ad_head_hparams *hp = ad_head_hp(tr->head);
    char want_arch[64], want_hash[32], want_crop[32];
    arch_string(want_arch, sizeof want_arch, hp);
    snprintf(want_hash, sizeof want_hash, "%016llx", (unsigned long long)tr->ds.hash);
    snprintf(want_crop, sizeof want_crop, "%d", tr->crop);
    const char *fmt = ad_safetensors_meta(&st, "anomalyd.format");
    const char *s_step = ad_safetensors_meta(&st, "anomalyd.head.step");
    const char *arch = ad_safetensors_meta(&st, "anomalyd.head.arch");
    /* checkpoints from before the key trained heads without z */
    const char *zscore = ad_safetensors_meta(&st, "anomalyd.head.zscore");
    if (!zscore) zscore = "0";
    const char *sha = ad_safetensors_meta(&st, "anomalyd.head.model_sha256");
    const char *hash = ad_safetensors_meta(&st, "anomalyd.head.data_hash");
    const char *crop = ad_safetensors_meta(&st, "anomalyd.head.crop");
    char *end = NULL;
    long v = s_step ? strtol(s_step, &end, 10) : -1;
    if (!fmt || strcmp(fmt, HEAD_CKPT_FORMAT)) {
        ad_err(err, errlen, "%s: not a head training checkpoint (anomalyd.format is '%s')", path,
               fmt ? fmt : "missing");
    } else if (!s_step || *end || v < 0) {
        ad_err(err, errlen, "%s: metadata anomalyd.head.step is missing or not a step count", path);
    } else if (strcmp(zscore, hp->zscore ? "1" : "0")) {
        ad_err(err, errlen, "%s: was trained %s z-scores but train.head_zscore is %s now; set it back "
                            "to resume, or train the head afresh without --resume", path,
               strcmp(zscore, "1") ? "without" : "with", hp->zscore ? "true" : "false");
    } else if (!arch || strcmp(arch, want_arch)) {
        ad_err(err, errlen, "%s: head architecture %s, this build trains %s", path, arch ? arch : "missing",
               want_arch);
    } else if (!sha || strcmp(sha, tr->model->sha256)) {
        ad_err(err, errlen, "%s: was trained against another diffusion model (sha256 %.12s, %s is %.12s); "
                            "train the head afresh without --resume", path, sha ? sha : "missing",
               tr->cfg->model.path, tr->model->sha256);
    } else if (!hash || strcmp(hash, want_hash)) {
        ad_err(err, errlen, "%s: was trained on other images than those in the folder now", path);
    } else if (!crop || strcmp(crop, want_crop)) {
        ad_err(err, errlen, "%s: was trained on %s-pixel crops, the config now asks for %d", path,
               crop ? crop : "missing", tr->crop);
    } else {
        float *dst[4] = {ad_head_params(tr->head), tr->ema, tr->m, tr->v};
        const char *names[4] = {"params", "ema", "adam_m", "adam_v"};
        step = v;
        for (int i = 0; i < 4 && step >= 0; i++) {
            const ad_st_tensor *t = ad_safetensors_find(&st, names[i]);
            if (!t || t->ndim != 1 || t->nbytes != np * sizeof(float)) {
                ad_err(err, errlen, "%s: tensor '%s' is missing or not %zu floats", path, names[i], np);
                step = -1;
                break;
            }
            memcpy(dst[i], st.data + t->offset, np * sizeof(float));
            for (size_t k = 0; k < np; k++)
                if (!isfinite(dst[i][k])) {
                    ad_err(err, errlen, "%s: tensor '%s' holds a NaN or infinite value at index %zu",
                           path, names[i], k);
                    step = -1;
                    break;
                }
        }
    }
    ad_safetensors_free(&st);
    return step;
}

static int save_head(head_trainer *tr, const char *images_dir, long steps, double loss,
                     char *err, size_t errlen)
{
    const ad_config *cfg = tr->cfg;
    char path[AD_PATH_MAX + 32], n_img[32], s_steps[32], s_seed[32], s_loss[32], s_date[32];
    char s_noise[32], s_recon_steps[32], s_guid[32], s_crop[32];
    ad_head_path(path, sizeof path, cfg->model.path);
    snprintf(n_img, sizeof n_img, "%d", tr->ds.n);
    snprintf(s_steps, sizeof s_steps, "%ld", steps);
    snprintf(s_seed, sizeof s_seed, "%llu", (unsigned long long)cfg->train.seed);
    snprintf(s_loss, sizeof s_loss, "%.6g", loss);
    snprintf(s_noise, sizeof s_noise, "%g", cfg->detector.noise_level);
    snprintf(s_recon_steps, sizeof s_recon_steps, "%d", cfg->detector.steps);
    snprintf(s_guid, sizeof s_guid, "%g", cfg->detector.guidance);
    snprintf(s_crop, sizeof s_crop, "%d", tr->crop);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s_date, sizeof s_date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *keys[] = {"anomalyd.head.dataset_images", "anomalyd.head.dataset", "anomalyd.head.steps",
                          "anomalyd.head.seed", "anomalyd.head.final_loss", "anomalyd.head.date",
                          "anomalyd.head.model_sha256", "anomalyd.head.noise_level",
                          "anomalyd.head.recon_steps", "anomalyd.head.guidance", "anomalyd.head.crop",
                          "anomalyd.version"};
    const char *values[] = {n_img, images_dir, s_steps, s_seed, s_loss, s_date, tr->model->sha256,
                            s_noise, s_recon_steps, s_guid, s_crop, ANOMALYD_VERSION};
    return ad_head_save(path, tr->head, tr->ema, keys, values,
                        (int)(sizeof keys / sizeof keys[0]), err, errlen);
}

int ad_head_train_run(const ad_head_train_opts *opts, char *err, size_t errlen)
{
    const ad_config *cfg = opts->cfg;
    head_trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cfg = cfg;
    int rc = -1;
    long steps = cfg->train.head_steps;
    if (steps <= 0) return ad_err(err, errlen, "train.head_steps is 0: nothing to train for the head");
    if (ad_model_load(cfg->model.path, &tr.model, err, errlen)) goto done;
    const ad_unet_hparams *hp = ad_unet_hp(tr.model->unet);
    if (hp->in_channels != (int)cfg->model.color) {
        ad_err(err, errlen, "%s: the model takes %d channel(s) but model.color in %s asks for %d",
               cfg->model.path, hp->in_channels, cfg->path, (int)cfg->model.color);
        goto done;
    }
    ad_head_hparams hhp = {hp->in_channels, HEAD_BASE_CHANNELS, HEAD_GROUPS, HEAD_LEVELS,
                           cfg->train.head_zscore, cfg->train.head_detail};
    if (hhp.zscore && hhp.detail) {
        ad_err(err, errlen, "train.head_zscore and train.head_detail are both true in %s; the head "
                            "reads one or the other", cfg->path);
        goto done;
    }
    if (ad_head_create(&tr.head, &hhp, err, errlen)) goto done;
    tr.scale = hhp.detail ? 2 : 1;
    int mult = ad_unet_size_multiple(tr.model->unet), hm = ad_head_size_multiple(tr.head);
    if (hm > mult) mult = hm;
    /* crops no larger than the input the head sees at inspection */
    int side = cfg->train.head_crop;
    if (side > cfg->model.input_width) side = cfg->model.input_width;
    if (side > cfg->model.input_height) side = cfg->model.input_height;
    tr.crop = side / mult * mult;
    if (tr.crop < mult) tr.crop = mult;
    tr.batch = cfg->train.batch;
    int C = hp->in_channels;
    /* a detail head's images at twice the input size; the same minimum
     * side as without (smaller ones are scaled up: their detail input adds
     * nothing, but the head still trains) */
    if (ad_dataset_load(&tr.ds, opts->images_dir, C, tr.scale * cfg->model.input_width,
                        tr.scale * cfg->model.input_height, tr.crop, err, errlen))
        goto done;
    if (ad_schedule_init(&tr.sched, tr.model->schedule, tr.model->T, err, errlen)) goto done;
    ad_nn_set_threads(cfg->detector.threads);
    if (ad_sampler_create(&tr.sampler, tr.model->unet, &tr.sched, C, tr.crop, tr.crop, err, errlen))
        goto done;
    ad_head_init(tr.head, cfg->train.seed ^ 0x68656164ULL);
    if (ad_head_reserve(tr.head, tr.batch, tr.crop, tr.crop, true, err, errlen)) goto done;
    tr.per = (size_t)C * tr.crop * tr.crop;
    size_t plane = (size_t)tr.crop * tr.crop;
    tr.x = ad_xcalloc(tr.per * tr.batch, sizeof(float));
    tr.x_hat = ad_xcalloc(tr.per * tr.batch, sizeof(float));
    tr.mask = ad_xcalloc(plane * tr.batch, sizeof(float));
    tr.logits = ad_xcalloc(plane * tr.batch, sizeof(float));
    tr.dlogits = ad_xcalloc(plane * tr.batch, sizeof(float));
    size_t big = tr.per * tr.scale * tr.scale;   /* floats per crop as ds holds it */
    tr.clean = ad_xcalloc(big, sizeof(float));
    tr.other = ad_xcalloc(big, sizeof(float));
    tr.scratch = ad_xcalloc(ad_synth_scratch_floats(C, tr.scale * tr.crop, tr.scale * tr.crop),
                            sizeof(float));
    if (hhp.detail) {
        tr.x2 = ad_xcalloc(big * tr.batch, sizeof(float));
        tr.pool_x2 = ad_xcalloc(big * POOL_SIZE, sizeof(float));
        tr.mask2 = ad_xcalloc(plane * 4, sizeof(float));
    }
    if (hhp.zscore) {
        fit_frame_stats(&tr);
        tr.z = ad_xcalloc(tr.per * tr.batch, sizeof(float));
        tr.pool_z = ad_xcalloc(tr.per * POOL_SIZE, sizeof(float));
        tr.window = ad_xcalloc(tr.per, sizeof(float));
        tr.crop_mean = ad_xcalloc(tr.per, sizeof(float));
        tr.crop_std = ad_xcalloc(tr.per, sizeof(float));
    }
    size_t np = ad_head_num_params(tr.head);
    tr.m = ad_xcalloc(np, sizeof(float));
    tr.v = ad_xcalloc(np, sizeof(float));
    tr.ema = ad_xcalloc(np, sizeof(float));
    memcpy(tr.ema, ad_head_params(tr.head), np * sizeof(float));
    long step = 0;
    if (opts->resume) {
        step = load_ckpt(&tr, err, errlen);
        if (step < 0) goto done;
        if (step > steps) {
            ad_err(err, errlen, "the head checkpoint is at step %ld, past train.head_steps %ld", step, steps);
            goto done;
        }
    }
    ad_synth_default_opts(&tr.synth);
    tr.synth.fine = hhp.detail;   /* a head that sees finer detail is shown finer defects */
    tr.pool_x = ad_xcalloc(tr.per * POOL_SIZE, sizeof(float));
    tr.pool_x_hat = ad_xcalloc(tr.per * POOL_SIZE, sizeof(float));
    tr.pool_mask = ad_xcalloc(plane * POOL_SIZE, sizeof(float));
    fill_pool(&tr, step);

    ad_log(AD_LOG_INFO, "head: %ld steps of batch %d, %dx%d crops of %d images, %zu parameters%s%s",
           steps, tr.batch, tr.crop, tr.crop, tr.ds.n, np,
           hhp.zscore ? ", reads z-scores" : hhp.detail ? ", reads the frame at twice the size" : "",
           step ? " (resumed)" : "");
    double t_start = ad_now_sec(), smoothed = 0, loss = 0;
    long first = step;
    for (; step < steps; step++) {
        if (opts->stop_flag && *opts->stop_flag) break;
        /* each step's draws from the pool come from the seed and the step
         * number alone, so a resumed run gives the same head as one that ran
         * through */
        ad_rng_seed(&tr.rng, (cfg->train.seed ^ 0x64726177ULL) + 0x9e3779b97f4a7c15ULL * (uint64_t)step);
        loss = head_step(&tr, step);
        smoothed = step == first ? loss : 0.98 * smoothed + 0.02 * loss;
        if (opts->progress) {
            double el = ad_now_sec() - t_start;
            opts->progress(step + 1, steps, smoothed, el > 0 ? (step + 1 - first) * tr.batch / el : 0,
                           opts->user);
        }
        int every = cfg->train.checkpoint_every;
        if (every > 0 && (step + 1) % every == 0 && step + 1 < steps &&
            (save_head(&tr, opts->images_dir, step + 1, smoothed, err, errlen) ||
             save_ckpt(&tr, step + 1, err, errlen)))
            goto done;
    }
    if (save_head(&tr, opts->images_dir, step, smoothed, err, errlen) ||
        save_ckpt(&tr, step, err, errlen))
        goto done;
    rc = step < steps ? 1 : 0;
done:
    trainer_free(&tr);
    return rc;
}

/* The training loop: epsilon-prediction MSE on random crops of good images,
 * AdamW with warm-up, gradient clipping, EMA weights, checkpoints. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/model.h"
#include "anomalyd/synth.h"
#include "train_internal.h"

typedef struct trainer {
    const ad_config *cfg;
    ad_unet *unet;
    ad_unet_hparams hp;
    ad_noise_schedule sched;
    ad_dataset ds;
    ad_train_state st;
    ad_train_arrays a;
    ad_adamw opt;
    int batch, crop;
    size_t per;             /* floats per crop: c * crop * crop */
    float *x0, *noise, *xt, *eps, *deps, *t;
    float *sqrt_abar, *sqrt_1m_abar; /* T entries */
    /* defect removal (train.defect_share > 0): a second crop as the fill
     * source, the defect mask and synth scratch */
    float *other, *mask, *scratch;
    ad_synth_opts synth;
    int t_lo, t_hi;         /* t band of defect samples */
} trainer;

void ad_train_checkpoint_path(const ad_config *cfg, char *out, size_t len)
{
    if (cfg->train.checkpoint[0])
        snprintf(out, len, "%s", cfg->train.checkpoint);
    else
        snprintf(out, len, "%s.ckpt", cfg->model.path);
}

static void hparams_from_config(ad_unet_hparams *hp, const ad_config *cfg)
{
    memset(hp, 0, sizeof *hp);
    hp->in_channels = (int)cfg->model.color;
    hp->base_channels = cfg->model.base_channels;
    hp->num_levels = cfg->model.num_levels;
    for (int i = 0; i < cfg->model.num_levels && i < AD_MAX_LEVELS; i++)
        hp->channel_mult[i] = cfg->model.channel_mult[i];
    hp->res_blocks = cfg->model.res_blocks;
    hp->groups = cfg->model.groups;
}

/* Sample b with a synthetic defect pasted on its clean crop x0, noised at
 * a t near the detector's noise level, and as target the noise that leads
 * back to the clean crop: eps* = (x_t - sqrt(abar) x0) / sqrt(1 - abar),
 * i.e. the defect counted as part of the noise. The model so learns to
 * remove what does not belong to a good part instead of copying it into its
 * reconstruction (DRAEM's reconstructive subnet, DiffusionAD's
 * noise-to-norm). The band keeps sqrt(abar)/sqrt(1-abar) small, so the
 * targets stay bounded. */
static void defect_sample(trainer *tr, int b, int idx)
{
    ad_rng *rng = &tr->st.rng;
    const ad_dataset *ds = &tr->ds;
    int k = tr->crop, C = tr->hp.in_channels;
    size_t per = tr->per;
    int other = (int)ad_rng_below(rng, (uint32_t)ds->n);
    if (other == idx && ds->n > 1) other = (other + 1) % ds->n;
    int ox = (int)ad_rng_below(rng, (uint32_t)(ds->w - k + 1));
    int oy = (int)ad_rng_below(rng, (uint32_t)(ds->h - k + 1));
    ad_dataset_crop(ds, tr->other, other, ox, oy, k, 0, 0);
    int t = tr->t_lo + (int)ad_rng_below(rng, (uint32_t)(tr->t_hi - tr->t_lo + 1));
    tr->t[b] = (float)t;
    float *x0 = tr->x0 + per * b, *n = tr->noise + per * b, *xt = tr->xt + per * b;
    /* xt holds the defective crop until it is noised in place */
    ad_synth_sample(xt, tr->mask, x0, tr->other, C, k, k, &tr->synth, rng, tr->scratch, NULL);
    float sa = tr->sqrt_abar[t], s1a = tr->sqrt_1m_abar[t], ratio = sa / s1a;
    for (size_t j = 0; j < per; j++) {
        float e = ad_rng_normal(rng), d = xt[j] - x0[j];
        xt[j] = sa * xt[j] + s1a * e;
        n[j] = e + ratio * d;
    }
}

/* One optimizer step; returns the batch loss. The RNG is consumed in a
 * fixed order (per sample: image, offsets, flips, t, noise) so a resumed
 * run draws exactly what an uninterrupted one would. */
static double train_step(trainer *tr)
{
    const ad_config *cfg = tr->cfg;
    ad_rng *rng = &tr->st.rng;
    const ad_dataset *ds = &tr->ds;
    int B = tr->batch, k = tr->crop;
    size_t per = tr->per, total = per * (size_t)B;
    for (int b = 0; b < B; b++) {
        int idx = (int)ad_rng_below(rng, (uint32_t)ds->n);
        int ox = (int)ad_rng_below(rng, (uint32_t)(ds->w - k + 1));
        int oy = (int)ad_rng_below(rng, (uint32_t)(ds->h - k + 1));
        int fh = cfg->train.flip_h ? (int)ad_rng_below(rng, 2) : 0;
        int fv = cfg->train.flip_v ? (int)ad_rng_below(rng, 2) : 0;
        int t = (int)ad_rng_below(rng, (uint32_t)tr->sched.T);
        tr->t[b] = (float)t;
        float *x0 = tr->x0 + per * b, *n = tr->noise + per * b, *xt = tr->xt + per * b;
        ad_dataset_crop(&tr->ds, x0, idx, ox, oy, tr->crop, fh, fv);
        if (cfg->train.defect_share > 0 && ad_rng_uniform(rng) < cfg->train.defect_share) {
            defect_sample(tr, b, idx);
            continue;
        }
        float sa = tr->sqrt_abar[t], s1a = tr->sqrt_1m_abar[t];
        for (size_t j = 0; j < per; j++) {
            n[j] = ad_rng_normal(rng);
            xt[j] = sa * x0[j] + s1a * n[j];
        }
    }
    ad_unet_forward(tr->unet, tr->eps, tr->xt, tr->t, B, k, k);
    double sum = 0;
    float scale = 2.0f / (float)total;
    for (size_t j = 0; j < total; j++) {
        float d = tr->eps[j] - tr->noise[j];
        sum += (double)d * d;
        tr->deps[j] = scale * d;
    }
    ad_unet_zero_grad(tr->unet);
    ad_unet_backward(tr->unet, NULL, tr->deps);
    float *grads = ad_unet_grads(tr->unet);
    if (cfg->train.grad_clip > 0) ad_clip_grad_norm(grads, tr->a.n, (float)cfg->train.grad_clip);

    long s = tr->st.step;
    double lr = cfg->train.lr;
    if (cfg->train.warmup > 0 && s < cfg->train.warmup) lr *= (double)(s + 1) / cfg->train.warmup;
    tr->opt.lr = (float)lr;
    tr->opt.step = tr->st.adam_step;
    ad_adamw_update(&tr->opt, tr->a.params, grads, tr->a.m, tr->a.v, tr->a.n);
    tr->st.adam_step = tr->opt.step;
    tr->st.step = s + 1;
    double decay = (1.0 + tr->st.step) / (10.0 + tr->st.step);
    if (decay > cfg->train.ema) decay = cfg->train.ema;
    ad_ema_update(tr->a.ema, tr->a.params, tr->a.n, (float)decay);
    return sum / (double)total;
}

static int save_model(trainer *tr, const char *images_dir, char *err, size_t errlen)
{
    const ad_config *cfg = tr->cfg;
    enum { NKEYS = 11 };
    char date[32], v[NKEYS][AD_PATH_MAX + 256];
    ad_utc_timestamp(date);
    const char *keys[NKEYS] = {
        "anomalyd.train.dataset_size", "anomalyd.train.dataset", "anomalyd.train.steps",
        "anomalyd.train.seed",         "anomalyd.train.final_loss", "anomalyd.train.date",
        "anomalyd.version",            "anomalyd.train.batch",  "anomalyd.train.crop",
        "anomalyd.train.lr",           AD_META_PROVENANCE};
    snprintf(v[0], sizeof v[0], "%d", tr->ds.n);
    snprintf(v[1], sizeof v[1], "%s", images_dir);
    snprintf(v[2], sizeof v[2], "%ld", tr->st.step);
    snprintf(v[3], sizeof v[3], "%" PRIu64, cfg->train.seed);
    snprintf(v[4], sizeof v[4], "%.6g", tr->st.loss_smoothed);
    snprintf(v[5], sizeof v[5], "%s UTC", date);
    snprintf(v[6], sizeof v[6], "%s", ANOMALYD_VERSION);
    snprintf(v[7], sizeof v[7], "%d", tr->batch);
    snprintf(v[8], sizeof v[8], "%d", tr->crop);
    snprintf(v[9], sizeof v[9], "%g", cfg->train.lr);
    snprintf(v[10], sizeof v[10],
             "trained %ld steps of %d %dx%d crops on %d images, seed %" PRIu64
             ", final loss %.4g, %s UTC, anomalyd %s",
             tr->st.step, tr->batch, tr->crop, tr->crop, tr->ds.n, cfg->train.seed,
             tr->st.loss_smoothed, date, ANOMALYD_VERSION);
    const char *vals[NKEYS];
    for (int i = 0; i < NKEYS; i++) vals[i] = v[i];
    return ad_model_save(cfg->model.path, tr->unet, tr->a.ema, tr->sched.T, tr->sched.kind, keys,
                         vals, NKEYS, err, errlen);
}

static void trainer_free(trainer *tr)
{
    ad_unet_free(tr->unet);
    ad_schedule_free(&tr->sched);
    ad_dataset_free(&tr->ds);
    free(tr->a.ema);
    free(tr->x0);
    free(tr->noise);
    free(tr->xt);
    free(tr->eps);
    free(tr->deps);
    free(tr->t);
    free(tr->sqrt_abar);
    free(tr->sqrt_1m_abar);
    free(tr->other);
    free(tr->mask);
    free(tr->scratch);
}

int ad_train_check_config(const ad_config *cfg, char *err, size_t errlen)
{
    ad_unet_hparams hp;
    char sub[AD_ERRLEN];
    hparams_from_config(&hp, cfg);
    if (ad_unet_validate_hparams(&hp, sub, sizeof sub) != 0)
        return ad_err(err, errlen, "%s: model section: %s", cfg->path, sub);
    int mult = 1 << (hp.num_levels - 1);
    int crop = cfg->train.crop;
    if (crop % mult != 0)
        return ad_err(err, errlen, "%s: train.crop %d must be a multiple of %d for a model with "
                      "%d levels (model.channel_mult)", cfg->path, crop, mult, hp.num_levels);
    if (crop > cfg->model.input_width || crop > cfg->model.input_height)
        return ad_err(err, errlen, "%s: train.crop %d is larger than the model input %dx%d "
                      "(model.input_width x input_height)", cfg->path, crop,
                      cfg->model.input_width, cfg->model.input_height);
    return 0;
}

static int trainer_setup(trainer *tr, const ad_train_opts *opts, char *err, size_t errlen)
{
    const ad_config *cfg = opts->cfg;
    tr->cfg = cfg;
    tr->batch = cfg->train.batch;
    tr->crop = cfg->train.crop;
    hparams_from_config(&tr->hp, cfg);
    if (ad_train_check_config(cfg, err, errlen) != 0) return -1;
    if (ad_unet_create(&tr->unet, &tr->hp, err, errlen) != 0) return -1;
    if (ad_schedule_init(&tr->sched, cfg->train.schedule, AD_DIFFUSION_T, err, errlen) != 0)
        return -1;
    if (ad_dataset_load(&tr->ds, opts->images_dir, tr->hp.in_channels, cfg->model.input_width,
                        cfg->model.input_height, tr->crop, err, errlen) != 0)
        return -1;
    ad_nn_set_threads(cfg->detector.threads);
    if (ad_unet_reserve(tr->unet, tr->batch, tr->crop, tr->crop, true, err, errlen) != 0) return -1;

    size_t n = ad_unet_num_params(tr->unet);
    tr->a.n = n;
    tr->a.params = ad_unet_params(tr->unet);
    tr->a.ema = ad_xalloc_aligned(n * sizeof(float));
    tr->a.m = ad_unet_adam_m(tr->unet); /* owned by the unet, zeroed */
    tr->a.v = ad_unet_adam_v(tr->unet);
    tr->per = (size_t)tr->hp.in_channels * tr->crop * tr->crop;
    size_t total = tr->per * (size_t)tr->batch;
    tr->x0 = ad_xalloc_aligned(total * sizeof(float));
    tr->noise = ad_xalloc_aligned(total * sizeof(float));
    tr->xt = ad_xalloc_aligned(total * sizeof(float));
    tr->eps = ad_xalloc_aligned(total * sizeof(float));
    tr->deps = ad_xalloc_aligned(total * sizeof(float));
    tr->t = ad_xalloc_aligned((size_t)tr->batch * sizeof(float));
    tr->sqrt_abar = ad_xmalloc((size_t)tr->sched.T * sizeof(float));
    tr->sqrt_1m_abar = ad_xmalloc((size_t)tr->sched.T * sizeof(float));
    for (int i = 0; i < tr->sched.T; i++) {
        tr->sqrt_abar[i] = (float)sqrt(tr->sched.alphas_cumprod[i]);
        tr->sqrt_1m_abar[i] = (float)sqrt(1.0 - tr->sched.alphas_cumprod[i]);
    }
    if (cfg->train.defect_share > 0) {
        int k = tr->crop, C = tr->hp.in_channels;
        tr->other = ad_xalloc_aligned(tr->per * sizeof(float));
        tr->mask = ad_xalloc_aligned((size_t)k * k * sizeof(float));
        tr->scratch = ad_xalloc_aligned(ad_synth_scratch_floats(C, k, k) * sizeof(float));
        ad_synth_default_opts(&tr->synth);
        tr->synth.p_clean = 0;
        /* half to one and a half times the detector's t0, never so close
         * to 0 that the defect dwarfs the noise */
        int t0 = ad_recon_t0(tr->sched.T, cfg->detector.noise_level);
        tr->t_lo = t0 / 2 > 20 ? t0 / 2 : 20;
        tr->t_hi = t0 + t0 / 2 < tr->sched.T - 1 ? t0 + t0 / 2 : tr->sched.T - 1;
        if (tr->t_hi < tr->t_lo) tr->t_hi = tr->t_lo;
    }
    tr->opt = (ad_adamw){.lr = (float)cfg->train.lr, .beta1 = 0.9f, .beta2 = 0.999f,
                         .eps = 1e-8f, .weight_decay = (float)cfg->train.weight_decay};

    if (opts->resume_path) {
        if (ad_checkpoint_load(opts->resume_path, cfg, &tr->hp, &tr->ds, &tr->st, &tr->a, err,
                               errlen) != 0)
            return -1;
        ad_log(AD_LOG_INFO, "resuming %s at step %ld", opts->resume_path, tr->st.step);
    } else {
        ad_unet_init(tr->unet, cfg->train.seed);
        memcpy(tr->a.ema, tr->a.params, n * sizeof(float));
        /* a stream of its own, independent of the init's */
        ad_rng_seed(&tr->st.rng, ad_hash64("anomalyd-train-data", 19, cfg->train.seed));
    }
    return 0;
}

/* Creates the folder that will hold path and checks it is writable, so a
 * long run does not fail at its end. */
static int make_parent(const char *path, char *err, size_t errlen)
{
    char *dir = ad_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash) {
        *slash = 0;
        if (dir[0] && ad_mkdirs(dir, 0755, err, errlen) != 0) rc = -1;
    } else {
        strcpy(dir, ".");
    }
    if (rc == 0 && access(dir[0] ? dir : "/", W_OK) != 0)
        rc = ad_err(err, errlen, "%s: cannot write into folder %s: %s", path, dir[0] ? dir : "/",
                    strerror(errno));
    free(dir);
    return rc;
}

int ad_train_run(const ad_train_opts *opts, char *err, size_t errlen)
{
    trainer tr = {0};
    int rc = -1;
    const ad_config *cfg = opts->cfg;
    char ckpt[AD_PATH_MAX + 8];
    ad_train_checkpoint_path(cfg, ckpt, sizeof ckpt);
    if (make_parent(cfg->model.path, err, errlen) != 0 || make_parent(ckpt, err, errlen) != 0)
        goto out;
    if (trainer_setup(&tr, opts, err, errlen) != 0) goto out;

    long total = opts->steps > 0 ? opts->steps : cfg->train.steps;
    long start_step = tr.st.step;
    ad_log(AD_LOG_INFO, "training on %d image(s) from %s: %zu parameters, %ld steps of %d "
           "%dx%d crops", tr.ds.n, opts->images_dir, tr.a.n, total, tr.batch, tr.crop, tr.crop);
    if (start_step >= total)
        ad_log(AD_LOG_INFO, "the checkpoint is already at step %ld of %ld; writing the model",
               start_step, total);
    double t_start = ad_now_sec(), seconds_before = tr.st.train_seconds;
    ad_train_progress p = {.step = tr.st.step, .total_steps = total,
                           .loss = tr.st.last_loss, .loss_smoothed = tr.st.loss_smoothed};
    int stopped = 0;
    while (tr.st.step < total) {
        if (opts->stop_flag && *opts->stop_flag) {
            stopped = 1;
            break;
        }
        double loss = train_step(&tr);
        if (!isfinite(loss)) {
            ad_err(err, errlen, "training diverged at step %ld (loss %g); lower train.lr or "
                   "keep train.grad_clip on, then resume from the last checkpoint",
                   tr.st.step, loss);
            goto out;
        }
        tr.st.last_loss = loss;
        tr.st.loss_smoothed = tr.st.step == 1 ? loss : 0.98 * tr.st.loss_smoothed + 0.02 * loss;
        double now = ad_now_sec();
        tr.st.train_seconds = seconds_before + (now - t_start);
        double sps = (double)(tr.st.step - start_step) * tr.batch / (now - t_start + 1e-9);
        p = (ad_train_progress){.step = tr.st.step, .total_steps = total, .loss = loss,
                                .loss_smoothed = tr.st.loss_smoothed, .samples_per_sec = sps,
                                .eta_sec = sps > 0 ? (double)(total - tr.st.step) * tr.batch / sps
                                                   : 0};
        if (opts->progress) opts->progress(&p, opts->user);
        int every = cfg->train.checkpoint_every;
        if (every > 0 && tr.st.step % every == 0 && tr.st.step < total &&
            ad_checkpoint_save(ckpt, cfg, &tr.hp, &tr.ds, &tr.st, &tr.a, err, errlen) != 0) {
            /* keep training: the next checkpoint may succeed (disk freed) */
            ad_log(AD_LOG_WARN, "checkpoint at step %ld not written: %s", tr.st.step, err);
        }
    }
    if (opts->last) *opts->last = p;
    if (ad_checkpoint_save(ckpt, cfg, &tr.hp, &tr.ds, &tr.st, &tr.a, err, errlen) != 0) goto out;
    if (stopped) {
        rc = 1;
        goto out;
    }
    if (save_model(&tr, opts->images_dir, err, errlen) != 0) goto out;
    rc = 0;
out:
    trainer_free(&tr);
    return rc;
}

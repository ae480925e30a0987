/* Training the learned head on synthetic defects, the diffusion model frozen.
 *
 * Per sample: a random crop of a good image (flipped as configured), a
 * synthetic defect pasted on it (synth.h) with another good crop as the
 * paste source, the frozen model's reconstruction of the defective crop
 * with the detector's own settings (noise level, steps, guidance, draws), so
 * the head learns on exactly the reconstructions it will see. Loss: mean BCE
 * + FOCAL_WEIGHT x mean focal loss (gamma FOCAL_GAMMA); AdamW with the
 * train section's learning rate, warm-up, weight decay and clipping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    float *m, *v;
    ad_rng rng;
    ad_synth_opts synth;
} head_trainer;

static void random_crop(head_trainer *tr, float *dst, int avoid)
{
    const ad_dataset *ds = &tr->ds;
    int idx = (int)ad_rng_below(&tr->rng, (uint32_t)ds->n);
    if (idx == avoid && ds->n > 1) idx = (idx + 1) % ds->n;
    int ox = (int)ad_rng_below(&tr->rng, (uint32_t)(ds->w - tr->crop + 1));
    int oy = (int)ad_rng_below(&tr->rng, (uint32_t)(ds->h - tr->crop + 1));
    int fh = tr->cfg->train.flip_h ? (int)ad_rng_below(&tr->rng, 2) : 0;
    int fv = tr->cfg->train.flip_v ? (int)ad_rng_below(&tr->rng, 2) : 0;
    ad_dataset_crop(ds, dst, idx, ox, oy, tr->crop, fh, fv);
}

static double head_step(head_trainer *tr, long step)
{
    const ad_config *cfg = tr->cfg;
    int k = tr->crop, C = tr->ds.c;
    ad_recon_opts ro = {cfg->detector.noise_level, cfg->detector.steps, cfg->detector.guidance,
                        cfg->detector.draws};
    for (int b = 0; b < tr->batch; b++) {
        random_crop(tr, tr->clean, -1);
        random_crop(tr, tr->other, -1);
        float *xb = tr->x + tr->per * b;
        ad_synth_sample(xb, tr->mask + (size_t)k * k * b, tr->clean, tr->other, C, k, k, &tr->synth,
                        &tr->rng, tr->scratch, NULL);
        ad_sampler_reconstruct(tr->sampler, tr->x_hat + tr->per * b, xb, &ro, ad_rng_u64(&tr->rng));
    }
    size_t n = (size_t)tr->batch * k * k;
    ad_head_forward(tr->head, tr->logits, tr->x, tr->x_hat, tr->batch, k, k);
    double loss = ad_head_loss(tr->dlogits, tr->logits, tr->mask, n, FOCAL_GAMMA, FOCAL_WEIGHT);
    ad_head_zero_grad(tr->head);
    ad_head_backward(tr->head, tr->dlogits);
    size_t np = ad_head_num_params(tr->head);
    float *g = ad_head_grads(tr->head);
    if (cfg->train.grad_clip > 0) ad_clip_grad_norm(g, np, (float)cfg->train.grad_clip);
    double lr = cfg->train.lr;
    if (cfg->train.warmup > 0 && step < cfg->train.warmup) lr *= (double)(step + 1) / cfg->train.warmup;
    ad_adamw opt = {(float)lr, 0.9f, 0.999f, 1e-8f, (float)cfg->train.weight_decay, step};
    ad_adamw_update(&opt, ad_head_params(tr->head), g, tr->m, tr->v, np);
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
    return ad_head_save(path, tr->head, ad_head_params(tr->head), keys, values,
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
    int mult = ad_unet_size_multiple(tr.model->unet);
    if (mult < 4) mult = 4;
    tr.crop = cfg->train.crop / mult * mult;
    if (tr.crop < mult) tr.crop = mult;
    tr.batch = cfg->train.batch;
    int C = hp->in_channels;
    if (ad_dataset_load(&tr.ds, opts->images_dir, C, cfg->model.input_width, cfg->model.input_height,
                        tr.crop, err, errlen))
        goto done;
    if (ad_schedule_init(&tr.sched, tr.model->schedule, tr.model->T, err, errlen)) goto done;
    ad_nn_set_threads(cfg->detector.threads);
    if (ad_sampler_create(&tr.sampler, tr.model->unet, &tr.sched, C, tr.crop, tr.crop, err, errlen))
        goto done;
    ad_head_hparams hhp = {C, HEAD_BASE_CHANNELS, HEAD_GROUPS};
    if (ad_head_create(&tr.head, &hhp, err, errlen)) goto done;
    ad_head_init(tr.head, cfg->train.seed ^ 0x68656164ULL);
    if (ad_head_reserve(tr.head, tr.batch, tr.crop, tr.crop, true, err, errlen)) goto done;
    tr.per = (size_t)C * tr.crop * tr.crop;
    size_t plane = (size_t)tr.crop * tr.crop;
    tr.x = ad_xcalloc(tr.per * tr.batch, sizeof(float));
    tr.x_hat = ad_xcalloc(tr.per * tr.batch, sizeof(float));
    tr.mask = ad_xcalloc(plane * tr.batch, sizeof(float));
    tr.logits = ad_xcalloc(plane * tr.batch, sizeof(float));
    tr.dlogits = ad_xcalloc(plane * tr.batch, sizeof(float));
    tr.clean = ad_xcalloc(tr.per, sizeof(float));
    tr.other = ad_xcalloc(tr.per, sizeof(float));
    tr.scratch = ad_xcalloc(ad_synth_scratch_floats(C, tr.crop, tr.crop), sizeof(float));
    size_t np = ad_head_num_params(tr.head);
    tr.m = ad_xcalloc(np, sizeof(float));
    tr.v = ad_xcalloc(np, sizeof(float));
    ad_rng_seed(&tr.rng, cfg->train.seed ^ 0x73796e7468ULL);
    ad_synth_default_opts(&tr.synth);

    ad_log(AD_LOG_INFO, "head: %ld steps of batch %d, %dx%d crops of %d images, %zu parameters",
           steps, tr.batch, tr.crop, tr.crop, tr.ds.n, np);
    double t_start = ad_now_sec(), smoothed = 0, loss = 0;
    long step = 0;
    for (; step < steps; step++) {
        if (opts->stop_flag && *opts->stop_flag) break;
        loss = head_step(&tr, step);
        smoothed = step == 0 ? loss : 0.98 * smoothed + 0.02 * loss;
        if (opts->progress) {
            double el = ad_now_sec() - t_start;
            opts->progress(step + 1, steps, smoothed, el > 0 ? (step + 1) * tr.batch / el : 0, opts->user);
        }
    }
    if (save_head(&tr, opts->images_dir, step, smoothed, err, errlen)) goto done;
    rc = step < steps ? 1 : 0;
done:
    trainer_free(&tr);
    return rc;
}

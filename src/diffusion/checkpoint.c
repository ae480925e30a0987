/* Training checkpoints: everything needed to continue a run bit for bit, in a
 * safetensors file (so `safetensors` users can look inside). Doubles and RNG
 * state are written in hex so nothing is lost to decimal rounding. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/model.h"
#include "train_internal.h"

#define CKPT_FORMAT "anomalyd-train-checkpoint"
#define CKPT_VERSION "1"

enum { META_MAX = 32 };

typedef struct meta_list {
    const char *keys[META_MAX];
    char values[META_MAX][192];
    const char *vptr[META_MAX];
    int n;
} meta_list;

static void meta_add(meta_list *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void meta_add(meta_list *m, const char *key, const char *fmt, ...)
{
    AD_ASSERT(m->n < META_MAX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->values[m->n], sizeof m->values[m->n], fmt, ap);
    va_end(ap);
    m->keys[m->n] = key;
    m->vptr[m->n] = m->values[m->n];
    m->n++;
}

int ad_checkpoint_save(const char *path, const ad_config *cfg, const ad_unet_hparams *hp,
                       const ad_dataset *ds, const ad_train_state *st,
                       const ad_train_arrays *a, char *err, size_t errlen)
{
    meta_list m = {0};
    char mult[64];
    ad_model_format_channel_mult(mult, sizeof mult, hp);
    uint32_t spare_bits;
    memcpy(&spare_bits, &st->rng.spare, sizeof spare_bits);
    meta_add(&m, "format", "%s", CKPT_FORMAT);
    meta_add(&m, "format_version", "%s", CKPT_VERSION);
    meta_add(&m, "anomalyd_version", "%s", ANOMALYD_VERSION);
    meta_add(&m, "step", "%ld", st->step);
    meta_add(&m, "adam_step", "%ld", st->adam_step);
    meta_add(&m, "rng", "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%d,%08" PRIx32,
             st->rng.s[0], st->rng.s[1], st->rng.s[2], st->rng.s[3], st->rng.has_spare,
             spare_bits);
    meta_add(&m, "loss_smoothed", "%a", st->loss_smoothed);
    meta_add(&m, "last_loss", "%a", st->last_loss);
    meta_add(&m, "train_seconds", "%a", st->train_seconds);
    meta_add(&m, "in_channels", "%d", hp->in_channels);
    meta_add(&m, "base_channels", "%d", hp->base_channels);
    meta_add(&m, "channel_mult", "%s", mult);
    meta_add(&m, "res_blocks", "%d", hp->res_blocks);
    meta_add(&m, "groups", "%d", hp->groups);
    meta_add(&m, "schedule", "%s", cfg->train.schedule == AD_SCHEDULE_COSINE ? "cosine" : "linear");
    meta_add(&m, "input_width", "%d", cfg->model.input_width);
    meta_add(&m, "input_height", "%d", cfg->model.input_height);
    meta_add(&m, "batch", "%d", cfg->train.batch);
    meta_add(&m, "crop", "%d", cfg->train.crop);
    meta_add(&m, "lr", "%a", cfg->train.lr);
    meta_add(&m, "seed", "%" PRIu64, cfg->train.seed);
    meta_add(&m, "dataset_size", "%d", ds->n);
    meta_add(&m, "dataset_hash", "%016" PRIx64, ds->hash);

    ad_st_out t[4] = {
        {.name = "params", .ndim = 1, .shape = {(int64_t)a->n}, .data = a->params},
        {.name = "ema", .ndim = 1, .shape = {(int64_t)a->n}, .data = a->ema},
        {.name = "adam_m", .ndim = 1, .shape = {(int64_t)a->n}, .data = a->m},
        {.name = "adam_v", .ndim = 1, .shape = {(int64_t)a->n}, .data = a->v},
    };
    return ad_safetensors_write(path, t, 4, m.keys, m.vptr, m.n, err, errlen);
}

#define CKPT_HINT "not a training checkpoint?"

static const char *need_meta(const ad_safetensors *st, const char *path, const char *key,
                             char *err, size_t errlen)
{
    return ad_safetensors_meta_need(st, path, key, CKPT_HINT, err, errlen);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return -1;
    *out = v;
    return 0;
}

/* Compares an integer metadata value with what the config asks for. */
static int check_int(const ad_safetensors *st, const char *path, const char *key, long want,
                     int fatal, char *err, size_t errlen)
{
    long got;
    if (ad_safetensors_meta_long(st, path, key, LONG_MIN, LONG_MAX, CKPT_HINT, &got, err,
                                 errlen) != 0)
        return -1;
    if (got == want) return 0;
    if (fatal)
        return ad_err(err, errlen,
                      "%s: the checkpoint was made with %s %ld but the config asks for %ld; "
                      "resume with the same architecture or start a new run",
                      path, key, got, want);
    ad_log(AD_LOG_WARN, "%s: checkpoint has %s %ld, the config %ld: the resumed run will not "
           "match an uninterrupted one", path, key, got, want);
    return 0;
}

static int copy_tensor(const ad_safetensors *st, const char *path, const char *name, float *dst,
                       size_t n, char *err, size_t errlen)
{
    const ad_st_tensor *t = ad_safetensors_find(st, name);
    if (!t) return ad_err(err, errlen, "%s: checkpoint has no tensor '%s'", path, name);
    if (t->ndim != 1 || t->shape[0] != (int64_t)n || t->nbytes != n * sizeof(float))
        return ad_err(err, errlen, "%s: checkpoint tensor '%s' holds %lld values, the model has %zu",
                      path, name, t->ndim == 1 ? (long long)t->shape[0] : -1LL, n);
    memcpy(dst, st->data + t->offset, n * sizeof(float));
    return 0;
}

int ad_checkpoint_load(const char *path, const ad_config *cfg, const ad_unet_hparams *hp,
                       const ad_dataset *ds, ad_train_state *out, ad_train_arrays *a,
                       char *err, size_t errlen)
{
    ad_safetensors st = {0};
    ad_train_state s = {0};
    int rc = -1;
    if (ad_safetensors_read(path, &st, err, errlen) != 0) return -1;
    const char *v = need_meta(&st, path, "format", err, errlen);
    if (!v) goto out;
    if (strcmp(v, CKPT_FORMAT) != 0) {
        ad_err(err, errlen, "%s: not a training checkpoint (format '%s'); pass the .ckpt file, "
               "not a model", path, v);
        goto out;
    }
    if (!(v = need_meta(&st, path, "format_version", err, errlen))) goto out;
    if (strcmp(v, CKPT_VERSION) != 0) {
        ad_err(err, errlen, "%s: checkpoint format version %s, this anomalyd reads version %s",
               path, v, CKPT_VERSION);
        goto out;
    }
    if (check_int(&st, path, "in_channels", hp->in_channels, 1, err, errlen) ||
        check_int(&st, path, "base_channels", hp->base_channels, 1, err, errlen) ||
        check_int(&st, path, "res_blocks", hp->res_blocks, 1, err, errlen) ||
        check_int(&st, path, "groups", hp->groups, 1, err, errlen))
        goto out;
    char mult[64];
    ad_model_format_channel_mult(mult, sizeof mult, hp);
    if (!(v = need_meta(&st, path, "channel_mult", err, errlen))) goto out;
    if (strcmp(v, mult) != 0) {
        ad_err(err, errlen, "%s: the checkpoint was made with channel_mult [%s] but the config "
               "asks for [%s]", path, v, mult);
        goto out;
    }
    const char *want_sched = cfg->train.schedule == AD_SCHEDULE_COSINE ? "cosine" : "linear";
    if (!(v = need_meta(&st, path, "schedule", err, errlen))) goto out;
    if (strcmp(v, want_sched) != 0) {
        ad_err(err, errlen, "%s: the checkpoint was trained with the %s schedule, the config "
               "asks for %s", path, v, want_sched);
        goto out;
    }
    if (check_int(&st, path, "batch", cfg->train.batch, 0, err, errlen) ||
        check_int(&st, path, "crop", cfg->train.crop, 0, err, errlen) ||
        check_int(&st, path, "input_width", cfg->model.input_width, 0, err, errlen) ||
        check_int(&st, path, "input_height", cfg->model.input_height, 0, err, errlen) ||
        check_int(&st, path, "dataset_size", ds->n, 0, err, errlen))
        goto out;
    if ((v = ad_safetensors_meta(&st, "dataset_hash")) != NULL) {
        char want[17];
        snprintf(want, sizeof want, "%016" PRIx64, ds->hash);
        if (strcmp(v, want) != 0)
            ad_log(AD_LOG_WARN, "%s: the training images differ from the ones the checkpoint "
                   "was trained on; continuing on the new ones", path);
    }

    if (ad_safetensors_meta_long(&st, path, "step", 0, LONG_MAX, CKPT_HINT, &s.step, err,
                                 errlen) != 0 ||
        ad_safetensors_meta_long(&st, path, "adam_step", 0, LONG_MAX, CKPT_HINT, &s.adam_step,
                                 err, errlen) != 0)
        goto out;
    if (!(v = need_meta(&st, path, "rng", err, errlen))) goto out;
    uint32_t spare_bits;
    if (sscanf(v, "%" SCNx64 ",%" SCNx64 ",%" SCNx64 ",%" SCNx64 ",%d,%" SCNx32, &s.rng.s[0],
               &s.rng.s[1], &s.rng.s[2], &s.rng.s[3], &s.rng.has_spare, &spare_bits) != 6) {
        ad_err(err, errlen, "%s: checkpoint RNG state '%s' is malformed", path, v);
        goto out;
    }
    memcpy(&s.rng.spare, &spare_bits, sizeof spare_bits);
    const char *dkeys[3] = {"loss_smoothed", "last_loss", "train_seconds"};
    double *dvals[3] = {&s.loss_smoothed, &s.last_loss, &s.train_seconds};
    for (int i = 0; i < 3; i++) {
        if (!(v = need_meta(&st, path, dkeys[i], err, errlen))) goto out;
        if (parse_double(v, dvals[i]) != 0) {
            ad_err(err, errlen, "%s: checkpoint metadata '%s' is not a number: '%s'", path,
                   dkeys[i], v);
            goto out;
        }
    }
    if (copy_tensor(&st, path, "params", a->params, a->n, err, errlen) ||
        copy_tensor(&st, path, "ema", a->ema, a->n, err, errlen) ||
        copy_tensor(&st, path, "adam_m", a->m, a->n, err, errlen) ||
        copy_tensor(&st, path, "adam_v", a->v, a->n, err, errlen))
        goto out;
    *out = s;
    rc = 0;
out:
    ad_safetensors_free(&st);
    return rc;
}

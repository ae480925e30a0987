/* Model files: a safetensors file whose tensors are the UNet's state_dict and
 * whose __metadata__ carries the architecture (anomalyd.* keys) and the
 * training provenance. ad_model_load checks the architecture before it
 * allocates anything and every tensor before the weights are used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/model.h"
#include "anomalyd/util.h"

#define MODEL_MAX_FILE ((size_t)512 << 20)

static const char *const arch_keys[] = {
    AD_META_FORMAT, AD_META_IN_CHANNELS, AD_META_BASE_CHANNELS, AD_META_CHANNEL_MULT,
    AD_META_RES_BLOCKS, AD_META_GROUPS, AD_META_T, AD_META_SCHEDULE,
};
#define NUM_ARCH_KEYS ((int)(sizeof(arch_keys) / sizeof(arch_keys[0])))

static int is_arch_key(const char *k)
{
    for (int i = 0; i < NUM_ARCH_KEYS; i++)
        if (!strcmp(k, arch_keys[i])) return 1;
    return 0;
}

#define MODEL_HINT "not an anomalyd model?"

static int meta_int(const char *path, const ad_safetensors *st, const char *key, int lo, int hi,
                    int *out, char *err, size_t errlen)
{
    return ad_safetensors_meta_int(st, path, key, lo, hi, MODEL_HINT, out, err, errlen);
}

int ad_model_parse_channel_mult(const char *s, ad_unet_hparams *hp, char *err, size_t errlen)
{
    int n = 0;
    const char *p = s;
    while (1) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 8)
            return ad_err(err, errlen, "channel_mult '%.40s' must be 1..%d comma-separated integers in 1..8",
                          s, AD_MAX_LEVELS);
        if (n == AD_MAX_LEVELS)
            return ad_err(err, errlen, "channel_mult '%.40s' has more than %d entries", s, AD_MAX_LEVELS);
        hp->channel_mult[n++] = (int)v;
        if (*end == '\0') break;
        if (*end != ',')
            return ad_err(err, errlen, "channel_mult '%.40s' must be comma-separated integers", s);
        p = end + 1;
    }
    hp->num_levels = n;
    return 0;
}

void ad_model_format_channel_mult(char *out, size_t len, const ad_unet_hparams *hp)
{
    size_t o = 0;
    out[0] = 0;
    for (int l = 0; l < hp->num_levels && o < len; l++)
        o += (size_t)snprintf(out + o, len - o, "%s%d", l ? "," : "", hp->channel_mult[l]);
}

int ad_model_read_hparams(const char *path, const ad_safetensors *st, ad_unet_hparams *hp, int *T,
                          int *schedule, char *err, size_t errlen)
{
    char sub[AD_ERRLEN];
    memset(hp, 0, sizeof(*hp));
    const char *fmt = ad_safetensors_meta_need(st, path, AD_META_FORMAT, MODEL_HINT, err, errlen);
    if (!fmt) return -1;
    if (strcmp(fmt, "1"))
        return ad_err(err, errlen, "%s: model format version '%.20s' is not supported (expected 1)", path, fmt);
    if (meta_int(path, st, AD_META_IN_CHANNELS, 1, 3, &hp->in_channels, err, errlen) < 0 ||
        meta_int(path, st, AD_META_BASE_CHANNELS, 1, 4096, &hp->base_channels, err, errlen) < 0 ||
        meta_int(path, st, AD_META_RES_BLOCKS, 1, 64, &hp->res_blocks, err, errlen) < 0 ||
        meta_int(path, st, AD_META_GROUPS, 1, 4096, &hp->groups, err, errlen) < 0 ||
        meta_int(path, st, AD_META_T, 1, 100000, T, err, errlen) < 0)
        return -1;
    const char *cm = ad_safetensors_meta_need(st, path, AD_META_CHANNEL_MULT, MODEL_HINT, err, errlen);
    if (!cm) return -1;
    if (ad_model_parse_channel_mult(cm, hp, sub, sizeof(sub)) < 0)
        return ad_err(err, errlen, "%s: metadata %s", path, sub);
    const char *sc = ad_safetensors_meta_need(st, path, AD_META_SCHEDULE, MODEL_HINT, err, errlen);
    if (!sc) return -1;
    if (!strcmp(sc, "linear"))
        *schedule = AD_SCHEDULE_LINEAR;
    else if (!strcmp(sc, "cosine"))
        *schedule = AD_SCHEDULE_COSINE;
    else
        return ad_err(err, errlen, "%s: metadata '%s' must be linear or cosine, got '%.40s'", path,
                      AD_META_SCHEDULE, sc);
    if (ad_unet_validate_hparams(hp, sub, sizeof(sub)) < 0)
        return ad_err(err, errlen, "%s: architecture in metadata is not acceptable: %s", path, sub);
    return 0;
}

int ad_model_load(const char *path, ad_model **out, char *err, size_t errlen)
{
    ad_safetensors st;
    ad_unet_hparams hp;
    ad_model *m = NULL;
    char sub[AD_ERRLEN];
    int T, schedule;
    size_t count;
    *out = NULL;
    if (ad_safetensors_read(path, &st, err, errlen) < 0) return -1;
    if (ad_model_read_hparams(path, &st, &hp, &T, &schedule, err, errlen) < 0) goto fail;
    if (ad_unet_count_params(&hp, &count, sub, sizeof(sub)) < 0) {
        ad_err(err, errlen, "%s: architecture in metadata is not acceptable: %s", path, sub);
        goto fail;
    }
    m = ad_xcalloc(1, sizeof(*m));
    m->T = T;
    m->schedule = schedule;
    if (ad_unet_create(&m->unet, &hp, sub, sizeof(sub)) < 0) {
        ad_err(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    /* names and shapes first: nothing sized by the metadata is allocated
     * until the file is known to hold exactly those tensors */
    if (ad_param_table_check(ad_unet_table(m->unet), path, &st, err, errlen) < 0 ||
        ad_param_table_copy(ad_unet_table(m->unet), path, &st, ad_unet_params(m->unet), err,
                            errlen) < 0)
        goto fail;
    if (ad_sha256_file(path, m->sha256, err, errlen) < 0) goto fail;
    const char *prov = ad_safetensors_meta(&st, AD_META_PROVENANCE);
    if (prov) {
        snprintf(m->provenance, sizeof(m->provenance), "%s", prov);
    } else {
        size_t o = 0;
        for (int i = 0; i < st.num_meta && o < sizeof(m->provenance); i++) {
            if (is_arch_key(st.meta_keys[i])) continue;
            o += (size_t)snprintf(m->provenance + o, sizeof(m->provenance) - o, "%s%s=%s", o ? "; " : "",
                                  st.meta_keys[i], st.meta_values[i]);
        }
    }
    ad_safetensors_free(&st);
    *out = m;
    return 0;
fail:
    ad_safetensors_free(&st);
    ad_model_free(m);
    return -1;
}

void ad_model_free(ad_model *m)
{
    if (!m) return;
    ad_unet_free(m->unet);
    free(m);
}

int ad_model_save(const char *path, const ad_unet *unet, const float *params,
                  int T, int schedule, const char *const *keys,
                  const char *const *values, int n, char *err, size_t errlen)
{
    const ad_unet_hparams *hp = ad_unet_hp(unet);
    char in_c[16], base[16], mult[64], rb[16], groups[16], tstr[16];
    snprintf(in_c, sizeof(in_c), "%d", hp->in_channels);
    snprintf(base, sizeof(base), "%d", hp->base_channels);
    ad_model_format_channel_mult(mult, sizeof mult, hp);
    snprintf(rb, sizeof(rb), "%d", hp->res_blocks);
    snprintf(groups, sizeof(groups), "%d", hp->groups);
    snprintf(tstr, sizeof(tstr), "%d", T);
    if (schedule != AD_SCHEDULE_LINEAR && schedule != AD_SCHEDULE_COSINE)
        return ad_err(err, errlen, "%s: unknown noise schedule %d", path, schedule);
    const char *vals[NUM_ARCH_KEYS] = {"1", in_c, base, mult, rb, groups, tstr,
                                       schedule == AD_SCHEDULE_COSINE ? "cosine" : "linear"};
    return ad_param_table_save(path, ad_unet_table(unet), params, arch_keys, vals, NUM_ARCH_KEYS,
                               keys, values, n, err, errlen);
}

/* Parameter tables and their safetensors files; see param_table.h. */
#include "anomalyd/param_table.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/model.h"
#include "anomalyd/util.h"

#define MAX_EXTRA_META 64

size_t ad_param_table_add(ad_param_table *t, const char *name, int ndim, const int *shape)
{
    AD_ASSERT(ndim >= 1 && ndim <= 4);
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->entries = ad_xrealloc(t->entries, sizeof(ad_param_info) * (size_t)t->cap);
    }
    ad_param_info *e = &t->entries[t->count++];
    memset(e, 0, sizeof *e);
    size_t len = strlen(name);
    AD_ASSERT(len < sizeof e->name);
    memcpy(e->name, name, len + 1);
    e->ndim = ndim;
    e->count = 1;
    for (int d = 0; d < ndim; d++) {
        e->shape[d] = shape[d];
        e->count *= (size_t)shape[d];
    }
    e->offset = t->num_params;
    t->num_params += e->count;
    return e->offset;
}

void ad_param_table_add_pair(ad_param_table *t, const char *prefix, int ndim, const int *wshape,
                             int bias_count, size_t *w, size_t *b)
{
    char name[128];
    int bshape[1] = {bias_count};
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = ad_param_table_add(t, name, ndim, wshape);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = ad_param_table_add(t, name, 1, bshape);
}

void ad_param_table_free(ad_param_table *t)
{
    free(t->entries);
    memset(t, 0, sizeof *t);
}

const ad_param_info *ad_param_table_get(const ad_param_table *t, int i)
{
    return i >= 0 && i < t->count ? &t->entries[i] : NULL;
}

const ad_param_info *ad_param_table_find(const ad_param_table *t, const char *name)
{
    for (int i = 0; i < t->count; i++)
        if (!strcmp(t->entries[i].name, name)) return &t->entries[i];
    return NULL;
}

int ad_param_table_save(const char *path, const ad_param_table *t, const float *params,
                        const char *const *arch_keys, const char *const *arch_values,
                        int num_arch, const char *const *keys, const char *const *values,
                        int n, char *err, size_t errlen)
{
    if (n < 0 || n > MAX_EXTRA_META)
        return ad_err(err, errlen, "%s: at most %d extra metadata pairs", path, MAX_EXTRA_META);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < num_arch; j++)
            if (!strcmp(keys[i], arch_keys[j]))
                return ad_err(err, errlen, "%s: metadata key '%s' is reserved for the architecture",
                              path, keys[i]);
    int nm = num_arch + n;
    const char **mk = ad_xcalloc((size_t)nm + 1, sizeof *mk), **mv = ad_xcalloc((size_t)nm + 1, sizeof *mv);
    for (int i = 0; i < nm; i++) {
        mk[i] = i < num_arch ? arch_keys[i] : keys[i - num_arch];
        mv[i] = i < num_arch ? arch_values[i] : values[i - num_arch];
    }
    ad_st_out *ts = ad_xcalloc((size_t)t->count + 1, sizeof *ts);
    for (int i = 0; i < t->count; i++) {
        const ad_param_info *e = &t->entries[i];
        ts[i].name = e->name;
        ts[i].ndim = e->ndim;
        for (int d = 0; d < e->ndim; d++) ts[i].shape[d] = e->shape[d];
        ts[i].data = params + e->offset;
    }
    int rc = ad_safetensors_write(path, ts, t->count, mk, mv, nm, err, errlen);
    free(ts);
    free(mk);
    free(mv);
    return rc;
}

static void shape_str(char *out, size_t len, int ndim, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len) snprintf(out + o, len - o, "]");
}

int ad_param_table_check(const ad_param_table *t, const char *path,
                         const struct ad_safetensors *st, char *err, size_t errlen)
{
    for (int i = 0; i < t->count; i++) {
        const ad_param_info *e = &t->entries[i];
        const ad_st_tensor *s = ad_safetensors_find(st, e->name);
        if (!s) return ad_err(err, errlen, "%s: tensor '%s' is missing", path, e->name);
        int same = s->ndim == e->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = s->shape[d] == e->shape[d];
        if (!same) {
            char have[128], want[128];
            int64_t ws[4];
            for (int d = 0; d < e->ndim; d++) ws[d] = e->shape[d];
            shape_str(have, sizeof have, s->ndim, s->shape);
            shape_str(want, sizeof want, e->ndim, ws);
            return ad_err(err, errlen, "%s: tensor '%s' has shape %s but the architecture needs %s",
                          path, e->name, have, want);
        }
    }
    for (int i = 0; i < st->num_tensors; i++)
        if (!ad_param_table_find(t, st->tensors[i].name))
            return ad_err(err, errlen, "%s: unexpected tensor '%s' (not part of this architecture)",
                          path, st->tensors[i].name);
    return 0;
}

int ad_param_table_copy(const ad_param_table *t, const char *path,
                        const struct ad_safetensors *st, float *params, char *err,
                        size_t errlen)
{
    for (int i = 0; i < t->count; i++) {
        const ad_param_info *e = &t->entries[i];
        const ad_st_tensor *s = ad_safetensors_find(st, e->name);
        AD_ASSERT(s && s->nbytes == e->count * sizeof(float));   /* ad_param_table_check */
        float *dst = params + e->offset;
        memcpy(dst, st->data + s->offset, s->nbytes);
        for (size_t k = 0; k < e->count; k++)
            if (!isfinite(dst[k]))
                return ad_err(err, errlen,
                              "%s: tensor '%s' holds a non-finite value (NaN or Inf) at index %zu",
                              path, e->name, k);
    }
    return 0;
}

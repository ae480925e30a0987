/* safetensors reader and writer (float32 only).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...},
 *    "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to its start. Everything is
 * checked before a byte of tensor data is used: the header must fit the
 * file, the JSON must parse, every tensor must be F32 with a shape whose size
 * matches its byte range, and the ranges must tile the buffer exactly (no
 * overlap, no gap, nothing past the end). */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/model.h"
#include "anomalyd/util.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20)   /* same limit as the reference implementation */
#define ST_MAX_TENSORS 100000
#define ST_MAX_FILE ((size_t)1 << 30)

void ad_safetensors_free(ad_safetensors *st)
{
    if (!st) return;
    free(st->data);
    free(st->tensors);
    for (int i = 0; i < st->num_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    memset(st, 0, sizeof(*st));
}

static int get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_tensor(const char *name, const char *key, json_t *obj, ad_st_tensor *t,
                        size_t data_len, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (strlen(key) >= sizeof(t->name))
        return ad_err(err, errlen, "%s: tensor name '%.40s...' is longer than %zu bytes", name, key,
                      sizeof(t->name) - 1);
    snprintf(t->name, sizeof(t->name), "%s", key);
    if (!json_is_object(obj)) return ad_err(err, errlen, "%s: tensor '%s' is not a JSON object", name, key);
    json_t *dtype = json_object_get(obj, "dtype");
    json_t *shape = json_object_get(obj, "shape");
    json_t *offs = json_object_get(obj, "data_offsets");
    if (!json_is_string(dtype)) return ad_err(err, errlen, "%s: tensor '%s' has no dtype string", name, key);
    if (strcmp(json_string_value(dtype), "F32"))
        return ad_err(err, errlen, "%s: tensor '%s' has dtype %s; only F32 is supported", name, key,
                      json_string_value(dtype));
    if (!json_is_array(shape) || json_array_size(shape) > 8)
        return ad_err(err, errlen, "%s: tensor '%s' needs a shape array of at most 8 dimensions", name, key);
    uint64_t count = 1;
    t->ndim = (int)json_array_size(shape);
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (get_u64(json_array_get(shape, i), &d) < 0 || d > ((uint64_t)1 << 40))
            return ad_err(err, errlen, "%s: tensor '%s' has an invalid dimension %d in its shape", name, key, i);
        t->shape[i] = (int64_t)d;
        if (d && count > (((uint64_t)1 << 40) / d))
            return ad_err(err, errlen, "%s: tensor '%s' has an absurdly large shape", name, key);
        count *= d;
    }
    uint64_t b, e;
    if (!json_is_array(offs) || json_array_size(offs) != 2 || get_u64(json_array_get(offs, 0), &b) < 0 ||
        get_u64(json_array_get(offs, 1), &e) < 0)
        return ad_err(err, errlen, "%s: tensor '%s' needs data_offsets [begin, end] of non-negative integers",
                      name, key);
    if (b > e || e > data_len)
        return ad_err(err, errlen, "%s: tensor '%s' has data_offsets [%llu, %llu] outside the %zu-byte data buffer",
                      name, key, (unsigned long long)b, (unsigned long long)e, data_len);
    if (e - b != count * 4)
        return ad_err(err, errlen, "%s: tensor '%s' spans %llu bytes but its shape needs %llu",
                      name, key, (unsigned long long)(e - b), (unsigned long long)(count * 4));
    t->offset = (size_t)b;
    t->nbytes = (size_t)(e - b);
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const ad_st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

int ad_safetensors_parse(const char *name, const uint8_t *buf, size_t len,
                         ad_safetensors *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    if (len < 8)
        return ad_err(err, errlen, "%s: file is %zu bytes, too short for a safetensors header", name, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > len - 8)
        return ad_err(err, errlen, "%s: header length %llu is larger than the rest of the file (%zu bytes); "
                      "truncated or not a safetensors file", name, (unsigned long long)hlen, len - 8);
    if (hlen > ST_MAX_HEADER)
        return ad_err(err, errlen, "%s: header length %llu is over the %llu-byte limit", name,
                      (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ad_err(err, errlen, "%s: header is not valid JSON (%s, at byte %d)", name, jerr.text,
                      jerr.position + 8);
    int rc = -1;
    size_t data_len = len - 8 - (size_t)hlen;
    const char *key;
    json_t *val;
    if (!json_is_object(root)) {
        ad_err(err, errlen, "%s: header must be a JSON object", name);
        goto out;
    }
    size_t n = json_object_size(root);
    if (n > ST_MAX_TENSORS) {
        ad_err(err, errlen, "%s: header lists %zu entries, more than %d", name, n, ST_MAX_TENSORS);
        goto out;
    }
    st->tensors = ad_xcalloc(n ? n : 1, sizeof(ad_st_tensor));
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val)) {
                ad_err(err, errlen, "%s: __metadata__ must be an object of strings", name);
                goto out;
            }
            size_t m = json_object_size(val);
            st->meta_keys = ad_xcalloc(m ? m : 1, sizeof(char *));
            st->meta_values = ad_xcalloc(m ? m : 1, sizeof(char *));
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    ad_err(err, errlen, "%s: __metadata__ value of '%s' is not a string", name, mk);
                    goto out;
                }
                st->meta_keys[st->num_meta] = ad_xstrdup(mk);
                st->meta_values[st->num_meta] = ad_xstrdup(json_string_value(mv));
                st->num_meta++;
            }
            continue;
        }
        if (parse_tensor(name, key, val, &st->tensors[st->num_tensors], data_len, err, errlen) < 0) goto out;
        st->num_tensors++;
    }
    /* the byte ranges must tile [0, data_len) exactly */
    ad_st_tensor *sorted = ad_xmalloc(sizeof(ad_st_tensor) * (st->num_tensors ? st->num_tensors : 1));
    memcpy(sorted, st->tensors, sizeof(ad_st_tensor) * st->num_tensors);
    if (st->num_tensors > 1) qsort(sorted, st->num_tensors, sizeof(ad_st_tensor), cmp_offset);
    size_t pos = 0;
    for (int i = 0; i < st->num_tensors; i++) {
        const ad_st_tensor *t = &sorted[i];
        if (t->offset < pos) {
            ad_err(err, errlen, "%s: tensors '%s' and '%s' overlap in the data buffer (bytes %zu..%zu and %zu..%zu)",
                   name, sorted[i - 1].name, t->name, sorted[i - 1].offset,
                   sorted[i - 1].offset + sorted[i - 1].nbytes, t->offset, t->offset + t->nbytes);
            free(sorted);
            goto out;
        }
        if (t->offset > pos) {
            ad_err(err, errlen, "%s: bytes %zu..%zu of the data buffer belong to no tensor", name, pos, t->offset);
            free(sorted);
            goto out;
        }
        pos = t->offset + t->nbytes;
    }
    free(sorted);
    if (pos != data_len) {
        ad_err(err, errlen, "%s: the data buffer has %zu bytes but the tensors cover only %zu", name,
               data_len, pos);
        goto out;
    }
    st->data_len = data_len;
    st->data = ad_xmalloc(data_len ? data_len : 1);
    memcpy(st->data, buf + 8 + hlen, data_len);
    rc = 0;
out:
    json_decref(root);
    if (rc < 0) ad_safetensors_free(st);
    return rc;
}

int ad_safetensors_read(const char *path, ad_safetensors *st, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(st, 0, sizeof(*st));
    if (ad_read_file(path, ST_MAX_FILE, &buf, &len, err, errlen) < 0) return -1;
    int rc = ad_safetensors_parse(path, buf, len, st, err, errlen);
    free(buf);
    return rc;
}

const char *ad_safetensors_meta(const ad_safetensors *st, const char *key)
{
    for (int i = 0; i < st->num_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

const char *ad_safetensors_meta_need(const ad_safetensors *st, const char *path,
                                     const char *key, const char *hint, char *err,
                                     size_t errlen)
{
    const char *v = ad_safetensors_meta(st, key);
    if (!v)
        ad_err(err, errlen, "%s: metadata '%s' is missing%s%s%s", path, key, hint ? " (" : "",
               hint ? hint : "", hint ? ")" : "");
    return v;
}

int ad_safetensors_meta_long(const ad_safetensors *st, const char *path, const char *key,
                             long lo, long hi, const char *hint, long *out, char *err,
                             size_t errlen)
{
    const char *s = ad_safetensors_meta_need(st, path, key, hint, err, errlen);
    if (!s) return -1;
    if (ad_parse_long(s, lo, hi, out) == 0) return 0;
    if (lo == LONG_MIN && hi == LONG_MAX)
        return ad_err(err, errlen, "%s: metadata '%s' must be an integer, got '%.40s'", path, key, s);
    if (hi == LONG_MAX)
        return ad_err(err, errlen, "%s: metadata '%s' must be an integer >= %ld, got '%.40s'", path,
                      key, lo, s);
    return ad_err(err, errlen, "%s: metadata '%s' must be an integer in %ld..%ld, got '%.40s'", path,
                  key, lo, hi, s);
}

int ad_safetensors_meta_int(const ad_safetensors *st, const char *path, const char *key, int lo,
                            int hi, const char *hint, int *out, char *err, size_t errlen)
{
    long v;
    if (ad_safetensors_meta_long(st, path, key, lo, hi, hint, &v, err, errlen) < 0) return -1;
    *out = (int)v;
    return 0;
}

const ad_st_tensor *ad_safetensors_find(const ad_safetensors *st, const char *name)
{
    for (int i = 0; i < st->num_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

int ad_safetensors_write(const char *path, const ad_st_out *tensors, int n,
                         const char *const *meta_keys, const char *const *meta_values,
                         int num_meta, char *err, size_t errlen)
{
    json_t *root = json_object();
    json_t *meta = json_object();
    size_t off = 0;
    int rc = -1;
    char *hdr = NULL;
    uint8_t *buf = NULL;
    for (int i = 0; i < num_meta; i++) json_object_set_new(meta, meta_keys[i], json_string(meta_values[i]));
    if (num_meta) json_object_set(root, "__metadata__", meta);
    for (int i = 0; i < n; i++) {
        const ad_st_out *t = &tensors[i];
        size_t count = 1;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) {
            json_array_append_new(shape, json_integer(t->shape[d]));
            count *= (size_t)t->shape[d];
        }
        json_t *obj = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                                (json_int_t)off, (json_int_t)(off + count * 4));
        if (!obj || json_object_get(root, t->name)) {
            json_decref(obj);
            ad_err(err, errlen, "%s: cannot write tensor '%s' (duplicate name?)", path, t->name);
            goto out;
        }
        json_object_set_new(root, t->name, obj);
        off += count * 4;
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) {
        ad_err(err, errlen, "%s: cannot encode the safetensors header", path);
        goto out;
    }
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    size_t total = 8 + padded + off;
    buf = ad_xmalloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hdr, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    uint8_t *data = buf + 8 + padded;
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < tensors[i].ndim; d++) count *= (size_t)tensors[i].shape[d];
        memcpy(data, tensors[i].data, count * 4);   /* little-endian hosts only (x86, arm64) */
        data += count * 4;
    }
    rc = ad_write_file_durable(path, buf, total, err, errlen);
out:
    free(buf);
    free(hdr);
    json_decref(meta);
    json_decref(root);
    return rc;
}

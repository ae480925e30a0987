/* Model files: safetensors (float32) holding the UNet (and optionally the
 * learned anomaly head), architecture and provenance in __metadata__.
 *
 * Loading validates everything before use: header length vs file size, JSON,
 * dtypes, shapes against the architecture in the metadata, offsets in bounds
 * and non-overlapping, no missing or extra tensors, finite values. */
#ifndef ANOMALYD_MODEL_H
#define ANOMALYD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "anomalyd/unet.h"

/* A parsed safetensors file: tensors point into `data` (owned). */
typedef struct ad_st_tensor {
    char name[128];
    int ndim;
    int64_t shape[8];
    size_t offset, nbytes;           /* into data */
} ad_st_tensor;

typedef struct ad_safetensors {
    uint8_t *data;                   /* tensor byte buffer (after the header) */
    size_t data_len;
    ad_st_tensor *tensors;
    int num_tensors;
    char **meta_keys, **meta_values; /* __metadata__ string pairs */
    int num_meta;
} ad_safetensors;

int ad_safetensors_read(const char *path, ad_safetensors *st, char *err, size_t errlen);
int ad_safetensors_parse(const char *name, const uint8_t *buf, size_t len,
                         ad_safetensors *st, char *err, size_t errlen);
void ad_safetensors_free(ad_safetensors *st);
const char *ad_safetensors_meta(const ad_safetensors *st, const char *key);
/* Metadata parsing, one policy for models, checkpoints and map statistics:
 * the value of `key`, or NULL with err "PATH: metadata 'KEY' is missing
 * (HINT)" (hint names the kind of file expected; may be NULL). */
const char *ad_safetensors_meta_need(const ad_safetensors *st, const char *path,
                                     const char *key, const char *hint, char *err,
                                     size_t errlen);
/* The value as a base-10 integer in lo..hi, the whole string: 0, or -1 with
 * err naming path, key, the range and what the file holds. */
int ad_safetensors_meta_long(const ad_safetensors *st, const char *path, const char *key,
                             long lo, long hi, const char *hint, long *out, char *err,
                             size_t errlen);
/* The same for an int (lo..hi within int's range). */
int ad_safetensors_meta_int(const ad_safetensors *st, const char *path, const char *key, int lo,
                            int hi, const char *hint, int *out, char *err, size_t errlen);
const ad_st_tensor *ad_safetensors_find(const ad_safetensors *st, const char *name);

/* Tensor to write: name, shape, float32 data. */
typedef struct ad_st_out {
    const char *name;
    int ndim;
    int64_t shape[8];
    const float *data;
} ad_st_out;
/* Durable write (temp, fsync, rename). */
int ad_safetensors_write(const char *path, const ad_st_out *tensors, int n,
                         const char *const *meta_keys, const char *const *meta_values,
                         int num_meta, char *err, size_t errlen);

/* Metadata keys of an anomalyd model file. Architecture keys are written by
 * ad_model_save; channel_mult is comma-separated ("1,2,2"), schedule is
 * "linear" or "cosine", format is "1". Other keys (e.g. anomalyd.train.*) are
 * provenance, free-form strings. */
#define AD_META_FORMAT "anomalyd.format"
#define AD_META_IN_CHANNELS "anomalyd.in_channels"
#define AD_META_BASE_CHANNELS "anomalyd.base_channels"
#define AD_META_CHANNEL_MULT "anomalyd.channel_mult"
#define AD_META_RES_BLOCKS "anomalyd.res_blocks"
#define AD_META_GROUPS "anomalyd.groups"
#define AD_META_T "anomalyd.T"
#define AD_META_SCHEDULE "anomalyd.schedule"
#define AD_META_PROVENANCE "anomalyd.provenance"   /* optional one-line summary */

/* Architecture from a parsed file's metadata, validated (no allocation). */
int ad_model_read_hparams(const char *path, const ad_safetensors *st, ad_unet_hparams *hp, int *T,
                          int *schedule, char *err, size_t errlen);
/* "1,2,2" -> hp->channel_mult / num_levels, and back. */
int ad_model_parse_channel_mult(const char *s, ad_unet_hparams *hp, char *err, size_t errlen);
void ad_model_format_channel_mult(char *out, size_t len, const ad_unet_hparams *hp);

/* A loaded model: UNet with weights plus what the metadata says.
 * provenance is AD_META_PROVENANCE when present, else "k=v; ..." of the
 * non-architecture metadata. Free with ad_model_free (frees the unet). */
typedef struct ad_model {
    ad_unet *unet;
    int T;                           /* diffusion steps, 1000 */
    int schedule;                    /* enum ad_schedule */
    char sha256[65];                 /* of the file */
    char provenance[512];            /* one line: dataset size, steps, seed, loss, date */
    /* learned head (src/head); NULL when the file has none */
    void *head;
} ad_model;

int ad_model_load(const char *path, ad_model **out, char *err, size_t errlen);
void ad_model_free(ad_model *m);
/* Saves weights (params, e.g. the EMA copy, laid out like unet's params) with
 * architecture + schedule + the given extra metadata pairs. Durable. */
int ad_model_save(const char *path, const ad_unet *unet, const float *params,
                  int T, int schedule, const char *const *keys,
                  const char *const *values, int n, char *err, size_t errlen);

#endif

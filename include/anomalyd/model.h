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

/* A loaded model: UNet with weights plus what the metadata says. */
typedef struct ad_model {
    ad_unet *unet;
    int T;                           /* diffusion steps, 1000 */
    int schedule;                    /* enum ad_schedule */
    char sha256[65];                 /* of the file */
    char provenance[512];            /* one line: dataset size, steps, seed, loss, date */
    /* learned head (issue 10); NULL when the file has none */
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

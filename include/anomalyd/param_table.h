/* Parameter tables: the named tensors of a network laid out back to back in
 * one flat float array (parameters, gradients and optimizer moments share the
 * layout), and the safetensors file that holds them. The UNet (unet.c) and
 * the anomaly head (head.c) build their tables here, and model files and
 * head files are written and checked by the same code.
 *
 * Ownership: a table owns its entries (free with ad_param_table_free); the
 * float arrays belong to the network that built the table. */
#ifndef ANOMALYD_PARAM_TABLE_H
#define ANOMALYD_PARAM_TABLE_H

#include <stddef.h>

struct ad_safetensors;

/* One named parameter tensor inside the flat parameter array. */
typedef struct ad_param_info {
    char name[96];                    /* PyTorch state_dict name */
    int ndim;
    int shape[4];
    size_t offset;                    /* in floats, into params/grads/moments */
    size_t count;
} ad_param_info;

/* Zero-initialise ({0}) before the first add. */
typedef struct ad_param_table {
    ad_param_info *entries;
    int count, cap;
    size_t num_params;                /* floats: the sum of every entry's count */
} ad_param_table;

/* Appends a tensor (ndim 1..4, name shorter than 96 bytes) after the last
 * one; returns its offset in floats. */
size_t ad_param_table_add(ad_param_table *t, const char *name, int ndim, const int *shape);
/* "PREFIX.weight" of wshape and "PREFIX.bias" of (bias_count), in that order. */
void ad_param_table_add_pair(ad_param_table *t, const char *prefix, int ndim, const int *wshape,
                             int bias_count, size_t *w, size_t *b);
void ad_param_table_free(ad_param_table *t);
/* Entry i (NULL when out of range), or the entry called name (NULL: none). */
const ad_param_info *ad_param_table_get(const ad_param_table *t, int i);
const ad_param_info *ad_param_table_find(const ad_param_table *t, const char *name);

/* Writes params (laid out by t) durably to path, every tensor in table
 * order, with metadata: the architecture pairs first, then the n extra pairs
 * (at most 64; an extra key that names an architecture key is refused). */
int ad_param_table_save(const char *path, const ad_param_table *t, const float *params,
                        const char *const *arch_keys, const char *const *arch_values,
                        int num_arch, const char *const *keys, const char *const *values,
                        int n, char *err, size_t errlen);
/* Checks that a parsed file holds exactly the table's tensors with the
 * table's shapes (nothing is copied, so callers can check before they
 * allocate): errors name the missing, misshapen or unexpected tensor. */
int ad_param_table_check(const ad_param_table *t, const char *path,
                         const struct ad_safetensors *st, char *err, size_t errlen);
/* After a successful check: copies every tensor into params, refusing a
 * NaN or infinity (the error names tensor and index). */
int ad_param_table_copy(const ad_param_table *t, const char *path,
                        const struct ad_safetensors *st, float *params, char *err,
                        size_t errlen);

#endif

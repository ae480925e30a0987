/* Internals of the training loop shared by its files (not a public API). */
#ifndef ANOMALYD_DIFFUSION_TRAIN_INTERNAL_H
#define ANOMALYD_DIFFUSION_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "anomalyd/diffusion.h"
#include "anomalyd/util.h"

/* Good images held in memory once, resized to the model input size, as
 * planar 8-bit (C, H, W) so a big set stays small; crops convert to float
 * through a table made by ad_image_to_float, so training sees exactly the
 * values inspection sees. */
typedef struct ad_dataset {
    int n, c, h, w;
    uint8_t *px;        /* n * c * h * w */
    float lut[256];     /* 8-bit value -> [-1, 1] */
    uint64_t hash;      /* of every pixel, to notice a resume on other data */
} ad_dataset;

/* Loads every *.png in dir (sorted by name, so the order is the same on every
 * machine). Files without the .png suffix, hidden files and sub-folders are
 * skipped with a warning; a .png that does not decode is an error (a damaged
 * training set should be noticed, not silently shrunk). A colour PNG for a
 * gray model is converted to luma; a gray PNG for an RGB model, an image
 * smaller than min_side in either side, and an empty folder are errors. */
int ad_dataset_load(ad_dataset *ds, const char *dir, int c, int w, int h, int min_side,
                    char *err, size_t errlen);
void ad_dataset_free(ad_dataset *ds);

/* Everything a resume must restore, besides the four flat arrays. */
typedef struct ad_train_state {
    long step;               /* optimizer updates done */
    long adam_step;
    ad_rng rng;
    double loss_smoothed;
    double last_loss;
    double train_seconds;    /* wall time spent training so far, all sessions */
} ad_train_state;

/* Flat arrays (n floats each) in the unet's parameter layout. */
typedef struct ad_train_arrays {
    float *params, *ema, *m, *v;
    size_t n;
} ad_train_arrays;

/* Durable checkpoint: safetensors with tensors params, ema, adam_m, adam_v
 * (1-D, n floats) and the state + architecture + data fingerprint in the
 * metadata (format "anomalyd-train-checkpoint" version 1). */
int ad_checkpoint_save(const char *path, const ad_config *cfg, const ad_unet_hparams *hp,
                       const ad_dataset *ds, const ad_train_state *st,
                       const ad_train_arrays *a, char *err, size_t errlen);
/* Restores into arrays of the right size after checking the architecture
 * against hp; a different batch, crop, learning rate or data set is allowed
 * but logged as a warning (the run is then no longer the same as an
 * uninterrupted one). */
int ad_checkpoint_load(const char *path, const ad_config *cfg, const ad_unet_hparams *hp,
                       const ad_dataset *ds, ad_train_state *st, ad_train_arrays *a,
                       char *err, size_t errlen);

#endif

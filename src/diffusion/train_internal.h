/* Internals of the training loop shared by its files (not a public API). */
#ifndef ANOMALYD_DIFFUSION_TRAIN_INTERNAL_H
#define ANOMALYD_DIFFUSION_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "anomalyd/dataset.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/util.h"

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

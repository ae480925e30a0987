/* Training sets: a folder of good PNGs held in memory once at the model's
 * input size, and crops of it. Used by diffusion training, the learned
 * head's training and `anomalyctl synth`. */
#ifndef ANOMALYD_DATASET_H
#define ANOMALYD_DATASET_H

#include <stddef.h>
#include <stdint.h>

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

/* Loads the images ad_png_list (image.h) lists in dir, in its order and with
 * its policy (other entries skipped with a warning, no PNG an error). A .png
 * that does not decode is an error (a damaged training set should be
 * noticed, not silently shrunk). A colour PNG for a gray model is converted
 * to luma; a gray PNG for an RGB model and an image smaller than min_side in
 * either side are errors. */
int ad_dataset_load(ad_dataset *ds, const char *dir, int c, int w, int h, int min_side,
                    char *err, size_t errlen);
void ad_dataset_free(ad_dataset *ds);

/* Crop k x k of image idx at (ox, oy), flipped horizontally (fh) and/or
 * vertically (fv), into planar floats dst (c * k * k). */
void ad_dataset_crop(const ad_dataset *ds, float *dst, int idx, int ox, int oy, int k, int fh, int fv);

#endif

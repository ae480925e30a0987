/* The detector: one object per input size that owns the model and all
 * scratch memory. The daemon, `score`, `eval` and `calibrate` all call
 * ad_detector_inspect, so a score never differs between tools. */
#ifndef ANOMALYD_DETECT_H
#define ANOMALYD_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/image.h"

typedef struct ad_result {
    double score;                 /* image anomaly score */
    double threshold;             /* threshold it was compared with */
    bool reject;                  /* score > threshold */
    int box_x, box_y, box_w, box_h; /* defect box in ROI pixels; w = h = 0 if none */
    long area;                    /* pixels over the pixel threshold, ROI pixels */
    double ms;                    /* inspection time */
} ad_result;

/* Frame (as captured, any size) -> ROI cropped, converted to the model's
 * colour. Used by the daemon and `anomalyctl capture` alike. */
int ad_preprocess_roi(const ad_config *cfg, const ad_image *frame, ad_image *roi,
                      char *err, size_t errlen);

typedef struct ad_detector ad_detector;

/* Loads cfg->model.path, checks it matches cfg (colour), allocates scratch
 * for cfg->model.input_width x input_height. */
int ad_detector_open(ad_detector **out, const ad_config *cfg, char *err, size_t errlen);
void ad_detector_close(ad_detector *d);
void ad_detector_set_threshold(ad_detector *d, double threshold);
const char *ad_detector_model_sha256(const ad_detector *d);

/* roi: a preprocessed ROI of any size with the model's channel count; it is
 * resized to the input size internally; box and area are mapped back to roi
 * pixels. No allocation per call. */
int ad_detector_inspect(ad_detector *d, const ad_image *roi, ad_result *res,
                        char *err, size_t errlen);
/* Anomaly map of the last inspection at input size (w*h floats). */
const float *ad_detector_last_map(const ad_detector *d, int *w, int *h);
/* Heat-map overlay of the last inspection over roi (allocated, RGB, roi size). */
int ad_detector_heatmap(const ad_detector *d, const ad_image *roi, ad_image *out,
                        char *err, size_t errlen);

#endif

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
    /* The defect: the 8-connected region of smoothed-map pixels over the
     * pixel threshold that holds the map's peak. */
    int box_x, box_y, box_w, box_h; /* its bounding box in ROI pixels; w = h = 0 if none */
    long area;                    /* its pixels, in ROI pixels */
    double ms;                    /* inspection time */
} ad_result;

/* Frame (as captured, any size) -> ROI cropped, converted to the model's
 * colour. Used by the daemon and `anomalyctl capture` alike. */
int ad_preprocess_roi(const ad_config *cfg, const ad_image *frame, ad_image *roi,
                      char *err, size_t errlen);

/* Reads a PNG file as a camera frame and preprocesses it (roi allocated).
 * Errors name the file: unreadable or corrupt, channels other than the
 * model's (model.color), smaller than 8x8; with camera.roi set, a size
 * other than a whole frame (camera.width x height, cropped here) or the ROI
 * itself (what `anomalyctl capture` saves, used as it is). */
int ad_load_frame_file(const ad_config *cfg, const char *path, ad_image *roi,
                       char *err, size_t errlen);

typedef struct ad_detector ad_detector;

/* Loads cfg->model.path, checks it matches cfg (colour), allocates scratch
 * for cfg->model.input_width x input_height. With detector.normalize it also
 * loads the map statistics beside the model (ad_stats_path); a missing file,
 * or one made for another model, head or detector settings, fails the open
 * with what to run. */
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
/* Heat-map overlay of the last inspection over roi (allocated, RGB, roi size).
 * Fixed colour scale: 0 -> dark blue, 2 x pixel threshold -> yellow, so the
 * pixel threshold is the middle of the scale and images compare directly. */
int ad_detector_heatmap(const ad_detector *d, const ad_image *roi, ad_image *out,
                        char *err, size_t errlen);
/* Reconstruction of the last inspection at input size, planar (C, H, W) in
 * [-1, 1]; NULL for the no-learning baselines. */
const float *ad_detector_last_recon(const ad_detector *d);
int ad_detector_input_size(const ad_detector *d, int *w, int *h, int *c);

/* Settings measured for the ablation (docs/accuracy.md) that are not config
 * keys; `anomalyctl eval --tune KEY=VALUE` sets them. Zero = off. */
enum ad_baseline {
    AD_BASELINE_NONE = 0,      /* the diffusion reconstruction (default) */
    AD_BASELINE_ZSCORE = 1,    /* |x - mean| / std per pixel over good images; no model */
    AD_BASELINE_CONTRAST = 2,  /* |x - blur(x, 8)|; no model */
};
typedef struct ad_detector_tuning {
    enum ad_baseline baseline;
    double ssim_weight;        /* map += w * (1 - SSIM(x, x_hat)) / 2, 7x7-ish Gaussian window */
    int map_draws;             /* average maps of this many reconstructions (0/1 = one) */
    int scales;                /* differences also at 1/2, 1/4 ... resolution, summed (0/1 = one) */
    int flips;                 /* head passes over mirrored inputs, overriding detector.mirror:
                                * 1 = none, 2 = left-right, 4 = and upside down and both
                                * (0 = as the config says) */
    int normalize;             /* per-pixel (map - mean) / std of good images, fitted by the
                                * caller (fit_stats); the stats file is then not read */
} ad_detector_tuning;

/* Parses "KEY=VALUE" (baseline=zscore|contrast, ssim=W, draws=N, scales=N,
 * flips=1|2|4, normalize=0|1) into t. */
int ad_detector_tuning_parse(ad_detector_tuning *t, const char *kv, char *err, size_t errlen);
/* Like ad_detector_open with tuning; a baseline needs no model file. */
int ad_detector_open_tuned(ad_detector **out, const ad_config *cfg,
                           const ad_detector_tuning *tuning, char *err, size_t errlen);
/* Per-pixel statistics over good images (preprocessed ROIs): for the z-score
 * baseline the mean and spread of the pixels, otherwise (normalization) of
 * the raw anomaly map before smoothing. Needed before inspect in those cases. */
int ad_detector_fit_stats(ad_detector *d, const ad_image *rois, int n,
                          char *err, size_t errlen);
/* True while the detector needs statistics it does not have yet: the z-score
 * baseline or tuning.normalize before fit_stats. */
bool ad_detector_needs_stats(const ad_detector *d);

/* ---- the map statistics file (detector.normalize), src/detect/stats.c ----
 * It lives beside the model: model.path "x.safetensors" ->
 * "x.stats.safetensors". Tensors "mean" and "std", float32 (H, W) at the
 * input size; metadata anomalyd.format "anomalyd-map-stats-1", the input
 * size, the sha256 of the model (and of the head when the map uses one), the
 * detector settings the raw map depends on (map, noise_level, steps,
 * guidance, draws and the eval tunings ssim, draws, scales; not sigma: the
 * map is normalized before it is smoothed), the image count, the image
 * folder and the UTC date. */
void ad_stats_path(char *out, size_t outlen, const char *model_path);
/* Fits the statistics over every PNG in dir (the training folder's listing,
 * ad_png_list; each read like a camera frame by ad_load_frame_file);
 * *count gets the number of images. */
int ad_detector_fit_stats_dir(ad_detector *d, const char *dir, int *count, char *err,
                              size_t errlen);
/* Writes the fitted map statistics durably; source is the image folder they
 * came from (kept as provenance and offered in later error messages). */
int ad_detector_save_stats(const ad_detector *d, const char *path, const char *source, int count,
                           char *err, size_t errlen);
/* Reads and validates a statistics file for this detector: format, tensors,
 * shape = input size, finite values, std > 0, model and head sha256 and the
 * settings. Errors name the file, what is wrong and the command that refits
 * it. */
int ad_detector_load_stats(ad_detector *d, const char *path, char *err, size_t errlen);

#endif

/* A frame from a PNG file, checked against the config and preprocessed
 * like a camera frame: used by `score`, `eval` and `calibrate`. */
#include "anomalyd/detect.h"

#include <stdio.h>

#include "anomalyd/util.h"

int ad_load_frame_file(const ad_config *cfg, const char *path, ad_image *roi, char *err,
                      size_t errlen)
{
    ad_image frame = {0};
    char e[AD_ERRLEN];
    if (ad_png_read(path, 0, &frame, e, sizeof e) < 0) return ad_err(err, errlen, "%s", e);
    int want_c = (int)cfg->model.color;
    if (frame.c != want_c) {
        ad_err(err, errlen, "%s: image is %s but the model is %s (model.color in %s)", path,
               frame.c == 1 ? "gray" : "RGB", want_c == 1 ? "gray" : "rgb", cfg->path);
        ad_image_free(&frame);
        return -1;
    }
    /* With a ROI the file is either a whole camera frame (cropped here, as
     * the daemon crops) or already the ROI, as `anomalyctl capture` saves
     * it for training and calibration sets (used as it is). */
    int roi_set = cfg->camera.roi_width > 0 && cfg->camera.roi_height > 0;
    int is_frame = frame.w == cfg->camera.width && frame.h == cfg->camera.height;
    int is_roi = roi_set && frame.w == cfg->camera.roi_width && frame.h == cfg->camera.roi_height;
    if (roi_set && !is_frame && !is_roi) {
        ad_err(err, errlen, "%s: image is %dx%d but camera frames are %dx%d and the ROI is %dx%d "
               "(camera.width/height and camera.roi in %s): expected one of those sizes", path,
               frame.w, frame.h, cfg->camera.width, cfg->camera.height, cfg->camera.roi_width,
               cfg->camera.roi_height, cfg->path);
        ad_image_free(&frame);
        return -1;
    }
    if (is_roi && !is_frame) {
        *roi = frame; /* already the ROI in the model's colour */
        return 0;
    }
    if (frame.w < 8 || frame.h < 8) {
        ad_err(err, errlen, "%s: image is %dx%d, too small to inspect (at least 8x8)", path,
               frame.w, frame.h);
        ad_image_free(&frame);
        return -1;
    }
    int rc = ad_preprocess_roi(cfg, &frame, roi, e, sizeof e);
    ad_image_free(&frame);
    if (rc < 0) return ad_err(err, errlen, "%s: %s", path, e);
    return 0;
}

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
    if (cfg->camera.roi_width > 0 && cfg->camera.roi_height > 0 &&
        (frame.w != cfg->camera.width || frame.h != cfg->camera.height)) {
        ad_err(err, errlen, "%s: image is %dx%d but camera frames are %dx%d (camera.width/height "
               "in %s, which camera.roi refers to)", path, frame.w, frame.h, cfg->camera.width,
               cfg->camera.height, cfg->path);
        ad_image_free(&frame);
        return -1;
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

/* Frame source front end: options, dispatch by kind, info, reopen backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/capture.h"
#include "anomalyd/util.h"
#include "capture_internal.h"

const char *ad_capture_status_name(int status)
{
    switch (status) {
    case AD_CAPTURE_OK: return "ok";
    case AD_CAPTURE_ERROR: return "error";
    case AD_CAPTURE_NODEV: return "no device";
    case AD_CAPTURE_TIMEOUT: return "timeout";
    case AD_CAPTURE_AGAIN: return "again";
    case AD_CAPTURE_END: return "end";
    default: return "unknown";
    }
}

void ad_capture_options_from_config(ad_capture_options *opt, const ad_config *cfg)
{
    memset(opt, 0, sizeof *opt);
    opt->source = cfg->camera.source;
    snprintf(opt->device, sizeof opt->device, "%s", cfg->camera.device);
    snprintf(opt->replay_dir, sizeof opt->replay_dir, "%s", cfg->camera.replay_dir);
    opt->replay_loop = cfg->camera.replay_loop;
    opt->width = cfg->camera.width;
    opt->height = cfg->camera.height;
    opt->pixel_format = cfg->camera.pixel_format;
    switch (cfg->camera.pixel_format) {
    case AD_PIXFMT_GREY: opt->channels = 1; break;
    case AD_PIXFMT_RGB24: opt->channels = 3; break;
    default: opt->channels = cfg->model.color == AD_COLOR_RGB ? 3 : 1; break;
    }
    opt->fps = cfg->camera.fps;
    opt->buffers = cfg->camera.buffers;
    opt->timeout_ms = cfg->camera.timeout_ms;
    opt->ncontrols = cfg->camera.ncontrols;
    memcpy(opt->controls, cfg->camera.controls, sizeof opt->controls);
}

bool ad_capture_controls_equal(const ad_capture_options *a, const ad_capture_options *b)
{
    if (a->ncontrols != b->ncontrols) return false;
    for (int i = 0; i < a->ncontrols; i++) {
        const ad_camera_control *x = &a->controls[i], *y = &b->controls[i];
        if (strcmp(x->name, y->name) || x->kind != y->kind || x->value != y->value || strcmp(x->item, y->item))
            return false;
    }
    return true;
}

bool ad_capture_options_equal(const ad_capture_options *a, const ad_capture_options *b)
{
    return a->source == b->source && strcmp(a->device, b->device) == 0 &&
           strcmp(a->replay_dir, b->replay_dir) == 0 && a->replay_loop == b->replay_loop &&
           a->width == b->width && a->height == b->height &&
           a->pixel_format == b->pixel_format && a->channels == b->channels &&
           a->fps == b->fps && a->buffers == b->buffers && a->timeout_ms == b->timeout_ms &&
           ad_capture_controls_equal(a, b);
}

int ad_source_init_options(ad_source **out, const ad_capture_options *opt,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (opt->source != AD_SOURCE_V4L2 && opt->source != AD_SOURCE_REPLAY)
        return ad_err(err, errlen, "unknown camera source kind %d", (int)opt->source);
    if (opt->channels != 1 && opt->channels != 3)
        return ad_err(err, errlen, "frames must have 1 or 3 channels, got %d", opt->channels);
    if (!(opt->fps > 0))
        return ad_err(err, errlen, "camera.fps must be above 0, got %g", opt->fps);
    if (opt->source == AD_SOURCE_V4L2) {
        if (!opt->device[0]) return ad_err(err, errlen, "camera.device is empty");
        if (opt->width < 1 || opt->height < 1)
            return ad_err(err, errlen, "camera size %dx%d is invalid", opt->width, opt->height);
        if (opt->buffers < 2)
            return ad_err(err, errlen, "camera.buffers must be at least 2, got %d", opt->buffers);
        if (opt->timeout_ms < 1)
            return ad_err(err, errlen, "camera.timeout_ms must be positive, got %d",
                          opt->timeout_ms);
    } else if (!opt->replay_dir[0]) {
        return ad_err(err, errlen, "camera.source is replay but camera.replay_dir is empty");
    }
    ad_source *src = ad_xcalloc(1, sizeof *src);
    src->opt = *opt;
    src->v4l2.fd = -1;
    src->info.channels = opt->channels;
    *out = src;
    return 0;
}

int ad_source_init(ad_source **out, const ad_config *cfg, char *err, size_t errlen)
{
    ad_capture_options opt;
    ad_capture_options_from_config(&opt, cfg);
    return ad_source_init_options(out, &opt, err, errlen);
}

int ad_source_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen)
{
    if (granted && granted_len) granted[0] = '\0';
    ad_source_close(src);
    src->controls_report[0] = '\0';
    int rc = src->opt.source == AD_SOURCE_V4L2
                 ? ad_v4l2_open(src, granted, granted_len, err, errlen)
                 : ad_replay_open(src, granted, granted_len, err, errlen);
    src->info.open = rc == 0;
    return rc;
}

int ad_source_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                   char *err, size_t errlen)
{
    uint64_t seq_local = 0, dropped_local = 0;
    if (!seq) seq = &seq_local;
    if (!dropped) dropped = &dropped_local;
    *dropped = 0;
    if (!src->info.open) {
        ad_err(err, errlen, "camera is not open");
        return AD_CAPTURE_NODEV;
    }
    int rc = src->opt.source == AD_SOURCE_V4L2
                 ? ad_v4l2_grab(src, frame, seq, dropped, err, errlen)
                 : ad_replay_grab(src, frame, seq, dropped, err, errlen);
    src->info.dropped += *dropped;
    if (rc == AD_CAPTURE_OK) src->info.frames++;
    return rc;
}

void ad_source_close(ad_source *src)
{
    if (!src) return;
    if (src->opt.source == AD_SOURCE_V4L2)
        ad_v4l2_close(src);
    else
        ad_replay_close(src);
    src->info.open = false;
}

void ad_source_destroy(ad_source *src)
{
    if (!src) return;
    ad_source_close(src);
    free(src);
}

const char *ad_source_controls_report(const ad_source *src) { return src->controls_report; }

void ad_source_get_info(const ad_source *src, ad_source_info *info)
{
    *info = src->info;
}

/* ---- reopen backoff ---- */

void ad_backoff_init(ad_backoff *b, double min_s, double max_s)
{
    b->min_s = min_s > 0 ? min_s : 1.0;
    b->max_s = max_s >= b->min_s ? max_s : b->min_s;
    b->next_s = b->min_s;
}

void ad_backoff_reset(ad_backoff *b) { b->next_s = b->min_s; }

double ad_backoff_next(ad_backoff *b)
{
    if (!(b->min_s > 0)) ad_backoff_init(b, 1.0, 30.0); /* zeroed struct: defaults */
    double now = b->next_s;
    b->next_s = now * 2 > b->max_s ? b->max_s : now * 2;
    return now;
}

double ad_backoff_peek(const ad_backoff *b)
{
    return b->min_s > 0 ? b->next_s : 1.0; /* zeroed struct: the 1 s default */
}

int ad_backoff_wait(ad_backoff *b, int (*stopped)(void *ctx), void *ctx)
{
    double end = ad_now_sec() + ad_backoff_next(b);
    for (;;) {
        if (stopped && stopped(ctx)) return 1;
        double left = end - ad_now_sec();
        if (left <= 0) return 0;
        if (left > 0.1) left = 0.1;
        struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Frame sources: a V4L2 camera through libv4l2, or a folder of PNGs replayed
 * at a frame rate (demo, tests). Options come from the config; the runtime
 * state is owned by the source. close is safe to call twice.
 *
 * Typical use (the daemon's capture thread):
 *
 *     ad_source_init(&src, cfg, err, sizeof err);          // options only
 *     for (;;) {                                           // outer loop: (re)open
 *         if (ad_source_open(src, granted, ...) == 0) {
 *             ad_backoff_reset(&b);
 *             while (!stop) {                              // inner loop: frames
 *                 rc = ad_source_grab(src, &frame, &seq, &dropped, ...);
 *                 AGAIN/TIMEOUT: log once, continue;  NODEV: break;  END: stop
 *             }
 *             ad_source_close(src);
 *         }
 *         if (ad_backoff_wait(&b, stopped, ctx)) break;    // 1 s doubling to 30 s
 *     }
 *     ad_source_destroy(src);
 *
 * Pixel formats: libv4l2 (Debian 12) converts camera formats (YUYV, MJPEG,
 * Bayer...) to RGB24/BGR24/YU12/YV12 but never to GREY. So the V4L2 source
 * asks for GREY only when the camera offers it natively, otherwise RGB24, and
 * converts to the wanted channel count itself (luma BT.601 for gray). */
#ifndef ANOMALYD_CAPTURE_H
#define ANOMALYD_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/image.h"

/* Recoverable conditions are distinct negative codes; the caller's outer
 * loop decides whether to skip, wait or reopen. */
enum ad_capture_status {
    AD_CAPTURE_OK = 0,
    AD_CAPTURE_ERROR = -1,      /* unrecoverable (bad config, format refused) */
    AD_CAPTURE_NODEV = -2,      /* device vanished / cannot be opened: reopen with backoff */
    AD_CAPTURE_TIMEOUT = -3,    /* no frame within timeout_ms */
    AD_CAPTURE_AGAIN = -4,      /* nothing ready, try again (bad buffer, EAGAIN) */
    AD_CAPTURE_END = -5,        /* replay finished (no loop) */
};

/* "ok", "error", "no device", "timeout", "again", "end". */
const char *ad_capture_status_name(int status);

/* Everything a source needs, copied out of the config (plain data). A new
 * field belongs in ad_capture_options_equal too. */
typedef struct ad_capture_options {
    enum ad_source_kind source;    /* v4l2 | replay */
    char device[AD_PATH_MAX];      /* /dev/videoN */
    char replay_dir[AD_PATH_MAX];
    bool replay_loop;
    int width, height;             /* requested size (v4l2) */
    enum ad_pixfmt pixel_format;   /* auto | GREY | RGB24 */
    int channels;                  /* channels of the frames handed out: 1 or 3 */
    double fps;                    /* requested rate (v4l2) / playback rate (replay) */
    int buffers;                   /* mmap buffers requested (v4l2) */
    int timeout_ms;                /* poll timeout (v4l2) */
    int ncontrols;                 /* camera.controls, set at every open (v4l2) */
    ad_camera_control controls[AD_MAX_CONTROLS];
} ad_capture_options;

/* Output channels: GREY -> 1, RGB24 -> 3, auto -> model.color. */
void ad_capture_options_from_config(ad_capture_options *opt, const ad_config *cfg);
/* True when a source opened with a would hand out the same frames as one
 * opened with b: compared field by field (strings as strings), never the
 * bytes of the struct, whose padding and bytes after a string's end mean
 * nothing. The daemon's reload reopens the camera only when this is false. */
bool ad_capture_options_equal(const ad_capture_options *a, const ad_capture_options *b);
/* True when a and b set the same camera.controls, in the same order. */
bool ad_capture_controls_equal(const ad_capture_options *a, const ad_capture_options *b);

typedef struct ad_source ad_source;

/* init stores options only; open touches the device. *out is owned by the
 * caller and freed with ad_source_destroy. */
int ad_source_init(ad_source **out, const ad_config *cfg, char *err, size_t errlen);
int ad_source_init_options(ad_source **out, const ad_capture_options *opt,
                           char *err, size_t errlen);
/* Opens and starts streaming; on success `granted` describes what the camera
 * actually gave (e.g. "640x480 GREY 30.00 fps, 4 buffers"). On failure
 * returns AD_CAPTURE_NODEV (device missing or vanished: retry with backoff)
 * or AD_CAPTURE_ERROR (retrying will not help: not a capture device, format
 * refused, permissions), with err saying which and why. */
int ad_source_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen);
/* Waits up to timeout_ms for a frame and copies the NEWEST one into frame
 * (allocated on first use, reused after; reallocated if the size changes;
 * the caller frees it with ad_image_free). Older ready frames are requeued.
 * *seq is a 64-bit frame number that counts every frame the camera produced
 * since init (gaps = lost frames); *dropped is set to the frames lost since
 * the previous grab (older ready buffers discarded plus gaps in the driver's
 * sequence): callers add it to their own counter. Either pointer may be NULL.
 * Returns an ad_capture_status; err is filled for every non-OK status. */
int ad_source_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                   char *err, size_t errlen);
void ad_source_close(ad_source *src);
void ad_source_destroy(ad_source *src);

/* What was granted at the last successful open, and running counters. */
typedef struct ad_source_info {
    bool open;
    int width, height;          /* frame size handed out */
    int channels;               /* 1 or 3 */
    char fourcc[8];             /* camera format asked for ("GREY", "RGB3"); "PNG" for replay */
    bool converted;             /* libv4l2 converts from the camera's own format */
    char native_fourcc[8];      /* camera format behind the conversion (if known) */
    double fps;                 /* granted frame interval as rate; 0 = unknown */
    int buffers;                /* mmap buffers granted */
    uint64_t frames;            /* frames handed out since init */
    uint64_t dropped;           /* frames lost since init */
    uint64_t bad_buffers;       /* buffers with V4L2_BUF_FLAG_ERROR or short */
} ad_source_info;
void ad_source_get_info(const ad_source *src, ad_source_info *info);

/* ---- camera controls (camera.controls) ----
 * Every open of a V4L2 source sets the configured controls, automatic ones
 * first (auto_exposure before exposure_time_absolute, gain_automatic before
 * gain), then reads each one back. A control the camera lacks, a value out
 * of its range, a refusal, or a value the driver clamped or overrode does not
 * stop the camera: the open succeeds and says so here. */

/* What the last open said about the controls: "" when each was set and read
 * back as asked (or none is configured), else one line per problem
 * ("gain: wanted 50, got 17"), '\n'-separated. Owned by src. */
const char *ad_source_controls_report(const ad_source *src);

/* Checks cfg's camera.controls against the camera without streaming or
 * setting anything: each name is one of its controls, each value inside the
 * control's range or menu. Returns 0 when all are fine (and for a replay
 * source or no controls); the number of problems, each a line in `problems`
 * ("FILE:LINE:COL: camera.controls.gain: 300 is out of range ..., expected an
 * integer in 0..255"); or AD_CAPTURE_NODEV / AD_CAPTURE_ERROR when the
 * camera cannot be asked, with err saying why. */
int ad_camera_controls_check(const ad_config *cfg, char *problems, size_t problems_len,
                             char *err, size_t errlen);

/* The camera's current values of the controls that change the picture
 * (exposure, gain, white balance, focus, brightness, contrast ...) in the
 * order they must be set, with every automatic one at its manual setting.
 * `turned_off` names the automatic ones that were on ("auto_exposure (was
 * aperture_priority_mode), gain_automatic (was true)"), "" when none. For
 * anomalyctl init. 0, or -1 with err. */
int ad_v4l2_read_controls(const char *device, ad_camera_control *out, int max, int *n,
                          char *turned_off, size_t turned_off_len, char *err, size_t errlen);

/* Reopen backoff for the outer loop: 1 s doubling to 30 s by default. */
typedef struct ad_backoff {
    double min_s, max_s, next_s;
} ad_backoff;
void ad_backoff_init(ad_backoff *b, double min_s, double max_s);
void ad_backoff_reset(ad_backoff *b);
/* Returns the delay to wait now and doubles the next one (capped). */
double ad_backoff_next(ad_backoff *b);
/* The delay the next ad_backoff_next or ad_backoff_wait takes, unchanged
 * (for a "retry in N s" message before the wait). */
double ad_backoff_peek(const ad_backoff *b);
/* Sleeps ad_backoff_next(b) seconds in slices of at most 100 ms, returning 1
 * as soon as stopped(ctx) is true (stopped may be NULL), else 0. */
int ad_backoff_wait(ad_backoff *b, int (*stopped)(void *ctx), void *ctx);

/* One pixel format + frame size a camera offers, with its frame rates. */
typedef struct ad_camera_mode {
    char fourcc[8];             /* "YUYV", "GREY", "MJPG" ... */
    char description[32];       /* driver's text */
    bool emulated;              /* produced by libv4l2 conversion, not the camera */
    int width, height;          /* 0 when the driver lists no sizes */
    bool stepwise;              /* sizes are a range: width/height are the maximum */
    int nfps;
    double fps[16];             /* discrete rates, highest first (may be empty) */
} ad_camera_mode;
/* Lists the formats and sizes a V4L2 device offers (through libv4l2, so
 * emulated formats appear flagged). *modes is malloc'd; caller frees. */
int ad_v4l2_list_modes(const char *device, ad_camera_mode **modes, size_t *n,
                       char *err, size_t errlen);

#endif

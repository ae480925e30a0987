/* Frame sources: a V4L2 camera through libv4l2, or a folder of PNGs replayed
 * at a frame rate (demo, tests). Options come from the config; the runtime
 * state is owned by the source. close is safe to call twice. */
#ifndef ANOMALYD_CAPTURE_H
#define ANOMALYD_CAPTURE_H

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

typedef struct ad_source ad_source;

/* init stores options only; open touches the device. */
int ad_source_init(ad_source **out, const ad_config *cfg, char *err, size_t errlen);
/* Opens and starts streaming; on success `granted` describes what the camera
 * actually gave (e.g. "640x480 GREY 30.00 fps, 4 buffers"). */
int ad_source_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen);
/* Waits up to timeout_ms for a frame and copies the NEWEST one into frame
 * (allocated on first use, reused after); older ready frames are requeued and
 * counted in *dropped. Returns an ad_capture_status. */
int ad_source_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                   char *err, size_t errlen);
void ad_source_close(ad_source *src);
void ad_source_destroy(ad_source *src);

#endif

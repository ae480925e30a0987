/* Private to src/capture: the source object and the per-kind entry points. */
#ifndef ANOMALYD_CAPTURE_INTERNAL_H
#define ANOMALYD_CAPTURE_INTERNAL_H

#include <stdint.h>

#include "anomalyd/capture.h"

typedef struct ad_v4l2_buffer {
    void *start;
    size_t length;
} ad_v4l2_buffer;

/* V4L2 runtime, owned by the source; fd -1 and NULL pointers when closed. */
typedef struct ad_v4l2_state {
    int fd;
    bool streaming;
    ad_v4l2_buffer *bufs;
    int nbufs;
    uint32_t fourcc;            /* V4L2_PIX_FMT_GREY or V4L2_PIX_FMT_RGB24 */
    int width, height;
    uint32_t bytesperline;
    uint32_t sizeimage;
    bool have_seq;
    uint32_t last_seq;          /* driver's 32-bit sequence of the last frame */
    int gone_errno;             /* device failed after a good frame: report on next grab */
} ad_v4l2_state;

typedef struct ad_replay_state {
    char **files;               /* sorted full paths */
    size_t nfiles;
    size_t next;                /* index of the next file to play */
    double t0;                  /* schedule anchor (monotonic seconds) */
    uint64_t emitted;           /* frames since the anchor */
} ad_replay_state;

struct ad_source {
    ad_capture_options opt;
    ad_source_info info;
    uint64_t seq;               /* next 64-bit frame number */
    ad_v4l2_state v4l2;
    ad_replay_state replay;
    char controls_report[4096]; /* ad_source_controls_report */
};

/* v4l2_ioctl, again after EINTR: every device call of v4l2*.c. */
int ad_v4l2_xioctl(int fd, unsigned long request, void *arg);
int ad_v4l2_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen);
int ad_v4l2_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                 char *err, size_t errlen);
void ad_v4l2_close(ad_source *src);
/* Open step (v4l2_controls.c): sets opt.controls on the open fd and reads
 * them back; problems go to controls_report. AD_CAPTURE_NODEV if the camera
 * vanished meanwhile, else 0. `set` gets the number set as asked. */
int ad_v4l2_apply_controls(ad_source *src, int *set, char *err, size_t errlen);

int ad_replay_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen);
int ad_replay_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                   char *err, size_t errlen);
void ad_replay_close(ad_source *src);

#endif

/* The capture thread: the outer loop opens the camera and reopens it with
 * backoff, watching the stop flag and reloads; the inner loop grabs frames
 * into the newest-frame mailbox and counts what is dropped. Never lets the
 * driver run out of buffers: a frame is swapped into the mailbox, not
 * copied, and the grab goes on. See daemon_internal.h. */
#include <string.h>

#include "daemon_internal.h"

void ad_capture_thread_init(ad_capture_thread *t, ad_mailbox *mb, ad_camera_slot *camera,
                            ad_part_stage *parts)
{
    memset(t, 0, sizeof *t);
    t->mailbox = mb;
    t->camera = camera;
    t->parts = parts;
    pthread_mutex_init(&t->status_lock, NULL);
}

void ad_capture_thread_destroy(ad_capture_thread *t)
{
    pthread_mutex_destroy(&t->status_lock);
}

static void set_status(ad_capture_thread *t, const char *s)
{
    pthread_mutex_lock(&t->status_lock);
    ad_fmt_trunc(t->status, sizeof t->status, "%s", s);
    pthread_mutex_unlock(&t->status_lock);
}

void ad_capture_thread_status(ad_capture_thread *t, char *out, size_t n)
{
    pthread_mutex_lock(&t->status_lock);
    ad_fmt_trunc(out, n, "%s", t->status);
    pthread_mutex_unlock(&t->status_lock);
}

/* Cuts a reopen wait short: stop, or new camera settings from a reload. */
static int interrupted(void *arg)
{
    ad_capture_thread *t = arg;
    return atomic_load(&t->stop) || ad_camera_slot_changed(t->camera);
}

/* The inner loop: grabs from an open source until stop, a reload, the end
 * of a replay or a condition that needs a reopen. Returns the last grab
 * status (err filled when it is an error). */
static int grab_frames(ad_capture_thread *t, ad_source *src, const ad_camera_settings *cam,
                       ad_image *frame, ad_latch *latch, char *err, size_t errlen)
{
    char msg[AD_ERRLEN + 128];
    int rc = AD_CAPTURE_OK, timeouts = 0;
    int max_timeouts = cam->opt.timeout_ms > 0 ? 10000 / cam->opt.timeout_ms : 3;
    if (max_timeouts < 3) max_timeouts = 3;
    while (!atomic_load(&t->stop) && !ad_camera_slot_changed(t->camera)) {
        uint64_t seq = 0, dropped = 0;
        rc = ad_source_grab(src, frame, &seq, &dropped, err, errlen);
        if (dropped) atomic_fetch_add(&t->dropped, (long)dropped);
        if (rc == AD_CAPTURE_OK) {
            timeouts = 0;
            ad_latch_clear(latch, "frames are arriving again");
            atomic_fetch_add(&t->captured, 1);
            double now = ad_now_sec();
            ad_part_stage_frame(t->parts, frame, now); /* before the frame leaves: it may fire for it */
            if (ad_mailbox_put(t->mailbox, frame, seq, now)) atomic_fetch_add(&t->dropped, 1);
            continue;
        }
        if (rc == AD_CAPTURE_END) {
            ad_log(AD_LOG_INFO, "replay of %s finished after %ld frames", cam->name,
                   atomic_load(&t->captured));
            break;
        }
        ad_fmt_trunc(msg, sizeof msg, "camera %s: %s", cam->name, err);
        if (rc == AD_CAPTURE_AGAIN) {
            ad_latch_log(latch, AD_LOG_WARN, msg);
            continue;
        }
        if (rc == AD_CAPTURE_TIMEOUT && ++timeouts < max_timeouts) {
            ad_latch_log(latch, AD_LOG_WARN, msg);
            continue;
        }
        ad_latch_log(latch, AD_LOG_ERR, msg);
        break; /* NODEV, ERROR or too many timeouts: reopen */
    }
    return rc;
}

/* Each open sets camera.controls again (a replugged camera starts from its
 * defaults); what did not go as asked is logged once, not at every reopen:
 * when it differs from what the last open said. */
static void log_controls(const char *camera, const char *report, char *last, size_t lastlen)
{
    if (strcmp(report, last) == 0) return;
    if (!report[0]) ad_log(AD_LOG_INFO, "camera %s: every camera.controls entry is set as asked again", camera);
    for (const char *line = report; *line;) {
        size_t len = strcspn(line, "\n");
        ad_log(AD_LOG_WARN, "camera %s: camera.controls.%.*s", camera, (int)len, line);
        line += len + (line[len] == '\n');
    }
    ad_fmt_trunc(last, lastlen, "%s", report);
}

void *ad_capture_thread_main(void *arg)
{
    ad_capture_thread *t = arg;
    ad_thread_enter("ad-capture");
    ad_backoff backoff;
    ad_backoff_init(&backoff, 1.0, 30.0);
    ad_latch open_latch = {0}, grab_latch = {0};
    ad_image frame = {0};
    ad_camera_settings cam;
    char err[AD_ERRLEN], msg[AD_ERRLEN + 128], granted[256], controls[4096] = "";

    while (!atomic_load(&t->stop)) {
        ad_camera_slot_take(t->camera, &cam);
        ad_source *src = NULL;
        int rc = ad_source_init_options(&src, &cam.opt, err, sizeof err);
        if (rc == 0) rc = ad_source_open(src, granted, sizeof granted, err, sizeof err);
        if (rc == 0) {
            ad_latch_clear(&open_latch, "camera is back");
            ad_log(AD_LOG_INFO, "camera %s open: %s", cam.name, granted);
            log_controls(cam.name, ad_source_controls_report(src), controls, sizeof controls);
            ad_backoff_reset(&backoff);
            set_status(t, "");
            atomic_store(&t->up, 1);
            rc = grab_frames(t, src, &cam, &frame, &grab_latch, err, sizeof err);
            atomic_store(&t->up, 0);
            ad_source_close(src);
            ad_source_destroy(src);
            if (rc == AD_CAPTURE_END) {
                ad_mailbox_end(t->mailbox);
                break;
            }
            if (atomic_load(&t->stop)) break;
            if (ad_camera_slot_changed(t->camera)) continue;
        } else {
            ad_source_destroy(src);
            ad_fmt_trunc(msg, sizeof msg, "camera %s: %s", cam.name, err);
            ad_latch_log(&open_latch, rc == AD_CAPTURE_NODEV ? AD_LOG_WARN : AD_LOG_ERR, msg);
        }
        ad_fmt_trunc(msg, sizeof msg, "waiting for camera %s (%s); retry in %.0f s", cam.name,
                     err, ad_backoff_peek(&backoff));
        set_status(t, msg);
        ad_backoff_wait(&backoff, interrupted, t);
    }
    ad_image_free(&frame);
    return NULL;
}

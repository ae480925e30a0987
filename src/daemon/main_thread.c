/* The main thread once the workers run: waits for signals (every other
 * thread blocks them), reloads on SIGHUP, tells systemd READY, STATUS and
 * WATCHDOG, and rolls the per-minute counters into the writer's queue. See
 * daemon_internal.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/daemon.h"
#include "daemon_internal.h"

#define STATUS_EVERY_S 1.0

void ad_daemon_read_counts(ad_daemon *d, ad_counts *c)
{
    c->captured = atomic_load(&d->capture.captured);
    c->dropped = atomic_load(&d->capture.dropped);
    c->inspected = atomic_load(&d->inspect.inspected);
    c->rejects = atomic_load(&d->inspect.rejects);
    c->images_skipped =
        atomic_load(&d->inspect.images_skipped) + atomic_load(&d->writer.images_skipped);
    c->rows_written = atomic_load(&d->writer.rows_written);
    c->rows_lost = atomic_load(&d->writer.rows_lost);
    ad_part_counts parts;
    ad_part_stage_counts(&d->parts, &parts);
    c->unsettled = parts.unsettled;
}

static void minute_now(char out[32])
{
    char ts[32];
    ad_utc_timestamp(ts);
    ad_fmt_trunc(out, 32, "%.16s", ts);
}

void ad_main_thread_minute_start(ad_daemon *d)
{
    ad_main_thread *m = &d->main;
    minute_now(m->minute);
    m->minute_started = ad_now_sec();
    ad_daemon_read_counts(d, &m->minute_base);
}

void ad_main_thread_minute_flush(ad_daemon *d)
{
    ad_main_thread *m = &d->main;
    ad_job *j = ad_xcalloc(1, sizeof *j);
    j->kind = AD_JOB_MINUTE;
    ad_minute_counts *c = &j->minute;
    ad_counts now;
    ad_daemon_read_counts(d, &now);
    ad_fmt_trunc(c->minute, sizeof c->minute, "%s", m->minute);
    ad_fmt_trunc(c->line, sizeof c->line, "%s", m->cfg.line.name);
    c->seconds = ad_now_sec() - m->minute_started;
    c->captured = now.captured - m->minute_base.captured;
    c->inspected = now.inspected - m->minute_base.inspected;
    c->dropped = now.dropped - m->minute_base.dropped;
    c->rejects = now.rejects - m->minute_base.rejects;
    c->images_skipped = now.images_skipped - m->minute_base.images_skipped;
    ad_inspect_stats_roll(&d->stats, c);
    ad_main_thread_minute_start(d);
    ad_log(AD_LOG_INFO,
           "minute %s: captured %ld, inspected %ld, dropped %ld, rejects %ld, images skipped "
           "%ld, score p50 %.4f max %.4f, latency p50 %.1f ms p99 %.1f ms (%.0f s)",
           c->minute, c->captured, c->inspected, c->dropped, c->rejects, c->images_skipped,
           c->score_p50, c->score_max, c->latency_ms_p50, c->latency_ms_p99, c->seconds);
    ad_line_io_minute(d->io, c);
    ad_writer_queue_push(&d->queue, j);
}

static void send_status(ad_daemon *d)
{
    ad_main_thread *m = &d->main;
    ad_rate_hist *h = &m->rates;
    ad_counts now;
    ad_daemon_read_counts(d, &now);
    double t = ad_now_sec();
    h->head = (h->head + 1) % AD_RATE_WINDOW;
    h->inspected[h->head] = now.inspected;
    h->rejects[h->head] = now.rejects;
    h->t[h->head] = t;
    if (h->n < AD_RATE_WINDOW) h->n++;
    int oldest = (h->head - h->n + 1 + AD_RATE_WINDOW) % AD_RATE_WINDOW;
    double dt = t - h->t[oldest];
    long di = now.inspected - h->inspected[oldest], dr = now.rejects - h->rejects[oldest];
    double fps = dt > 0 ? di / dt : 0;
    double rate = di > 0 ? 100.0 * (double)dr / (double)di : 0;

    char cam[AD_ERRLEN], msg[AD_ERRLEN + 1024], links[512];
    double last, thr, lat50, lat99;
    ad_capture_thread_status(&d->capture, cam, sizeof cam);
    ad_inspect_stats_peek(&d->stats, &last, &thr, &lat50, &lat99, m->lat_scratch);
    ad_line_status line = {.camera_up = atomic_load(&d->capture.up) != 0, .inspected = now.inspected,
                           .rejects = now.rejects, .parts = now.inspected, .last_score = last,
                           .threshold = thr, .state = cam[0] ? cam : "running"};
    ad_line_io_status(d->io, &line);
    ad_line_io_describe(d->io, links, sizeof links);
    if (cam[0])
        ad_fmt_trunc(msg, sizeof msg, "STATUS=%s: %s", m->cfg.line.name, cam);
    else
        ad_fmt_trunc(msg, sizeof msg,
                     "STATUS=%s: %.1f fps, rejects %.2f%% (last %.0f s), last score %.4f "
                     "(threshold %.4g), latency p50 %.1f ms p99 %.1f ms; captured %ld, "
                     "inspected %ld, dropped %ld, rejects %ld, images skipped %ld",
                     m->cfg.line.name, fps, rate, dt, last, thr, lat50, lat99, now.captured,
                     now.inspected, now.dropped, now.rejects, now.images_skipped);
    size_t used = strlen(msg);
    if (m->cfg.trigger.mode == AD_TRIGGER_PART && !cam[0])
        ad_fmt_trunc(msg + used, sizeof msg - used, ", parts not at rest %ld", now.unsettled);
    used = strlen(msg);
    if (links[0]) ad_fmt_trunc(msg + used, sizeof msg - used, "; %s", links);
    ad_sd_notify(msg);
}

/* SIGHUP: a new config and detector, offered to the threads that use them;
 * on any error the old ones stay. */
static void reload(ad_daemon *d)
{
    ad_main_thread *m = &d->main;
    char err[AD_ERRLEN];
    ad_config nc;
    ad_log(AD_LOG_INFO, "SIGHUP: reloading %s", m->config_path);
    if (ad_config_load(m->config_path, &nc, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "reload failed, still running on the previous config: %s", err);
        return;
    }
    /* new camera.controls (or a new camera) must fit the camera, as at start;
     * what the running ones already lack was logged when the camera opened */
    ad_capture_options now_cam, new_cam;
    ad_capture_options_from_config(&now_cam, &m->cfg);
    ad_capture_options_from_config(&new_cam, &nc);
    bool checked, controls_changed = !ad_capture_controls_equal(&new_cam, &now_cam) ||
                                     strcmp(new_cam.device, now_cam.device) != 0;
    if (controls_changed && ad_daemon_check_controls(&nc, false, &checked)) {
        ad_log(AD_LOG_ERR, "reload failed, still running on the previous config: camera.controls do not fit "
               "the camera (above)");
        return;
    }
    if (ad_part_stage_offer(&d->parts, &nc, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "reload failed, still running on the previous config: %s", err);
        return;
    }
    ad_detector *nd = NULL;
    if (ad_detector_open(&nd, &nc, err, sizeof err) != 0) {
        ad_part_stage_offer(&d->parts, &m->cfg, err, sizeof err); /* back to what it had */
        ad_log(AD_LOG_ERR, "reload failed, still running on the previous config and model: %s", err);
        return;
    }
    ad_detector_set_threshold(nd, nc.threshold);
    char sha[65];
    /* Before the offer: from then on nd belongs to the inspection thread. */
    ad_fmt_trunc(sha, sizeof sha, "%s", ad_detector_model_sha256(nd));
    ad_reload_slot_offer(&d->reload, nd, &nc);
    if (ad_camera_slot_offer(&d->camera, &nc))
        ad_log(AD_LOG_INFO, "camera settings changed: the camera will be reopened");
    ad_store_options now_store, new_store;
    ad_store_options_from_config(&now_store, &m->cfg);
    ad_store_options_from_config(&new_store, &nc);
    if (!ad_store_options_equal(&new_store, &now_store))
        ad_writer_queue_reopen_store(&d->queue, &new_store);
    if (nc.trigger.queue != m->cfg.trigger.queue) ad_trigger_queue_resize(d->triggers, nc.trigger.queue);
    if (ad_line_io_reload(d->io, &nc, err, sizeof err) != 0)
        ad_log(AD_LOG_ERR, "reload: an output refused its new settings and keeps its old ones: %s", err);
    m->cfg = nc;
    ad_log(AD_LOG_INFO, "reloaded %s: threshold %g, model %s (sha256 %.12s)", m->config_path,
           nc.threshold, nc.model.path, sha);
}

void ad_main_thread_run(ad_daemon *d, const sigset_t *sigs)
{
    ad_main_thread *m = &d->main;
    double watchdog = ad_sd_watchdog_interval();
    double next_status = 0, next_watchdog = 0;
    bool ready = false;
    char minute[32];
    while (!atomic_load(&d->inspect.done)) {
        struct timespec wait = {0, 100 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(sigs, &info, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            ad_log(AD_LOG_INFO, "%s: finishing the frame in hand and flushing the log",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP) {
            if (ready) ad_sd_notify("RELOADING=1");
            reload(d);
            if (ready) ad_sd_notify("READY=1");
        }
        double t = ad_now_sec();
        if (!ready && atomic_load(&d->capture.up)) {
            ready = true;
            ad_sd_notify("READY=1");
            ad_log(AD_LOG_INFO, "ready: model and camera are up");
        }
        if (t >= next_status) {
            send_status(d);
            next_status = t + STATUS_EVERY_S;
        }
        if (watchdog > 0 && t >= next_watchdog) {
            /* Ping only while inspection is alive: stuck in one frame longer
             * than the watchdog allows means systemd should restart us. */
            double beat = (double)atomic_load(&d->inspect.heartbeat_ms) / 1000.0;
            if (t - beat < 2 * watchdog) ad_sd_notify("WATCHDOG=1");
            next_watchdog = t + watchdog;
        }
        minute_now(minute);
        if (strcmp(minute, m->minute) != 0) ad_main_thread_minute_flush(d);
    }
}

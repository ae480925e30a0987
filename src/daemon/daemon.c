/* anomalyd: capture, inspection and writer threads; signals, reload,
 * sd_notify and per-minute counters in the main thread. See daemon.h. */
#include "anomalyd/daemon.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/calib.h"
#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/store.h"
#include "anomalyd/util.h"

#ifndef ANOMALYD_VERSION
#define ANOMALYD_VERSION "unknown"
#endif

#define MINUTE_SAMPLES_MAX 65536   /* scores/latencies kept per minute for quantiles */
#define WRITER_BATCH 256           /* rows per transaction */
#define WRITER_RETRY_S 0.5         /* wait between attempts while the database refuses */
#define WRITER_STOP_GRACE_S 20.0   /* at shutdown, keep retrying this long */
#define RETENTION_EVERY_S 600.0
#define STATUS_EVERY_S 1.0
#define RATE_WINDOW 60             /* seconds of history for the status rates */

/* snprintf that truncates on purpose (messages, names): no warning noise. */
static void fmt_trunc(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_trunc(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* ---- "log each distinct error once" ---- */

typedef struct err_latch {
    char last[AD_ERRLEN + 128];  /* the message logged */
    char key[AD_ERRLEN + 128];   /* what makes a message "the same" */
    long repeats;
} err_latch;

/* Logs msg unless its key is the same as the last one's; returns 1 if
 * logged. */
static int latch_log_keyed(err_latch *l, const char *key, enum ad_log_level level, const char *msg)
{
    if (l->last[0] && strcmp(l->key, key) == 0) {
        l->repeats++;
        return 0;
    }
    fmt_trunc(l->last, sizeof l->last, "%s", msg);
    fmt_trunc(l->key, sizeof l->key, "%s", key);
    l->repeats = 0;
    ad_log(level, "%s", msg);
    return 1;
}

static int latch_log(err_latch *l, enum ad_log_level level, const char *msg)
{
    return latch_log_keyed(l, msg, level, msg);
}

/* The reason at the end of "path: what: reason", so errors that differ only
 * in the file they name count as one. */
static const char *error_reason(const char *err)
{
    const char *p = strrchr(err, ':');
    return p && p[1] == ' ' ? p + 2 : err;
}

static void latch_clear(err_latch *l, const char *recovered_what)
{
    if (!l->last[0]) return;
    ad_log(AD_LOG_INFO, "%s (after %ld repeats of: %s)", recovered_what, l->repeats, l->last);
    l->last[0] = 0;
    l->repeats = 0;
}

/* ---- shared state ---- */

enum job_kind { JOB_REJECT, JOB_MINUTE };

typedef struct job {
    struct job *next;
    enum job_kind kind;
    ad_reject row;
    ad_image frame, heat;      /* owned; px == NULL when absent */
    ad_minute_counts minute;
} job;

typedef struct minute_acc {
    double *scores, *lat_ms;
    size_t n, n_lat;
    char minute[32];           /* 'YYYY-MM-DD HH:MM' being accumulated */
    double started;            /* monotonic start of the interval */
    long captured0, inspected0, dropped0, rejects0, skipped0;
} minute_acc;

typedef struct dstate {
    char config_path[AD_PATH_MAX];
    bool no_drop;
    ad_config cfg;                 /* main thread's current config */

    atomic_int stop;               /* SIGTERM/SIGINT: finish the frame in hand, flush */
    atomic_int capture_finished;   /* replay END */
    atomic_int inspection_done;
    atomic_int camera_up;
    atomic_long captured, dropped, inspected, rejects, images_skipped, inspect_errors;
    atomic_long rows_written, rows_lost;
    atomic_llong inspect_heartbeat_ms;

    pthread_mutex_t lock;          /* mailbox, reload handoff, camera status, stats */
    pthread_cond_t frame_ready, slot_free;
    ad_image slot;
    uint64_t slot_seq;
    bool slot_full;

    ad_config cam_cfg;             /* config the capture thread opens with */
    bool camera_changed;
    char camera_status[AD_ERRLEN]; /* "waiting for camera ..." or "" */

    ad_detector *det;              /* owned by the inspection thread */
    ad_detector *new_det;          /* reload handoff */
    ad_config new_cfg;
    bool new_pending;

    double last_score, last_threshold;
    minute_acc acc;

    /* writer */
    pthread_mutex_t wlock;
    pthread_cond_t wcond;
    job *whead, *wtail;
    int pending_images;
    bool writer_stop;
    bool store_changed;
    ad_config store_cfg;
    ad_store *store;
} dstate;

static double now_mono(void) { return ad_now_sec(); }

static void block_signals_in_thread(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* Condition wait with a relative timeout in seconds (CLOCK_REALTIME cond). */
static void cond_wait_s(pthread_cond_t *c, pthread_mutex_t *m, double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)(s * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(c, m, &ts);
}

static const char *camera_name(const ad_config *cfg)
{
    return cfg->camera.source == AD_SOURCE_REPLAY ? cfg->camera.replay_dir : cfg->camera.device;
}

static void minute_now(char out[32])
{
    char ts[32];
    ad_utc_timestamp(ts);
    fmt_trunc(out, 32, "%.16s", ts);
}

/* ---- capture thread ---- */

static void set_camera_status(dstate *d, const char *s)
{
    pthread_mutex_lock(&d->lock);
    fmt_trunc(d->camera_status, sizeof d->camera_status, "%s", s);
    pthread_mutex_unlock(&d->lock);
}

/* Hands a frame to the inspection thread by swapping buffers with the slot. */
static void mailbox_put(dstate *d, ad_image *frame, uint64_t seq)
{
    pthread_mutex_lock(&d->lock);
    while (d->no_drop && d->slot_full && !atomic_load(&d->stop))
        cond_wait_s(&d->slot_free, &d->lock, 0.25);
    if (d->slot_full) atomic_fetch_add(&d->dropped, 1); /* never inspected */
    ad_image tmp = d->slot;
    d->slot = *frame;
    *frame = tmp;
    d->slot_seq = seq;
    d->slot_full = true;
    pthread_cond_signal(&d->frame_ready);
    pthread_mutex_unlock(&d->lock);
}

static bool camera_changed(dstate *d)
{
    pthread_mutex_lock(&d->lock);
    bool c = d->camera_changed;
    pthread_mutex_unlock(&d->lock);
    return c;
}

/* Cuts a reopen wait short: stop, or new camera settings from a reload. */
static int capture_interrupted(void *arg)
{
    dstate *d = arg;
    return atomic_load(&d->stop) || camera_changed(d);
}

static void *capture_main(void *arg)
{
    dstate *d = arg;
    block_signals_in_thread();
    pthread_setname_np(pthread_self(), "ad-capture");
    ad_backoff backoff;
    ad_backoff_init(&backoff, 1.0, 30.0);
    err_latch open_latch = {0}, grab_latch = {0};
    ad_image frame = {0};
    char err[AD_ERRLEN], msg[AD_ERRLEN + 128], granted[256];

    while (!atomic_load(&d->stop)) {
        ad_config cfg;
        pthread_mutex_lock(&d->lock);
        cfg = d->cam_cfg;
        d->camera_changed = false;
        pthread_mutex_unlock(&d->lock);

        ad_source *src = NULL;
        int rc = ad_source_init(&src, &cfg, err, sizeof err);
        if (rc == 0) rc = ad_source_open(src, granted, sizeof granted, err, sizeof err);
        if (rc == 0) {
            latch_clear(&open_latch, "camera is back");
            ad_log(AD_LOG_INFO, "camera %s open: %s", camera_name(&cfg), granted);
            ad_backoff_reset(&backoff);
            set_camera_status(d, "");
            atomic_store(&d->camera_up, 1);
            int timeouts = 0;
            int max_timeouts = cfg.camera.timeout_ms > 0 ? 10000 / cfg.camera.timeout_ms : 3;
            if (max_timeouts < 3) max_timeouts = 3;
            while (!atomic_load(&d->stop) && !camera_changed(d)) {
                uint64_t seq = 0, dropped = 0;
                rc = ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err);
                if (dropped) atomic_fetch_add(&d->dropped, (long)dropped);
                if (rc == AD_CAPTURE_OK) {
                    timeouts = 0;
                    latch_clear(&grab_latch, "frames are arriving again");
                    atomic_fetch_add(&d->captured, 1);
                    mailbox_put(d, &frame, seq);
                    continue;
                }
                if (rc == AD_CAPTURE_END) {
                    ad_log(AD_LOG_INFO, "replay of %s finished after %ld frames",
                           camera_name(&cfg), atomic_load(&d->captured));
                    break;
                }
                fmt_trunc(msg, sizeof msg, "camera %s: %s", camera_name(&cfg), err);
                if (rc == AD_CAPTURE_AGAIN) {
                    latch_log(&grab_latch, AD_LOG_WARN, msg);
                    continue;
                }
                if (rc == AD_CAPTURE_TIMEOUT && ++timeouts < max_timeouts) {
                    latch_log(&grab_latch, AD_LOG_WARN, msg);
                    continue;
                }
                latch_log(&grab_latch, AD_LOG_ERR, msg);
                break; /* NODEV, ERROR or too many timeouts: reopen */
            }
            atomic_store(&d->camera_up, 0);
            ad_source_close(src);
            ad_source_destroy(src);
            if (rc == AD_CAPTURE_END) {
                atomic_store(&d->capture_finished, 1);
                pthread_mutex_lock(&d->lock);
                pthread_cond_broadcast(&d->frame_ready);
                pthread_mutex_unlock(&d->lock);
                break;
            }
            if (atomic_load(&d->stop)) break;
            if (camera_changed(d)) continue;
        } else {
            ad_source_destroy(src);
            fmt_trunc(msg, sizeof msg, "camera %s: %s", camera_name(&cfg), err);
            latch_log(&open_latch, rc == AD_CAPTURE_NODEV ? AD_LOG_WARN : AD_LOG_ERR, msg);
        }
        fmt_trunc(msg, sizeof msg, "waiting for camera %s (%s); retry in %.0f s",
                 camera_name(&cfg), err, ad_backoff_peek(&backoff));
        set_camera_status(d, msg);
        ad_backoff_wait(&backoff, capture_interrupted, d);
    }
    ad_image_free(&frame);
    return NULL;
}

/* ---- writer queue ---- */

static void writer_push(dstate *d, job *j)
{
    pthread_mutex_lock(&d->wlock);
    if (d->wtail)
        d->wtail->next = j;
    else
        d->whead = j;
    d->wtail = j;
    if (j->frame.px || j->heat.px) d->pending_images++;
    pthread_cond_signal(&d->wcond);
    pthread_mutex_unlock(&d->wlock);
}

static int pending_images(dstate *d)
{
    pthread_mutex_lock(&d->wlock);
    int n = d->pending_images;
    pthread_mutex_unlock(&d->wlock);
    return n;
}

static void job_free(job *j)
{
    ad_image_free(&j->frame);
    ad_image_free(&j->heat);
    free(j);
}

/* ---- inspection thread ---- */

static void acc_add(minute_acc *a, double score, double ms)
{
    if (a->n < MINUTE_SAMPLES_MAX) a->scores[a->n++] = score;
    if (a->n_lat < MINUTE_SAMPLES_MAX) a->lat_ms[a->n_lat++] = ms;
}

static void take_reload(dstate *d, ad_config *cfg)
{
    ad_detector *old = NULL;
    pthread_mutex_lock(&d->lock);
    if (d->new_pending) {
        old = d->det;
        d->det = d->new_det;
        *cfg = d->new_cfg;
        d->new_det = NULL;
        d->new_pending = false;
    }
    pthread_mutex_unlock(&d->lock);
    if (old) {
        ad_detector_close(old);
        ad_log(AD_LOG_INFO, "inspection now uses the reloaded config: threshold %g, model %s",
               cfg->threshold, ad_detector_model_sha256(d->det));
    }
}

static void *inspection_main(void *arg)
{
    dstate *d = arg;
    block_signals_in_thread();
    pthread_setname_np(pthread_self(), "ad-inspect");
    ad_config cfg = d->cfg;
    ad_image work = {0}, roi = {0};
    err_latch latch = {0};
    char err[AD_ERRLEN], msg[AD_ERRLEN + 64];

    for (;;) {
        uint64_t seq = 0;
        pthread_mutex_lock(&d->lock);
        while (!d->slot_full && !atomic_load(&d->stop) && !atomic_load(&d->capture_finished)) {
            atomic_store(&d->inspect_heartbeat_ms, (long long)(now_mono() * 1000));
            cond_wait_s(&d->frame_ready, &d->lock, 0.25);
        }
        if (atomic_load(&d->stop) || !d->slot_full) {
            pthread_mutex_unlock(&d->lock);
            break;
        }
        ad_image tmp = work;
        work = d->slot;
        d->slot = tmp;
        seq = d->slot_seq;
        d->slot_full = false;
        pthread_cond_signal(&d->slot_free);
        pthread_mutex_unlock(&d->lock);
        atomic_store(&d->inspect_heartbeat_ms, (long long)(now_mono() * 1000));

        take_reload(d, &cfg);
        double t0 = now_mono();
        ad_result res;
        memset(&res, 0, sizeof res);
        ad_image_free(&roi); /* preprocess allocates a fresh ROI */
        int rc = ad_preprocess_roi(&cfg, &work, &roi, err, sizeof err);
        if (rc == 0) rc = ad_detector_inspect(d->det, &roi, &res, err, sizeof err);
        if (rc != 0) {
            atomic_fetch_add(&d->inspect_errors, 1);
            fmt_trunc(msg, sizeof msg, "frame %llu not inspected: %s", (unsigned long long)seq, err);
            latch_log(&latch, AD_LOG_ERR, msg);
            continue;
        }
        latch_clear(&latch, "inspection works again");
        double ms = (now_mono() - t0) * 1000.0;
        atomic_fetch_add(&d->inspected, 1);

        pthread_mutex_lock(&d->lock);
        d->last_score = res.score;
        d->last_threshold = res.threshold;
        acc_add(&d->acc, res.score, ms);
        pthread_mutex_unlock(&d->lock);
        if (!res.reject) continue;

        atomic_fetch_add(&d->rejects, 1);
        job *j = ad_xcalloc(1, sizeof *j);
        j->kind = JOB_REJECT;
        ad_reject *r = &j->row;
        ad_utc_timestamp(r->ts);
        fmt_trunc(r->line, sizeof r->line, "%s", cfg.line.name);
        fmt_trunc(r->camera, sizeof r->camera, "%s", camera_name(&cfg));
        r->frame_seq = seq;
        r->score = res.score;
        r->threshold = res.threshold;
        bool roi_set = cfg.camera.roi_width > 0 && cfg.camera.roi_height > 0;
        r->box_x = res.box_x + (roi_set ? cfg.camera.roi_x : 0);
        r->box_y = res.box_y + (roi_set ? cfg.camera.roi_y : 0);
        r->box_w = res.box_w;
        r->box_h = res.box_h;
        r->area = res.area;
        fmt_trunc(r->model_sha256, sizeof r->model_sha256, "%s", ad_detector_model_sha256(d->det));
        ad_log(AD_LOG_INFO, "reject: frame %llu score %.4f > threshold %.4f, box %d,%d %dx%d",
               (unsigned long long)seq, res.score, res.threshold, r->box_x, r->box_y,
               r->box_w, r->box_h);
        if (cfg.reject_log.save_images) {
            if (pending_images(d) >= AD_DAEMON_MAX_PENDING_IMAGES) {
                atomic_fetch_add(&d->images_skipped, 1);
                ad_log(AD_LOG_WARN, "frame %llu: %d rejects already wait for their images; "
                       "row kept, images skipped", (unsigned long long)seq,
                       AD_DAEMON_MAX_PENDING_IMAGES);
            } else {
                ad_image_copy(&j->frame, &roi);
                if (ad_detector_heatmap(d->det, &roi, &j->heat, err, sizeof err) != 0)
                    ad_log(AD_LOG_WARN, "frame %llu: no heat map: %s", (unsigned long long)seq, err);
            }
        }
        writer_push(d, j);
    }
    ad_image_free(&work);
    ad_image_free(&roi);
    atomic_store(&d->inspection_done, 1);
    return NULL;
}

/* ---- writer thread ---- */

/* The whole row, so it can be re-entered by hand; the long file paths come
 * last, where a log line cut at its length limit loses the least. */
static void log_lost_row(const ad_reject *r, const char *why)
{
    ad_log(AD_LOG_ERR,
           "reject NOT recorded (%s): ts=%s line=%s camera=%s frame=%llu score=%.6f "
           "threshold=%.6f box=%d,%d,%d,%d area=%ld model=%s image=%s heatmap=%s",
           why, r->ts, r->line, r->camera, (unsigned long long)r->frame_seq, r->score,
           r->threshold, r->box_x, r->box_y, r->box_w, r->box_h, r->area, r->model_sha256,
           r->image_path[0] ? r->image_path : "-", r->heatmap_path[0] ? r->heatmap_path : "-");
}

static void log_lost_minute(const ad_minute_counts *c, const char *why)
{
    ad_log(AD_LOG_ERR,
           "counters of %s NOT recorded (%s): line=%s seconds=%.1f captured=%ld inspected=%ld "
           "dropped=%ld rejects=%ld images_skipped=%ld",
           c->minute, why, c->line, c->seconds, c->captured, c->inspected, c->dropped, c->rejects,
           c->images_skipped);
}

static void writer_reopen_store(dstate *d, const ad_config *c)
{
    ad_store *ns = NULL;
    char err[AD_ERRLEN];
    ad_store_options opt;
    ad_store_options_from_config(&opt, c);
    if (ad_store_open(&ns, &opt, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "reload: cannot open the new reject log, keeping the old one: %s",
               err);
        return;
    }
    ad_store_close(d->store);
    d->store = ns;
    ad_log(AD_LOG_INFO, "reject log is now %s (images in %s)", c->reject_log.database,
           c->reject_log.image_dir);
}

static void *writer_main(void *arg)
{
    dstate *d = arg;
    block_signals_in_thread();
    pthread_setname_np(pthread_self(), "ad-writer");
    job *held = NULL, *held_tail = NULL; /* taken from the queue, not yet committed */
    err_latch db_latch = {0}, img_latch = {0};
    char err[AD_ERRLEN], msg[AD_ERRLEN + 128];
    double next_retention = now_mono();
    double stop_deadline = 0;
    bool told_stop = false;

    for (;;) {
        bool stopping;
        pthread_mutex_lock(&d->wlock);
        if (!d->whead && !held && !d->writer_stop && !d->store_changed)
            cond_wait_s(&d->wcond, &d->wlock, 1.0);
        if (d->whead) {
            if (held_tail)
                held_tail->next = d->whead;
            else
                held = d->whead;
            held_tail = d->wtail;
            d->whead = d->wtail = NULL;
        }
        stopping = d->writer_stop;
        bool reopen = d->store_changed;
        ad_config sc = d->store_cfg;
        d->store_changed = false;
        pthread_mutex_unlock(&d->wlock);
        if (reopen) writer_reopen_store(d, &sc);
        if (stopping && stop_deadline == 0) stop_deadline = now_mono() + WRITER_STOP_GRACE_S;

        /* Images first (they must exist before the row naming them commits). */
        for (job *j = held; j; j = j->next) {
            if (j->kind != JOB_REJECT || (!j->frame.px && !j->heat.px)) continue;
            j->row.frame = j->frame.px ? &j->frame : NULL;
            j->row.heatmap = j->heat.px ? &j->heat : NULL;
            if (ad_store_save_images(d->store, &j->row, err, sizeof err) != 0) {
                atomic_fetch_add(&d->images_skipped, 1);
                /* Each file has its own name; a full disk is still one condition. */
                fmt_trunc(msg, sizeof msg, "images of rejects are skipped: %s", err);
                latch_log_keyed(&img_latch, error_reason(err), AD_LOG_ERR, msg);
            } else if (j->row.image_path[0] || j->row.heatmap_path[0]) {
                latch_clear(&img_latch, "images of rejects are saved again");
            }
            j->row.frame = j->row.heatmap = NULL;
            ad_image_free(&j->frame);
            ad_image_free(&j->heat);
            pthread_mutex_lock(&d->wlock);
            d->pending_images--;
            pthread_mutex_unlock(&d->wlock);
        }

        /* Rows: counters one by one, rejects in batches; stop at the first
         * refusal and keep the rest held in order. */
        int status = 0;
        while (held && status == 0) {
            if (held->kind == JOB_MINUTE) {
                status = ad_store_add_minute(d->store, &held->minute, err, sizeof err);
                if (status == AD_STORE_ERROR) {
                    ad_log(AD_LOG_ERR, "counters of %s dropped: %s", held->minute.minute, err);
                    status = 0;
                }
                if (status == 0) {
                    job *j = held;
                    held = j->next;
                    job_free(j);
                }
                continue;
            }
            const ad_reject *rows[WRITER_BATCH];
            size_t n = 0;
            for (job *j = held; j && j->kind == JOB_REJECT && n < WRITER_BATCH; j = j->next)
                rows[n++] = &j->row;
            status = ad_store_insert_rejects(d->store, rows, n, err, sizeof err);
            if (status == AD_STORE_ERROR) {
                for (size_t i = 0; i < n; i++) log_lost_row(rows[i], err);
                atomic_fetch_add(&d->rows_lost, (long)n);
                status = 0;
            } else if (status == 0) {
                atomic_fetch_add(&d->rows_written, (long)n);
            }
            if (status == 0) {
                for (size_t i = 0; i < n; i++) {
                    job *j = held;
                    held = j->next;
                    job_free(j);
                }
            }
        }
        if (!held) held_tail = NULL;
        if (status == 0) {
            latch_clear(&db_latch, "reject log is writable again, held rows written");
        } else {
            long n = 0;
            for (job *j = held; j; j = j->next) n++;
            fmt_trunc(msg, sizeof msg, "%s; keeping the rows in memory and retrying", err);
            if (latch_log(&db_latch, AD_LOG_WARN, msg) == 0 && db_latch.repeats % 120 == 0)
                ad_log(AD_LOG_WARN, "reject log still refuses writes: %ld rows held in memory", n);
            if (stopping && !told_stop) {
                long r = 0;
                for (job *j = held; j; j = j->next) r += j->kind == JOB_REJECT;
                ad_log(AD_LOG_WARN, "%ld rejects not yet recorded at shutdown (%s); retrying for "
                       "up to %.0f s, then each is written to this log", r, err,
                       WRITER_STOP_GRACE_S);
                told_stop = true;
            }
        }

        if (status == 0 && now_mono() >= next_retention) {
            long deleted = 0;
            if (ad_store_retention(d->store, &deleted, err, sizeof err) != 0)
                ad_log(AD_LOG_WARN, "retention postponed: %s", err);
            else if (deleted > 0)
                ad_log(AD_LOG_INFO, "retention: deleted %ld old image files", deleted);
            next_retention = now_mono() + RETENTION_EVERY_S;
        }

        if (stopping) {
            pthread_mutex_lock(&d->wlock);
            bool empty = d->whead == NULL;
            pthread_mutex_unlock(&d->wlock);
            if (!held && empty) break;
            if (held && now_mono() > stop_deadline) {
                for (job *j = held; j; j = j->next) {
                    if (j->kind == JOB_MINUTE) {
                        log_lost_minute(&j->minute, "the reject log refused writes until shutdown");
                        continue;
                    }
                    log_lost_row(&j->row, "the reject log refused writes until shutdown");
                    atomic_fetch_add(&d->rows_lost, 1);
                }
                break;
            }
        }
        if (status != 0) usleep((useconds_t)(WRITER_RETRY_S * 1e6));
    }
    while (held) {
        job *j = held;
        held = j->next;
        job_free(j);
    }
    return NULL;
}

/* ---- main thread: counters, status, reload ---- */

static void minute_start(dstate *d, minute_acc *a)
{
    minute_now(a->minute);
    a->started = now_mono();
    a->n = a->n_lat = 0;
    a->captured0 = atomic_load(&d->captured);
    a->inspected0 = atomic_load(&d->inspected);
    a->dropped0 = atomic_load(&d->dropped);
    a->rejects0 = atomic_load(&d->rejects);
    a->skipped0 = atomic_load(&d->images_skipped);
}

/* Closes the current minute into a counters job and starts the next. */
static void minute_flush(dstate *d)
{
    job *j = ad_xcalloc(1, sizeof *j);
    j->kind = JOB_MINUTE;
    ad_minute_counts *c = &j->minute;
    pthread_mutex_lock(&d->lock);
    minute_acc *a = &d->acc;
    fmt_trunc(c->minute, sizeof c->minute, "%s", a->minute);
    fmt_trunc(c->line, sizeof c->line, "%s", d->cfg.line.name);
    c->seconds = now_mono() - a->started;
    c->captured = atomic_load(&d->captured) - a->captured0;
    c->inspected = atomic_load(&d->inspected) - a->inspected0;
    c->dropped = atomic_load(&d->dropped) - a->dropped0;
    c->rejects = atomic_load(&d->rejects) - a->rejects0;
    c->images_skipped = atomic_load(&d->images_skipped) - a->skipped0;
    if (a->n > 0 && a->n_lat > 0) {
        ad_sort_doubles(a->scores, a->n);
        ad_sort_doubles(a->lat_ms, a->n_lat);
        c->score_p50 = ad_quantile_sorted(a->scores, a->n, 0.50);
        c->score_p90 = ad_quantile_sorted(a->scores, a->n, 0.90);
        c->score_p99 = ad_quantile_sorted(a->scores, a->n, 0.99);
        c->score_max = a->scores[a->n - 1];
        c->latency_ms_p50 = ad_quantile_sorted(a->lat_ms, a->n_lat, 0.50);
        c->latency_ms_p99 = ad_quantile_sorted(a->lat_ms, a->n_lat, 0.99);
        c->latency_ms_max = a->lat_ms[a->n_lat - 1];
    }
    minute_start(d, a);
    pthread_mutex_unlock(&d->lock);
    ad_log(AD_LOG_INFO,
           "minute %s: captured %ld, inspected %ld, dropped %ld, rejects %ld, images skipped "
           "%ld, score p50 %.4f max %.4f, latency p50 %.1f ms p99 %.1f ms (%.0f s)",
           c->minute, c->captured, c->inspected, c->dropped, c->rejects, c->images_skipped,
           c->score_p50, c->score_max, c->latency_ms_p50, c->latency_ms_p99, c->seconds);
    writer_push(d, j);
}

typedef struct rate_hist {
    long inspected[RATE_WINDOW], rejects[RATE_WINDOW];
    double t[RATE_WINDOW];
    int n, head;
    double *lat; /* scratch for the latency quantiles */
} rate_hist;

static void send_status(dstate *d, rate_hist *h)
{
    double t = now_mono();
    long insp = atomic_load(&d->inspected), rej = atomic_load(&d->rejects);
    h->head = (h->head + 1) % RATE_WINDOW;
    h->inspected[h->head] = insp;
    h->rejects[h->head] = rej;
    h->t[h->head] = t;
    if (h->n < RATE_WINDOW) h->n++;
    int oldest = (h->head - h->n + 1 + RATE_WINDOW) % RATE_WINDOW;
    double dt = t - h->t[oldest];
    long di = insp - h->inspected[oldest], dr = rej - h->rejects[oldest];
    double fps = dt > 0 ? di / dt : 0;
    double rate = di > 0 ? 100.0 * (double)dr / (double)di : 0;

    char cam[AD_ERRLEN], msg[AD_ERRLEN + 512];
    double last, thr, lat50 = 0, lat99 = 0;
    pthread_mutex_lock(&d->lock);
    fmt_trunc(cam, sizeof cam, "%s", d->camera_status);
    last = d->last_score;
    thr = d->last_threshold;
    size_t nl = d->acc.n_lat;
    if (nl > 0) { /* latency of this minute so far, on a copy (the order matters to max) */
        memcpy(h->lat, d->acc.lat_ms, nl * sizeof(double));
        ad_sort_doubles(h->lat, nl);
        lat50 = ad_quantile_sorted(h->lat, nl, 0.50);
        lat99 = ad_quantile_sorted(h->lat, nl, 0.99);
    }
    pthread_mutex_unlock(&d->lock);
    if (cam[0])
        fmt_trunc(msg, sizeof msg, "STATUS=%s: %s", d->cfg.line.name, cam);
    else
        fmt_trunc(msg, sizeof msg,
                 "STATUS=%s: %.1f fps, rejects %.2f%% (last %.0f s), last score %.4f "
                 "(threshold %.4g), latency p50 %.1f ms p99 %.1f ms; captured %ld, "
                 "inspected %ld, dropped %ld, rejects %ld, images skipped %ld",
                 d->cfg.line.name, fps, rate, dt, last, thr, lat50, lat99,
                 atomic_load(&d->captured), insp, atomic_load(&d->dropped), rej,
                 atomic_load(&d->images_skipped));
    ad_sd_notify(msg);
}

static void reload(dstate *d)
{
    char err[AD_ERRLEN];
    ad_config nc;
    ad_log(AD_LOG_INFO, "SIGHUP: reloading %s", d->config_path);
    if (ad_config_load(d->config_path, &nc, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "reload failed, still running on the previous config: %s", err);
        return;
    }
    ad_detector *nd = NULL;
    if (ad_detector_open(&nd, &nc, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "reload failed, still running on the previous config and model: %s", err);
        return;
    }
    ad_detector_set_threshold(nd, nc.threshold);
    ad_detector *stale = NULL;
    pthread_mutex_lock(&d->lock);
    stale = d->new_pending ? d->new_det : NULL; /* a previous reload not yet picked up */
    d->new_det = nd;
    d->new_cfg = nc;
    d->new_pending = true;
    ad_capture_options now_opt, new_opt;
    ad_capture_options_from_config(&now_opt, &d->cam_cfg);
    ad_capture_options_from_config(&new_opt, &nc);
    if (!ad_capture_options_equal(&new_opt, &now_opt)) {
        d->cam_cfg = nc;
        d->camera_changed = true;
        ad_log(AD_LOG_INFO, "camera settings changed: the camera will be reopened");
    }
    pthread_mutex_unlock(&d->lock);
    if (stale) ad_detector_close(stale);
    ad_store_options now_store, new_store;
    ad_store_options_from_config(&now_store, &d->cfg);
    ad_store_options_from_config(&new_store, &nc);
    if (!ad_store_options_equal(&new_store, &now_store)) {
        pthread_mutex_lock(&d->wlock);
        d->store_cfg = nc;
        d->store_changed = true;
        pthread_cond_signal(&d->wcond);
        pthread_mutex_unlock(&d->wlock);
    }
    pthread_mutex_lock(&d->lock);
    d->cfg = nc;
    pthread_mutex_unlock(&d->lock);
    ad_log(AD_LOG_INFO, "reloaded %s: threshold %g, model %s (sha256 %.12s)", d->config_path,
           nc.threshold, nc.model.path, ad_detector_model_sha256(nd));
}

/* ---- program ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyd --config FILE [--check-config] [--no-drop]\n"
            "       anomalyd --version | --help\n"
            "\n"
            "Inspects camera frames with a diffusion model and logs rejects to SQLite.\n"
            "\n"
            "  -c, --config FILE   the line's YAML config (e.g. /etc/anomalyd/line3.yaml)\n"
            "  -t, --check-config  validate the config and load the model, print the\n"
            "                      effective config, exit 0 (ok) or 1/2 (like sshd -t)\n"
            "      --no-drop       replay source only: capture waits for inspection\n"
            "                      instead of dropping frames (re-inspecting recordings)\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this text\n"
            "\n"
            "Signals: SIGTERM/SIGINT finish the frame in hand, flush the log, exit 0;\n"
            "SIGHUP reloads config, threshold and model (the old ones stay on error).\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.\n");
}

static int check_config(const ad_config *cfg)
{
    char err[AD_ERRLEN];
    ad_detector *det = NULL;
    if (ad_detector_open(&det, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s: model check failed: %s\n", cfg->path, err);
        return 1;
    }
    ad_source *src = NULL;
    if (ad_source_init(&src, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s: camera settings: %s\n", cfg->path, err);
        ad_detector_close(det);
        return 1;
    }
    ad_source_destroy(src);
    ad_config_print(stdout, cfg);
    fprintf(stderr, "anomalyd: %s: config OK, model %s OK (sha256 %s)\n", cfg->path,
            cfg->model.path, ad_detector_model_sha256(det));
    ad_detector_close(det);
    return 0;
}

static int run(dstate *d)
{
    char err[AD_ERRLEN];
    int code = 0;
    ad_log(AD_LOG_INFO, "anomalyd %s starting: config %s, line %s, camera %s", ANOMALYD_VERSION,
           d->config_path, d->cfg.line.name, camera_name(&d->cfg));
    if (ad_detector_open(&d->det, &d->cfg, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "cannot load the model: %s", err);
        return 1;
    }
    ad_detector_set_threshold(d->det, d->cfg.threshold);
    d->last_threshold = d->cfg.threshold;
    ad_log(AD_LOG_INFO, "model %s loaded (sha256 %s), threshold %g", d->cfg.model.path,
           ad_detector_model_sha256(d->det), d->cfg.threshold);
    const ad_config *c = &d->cfg;
    ad_store_options store_opt;
    ad_store_options_from_config(&store_opt, c);
    if (ad_store_open(&d->store, &store_opt, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "cannot open the reject log: %s", err);
        ad_detector_close(d->det);
        return 1;
    }
    ad_log(AD_LOG_INFO, "reject log %s, images %s", c->reject_log.database,
           c->reject_log.save_images ? c->reject_log.image_dir : "off");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    d->acc.scores = ad_xmalloc(MINUTE_SAMPLES_MAX * sizeof(double));
    d->acc.lat_ms = ad_xmalloc(MINUTE_SAMPLES_MAX * sizeof(double));
    minute_start(d, &d->acc);
    d->cam_cfg = d->cfg;
    atomic_store(&d->inspect_heartbeat_ms, (long long)(now_mono() * 1000));

    pthread_t writer, inspector, capturer;
    pthread_create(&writer, NULL, writer_main, d);
    pthread_create(&inspector, NULL, inspection_main, d);
    pthread_create(&capturer, NULL, capture_main, d);

    double watchdog = ad_sd_watchdog_interval();
    double next_status = 0, next_watchdog = 0;
    bool ready = false;
    rate_hist hist;
    memset(&hist, 0, sizeof hist);
    hist.lat = ad_xmalloc(MINUTE_SAMPLES_MAX * sizeof(double));
    char minute[32];
    while (!atomic_load(&d->inspection_done)) {
        struct timespec wait = {0, 100 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&sigs, &info, &wait);
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
        double t = now_mono();
        if (!ready && atomic_load(&d->camera_up)) {
            ready = true;
            ad_sd_notify("READY=1");
            ad_log(AD_LOG_INFO, "ready: model and camera are up");
        }
        if (t >= next_status) {
            send_status(d, &hist);
            next_status = t + STATUS_EVERY_S;
        }
        if (watchdog > 0 && t >= next_watchdog) {
            /* Ping only while inspection is alive: stuck in one frame longer
             * than the watchdog allows means systemd should restart us. */
            double beat = (double)atomic_load(&d->inspect_heartbeat_ms) / 1000.0;
            if (t - beat < 2 * watchdog) ad_sd_notify("WATCHDOG=1");
            next_watchdog = t + watchdog;
        }
        minute_now(minute);
        if (strcmp(minute, d->acc.minute) != 0) minute_flush(d);
    }

    ad_sd_notify("STOPPING=1");
    free(hist.lat);
    atomic_store(&d->stop, 1);
    pthread_mutex_lock(&d->lock);
    pthread_cond_broadcast(&d->frame_ready);
    pthread_cond_broadcast(&d->slot_free);
    pthread_mutex_unlock(&d->lock);
    pthread_join(capturer, NULL);
    pthread_join(inspector, NULL);
    minute_flush(d);
    pthread_mutex_lock(&d->wlock);
    d->writer_stop = true;
    pthread_cond_signal(&d->wcond);
    pthread_mutex_unlock(&d->wlock);
    pthread_join(writer, NULL);

    long lost = atomic_load(&d->rows_lost);
    ad_log(lost ? AD_LOG_ERR : AD_LOG_INFO,
           "stopped: captured %ld, inspected %ld, dropped %ld, rejects %ld (%ld rows written, "
           "%ld not recorded), images skipped %ld",
           atomic_load(&d->captured), atomic_load(&d->inspected), atomic_load(&d->dropped),
           atomic_load(&d->rejects), atomic_load(&d->rows_written), lost,
           atomic_load(&d->images_skipped));
    if (lost) code = 1;

    ad_store_close(d->store);
    ad_detector_close(d->det);
    if (d->new_det) ad_detector_close(d->new_det);
    ad_image_free(&d->slot);
    free(d->acc.scores);
    free(d->acc.lat_ms);
    return code;
}

int ad_daemon_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"no-drop", no_argument, NULL, 'D'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool check = false, no_drop = false;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":c:tVh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 't': check = true; break;
        case 'D': no_drop = true; break;
        case 'V': printf("anomalyd %s\n", ANOMALYD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "anomalyd: option %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "anomalyd: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "anomalyd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!config) {
        fprintf(stderr, "anomalyd: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (getenv("ANOMALYD_DEBUG")) ad_log_set_level(AD_LOG_DEBUG);

    dstate *d = ad_xcalloc(1, sizeof *d);
    char err[AD_ERRLEN];
    int code;
    if (ad_config_load(config, &d->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s\n", err);
        code = 2;
        goto out;
    }
    if (no_drop && d->cfg.camera.source != AD_SOURCE_REPLAY) {
        fprintf(stderr, "anomalyd: --no-drop works only with camera.source: replay\n");
        code = 2;
        goto out;
    }
    if (check) {
        code = check_config(&d->cfg);
        goto out;
    }
    fmt_trunc(d->config_path, sizeof d->config_path, "%s", config);
    d->no_drop = no_drop;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->wlock, NULL);
    pthread_cond_init(&d->frame_ready, NULL);
    pthread_cond_init(&d->slot_free, NULL);
    pthread_cond_init(&d->wcond, NULL);
    code = run(d);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->wlock);
    pthread_cond_destroy(&d->frame_ready);
    pthread_cond_destroy(&d->slot_free);
    pthread_cond_destroy(&d->wcond);
out:
    free(d);
    return code;
}

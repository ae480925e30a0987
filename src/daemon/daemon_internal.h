/* Inside anomalyd: each thread's own state, and the small typed interfaces
 * the threads hand things to each other through.
 *
 *   capture    --frame----------------> ad_mailbox ---------> inspection
 *   capture    --part at rest---------> ad_trigger_queue ---> inspection  (trigger.mode part:
 *                                       ad_part_stage on every frame; Modbus and MQTT links
 *                                       fire into the same queue)
 *   inspection --verdict of each part-> ad_line_io (links: Modbus, MQTT, command)
 *   inspection --reject rows----------> ad_writer_queue ----> writer --recorded--> ad_line_io
 *   main       --minute counters------> ad_writer_queue ----> writer
 *   main       --status, minute-------> ad_line_io
 *   inspection --score, latency-------> ad_inspect_stats ---> main
 *   main, on SIGHUP:
 *              --camera settings------> ad_camera_slot -----> capture
 *              --detector and config--> ad_reload_slot -----> inspection
 *              --log options----------> ad_writer_queue ----> writer
 *              --part trigger---------> ad_part_stage ------> capture
 *              --links----------------> ad_line_io_reload
 *
 * Each interface owns its lock; nothing else is shared. A thread's counters
 * are atomics in its own struct, written by that thread alone and read by
 * the main thread (ad_daemon_read_counts). Files: capture_thread.c,
 * inspect_thread.c, writer_thread.c, main_thread.c (signals, reload, status,
 * minute counters), handoff.c (mailbox, slots, stats), writer_queue.c,
 * daemon_util.c, daemon.c (the program: options, start and stop). */
#ifndef ANOMALYD_DAEMON_INTERNAL_H
#define ANOMALYD_DAEMON_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/store.h"
#include "anomalyd/util.h"
#include "line/line.h"

#define AD_MINUTE_SAMPLES_MAX 65536 /* scores/latencies kept per minute for quantiles */
#define AD_RATE_WINDOW 60           /* seconds of history for the status rates */

/* ---- helpers every thread uses (daemon_util.c) ---- */

/* snprintf that truncates on purpose (messages, names): no warning noise. */
void ad_fmt_trunc(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A worker thread's first call: blocks every signal (the main thread takes
 * them with sigtimedwait) and sets the thread's name. */
void ad_thread_enter(const char *name);
/* Condition wait with a relative timeout in seconds (CLOCK_REALTIME cond). */
void ad_cond_wait_s(pthread_cond_t *c, pthread_mutex_t *m, double s);
/* The camera as logs and rows name it: the device, or the replay folder. */
const char *ad_daemon_camera_name(const ad_config *cfg);
/* camera.controls against the camera itself (a file can name a control the
 * camera lacks, or a value out of its range): 2 when it does, each problem
 * told at its FILE:LINE:COL; 0 when all fit (*checked set), or when the
 * camera cannot be asked now: a warning, and the capture thread reports
 * them when the camera opens. to_stderr: --check-config's output, else the
 * log. Start, --check-config and a reload that changes the camera use it. */
int ad_daemon_check_controls(const ad_config *cfg, bool to_stderr, bool *checked);

/* "Log each distinct error once": a message is logged unless its key is
 * the same as the last one's; the repeats are counted and told when the
 * condition clears. */
typedef struct ad_latch {
    char last[AD_ERRLEN + 128]; /* the message logged */
    char key[AD_ERRLEN + 128];  /* what makes a message "the same" */
    long repeats;
} ad_latch;
/* Return 1 if logged, 0 if a repeat. */
int ad_latch_log_keyed(ad_latch *l, const char *key, enum ad_log_level level, const char *msg);
int ad_latch_log(ad_latch *l, enum ad_log_level level, const char *msg);
/* Logs "recovered_what (after N repeats of: last)" if a message is latched. */
void ad_latch_clear(ad_latch *l, const char *recovered_what);
/* The reason at the end of "path: what: reason", so errors that differ only
 * in the file they name count as one. */
const char *ad_error_reason(const char *err);

/* ---- newest-frame mailbox: capture -> inspection (handoff.c) ----
 * One slot. A put swaps buffers with the slot (no copy); a frame still in
 * the slot is replaced, a drop, unless the mailbox waits for the taker
 * (--no-drop on a replay). */
typedef struct ad_mailbox {
    pthread_mutex_t lock;
    pthread_cond_t filled, emptied;
    ad_image slot;
    uint64_t seq;
    double t;                /* ad_now_sec() when the slot's frame was captured */
    bool full;
    bool wait_for_taker; /* put waits while the slot is full */
    bool ended;          /* the source has no more frames */
    bool closed;         /* stopping: takes end at once */
} ad_mailbox;

enum ad_mailbox_take { AD_MAILBOX_FRAME, AD_MAILBOX_EMPTY, AD_MAILBOX_DONE };

void ad_mailbox_init(ad_mailbox *mb, bool wait_for_taker);
void ad_mailbox_destroy(ad_mailbox *mb);
/* Swaps *frame (the newest, captured at ad_now_sec() t) into the slot,
 * *frame gets the slot's old buffer. Returns true when that replaced a
 * frame never taken. */
bool ad_mailbox_put(ad_mailbox *mb, ad_image *frame, uint64_t seq, double t);
/* The source ended: takes return DONE once the slot is empty. */
void ad_mailbox_end(ad_mailbox *mb);
/* Stop: takes return DONE, a waiting put returns. */
void ad_mailbox_close(ad_mailbox *mb);
/* Swaps the slot's frame into *work (its capture time into *t): FRAME;
 * nothing within timeout_s: EMPTY; closed, or ended and empty: DONE. */
enum ad_mailbox_take ad_mailbox_take(ad_mailbox *mb, ad_image *work, uint64_t *seq, double *t,
                                     double timeout_s);

/* ---- reload of the camera settings: main -> capture (handoff.c) ---- */
typedef struct ad_camera_settings {
    ad_capture_options opt;
    char name[AD_PATH_MAX]; /* ad_daemon_camera_name */
} ad_camera_settings;

typedef struct ad_camera_slot {
    pthread_mutex_t lock;
    ad_camera_settings now;
    bool changed;           /* set by a reload, cleared by the capture thread's take */
} ad_camera_slot;

void ad_camera_slot_init(ad_camera_slot *s, const ad_config *cfg);
void ad_camera_slot_destroy(ad_camera_slot *s);
/* Main: keeps cfg's camera settings if they differ from the current ones
 * and returns true (the capture thread will reopen the camera). */
bool ad_camera_slot_offer(ad_camera_slot *s, const ad_config *cfg);
/* Capture: the settings to open the camera with; clears `changed`. */
void ad_camera_slot_take(ad_camera_slot *s, ad_camera_settings *out);
bool ad_camera_slot_changed(ad_camera_slot *s);

/* ---- reload of detector and config: main -> inspection (handoff.c) ----
 * The main thread opens the new detector (slow, off the inspection thread)
 * and offers it; the inspection thread takes it between frames. */
typedef struct ad_reload_slot {
    pthread_mutex_t lock;
    ad_detector *det; /* owned while pending */
    ad_config cfg;
    bool pending;
} ad_reload_slot;

void ad_reload_slot_init(ad_reload_slot *s);
void ad_reload_slot_destroy(ad_reload_slot *s); /* closes a detector never taken */
/* Takes ownership of det; closes an earlier offer not yet taken. */
void ad_reload_slot_offer(ad_reload_slot *s, ad_detector *det, const ad_config *cfg);
/* True and the new detector (now the caller's) and config, if one waits. */
bool ad_reload_slot_take(ad_reload_slot *s, ad_detector **det, ad_config *cfg);

/* ---- the part trigger on every frame: capture -> trigger queue (part_stage.c) ----
 * With trigger.mode part the capture thread shows the stage every frame it
 * grabs (a small gray grid of the ROI: cheap), so no frame goes unseen while
 * an inspection runs; a part's first frame at rest fires a trigger stamped
 * with that frame's capture time, which the inspection thread serves with
 * that frame. The main thread opens a new detector on start and reload. */
typedef struct ad_part_stage {
    pthread_mutex_t lock;
    ad_part_detector *det;      /* NULL unless trigger.mode is part */
    ad_config *cfg;             /* the ROI and trigger.* det was opened with */
    long long ref_mtime_ns, ref_size; /* the reference file det read */
    ad_trigger_queue *triggers; /* out; the daemon's */
    ad_part_counts before;      /* counts of detectors replaced by reloads */
    /* the capture thread's own */
    ad_image roi;
    ad_latch latch;
} ad_part_stage;

void ad_part_stage_init(ad_part_stage *s, ad_trigger_queue *triggers);
void ad_part_stage_destroy(ad_part_stage *s);
/* Main: for trigger.mode part, opens a detector from the reference when
 * there is none, when the ROI or trigger.* changed or the reference file
 * did; other modes close it. -1 with err (the reference cannot be read):
 * the stage keeps what it had. */
int ad_part_stage_offer(ad_part_stage *s, const ad_config *cfg, char *err, size_t errlen);
/* Capture: one frame, captured at ad_now_sec() t. */
void ad_part_stage_frame(ad_part_stage *s, const ad_image *frame, double t);
/* Main: parts seen since the start. */
void ad_part_stage_counts(ad_part_stage *s, ad_part_counts *c);

/* ---- inspection results: inspection -> main (handoff.c) ----
 * The last score for the status line, and this minute's scores and
 * latencies for the quantiles of the status line and the counters row. */
typedef struct ad_inspect_stats {
    pthread_mutex_t lock;
    double last_score, last_threshold;
    double *scores, *lat_ms; /* AD_MINUTE_SAMPLES_MAX each */
    size_t n;
} ad_inspect_stats;

void ad_inspect_stats_init(ad_inspect_stats *s, double threshold);
void ad_inspect_stats_destroy(ad_inspect_stats *s);
void ad_inspect_stats_add(ad_inspect_stats *s, double score, double threshold, double ms);
/* Last score and threshold; latency p50/p99 of the minute so far (0 when
 * none), sorted in scratch (AD_MINUTE_SAMPLES_MAX doubles). */
void ad_inspect_stats_peek(ad_inspect_stats *s, double *last, double *threshold,
                           double *lat_p50, double *lat_p99, double *scratch);
/* The minute's score and latency quantiles into c; starts the next minute. */
void ad_inspect_stats_roll(ad_inspect_stats *s, ad_minute_counts *c);

/* ---- writer queue: inspection and main -> writer (writer_queue.c) ---- */
enum ad_job_kind { AD_JOB_REJECT, AD_JOB_MINUTE };

typedef struct ad_job {
    struct ad_job *next;
    enum ad_job_kind kind;
    ad_reject row;
    ad_verdict verdict;   /* the reject's, told to the links once its images are done */
    bool told;            /* ad_line_io_recorded called */
    ad_image frame, heat; /* owned; px == NULL when absent */
    ad_minute_counts minute;
} ad_job;

void ad_job_free(ad_job *j);

typedef struct ad_job_list {
    ad_job *head, *tail;
} ad_job_list;

typedef struct ad_writer_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ad_job_list jobs;
    int pending_images;     /* jobs queued or held whose images are not written yet */
    bool stop;
    bool store_changed;
    ad_store_options store; /* the log to reopen when store_changed */
} ad_writer_queue;

/* What the writer is told besides jobs. */
typedef struct ad_writer_orders {
    bool stop;
    bool reopen;
    ad_store_options store; /* when reopen */
} ad_writer_orders;

void ad_writer_queue_init(ad_writer_queue *q);
void ad_writer_queue_destroy(ad_writer_queue *q); /* frees jobs still queued */
void ad_writer_queue_push(ad_writer_queue *q, ad_job *j);
/* Rejects whose images wait to be written (inspection skips the images of
 * a new reject above AD_DAEMON_MAX_PENDING_IMAGES). */
int ad_writer_queue_pending_images(ad_writer_queue *q);
void ad_writer_queue_reopen_store(ad_writer_queue *q, const ad_store_options *opt);
/* After this the writer finishes what is queued and exits. */
void ad_writer_queue_stop(ad_writer_queue *q);
/* Writer: waits up to timeout_s when there is nothing to do (held empty,
 * nothing queued, no orders), then moves every queued job to the end of
 * held and fills orders (a reopen is told once). */
void ad_writer_queue_take(ad_writer_queue *q, ad_job_list *held, double timeout_s,
                          ad_writer_orders *orders);
/* Writer: one job's images are written or given up. */
void ad_writer_queue_images_done(ad_writer_queue *q);
bool ad_writer_queue_empty(ad_writer_queue *q);

/* ---- the threads ---- */

/* Capture (capture_thread.c): the outer loop opens the camera and reopens
 * it with backoff; the inner loop grabs frames into the mailbox. */
typedef struct ad_capture_thread {
    ad_mailbox *mailbox;        /* out: frames */
    ad_camera_slot *camera;     /* in: settings */
    ad_part_stage *parts;       /* out: part triggers (every frame is shown to it) */
    atomic_int stop;            /* in: set by the main thread */
    atomic_int up;              /* out: the camera streams */
    atomic_long captured, dropped;
    pthread_mutex_t status_lock;
    char status[AD_ERRLEN];     /* "waiting for camera ..." or "" */
    pthread_t tid;
} ad_capture_thread;

void ad_capture_thread_init(ad_capture_thread *t, ad_mailbox *mb, ad_camera_slot *camera,
                            ad_part_stage *parts);
void ad_capture_thread_destroy(ad_capture_thread *t);
void *ad_capture_thread_main(void *arg);
/* Main: the camera status line part ("" while the camera streams). */
void ad_capture_thread_status(ad_capture_thread *t, char *out, size_t n);

/* Inspection (inspect_thread.c): takes the newest frame; inspects every
 * one (trigger.mode continuous) or, per trigger, the first frame captured
 * after it (and trigger.delay_ms for modbus, mqtt); each inspection is a
 * part with a number and one verdict, told to the links at once; queues a
 * row (and images) per reject. */
typedef struct ad_inspect_thread {
    ad_mailbox *mailbox;        /* in: frames */
    ad_reload_slot *reload;     /* in: new detector and config */
    ad_trigger_queue *triggers; /* in: part, Modbus and MQTT triggers */
    ad_writer_queue *writer;    /* out: reject rows */
    ad_inspect_stats *stats;    /* out: scores and latencies */
    ad_line_io *io;             /* out: verdicts */
    ad_config cfg;              /* its own copy; set before start */
    ad_detector *det;           /* owned; set before start */
    ad_trigger pending;         /* a trigger waiting for its frame ... */
    bool has_pending;           /* ... when set */
    atomic_long inspected, rejects, errors, images_skipped;
    atomic_long passed_over;    /* frames not inspected: no trigger waited for them */
    atomic_long unserved;       /* triggers that never got a frame (the source ended, the mode changed) */
    atomic_llong heartbeat_ms;  /* last sign of life, for the watchdog */
    atomic_int done;            /* the source ended and every frame is inspected */
    pthread_t tid;
} ad_inspect_thread;

void ad_inspect_thread_init(ad_inspect_thread *t, ad_mailbox *mb, ad_reload_slot *reload,
                            ad_trigger_queue *triggers, ad_writer_queue *writer,
                            ad_inspect_stats *stats, ad_line_io *io, const ad_config *cfg,
                            ad_detector *det);
void ad_inspect_thread_destroy(ad_inspect_thread *t); /* closes the detector */
void *ad_inspect_thread_main(void *arg);

/* Writer (writer_thread.c): images, then rows in batches; holds rows while
 * the database refuses them, retention every few minutes. */
typedef struct ad_writer_thread {
    ad_writer_queue *queue;     /* in: jobs and orders */
    ad_store *store;            /* owned; opened before start */
    ad_line_io *io;             /* out: each reject once its images are written or skipped */
    atomic_long rows_written, rows_lost, images_skipped;
    pthread_t tid;
} ad_writer_thread;

void ad_writer_thread_init(ad_writer_thread *t, ad_writer_queue *q, ad_store *store, ad_line_io *io);
void ad_writer_thread_destroy(ad_writer_thread *t); /* closes the store */
void *ad_writer_thread_main(void *arg);

/* Main (main_thread.c): signals, reload, READY/STATUS/WATCHDOG, minute
 * counters. Its own state: */
typedef struct ad_rate_hist {
    long inspected[AD_RATE_WINDOW], rejects[AD_RATE_WINDOW];
    double t[AD_RATE_WINDOW];
    int n, head;
} ad_rate_hist;

typedef struct ad_counts {
    long captured, inspected, dropped, rejects, images_skipped, rows_written, rows_lost;
    long unsettled;             /* parts that passed without coming to rest (part trigger) */
} ad_counts;

typedef struct ad_main_thread {
    char config_path[AD_PATH_MAX];
    ad_config cfg;              /* the current config */
    char minute[32];            /* 'YYYY-MM-DD HH:MM' being counted */
    double minute_started;      /* monotonic start of that minute */
    ad_counts minute_base;      /* counters when it started */
    ad_rate_hist rates;
    double *lat_scratch;        /* AD_MINUTE_SAMPLES_MAX doubles */
} ad_main_thread;

/* The whole daemon: the interfaces and the threads that use them. */
typedef struct ad_daemon {
    ad_trigger_queue *triggers; /* owned; trigger.queue long */
    ad_part_stage parts;
    ad_line_io *io;             /* owned; the configured links */
    ad_mailbox mailbox;
    ad_camera_slot camera;
    ad_reload_slot reload;
    ad_inspect_stats stats;
    ad_writer_queue queue;
    ad_capture_thread capture;
    ad_inspect_thread inspect;
    ad_writer_thread writer;
    ad_main_thread main;
} ad_daemon;

void ad_daemon_read_counts(ad_daemon *d, ad_counts *c);
/* Runs the main thread's loop until SIGTERM/SIGINT or the end of the
 * inspection (sigs: the signals it takes, blocked everywhere). */
void ad_main_thread_run(ad_daemon *d, const sigset_t *sigs);
/* Starts counting a minute / closes it into a counters job for the writer. */
void ad_main_thread_minute_start(ad_daemon *d);
void ad_main_thread_minute_flush(ad_daemon *d);

#endif

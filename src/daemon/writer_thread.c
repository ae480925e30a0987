/* The writer thread: SQLite and PNG off the hot path. Each turn takes what
 * is queued, writes the images first (they must exist before the row that
 * names them commits), then the rows: counters one by one, rejects in
 * batches. While the database refuses, rows are held in memory, in order,
 * and retried; images may be skipped and counted, rows never. At shutdown
 * it retries for WRITER_STOP_GRACE_S, then writes each row still held to
 * the log. See daemon_internal.h. */
#include <string.h>
#include <unistd.h>

#include "daemon_internal.h"

#define WRITER_BATCH 256          /* rows per transaction */
#define WRITER_RETRY_S 0.5        /* wait between attempts while the database refuses */
#define WRITER_STOP_GRACE_S 20.0  /* at shutdown, keep retrying this long */
#define RETENTION_EVERY_S 600.0

void ad_writer_thread_init(ad_writer_thread *t, ad_writer_queue *q, ad_store *store, ad_line_io *io)
{
    memset(t, 0, sizeof *t);
    t->queue = q;
    t->store = store;
    t->io = io;
}

void ad_writer_thread_destroy(ad_writer_thread *t)
{
    ad_store_close(t->store);
    t->store = NULL;
}

/* The writer's own state across turns. */
typedef struct writer_turns {
    ad_job_list held;           /* taken from the queue, not yet committed */
    ad_latch db_latch, img_latch;
    double next_retention;
    double stop_deadline;       /* 0 until told to stop */
    bool told_stop;
} writer_turns;

/* The whole row, so it can be re-entered by hand; the long file paths come
 * last, where a log line cut at its length limit loses the least. */
static void log_lost_row(const ad_reject *r, const char *why)
{
    ad_log(AD_LOG_ERR,
           "reject NOT recorded (%s): ts=%s line=%s camera=%s part=%ld part_id=%s trigger=%s frame=%llu "
           "score=%.6f threshold=%.6f box=%d,%d,%d,%d area=%ld model=%s image=%s heatmap=%s",
           why, r->ts, r->line, r->camera, r->part, r->part_id[0] ? r->part_id : "-",
           r->trigger[0] ? r->trigger : "-", (unsigned long long)r->frame_seq, r->score,
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

static void reopen_store(ad_writer_thread *t, const ad_store_options *opt)
{
    ad_store *ns = NULL;
    char err[AD_ERRLEN];
    if (ad_store_open(&ns, opt, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "reload: cannot open the new reject log, keeping the old one: %s",
               err);
        return;
    }
    ad_store_close(t->store);
    t->store = ns;
    ad_log(AD_LOG_INFO, "reject log is now %s (images in %s)", opt->database, opt->image_dir);
}

static ad_job *pop(ad_job_list *l)
{
    ad_job *j = l->head;
    l->head = j->next;
    if (!l->head) l->tail = NULL;
    return j;
}

/* The links hear of a reject once, with the paths its images got (empty
 * when skipped), whether or not the database takes the row yet: the row is
 * held and retried, the line should not wait for it. */
static void tell_recorded(ad_writer_thread *t, ad_job *j)
{
    ad_fmt_trunc(j->verdict.image_path, sizeof j->verdict.image_path, "%s", j->row.image_path);
    ad_fmt_trunc(j->verdict.heatmap_path, sizeof j->verdict.heatmap_path, "%s", j->row.heatmap_path);
    if (t->io) ad_line_io_recorded(t->io, &j->verdict);
    j->told = true;
}

/* Images of the held rejects that carry them; a failure skips the images,
 * never the row. Then each reject is told to the links. */
static void write_images(ad_writer_thread *t, writer_turns *w)
{
    char err[AD_ERRLEN], msg[AD_ERRLEN + 128];
    for (ad_job *j = w->held.head; j; j = j->next) {
        if (j->kind == AD_JOB_REJECT && !j->told && !j->frame.px && !j->heat.px) tell_recorded(t, j);
        if (j->kind != AD_JOB_REJECT || (!j->frame.px && !j->heat.px)) continue;
        j->row.frame = j->frame.px ? &j->frame : NULL;
        j->row.heatmap = j->heat.px ? &j->heat : NULL;
        if (ad_store_save_images(t->store, &j->row, err, sizeof err) != 0) {
            atomic_fetch_add(&t->images_skipped, 1);
            /* Each file has its own name; a full disk is still one condition. */
            ad_fmt_trunc(msg, sizeof msg, "images of rejects are skipped: %s", err);
            ad_latch_log_keyed(&w->img_latch, ad_error_reason(err), AD_LOG_ERR, msg);
        } else if (j->row.image_path[0] || j->row.heatmap_path[0]) {
            ad_latch_clear(&w->img_latch, "images of rejects are saved again");
        }
        j->row.frame = j->row.heatmap = NULL;
        ad_image_free(&j->frame);
        ad_image_free(&j->heat);
        ad_writer_queue_images_done(t->queue);
        tell_recorded(t, j);
    }
}

/* Rows: counters one by one, rejects in batches; stops at the first
 * refusal and keeps the rest held in order. Returns 0 when every held row
 * is done (written, or lost and logged), else AD_STORE_RETRY with err. */
static int write_rows(ad_writer_thread *t, writer_turns *w, char *err, size_t errlen)
{
    int status = 0;
    while (w->held.head && status == 0) {
        if (w->held.head->kind == AD_JOB_MINUTE) {
            const ad_minute_counts *c = &w->held.head->minute;
            status = ad_store_add_minute(t->store, c, err, errlen);
            if (status == AD_STORE_ERROR) {
                ad_log(AD_LOG_ERR, "counters of %s dropped: %s", c->minute, err);
                status = 0;
            }
            if (status == 0) ad_job_free(pop(&w->held));
            continue;
        }
        const ad_reject *rows[WRITER_BATCH];
        size_t n = 0;
        for (ad_job *j = w->held.head; j && j->kind == AD_JOB_REJECT && n < WRITER_BATCH;
             j = j->next)
            rows[n++] = &j->row;
        status = ad_store_insert_rejects(t->store, rows, n, err, errlen);
        if (status == AD_STORE_ERROR) {
            for (size_t i = 0; i < n; i++) log_lost_row(rows[i], err);
            atomic_fetch_add(&t->rows_lost, (long)n);
            status = 0;
        } else if (status == 0) {
            atomic_fetch_add(&t->rows_written, (long)n);
        }
        if (status == 0)
            for (size_t i = 0; i < n; i++) ad_job_free(pop(&w->held));
    }
    return status;
}

/* The database refused: say so once (and every 120 repeats how much is
 * held), and at shutdown how many rejects wait. */
static void tell_refusal(writer_turns *w, bool stopping, const char *err)
{
    char msg[AD_ERRLEN + 128];
    long n = 0;
    for (ad_job *j = w->held.head; j; j = j->next) n++;
    ad_fmt_trunc(msg, sizeof msg, "%s; keeping the rows in memory and retrying", err);
    if (ad_latch_log(&w->db_latch, AD_LOG_WARN, msg) == 0 && w->db_latch.repeats % 120 == 0)
        ad_log(AD_LOG_WARN, "reject log still refuses writes: %ld rows held in memory", n);
    if (stopping && !w->told_stop) {
        long r = 0;
        for (ad_job *j = w->held.head; j; j = j->next) r += j->kind == AD_JOB_REJECT;
        ad_log(AD_LOG_WARN, "%ld rejects not yet recorded at shutdown (%s); retrying for "
               "up to %.0f s, then each is written to this log", r, err, WRITER_STOP_GRACE_S);
        w->told_stop = true;
    }
}

static void retention(ad_writer_thread *t, writer_turns *w)
{
    char err[AD_ERRLEN];
    long deleted = 0;
    if (ad_store_retention(t->store, &deleted, err, sizeof err) != 0)
        ad_log(AD_LOG_WARN, "retention postponed: %s", err);
    else if (deleted > 0)
        ad_log(AD_LOG_INFO, "retention: deleted %ld old image files", deleted);
    w->next_retention = ad_now_sec() + RETENTION_EVERY_S;
}

/* Stopping: true when all is written, or when the grace time is over (the
 * rows still held are then written to the log and counted as lost). */
static bool finished(ad_writer_thread *t, writer_turns *w)
{
    if (!w->held.head) return ad_writer_queue_empty(t->queue);
    if (ad_now_sec() <= w->stop_deadline) return false;
    for (ad_job *j = w->held.head; j; j = j->next) {
        if (j->kind == AD_JOB_MINUTE) {
            log_lost_minute(&j->minute, "the reject log refused writes until shutdown");
            continue;
        }
        log_lost_row(&j->row, "the reject log refused writes until shutdown");
        atomic_fetch_add(&t->rows_lost, 1);
    }
    return true;
}

void *ad_writer_thread_main(void *arg)
{
    ad_writer_thread *t = arg;
    ad_thread_enter("ad-writer");
    writer_turns w;
    memset(&w, 0, sizeof w);
    w.next_retention = ad_now_sec();
    char err[AD_ERRLEN];

    for (;;) {
        ad_writer_orders orders;
        ad_writer_queue_take(t->queue, &w.held, 1.0, &orders);
        if (orders.reopen) reopen_store(t, &orders.store);
        if (orders.stop && w.stop_deadline == 0)
            w.stop_deadline = ad_now_sec() + WRITER_STOP_GRACE_S;

        write_images(t, &w);
        int status = write_rows(t, &w, err, sizeof err);
        if (status == 0)
            ad_latch_clear(&w.db_latch, "reject log is writable again, held rows written");
        else
            tell_refusal(&w, orders.stop, err);
        if (status == 0 && ad_now_sec() >= w.next_retention) retention(t, &w);
        if (orders.stop && finished(t, &w)) break;
        if (status != 0) usleep((useconds_t)(WRITER_RETRY_S * 1e6));
    }
    while (w.held.head) ad_job_free(pop(&w.held));
    return NULL;
}

/* The inspection thread: takes the newest frame when free; inspects every
 * one (trigger.mode continuous) or, for each trigger, the first frame
 * captured after it; gives each inspection a part number and one verdict,
 * told to the links at once; reports score and latency, and queues a row
 * (with the ROI and heat map, unless too many images already wait) for
 * every reject. A reload's detector and config are taken between frames.
 * See daemon_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "anomalyd/daemon.h"
#include "daemon_internal.h"

static const char *const trigger_names[] = {
    [AD_TRIGGER_CONTINUOUS] = "continuous",
    [AD_TRIGGER_PART] = "part",
    [AD_TRIGGER_MODBUS] = "modbus",
    [AD_TRIGGER_MQTT] = "mqtt",
};

void ad_inspect_thread_init(ad_inspect_thread *t, ad_mailbox *mb, ad_reload_slot *reload,
                            ad_trigger_queue *triggers, ad_writer_queue *writer,
                            ad_inspect_stats *stats, ad_line_io *io, const ad_config *cfg,
                            ad_detector *det)
{
    memset(t, 0, sizeof *t);
    t->mailbox = mb;
    t->reload = reload;
    t->triggers = triggers;
    t->writer = writer;
    t->stats = stats;
    t->io = io;
    t->cfg = *cfg;
    t->det = det;
    atomic_store(&t->heartbeat_ms, (long long)(ad_now_sec() * 1000));
}

void ad_inspect_thread_destroy(ad_inspect_thread *t)
{
    ad_detector_close(t->det);
    t->det = NULL;
}

/* Triggers that will never get their frame: counted and said once. */
static void drop_triggers(ad_inspect_thread *t, const char *why)
{
    long n = ad_trigger_flush(t->triggers) + (t->has_pending ? 1 : 0);
    t->has_pending = false;
    if (n == 0) return;
    atomic_fetch_add(&t->unserved, n);
    ad_log(AD_LOG_WARN, "%ld triggers were not served (%s): no part inspected for them", n, why);
}

static void take_reload(ad_inspect_thread *t)
{
    ad_detector *nd = NULL;
    enum ad_trigger_mode was = t->cfg.trigger.mode;
    if (!ad_reload_slot_take(t->reload, &nd, &t->cfg)) return;
    ad_detector_close(t->det);
    t->det = nd;
    ad_log(AD_LOG_INFO, "inspection now uses the reloaded config: threshold %g, model %s, trigger %s",
           t->cfg.threshold, ad_detector_model_sha256(t->det), trigger_names[t->cfg.trigger.mode]);
    if (t->cfg.trigger.mode != was) drop_triggers(t, "trigger.mode changed");
}

/* Whether the frame captured at t_frame is one to inspect; fills *trig
 * with what asked for it. continuous: every frame. Otherwise the oldest
 * trigger waiting is served by the first frame captured at or after it
 * (plus trigger.delay_ms for Modbus and MQTT triggers). */
static bool wanted(ad_inspect_thread *t, double t_frame, ad_trigger *trig)
{
    enum ad_trigger_mode mode = t->cfg.trigger.mode;
    if (mode == AD_TRIGGER_CONTINUOUS) {
        trig->part_id[0] = '\0';
        trig->t_fired = t_frame;
        return true;
    }
    if (!t->has_pending) t->has_pending = ad_trigger_take(t->triggers, &t->pending, 0);
    if (!t->has_pending) return false;
    double delay = mode == AD_TRIGGER_PART ? 0.0 : t->cfg.trigger.delay_ms / 1000.0;
    if (t_frame < t->pending.t_fired + delay) return false;
    *trig = t->pending;
    t->has_pending = false;
    return true;
}

/* The verdict of part `part`, inspected on frame seq at UTC ts. */
static void make_verdict(ad_inspect_thread *t, ad_verdict *v, long part, const ad_trigger *trig,
                         const char *ts, const ad_result *res)
{
    const ad_config *cfg = &t->cfg;
    memset(v, 0, sizeof *v);
    v->part = part;
    ad_fmt_trunc(v->part_id, sizeof v->part_id, "%s", trig->part_id);
    ad_fmt_trunc(v->trigger, sizeof v->trigger, "%s", trigger_names[cfg->trigger.mode]);
    v->t_trigger = trig->t_fired;
    ad_fmt_trunc(v->ts, sizeof v->ts, "%s", ts);
    ad_fmt_trunc(v->line, sizeof v->line, "%s", cfg->line.name);
    v->score = res->score;
    v->threshold = res->threshold;
    v->reject = res->reject;
    bool roi_set = cfg->camera.roi_width > 0 && cfg->camera.roi_height > 0;
    v->box_x = res->box_x + (roi_set ? cfg->camera.roi_x : 0);
    v->box_y = res->box_y + (roi_set ? cfg->camera.roi_y : 0);
    v->box_w = res->box_w;
    v->box_h = res->box_h;
    v->area = res->area;
    ad_fmt_trunc(v->model_sha256, sizeof v->model_sha256, "%s", ad_detector_model_sha256(t->det));
}

/* The writer's job for a reject: the row (from the verdict), and the ROI
 * and heat map to save when images are on and the writer is not too far
 * behind. */
static ad_job *reject_job(ad_inspect_thread *t, uint64_t seq, const ad_verdict *v, const ad_image *roi)
{
    const ad_config *cfg = &t->cfg;
    char err[AD_ERRLEN];
    ad_job *j = ad_xcalloc(1, sizeof *j);
    j->kind = AD_JOB_REJECT;
    j->verdict = *v;
    ad_reject *r = &j->row;
    ad_fmt_trunc(r->ts, sizeof r->ts, "%s", v->ts);
    ad_fmt_trunc(r->line, sizeof r->line, "%s", v->line);
    ad_fmt_trunc(r->camera, sizeof r->camera, "%s", ad_daemon_camera_name(cfg));
    r->frame_seq = seq;
    r->score = v->score;
    r->threshold = v->threshold;
    r->box_x = v->box_x;
    r->box_y = v->box_y;
    r->box_w = v->box_w;
    r->box_h = v->box_h;
    r->area = v->area;
    ad_fmt_trunc(r->model_sha256, sizeof r->model_sha256, "%s", v->model_sha256);
    r->part = v->part;
    ad_fmt_trunc(r->part_id, sizeof r->part_id, "%s", v->part_id);
    ad_fmt_trunc(r->trigger, sizeof r->trigger, "%s", v->trigger);
    ad_log(AD_LOG_INFO, "reject: frame %llu score %.4f > threshold %.4f, box %d,%d %dx%d, part %ld%s%s (%s)",
           (unsigned long long)seq, v->score, v->threshold, r->box_x, r->box_y, r->box_w, r->box_h, v->part,
           v->part_id[0] ? " id " : "", v->part_id, v->trigger);
    if (!cfg->reject_log.save_images) return j;
    if (ad_writer_queue_pending_images(t->writer) >= AD_DAEMON_MAX_PENDING_IMAGES) {
        atomic_fetch_add(&t->images_skipped, 1);
        ad_log(AD_LOG_WARN, "frame %llu: %d rejects already wait for their images; "
               "row kept, images skipped", (unsigned long long)seq, AD_DAEMON_MAX_PENDING_IMAGES);
        return j;
    }
    ad_image_copy(&j->frame, roi);
    if (ad_detector_heatmap(t->det, roi, &j->heat, err, sizeof err) != 0)
        ad_log(AD_LOG_WARN, "frame %llu: no heat map: %s", (unsigned long long)seq, err);
    return j;
}

static void beat(ad_inspect_thread *t)
{
    atomic_store(&t->heartbeat_ms, (long long)(ad_now_sec() * 1000));
}

void *ad_inspect_thread_main(void *arg)
{
    ad_inspect_thread *t = arg;
    ad_thread_enter("ad-inspect");
    ad_image work = {0}, roi = {0};
    ad_latch latch = {0};
    char err[AD_ERRLEN], msg[AD_ERRLEN + 64], ts[32];
    long part = 0;

    for (;;) {
        uint64_t seq = 0;
        double t_frame = 0;
        beat(t);
        enum ad_mailbox_take got = ad_mailbox_take(t->mailbox, &work, &seq, &t_frame, 0.25);
        take_reload(t);
        if (got == AD_MAILBOX_EMPTY) continue;
        if (got == AD_MAILBOX_DONE) break;
        beat(t);
        ad_trigger trig;
        if (!wanted(t, t_frame, &trig)) {
            atomic_fetch_add(&t->passed_over, 1);
            continue;
        }

        double t0 = ad_now_sec();
        ad_result res;
        memset(&res, 0, sizeof res);
        ad_image_free(&roi); /* preprocess allocates a fresh ROI */
        int rc = ad_preprocess_roi(&t->cfg, &work, &roi, err, sizeof err);
        if (rc == 0) rc = ad_detector_inspect(t->det, &roi, &res, err, sizeof err);
        if (rc != 0) {
            atomic_fetch_add(&t->errors, 1);
            ad_fmt_trunc(msg, sizeof msg, "frame %llu not inspected: %s", (unsigned long long)seq,
                         err);
            ad_latch_log(&latch, AD_LOG_ERR, msg);
            continue;
        }
        ad_latch_clear(&latch, "inspection works again");
        ad_utc_timestamp(ts);
        ad_verdict v;
        make_verdict(t, &v, ++part, &trig, ts, &res);
        ad_line_io_inspected(t->io, &v); /* first: the reject signal waits for nothing else */
        double ms = (ad_now_sec() - t0) * 1000.0;
        atomic_fetch_add(&t->inspected, 1);
        ad_inspect_stats_add(t->stats, res.score, res.threshold, ms);
        if (t->cfg.trigger.mode != AD_TRIGGER_CONTINUOUS && !res.reject) /* continuous: a line per frame is too many */
            ad_log(AD_LOG_INFO, "good: frame %llu score %.4f <= threshold %.4f, part %ld%s%s (%s)",
                   (unsigned long long)seq, res.score, res.threshold, part, v.part_id[0] ? " id " : "", v.part_id,
                   v.trigger);
        if (!res.reject) continue;
        atomic_fetch_add(&t->rejects, 1);
        ad_writer_queue_push(t->writer, reject_job(t, seq, &v, &roi));
    }
    drop_triggers(t, "the frames ended");
    ad_image_free(&work);
    ad_image_free(&roi);
    atomic_store(&t->done, 1);
    return NULL;
}

/* The inspection thread: takes the newest frame when free, runs the
 * detector, reports score and latency, and queues a row (with the ROI and
 * heat map, unless too many images already wait) for every reject. A
 * reload's detector and config are taken between frames. See
 * daemon_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "anomalyd/daemon.h"
#include "daemon_internal.h"

void ad_inspect_thread_init(ad_inspect_thread *t, ad_mailbox *mb, ad_reload_slot *reload,
                            ad_writer_queue *writer, ad_inspect_stats *stats,
                            const ad_config *cfg, ad_detector *det)
{
    memset(t, 0, sizeof *t);
    t->mailbox = mb;
    t->reload = reload;
    t->writer = writer;
    t->stats = stats;
    t->cfg = *cfg;
    t->det = det;
    atomic_store(&t->heartbeat_ms, (long long)(ad_now_sec() * 1000));
}

void ad_inspect_thread_destroy(ad_inspect_thread *t)
{
    ad_detector_close(t->det);
    t->det = NULL;
}

static void take_reload(ad_inspect_thread *t)
{
    ad_detector *nd = NULL;
    if (!ad_reload_slot_take(t->reload, &nd, &t->cfg)) return;
    ad_detector_close(t->det);
    t->det = nd;
    ad_log(AD_LOG_INFO, "inspection now uses the reloaded config: threshold %g, model %s",
           t->cfg.threshold, ad_detector_model_sha256(t->det));
}

/* The writer's job for a reject: the row, and the ROI and heat map to save
 * when images are on and the writer is not too far behind. */
static ad_job *reject_job(ad_inspect_thread *t, uint64_t seq, const ad_result *res,
                          const ad_image *roi)
{
    const ad_config *cfg = &t->cfg;
    char err[AD_ERRLEN];
    ad_job *j = ad_xcalloc(1, sizeof *j);
    j->kind = AD_JOB_REJECT;
    ad_reject *r = &j->row;
    ad_utc_timestamp(r->ts);
    ad_fmt_trunc(r->line, sizeof r->line, "%s", cfg->line.name);
    ad_fmt_trunc(r->camera, sizeof r->camera, "%s", ad_daemon_camera_name(cfg));
    r->frame_seq = seq;
    r->score = res->score;
    r->threshold = res->threshold;
    bool roi_set = cfg->camera.roi_width > 0 && cfg->camera.roi_height > 0;
    r->box_x = res->box_x + (roi_set ? cfg->camera.roi_x : 0);
    r->box_y = res->box_y + (roi_set ? cfg->camera.roi_y : 0);
    r->box_w = res->box_w;
    r->box_h = res->box_h;
    r->area = res->area;
    ad_fmt_trunc(r->model_sha256, sizeof r->model_sha256, "%s", ad_detector_model_sha256(t->det));
    ad_log(AD_LOG_INFO, "reject: frame %llu score %.4f > threshold %.4f, box %d,%d %dx%d",
           (unsigned long long)seq, res->score, res->threshold, r->box_x, r->box_y, r->box_w,
           r->box_h);
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
    char err[AD_ERRLEN], msg[AD_ERRLEN + 64];

    for (;;) {
        uint64_t seq = 0;
        beat(t);
        enum ad_mailbox_take got = ad_mailbox_take(t->mailbox, &work, &seq, 0.25);
        if (got == AD_MAILBOX_EMPTY) continue;
        if (got == AD_MAILBOX_DONE) break;
        beat(t);

        take_reload(t);
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
        double ms = (ad_now_sec() - t0) * 1000.0;
        atomic_fetch_add(&t->inspected, 1);
        ad_inspect_stats_add(t->stats, res.score, res.threshold, ms);
        if (!res.reject) continue;
        atomic_fetch_add(&t->rejects, 1);
        ad_writer_queue_push(t->writer, reject_job(t, seq, &res, &roi));
    }
    ad_image_free(&work);
    ad_image_free(&roi);
    atomic_store(&t->done, 1);
    return NULL;
}

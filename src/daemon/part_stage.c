/* The part trigger inside the daemon: the capture thread shows it every
 * frame, the main thread swaps its detector on start and reload. See
 * daemon_internal.h (ad_part_stage) and src/line/line.h (the detector). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomalyd/detect.h"
#include "daemon_internal.h"

void ad_part_stage_init(ad_part_stage *s, ad_trigger_queue *triggers)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->cfg = ad_xcalloc(1, sizeof *s->cfg);
    s->triggers = triggers;
}

void ad_part_stage_destroy(ad_part_stage *s)
{
    ad_part_detector_close(s->det);
    s->det = NULL;
    ad_image_free(&s->roi);
    free(s->cfg);
    s->cfg = NULL;
    pthread_mutex_destroy(&s->lock);
}

/* What a detector opened with cfg depends on, besides the reference's bytes. */
static bool same_part_settings(const ad_config *a, const ad_config *b)
{
    return a->camera.roi_x == b->camera.roi_x && a->camera.roi_y == b->camera.roi_y &&
           a->camera.roi_width == b->camera.roi_width && a->camera.roi_height == b->camera.roi_height &&
           a->model.color == b->model.color && a->trigger.settle_frames == b->trigger.settle_frames &&
           strcmp(a->trigger.part.reference, b->trigger.part.reference) == 0 &&
           a->trigger.part.grid == b->trigger.part.grid &&
           a->trigger.part.pixel_delta == b->trigger.part.pixel_delta &&
           a->trigger.part.present_percent == b->trigger.part.present_percent &&
           a->trigger.part.absent_percent == b->trigger.part.absent_percent &&
           a->trigger.part.motion_percent == b->trigger.part.motion_percent;
}

static void add_counts(ad_part_counts *sum, const ad_part_counts *c)
{
    sum->arrived += c->arrived;
    sum->inspected += c->inspected;
    sum->unsettled += c->unsettled;
    sum->frames += c->frames;
}

/* Puts det (may be NULL) in, the old one out into its counts. */
static void swap_detector(ad_part_stage *s, ad_part_detector *det, const ad_config *cfg, const struct stat *ref)
{
    pthread_mutex_lock(&s->lock);
    ad_part_detector *old = s->det;
    if (old) {
        ad_part_counts c;
        ad_part_detector_counts(old, &c);
        add_counts(&s->before, &c);
    }
    s->det = det;
    *s->cfg = *cfg;
    s->ref_mtime_ns = ref ? (long long)ref->st_mtim.tv_sec * 1000000000LL + ref->st_mtim.tv_nsec : 0;
    s->ref_size = ref ? (long long)ref->st_size : 0;
    pthread_mutex_unlock(&s->lock);
    ad_part_detector_close(old);
}

int ad_part_stage_offer(ad_part_stage *s, const ad_config *cfg, char *err, size_t errlen)
{
    if (cfg->trigger.mode != AD_TRIGGER_PART) {
        if (s->det) ad_log(AD_LOG_INFO, "part trigger off (trigger.mode is no longer part)");
        swap_detector(s, NULL, cfg, NULL);
        return 0;
    }
    struct stat ref;
    bool have_ref = stat(cfg->trigger.part.reference, &ref) == 0;
    long long mtime = have_ref ? (long long)ref.st_mtim.tv_sec * 1000000000LL + ref.st_mtim.tv_nsec : 0;
    /* the main thread is the only writer of det and cfg: reading them unlocked is safe here */
    if (s->det && have_ref && same_part_settings(s->cfg, cfg) && mtime == s->ref_mtime_ns &&
        (long long)ref.st_size == s->ref_size)
        return 0; /* unchanged: a part at rest stays inspected */
    ad_part_detector *det = NULL;
    if (ad_part_detector_load(&det, cfg, err, errlen) != 0) return -1;
    swap_detector(s, det, cfg, have_ref ? &ref : NULL);
    ad_log(AD_LOG_INFO, "part trigger: empty station %s, %d cells on the long side, a part at %g%% of them "
           "differing by more than %d, gone below %g%%, at rest after %d frames under %g%% motion",
           cfg->trigger.part.reference, cfg->trigger.part.grid, cfg->trigger.part.present_percent,
           cfg->trigger.part.pixel_delta, cfg->trigger.part.absent_percent, cfg->trigger.settle_frames,
           cfg->trigger.part.motion_percent);
    return 0;
}

void ad_part_stage_frame(ad_part_stage *s, const ad_image *frame, double t)
{
    char err[AD_ERRLEN], msg[AD_ERRLEN + 64];
    pthread_mutex_lock(&s->lock);
    if (!s->det) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    ad_part_step step;
    ad_image_free(&s->roi);
    int rc = ad_preprocess_roi(s->cfg, frame, &s->roi, err, sizeof err);
    if (rc == 0) rc = ad_part_detector_feed(s->det, &s->roi, &step, err, sizeof err);
    if (rc != 0) {
        ad_fmt_trunc(msg, sizeof msg, "part trigger: frame not compared: %s", err);
        ad_latch_log(&s->latch, AD_LOG_ERR, msg);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    ad_latch_clear(&s->latch, "part trigger compares frames again");
    ad_part_counts c;
    switch (step.event) {
    case AD_PART_INSPECT: ad_trigger_fire(s->triggers, NULL, t); break;
    case AD_PART_ARRIVED:
        ad_log(AD_LOG_DEBUG, "part trigger: a part arrived (%.1f%% of the ROI differs from the empty station)",
               step.present);
        break;
    case AD_PART_LEFT_UNSETTLED:
        ad_part_detector_counts(s->det, &c);
        ad_log(AD_LOG_INFO, "part trigger: a part passed without coming to rest: not inspected (%ld so far "
               "since the last reload; lower trigger.settle_frames or raise trigger.part.motion_percent if "
               "parts do stop)", c.unsettled);
        break;
    default: break;
    }
    pthread_mutex_unlock(&s->lock);
}

void ad_part_stage_counts(ad_part_stage *s, ad_part_counts *c)
{
    pthread_mutex_lock(&s->lock);
    *c = s->before;
    if (s->det) {
        ad_part_counts now;
        ad_part_detector_counts(s->det, &now);
        add_counts(c, &now);
    }
    pthread_mutex_unlock(&s->lock);
}

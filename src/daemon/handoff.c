/* What the daemon's threads hand each other besides writer jobs: the
 * newest-frame mailbox, the camera and detector reload slots, and the
 * inspection results the status line reports. See daemon_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "daemon_internal.h"

/* ---- newest-frame mailbox ---- */

void ad_mailbox_init(ad_mailbox *mb, bool wait_for_taker)
{
    memset(mb, 0, sizeof *mb);
    pthread_mutex_init(&mb->lock, NULL);
    pthread_cond_init(&mb->filled, NULL);
    pthread_cond_init(&mb->emptied, NULL);
    mb->wait_for_taker = wait_for_taker;
}

void ad_mailbox_destroy(ad_mailbox *mb)
{
    ad_image_free(&mb->slot);
    pthread_mutex_destroy(&mb->lock);
    pthread_cond_destroy(&mb->filled);
    pthread_cond_destroy(&mb->emptied);
}

bool ad_mailbox_put(ad_mailbox *mb, ad_image *frame, uint64_t seq, double t)
{
    pthread_mutex_lock(&mb->lock);
    while (mb->wait_for_taker && mb->full && !mb->closed)
        ad_cond_wait_s(&mb->emptied, &mb->lock, 0.25);
    bool dropped = mb->full; /* never taken */
    ad_image tmp = mb->slot;
    mb->slot = *frame;
    *frame = tmp;
    mb->seq = seq;
    mb->t = t;
    mb->full = true;
    pthread_cond_signal(&mb->filled);
    pthread_mutex_unlock(&mb->lock);
    return dropped;
}

void ad_mailbox_end(ad_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    mb->ended = true;
    pthread_cond_broadcast(&mb->filled);
    pthread_mutex_unlock(&mb->lock);
}

void ad_mailbox_close(ad_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    mb->closed = true;
    pthread_cond_broadcast(&mb->filled);
    pthread_cond_broadcast(&mb->emptied);
    pthread_mutex_unlock(&mb->lock);
}

enum ad_mailbox_take ad_mailbox_take(ad_mailbox *mb, ad_image *work, uint64_t *seq, double *t,
                                     double timeout_s)
{
    pthread_mutex_lock(&mb->lock);
    if (!mb->full && !mb->closed && !mb->ended)
        ad_cond_wait_s(&mb->filled, &mb->lock, timeout_s);
    enum ad_mailbox_take got = AD_MAILBOX_FRAME;
    if (mb->closed || (!mb->full && mb->ended)) {
        got = AD_MAILBOX_DONE;
    } else if (!mb->full) {
        got = AD_MAILBOX_EMPTY;
    } else {
        ad_image tmp = *work;
        *work = mb->slot;
        mb->slot = tmp;
        *seq = mb->seq;
        *t = mb->t;
        mb->full = false;
        pthread_cond_signal(&mb->emptied);
    }
    pthread_mutex_unlock(&mb->lock);
    return got;
}

/* ---- camera settings ---- */

static void camera_settings_from_config(ad_camera_settings *s, const ad_config *cfg)
{
    ad_capture_options_from_config(&s->opt, cfg);
    ad_fmt_trunc(s->name, sizeof s->name, "%s", ad_daemon_camera_name(cfg));
}

void ad_camera_slot_init(ad_camera_slot *s, const ad_config *cfg)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    camera_settings_from_config(&s->now, cfg);
}

void ad_camera_slot_destroy(ad_camera_slot *s)
{
    pthread_mutex_destroy(&s->lock);
}

bool ad_camera_slot_offer(ad_camera_slot *s, const ad_config *cfg)
{
    ad_camera_settings next;
    camera_settings_from_config(&next, cfg);
    pthread_mutex_lock(&s->lock);
    bool differ = !ad_capture_options_equal(&next.opt, &s->now.opt);
    if (differ) {
        s->now = next;
        s->changed = true;
    }
    pthread_mutex_unlock(&s->lock);
    return differ;
}

void ad_camera_slot_take(ad_camera_slot *s, ad_camera_settings *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->now;
    s->changed = false;
    pthread_mutex_unlock(&s->lock);
}

bool ad_camera_slot_changed(ad_camera_slot *s)
{
    pthread_mutex_lock(&s->lock);
    bool c = s->changed;
    pthread_mutex_unlock(&s->lock);
    return c;
}

/* ---- detector and config ---- */

void ad_reload_slot_init(ad_reload_slot *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
}

void ad_reload_slot_destroy(ad_reload_slot *s)
{
    if (s->pending) ad_detector_close(s->det);
    pthread_mutex_destroy(&s->lock);
}

void ad_reload_slot_offer(ad_reload_slot *s, ad_detector *det, const ad_config *cfg)
{
    pthread_mutex_lock(&s->lock);
    ad_detector *stale = s->pending ? s->det : NULL; /* a previous reload not yet taken */
    s->det = det;
    s->cfg = *cfg;
    s->pending = true;
    pthread_mutex_unlock(&s->lock);
    if (stale) ad_detector_close(stale);
}

bool ad_reload_slot_take(ad_reload_slot *s, ad_detector **det, ad_config *cfg)
{
    pthread_mutex_lock(&s->lock);
    bool got = s->pending;
    if (got) {
        *det = s->det;
        *cfg = s->cfg;
        s->det = NULL;
        s->pending = false;
    }
    pthread_mutex_unlock(&s->lock);
    return got;
}

/* ---- inspection results ---- */

void ad_inspect_stats_init(ad_inspect_stats *s, double threshold)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->last_threshold = threshold;
    s->scores = ad_xmalloc(AD_MINUTE_SAMPLES_MAX * sizeof(double));
    s->lat_ms = ad_xmalloc(AD_MINUTE_SAMPLES_MAX * sizeof(double));
}

void ad_inspect_stats_destroy(ad_inspect_stats *s)
{
    free(s->scores);
    free(s->lat_ms);
    pthread_mutex_destroy(&s->lock);
}

void ad_inspect_stats_add(ad_inspect_stats *s, double score, double threshold, double ms)
{
    pthread_mutex_lock(&s->lock);
    s->last_score = score;
    s->last_threshold = threshold;
    if (s->n < AD_MINUTE_SAMPLES_MAX) {
        s->scores[s->n] = score;
        s->lat_ms[s->n] = ms;
        s->n++;
    }
    pthread_mutex_unlock(&s->lock);
}

void ad_inspect_stats_peek(ad_inspect_stats *s, double *last, double *threshold,
                           double *lat_p50, double *lat_p99, double *scratch)
{
    pthread_mutex_lock(&s->lock);
    *last = s->last_score;
    *threshold = s->last_threshold;
    *lat_p50 = *lat_p99 = 0;
    size_t n = s->n;
    if (n > 0) { /* latency of this minute so far, on a copy (the order matters to max) */
        memcpy(scratch, s->lat_ms, n * sizeof(double));
        ad_sort_doubles(scratch, n);
        *lat_p50 = ad_quantile_sorted(scratch, n, 0.50);
        *lat_p99 = ad_quantile_sorted(scratch, n, 0.99);
    }
    pthread_mutex_unlock(&s->lock);
}

void ad_inspect_stats_roll(ad_inspect_stats *s, ad_minute_counts *c)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    if (n > 0) {
        ad_sort_doubles(s->scores, n);
        ad_sort_doubles(s->lat_ms, n);
        c->score_p50 = ad_quantile_sorted(s->scores, n, 0.50);
        c->score_p90 = ad_quantile_sorted(s->scores, n, 0.90);
        c->score_p99 = ad_quantile_sorted(s->scores, n, 0.99);
        c->score_max = s->scores[n - 1];
        c->latency_ms_p50 = ad_quantile_sorted(s->lat_ms, n, 0.50);
        c->latency_ms_p99 = ad_quantile_sorted(s->lat_ms, n, 0.99);
        c->latency_ms_max = s->lat_ms[n - 1];
    }
    s->n = 0;
    pthread_mutex_unlock(&s->lock);
}

/* The part trigger: a part is inspected once, on its first frame at rest.
 * Small gray grids of the ROI against the empty station, the previous frame
 * and the frame last inspected; the state machine is in line.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"
#include "line/line.h"

struct ad_part_detector {
    int grid, delta, settle_frames;
    double present_pct, absent_pct, motion_pct;
    int ref_w, ref_h;           /* the reference ROI's size: frames must match it */
    ad_image reference;         /* grid of the empty station */
    ad_image prev;              /* grid of the previous frame (px NULL before the first) */
    ad_image inspected;         /* grid of the frame last inspected */
    enum ad_part_state state;
    int still;                  /* frames in a row below the motion threshold */
    double peak_change;         /* DISTURBED: most the ROI differed from the part inspected */
    ad_part_counts counts;
};

int ad_part_grid(const ad_image *roi, int grid, ad_image *dst, char *err, size_t errlen)
{
    memset(dst, 0, sizeof *dst);
    if (!roi->px || roi->w < 1 || roi->h < 1 || grid < 1)
        return ad_err(err, errlen, "no image to compare (ROI %dx%d)", roi->w, roi->h);
    int w = roi->w >= roi->h ? grid : (int)((long)grid * roi->w / roi->h);
    int h = roi->h >= roi->w ? grid : (int)((long)grid * roi->h / roi->w);
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    if (w > roi->w) w = roi->w;
    if (h > roi->h) h = roi->h;
    ad_image small = {0};
    if (ad_image_resize(&small, roi, w, h) != 0)
        return ad_err(err, errlen, "cannot shrink the %dx%d ROI to %dx%d cells", roi->w, roi->h, w, h);
    if (small.c == 1) {
        *dst = small;
        return 0;
    }
    int rc = ad_image_convert(dst, &small, 1);
    ad_image_free(&small);
    if (rc != 0) return ad_err(err, errlen, "cannot convert the ROI grid to gray");
    return 0;
}

double ad_part_differ_percent(const ad_image *a, const ad_image *b, int delta)
{
    AD_ASSERT(a->w == b->w && a->h == b->h && a->c == 1 && b->c == 1);
    size_t n = (size_t)a->w * a->h, differ = 0;
    for (size_t i = 0; i < n; i++) {
        int d = (int)a->px[i] - (int)b->px[i];
        differ += d > delta || d < -delta;
    }
    return n ? 100.0 * (double)differ / (double)n : 0.0;
}

int ad_part_detector_open(ad_part_detector **out, const ad_config *cfg, const ad_image *reference,
                          char *err, size_t errlen)
{
    *out = NULL;
    ad_part_detector *d = ad_xcalloc(1, sizeof *d);
    d->grid = cfg->trigger.part.grid;
    d->delta = cfg->trigger.part.pixel_delta;
    d->settle_frames = cfg->trigger.settle_frames;
    d->present_pct = cfg->trigger.part.present_percent;
    d->absent_pct = cfg->trigger.part.absent_percent;
    d->motion_pct = cfg->trigger.part.motion_percent;
    d->ref_w = reference->w;
    d->ref_h = reference->h;
    if (ad_part_grid(reference, d->grid, &d->reference, err, errlen) != 0) {
        free(d);
        return -1;
    }
    d->state = AD_PART_EMPTY;
    *out = d;
    return 0;
}

int ad_part_detector_load(ad_part_detector **out, const ad_config *cfg, char *err, size_t errlen)
{
    ad_image ref = {0};
    char why[AD_ERRLEN];
    *out = NULL;
    if (ad_png_read(cfg->trigger.part.reference, 0, &ref, why, sizeof why) != 0)
        return ad_err(err, errlen, "trigger.mode is part but the empty-station reference cannot be read "
                      "(%s); record it with: anomalyctl capture --config %s --empty", why, cfg->path);
    int rc = ad_part_detector_open(out, cfg, &ref, err, errlen);
    ad_image_free(&ref);
    return rc;
}

void ad_part_detector_close(ad_part_detector *d)
{
    if (!d) return;
    ad_image_free(&d->reference);
    ad_image_free(&d->prev);
    ad_image_free(&d->inspected);
    free(d);
}

void ad_part_detector_counts(const ad_part_detector *d, ad_part_counts *c)
{
    *c = d->counts;
}

/* A still frame counts toward settle_frames, a moving one starts the count
 * again: true on the frame that completes it. */
static bool settled(ad_part_detector *d, double motion)
{
    d->still = motion < d->motion_pct ? d->still + 1 : 0;
    if (d->still < d->settle_frames) return false;
    d->still = 0;
    return true;
}

static enum ad_part_event inspect(ad_part_detector *d, const ad_image *now)
{
    d->state = AD_PART_RESTING;
    ad_image_free(&d->inspected);
    ad_image_copy(&d->inspected, now);
    d->counts.inspected++;
    return AD_PART_INSPECT;
}

static enum ad_part_event step(ad_part_detector *d, const ad_image *now, const ad_part_step *s)
{
    bool gone = s->present < d->absent_pct;
    switch (d->state) {
    case AD_PART_EMPTY:
        if (s->present < d->present_pct) return AD_PART_NOTHING;
        d->state = AD_PART_MOVING;
        d->still = 0;
        d->counts.arrived++;
        return settled(d, s->motion) ? inspect(d, now) : AD_PART_ARRIVED;
    case AD_PART_MOVING:
        if (gone) {
            d->state = AD_PART_EMPTY;
            d->counts.unsettled++;
            return AD_PART_LEFT_UNSETTLED;
        }
        return settled(d, s->motion) ? inspect(d, now) : AD_PART_NOTHING;
    case AD_PART_RESTING:
    case AD_PART_DISTURBED:
        if (gone) {
            d->state = AD_PART_EMPTY;
            return AD_PART_LEFT;
        }
        if (d->state == AD_PART_RESTING) {
            if (s->motion < d->motion_pct) return AD_PART_NOTHING;
            d->state = AD_PART_DISTURBED;
            d->still = 0;
            d->peak_change = 0;
        }
        if (s->change > d->peak_change) d->peak_change = s->change;
        if (!settled(d, s->motion)) return AD_PART_NOTHING;
        /* at rest again: when on the way it differed from the part inspected
         * as much as a part differs from the empty station, this is another
         * part (one left as the next came, or a swap); else it only shook */
        if (d->peak_change < d->present_pct) {
            d->state = AD_PART_RESTING;
            return AD_PART_NOTHING;
        }
        d->counts.arrived++;
        return inspect(d, now);
    }
    return AD_PART_NOTHING;
}

int ad_part_detector_feed(ad_part_detector *d, const ad_image *roi, ad_part_step *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (roi->w != d->ref_w || roi->h != d->ref_h)
        return ad_err(err, errlen, "the ROI is %dx%d but the empty-station reference is %dx%d; record the "
                      "reference again with anomalyctl capture --empty", roi->w, roi->h, d->ref_w, d->ref_h);
    ad_image now = {0};
    if (ad_part_grid(roi, d->grid, &now, err, errlen) != 0) return -1;
    d->counts.frames++;
    out->present = ad_part_differ_percent(&now, &d->reference, d->delta);
    out->motion = d->prev.px ? ad_part_differ_percent(&now, &d->prev, d->delta) : 100.0;
    out->change = d->inspected.px ? ad_part_differ_percent(&now, &d->inspected, d->delta) : 100.0;
    out->event = step(d, &now, out);
    out->state = d->state;
    ad_image_free(&d->prev);
    d->prev = now;
    return 0;
}

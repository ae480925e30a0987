/* Thumbnails of the reject images for the report: read the PNG, shrink it
 * (ad_image_resize's area averaging), encode it again. See report.h. */
#include "anomalyd/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

/* Level 9 is 10x slower on a noisy heat map for 4% fewer bytes. */
#define THUMB_PNG_LEVEL 6
/* Camera noise is most of a PNG's bytes: kept at 64 gray levels and 32 per
 * colour channel (fewer band the heat map's colour scale), a noisy 256x256
 * ROI at 96 pixels takes about half the bytes (4 KB; bench/report.sh). */
#define GRAY_BITS 6
#define COLOR_BITS 5

/* Keeps the top `bits` of each value, at the middle of its step. */
static void posterize(ad_image *im, int bits)
{
    int step = 1 << (8 - bits);
    for (size_t i = 0; i < (size_t)im->w * im->h * im->c; i++)
        im->px[i] = (uint8_t)((im->px[i] & ~(step - 1)) + step / 2);
}

void ad_thumb_load(ad_thumb *t, const char *path, int side)
{
    memset(t, 0, sizeof *t);
    if (!path || !*path) {
        t->state = AD_THUMB_NOT_SAVED;
        return;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
        t->state = AD_THUMB_REMOVED;
        return;
    }
    ad_image im = {0}, small = {0};
    char err[AD_ERRLEN];
    t->state = AD_THUMB_UNREADABLE;
    if (ad_png_read(path, 0, &im, err, sizeof err) != 0) goto done;
    t->w = im.w;
    t->h = im.h;
    if (side < 1) side = 1;
    ad_image *src = &im;
    if (im.w > side || im.h > side) {
        int tw = im.w >= im.h ? side : (int)((long)im.w * side / im.h);
        int th = im.h >= im.w ? side : (int)((long)im.h * side / im.w);
        if (ad_image_resize(&small, &im, tw > 0 ? tw : 1, th > 0 ? th : 1) != 0) {
            snprintf(err, sizeof err, "%s: cannot shrink a %dx%d image", path, im.w, im.h);
            goto done;
        }
        src = &small;
    }
    posterize(src, src->c == 1 ? GRAY_BITS : COLOR_BITS);
    if (ad_png_encode_level(src, THUMB_PNG_LEVEL, &t->png, &t->len, err, sizeof err) != 0) goto done;
    t->tw = src->w;
    t->th = src->h;
    t->state = AD_THUMB_EMBEDDED;
done:
    if (t->state == AD_THUMB_UNREADABLE) snprintf(t->why, sizeof t->why, "%s", err);
    ad_image_free(&im);
    ad_image_free(&small);
}

void ad_thumb_free(ad_thumb *t)
{
    free(t->png);
    memset(t, 0, sizeof *t);
}

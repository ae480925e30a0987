/* The training set: a folder of good PNGs, loaded once into memory at the
 * model's input size (training scale = inspection scale). */
#include <stdlib.h>
#include <string.h>

#include "anomalyd/image.h"
#include "train_internal.h"

int ad_dataset_load(ad_dataset *ds, const char *dir, int c, int w, int h, int min_side,
                    char *err, size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    if (c != 1 && c != 3) return ad_err(err, errlen, "training images: channels must be 1 or 3");
    char **names = NULL;
    int count = 0;
    if (ad_png_list(dir, &names, &count, err, errlen) != 0) return -1;

    size_t plane = (size_t)w * h, per = plane * c;
    ds->n = count;
    ds->c = c;
    ds->w = w;
    ds->h = h;
    ds->px = ad_xmalloc(per * (size_t)count);
    ds->hash = 0;
    int rc = -1, converted = 0, resized = 0;
    size_t plen = strlen(dir) + 2;
    for (int i = 0; i < count; i++) {
        char *full = ad_xmalloc(plen + strlen(names[i]));
        sprintf(full, "%s/%s", dir, names[i]);
        ad_image im = {0}, conv = {0}, sized = {0};
        int ok = ad_png_read(full, 0, &im, err, errlen) == 0;
        if (ok && im.c != c) {
            if (c == 3) {
                ad_err(err, errlen,
                       "%s: the image is grayscale but model.color is rgb; train an rgb model "
                       "on colour images or set model.color: gray", full);
                ok = 0;
            } else if (ad_image_convert(&conv, &im, c) != 0) {
                ad_err(err, errlen, "%s: cannot convert to grayscale", full);
                ok = 0;
            } else {
                converted++;
                ad_image_free(&im);
                im = conv;
                conv = (ad_image){0};
            }
        }
        if (ok && (im.w < min_side || im.h < min_side)) {
            ad_err(err, errlen, "%s: the image is %dx%d, smaller than the %d-pixel training "
                   "crop (train.crop)", full, im.w, im.h, min_side);
            ok = 0;
        }
        if (ok && (im.w != w || im.h != h)) {
            if (ad_image_resize(&sized, &im, w, h) != 0) {
                ad_err(err, errlen, "%s: cannot resize %dx%d to %dx%d", full, im.w, im.h, w, h);
                ok = 0;
            } else {
                resized++;
                ad_image_free(&im);
                im = sized;
                sized = (ad_image){0};
            }
        }
        if (ok) {
            /* interleaved -> planar */
            uint8_t *dst = ds->px + per * (size_t)i;
            for (size_t p = 0; p < plane; p++)
                for (int ch = 0; ch < c; ch++) dst[(size_t)ch * plane + p] = im.px[p * c + ch];
            ds->hash = ad_hash64(dst, per, ds->hash);
        }
        ad_image_free(&im);
        ad_image_free(&conv);
        ad_image_free(&sized);
        free(full);
        if (!ok) goto out;
    }
    if (converted)
        ad_log(AD_LOG_INFO, "%s: %d colour image(s) converted to gray (model.color: gray)", dir,
               converted);
    if (resized)
        ad_log(AD_LOG_INFO, "%s: %d image(s) resized to the model input %dx%d", dir, resized, w,
               h);

    /* the float mapping inspection uses, applied to every 8-bit value */
    ad_image ramp = {0};
    ad_image_alloc(&ramp, 256, 1, 1);
    for (int v = 0; v < 256; v++) ramp.px[v] = (uint8_t)v;
    ad_image_to_float(ds->lut, &ramp);
    ad_image_free(&ramp);
    rc = 0;
out:
    ad_png_list_free(names, count);
    if (rc != 0) ad_dataset_free(ds);
    return rc;
}

void ad_dataset_free(ad_dataset *ds)
{
    if (!ds) return;
    free(ds->px);
    memset(ds, 0, sizeof *ds);
}

void ad_dataset_crop(const ad_dataset *ds, float *dst, int idx, int ox, int oy, int k, int fh, int fv)
{
    size_t plane = (size_t)ds->w * ds->h;
    for (int ch = 0; ch < ds->c; ch++) {
        const uint8_t *src = ds->px + ((size_t)idx * ds->c + ch) * plane;
        float *d = dst + (size_t)ch * k * k;
        for (int y = 0; y < k; y++) {
            int sy = oy + (fv ? k - 1 - y : y);
            const uint8_t *row = src + (size_t)sy * ds->w + ox;
            float *drow = d + (size_t)y * k;
            if (fh)
                for (int x = 0; x < k; x++) drow[x] = ds->lut[row[k - 1 - x]];
            else
                for (int x = 0; x < k; x++) drow[x] = ds->lut[row[x]];
        }
    }
}

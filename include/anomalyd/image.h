/* 8-bit images, PNG I/O, geometry, float conversion, blur, heat maps.
 *
 * ad_image owns its pixel buffer (interleaved, row-major, c = 1 or 3);
 * free it with ad_image_free, which is safe on a zeroed or freed image.
 * Float images are planar (C, H, W) in caller-owned buffers. */
#ifndef ANOMALYD_IMAGE_H
#define ANOMALYD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ad_image {
    int w, h, c;     /* c = 1 (gray) or 3 (RGB) */
    uint8_t *px;     /* w*h*c bytes, owned */
} ad_image;

/* Size limits for every image (PNG headers are checked before allocating). */
#define AD_IMAGE_MAX_SIDE 16384
#define AD_IMAGE_MAX_PIXELS ((uint64_t)1 << 28)
/* 1 when w x h lies within the limits above (and both are >= 1). */
int ad_image_dims_ok(long w, long h);

/* Zeroed pixels; -1 (nothing allocated) for c not 1/3 or a size out of limits. */
int ad_image_alloc(ad_image *im, int w, int h, int c);
void ad_image_free(ad_image *im);
int ad_image_copy(ad_image *dst, const ad_image *src);

/* Reads any PNG (gray, gray+alpha, RGB, RGBA, palette; 8 or 16 bit) and
 * converts to want_c channels (1 = luma BT.601, 3 = RGB; alpha dropped).
 * want_c = 0 keeps 1 for gray sources, 3 for colour ones. A corrupt or
 * truncated file returns -1 with err naming the file and the problem. */
int ad_png_read(const char *path, int want_c, ad_image *out, char *err, size_t errlen);
int ad_png_read_mem(const char *name, const uint8_t *data, size_t len, int want_c,
                    ad_image *out, char *err, size_t errlen);
/* Writes 8-bit gray or RGB. Plain write (not durable): callers that need
 * durability use ad_png_encode + ad_write_file_durable. */
int ad_png_write(const char *path, const ad_image *im, char *err, size_t errlen);
/* Encodes to a malloc'd buffer; caller frees *data. Same pixels and level
 * give the same bytes (no time chunk). ad_png_encode and ad_png_write use
 * zlib level AD_PNG_DEFAULT_LEVEL: on a 640x480 RGB frame level 3 encodes
 * several times faster than 6 or 9 for files 10-15% larger. */
#define AD_PNG_DEFAULT_LEVEL 3
int ad_png_encode(const ad_image *im, uint8_t **data, size_t *len, char *err, size_t errlen);
int ad_png_encode_level(const ad_image *im, int level, uint8_t **data, size_t *len, char *err,
                        size_t errlen);

/* The PNG images of a folder, the one listing policy of every tool that reads
 * one (train, the map statistics, calibrate, eval, init) and of the replay
 * source: regular files (links followed) named *.png in any case, sorted by
 * name in byte order (the same on every machine, whatever the locale).
 * Hidden entries are ignored; anything else (other files, sub-folders) is
 * skipped and named in one warning. A folder with no PNG image is an error
 * that names what it holds instead. *names are the entries' names, not
 * paths; free them with ad_png_list_free. */
int ad_png_list(const char *dir, char ***names, int *count, char *err, size_t errlen);
void ad_png_list_free(char **names, int count);

/* Gray from n interleaved RGB pixels: BT.601 luma, rounded to nearest,
 * Y = (299 R + 587 G + 114 B + 500) / 1000. The one colour-to-gray
 * conversion: PNGs (ad_image_convert, ad_png_read) and camera frames (the
 * V4L2 source) give the same gray for the same colour (pure green: 150). */
void ad_rgb_to_gray(uint8_t *gray, const uint8_t *rgb, size_t n);

/* Converts channel count (1 <-> 3, 3 -> 1 by ad_rgb_to_gray); dst allocated.
 * -1 for c not 1 or 3. */
int ad_image_convert(ad_image *dst, const ad_image *src, int c);
/* Crop rectangle (must lie inside src); dst allocated. */
int ad_image_crop(ad_image *dst, const ad_image *src, int x, int y, int w, int h,
                  char *err, size_t errlen);
/* Resize: area averaging when shrinking an axis, bilinear (pixel-centre
 * aligned, edges clamped) when enlarging; separable, each axis chosen on
 * its own; dst allocated. -1 for a size out of limits. */
int ad_image_resize(ad_image *dst, const ad_image *src, int w, int h);

/* 8-bit (interleaved) -> planar float in [-1, 1]; out holds c*h*w floats. */
void ad_image_to_float(float *out, const ad_image *im);
/* planar float [-1, 1] -> 8-bit (clamped, rounded); im must be allocated w,h,c. */
void ad_image_from_float(ad_image *im, const float *in);

/* Separable Gaussian blur of one plane (h, w) in place-safe form:
 * out may equal in. tmp holds h*w floats. Kernel radius ceil(3 sigma),
 * borders replicate. sigma <= 0 copies. */
void ad_blur_gaussian(float *out, const float *in, float *tmp, int w, int h, float sigma);

/* Heat-map overlay: map (h, w floats) scaled so lo -> 0 and hi -> 1, coloured
 * with a perceptual map (viridis-like, dark blue to yellow) and alpha-blended
 * over the frame (converted to RGB); dst allocated as RGB. hi <= lo makes a
 * step at lo. -1 for alpha outside [0, 1] or an empty frame. */
int ad_heatmap_overlay(ad_image *dst, const ad_image *frame, const float *map,
                       float lo, float hi, float alpha);
/* Colour for v in [0,1] from the same map. */
void ad_colormap(float v, uint8_t rgb[3]);

#endif

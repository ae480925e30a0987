/* PNG read and write through libpng.
 *
 * libpng reports errors by longjmp; everything that must be freed after a
 * jump lives in a heap context (not in locals modified after setjmp), so a
 * corrupt or truncated file returns an error and leaks nothing. */
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest file ad_png_read accepts: a 16384x16384 RGBA 16-bit image stored
 * raw is 2 GiB, but any real PNG of the sizes we allow is far smaller. */
#define PNG_MAX_FILE_BYTES ((size_t)512 << 20)

struct png_read_ctx {
    const char *name;
    const uint8_t *data;
    size_t len, pos;
    int truncated;
    char msg[200];
    uint8_t *px;          /* decoded pixels, owned until handed to the image */
    png_bytep *rows;
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
    struct png_read_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    /* Ancillary-chunk problems (bad CRC in tEXt, unknown sRGB profile...)
     * do not affect the pixels; stay quiet instead of printing to stderr. */
    (void)png;
    (void)msg;
}

static void png_read_cb(png_structp png, png_bytep out, size_t n)
{
    struct png_read_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos) {
        ctx->truncated = 1;
        png_error(png, "file ends early");
    }
    memcpy(out, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

int ad_image_dims_ok(long w, long h)
{
    return w >= 1 && h >= 1 && w <= AD_IMAGE_MAX_SIDE && h <= AD_IMAGE_MAX_SIDE &&
           (uint64_t)w * (uint64_t)h <= AD_IMAGE_MAX_PIXELS;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Bytes of IDAT payload present in the buffer (chunks walked from the
 * signature; a chunk cut short counts what is there). */
static uint64_t idat_bytes_present(const uint8_t *data, size_t len)
{
    uint64_t total = 0;
    size_t pos = 8;
    while (len - pos >= 8) {
        uint64_t n = be32(data + pos);
        int is_idat = memcmp(data + pos + 4, "IDAT", 4) == 0;
        size_t avail = len - pos - 8;
        if (is_idat) total += n < avail ? n : avail;
        if (n + 4 >= avail) break;
        pos += 8 + (size_t)n + 4;
    }
    return total;
}

static const char *color_type_name(int ct)
{
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    default: return "unknown";
    }
}

static int png_decode(const char *name, const uint8_t *data, size_t len, int want_c,
                      ad_image *out, char *err, size_t errlen)
{
    if (want_c != 0 && want_c != 1 && want_c != 3)
        return ad_err(err, errlen, "%s: asked for %d channels, expected 0, 1 or 3", name, want_c);
    if (len == 0) return ad_err(err, errlen, "%s: empty file, expected a PNG image", name);
    if (len < 8 && png_sig_cmp(data, 0, len) == 0)
        return ad_err(err, errlen, "%s: truncated PNG (file ends in the signature)", name);
    if (len < 8 || png_sig_cmp(data, 0, 8) != 0)
        return ad_err(err, errlen, "%s: not a PNG file (bad signature)", name);

    struct png_read_ctx *ctx = ad_xcalloc(1, sizeof *ctx);
    ctx->name = name;
    ctx->data = data;
    ctx->len = len;
    int rc = -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_error_cb,
                                             png_warning_cb);
    if (!png) ad_die("png_create_read_struct failed (out of memory)");
    png_infop info = png_create_info_struct(png);
    if (!info) ad_die("png_create_info_struct failed (out of memory)");

    if (setjmp(png_jmpbuf(png))) {
        if (ctx->truncated)
            ad_err(err, errlen, "%s: truncated PNG (file ends early)", name);
        else
            ad_err(err, errlen, "%s: corrupt PNG: %s", name, ctx->msg);
        goto done;
    }
    png_set_read_fn(png, ctx, png_read_cb);
    png_set_chunk_cache_max(png, 256);
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if (!ad_image_dims_ok((long)w, (long)h)) {
        ad_err(err, errlen, "%s: image is %ux%u, larger than the %dx%d / %llu-pixel limit",
               name, (unsigned)w, (unsigned)h, AD_IMAGE_MAX_SIDE, AD_IMAGE_MAX_SIDE,
               (unsigned long long)AD_IMAGE_MAX_PIXELS);
        goto done;
    }
    /* Deflate cannot expand more than about 1032:1, so a header that asks
     * for far more pixel data than the file holds is refused before the
     * pixel buffer is allocated (a 60-byte file must not cost 768 MB). */
    uint64_t raw = (uint64_t)h * (1 + ((uint64_t)w * png_get_channels(png, info) * depth + 7) / 8);
    uint64_t idat = idat_bytes_present(data, len);
    if (raw > idat * 1100 + 1024) {
        ad_err(err, errlen, "%s: truncated or corrupt PNG: %llu bytes of image data cannot "
               "hold a %ux%u %s image", name, (unsigned long long)idat, (unsigned)w,
               (unsigned)h, color_type_name(ct));
        goto done;
    }
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    /* Expansion turns a tRNS chunk into an alpha channel; alpha is dropped. */
    if ((ct & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int chans = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((chans != 1 && chans != 3) || rowbytes != (size_t)w * (size_t)chans) {
        ad_err(err, errlen, "%s: unsupported PNG layout (%s, %d-bit gives %d channels)", name,
               color_type_name(ct), depth, chans);
        goto done;
    }
    ctx->px = ad_xmalloc((size_t)w * h * (size_t)chans);
    ctx->rows = ad_xmalloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) ctx->rows[y] = ctx->px + (size_t)y * rowbytes;
    png_read_image(png, ctx->rows);
    png_read_end(png, NULL);

    ad_image src = {.w = (int)w, .h = (int)h, .c = chans, .px = ctx->px};
    if (want_c == 0 || want_c == chans) {
        *out = src;
        ctx->px = NULL;
    } else {
        ad_image_convert(out, &src, want_c);
    }
    rc = 0;
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(ctx->px);
    free(ctx->rows);
    free(ctx);
    return rc;
}

int ad_png_read_mem(const char *name, const uint8_t *data, size_t len, int want_c,
                    ad_image *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    return png_decode(name ? name : "<memory>", data, len, want_c, out, err, errlen);
}

int ad_png_read(const char *path, int want_c, ad_image *out, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if (ad_read_file(path, PNG_MAX_FILE_BYTES, &data, &len, err, errlen) != 0) return -1;
    int rc = ad_png_read_mem(path, data, len, want_c, out, err, errlen);
    free(data);
    return rc;
}

struct png_write_ctx {
    uint8_t *buf;
    size_t len, cap;
    char msg[200];
};

static void png_write_error_cb(png_structp png, png_const_charp msg)
{
    struct png_write_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_write_cb(png_structp png, png_bytep in, size_t n)
{
    struct png_write_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->cap - ctx->len) {
        size_t cap = ctx->cap ? ctx->cap : 4096;
        while (n > cap - ctx->len) cap *= 2;
        ctx->buf = ad_xrealloc(ctx->buf, cap);
        ctx->cap = cap;
    }
    memcpy(ctx->buf + ctx->len, in, n);
    ctx->len += n;
}

static void png_flush_cb(png_structp png) { (void)png; }

int ad_png_encode(const ad_image *im, uint8_t **data, size_t *len, char *err, size_t errlen)
{
    return ad_png_encode_level(im, AD_PNG_DEFAULT_LEVEL, data, len, err, errlen);
}

int ad_png_encode_level(const ad_image *im, int level, uint8_t **data, size_t *len, char *err,
                        size_t errlen)
{
    *data = NULL;
    *len = 0;
    if (level < 0 || level > 9)
        return ad_err(err, errlen, "cannot encode PNG: compression level %d, expected 0..9", level);
    if (!im || !im->px || (im->c != 1 && im->c != 3) || !ad_image_dims_ok(im->w, im->h))
        return ad_err(err, errlen, "cannot encode PNG: image is %dx%dx%d, expected 1 or 3 "
                      "channels and a size within limits",
                      im ? im->w : 0, im ? im->h : 0, im ? im->c : 0);

    struct png_write_ctx *ctx = ad_xcalloc(1, sizeof *ctx);
    png_bytep *rows = ad_xmalloc(sizeof(png_bytep) * (size_t)im->h);
    for (int y = 0; y < im->h; y++) rows[y] = im->px + (size_t)y * im->w * im->c;
    int rc = -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_write_error_cb,
                                              png_warning_cb);
    if (!png) ad_die("png_create_write_struct failed (out of memory)");
    png_infop info = png_create_info_struct(png);
    if (!info) ad_die("png_create_info_struct failed (out of memory)");
    if (setjmp(png_jmpbuf(png))) {
        ad_err(err, errlen, "cannot encode PNG: %s", ctx->msg);
        goto done;
    }
    png_set_write_fn(png, ctx, png_write_cb, png_flush_cb);
    /* Fixed settings and no time chunk: the same pixels give the same bytes
     * (the committed fixtures depend on it). */
    png_set_compression_level(png, level);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 im->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    *data = ctx->buf;
    *len = ctx->len;
    ctx->buf = NULL;
    rc = 0;
done:
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(ctx->buf);
    free(ctx);
    return rc;
}

int ad_png_write(const char *path, const ad_image *im, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char why[AD_ERRLEN];
    if (ad_png_encode(im, &data, &len, why, sizeof why) != 0)
        return ad_err(err, errlen, "%s: %s", path, why);
    FILE *f = fopen(path, "wb");
    if (!f) {
        ad_err(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(data);
        return -1;
    }
    int ok = fwrite(data, 1, len, f) == len;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    free(data);
    if (!ok) {
        remove(path);
        return ad_err(err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

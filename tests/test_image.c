/* Tests of the image module: PNG decoding of every kind (committed samples
 * in fixtures/png made by tools/gen_fixtures), broken files, encode round
 * trips, crop/convert/resize/blur against hand-computed values, float
 * conversion, colour map and overlay, and the generated parts fixtures. */
#include "test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

static char *fixture(const char *rel)
{
    size_t n = strlen(FIXTURES_DIR) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", FIXTURES_DIR, rel);
    return p;
}

/* ---- the PNG samples' expected pixels (see tools/gen_fixtures.c) ------- */

#define SAMPLE_W 13
#define SAMPLE_H 7

static uint32_t sample_value(int x, int y, int ch)
{
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)ch * 83492791u;
    h *= 2654435761u;
    return h >> 8;
}

/* Source sample of depth d to 8 bits: exact replication for 1/2/4 bits,
 * rounding v * 255 / 65535 for 16 bits. */
static uint8_t to8(uint32_t v, int depth)
{
    if (depth == 16) return (uint8_t)((v * 255u + 32767u) / 65535u);
    if (depth == 8) return (uint8_t)v;
    return (uint8_t)(v * 255u / ((1u << depth) - 1));
}

typedef struct sample_kind {
    const char *file;
    int chans;   /* channels in the file (palette counts 1) */
    int depth, palette;
} sample_kind;

static const sample_kind sample_kinds[] = {
    {"gray1", 1, 1, 0},      {"gray2", 1, 2, 0},       {"gray4", 1, 4, 0},
    {"gray8", 1, 8, 0},      {"gray16", 1, 16, 0},     {"gray8_trns", 1, 8, 0},
    {"gray2_trns", 1, 2, 0}, {"graya8", 2, 8, 0},      {"graya16", 2, 16, 0},
    {"rgb8", 3, 8, 0},       {"rgb16", 3, 16, 0},      {"rgb8_trns", 3, 8, 0},
    {"rgba8", 4, 8, 0},      {"rgba16", 4, 16, 0},     {"pal1", 1, 1, 1},
    {"pal2", 1, 2, 1},       {"pal4", 1, 4, 1},        {"pal8", 1, 8, 1},
    {"pal4_trns", 1, 4, 1},  {"pal8_trns", 1, 8, 1},   {"rgb8_adam7", 3, 8, 0},
    {"gray16_adam7", 1, 16, 0}, {"pal2_adam7", 1, 2, 1},
};

/* Expected decoded colour of (x, y): rgb[3] (gray sources give r = g = b). */
static void sample_expected(const sample_kind *k, int x, int y, uint8_t rgb[3])
{
    uint32_t mask = k->depth == 16 ? 65535u : (1u << k->depth) - 1;
    if (k->palette) {
        int i = (int)(sample_value(x, y, 0) & mask);
        rgb[0] = (uint8_t)(i * 53 + 17);
        rgb[1] = (uint8_t)(i * 101 + 3);
        rgb[2] = (uint8_t)(i * 29 + 200);
    } else if (k->chans <= 2) {
        rgb[0] = rgb[1] = rgb[2] = to8(sample_value(x, y, 0) & mask, k->depth);
    } else {
        for (int ch = 0; ch < 3; ch++) rgb[ch] = to8(sample_value(x, y, ch) & mask, k->depth);
    }
}

static uint8_t luma(const uint8_t rgb[3])
{
    return (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
}

static void png_every_kind_decodes_exactly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sample_kinds / sizeof sample_kinds[0]; i++) {
        const sample_kind *k = &sample_kinds[i];
        char rel[64];
        snprintf(rel, sizeof rel, "png/%s.png", k->file);
        char *path = fixture(rel);
        int colour = k->palette || k->chans >= 3;
        for (int want = 0; want <= 3; want++) {
            if (want == 2) continue;
            ad_image im;
            char err[AD_ERRLEN] = "";
            if (ad_png_read(path, want, &im, err, sizeof err) != 0) fail_msg("%s: %s", k->file, err);
            int c = want ? want : colour ? 3 : 1;
            assert_int_equal(im.w, SAMPLE_W);
            assert_int_equal(im.h, SAMPLE_H);
            assert_int_equal(im.c, c);
            for (int y = 0; y < SAMPLE_H; y++) {
                for (int x = 0; x < SAMPLE_W; x++) {
                    uint8_t rgb[3];
                    sample_expected(k, x, y, rgb);
                    const uint8_t *p = im.px + ((size_t)y * SAMPLE_W + x) * c;
                    if (c == 3) {
                        if (p[0] != rgb[0] || p[1] != rgb[1] || p[2] != rgb[2])
                            fail_msg("%s want %d at (%d,%d): got %d %d %d, expected %d %d %d",
                                     k->file, want, x, y, p[0], p[1], p[2], rgb[0], rgb[1],
                                     rgb[2]);
                    } else {
                        uint8_t e = colour ? luma(rgb) : rgb[0];
                        if (p[0] != e)
                            fail_msg("%s want %d at (%d,%d): got %d, expected %d", k->file,
                                     want, x, y, p[0], e);
                    }
                }
            }
            ad_image_free(&im);
        }
        free(path);
    }
}

/* Every kind decoded, encoded by us and decoded again gives the same pixels,
 * from memory and through a file. */
static void png_round_trips_every_kind(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("image");
    for (size_t i = 0; i < sizeof sample_kinds / sizeof sample_kinds[0]; i++) {
        char rel[64], err[AD_ERRLEN] = "";
        snprintf(rel, sizeof rel, "png/%s.png", sample_kinds[i].file);
        char *path = fixture(rel);
        for (int want = 1; want <= 3; want += 2) {
            ad_image a, b, c2;
            if (ad_png_read(path, want, &a, err, sizeof err) != 0) fail_msg("%s", err);
            uint8_t *data = NULL;
            size_t len = 0;
            assert_int_equal(ad_png_encode(&a, &data, &len, err, sizeof err), 0);
            assert_true(len > 8);
            assert_int_equal(ad_png_read_mem("mem", data, len, 0, &b, err, sizeof err), 0);
            assert_int_equal(b.c, want);
            assert_memory_equal(a.px, b.px, (size_t)a.w * a.h * a.c);
            char out[1024];
            snprintf(out, sizeof out, "%s/%s_%d.png", dir, sample_kinds[i].file, want);
            assert_int_equal(ad_png_write(out, &a, err, sizeof err), 0);
            assert_int_equal(ad_png_read(out, 0, &c2, err, sizeof err), 0);
            assert_int_equal(c2.c, want);
            assert_memory_equal(a.px, c2.px, (size_t)a.w * a.h * a.c);
            /* Same pixels, same bytes: the written file is the encoded buffer. */
            uint8_t *disk = NULL;
            size_t disk_len = 0;
            assert_int_equal(ad_read_file(out, 1 << 20, &disk, &disk_len, err, sizeof err), 0);
            assert_int_equal(disk_len, len);
            assert_memory_equal(disk, data, len);
            free(disk);
            free(data);
            ad_image_free(&a);
            ad_image_free(&b);
            ad_image_free(&c2);
        }
        free(path);
    }
    ts_rmtree(dir);
    free(dir);
}

static void png_round_trips_large_random_image(void **state)
{
    (void)state;
    ad_rng rng;
    ad_rng_seed(&rng, 3);
    for (int c = 1; c <= 3; c += 2) {
        ad_image a, b;
        assert_int_equal(ad_image_alloc(&a, 301, 97, c), 0);
        for (size_t i = 0; i < (size_t)a.w * a.h * c; i++) a.px[i] = (uint8_t)ad_rng_u64(&rng);
        uint8_t *data = NULL;
        size_t len = 0;
        char err[AD_ERRLEN];
        assert_int_equal(ad_png_encode(&a, &data, &len, err, sizeof err), 0);
        assert_int_equal(ad_png_read_mem("rand", data, len, 0, &b, err, sizeof err), 0);
        assert_int_equal(b.w, 301);
        assert_int_equal(b.h, 97);
        assert_int_equal(b.c, c);
        assert_memory_equal(a.px, b.px, (size_t)a.w * a.h * c);
        free(data);
        ad_image_free(&a);
        ad_image_free(&b);
    }
}

static void png_encode_levels(void **state)
{
    (void)state;
    ad_image a, b;
    assert_int_equal(ad_image_alloc(&a, 120, 80, 3), 0);
    for (int i = 0; i < 120 * 80 * 3; i++) a.px[i] = (uint8_t)((i / 3 % 120) + (i / 360) * 2);
    char err[AD_ERRLEN];
    size_t prev = 0;
    for (int level = 0; level <= 9; level += 3) {
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ad_png_encode_level(&a, level, &data, &len, err, sizeof err), 0);
        if (level == 3) assert_true(len * 4 < prev);   /* 0 stores, the others compress */
        if (level > 3) assert_true(len <= prev);
        prev = len;
        assert_int_equal(ad_png_read_mem("lvl", data, len, 0, &b, err, sizeof err), 0);
        assert_memory_equal(a.px, b.px, (size_t)120 * 80 * 3);
        ad_image_free(&b);
        free(data);
    }
    uint8_t *data = (uint8_t *)1;
    size_t len = 0;
    assert_int_equal(ad_png_encode_level(&a, 10, &data, &len, err, sizeof err), -1);
    assert_string_equal(err, "cannot encode PNG: compression level 10, expected 0..9");
    assert_null(data);
    ad_image_free(&a);
}

/* Each broken sample is refused with a message naming the file and saying
 * what is wrong. */
static void png_broken_files_are_refused(void **state)
{
    (void)state;
    static const struct { const char *file, *message; } cases[] = {
        {"bad_empty.png", "empty file, expected a PNG image"},
        {"bad_signature.png", "not a PNG file (bad signature)"},
        {"bad_idat_crc.png", "corrupt PNG: IDAT: incorrect data check"},
        {"bad_ihdr_crc.png", "corrupt PNG: IHDR: CRC error"},
        {"bad_zlib.png", "corrupt PNG: IDAT: "},
        {"bad_zero_width.png", "corrupt PNG: Invalid IHDR data"},
        {"bad_bit_depth.png", "corrupt PNG: Invalid IHDR data"},
        {"bad_short_data.png", "corrupt PNG: Not enough image data"},
        {"bad_huge_dims.png", "image is 20000x20000, larger than the 16384x16384"},
        {"bad_too_wide.png", "image is 16385x1, larger than the 16384x16384"},
        {"bad_max_dims_tiny_data.png",
         "truncated or corrupt PNG: 10 bytes of image data cannot hold a 16384x16384 RGB image"},
        {"truncated_in_signature.png", "truncated PNG (file ends in the signature)"},
        {"truncated_in_ihdr.png", "truncated PNG (file ends early)"},
        {"truncated_in_idat.png", "truncated PNG (file ends early)"},
        {"truncated_no_iend.png", "truncated PNG (file ends early)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[128], err[AD_ERRLEN] = "";
        snprintf(rel, sizeof rel, "png/%s", cases[i].file);
        char *path = fixture(rel);
        ad_image im = {.w = 99, .px = (uint8_t *)path};
        assert_int_equal(ad_png_read(path, 0, &im, err, sizeof err), -1);
        assert_null(im.px);
        assert_int_equal(im.w, 0);
        char expected[AD_ERRLEN];
        snprintf(expected, sizeof expected, "%s: %s", path, cases[i].message);
        if (strncmp(err, expected, strlen(expected)) != 0)
            fail_msg("%s: got '%s', expected '%s...'", cases[i].file, err, expected);
        free(path);
    }
}

/* Every prefix of a valid file is refused (never a crash, never a partial
 * image), and so is every single-byte change that breaks it. */
static void png_every_truncation_and_byte_flip_is_handled(void **state)
{
    (void)state;
    char *path = fixture("png/rgb8_adam7.png");
    uint8_t *data = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(path, 1 << 20, &data, &len, err, sizeof err), 0);
    for (size_t n = 0; n < len; n++) {
        ad_image im;
        err[0] = 0;
        assert_int_equal(ad_png_read_mem("cut.png", data, n, 0, &im, err, sizeof err), -1);
        assert_null(im.px);
        assert_true(strncmp(err, "cut.png: ", 9) == 0);
    }
    uint8_t *copy = malloc(len);
    int refused = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, data, len);
        copy[i] ^= 0x20;
        ad_image im;
        if (ad_png_read_mem("flip.png", copy, len, 0, &im, err, sizeof err) == 0) {
            assert_non_null(im.px);
            ad_image_free(&im);
        } else {
            assert_null(im.px);
            assert_true(strncmp(err, "flip.png: ", 10) == 0);
            refused++;
        }
    }
    /* Only flips inside the CRC-protected but ignored parts could pass. */
    assert_true(refused > (int)len * 9 / 10);
    free(copy);
    free(data);
    free(path);
}

static void png_read_names_missing_and_directory(void **state)
{
    (void)state;
    ad_image im;
    char err[AD_ERRLEN];
    assert_int_equal(ad_png_read("/nonexistent/x.png", 0, &im, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.png"));
    char *dir = ts_tmpdir("image");
    assert_int_equal(ad_png_read(dir, 0, &im, err, sizeof err), -1);
    assert_non_null(strstr(err, dir));
    assert_int_equal(ad_png_read(dir, 2, &im, err, sizeof err), -1);
    /* Writing into a missing folder fails with the path named. */
    ad_image a;
    assert_int_equal(ad_image_alloc(&a, 4, 4, 1), 0);
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/missing/out.png", dir);
    assert_int_equal(ad_png_write(bad, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, bad));
    ad_image_free(&a);
    /* An invalid image is not encoded. */
    ad_image none = {0};
    uint8_t *data = (uint8_t *)1;
    size_t len = 1;
    assert_int_equal(ad_png_encode(&none, &data, &len, err, sizeof err), -1);
    assert_null(data);
    ts_rmtree(dir);
    free(dir);
}

static void image_alloc_refuses_bad_sizes(void **state)
{
    (void)state;
    ad_image im;
    assert_int_equal(ad_image_alloc(&im, 0, 5, 1), -1);
    assert_null(im.px);
    assert_int_equal(ad_image_alloc(&im, 5, 5, 2), -1);
    assert_int_equal(ad_image_alloc(&im, 16385, 1, 1), -1);
    assert_int_equal(ad_image_alloc(&im, -3, 4, 1), -1);
    assert_true(ad_image_dims_ok(16384, 16384));
    assert_false(ad_image_dims_ok(16384, 16385));
    assert_int_equal(ad_image_alloc(&im, 3, 2, 3), 0);
    for (int i = 0; i < 18; i++) assert_int_equal(im.px[i], 0);
    ad_image_free(&im);
    ad_image_free(&im);   /* safe twice */
    assert_null(im.px);
}

static void convert_uses_bt601_luma(void **state)
{
    (void)state;
    ad_image rgb, g, back;
    assert_int_equal(ad_image_alloc(&rgb, 5, 1, 3), 0);
    const uint8_t px[15] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30};
    memcpy(rgb.px, px, 15);
    assert_int_equal(ad_image_convert(&g, &rgb, 1), 0);
    /* 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1,
     * 0.299*10 + 0.587*20 + 0.114*30 = 18.1 */
    const uint8_t want[5] = {76, 150, 29, 255, 18};
    assert_memory_equal(g.px, want, 5);
    assert_int_equal(ad_image_convert(&back, &g, 3), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(back.px[3 * i], want[i]);
        assert_int_equal(back.px[3 * i + 2], want[i]);
    }
    ad_image_free(&rgb);
    ad_image_free(&g);
    ad_image_free(&back);
}

/* ad_png_list with stderr (where ad_log writes) captured into *log. */
static int png_list_logged(const char *dir, char ***names, int *n, char *err, size_t errlen,
                           char **log)
{
    char path[1100];
    snprintf(path, sizeof path, "%s.log", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    int rc = ad_png_list(dir, names, n, err, errlen);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    uint8_t *text;
    size_t len;
    char e[AD_ERRLEN];
    assert_int_equal(ad_read_file(path, 1 << 20, &text, &len, e, sizeof e), 0);
    unlink(path);
    *log = (char *)text;
    return rc;
}

/* The one folder listing every tool and the replay source use: *.png in any
 * case, byte order, links followed; hidden entries ignored; other files and
 * sub-folders skipped and named in one warning; no PNG at all an error that
 * says what the folder holds. */
static void png_list_policy(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("pnglist"), path[1100], target[1100], err[AD_ERRLEN];
    ad_image im = {0};
    assert_int_equal(ad_image_alloc(&im, 4, 4, 1), 0);
    const char *pngs[] = {"b.png", "A.PNG", "c.Png", "sub/inner.png"};
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, pngs[i]);
        assert_int_equal(ad_png_write(path, &im, err, sizeof err), 0);
    }
    free(ts_write_text(dir, "notes.txt", "x"));
    free(ts_write_text(dir, "image.png.bak", "x"));
    free(ts_write_text(dir, ".hidden.png", "x"));
    snprintf(path, sizeof path, "%s/link.png", dir);
    snprintf(target, sizeof target, "%s/b.png", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/dangling.png", dir);
    assert_int_equal(symlink("/nonexistent/anomalyd.png", path), 0);

    char **names = NULL, *log = NULL;
    int n = 0;
    assert_int_equal(png_list_logged(dir, &names, &n, err, sizeof err, &log), 0);
    const char *want[] = {"A.PNG", "b.png", "c.Png", "link.png"};
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) assert_string_equal(names[i], want[i]);
    ad_png_list_free(names, n);
    /* one warning naming every skipped entry, sorted; hidden ones unnamed */
    char expect[1400];
    snprintf(expect, sizeof expect, "%s: skipping 4 entries that are not PNG images (*.png): "
             "dangling.png, image.png.bak, notes.txt, sub/\n", dir);
    const char *line = strstr(log, expect);
    assert_non_null(line);
    assert_null(strstr(line + strlen(expect), "skipping")); /* one warning */
    assert_null(strstr(log, ".hidden"));
    free(log);

    /* no PNG: an error that names what is there instead */
    snprintf(path, sizeof path, "%s/sub", dir);
    snprintf(target, sizeof target, "%s/sub/inner.png", dir);
    assert_int_equal(unlink(target), 0);
    free(ts_write_text(path, "readme.txt", "x"));
    snprintf(target, sizeof target, "%s/sub/deeper", dir);
    assert_int_equal(mkdir(target, 0755), 0);
    assert_int_equal(png_list_logged(path, &names, &n, err, sizeof err, &log), -1);
    assert_null(names);
    assert_int_equal(n, 0);
    snprintf(expect, sizeof expect, "%s: no PNG images (*.png) in the folder; it holds only "
             "deeper/, readme.txt; pass the folder that holds the images themselves", path);
    assert_non_null(strstr(err, expect));
    assert_null(strstr(log, "skipping")); /* the error says it, no warning too */
    free(log);
    assert_int_equal(ad_png_list("/nonexistent/anomalyd-folder", &names, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/anomalyd-folder: cannot open the folder"));
    ad_image_free(&im);
    ts_rmtree(dir);
    free(dir);
}

static void crop_copies_rectangle_and_refuses_outside(void **state)
{
    (void)state;
    ad_image im, out;
    char err[AD_ERRLEN];
    assert_int_equal(ad_image_alloc(&im, 6, 5, 3), 0);
    for (int i = 0; i < 90; i++) im.px[i] = (uint8_t)i;
    assert_int_equal(ad_image_crop(&out, &im, 2, 1, 3, 2, err, sizeof err), 0);
    assert_int_equal(out.w, 3);
    assert_int_equal(out.h, 2);
    /* (x=2, y=1) is pixel 8 -> bytes 24..26; second row starts at pixel 14. */
    assert_int_equal(out.px[0], 24);
    assert_int_equal(out.px[8], 32);
    assert_int_equal(out.px[9], 42);
    ad_image_free(&out);
    assert_int_equal(ad_image_crop(&out, &im, 4, 0, 3, 2, err, sizeof err), -1);
    assert_string_equal(err, "crop 3x2 at (4,0) does not lie inside the 6x5 image");
    assert_null(out.px);
    assert_int_equal(ad_image_crop(&out, &im, 0, 0, 0, 2, err, sizeof err), -1);
    assert_int_equal(ad_image_crop(&out, &im, -1, 0, 2, 2, err, sizeof err), -1);
    assert_int_equal(ad_image_crop(&out, &im, 0, 0, 6, 5, err, sizeof err), 0);
    assert_memory_equal(out.px, im.px, 90);
    ad_image_free(&out);
    ad_image_free(&im);
}

static void resize_row(const uint8_t *in, int n_in, int n_out, const uint8_t *want)
{
    ad_image a, b;
    assert_int_equal(ad_image_alloc(&a, n_in, 1, 1), 0);
    memcpy(a.px, in, (size_t)n_in);
    assert_int_equal(ad_image_resize(&b, &a, n_out, 1), 0);
    for (int i = 0; i < n_out; i++)
        if (b.px[i] != want[i])
            fail_msg("%d -> %d: pixel %d is %d, expected %d", n_in, n_out, i, b.px[i], want[i]);
    /* The same along the other axis. */
    ad_image ac, bc;
    assert_int_equal(ad_image_alloc(&ac, 1, n_in, 1), 0);
    memcpy(ac.px, in, (size_t)n_in);
    assert_int_equal(ad_image_resize(&bc, &ac, 1, n_out), 0);
    assert_memory_equal(bc.px, want, (size_t)n_out);
    ad_image_free(&a);
    ad_image_free(&b);
    ad_image_free(&ac);
    ad_image_free(&bc);
}

static void resize_matches_hand_computed_values(void **state)
{
    (void)state;
    /* Shrink by 2: each output averages two inputs. */
    resize_row((const uint8_t[]){0, 10, 20, 30}, 4, 2, (const uint8_t[]){5, 25});
    /* Shrink by 1.5: out0 = (0 + 0.5*30)/1.5 = 10, out1 = (0.5*30 + 60)/1.5 = 50. */
    resize_row((const uint8_t[]){0, 30, 60}, 3, 2, (const uint8_t[]){10, 50});
    /* 5 -> 2 (s = 2.5): (10+20+0.5*40)/2.5 = 20, (0.5*40+80+100)/2.5 = 80. */
    resize_row((const uint8_t[]){10, 20, 40, 80, 100}, 5, 2, (const uint8_t[]){20, 80});
    /* To one pixel: the mean, 37.5 rounds to 38. */
    resize_row((const uint8_t[]){0, 50, 100, 0}, 4, 1, (const uint8_t[]){38});
    /* Enlarge 2 -> 4, centres aligned: x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped). */
    resize_row((const uint8_t[]){0, 100}, 2, 4, (const uint8_t[]){0, 25, 75, 100});
    /* Enlarge 3 -> 5: x = (i+0.5)*0.6-0.5 = -0.2, 0.4, 1.0, 1.6, 2.2. */
    resize_row((const uint8_t[]){0, 100, 200}, 3, 5, (const uint8_t[]){0, 40, 100, 160, 200});
    /* One pixel enlarged stays constant. */
    resize_row((const uint8_t[]){77}, 1, 3, (const uint8_t[]){77, 77, 77});

    /* 2x2 -> 3x3, both axes bilinear: centre is the mean of the four. */
    ad_image a, b;
    assert_int_equal(ad_image_alloc(&a, 2, 2, 1), 0);
    memcpy(a.px, (const uint8_t[]){0, 60, 120, 180}, 4);
    assert_int_equal(ad_image_resize(&b, &a, 3, 3), 0);
    const uint8_t want3[9] = {0, 30, 60, 60, 90, 120, 120, 150, 180};
    assert_memory_equal(b.px, want3, 9);
    ad_image_free(&b);
    /* Mixed: shrink x (2 -> 1, average) and enlarge y (2 -> 4). Columns
     * average to 30 and 150; y = -0.25, 0.25, 0.75, 1.25. */
    assert_int_equal(ad_image_resize(&b, &a, 1, 4), 0);
    const uint8_t want_mixed[4] = {30, 60, 120, 150};
    assert_memory_equal(b.px, want_mixed, 4);
    ad_image_free(&b);
    ad_image_free(&a);

    /* RGB: channels are resized independently. */
    assert_int_equal(ad_image_alloc(&a, 4, 1, 3), 0);
    memcpy(a.px, (const uint8_t[]){0, 255, 10, 10, 255, 20, 20, 0, 30, 30, 0, 40}, 12);
    assert_int_equal(ad_image_resize(&b, &a, 2, 1), 0);
    const uint8_t want_rgb[6] = {5, 255, 15, 25, 0, 35};
    assert_memory_equal(b.px, want_rgb, 6);
    ad_image_free(&b);
    ad_image_free(&a);
}

static void resize_keeps_constant_images_and_mean(void **state)
{
    (void)state;
    static const int sizes[][2] = {{64, 64}, {17, 23}, {128, 40}, {5, 200}, {1, 1}, {63, 65}};
    ad_image a, b;
    assert_int_equal(ad_image_alloc(&a, 64, 48, 3), 0);
    memset(a.px, 173, (size_t)64 * 48 * 3);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(ad_image_resize(&b, &a, sizes[i][0], sizes[i][1]), 0);
        for (size_t j = 0; j < (size_t)b.w * b.h * 3; j++) assert_int_equal(b.px[j], 173);
        ad_image_free(&b);
    }
    ad_image_free(&a);
    /* Shrinking by an integer factor averages blocks exactly, so the mean of
     * a random image is kept (up to rounding of each output pixel). */
    ad_rng rng;
    ad_rng_seed(&rng, 5);
    assert_int_equal(ad_image_alloc(&a, 96, 64, 1), 0);
    double mean_a = 0;
    for (int i = 0; i < 96 * 64; i++) mean_a += a.px[i] = (uint8_t)ad_rng_below(&rng, 256);
    assert_int_equal(ad_image_resize(&b, &a, 32, 16), 0);
    double mean_b = 0;
    for (int i = 0; i < 32 * 16; i++) mean_b += b.px[i];
    assert_true(fabs(mean_a / (96 * 64) - mean_b / (32 * 16)) < 0.5);
    /* Block (0,0) is 3x4 pixels. */
    double block = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 3; x++) block += a.px[y * 96 + x];
    assert_int_equal(b.px[0], (int)floor(block / 12 + 0.5));
    ad_image_free(&b);
    ad_image_free(&a);
    assert_int_equal(ad_image_resize(&b, &a, 4, 4), -1);   /* freed source */
}

/* Plain reference for one axis: the weight of input j in output i. */
static double ref_weight(int i, int j, int n_in, int n_out)
{
    double s = (double)n_in / n_out;
    if (n_out < n_in) {
        double lo = fmax(j, i * s), hi = fmin(j + 1, (i + 1) * s);
        return hi > lo ? (hi - lo) / s : 0.0;
    }
    double x = fmin(fmax((i + 0.5) * s - 0.5, 0.0), n_in - 1);
    double d = fabs(x - j);
    return d < 1.0 ? 1.0 - d : 0.0;
}

/* The separable resampler against a direct 2D sum over every input pixel. */
static void resize_matches_direct_reference(void **state)
{
    (void)state;
    static const int cases[][4] = {{37, 23, 10, 9},  {10, 9, 37, 23}, {31, 17, 45, 5},
                                   {8, 40, 21, 13},  {64, 64, 24, 24}, {7, 5, 7, 11}};
    ad_rng rng;
    ad_rng_seed(&rng, 11);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int wi = cases[t][0], hi = cases[t][1], wo = cases[t][2], ho = cases[t][3];
        ad_image a, b;
        assert_int_equal(ad_image_alloc(&a, wi, hi, 3), 0);
        for (int i = 0; i < wi * hi * 3; i++) a.px[i] = (uint8_t)ad_rng_below(&rng, 256);
        assert_int_equal(ad_image_resize(&b, &a, wo, ho), 0);
        for (int y = 0; y < ho; y++)
            for (int x = 0; x < wo; x++)
                for (int ch = 0; ch < 3; ch++) {
                    double acc = 0.0;
                    for (int v = 0; v < hi; v++) {
                        double wy = ref_weight(y, v, hi, ho);
                        if (wy == 0.0) continue;
                        for (int u = 0; u < wi; u++)
                            acc += wy * ref_weight(x, u, wi, wo) * a.px[(v * wi + u) * 3 + ch];
                    }
                    int got = b.px[(y * wo + x) * 3 + ch];
                    if (fabs(got - acc) > 0.51)
                        fail_msg("%dx%d -> %dx%d at (%d,%d,%d): %d vs reference %.3f", wi, hi,
                                 wo, ho, x, y, ch, got, acc);
                }
        ad_image_free(&a);
        ad_image_free(&b);
    }
}

static void float_conversion_round_trips(void **state)
{
    (void)state;
    ad_image im, back;
    assert_int_equal(ad_image_alloc(&im, 256, 1, 3), 0);
    for (int i = 0; i < 256; i++) {
        im.px[3 * i] = (uint8_t)i;
        im.px[3 * i + 1] = (uint8_t)(255 - i);
        im.px[3 * i + 2] = 128;
    }
    float *f = malloc(sizeof(float) * 256 * 3);
    ad_image_to_float(f, &im);
    /* Planar: plane 0 is R. */
    assert_float_equal(f[0], -1.0f, 1e-6);
    assert_float_equal(f[255], 1.0f, 1e-6);
    assert_float_equal(f[256], 1.0f, 1e-6);
    assert_float_equal(f[512], 128.0f / 127.5f - 1.0f, 1e-6);
    assert_int_equal(ad_image_alloc(&back, 256, 1, 3), 0);
    ad_image_from_float(&back, f);
    assert_memory_equal(back.px, im.px, 256 * 3);
    /* Out of range and NaN clamp. */
    f[0] = -3.0f;
    f[1] = 7.0f;
    f[2] = NAN;
    f[3] = 0.0f;   /* 127.5 rounds up */
    ad_image_from_float(&back, f);
    assert_int_equal(back.px[0], 0);
    assert_int_equal(back.px[3], 255);
    assert_int_equal(back.px[6], 0);
    assert_int_equal(back.px[9], 128);
    free(f);
    ad_image_free(&im);
    ad_image_free(&back);
}

/* sigma = 1, radius 3: k_j = exp(-j^2/2) / (1 + 2 (e^-0.5 + e^-2 + e^-4.5)). */
static const double K1[4] = {0.3990502737, 0.2420362337, 0.0540055791, 0.0044330484};

static void blur_matches_hand_computed_kernel(void **state)
{
    (void)state;
    enum { W = 11, H = 9 };
    float in[W * H] = {0}, out[W * H], tmp[W * H];
    in[4 * W + 5] = 1.0f;   /* impulse at (5, 4) */
    ad_blur_gaussian(out, in, tmp, W, H, 1.0f);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int dx = abs(x - 5), dy = abs(y - 4);
            double want = dx <= 3 && dy <= 3 ? K1[dx] * K1[dy] : 0.0;
            assert_float_equal(out[y * W + x], want, 1e-6);
        }
    }
    /* Borders replicate: a 1 in the first column of a row. For x = 0 every
     * tap left of the border reads it: k0 + k1 + k2 + k3 = 0.6995. */
    float row[W] = {1.0f}, rout[W], rtmp[W];
    ad_blur_gaussian(rout, row, rtmp, W, 1, 1.0f);
    assert_float_equal(rout[0], K1[0] + K1[1] + K1[2] + K1[3], 1e-6);
    assert_float_equal(rout[1], K1[1] + K1[2] + K1[3], 1e-6);
    assert_float_equal(rout[2], K1[2] + K1[3], 1e-6);
    assert_float_equal(rout[3], K1[3], 1e-6);
    assert_float_equal(rout[4], 0.0, 1e-7);
    /* Linear ramp is unchanged in the interior (symmetric kernel). */
    float ramp[W];
    for (int x = 0; x < W; x++) ramp[x] = (float)x;
    ad_blur_gaussian(rout, ramp, rtmp, W, 1, 1.0f);
    for (int x = 3; x < W - 3; x++) assert_float_equal(rout[x], (float)x, 1e-5);
    /* sigma = 0.5 -> radius 2: k0 = 1/(1 + 2e^-2 + 2e^-8) = 0.7865707,
     * k1 = e^-2 k0 = 0.1064508; (5,4) gets k0^2, (6,4) k0 k1, (7,4) k0 k2. */
    ad_blur_gaussian(out, in, tmp, W, H, 0.5f);
    assert_float_equal(out[4 * W + 5], 0.7865707 * 0.7865707, 1e-6);
    assert_float_equal(out[4 * W + 6], 0.7865707 * 0.1064508, 1e-6);
    assert_float_equal(out[4 * W + 7], 0.7865707 * 0.7865707 * 0.00033546, 1e-6);
    assert_float_equal(out[4 * W + 8], 0.0f, 1e-9);
}

/* The separable blur against a direct 2D convolution with clamped indices. */
static void blur_matches_direct_reference(void **state)
{
    (void)state;
    enum { W = 23, H = 17 };
    float in[W * H], out[W * H], tmp[W * H];
    ad_rng rng;
    ad_rng_seed(&rng, 13);
    for (int i = 0; i < W * H; i++) in[i] = ad_rng_uniform(&rng) * 2.0f - 1.0f;
    static const float sigmas[] = {0.7f, 1.5f, 3.0f, 6.0f};
    for (size_t s = 0; s < sizeof sigmas / sizeof sigmas[0]; s++) {
        double sg = sigmas[s];
        int r = (int)ceil(3.0 * sg);
        double norm = 0.0;
        for (int j = -r; j <= r; j++) norm += exp(-j * j / (2 * sg * sg));
        ad_blur_gaussian(out, in, tmp, W, H, sigmas[s]);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double acc = 0.0;
                for (int dy = -r; dy <= r; dy++)
                    for (int dx = -r; dx <= r; dx++) {
                        int yy = y + dy < 0 ? 0 : y + dy >= H ? H - 1 : y + dy;
                        int xx = x + dx < 0 ? 0 : x + dx >= W ? W - 1 : x + dx;
                        acc += exp(-(dx * dx + dy * dy) / (2 * sg * sg)) / (norm * norm) *
                               in[yy * W + xx];
                    }
                assert_float_equal(out[y * W + x], acc, 2e-5);
            }
    }
}

static void blur_in_place_constant_and_copy(void **state)
{
    (void)state;
    enum { W = 37, H = 29 };
    float *a = malloc(sizeof(float) * W * H), *b = malloc(sizeof(float) * W * H);
    float *tmp = malloc(sizeof(float) * W * H);
    ad_rng rng;
    ad_rng_seed(&rng, 9);
    for (int i = 0; i < W * H; i++) a[i] = ad_rng_uniform(&rng);
    ad_blur_gaussian(b, a, tmp, W, H, 2.5f);
    ad_blur_gaussian(a, a, tmp, W, H, 2.5f);   /* in place */
    assert_memory_equal(a, b, sizeof(float) * W * H);
    for (int i = 0; i < W * H; i++) a[i] = 0.25f;
    ad_blur_gaussian(b, a, tmp, W, H, 4.0f);
    for (int i = 0; i < W * H; i++) assert_float_equal(b[i], 0.25f, 1e-6);
    /* A kernel wider than the image still replicates borders. */
    ad_blur_gaussian(b, a, tmp, W, H, 30.0f);
    for (int i = 0; i < W * H; i++) assert_float_equal(b[i], 0.25f, 1e-5);
    a[5] = 3.0f;
    ad_blur_gaussian(b, a, tmp, W, H, 0.0f);
    assert_memory_equal(a, b, sizeof(float) * W * H);
    free(a);
    free(b);
    free(tmp);
}

static void colormap_is_perceptually_ordered(void **state)
{
    (void)state;
    uint8_t c[3];
    ad_colormap(0.0f, c);
    assert_true(c[2] > c[0] && c[2] > c[1]);   /* dark blue-violet */
    assert_true(luma(c) < 50);
    ad_colormap(1.0f, c);
    assert_true(c[0] > 200 && c[1] > 200 && c[2] < 80);   /* yellow */
    ad_colormap(-5.0f, c);
    uint8_t lo[3];
    ad_colormap(0.0f, lo);
    assert_memory_equal(c, lo, 3);
    ad_colormap(NAN, c);
    assert_memory_equal(c, lo, 3);
    ad_colormap(0.5f, c);   /* exactly the middle stop */
    assert_int_equal(c[0], 34);
    assert_int_equal(c[1], 134);
    assert_int_equal(c[2], 138);
    /* Luma never decreases along the map and rises a lot overall. */
    int prev = -1, first = 0, last = 0;
    for (int i = 0; i <= 1000; i++) {
        ad_colormap(i / 1000.0f, c);
        int y = 299 * c[0] + 587 * c[1] + 114 * c[2];
        assert_true(y >= prev - 1000);   /* rounding of single channels */
        if (i == 0) first = y;
        last = y;
        prev = y;
    }
    assert_true(last - first > 150 * 1000);
}

static void overlay_blends_colormap_over_frame(void **state)
{
    (void)state;
    ad_image frame, out;
    assert_int_equal(ad_image_alloc(&frame, 3, 1, 1), 0);
    memcpy(frame.px, (const uint8_t[]){100, 100, 200}, 3);
    const float map[3] = {0.0f, 4.0f, 2.0f};
    uint8_t c0[3], c1[3], cm[3];
    ad_colormap(0.0f, c0);
    ad_colormap(1.0f, c1);
    ad_colormap(0.5f, cm);
    assert_int_equal(ad_heatmap_overlay(&out, &frame, map, 0.0f, 4.0f, 0.5f), 0);
    assert_int_equal(out.c, 3);
    for (int ch = 0; ch < 3; ch++) {
        assert_int_equal(out.px[ch], (int)floor(0.5 * 100 + 0.5 * c0[ch] + 0.5));
        assert_int_equal(out.px[3 + ch], (int)floor(0.5 * 100 + 0.5 * c1[ch] + 0.5));
        assert_int_equal(out.px[6 + ch], (int)floor(0.5 * 200 + 0.5 * cm[ch] + 0.5));
    }
    ad_image_free(&out);
    /* alpha 0 is the frame in RGB, alpha 1 the map alone. */
    assert_int_equal(ad_heatmap_overlay(&out, &frame, map, 0.0f, 4.0f, 0.0f), 0);
    assert_int_equal(out.px[6], 200);
    assert_int_equal(out.px[8], 200);
    ad_image_free(&out);
    assert_int_equal(ad_heatmap_overlay(&out, &frame, map, 0.0f, 4.0f, 1.0f), 0);
    assert_memory_equal(out.px + 3, c1, 3);
    ad_image_free(&out);
    /* lo == hi: a step at lo. */
    assert_int_equal(ad_heatmap_overlay(&out, &frame, map, 1.0f, 1.0f, 1.0f), 0);
    assert_memory_equal(out.px, c0, 3);
    assert_memory_equal(out.px + 3, c1, 3);
    ad_image_free(&out);
    assert_int_equal(ad_heatmap_overlay(&out, &frame, map, 0.0f, 1.0f, 1.5f), -1);
    assert_null(out.px);
    ad_image_free(&frame);
}

/* ---- the generated parts fixtures --------------------------------------- */

static int count_png(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) fail_msg("%s: cannot open", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l > 4 && strcmp(e->d_name + l - 4, ".png") == 0;
    }
    closedir(d);
    return n;
}

/* Checks one MVTec-layout dataset: counts, sizes, channels, and that every
 * defect has a non-trivial mask under which the image differs from the
 * good parts' typical texture. */
static void check_mvtec(const char *name, int c, int n_train, int n_good, int n_defect)
{
    static const char *const kinds[] = {"scratch", "spot", "crack", "chipped_edge"};
    char rel[256], err[AD_ERRLEN];
    snprintf(rel, sizeof rel, "%s/train/good", name);
    char *p = fixture(rel);
    assert_int_equal(count_png(p), n_train);
    free(p);
    snprintf(rel, sizeof rel, "%s/test/good", name);
    p = fixture(rel);
    assert_int_equal(count_png(p), n_good);
    free(p);
    for (int k = 0; k < 4; k++) {
        snprintf(rel, sizeof rel, "%s/test/%s", name, kinds[k]);
        p = fixture(rel);
        assert_int_equal(count_png(p), n_defect);
        free(p);
        for (int i = 0; i < n_defect; i++) {
            ad_image im, mask;
            snprintf(rel, sizeof rel, "%s/test/%s/%03d.png", name, kinds[k], i);
            p = fixture(rel);
            if (ad_png_read(p, 0, &im, err, sizeof err) != 0) fail_msg("%s", err);
            free(p);
            assert_int_equal(im.w, 64);
            assert_int_equal(im.h, 64);
            assert_int_equal(im.c, c);
            snprintf(rel, sizeof rel, "%s/ground_truth/%s/%03d_mask.png", name, kinds[k], i);
            p = fixture(rel);
            if (ad_png_read(p, 0, &mask, err, sizeof err) != 0) fail_msg("%s", err);
            free(p);
            assert_int_equal(mask.c, 1);
            int on = 0, saturated = 0;
            for (int j = 0; j < 64 * 64; j++) {
                assert_true(mask.px[j] == 0 || mask.px[j] == 255);
                if (mask.px[j]) {
                    on++;
                    saturated += im.px[(size_t)j * c] == 255;
                }
            }
            /* Small but present, and not a blown-out white patch. */
            if (on < 8 || on > 400) fail_msg("%s %s %d: mask has %d pixels", name, kinds[k], i, on);
            assert_true(saturated * 4 < on);
            ad_image_free(&im);
            ad_image_free(&mask);
        }
    }
}

static void fixtures_have_mvtec_layout(void **state)
{
    (void)state;
    check_mvtec("parts", 1, 60, 16, 6);
    check_mvtec("parts_rgb", 3, 30, 8, 4);
}

/* The good parts vary: brightness and position differ between images. */
static void fixtures_good_parts_vary(void **state)
{
    (void)state;
    double lo = 1e9, hi = -1e9;
    int cx_min = 99, cx_max = -1;
    char err[AD_ERRLEN];
    for (int i = 0; i < 60; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "parts/train/good/%03d.png", i);
        char *p = fixture(rel);
        ad_image im;
        if (ad_png_read(p, 0, &im, err, sizeof err) != 0) fail_msg("%s", err);
        free(p);
        double sum = 0, sx = 0, n = 0;
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) {
                int v = im.px[y * 64 + x];
                sum += v;
                if (v > 100) {
                    sx += x;
                    n++;
                }
            }
        double mean = sum / 4096;
        lo = mean < lo ? mean : lo;
        hi = mean > hi ? mean : hi;
        int cx = (int)(sx / n + 0.5);
        cx_min = cx < cx_min ? cx : cx_min;
        cx_max = cx > cx_max ? cx : cx_max;
        ad_image_free(&im);
    }
    assert_true(hi - lo > 10.0);
    assert_true(cx_max - cx_min >= 2);
    assert_true(cx_max - cx_min <= 8);
}

static void fixtures_replay_frames_match_labels(void **state)
{
    (void)state;
    char *csv = fixture("replay/labels.csv");
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "file,defect\n");
    int n = 0, bad = 0;
    char err[AD_ERRLEN];
    while (fgets(line, sizeof line, f)) {
        char file[64], defect[64];
        assert_int_equal(sscanf(line, "%63[^,],%63s", file, defect), 2);
        char want[64];
        snprintf(want, sizeof want, "frame_%04d.png", n);
        assert_string_equal(file, want);
        bad += strcmp(defect, "good") != 0;
        char rel[128];
        snprintf(rel, sizeof rel, "replay/frames/%s", file);
        char *p = fixture(rel);
        ad_image im;
        if (ad_png_read(p, 0, &im, err, sizeof err) != 0) fail_msg("%s", err);
        free(p);
        assert_int_equal(im.w, 80);
        assert_int_equal(im.h, 80);
        assert_int_equal(im.c, 1);
        /* The part lies inside the ROI x=8 y=8 64x64: the frame border is plate. */
        for (int x = 0; x < 80; x++) assert_true(im.px[x] < 90 && im.px[79 * 80 + x] < 90);
        ad_image_free(&im);
        n++;
    }
    fclose(f);
    free(csv);
    char *frames = fixture("replay/frames");
    assert_int_equal(count_png(frames), n);
    free(frames);
    assert_int_equal(n, 24);
    assert_int_equal(bad, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_every_kind_decodes_exactly),
        cmocka_unit_test(png_round_trips_every_kind),
        cmocka_unit_test(png_round_trips_large_random_image),
        cmocka_unit_test(png_encode_levels),
        cmocka_unit_test(png_broken_files_are_refused),
        cmocka_unit_test(png_every_truncation_and_byte_flip_is_handled),
        cmocka_unit_test(png_read_names_missing_and_directory),
        cmocka_unit_test(image_alloc_refuses_bad_sizes),
        cmocka_unit_test(convert_uses_bt601_luma),
        cmocka_unit_test(png_list_policy),
        cmocka_unit_test(crop_copies_rectangle_and_refuses_outside),
        cmocka_unit_test(resize_matches_hand_computed_values),
        cmocka_unit_test(resize_keeps_constant_images_and_mean),
        cmocka_unit_test(resize_matches_direct_reference),
        cmocka_unit_test(float_conversion_round_trips),
        cmocka_unit_test(blur_matches_hand_computed_kernel),
        cmocka_unit_test(blur_matches_direct_reference),
        cmocka_unit_test(blur_in_place_constant_and_copy),
        cmocka_unit_test(colormap_is_perceptually_ordered),
        cmocka_unit_test(overlay_blends_colormap_over_frame),
        cmocka_unit_test(fixtures_have_mvtec_layout),
        cmocka_unit_test(fixtures_good_parts_vary),
        cmocka_unit_test(fixtures_replay_frames_match_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

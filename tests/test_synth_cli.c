/* anomalyctl synth --dataset through the real binary on the fixture parts:
 * the samples become a dataset in MVTec AD layout (a good image for every
 * sample; for each sample with a defect its defective image and a 0/255
 * mask of the same size), with the very pixels of the example sheets of the
 * same seed, and anomalyctl eval scores it with the fixture model; with
 * train.head_detail: true it draws the fine defects that head trains on. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

/* gray 64x64; its model ../model/parts.safetensors is trained */
#define CONFIG FIXTURES_DIR "/configs/parts.yaml"
#define GOOD FIXTURES_DIR "/parts/train/good"
#define COUNT 12
#define SIDE 64

static void read_png(ad_image *im, const char *dir, const char *rel)
{
    char path[2048], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (ad_png_read(path, 0, im, err, sizeof err) < 0) fail_msg("%s", err);
}

static int exists(const char *dir, const char *rel)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

/* im equals panel k (good | defect | mask, 2 pixels apart) of the sheet. */
static void assert_panel(const ad_image *sheet, int k, const ad_image *im, const char *what)
{
    assert_int_equal(im->c, sheet->c);
    for (int y = 0; y < im->h; y++)
        if (memcmp(im->px + (size_t)y * im->w * im->c,
                   sheet->px + ((size_t)y * sheet->w + (size_t)k * (im->w + 2)) * sheet->c,
                   (size_t)im->w * im->c))
            fail_msg("%s differs from panel %d of its sheet in row %d", what, k, y);
}

static int png_count(const char *dir, const char *rel)
{
    char path[2048], err[AD_ERRLEN], **names;
    int n;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (ad_png_list(path, &names, &n, err, sizeof err) < 0) return 0;
    ad_png_list_free(names, n);
    return n;
}

/* One sample of the dataset against its index row and its sheet; 1 when it
 * got a defect. */
static int check_sample(const char *ds, const char *sheets, const char *file, const char *shape)
{
    char rel[256];
    ad_image sheet = {0}, good = {0}, bad = {0}, mask = {0};
    snprintf(rel, sizeof rel, "%s.png", file);
    read_png(&sheet, sheets, rel);
    snprintf(rel, sizeof rel, "test/good/%s.png", file);
    read_png(&good, ds, rel);
    assert_int_equal(good.w, SIDE);
    assert_int_equal(good.h, SIDE);
    assert_int_equal(good.c, 1);
    assert_panel(&sheet, 0, &good, rel);
    int defect = strcmp(shape, "clean") != 0;
    snprintf(rel, sizeof rel, "test/synthetic/%s.png", file);
    assert_int_equal(exists(ds, rel), defect);
    if (defect) {
        read_png(&bad, ds, rel);
        assert_panel(&sheet, 1, &bad, rel);
        snprintf(rel, sizeof rel, "ground_truth/synthetic/%s_mask.png", file);
        read_png(&mask, ds, rel);
        assert_int_equal(mask.c, 1);
        assert_int_equal(mask.w, bad.w);
        assert_int_equal(mask.h, bad.h);
        size_t on = 0;
        for (size_t i = 0; i < (size_t)mask.w * mask.h; i++) {
            if (mask.px[i] != 0 && mask.px[i] != 255)
                fail_msg("%s holds %d, not 0 or 255", rel, mask.px[i]);
            on += mask.px[i] == 255;
        }
        if (on == 0) fail_msg("%s is all zero for a %s defect", rel, shape);
        /* the sheet's mask panel is the mask in the model's colour (gray here) */
        assert_panel(&sheet, 2, &mask, rel);
    }
    ad_image_free(&sheet);
    ad_image_free(&good);
    ad_image_free(&bad);
    ad_image_free(&mask);
    return defect;
}

/* The state: a temporary folder holding ds/, the dataset, and sheets/, the
 * sheets of the same samples, written once by the real binary. */
static void synth(const char *dir, const char *sub, const char *mode)
{
    char args[4096];
    int rc;
    snprintf(args, sizeof args, "synth --config " CONFIG " --images " GOOD " --out %s/%s%s "
             "--count %d --seed 5", dir, sub, mode, COUNT);
    char *out = ts_run_bin("anomalyctl", args, &rc);
    if (rc != 0) fail_msg("anomalyctl %s: exit %d\n%s", args, rc, out);
    free(out);
}

static int setup(void **state)
{
    char *dir = ts_tmpdir("synth-cli");
    *state = dir;
    synth(dir, "ds", " --dataset");
    synth(dir, "sheets", "");
    return 0;
}

static int teardown(void **state)
{
    ts_rmtree(*state);
    free(*state);
    return 0;
}

/* Samples with a defect, from dir/ds/index.csv: every row checked against
 * the dataset and its sheet on the way. */
static int check_index(const char *dir)
{
    char ds[1100], sheets[1100], path[1200], head[64], file[64], shape[32], want[64];
    snprintf(ds, sizeof ds, "%s/ds", dir);
    snprintf(sheets, sizeof sheets, "%s/sheets", dir);
    snprintf(path, sizeof path, "%s/index.csv", ds);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%63s", head), 1);
    assert_string_equal(head, "file,shape,fill,opacity,area");
    int rows = 0, defects = 0;
    for (; fscanf(f, " %63[^,],%31[^,],%*s", file, shape) == 2; rows++) {
        snprintf(want, sizeof want, "synth_%04d", rows);
        assert_string_equal(file, want);
        defects += check_sample(ds, sheets, file, shape);
    }
    assert_true(feof(f));
    fclose(f);
    assert_int_equal(rows, COUNT);
    return defects;
}

static void dataset_holds_the_sheets_samples(void **state)
{
    const char *dir = *state;
    int defects = check_index(dir);
    assert_true(defects > 0 && defects < COUNT); /* both kinds occur for this seed */
    assert_int_equal(png_count(dir, "ds/test/good"), COUNT);
    assert_int_equal(png_count(dir, "ds/test/synthetic"), defects);
    assert_int_equal(png_count(dir, "ds/ground_truth/synthetic"), defects);
}

/* eval scores it with the fixture model: every image, pixel AUROC taken. */
static void eval_scores_the_dataset(void **state)
{
    const char *dir = *state;
    char args[2048], want[64];
    int rc;
    snprintf(args, sizeof args, "eval --config " CONFIG " --dataset %s/ds", dir);
    char *out = ts_run_bin("anomalyctl", args, &rc);
    if (rc != 0) fail_msg("anomalyctl %s: exit %d\n%s", args, rc, out);
    snprintf(want, sizeof want, " images=%d\n", COUNT + png_count(dir, "ds/test/synthetic"));
    assert_non_null(strstr(out, "RESULT image_auroc="));
    assert_non_null(strstr(out, want));
    const char *pix = strstr(out, "pixel_auroc=");
    assert_non_null(pix);
    double p = strtod(pix + strlen("pixel_auroc="), NULL);
    free(out);
    assert_true(p > 0.0 && p <= 1.0);
}

/* The same config with train.head_detail: true draws other samples from
 * the same seed: the fine defects (synth.c) a detail head trains on. */
static void detail_config_draws_the_fine_defects(void **state)
{
    const char *dir = *state;
    uint8_t *text;
    size_t len;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(CONFIG, 1 << 16, &text, &len, err, sizeof err), 0);
    char yaml[1 << 16];
    snprintf(yaml, sizeof yaml, "%.*s", (int)len, (const char *)text);
    free(text);
    char *at = strstr(yaml, "  head_steps: 0\n");
    assert_non_null(at);
    char detail[1 << 16];
    snprintf(detail, sizeof detail, "%.*s  head_detail: true\n%s", (int)(at - yaml), yaml, at);
    char *cfg = ts_write_text(dir, "detail.yaml", detail);
    char args[4096];
    int rc;
    snprintf(args, sizeof args, "synth --config %s --images " GOOD " --out %s/fine --count %d --seed 5", cfg,
             dir, COUNT);
    char *out = ts_run_bin("anomalyctl", args, &rc);
    if (rc != 0) fail_msg("anomalyctl %s: exit %d\n%s", args, rc, out);
    free(out);
    free(cfg);
    int differ = 0;
    for (int k = 0; k < COUNT; k++) {
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/sheets/synth_%04d.png", dir, k);
        snprintf(b, sizeof b, "%s/fine/synth_%04d.png", dir, k);
        uint8_t *da, *db;
        size_t la, lb;
        assert_int_equal(ad_read_file(a, 1 << 24, &da, &la, err, sizeof err), 0);
        assert_int_equal(ad_read_file(b, 1 << 24, &db, &lb, err, sizeof err), 0);
        differ += la != lb || memcmp(da, db, la) != 0;
        free(da);
        free(db);
    }
    assert_true(differ > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dataset_holds_the_sheets_samples),
        cmocka_unit_test(eval_scores_the_dataset),
        cmocka_unit_test(detail_config_draws_the_fine_defects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

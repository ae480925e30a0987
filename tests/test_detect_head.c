/* The detector's learned-head maps (detector.map head | both) on the fixture
 * model with heads trained for a few steps here (one reading z-scores, as
 * train.head_zscore: true makes it, one reading the frame at twice the
 * size, as train.head_detail: true makes it, one without either, as the
 * default does):
 * the head file is found beside the model, scores are finite,
 * probabilities, deterministic, `both` adds the head's probability to the
 * plain difference, the mirrored passes read mirrored inputs, and a head
 * whose frame statistics do not fit the input size is refused. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/head.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"

static char *dir;
static ad_config cfg;        /* the model m.safetensors with a zscore head */
static ad_config cfg_plain;  /* plain.safetensors, its head without z-scores */
static ad_config cfg_detail; /* detail.safetensors, its head reads the frame at twice the size */

/* The fixture model copied to dir/name.safetensors (c's model path) with a
 * head trained beside it. */
static int model_with_head(ad_config *c, const char *name, bool zscore, bool detail)
{
    char cmd[2048], err[AD_ERRLEN];
    snprintf(cmd, sizeof cmd, "cp %s/model/parts.safetensors %s/%s.safetensors", FIXTURES_DIR, dir, name);
    if (ts_run(cmd, NULL) != 0) return -1;
    snprintf(c->model.path, sizeof c->model.path, "%s/%s.safetensors", dir, name);
    /* a few steps are enough to make a valid head file; quality is the
     * head's own tests' business */
    ad_config tc = *c;
    tc.train.head_steps = 3;
    tc.train.batch = 2;
    tc.train.crop = 32;
    tc.train.head_crop = 32;
    tc.train.head_zscore = zscore;
    tc.train.head_detail = detail;
    ad_head_train_opts o = {.cfg = &tc, .images_dir = FIXTURES_DIR "/parts/train/good"};
    if (ad_head_train_run(&o, err, sizeof err) != 0) {
        print_error("%s\n", err);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    char err[AD_ERRLEN];
    if (ad_config_load(FIXTURES_DIR "/configs/detect_parts.yaml", &cfg, err, sizeof err) < 0) {
        print_error("%s\n", err);
        return -1;
    }
    dir = ts_tmpdir("detect-head");
    cfg_plain = cfg;
    cfg_detail = cfg;
    return model_with_head(&cfg, "m", true, false) || model_with_head(&cfg_plain, "plain", false, false) ||
                   model_with_head(&cfg_detail, "detail", false, true)
               ? -1
               : 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_rmtree(dir);
    free(dir);
    return 0;
}

static double score_with(enum ad_map_mode map, enum ad_score_mode score, const ad_image *roi)
{
    ad_config c = cfg;
    c.detector.map = map;
    c.detector.score = score;
    ad_detector *d;
    char err[AD_ERRLEN];
    if (ad_detector_open(&d, &c, err, sizeof err) < 0) fail_msg("%s", err);
    ad_result r, r2;
    assert_int_equal(ad_detector_inspect(d, roi, &r, err, sizeof err), 0);
    assert_int_equal(ad_detector_inspect(d, roi, &r2, err, sizeof err), 0);
    assert_true(r.score == r2.score);
    assert_true(isfinite(r.score));
    ad_detector_close(d);
    return r.score;
}

static void head_and_both_maps(void **state)
{
    (void)state;
    ad_image roi = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_load_frame_file(&cfg, FIXTURES_DIR "/parts/test/crack/000.png", &roi, err,
                                        sizeof err), 0);
    double diff = score_with(AD_MAP_DIFF, AD_SCORE_MAX, &roi);
    double head = score_with(AD_MAP_HEAD, AD_SCORE_MAX, &roi);
    double both = score_with(AD_MAP_BOTH, AD_SCORE_MAX, &roi);
    print_message("max of map: diff %.4f head %.4f both %.4f\n", diff, head, both);
    /* smoothed probabilities stay in (0, 1) */
    assert_true(head > 0 && head < 1);
    /* both = diff + probability pixel by pixel, so its max lies between */
    assert_true(both > diff && both > head);
    assert_true(both <= diff + head + 1e-5);
    ad_image_free(&roi);
}

/* The map of the detector opened with config c and tuning kv (NULL: none),
 * inspecting roi; the caller frees *d. */
static const float *map_of(ad_detector **d, const ad_config *c, const char *kv, const ad_image *roi)
{
    char err[AD_ERRLEN];
    ad_detector_tuning t = {0};
    if (kv) assert_int_equal(ad_detector_tuning_parse(&t, kv, err, sizeof err), 0);
    if (ad_detector_open_tuned(d, c, &t, err, sizeof err) < 0) fail_msg("%s", err);
    ad_result r;
    assert_int_equal(ad_detector_inspect(*d, roi, &r, err, sizeof err), 0);
    int w, h;
    return ad_detector_last_map(*d, &w, &h);
}

/* mirrored (c, h, w) = src mirrored left-right. */
static void mirror_lr(float *mirrored, const float *src, int c, int h, int w)
{
    for (int k = 0; k < c * h; k++)
        for (int i = 0; i < w; i++) mirrored[(size_t)k * w + i] = src[(size_t)k * w + w - 1 - i];
}

/* detector.mirror: lr: the map is the mean of the head's probability for
 * the frame and, mirrored back, for the left-right mirrored frame and
 * reconstruction (and z of the frame, mirrored: not z of the mirrored frame
 * against unmirrored statistics; and a detail head's frame at twice the
 * size, mirrored); recomputed here from the detector's own reconstruction.
 * tune flips=1 overrides the key (one pass), flips=2 gives the same map.
 * A detail head is given a frame at twice the input size, which it reads
 * as it is (and averaged 2x2 as the frame at the input size). */
static void check_mirror(const ad_config *base)
{
    ad_image roi = {0}, small = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_load_frame_file(base, FIXTURES_DIR "/parts/test/crack/000.png", &small, err,
                                        sizeof err), 0);
    char hpath[1100];
    ad_head_path(hpath, sizeof hpath, base->model.path);
    ad_head *head;
    assert_int_equal(ad_head_load(hpath, &head, err, sizeof err), 0);
    bool detail = ad_head_hp(head)->detail;
    int s = detail ? 2 : 1;
    assert_int_equal(ad_image_resize(&roi, &small, s * small.w, s * small.h), 0);
    ad_config c = *base;
    c.detector.map = AD_MAP_HEAD;
    c.detector.sigma = 0;
    c.detector.mirror = 2;
    ad_detector *d, *one, *tuned;
    const float *map = map_of(&d, &c, NULL, &roi);
    const float *xhat = ad_detector_last_recon(d);
    c.detector.mirror = 4;
    const float *map_one = map_of(&one, &c, "flips=1", &roi);
    const float *map_tuned = map_of(&tuned, &c, "flips=2", &roi);
    int w, h;
    ad_detector_last_map(d, &w, &h);
    assert_int_equal(w, small.w); /* the fixture frames are at the input size */
    assert_int_equal(h, small.h);
    size_t n = (size_t)w * h;
    float *x = ad_xcalloc(n, sizeof(float)), *mx = ad_xcalloc(n, sizeof(float));
    float *mxhat = ad_xcalloc(n, sizeof(float)), *l0 = ad_xcalloc(n, sizeof(float));
    float *l1 = ad_xcalloc(n, sizeof(float));
    const float *sd, *mean = ad_head_frame_stats(head, &sd, NULL, NULL);
    float *z = NULL, *mz = NULL, *x2 = NULL, *mx2 = NULL;
    if (mean) {
        z = ad_xcalloc(n, sizeof(float));
        mz = ad_xcalloc(n, sizeof(float));
    }
    if (detail) {
        x2 = ad_xcalloc(4 * n, sizeof(float));
        mx2 = ad_xcalloc(4 * n, sizeof(float));
        ad_image_to_float(x2, &roi);
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i++) {
                const float *r0 = x2 + (size_t)2 * y * 2 * w + 2 * i, *r1 = r0 + 2 * w;
                x[y * w + i] = 0.25f * (r0[0] + r0[1] + r1[0] + r1[1]);
            }
        mirror_lr(mx2, x2, 1, 2 * h, 2 * w);
    } else {
        ad_image_to_float(x, &roi);
    }
    if (z) ad_head_zscore(z, x, mean, sd, n);
    mirror_lr(mx, x, 1, h, w);
    mirror_lr(mxhat, xhat, 1, h, w);
    if (z) mirror_lr(mz, z, 1, h, w);
    assert_int_equal(ad_head_reserve(head, 1, h, w, false, err, sizeof err), 0);
    ad_head_forward(head, l0, x, xhat, z, x2, 1, h, w);
    ad_head_forward(head, l1, mx, mxhat, mz, mx2, 1, h, w);
    double worst = 0, worst_one = 0, worst_tuned = 0, spread = 0;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++) {
            size_t k = (size_t)y * w + i;
            double p0 = 1 / (1 + exp(-l0[k])), p1 = 1 / (1 + exp(-l1[y * w + w - 1 - i]));
            worst = fmax(worst, fabs(map[k] - (p0 + p1) / 2));
            worst_one = fmax(worst_one, fabs(map_one[k] - p0));
            worst_tuned = fmax(worst_tuned, fabs(map_tuned[k] - map[k]));
            spread = fmax(spread, fabs(p0 - p1));
        }
    print_message("mirror lr, head %s: largest deviation %.2g (flips=1 %.2g, flips=2 %.2g), "
                  "largest mirror disagreement %.3f\n",
                  z ? "with z-scores" : detail ? "with the frame at twice the size" : "plain", worst,
                  worst_one, worst_tuned, spread);
    assert_true(worst < 1e-4);
    assert_true(worst_one < 1e-4);
    assert_true(worst_tuned < 1e-6);
    assert_true(spread > 1e-3); /* the mirrored pass really differs */
    ad_detector_tuning t = {0};
    assert_int_equal(ad_detector_tuning_parse(&t, "flips=3", err, sizeof err), -1);
    assert_non_null(strstr(err, "flips must be 1, 2 or 4"));
    ad_head_free(head);
    free(x);
    free(mx);
    free(mxhat);
    free(z);
    free(mz);
    free(x2);
    free(mx2);
    free(l0);
    free(l1);
    ad_detector_close(d);
    ad_detector_close(one);
    ad_detector_close(tuned);
    ad_image_free(&roi);
    ad_image_free(&small);
}

static void mirror_averages_the_mirrored_head(void **state)
{
    (void)state;
    check_mirror(&cfg);
    check_mirror(&cfg_plain);
    check_mirror(&cfg_detail);
}

/* A head whose frame statistics are of another size than the model input
 * (trained for another model.input_width/height) is refused at open, by
 * file name. */
static void frame_statistics_of_another_size_are_refused(void **state)
{
    (void)state;
    char hpath[1100], other[1100], err[AD_ERRLEN];
    ad_head_path(hpath, sizeof hpath, cfg.model.path);
    ad_head *head;
    assert_int_equal(ad_head_load(hpath, &head, err, sizeof err), 0);
    int h, w;
    const float *sd, *mean = ad_head_frame_stats(head, &sd, &h, &w);
    assert_non_null(mean);
    assert_int_equal(h, cfg.model.input_height);
    assert_int_equal(w, cfg.model.input_width);
    /* the top left 32 x 48 of its statistics (one channel) */
    float small_mean[32 * 48], small_sd[32 * 48];
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 48; x++) {
            small_mean[y * 48 + x] = mean[y * w + x];
            small_sd[y * 48 + x] = sd[y * w + x];
        }
    ad_head_set_frame_stats(head, small_mean, small_sd, 32, 48);
    ad_config c = cfg;
    snprintf(c.model.path, sizeof c.model.path, "%s/small.safetensors", dir);
    char cmd[2 * AD_PATH_MAX + 8];
    snprintf(cmd, sizeof cmd, "cp %s %s", cfg.model.path, c.model.path);
    assert_int_equal(ts_run(cmd, NULL), 0);
    ad_head_path(other, sizeof other, c.model.path);
    assert_int_equal(ad_head_save(other, head, ad_head_params(head), NULL, NULL, 0, err, sizeof err), 0);
    ad_head_free(head);
    c.detector.map = AD_MAP_HEAD;
    ad_detector *d = NULL;
    assert_int_equal(ad_detector_open(&d, &c, err, sizeof err), -1);
    assert_null(d);
    print_message("refused: %s\n", err);
    assert_non_null(strstr(err, "small.head.safetensors: the head's frame statistics are 48x32 but "
                                "model.input_width/height is 64x64"));
}

static void missing_head_file_is_named(void **state)
{
    (void)state;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s/model/parts.safetensors %s/alone.safetensors", FIXTURES_DIR, dir);
    assert_int_equal(ts_run(cmd, NULL), 0);
    ad_config c = cfg;
    snprintf(c.model.path, sizeof c.model.path, "%s/alone.safetensors", dir);
    c.detector.map = AD_MAP_BOTH;
    ad_detector *d;
    char err[AD_ERRLEN];
    assert_int_equal(ad_detector_open(&d, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "alone.head.safetensors is missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_and_both_maps),
        cmocka_unit_test(mirror_averages_the_mirrored_head),
        cmocka_unit_test(frame_statistics_of_another_size_are_refused),
        cmocka_unit_test(missing_head_file_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* The detector with the tiny model trained by the project
 * (fixtures/model/parts.safetensors): it separates the synthetic defects of
 * fixtures/parts from good parts, is deterministic, and its boxes overlap
 * the ground-truth masks. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"

static const char *kinds[] = {"good", "scratch", "spot", "crack", "chipped_edge"};

static void open_detector(ad_detector **d, ad_config *cfg)
{
    char err[AD_ERRLEN];
    if (ad_config_load(FIXTURES_DIR "/configs/detect_parts.yaml", cfg, err, sizeof err) < 0)
        fail_msg("%s", err);
    if (ad_detector_open(d, cfg, err, sizeof err) < 0) fail_msg("%s", err);
}

static void path_of(char *out, size_t len, const char *kind, int i, int mask)
{
    if (mask)
        snprintf(out, len, FIXTURES_DIR "/parts/ground_truth/%s/%03d_mask.png", kind, i);
    else
        snprintf(out, len, FIXTURES_DIR "/parts/test/%s/%03d.png", kind, i);
}

static void separates_defects_deterministically(void **state)
{
    (void)state;
    ad_config cfg;
    ad_detector *d;
    open_detector(&d, &cfg);
    char err[AD_ERRLEN], path[1024];
    double scores[256];
    uint8_t labels[256];
    size_t n = 0;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 100; i++) {
            path_of(path, sizeof path, kinds[k], i, 0);
            ad_image roi = {0};
            if (ad_load_frame_file(&cfg, path, &roi, err, sizeof err) < 0) break; /* end of folder */
            ad_result r, r2;
            assert_int_equal(ad_detector_inspect(d, &roi, &r, err, sizeof err), 0);
            assert_int_equal(ad_detector_inspect(d, &roi, &r2, err, sizeof err), 0);
            assert_true(r.score == r2.score); /* same frame, same noise, same score */
            assert_true(isfinite(r.score) && r.score >= 0);
            scores[n] = r.score;
            labels[n++] = k != 0;
            ad_image_free(&roi);
        }
    assert_true(n >= 30);
    double auc = ad_auroc(scores, labels, n);
    print_message("fixture model: image AUROC %.3f over %zu images\n", auc, n);
    assert_true(auc >= 0.9);

    /* a second detector from the same file gives the same scores */
    ad_detector *d2;
    ad_config cfg2;
    open_detector(&d2, &cfg2);
    path_of(path, sizeof path, "spot", 1, 0);
    ad_image roi = {0};
    assert_int_equal(ad_load_frame_file(&cfg2, path, &roi, err, sizeof err), 0);
    ad_result a, b;
    assert_int_equal(ad_detector_inspect(d, &roi, &a, err, sizeof err), 0);
    assert_int_equal(ad_detector_inspect(d2, &roi, &b, err, sizeof err), 0);
    assert_true(a.score == b.score);
    assert_int_equal(a.box_x, b.box_x);
    assert_int_equal(a.area, b.area);
    ad_image_free(&roi);
    ad_detector_close(d2);
    ad_detector_close(d);
}

static void boxes_overlap_ground_truth(void **state)
{
    (void)state;
    ad_config cfg;
    ad_detector *d;
    open_detector(&d, &cfg);
    char err[AD_ERRLEN], path[1024];
    int total = 0, hits = 0;
    for (int k = 1; k < 5; k++)
        for (int i = 0; i < 100; i++) {
            path_of(path, sizeof path, kinds[k], i, 0);
            ad_image roi = {0}, mask = {0};
            if (ad_load_frame_file(&cfg, path, &roi, err, sizeof err) < 0) break;
            path_of(path, sizeof path, kinds[k], i, 1);
            assert_int_equal(ad_png_read(path, 1, &mask, err, sizeof err), 0);
            /* box of the pixels over half the image's own peak */
            ad_result r;
            ad_detector_set_threshold(d, 1e30);
            assert_int_equal(ad_detector_inspect(d, &roi, &r, err, sizeof err), 0);
            ad_detector_set_threshold(d, 0.5 * r.score);
            assert_int_equal(ad_detector_inspect(d, &roi, &r, err, sizeof err), 0);
            assert_true(r.reject);
            assert_true(r.box_w > 0 && r.box_h > 0);
            assert_true(r.box_x >= 0 && r.box_x + r.box_w <= roi.w);
            assert_true(r.box_y >= 0 && r.box_y + r.box_h <= roi.h);
            long inside = 0;
            for (int y = r.box_y; y < r.box_y + r.box_h; y++)
                for (int x = r.box_x; x < r.box_x + r.box_w; x++)
                    inside += mask.px[y * mask.w + x] >= 128;
            total++;
            hits += inside > 0;
            ad_image_free(&roi);
            ad_image_free(&mask);
        }
    print_message("boxes overlapping the mask: %d of %d\n", hits, total);
    assert_true(total >= 20);
    assert_true(hits >= (int)(0.8 * total));
    ad_detector_close(d);
}

static void wrong_color_and_size_multiple_refused(void **state)
{
    (void)state;
    ad_config cfg;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_load(FIXTURES_DIR "/configs/detect_parts.yaml", &cfg, err, sizeof err), 0);
    ad_detector *d = NULL;
    cfg.model.color = AD_COLOR_RGB;
    assert_int_equal(ad_detector_open(&d, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "channel"));
    cfg.model.color = AD_COLOR_GRAY;
    cfg.model.input_width = 65;
    assert_int_equal(ad_detector_open(&d, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiples of"));
    cfg.model.input_width = 64;
    cfg.detector.map = AD_MAP_HEAD;
    int rc = ad_detector_open(&d, &cfg, err, sizeof err);
    if (rc < 0) assert_non_null(strstr(err, "head"));
    else ad_detector_close(d); /* a model file with a head opens */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(separates_defects_deterministically),
        cmocka_unit_test(boxes_overlap_ground_truth),
        cmocka_unit_test(wrong_color_and_size_multiple_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

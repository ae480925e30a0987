/* `anomalyctl score` end to end through the real binary on fixtures/parts
 * with the tiny fixture model: output lines, verdicts and exit codes, heat
 * maps, determinism, and clear errors for bad inputs. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

#define CONFIG FIXTURES_DIR "/configs/detect_parts.yaml"
#define GOOD FIXTURES_DIR "/parts/test/good/000.png"
#define SPOT FIXTURES_DIR "/parts/test/spot/000.png"

__attribute__((noinline)) static char *run(const char *args, int *rc)
{
    char *bin = ts_bin("anomalyctl");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s score %s", bin, args);
    free(bin);
    char *out = NULL;
    *rc = ts_run(cmd, &out);
    return out;
}

/* A config like detect_parts.yaml with another threshold and extra lines. */
static char *write_config(const char *dir, const char *name, double threshold, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text,
             "line: {name: t}\n"
             "camera: {source: replay, replay_dir: %s, width: %s, height: %s%s}\n"
             "model: {path: %s, color: gray, input_width: 64, input_height: 64}\n"
             "detector: {map: diff, noise_level: 0.01, steps: 1, sigma: 1, score: topk, topk_percent: 0.5,\n"
             "           threads: 1}\n"
             "threshold: %.9g\n",
             FIXTURES_DIR "/parts/test/good", extra ? "80" : "64", extra ? "80" : "64",
             extra ? extra : "", FIXTURES_DIR "/model/parts.safetensors", threshold);
    return ts_write_text(dir, name, text);
}

static double field(const char *out, const char *path, const char *key)
{
    const char *line = strstr(out, path);
    assert_non_null(line);
    const char *k = strstr(line, key);
    assert_non_null(k);
    return strtod(k + strlen(key), NULL);
}

static void help_and_usage_errors(void **state)
{
    (void)state;
    int rc;
    char *out = run("--help", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "exit codes"));
    assert_non_null(strstr(out, "3 at least one image rejected"));
    free(out);
    out = run("", &rc);
    assert_int_equal(rc, 2);
    free(out);
    out = run("--config " CONFIG, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "no IMAGE"));
    free(out);
    out = run("--frobnicate " GOOD, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--frobnicate"));
    free(out);
    out = run("--config /nonexistent/x.yaml " GOOD, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "/nonexistent/x.yaml"));
    free(out);
}

static void scores_lines_and_exit_codes(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("score");
    int rc;
    char *multi = run("--config " CONFIG " " GOOD " " SPOT " " GOOD, &rc);
    /* one line per image, fields in order, verdict consistent with the numbers */
    assert_non_null(strstr(multi, GOOD " score="));
    assert_non_null(strstr(multi, SPOT " score="));
    double s_good = field(multi, GOOD, "score="), s_spot = field(multi, SPOT, "score=");
    double thr = field(multi, GOOD, "threshold=");
    assert_float_equal(thr, 0.045, 1e-9);
    int any_reject = s_good > thr || s_spot > thr;
    assert_int_equal(rc, any_reject ? 3 : 0);
    assert_true(s_spot > s_good); /* a spot differs more than a good part */
    /* the same image twice gets the same line (noise seeded from the frame) */
    size_t first = (size_t)(strstr(multi, GOOD " score=") - multi);
    const char *again = strstr(multi + first + 1, GOOD " score=");
    assert_non_null(again);
    size_t len = strcspn(multi + first, "\n");
    assert_memory_equal(multi + first, again, len);
    free(multi);

    char *out;
    /* thresholds far apart give the documented exit codes */
    char *lo = write_config(dir, "lo.yaml", 0, NULL);
    char *hi = write_config(dir, "hi.yaml", 1e6, NULL);
    char args[4096];
    snprintf(args, sizeof args, "--config %s " GOOD, lo);
    out = run(args, &rc);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out, "verdict=reject"));
    free(out);
    snprintf(args, sizeof args, "--config %s " GOOD " " SPOT, hi);
    out = run(args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "verdict=pass box=0,0,0,0 area=0"));
    free(out);

    /* heat maps on request: one RGB PNG per image at ROI size */
    snprintf(args, sizeof args, "--config " CONFIG " --heatmap %s/maps " SPOT, dir);
    out = run(args, &rc);
    assert_true(rc == 0 || rc == 3);
    free(out);
    char hm[2048];
    snprintf(hm, sizeof hm, "%s/maps/000_heatmap.png", dir);
    ad_image im = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_png_read(hm, 0, &im, err, sizeof err), 0);
    assert_int_equal(im.w, 64);
    assert_int_equal(im.h, 64);
    assert_int_equal(im.c, 3);
    ad_image_free(&im);
    free(lo);
    free(hi);
    ts_rmtree(dir);
    free(dir);
}

static void bad_inputs_are_clear_errors(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("score-bad");
    int rc;
    char args[4096];

    /* missing model: runtime failure naming the model file */
    char text[2048];
    snprintf(text, sizeof text,
             "line: {name: t}\ncamera: {source: replay, replay_dir: %s}\n"
             "model: {path: %s/none.safetensors, input_width: 64, input_height: 64}\n"
             "threshold: 1\n", dir, dir);
    char *nomodel = ts_write_text(dir, "nomodel.yaml", text);
    snprintf(args, sizeof args, "--config %s " GOOD, nomodel);
    char *out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "none.safetensors"));
    free(out);

    /* unreadable and corrupt files: named, the good image still scored */
    char *junk = ts_write_text(dir, "junk.png", "this is not a png");
    snprintf(args, sizeof args, "--config " CONFIG " %s/missing.png %s " GOOD, dir, junk);
    out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "missing.png"));
    assert_non_null(strstr(out, "junk.png"));
    assert_non_null(strstr(out, GOOD " score="));
    free(out);

    /* wrong channels: an RGB part for a gray model */
    out = run("--config " CONFIG " " FIXTURES_DIR "/parts_rgb/test/good/000.png", &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "image is RGB but the model is gray"));
    free(out);

    /* wrong size: with a ROI the image must be a whole 80x80 camera frame
     * or the ROI itself */
    char *roi48 = write_config(dir, "roi48.yaml", 1, ", roi: {x: 8, y: 8, width: 48, height: 48}");
    snprintf(args, sizeof args, "--config %s " GOOD, roi48);
    out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "image is 64x64 but camera frames are 80x80 and the ROI is 48x48"));
    free(out);
    free(roi48);
    /* a 64x64 part is accepted as an already-cropped 64x64 ROI (capture's output) */
    char *roi = write_config(dir, "roi.yaml", 1, ", roi: {x: 8, y: 8, width: 64, height: 64}");
    snprintf(args, sizeof args, "--config %s " GOOD, roi);
    out = run(args, &rc);
    assert_true(rc == 0 || rc == 3);
    assert_non_null(strstr(out, " score="));
    free(out);
    /* ... and a real replay frame works with that ROI, box in ROI pixels */
    snprintf(args, sizeof args, "--config %s $(ls %s/replay/frames/*.png | head -1)", roi,
             FIXTURES_DIR);
    out = run(args, &rc);
    assert_true(rc == 0 || rc == 3);
    assert_non_null(strstr(out, " score="));
    free(out);

    free(nomodel);
    free(junk);
    free(roi);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_and_usage_errors),
        cmocka_unit_test(scores_lines_and_exit_codes),
        cmocka_unit_test(bad_inputs_are_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* `anomalyctl eval` end to end through the real binary on fixtures/parts:
 * the report, the CSV, worst-miss heat maps, the z-score baseline, the
 * fixture model, and clear errors for a broken dataset. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"

#define CONFIG FIXTURES_DIR "/configs/detect_parts.yaml"
#define PARTS FIXTURES_DIR "/parts"

__attribute__((noinline)) static char *run(const char *args, int *rc)
{
    char *bin = ts_bin("anomalyctl");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s eval %s", bin, args);
    free(bin);
    char *out = NULL;
    *rc = ts_run(cmd, &out);
    return out;
}

static double result(const char *out, const char *key)
{
    const char *r = strstr(out, "RESULT ");
    assert_non_null(r);
    const char *k = strstr(r, key);
    assert_non_null(k);
    return strtod(k + strlen(key), NULL);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static void zscore_baseline_report_and_csv(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("eval");
    char args[4096];
    snprintf(args, sizeof args,
             "--config " CONFIG " --dataset " PARTS " --tune baseline=zscore --csv %s/s.csv "
             "--heatmaps %s/maps", dir, dir);
    int rc;
    char *out = run(args, &rc);
    if (rc != 0) print_message("%s\n", out);
    assert_int_equal(rc, 0);
    /* weak on these moving parts (see test_detect), but above chance */
    assert_true(result(out, "image_auroc=") > 0.55);
    double pix = result(out, "pixel_auroc=");
    assert_true(pix > 0.5 && pix <= 1.0);
    assert_int_equal((int)result(out, "images="), 40);
    for (const char *t = "chipped_edge\0crack\0scratch\0spot\0"; *t; t += strlen(t) + 1)
        assert_non_null(strstr(out, t));
    char csv[2048];
    snprintf(csv, sizeof csv, "%s/s.csv", dir);
    assert_int_equal(count_lines(csv), 41);
    /* five worst misses each way */
    char cmd[2048], *ls = NULL;
    snprintf(cmd, sizeof cmd, "ls %s/maps | grep -c '^missed_defect'; ls %s/maps | grep -c '^false_alarm'",
             dir, dir);
    assert_int_equal(ts_run(cmd, &ls), 0);
    assert_string_equal(ls, "5\n5\n");
    free(ls);
    free(out);

    /* --limit takes the first N of each type */
    snprintf(args, sizeof args, "--config " CONFIG " --dataset " PARTS " --tune baseline=zscore --limit 2");
    out = run(args, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal((int)result(out, "images="), 10);
    free(out);
    ts_rmtree(dir);
    free(dir);
}

static void fixture_model_separates_defects(void **state)
{
    (void)state;
    int rc;
    char *out = run("--config " CONFIG " --dataset " PARTS, &rc);
    print_message("%s", out);
    assert_int_equal(rc, 0);
    assert_true(result(out, "image_auroc=") >= 0.9);
    assert_true(result(out, "pixel_auroc=") >= 0.8);
    assert_true(result(out, "inspections_per_s=") > 0);
    /* deterministic: the same run gives the same report line */
    char *again = run("--config " CONFIG " --dataset " PARTS, &rc);
    assert_int_equal(rc, 0);
    const char *a = strstr(out, "RESULT "), *b = strstr(again, "RESULT ");
    assert_memory_equal(a, b, (size_t)(strstr(a, "inspections_per_s") - a));
    free(again);
    free(out);
}

static void broken_datasets_are_clear_errors(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("eval-bad");
    int rc;
    char args[4096], cmd[4096];
    /* missing dataset */
    snprintf(args, sizeof args, "--config " CONFIG " --dataset %s/none --tune baseline=contrast", dir);
    char *out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "none/test"));
    free(out);
    /* no good/ folder */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/d1/test/spot && cp " PARTS "/test/spot/000.png %s/d1/test/spot/",
             dir, dir);
    assert_int_equal(ts_run(cmd, NULL), 0);
    snprintf(args, sizeof args, "--config " CONFIG " --dataset %s/d1 --tune baseline=contrast", dir);
    out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "good/"));
    free(out);
    /* a defect image without its mask */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/d1/test/good && cp " PARTS "/test/good/000.png %s/d1/test/good/",
             dir, dir);
    assert_int_equal(ts_run(cmd, NULL), 0);
    out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "ground_truth/spot/000_mask.png"));
    free(out);
    /* a corrupt test image is named */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/d1/ground_truth/spot && cp " PARTS "/ground_truth/spot/000_mask.png "
             "%s/d1/ground_truth/spot/ && echo junk > %s/d1/test/good/001.png", dir, dir, dir);
    assert_int_equal(ts_run(cmd, NULL), 0);
    out = run(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "001.png"));
    free(out);
    /* usage errors */
    out = run("--config " CONFIG, &rc);
    assert_int_equal(rc, 2);
    free(out);
    out = run("--config " CONFIG " --dataset " PARTS " --limit zero", &rc);
    assert_int_equal(rc, 2);
    free(out);
    out = run("--config " CONFIG " --dataset " PARTS " --tune wobble=1", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "wobble"));
    free(out);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zscore_baseline_report_and_csv),
        cmocka_unit_test(fixture_model_separates_defects),
        cmocka_unit_test(broken_datasets_are_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

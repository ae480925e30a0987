/* anomalyctl calibrate through the real binary on the fixture parts and the
 * fixture model: the good-only threshold holds on held-out good parts, the
 * write-back keeps every other byte and is what the detector then uses, the
 * AUROC is eval's, and bad inputs give clear errors and the documented exit
 * codes.
 *
 * Extra good parts from the same process come from the project's own fixture
 * generator with other seeds (tools/gen_fixtures --seed N), so calibration
 * and held-out sets are both unseen by the model and independent. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

static const char *const DEFECTS[] = {"scratch", "spot", "crack", "chipped_edge"};

typedef struct env {
    char *dir;        /* tmp root */
    char config[1024]; /* dir/configs/calib_parts.yaml, a byte copy of the fixture */
    char *original;   /* its bytes */
    size_t original_len;
} env;

static char *slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 24, &d, len, err, sizeof err) != 0) fail_msg("%s", err);
    char *s = ad_xmalloc(*len + 1);
    memcpy(s, d, *len);
    s[*len] = 0;
    free(d);
    return s;
}

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = ts_run(cmd, out);
    return rc;
}

/* The fixture config copied byte for byte to dir/configs with dir/model
 * linking the fixture model, so its relative model path still resolves and
 * --write never touches the repository. */
static int setup(void **state)
{
    env *e = ad_xcalloc(1, sizeof *e);
    e->dir = ts_tmpdir("calib");
    char path[2048], model[1024];
    snprintf(model, sizeof model, "%s/model/parts.safetensors", FIXTURES_DIR);
    if (access(model, R_OK) != 0) fail_msg("fixture model %s is missing", model);
    snprintf(path, sizeof path, "%s/configs", e->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/model", e->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/model/parts.safetensors", e->dir);
    assert_int_equal(symlink(model, path), 0);
    snprintf(path, sizeof path, "%s/configs/calib_parts.yaml", FIXTURES_DIR);
    e->original = slurp(path, &e->original_len);
    snprintf(e->config, sizeof e->config, "%s/configs/calib_parts.yaml", e->dir);
    FILE *f = fopen(e->config, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(e->original, 1, e->original_len, f), e->original_len);
    fclose(f);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    /* a daemon left running by a failed test */
    char *o = NULL;
    run(&o, "cd '%s' && test -f daemon.pid && kill -TERM $(cat daemon.pid) 2>/dev/null; true", e->dir);
    free(o);
    ts_rmtree(e->dir);
    free(e->dir);
    free(e->original);
    free(e);
    return 0;
}

/* Value of `key=` on the output's RESULT line. */
static void result_field(const char *out, const char *key, char *val, size_t len)
{
    const char *r = strstr(out, "RESULT ");
    if (!r) fail_msg("no RESULT line in:\n%s", out);
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(r, pat);
    if (!p) fail_msg("no %s on the RESULT line:\n%s", key, r);
    p += strlen(pat);
    size_t n = strcspn(p, " \n");
    if (n >= len) n = len - 1;
    memcpy(val, p, n);
    val[n] = 0;
}

/* dir/name: the good parts (train and test) of fixture seed `seed`, all
 * unseen by the fixture model (trained on the default seed). */
static void make_good_set(const env *e, const char *name, int seed)
{
    char *gen = ts_bin("tools/gen_fixtures");
    char *out = NULL;
    int rc = run(&out, "'%s' --seed %d '%s/seed%d' && mkdir '%s/%s' && "
                 "cp '%s/seed%d/parts/train/good/'*.png '%s/%s/' && "
                 "for f in '%s/seed%d/parts/test/good/'*.png; do cp \"$f\" '%s/%s/t'$(basename \"$f\"); done",
                 gen, seed, e->dir, seed, e->dir, name, e->dir, seed, e->dir, name, e->dir, seed,
                 e->dir, name);
    if (rc != 0) fail_msg("making good set %s: %s", name, out);
    free(out);
    free(gen);
}

/* Scores dir/held with `anomalyctl score` under the config as written (so the
 * value also parses back through the config loader and is what the detector
 * compares with); returns the rejects, *held the images. */
static size_t held_out_rejects(const env *e, const char *thr, size_t *held)
{
    char *bin = ts_bin("anomalyctl"), *out = NULL;
    int rc = run(&out, "'%s' score --config '%s' '%s/held/'*.png", bin, e->config, e->dir);
    assert_true(rc == 0 || rc == 3);
    size_t rejects = 0;
    *held = 0;
    char tag[96];
    snprintf(tag, sizeof tag, "threshold=%.6f", strtod(thr, NULL));
    for (const char *p = out; (p = strstr(p, " score=")); p++) {
        (*held)++;
        const char *eol = strchr(p, '\n');
        const char *r = strstr(p, "verdict=reject");
        if (r && (!eol || r < eol)) rejects++;
        const char *t = strstr(p, tag);
        if (!t || (eol && t > eol)) fail_msg("score did not use the written threshold:\n%s", p);
    }
    free(out);
    free(bin);
    return rejects;
}

static void test_good_only_threshold_holds_on_held_out_parts(void **state)
{
    env *e = *state;
    char *bin = ts_bin("anomalyctl"), *out = NULL;
    make_good_set(e, "cal", 7);
    make_good_set(e, "held", 8);
    const double rate = 0.05;

    int rc = run(&out, "'%s' calibrate --config '%s' --good '%s/cal' --target-frr 5%% "
                 "--plot '%s/plot.png' --write", bin, e->config, e->dir, e->dir);
    if (rc != 0) fail_msg("calibrate exited %d:\n%s", rc, out);
    print_message("%.*s", (int)strcspn(strstr(out, "RESULT"), "\n") + 1, strstr(out, "RESULT"));
    char thr[64], val[64];
    result_field(out, "threshold", thr, sizeof thr);
    result_field(out, "good", val, sizeof val);
    size_t ncal = strtoul(val, NULL, 10);
    assert_true(ncal >= 60);
    result_field(out, "frr", val, sizeof val);
    assert_true(strtod(val, NULL) <= rate);
    /* 76 images support 5% (3/0.05 = 60): no size warning. */
    assert_null(strstr(out, "WARNING"));
    free(out);

    /* Write-back: the file is the original with only the value replaced. */
    size_t len;
    char *now = slurp(e->config, &len);
    const char *old_line = "threshold: 0.5      #";
    char *at = strstr(e->original, old_line);
    assert_non_null(at);
    size_t pre = (size_t)(at - e->original) + strlen("threshold: ");
    char want[8192];
    snprintf(want, sizeof want, "%.*s%s%s", (int)pre, e->original, thr,
             e->original + pre + strlen("0.5"));
    assert_string_equal(now, want);
    free(now);
    char bak[1100];
    snprintf(bak, sizeof bak, "%s.bak", e->config);
    char *b = slurp(bak, &len);
    assert_int_equal(len, e->original_len);
    assert_memory_equal(b, e->original, len);
    free(b);

    /* Held-out good parts. */
    size_t held, rejects = held_out_rejects(e, thr, &held);
    print_message("held-out good parts: %zu of %zu rejected at the promised %.0f%%\n", rejects,
                  held, rate * 100);
    assert_true(held >= 60);
    /* Binomial(76, 0.05) exceeds 8 with probability about 1%; the rule is
     * conservative, so this fails only if the promise is broken. */
    assert_true(rejects <= 8);

    /* At 90% confidence the threshold can only move up, and the held-out
     * rejects down. */
    rc = run(&out, "'%s' calibrate --config '%s' --good '%s/cal' --target-frr 5%% "
             "--confidence 90%% --write", bin, e->config, e->dir);
    if (rc != 0) fail_msg("calibrate --confidence exited %d:\n%s", rc, out);
    char thr90[64];
    result_field(out, "threshold", thr90, sizeof thr90);
    result_field(out, "confidence", val, sizeof val);
    assert_string_equal(val, "0.9");
    assert_non_null(strstr(out, "at 90% confidence"));
    free(out);
    assert_true(strtod(thr90, NULL) >= strtod(thr, NULL));
    size_t held90, rejects90 = held_out_rejects(e, thr90, &held90);
    print_message("at 90%% confidence: threshold %s, %zu of %zu held-out rejected\n", thr90,
                  rejects90, held90);
    assert_true(rejects90 <= rejects);

    /* The plot is a real PNG of the promised size. */
    char plot[1100], err[AD_ERRLEN];
    snprintf(plot, sizeof plot, "%s/plot.png", e->dir);
    ad_image im = {0};
    assert_int_equal(ad_png_read(plot, 0, &im, err, sizeof err), 0);
    assert_int_equal(im.w, 800);
    assert_int_equal(im.h, 480);
    assert_int_equal(im.c, 3);
    ad_image_free(&im);

    /* Asking for 1% from 76 images warns and says what it takes. */
    rc = run(&out, "'%s' calibrate --config '%s' --good '%s/cal'", bin, e->config, e->dir);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "WARNING: 76 good images cannot demonstrate a 1% false-reject"));
    assert_non_null(strstr(out, "about 300 good images"));
    free(out);
    free(bin);
}

static void test_auroc_matches_eval(void **state)
{
    env *e = *state;
    char *bin = ts_bin("anomalyctl"), *out = NULL;
    int rc = run(&out, "'%s' eval --config '%s' --dataset '%s/parts'", bin, e->config,
                 FIXTURES_DIR);
    if (rc != 0) fail_msg("eval exited %d:\n%s", rc, out);
    char eval_auc[32], cal_auc[32], val[64];
    const char *r = strstr(out, "RESULT image_auroc=");
    assert_non_null(r);
    sscanf(r, "RESULT image_auroc=%31s", eval_auc);
    free(out);

    char bad[4096] = "";
    for (size_t i = 0; i < sizeof DEFECTS / sizeof DEFECTS[0]; i++) {
        size_t l = strlen(bad);
        snprintf(bad + l, sizeof bad - l, " '%s/parts/test/%s'", FIXTURES_DIR, DEFECTS[i]);
    }
    rc = run(&out, "'%s' calibrate --config '%s' --good '%s/parts/test/good' --bad%s", bin,
             e->config, FIXTURES_DIR, bad);
    if (rc != 0) fail_msg("calibrate exited %d:\n%s", rc, out);
    result_field(out, "image_auroc", cal_auc, sizeof cal_auc);
    print_message("image AUROC: eval %s, calibrate %s\n", eval_auc, cal_auc);
    assert_string_equal(cal_auc, eval_auc);
    /* With bad images and no target, the pick is the best separation. */
    result_field(out, "pick", val, sizeof val);
    assert_string_equal(val, "youden");
    assert_non_null(strstr(out, "Youden's J"));
    assert_non_null(strstr(out, "lowest-scoring bad images"));
    assert_non_null(strstr(out, "highest-scoring good images"));
    /* Every good and bad image name appears only through the folders given. */
    assert_non_null(strstr(out, "/parts/test/good/"));
    free(out);
    free(bin);
}

static void expect(const env *e, int want_rc, const char *needle, const char *args_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void expect(const env *e, int want_rc, const char *needle, const char *args_fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    char *bin = ts_bin("anomalyctl"), *out = NULL;
    int rc = run(&out, "cd '%s' && '%s' calibrate %s", e->dir, bin, args);
    if (rc != want_rc || !strstr(out, needle))
        fail_msg("calibrate %s: exit %d (want %d), output lacks '%s':\n%s", args, rc, want_rc,
                 needle, out);
    free(out);
    free(bin);
}

static void test_invalid_inputs(void **state)
{
    env *e = *state;
    char *o = NULL;
    /* folders for the cases, relative to e->dir (the tests run there) */
    int rc = run(&o, "cd '%s' && mkdir empty mixed corrupt one sub sub/inner && "
                 "cp '%s/parts/test/good/000.png' '%s/parts/test/good/001.png' mixed/ && "
                 "echo notes > mixed/notes.txt && "
                 "cp '%s/parts/test/good/000.png' corrupt/ && echo 'not a png' > corrupt/001.png && "
                 "cp '%s/parts/test/good/000.png' one/ && cp '%s/parts/test/good/000.png' sub/ && "
                 "sed 's/color: gray/color: rgb/' configs/calib_parts.yaml > configs/rgb.yaml && "
                 "sed 's/threshold: 0.5 /threshold: high/' configs/calib_parts.yaml > configs/broken.yaml",
                 e->dir, FIXTURES_DIR, FIXTURES_DIR, FIXTURES_DIR, FIXTURES_DIR, FIXTURES_DIR);
    if (rc != 0) fail_msg("%s", o);
    free(o);
    const char *cfg = "--config configs/calib_parts.yaml";
    expect(e, 1, "empty: no PNG images (*.png) in the folder", "%s --good empty", cfg);
    /* other files are skipped and named in one warning (ad_png_list) */
    expect(e, 0, "mixed: skipping 1 entry that is not a PNG image (*.png): notes.txt",
           "%s --good mixed", cfg);
    expect(e, 1, "corrupt/001.png", "%s --good corrupt", cfg);
    expect(e, 1, "only 1 good image", "%s --good one", cfg);
    expect(e, 1, "sub: skipping 1 entry that is not a PNG image (*.png): inner/", "%s --good sub",
           cfg);
    expect(e, 1, "nowhere: no such folder", "%s --good nowhere", cfg);
    expect(e, 1, "empty: no PNG images (*.png)", "%s --good '%s/parts/test/good' --bad empty", cfg,
           FIXTURES_DIR);
    /* RGB images for a gray model */
    expect(e, 1, "image is RGB but the model is gray", "%s --good '%s/parts_rgb/test/good'", cfg,
           FIXTURES_DIR);
    /* a config whose colour does not match its model */
    expect(e, 1, "channel", "--config configs/rgb.yaml --good '%s/parts/test/good'", FIXTURES_DIR);
    /* config and usage errors: exit 2 */
    expect(e, 2, "threshold", "--config configs/broken.yaml --good '%s/parts/test/good'",
           FIXTURES_DIR);
    expect(e, 2, "missing.yaml", "--config configs/missing.yaml --good empty");
    expect(e, 2, "--good DIR is required", "%s", cfg);
    expect(e, 2, "--config FILE is required", "--good empty");
    expect(e, 2, "--target-frr '0'", "%s --good empty --target-frr 0", cfg);
    expect(e, 2, "--target-frr 'lots'", "%s --good empty --target-frr lots", cfg);
    expect(e, 2, "--confidence '1'", "%s --good empty --confidence 1", cfg);
    expect(e, 2, "--confidence '30%'", "%s --good empty --confidence 30%%", cfg);
    expect(e, 2, "--pick youden needs --bad", "%s --good empty --pick youden", cfg);
    expect(e, 2, "--pick 'best'", "%s --good empty --pick best", cfg);
    expect(e, 2, "unknown option '--frobnicate'", "%s --good empty --frobnicate", cfg);
    expect(e, 2, "option '--bad' needs a value", "%s --good empty --bad --write", cfg);
    expect(e, 0, "usage: anomalyctl calibrate", "--help");
    /* a plot that cannot be written is a runtime failure, and nothing was
     * written to the config on the way */
    expect(e, 1, "no/such/folder/p.png", "%s --good '%s/parts/test/good' --plot no/such/folder/p.png "
           "--write", cfg, FIXTURES_DIR);
    size_t len;
    char *now = slurp(e->config, &len);
    assert_int_equal(len, e->original_len);
    assert_memory_equal(now, e->original, len);
    free(now);
}

/* Wait (polling, generous limit: this is not a timing assertion) until the
 * file holds the text; 0 when it does. */
static int wait_for_text(const char *path, const char *text)
{
    char *o = NULL;
    int rc = run(&o, "for i in $(seq 1200); do grep -qF -- '%s' '%s' && exit 0; sleep 0.1; done; exit 1",
                 text, path);
    free(o);
    return rc;
}

/* The last step of calibrating a running station: the daemon picks up the
 * written threshold on SIGHUP and judges frames with it. */
static void test_running_daemon_picks_up_written_threshold(void **state)
{
    env *e = *state;
    char path[1100], log[1100];
    snprintf(path, sizeof path, "%s/parts", e->dir);
    assert_int_equal(symlink(FIXTURES_DIR "/parts", path), 0);
    char *cfg = ts_write_text(e->dir, "configs/daemon.yaml",
                              "line:\n  name: calib_daemon\n"
                              "camera:\n  source: replay\n  replay_dir: ../parts/test/good\n"
                              "  replay_loop: true\n  fps: 20\n  width: 64\n  height: 64\n"
                              "model:\n  path: ../model/parts.safetensors\n  color: gray\n"
                              "  input_width: 64\n  input_height: 64\n"
                              "detector:\n  map: diff\n  noise_level: 0.25\n  sigma: 2\n  threads: 1\n"
                              "threshold: 0.5   # calibrate writes here\n"
                              "reject_log:\n  database: ../rejects.db\n  image_dir: ../images\n");
    snprintf(log, sizeof log, "%s/daemon.log", e->dir);
    char *daemon = ts_bin("anomalyd"), *bin = ts_bin("anomalyctl"), *out = NULL;
    int rc = run(&out, "cd '%s' && ('%s' --config '%s' > daemon.log 2>&1 & echo $! > daemon.pid)",
                 e->dir, daemon, cfg);
    assert_int_equal(rc, 0);
    free(out);
    if (wait_for_text(log, "ready:") != 0) fail_msg("the daemon did not start; see %s", log);

    rc = run(&out, "'%s' calibrate --config '%s' --good '%s/parts/test/good' --target-frr 20%% "
             "--write", bin, cfg, FIXTURES_DIR);
    if (rc != 0) fail_msg("calibrate exited %d:\n%s", rc, out);
    char thr[64], want[160];
    result_field(out, "threshold", thr, sizeof thr);
    free(out);
    rc = run(&out, "cd '%s' && kill -HUP $(cat daemon.pid)", e->dir);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(want, sizeof want, "inspection now uses the reloaded config: threshold %g",
             strtod(thr, NULL));
    if (wait_for_text(log, want) != 0) fail_msg("no '%s' in %s", want, log);
    /* frames are judged against it (the fixture's 004.png scores above both) */
    snprintf(want, sizeof want, "> threshold %.4f", strtod(thr, NULL));
    if (wait_for_text(log, want) != 0) fail_msg("no reject against the new threshold in %s", log);
    rc = run(&out, "cd '%s' && pid=$(cat daemon.pid) && kill -TERM $pid && "
             "while kill -0 $pid 2>/dev/null; do sleep 0.1; done && rm daemon.pid", e->dir);
    assert_int_equal(rc, 0);
    free(out);
    assert_int_equal(wait_for_text(log, "stopped:"), 0);
    print_message("daemon reloaded threshold %s on SIGHUP\n", thr);
    free(cfg);
    free(daemon);
    free(bin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_only_threshold_holds_on_held_out_parts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auroc_matches_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_daemon_picks_up_written_threshold, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

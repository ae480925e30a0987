/* Integration tests: the real anomalyd binary on the replay source with the
 * fixture model (fixtures/model/parts.safetensors) and frames
 * (fixtures/replay/frames, labels.csv).
 *
 * The threshold is not hard-coded: the test scores every fixture frame with
 * the same library calls the daemon uses, checks that good and defective
 * frames separate, and puts the threshold halfway between them. */
#include "daemon_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/calib.h"
#include "anomalyd/config.h"
#include "anomalyd/daemon.h"
#include "anomalyd/detect.h"
#include "anomalyd/util.h"

#define MAX_FRAMES 256

static struct {
    int nframes;
    bool defect[MAX_FRAMES];
    int ndefects;
    double score[MAX_FRAMES];
    double threshold;
    double max_good, min_bad;
    bool separated;
    bool above[MAX_FRAMES]; /* library score > threshold */
    int nabove;
} g;

/* ---- helpers ---- */

/* Scores every replay frame like the daemon does, once per program. */
static void score_fixture_frames(void)
{
    if (g.nframes) return;
    char path[1300], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/replay/labels.csv", FIXTURES_DIR);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[512];
    assert_non_null(fgets(line, sizeof line, fp)); /* header */
    char *names[MAX_FRAMES];
    while (fgets(line, sizeof line, fp) && g.nframes < MAX_FRAMES) {
        char *comma = strchr(line, ',');
        if (!comma) continue;
        *comma = 0;
        line[strcspn(line, "\r\n")] = 0;
        comma[1 + strcspn(comma + 1, "\r\n")] = 0;
        names[g.nframes] = ad_xstrdup(line);
        g.defect[g.nframes] = strcmp(comma + 1, "good") != 0;
        g.ndefects += g.defect[g.nframes];
        g.nframes++;
    }
    fclose(fp);
    assert_true(g.nframes >= 8);
    assert_true(g.ndefects >= 1 && g.ndefects < g.nframes);

    fx *tmp = fx_new("daemon-score");
    write_config(tmp, 0.5, false, 100);
    ad_config cfg;
    if (ad_config_load(tmp->config, &cfg, err, sizeof err) != 0) fail_msg("config: %s", err);
    ad_detector *det = NULL;
    if (ad_detector_open(&det, &cfg, err, sizeof err) != 0) fail_msg("model: %s", err);
    double max_good = -1e30, min_bad = 1e30;
    for (int i = 0; i < g.nframes; i++) {
        ad_image frame = {0}, roi = {0};
        snprintf(path, sizeof path, "%s/replay/frames/%s", FIXTURES_DIR, names[i]);
        if (ad_png_read(path, 1, &frame, err, sizeof err) != 0) fail_msg("%s", err);
        assert_int_equal(ad_preprocess_roi(&cfg, &frame, &roi, err, sizeof err), 0);
        ad_result res;
        assert_int_equal(ad_detector_inspect(det, &roi, &res, err, sizeof err), 0);
        g.score[i] = res.score;
        if (g.defect[i] && res.score < min_bad) min_bad = res.score;
        if (!g.defect[i] && res.score > max_good) max_good = res.score;
        ad_image_free(&frame);
        ad_image_free(&roi);
        free(names[i]);
    }
    ad_detector_close(det);
    fx_free(tmp);
    g.max_good = max_good;
    g.min_bad = min_bad;
    g.separated = max_good < min_bad;
    if (g.separated) {
        g.threshold = 0.5 * (max_good + min_bad);
    } else {
        /* The daemon's mechanics are still tested with a threshold that
         * rejects some frames; test_fixture_model_separates_replay fails. */
        double sorted[MAX_FRAMES];
        memcpy(sorted, g.score, sizeof(double) * (size_t)g.nframes);
        ad_sort_doubles(sorted, (size_t)g.nframes);
        g.threshold = ad_quantile_sorted(sorted, (size_t)g.nframes, 0.8);
        fprintf(stderr, "warning: fixture model does not separate the replay frames (max good "
                "%g, min defect %g); threshold %g rejects the top 20%%\n", max_good, min_bad,
                g.threshold);
    }
    for (int i = 0; i < g.nframes; i++) {
        g.above[i] = g.score[i] > g.threshold;
        g.nabove += g.above[i];
    }
}

static int setup(void **state)
{
    score_fixture_frames();
    *state = fx_new("daemon");
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* ---- tests ---- */

static void test_usage_and_exit_codes(void **state)
{
    fx *f = *state;
    char *bin = ts_bin("anomalyd"), cmd[2600], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --help", bin);
    assert_int_equal(ts_run(cmd, &out), 0);
    assert_non_null(strstr(out, "--check-config"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s --version", bin);
    assert_int_equal(ts_run(cmd, &out), 0);
    assert_non_null(strstr(out, "anomalyd "));
    free(out);
    snprintf(cmd, sizeof cmd, "%s", bin);
    assert_int_equal(ts_run(cmd, NULL), 2);
    snprintf(cmd, sizeof cmd, "%s --config x --bogus", bin);
    assert_int_equal(ts_run(cmd, NULL), 2);
    snprintf(cmd, sizeof cmd, "%s --config %s/nope.yaml", bin, f->dir);
    assert_int_equal(ts_run(cmd, &out), 2);
    assert_non_null(strstr(out, "nope.yaml"));
    free(out);
    /* YAML syntax error: exit 2 naming file and line. */
    free(ts_write_text(f->dir, "bad.yaml", "line:\n  name: x\nthreshold: [oops\n"));
    snprintf(cmd, sizeof cmd, "%s --config %s/bad.yaml --check-config", bin, f->dir);
    assert_int_equal(ts_run(cmd, &out), 2);
    assert_non_null(strstr(out, "bad.yaml:"));
    free(out);
    /* Valid config, missing model: --check-config exits 1. */
    write_config(f, 1.0, false, 100);
    char *text = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(f->config, 1 << 20, (uint8_t **)&text, &len, err, sizeof err), 0);
    char *model = strstr(text, "parts.safetensors");
    assert_non_null(model);
    memcpy(model, "nope0.safetensors", 17);
    free(ts_write_text(f->dir, "nomodel.yaml", text));
    free(text);
    snprintf(cmd, sizeof cmd, "%s --config %s/nomodel.yaml --check-config", bin, f->dir);
    assert_int_equal(ts_run(cmd, &out), 1);
    assert_non_null(strstr(out, "nope0.safetensors"));
    free(out);
    /* --no-drop is for the replay source only. */
    char v4l2[2600];
    snprintf(v4l2, sizeof v4l2,
             "line:\n  name: cam\ncamera:\n  source: v4l2\n  device: /dev/video0\n"
             "model:\n  path: %s/model/parts.safetensors\nthreshold: 0.5\n", FIXTURES_DIR);
    free(ts_write_text(f->dir, "v4l2.yaml", v4l2));
    snprintf(cmd, sizeof cmd, "%s --config %s/v4l2.yaml --no-drop", bin, f->dir);
    assert_int_equal(ts_run(cmd, &out), 2);
    assert_non_null(strstr(out, "--no-drop"));
    free(out);
    free(bin);
}

static void test_check_config_fixture(void **state)
{
    (void)state;
    char *bin = ts_bin("anomalyd"), cmd[2600], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s/configs/daemon_replay.yaml --check-config", bin,
             FIXTURES_DIR);
    int rc = ts_run(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "threshold:"));
    assert_non_null(strstr(out, "config OK"));
    free(out);
    free(bin);
}

/* Every frame once (--no-drop): exactly the defective frames become rows,
 * with PNGs and scores above the threshold; the notify socket hears READY,
 * STATUS and STOPPING; the counters row accounts for every frame. */
static void test_replay_logs_exactly_defective(void **state)
{
    fx *f = *state;
    write_config(f, g.threshold, false, 500);
    start_daemon(f, "--no-drop");
    assert_int_equal(wait_exit(f), 0);
    drain_notify(f);
    assert_non_null(strstr(f->notes, "READY=1"));
    assert_non_null(strstr(f->notes, "STATUS=dtest: "));
    assert_non_null(strstr(f->notes, "STOPPING=1"));
    assert_true(strstr(f->notes, "READY=1") < strstr(f->notes, "STOPPING=1"));

    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), g.nabove);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT frame_seq, score, threshold, image_path, "
                                        "heatmap_path, box_x, box_w FROM rejects ORDER BY id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int seq = sqlite3_column_int(s, 0);
        assert_true(seq >= 0 && seq < g.nframes);
        if (!g.above[seq]) fail_msg("frame %d (score %g) was logged as a reject", seq, g.score[seq]);
        assert_true(sqlite3_column_double(s, 1) > sqlite3_column_double(s, 2));
        assert_float_equal(sqlite3_column_double(s, 2), g.threshold, 1e-6);
        assert_float_equal(sqlite3_column_double(s, 1), g.score[seq], 1e-4);
        assert_true(file_exists((const char *)sqlite3_column_text(s, 3)));
        assert_true(file_exists((const char *)sqlite3_column_text(s, 4)));
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
            /* box in frame pixels: inside the ROI at (8, 8) */
            assert_true(sqlite3_column_int(s, 5) >= 8);
            assert_true(sqlite3_column_int(s, 6) >= 1);
        }
        rows++;
    }
    sqlite3_finalize(s);
    assert_int_equal(rows, g.nabove);
    assert_int_equal(q_int(db, "SELECT COUNT(DISTINCT frame_seq) FROM rejects"), g.nabove);
    assert_int_equal(q_int(db, "SELECT SUM(captured) FROM counters"), g.nframes);
    assert_int_equal(q_int(db, "SELECT SUM(inspected) FROM counters"), g.nframes);
    assert_int_equal(q_int(db, "SELECT SUM(dropped) FROM counters"), 0);
    assert_int_equal(q_int(db, "SELECT SUM(rejects) FROM counters"), g.nabove);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM counters WHERE latency_ms_p99 > 0"),
                     q_int(db, "SELECT COUNT(*) FROM counters WHERE inspected > 0"));
    sqlite3_close(db);
    /* Exactly the frames over the threshold: the defective ones when the
     * model separates them (test_fixture_model_separates_replay). */
    if (g.separated)
        for (int i = 0; i < g.nframes; i++) assert_int_equal(g.above[i], g.defect[i]);
}

/* Detector quality, not daemon mechanics: with the fixture model every
 * defective replay frame scores above every good one, so a threshold exists
 * that logs exactly the defective frames. */
static void test_fixture_model_separates_replay(void **state)
{
    (void)state;
    for (int i = 0; i < g.nframes; i++)
        fprintf(stderr, "frame %2d %-6s score %.4f\n", i, g.defect[i] ? "defect" : "good",
                g.score[i]);
    if (!g.separated)
        fail_msg("fixture model does not separate good from defective replay frames "
                 "(max good score %g >= min defect score %g)", g.max_good, g.min_bad);
}

/* SIGHUP with a new threshold takes effect; SIGHUP with a broken config keeps
 * the daemon running on the previous one. */
static void test_sighup_reload(void **state)
{
    fx *f = *state;
    write_config(f, 1e9, true, 200); /* nothing is a reject */
    start_daemon(f, "--no-drop");
    wait_notify(f, "READY=1");
    double until = now_s() + DH_WAIT_S;
    while (status_captured(f) < g.nframes) { /* one full pass, no rejects */
        if (now_s() > until) fail_msg("fewer than %d frames captured", g.nframes);
        sleep_s(0.05);
    }
    assert_int_equal(db_rows(f), 0);

    write_config(f, g.threshold, true, 200);
    kill(f->pid, SIGHUP);
    wait_log(f, "inspection now uses the reloaded config", 1);
    wait_log(f, "reject: frame", g.nabove); /* a full pass of rejects after the reload */
    wait_notify(f, "RELOADING=1");
    /* only the threshold changed: the camera stays open (options compared
     * field by field, ad_capture_options_equal) */
    assert_int_equal(log_count(f, "camera settings changed"), 0);

    free(ts_write_text(f->dir, "dtest.yaml", "line:\n  name: dtest\nthreshold: [broken\n"));
    kill(f->pid, SIGHUP);
    wait_log(f, "reload failed, still running on the previous config", 1);
    char *log = read_log(f);
    int before = count_in(log, "reject: frame");
    free(log);
    wait_log(f, "reject: frame", before + g.nabove); /* still inspecting, same threshold */
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);

    sqlite3 *db = open_db(f);
    long long rows = q_int(db, "SELECT COUNT(*) FROM rejects");
    assert_true(rows >= 2 * g.nabove);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM rejects WHERE abs(threshold - %.9g) < 1e-6",
             g.threshold);
    assert_int_equal(q_int(db, sql), rows);
    sqlite3_close(db);
    log = read_log(f);
    assert_int_equal(count_in(log, "reject: frame"), rows);
    free(log);
}

/* SIGTERM: every reject the inspection thread announced is a row. With a
 * threshold of 0 every frame is a reject, so the writer is busy (and images
 * may be skipped once too many wait), yet no row is lost. */
static void test_sigterm_flushes_every_row(void **state)
{
    fx *f = *state;
    write_config(f, 0.0, true, 1000);
    start_daemon(f, "--no-drop");
    wait_notify(f, "READY=1");
    wait_log(f, "reject: frame", 12);
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    char *log = read_log(f);
    int announced = count_in(log, "reject: frame");
    assert_null(strstr(log, "NOT recorded"));
    free(log);
    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), announced);
    assert_int_equal(q_int(db, "SELECT MAX(id) FROM rejects"), announced);
    assert_int_equal(q_int(db, "SELECT SUM(rejects) FROM counters"), announced);
    /* Rows whose images were written name existing files. */
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NOT NULL") +
                         q_int(db, "SELECT SUM(images_skipped) FROM counters"),
                     announced);
    sqlite3_close(db);
}

/* kill -9 mid-run: the database is intact and every row a reader saw
 * committed before the kill is still there. */
static void test_kill9_keeps_committed_rows(void **state)
{
    fx *f = *state;
    write_config(f, 0.0, true, 1000);
    start_daemon(f, "--no-drop");
    wait_notify(f, "READY=1");
    long long seen = 0, max_id = 0;
    double until = now_s() + DH_WAIT_S;
    while (seen < 10) {
        if (now_s() > until) fail_msg("no rows appeared");
        sleep_s(0.05);
        struct stat sb;
        if (stat(f->db, &sb) != 0) continue;
        sqlite3 *db = open_db(f);
        seen = q_int(db, "SELECT COUNT(*) FROM rejects");
        max_id = q_int(db, "SELECT COALESCE(MAX(id), 0) FROM rejects");
        sqlite3_close(db);
    }
    kill(f->pid, SIGKILL);
    assert_int_equal(wait_exit(f), 128 + SIGKILL);
    sqlite3 *db = open_db(f);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    assert_true(q_int(db, "SELECT COUNT(*) FROM rejects") >= seen);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM rejects WHERE id <= %lld", max_id);
    assert_int_equal(q_int(db, sql), max_id);
    /* A committed row's images exist (written durably before the commit). */
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NOT NULL"),
                     q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NOT NULL "
                               "AND heatmap_path IS NOT NULL"));
    s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT image_path FROM rejects WHERE image_path "
                                            "IS NOT NULL", -1, &s, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW)
        assert_true(file_exists((const char *)sqlite3_column_text(s, 0)));
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* Another connection holds the write lock until the writer has given up on
 * it once (3 s at least): capture keeps counting frames (STATUS comes from
 * the main thread, not the writer), and once the lock is gone every
 * announced reject is a row. */
static void test_write_lock_loses_nothing(void **state)
{
    fx *f = *state;
    write_config(f, g.threshold, true, 30);
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    wait_log(f, "reject: frame", 1);
    wait_log(f, "created reject log", 1);
    sqlite3 *db = open_db(f);
    char *log = read_log(f);
    int before = count_in(log, "reject: frame");
    free(log);
    long cap0 = status_captured(f);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    /* At least 3 s, until the writer has given up on the lock once (its
     * busy timeout is 2 s, so on a slow machine the first reject after the
     * lock began may come late enough to outwait a fixed 3 s), and until a
     * reject has been announced while the lock is held (under a sanitizer on
     * a loaded machine inspection can take longer than 3 s). */
    double until = now_s() + 3.0, give_up = now_s() + 120.0;
    int during = 0;
    for (;;) {
        drain_notify(f);
        log = read_log(f);
        during = count_in(log, "reject: frame") - before;
        int held = strstr(log, "keeping the rows in memory") != NULL;
        free(log);
        if ((now_s() >= until && held && during >= 1) || now_s() >= give_up) break;
        sleep_s(0.05);
    }
    wait_log(f, "keeping the rows in memory", 1);
    long cap1 = status_captured(f);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* ~90 frames at 30 fps; a loose bound, this is no speed test. */
    if (cap1 - cap0 < 10) fail_msg("capture stalled during the lock: %ld -> %ld", cap0, cap1);
    assert_true(during >= 1);

    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    log = read_log(f);
    int announced = count_in(log, "reject: frame");
    assert_null(strstr(log, "NOT recorded"));
    free(log);
    assert_int_equal(db_rows(f), announced);
}

/* The camera (here: the replay folder) is missing at start: systemd hears
 * "waiting for camera" and watchdog pings but no READY; once it appears the
 * daemon opens it (backoff 1, 2, 4 s) and only then says READY. */
static void test_waits_for_camera(void **state)
{
    fx *f = *state;
    char link[1300];
    snprintf(link, sizeof link, "%s/frames", f->dir);
    snprintf(f->replay, sizeof f->replay, "%s", link);
    write_config(f, g.threshold, true, 100);
    start_daemon(f, NULL);
    wait_notify(f, "waiting for camera");
    wait_notify(f, "WATCHDOG=1");
    assert_null(strstr(f->notes, "READY=1"));
    char target[1300];
    snprintf(target, sizeof target, "%s/replay/frames", FIXTURES_DIR);
    assert_int_equal(symlink(target, link), 0);
    wait_notify(f, "READY=1");
    wait_log(f, "camera is back", 1);
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
}

/* The day folder for today's images cannot be created (a file is in the
 * way): rejects are still rows, with NULL paths, and the skip is counted
 * and logged once. */
static void test_unwritable_images_keep_rows(void **state)
{
    fx *f = *state;
    assert_int_equal(ad_mkdirs(f->images, 0755, NULL, 0), 0);
    time_t now = time(NULL);
    for (int day = 0; day < 2; day++) { /* today and tomorrow (UTC midnight) */
        time_t t = now + day * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        char name[32];
        strftime(name, sizeof name, "%Y-%m-%d", &tm);
        free(ts_write_text(f->images, name, "in the way"));
    }
    write_config(f, g.threshold, false, 500);
    start_daemon(f, "--no-drop");
    assert_int_equal(wait_exit(f), 0);
    char *log = read_log(f);
    assert_int_equal(count_in(log, "images of rejects are skipped"), 1);
    free(log);
    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), g.nabove);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NULL "
                               "AND heatmap_path IS NULL"), g.nabove);
    sqlite3_close(db);
}

static void test_unit_file_verifies(void **state)
{
    fx *f = *state;
    if (ts_run("command -v systemd-analyze >/dev/null", NULL) != 0) {
        skip(); /* systemd not installed: nothing to verify with */
    }
    char *bin = ts_bin("anomalyd"), cmd[4096], *out = NULL;
    /* Point the unit at the built binary so verify can check ExecStart. */
    snprintf(cmd, sizeof cmd,
             "sed -e 's#/usr/sbin/anomalyd#%s#g' -e '/^ConditionPathExists=/d' "
             "%s/systemd/anomalyd@.service > %s/anomalyd@dtest.service && "
             "systemd-analyze verify %s/anomalyd@dtest.service",
             bin, SOURCE_DIR, f->dir, f->dir);
    int rc = ts_run(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    free(bin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_and_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_logs_exactly_defective, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_model_separates_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_flushes_every_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_keeps_committed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_lock_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_camera, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_images_keep_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_file_verifies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The part trigger end to end: the real anomalyctl records the empty
 * station from fixtures/line/empty (capture --empty), then the real anomalyd
 * replays each sequence of fixtures/line with trigger.mode part and
 * --no-drop. Against each sequence's truth.csv: every part that comes to
 * rest is inspected exactly once, on a frame where it rests; a part that
 * never settles is never inspected (and said so); every defective part
 * gives exactly one SQLite row, carrying its part number; the command
 * output runs once per reject with that part's number. */
#include "line_station.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomalyd/util.h"

typedef struct inspection {
    long part;
    int frame;
    bool reject;
} inspection;

static char *reference; /* the empty station, recorded once for every test */

static int record_empty_station(void **state)
{
    (void)state;
    reference = ls_record_reference();
    return 0;
}

static int remove_reference(void **state)
{
    (void)state;
    ls_reference_free(reference);
    return 0;
}

/* The daemon's line for each part: "good: frame F score ..., part N (part)"
 * or "reject: frame F score ..., part N (part)". */
static int read_inspections(const char *log, inspection *out, int max)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, ": frame ")) != NULL; p++) {
        bool reject = p >= log + 6 && strncmp(p - 6, "reject", 6) == 0;
        bool good = p >= log + 4 && strncmp(p - 4, "good", 4) == 0;
        const char *eol = strchr(p, '\n'), *at = strstr(p, ", part ");
        if (!(reject || good) || !at || (eol && at > eol)) continue;
        int frame;
        long part;
        assert_int_equal(sscanf(p, ": frame %d", &frame), 1);
        assert_int_equal(sscanf(at, ", part %ld (part)", &part), 1);
        assert_true(n < max);
        out[n++] = (inspection){part, frame, reject};
    }
    return n;
}

/* anomalyd --no-drop on fixtures/line/SEQ to its end. */
static void run_sequence(fx *f, const char *seq, const char *extra)
{
    ls_write_config(f, seq, false, "part", reference, extra);
    ls_run_to_end(f);
}

/* Checks a finished run of seq against its truth; returns the defective
 * parts' part numbers in reject_parts (*nrejects of them). */
static void check_against_truth(fx *f, const char *seq, long *reject_parts, int *nrejects)
{
    ls_part truth[LS_MAX_PARTS];
    int nt = ls_read_truth(seq, truth);
    inspection seen[64];
    char *log = read_log(f);
    int ns = read_inspections(log, seen, 64);
    int resting = 0, defective = 0;
    *nrejects = 0;
    for (int i = 0; i < nt; i++) {
        if (truth[i].rests_from < 0) continue;
        resting++;
        bool bad = strcmp(truth[i].defect, "good") != 0;
        int hits = 0;
        for (int k = 0; k < ns; k++) {
            if (seen[k].frame < truth[i].rests_from || seen[k].frame > truth[i].rests_to) continue;
            hits++;
            assert_int_equal(seen[k].reject, bad);
            if (bad) reject_parts[(*nrejects)++] = seen[k].part;
        }
        if (hits != 1) print_error("%s: truth part %d (%s, at rest %d..%d) inspected %d times\n", seq, i + 1,
                                   truth[i].defect, truth[i].rests_from, truth[i].rests_to, hits);
        assert_int_equal(hits, 1);
        defective += bad;
    }
    /* no inspection outside a part at rest, numbered 1, 2, ... */
    assert_int_equal(ns, resting);
    for (int k = 0; k < ns; k++) assert_int_equal(seen[k].part, k + 1);

    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), defective);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE trigger = 'part' AND part_id IS NULL"),
                     defective);
    for (int r = 0; r < *nrejects; r++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM rejects WHERE part = %ld", reject_parts[r]);
        assert_int_equal(q_int(db, sql), 1);
    }
    sqlite3_close(db);
    free(log);
}

static void sequence_matches_truth(const char *seq, int expect_inspected, int expect_rows)
{
    fx *f = fx_new("line-replay");
    run_sequence(f, seq, NULL);
    long rejects[LS_MAX_PARTS];
    int n;
    check_against_truth(f, seq, rejects, &n);
    assert_int_equal(n, expect_rows);
    char want[64];
    snprintf(want, sizeof want, "inspected %d, dropped 0, rejects %d (", expect_inspected, expect_rows);
    assert_int_equal(log_count(f, want), 1);
    fx_free(f);
}

static void empty_station_inspects_nothing(void **state)
{
    (void)state;
    sequence_matches_truth("empty", 0, 0);
}

static void a_part_arriving_resting_and_leaving_is_inspected_once(void **state)
{
    (void)state;
    sequence_matches_truth("arrive_rest_leave", 1, 0);
}

static void two_parts_back_to_back_are_two_inspections(void **state)
{
    (void)state;
    sequence_matches_truth("back_to_back", 2, 0);
}

static void a_part_that_never_settles_is_logged_not_inspected(void **state)
{
    (void)state;
    fx *f = fx_new("line-replay");
    run_sequence(f, "never_settles", NULL);
    long rejects[LS_MAX_PARTS];
    int n;
    check_against_truth(f, "never_settles", rejects, &n);
    assert_int_equal(log_count(f, "a part passed without coming to rest: not inspected (1 so far"), 1);
    assert_int_equal(log_count(f, "parts that passed without coming to rest: 1"), 1);
    fx_free(f);
}

static void a_defective_part_resting_60_frames_gives_one_row(void **state)
{
    (void)state;
    sequence_matches_truth("defect_rests_60", 1, 1);
}

/* A command output for f: a script appending `words` (with $ANOMALYD_*
 * variables) as a line to out, and in extra the YAML that runs it. */
static void make_hook(fx *f, const char *words, char *out, size_t outlen, char *extra, size_t extralen)
{
    char text[512];
    snprintf(out, outlen, "%s/hook.txt", f->dir);
    snprintf(text, sizeof text, "#!/bin/sh\necho \"%s\" >> \"$1\"\n", words);
    char *hook = ts_write_text(f->dir, "hook.sh", text);
    chmod(hook, 0755);
    snprintf(extra, extralen, "outputs:\n  command:\n    on_reject: [%s, %s]\n", hook, out);
    free(hook);
}

/* The mix, with the command output: one run per defective part, with its
 * part number, and the row's image path. */
static void a_mix_gives_one_row_and_one_command_run_per_defective_part(void **state)
{
    (void)state;
    fx *f = fx_new("line-replay");
    char out[1300], extra[4096];
    make_hook(f, "$ANOMALYD_VERDICT $ANOMALYD_PART $ANOMALYD_IMAGE", out, sizeof out, extra, sizeof extra);
    run_sequence(f, "mixed", extra);
    long rejects[LS_MAX_PARTS];
    int n;
    check_against_truth(f, "mixed", rejects, &n);
    assert_int_equal(n, 2);
    /* the daemon waited for the command before it exited (close flushes) */
    uint8_t *text = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(out, 1 << 16, &text, &len, err, sizeof err), 0);
    sqlite3 *db = open_db(f);
    for (int r = 0; r < n; r++) {
        char sql[256], want[1400];
        snprintf(sql, sizeof sql, "SELECT image_path FROM rejects WHERE part = %ld", rejects[r]);
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        snprintf(want, sizeof want, "reject %ld %s\n", rejects[r], (const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        assert_int_equal(ts_count((char *)text, want), 1);
    }
    sqlite3_close(db);
    assert_int_equal(ts_count((char *)text, "\n"), n);
    free(text);
    fx_free(f);
}

/* capture --empty measures the camera's noise: at a pixel_delta inside it
 * the empty station would look like a part, and it says what to set. */
static void capture_empty_says_when_pixel_delta_is_inside_the_noise(void **state)
{
    (void)state;
    fx *f = fx_new("line-noise");
    char out_png[1300], args[3000];
    snprintf(out_png, sizeof out_png, "%s/empty.png", f->dir);
    ls_write_config(f, "empty", false, "part", out_png, "    pixel_delta: 2\n");
    snprintf(args, sizeof args, "capture --config %s --empty --count 20", f->config);
    int rc;
    char *out = ts_run_bin("anomalyctl", args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "camera noise: the frames stray from it by up to 4 gray levels on the 32x32 grid"));
    assert_non_null(strstr(out, "warning: the empty station looks like a part at these settings: set "
                                "trigger.part.pixel_delta to at least 12"));
    assert_true(file_exists(out_png));
    free(out);
    fx_free(f);
}

/* --check-config: a reference it cannot read is an error (exit 1) that
 * says how to record one; a command that is not there is a warning. */
static void check_config_reads_the_reference_and_probes_the_outputs(void **state)
{
    (void)state;
    fx *f = fx_new("line-check");
    char missing[1300], args[1400];
    snprintf(missing, sizeof missing, "%s/nothing-here.png", f->dir);
    ls_write_config(f, "mixed", false, "part", missing, NULL);
    snprintf(args, sizeof args, "--config %s --check-config", f->config);
    int rc;
    char *out = ts_run_bin("anomalyd", args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "trigger.mode is part but the empty-station reference cannot be read"));
    assert_non_null(strstr(out, "record it with: anomalyctl capture --config"));
    free(out);

    ls_write_config(f, "mixed", false, "part", reference,
                      "outputs:\n  command:\n    on_reject: [/nonexistent/reject-gate, --now]\n");
    out = ts_run_bin("anomalyd", args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "warning: command output: outputs.command.on_reject: /nonexistent/reject-gate "
                                "is not an executable file"));
    assert_non_null(strstr(out, "config OK"));
    free(out);
    fx_free(f);
}

/* Lines of a file (0 when it does not exist yet). */
static int file_lines(const char *path)
{
    uint8_t *text = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 20, &text, &len, err, sizeof err) != 0) return 0;
    int n = (int)ts_count((char *)text, "\n");
    free(text);
    return n;
}

static void wait_lines(const char *path, int n)
{
    double until = now_s() + DH_WAIT_S;
    while (file_lines(path) < n) {
        if (now_s() > until) fail_msg("%s never had %d lines", path, n);
        sleep_s(0.05);
    }
}

/* SIGHUP applies trigger and output changes: a command added runs, a
 * reference that cannot be read fails the reload (the old settings go on),
 * and a new trigger.mode reaches the inspection; the part trigger is not
 * reopened when its settings did not change. */
static void sighup_applies_trigger_and_output_changes(void **state)
{
    (void)state;
    fx *f = fx_new("line-reload");
    char out[1300], extra[4096], missing[1300];
    snprintf(missing, sizeof missing, "%s/nothing-here.png", f->dir);
    make_hook(f, "$ANOMALYD_PART", out, sizeof out, extra, sizeof extra);

    ls_write_config(f, "mixed", true, "part", reference, NULL);
    start_daemon(f, "--no-drop");
    wait_log(f, "reject: frame", 1);
    assert_int_equal(file_lines(out), 0);

    ls_write_config(f, "mixed", true, "part", reference, extra);
    kill(f->pid, SIGHUP);
    wait_log(f, "reload: command output opened with the new settings", 1);
    wait_lines(out, 2);
    assert_int_equal(log_count(f, "part trigger: empty station"), 1); /* not reopened */

    ls_write_config(f, "mixed", true, "part", missing, extra);
    kill(f->pid, SIGHUP);
    wait_log(f, "reload failed, still running on the previous config", 1);
    int runs = file_lines(out);
    wait_lines(out, runs + 2); /* the command still runs, the part trigger still inspects */

    ls_write_config(f, "mixed", true, "continuous", reference, NULL);
    kill(f->pid, SIGHUP);
    wait_log(f, "reload: command output closed (no longer configured)", 1);
    wait_log(f, "trigger continuous", 1);
    wait_log(f, "(continuous)", 1); /* every frame now: a sliding part is a reject */
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_station_inspects_nothing),
        cmocka_unit_test(a_part_arriving_resting_and_leaving_is_inspected_once),
        cmocka_unit_test(two_parts_back_to_back_are_two_inspections),
        cmocka_unit_test(a_part_that_never_settles_is_logged_not_inspected),
        cmocka_unit_test(a_defective_part_resting_60_frames_gives_one_row),
        cmocka_unit_test(a_mix_gives_one_row_and_one_command_run_per_defective_part),
        cmocka_unit_test(capture_empty_says_when_pixel_delta_is_inside_the_noise),
        cmocka_unit_test(check_config_reads_the_reference_and_probes_the_outputs),
        cmocka_unit_test(sighup_applies_trigger_and_output_changes),
    };
    return cmocka_run_group_tests(tests, record_empty_station, remove_reference);
}

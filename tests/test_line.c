/* Tests of the station I/O core (src/line/): the part trigger's state
 * machine on drawn frame sequences, the trigger queue, the command output
 * with real small programs (one that writes its environment to a file, one
 * that hangs with a child in its process group, one that exits 3), and
 * line_io's fan-out and reload. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"
#include "line/line.h"

/* ---- drawn frames: a 40x40 ROI, plate at 50, a 16x16 part ---- */

#define ROI 40

/* The plate with a little deterministic noise, and a part whose top-left
 * corner is at (x, 12) (anywhere, partly or wholly outside), textured by
 * `look` so two parts differ. */
static void draw(ad_image *im, int x, int look, unsigned noise_seed)
{
    ad_image_free(im);
    assert_int_equal(ad_image_alloc(im, ROI, ROI, 1), 0);
    ad_rng r;
    ad_rng_seed(&r, noise_seed);
    for (int y = 0; y < ROI; y++)
        for (int i = 0; i < ROI; i++) {
            int v = 50 + (int)ad_rng_below(&r, 5) - 2;
            if (i >= x && i < x + 16 && y >= 12 && y < 28) v = 150 + ((i + y * look) % 5) * 20;
            im->px[y * ROI + i] = (uint8_t)v;
        }
}

enum { OUT = -100 }; /* a part position out of view */

typedef struct run_result {
    int inspect_frames[16];
    int ninspect;
    int left, left_unsettled;
} run_result;

/* Feeds frames f = 0..n-1 with the part at pos[f] (OUT: none), look[f]. */
static void run(ad_part_detector *d, const int *pos, const int *look, int n, run_result *res)
{
    memset(res, 0, sizeof *res);
    ad_image im = {0};
    char err[AD_ERRLEN];
    for (int f = 0; f < n; f++) {
        draw(&im, pos[f], look ? look[f] : 1, 1000u + (unsigned)f);
        ad_part_step s;
        assert_int_equal(ad_part_detector_feed(d, &im, &s, err, sizeof err), 0);
        if (s.event == AD_PART_INSPECT) {
            assert_true(res->ninspect < 16);
            res->inspect_frames[res->ninspect++] = f;
        }
        res->left += s.event == AD_PART_LEFT;
        res->left_unsettled += s.event == AD_PART_LEFT_UNSETTLED;
    }
    ad_image_free(&im);
}

static void assert_counts(ad_part_detector *d, long arrived, long inspected, long unsettled)
{
    ad_part_counts c;
    ad_part_detector_counts(d, &c);
    assert_int_equal(c.arrived, arrived);
    assert_int_equal(c.inspected, inspected);
    assert_int_equal(c.unsettled, unsettled);
}

static ad_part_detector *open_detector(int settle)
{
    ad_config cfg;
    ad_config_defaults(&cfg);
    cfg.trigger.settle_frames = settle;
    ad_image ref = {0};
    draw(&ref, OUT, 1, 7);
    ad_part_detector *d = NULL;
    char err[AD_ERRLEN];
    int rc = ad_part_detector_open(&d, &cfg, &ref, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    ad_image_free(&ref);
    return d;
}

/* A part slides in from the left 4 px a frame from frame `enter`, rests at
 * x=12 for `rest` frames, then slides out to the right. Returns the frame
 * count written into pos. */
static int slide_in_rest_out(int *pos, int start, int enter, int rest)
{
    int f = start;
    for (; f < enter; f++) pos[f] = OUT;
    for (int x = -16; x < 12; x += 4) pos[f++] = x;
    for (int k = 0; k < rest; k++) pos[f++] = 12;
    for (int x = 16; x <= ROI; x += 4) pos[f++] = x;
    return f;
}

static void empty_station_is_never_inspected(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(3);
    int pos[30];
    for (int i = 0; i < 30; i++) pos[i] = OUT;
    run_result r;
    run(d, pos, NULL, 30, &r);
    assert_int_equal(r.ninspect, 0);
    assert_counts(d, 0, 0, 0);
    ad_part_detector_close(d);
}

static void a_part_is_inspected_once_on_its_first_frame_at_rest(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(3);
    int pos[200];
    int n = slide_in_rest_out(pos, 0, 5, 12);
    for (int k = 0; k < 6; k++) pos[n++] = OUT;
    run_result r;
    run(d, pos, NULL, n, &r);
    /* at rest from frame 5 + 7 = 12 (the first frame at x=12 still moved);
     * 13, 14, 15 are still: the third still frame is inspected */
    assert_int_equal(r.ninspect, 1);
    assert_int_equal(r.inspect_frames[0], 15);
    assert_int_equal(r.left, 1);
    assert_int_equal(r.left_unsettled, 0);
    /* re-armed: the same part again is inspected again */
    run(d, pos, NULL, n, &r);
    assert_int_equal(r.ninspect, 1);
    assert_counts(d, 2, 2, 0);
    ad_part_detector_close(d);
}

static void a_part_resting_60_frames_is_inspected_once(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(5);
    int pos[200];
    int n = slide_in_rest_out(pos, 0, 2, 60);
    run_result r;
    run(d, pos, NULL, n, &r);
    assert_int_equal(r.ninspect, 1);
    assert_int_equal(r.inspect_frames[0], 2 + 7 + 5);
    ad_part_detector_close(d);
}

static void a_part_that_never_settles_is_counted_not_inspected(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(3);
    int pos[40], n = 0;
    for (int k = 0; k < 3; k++) pos[n++] = OUT;
    for (int x = -16; x <= ROI; x += 3) pos[n++] = x; /* never stops */
    for (int k = 0; k < 3; k++) pos[n++] = OUT;
    run_result r;
    run(d, pos, NULL, n, &r);
    assert_int_equal(r.ninspect, 0);
    assert_int_equal(r.left_unsettled, 1);
    assert_counts(d, 1, 0, 1);
    ad_part_detector_close(d);
}

static void back_to_back_parts_are_two_parts(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(3);
    int pos[200], look[200], n = 0;
    /* part A rests at 12; then B pushes in as A slides out, so some part is
     * always in view; B (another texture) rests where A was */
    for (int x = -16; x < 12; x += 4) pos[n] = x, look[n++] = 1;
    for (int k = 0; k < 8; k++) pos[n] = 12, look[n++] = 1;
    for (int x = 16; x <= 28; x += 4) pos[n] = x, look[n++] = 1; /* A leaving, still in view */
    for (int x = -4; x < 12; x += 4) pos[n] = x, look[n++] = 3;  /* B arriving */
    for (int k = 0; k < 8; k++) pos[n] = 12, look[n++] = 3;
    run_result r;
    run(d, pos, look, n, &r);
    assert_int_equal(r.ninspect, 2);
    assert_int_equal(r.left, 0); /* the ROI was never empty */
    ad_part_detector_close(d);
}

static void a_shaken_part_is_not_inspected_again(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(3);
    int pos[200], n = 0;
    for (int x = -16; x < 12; x += 4) pos[n++] = x;
    for (int k = 0; k < 8; k++) pos[n++] = 12;
    pos[n++] = 13; /* a knock: moved by a pixel, then back */
    for (int k = 0; k < 8; k++) pos[n++] = 12;
    run_result r;
    run(d, pos, NULL, n, &r);
    assert_int_equal(r.ninspect, 1);
    ad_part_detector_close(d);
}

static void a_roi_of_another_size_is_refused(void **state)
{
    (void)state;
    ad_part_detector *d = open_detector(3);
    ad_image im = {0};
    assert_int_equal(ad_image_alloc(&im, ROI + 2, ROI, 1), 0);
    ad_part_step s;
    char err[AD_ERRLEN];
    assert_int_equal(ad_part_detector_feed(d, &im, &s, err, sizeof err), -1);
    assert_string_equal(err, "the ROI is 42x40 but the empty-station reference is 40x40; record the reference "
                             "again with anomalyctl capture --empty");
    ad_image_free(&im);
    ad_part_detector_close(d);
}

static void the_grid_is_gray_and_keeps_the_aspect(void **state)
{
    (void)state;
    ad_image rgb = {0}, g = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_image_alloc(&rgb, 64, 32, 3), 0);
    memset(rgb.px, 200, 64 * 32 * 3);
    assert_int_equal(ad_part_grid(&rgb, 16, &g, err, sizeof err), 0);
    assert_int_equal(g.w, 16);
    assert_int_equal(g.h, 8);
    assert_int_equal(g.c, 1);
    assert_int_equal(g.px[0], 200);
    ad_image_free(&g);
    ad_image_free(&rgb);
}

/* ---- the trigger queue ---- */

static void trigger_queue_is_bounded_and_counts_drops(void **state)
{
    (void)state;
    ad_trigger_queue *q = ad_trigger_queue_create(2);
    ad_trigger t;
    assert_false(ad_trigger_take(q, &t, 0));
    ad_trigger_fire(q, "A-1", 1.0);
    ad_trigger_fire(q, NULL, 2.0);
    ad_trigger_fire(q, "C", 3.0); /* full: dropped */
    assert_true(ad_trigger_take(q, &t, 0));
    assert_string_equal(t.part_id, "A-1");
    assert_true(t.t_fired == 1.0);
    assert_true(ad_trigger_take(q, &t, 0));
    assert_string_equal(t.part_id, "");
    assert_false(ad_trigger_take(q, &t, 0.01));
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    ad_trigger_fire(q, longid, 4.0);
    ad_trigger_fire(q, "E", 5.0);
    assert_int_equal(ad_trigger_flush(q), 2);
    ad_trigger_counts c;
    ad_trigger_queue_counts(q, &c);
    assert_int_equal(c.fired, 5);
    assert_int_equal(c.taken, 2);
    assert_int_equal(c.dropped, 3);
    ad_trigger_fire(q, longid, 6.0);
    assert_true(ad_trigger_take(q, &t, 0));
    assert_int_equal(strlen(t.part_id), 63);
    /* a reload's new length keeps the oldest that fit, in order */
    ad_trigger_queue_resize(q, 4);
    for (int i = 0; i < 4; i++) ad_trigger_fire(q, NULL, 10.0 + i);
    ad_trigger_queue_resize(q, 3);
    assert_true(ad_trigger_take(q, &t, 0));
    assert_true(t.t_fired == 10.0);
    ad_trigger_fire(q, NULL, 20.0);
    ad_trigger_fire(q, NULL, 21.0); /* full again: dropped */
    for (double want = 11.0; want <= 12.0; want += 1.0) {
        assert_true(ad_trigger_take(q, &t, 0));
        assert_true(t.t_fired == want);
    }
    assert_true(ad_trigger_take(q, &t, 0));
    assert_true(t.t_fired == 20.0);
    ad_trigger_queue_counts(q, &c);
    assert_int_equal(c.dropped, 3 + 1 + 1);
    ad_trigger_queue_close(q);
    ad_trigger_fire(q, "late", 7.0);
    assert_false(ad_trigger_take(q, &t, 1.0)); /* closed: at once */
    ad_trigger_queue_destroy(q);
}

/* ---- the command output, with real programs ---- */

static void command_config(ad_config *cfg, const char *const *argv, int timeout_ms, int queue)
{
    ad_config_defaults(cfg);
    size_t used = 0;
    int n = 0;
    for (; argv[n]; n++) {
        size_t len = strlen(argv[n]) + 1;
        assert_true(used + len <= sizeof cfg->outputs.command.on_reject);
        memcpy(cfg->outputs.command.on_reject + used, argv[n], len);
        used += len;
    }
    cfg->outputs.command.argc = n;
    cfg->outputs.command.timeout_ms = timeout_ms;
    cfg->outputs.command.queue = queue;
}

/* A command link running a script of ours with up to two arguments, its
 * log captured. */
typedef struct cmd_fx {
    char *dir, *script;
    ts_stderr_capture cap;
    ad_command_link *l;
} cmd_fx;

static void cmd_fx_open(cmd_fx *x, const char *tag, const char *script_text, const char *arg1, const char *arg2,
                        int timeout_ms, int queue)
{
    x->dir = ts_tmpdir(tag);
    x->script = ts_write_text(x->dir, "hook.sh", script_text);
    chmod(x->script, 0755);
    const char *argv[] = {x->script, arg1, arg1 ? arg2 : NULL, NULL};
    ad_config cfg;
    command_config(&cfg, argv, timeout_ms, queue);
    ts_stderr_capture_start(&x->cap, x->dir);
    char err[AD_ERRLEN];
    assert_int_equal(ad_command_link_open(&x->l, &cfg, NULL, err, sizeof err), 0);
}

/* Closes the link; returns its log (malloc'd). */
static char *cmd_fx_close(cmd_fx *x)
{
    ad_command_link_close(x->l);
    x->l = NULL;
    return ts_stderr_capture_stop(&x->cap);
}

static void cmd_fx_free(cmd_fx *x)
{
    free(x->script);
    ts_rmtree(x->dir);
    free(x->dir);
}

static ad_verdict a_reject(long part)
{
    ad_verdict v;
    memset(&v, 0, sizeof v);
    v.part = part;
    snprintf(v.part_id, sizeof v.part_id, "PID-%ld", part);
    snprintf(v.trigger, sizeof v.trigger, "mqtt");
    snprintf(v.ts, sizeof v.ts, "2026-01-02 03:04:05.678");
    snprintf(v.line, sizeof v.line, "line3");
    v.score = 0.75;
    v.threshold = 0.5;
    v.reject = true;
    v.box_x = 1, v.box_y = 2, v.box_w = 3, v.box_h = 4;
    v.area = 9;
    snprintf(v.image_path, sizeof v.image_path, "/var/lib/anomalyd/img/a b.png");
    snprintf(v.model_sha256, sizeof v.model_sha256, "%064d", 0);
    return v;
}

/* Waits until the link has run `runs` programs (no time limit but the
 * test's: a slow machine only makes it slower). */
static void wait_runs(ad_command_link *l, long runs)
{
    ad_link_counts c;
    for (;;) {
        ad_command_link_counts(l, &c);
        if (c.sent >= runs && c.queued == 0) return;
        usleep(10000);
    }
}

static void command_gets_the_verdict_in_its_environment(void **state)
{
    (void)state;
    cmd_fx x;
    char out[1300], err[AD_ERRLEN];
    setenv("ANOMALYD_VERDICT", "stale", 1); /* the daemon's own environment never leaks a verdict */
    char *tmp = ts_tmpdir("line-env");
    snprintf(out, sizeof out, "%s/env.txt", tmp);
    cmd_fx_open(&x, "line-cmd",
                "#!/bin/sh\n# writes its arguments and environment\n"
                "out=$1; shift\necho \"args: $*\" >> \"$out\"\n"
                "env | grep '^ANOMALYD_' | sort >> \"$out\"\n",
                out, "two words", 5000, 4);
    ad_verdict good = a_reject(6);
    good.reject = false;
    ad_command_link_recorded(x.l, &good); /* a good part runs nothing */
    ad_verdict v = a_reject(7);
    ad_command_link_recorded(x.l, &v);
    wait_runs(x.l, 1);
    ad_link_counts c;
    ad_command_link_counts(x.l, &c);
    assert_int_equal(c.sent, 1);
    assert_true(c.connected);
    free(cmd_fx_close(&x));
    unsetenv("ANOMALYD_VERDICT");
    uint8_t *text = NULL;
    size_t len = 0;
    assert_int_equal(ad_read_file(out, 1 << 16, &text, &len, err, sizeof err), 0);
    assert_string_equal((char *)text,
                        "args: two words\n"
                        "ANOMALYD_AREA=9\n"
                        "ANOMALYD_BOX=1,2,3,4\n"
                        "ANOMALYD_HEATMAP=\n"
                        "ANOMALYD_IMAGE=/var/lib/anomalyd/img/a b.png\n"
                        "ANOMALYD_LINE=line3\n"
                        "ANOMALYD_MODEL_SHA256=0000000000000000000000000000000000000000000000000000000000000000\n"
                        "ANOMALYD_PART=7\n"
                        "ANOMALYD_PART_ID=PID-7\n"
                        "ANOMALYD_SCORE=0.750000\n"
                        "ANOMALYD_THRESHOLD=0.500000\n"
                        "ANOMALYD_TRIGGER=mqtt\n"
                        "ANOMALYD_TS=2026-01-02 03:04:05.678\n"
                        "ANOMALYD_VERDICT=reject\n");
    free(text);
    cmd_fx_free(&x);
    ts_rmtree(tmp);
    free(tmp);
}

/* A process that has exited counts as gone even while nobody has reaped it
 * yet (a zombie: its state in /proc/PID/stat is Z). */
static bool alive(pid_t pid)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp) return false;
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    const char *paren = strrchr(text, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void a_hanging_command_is_killed_with_its_group_and_logged_once(void **state)
{
    (void)state;
    cmd_fx x;
    char pids[1300];
    char *tmp = ts_tmpdir("line-pids");
    snprintf(pids, sizeof pids, "%s/pids", tmp);
    /* ignores SIGTERM and leaves a child that sleeps too: only SIGKILL to
     * the whole group ends both */
    cmd_fx_open(&x, "line-hang", "#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho $$ $! >> \"$1\"\nwait\n", pids,
                NULL, 100, 8);
    double t0 = ad_now_sec();
    ad_verdict v1 = a_reject(1), v2 = a_reject(2);
    ad_command_link_recorded(x.l, &v1);
    ad_command_link_recorded(x.l, &v2);
    /* never waits for the program: both calls came back at once */
    assert_true(ad_now_sec() - t0 < 1.0);
    wait_runs(x.l, 2);
    ad_link_counts c;
    ad_command_link_counts(x.l, &c);
    assert_false(c.connected);
    char *log = cmd_fx_close(&x);
    assert_int_equal(ts_count(log, "ran longer than outputs.command.timeout_ms 100 ms"), 1);
    free(log);
    /* every process of both runs is gone */
    FILE *fp = fopen(pids, "r");
    assert_non_null(fp);
    int shell, child, seen = 0;
    while (fscanf(fp, "%d %d", &shell, &child) == 2) {
        assert_false(alive(shell));
        assert_false(alive(child));
        seen++;
    }
    fclose(fp);
    assert_int_equal(seen, 2);
    cmd_fx_free(&x);
    ts_rmtree(tmp);
    free(tmp);
}

static void a_failing_command_is_logged_and_counted(void **state)
{
    (void)state;
    cmd_fx x;
    cmd_fx_open(&x, "line-fail", "#!/bin/sh\nexit 3\n", NULL, NULL, 5000, 8);
    for (long p = 1; p <= 3; p++) {
        ad_verdict v = a_reject(p);
        ad_command_link_recorded(x.l, &v);
    }
    wait_runs(x.l, 3);
    char *log = cmd_fx_close(&x);
    /* the same problem three times: told once */
    assert_int_equal(ts_count(log, "exited with status 3"), 1);
    assert_non_null(strstr(log, "exited with status 3 (part 1)"));
    free(log);
    cmd_fx_free(&x);

    /* a program that is not there: told by the probe (--check-config) */
    ad_config cfg;
    char err[AD_ERRLEN];
    const char *missing[] = {"/nonexistent/reject-gate", NULL};
    command_config(&cfg, missing, 5000, 8);
    assert_int_equal(ad_command_link_probe(&cfg, err, sizeof err), -1);
    assert_string_equal(err, "outputs.command.on_reject: /nonexistent/reject-gate is not an executable file");
    const char *on_path[] = {"sh", "-c", "exit 0", NULL};
    command_config(&cfg, on_path, 5000, 8);
    assert_int_equal(ad_command_link_probe(&cfg, err, sizeof err), 0);
}

static void a_full_command_queue_drops_and_counts(void **state)
{
    (void)state;
    cmd_fx x;
    cmd_fx_open(&x, "line-full", "#!/bin/sh\nsleep 1\n", NULL, NULL, 5000, 2);
    for (long p = 1; p <= 10; p++) {
        ad_verdict v = a_reject(p);
        ad_command_link_recorded(x.l, &v);
    }
    ad_link_counts c;
    ad_command_link_counts(x.l, &c);
    /* one may be running already, two wait: at least 7 of 10 dropped */
    assert_true(c.dropped >= 7 && c.dropped <= 8);
    char *log = cmd_fx_close(&x); /* within its second: the rest is dropped and said */
    assert_non_null(strstr(log, "runs already wait"));
    free(log);
    cmd_fx_free(&x);
}

/* ---- line_io: fan-out and reload ---- */

static void line_io_runs_the_command_and_reloads_it(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("line-io");
    char out[1300];
    snprintf(out, sizeof out, "%s/parts.txt", dir);
    char *script = ts_write_text(dir, "hook.sh", "#!/bin/sh\necho \"$1 $ANOMALYD_PART\" >> \"$2\"\n");
    chmod(script, 0755);
    ad_config none, one, two;
    ad_config_defaults(&none);
    const char *a1[] = {script, "first", out, NULL}, *a2[] = {script, "second", out, NULL};
    command_config(&one, a1, 5000, 8);
    command_config(&two, a2, 5000, 8);
    char err[AD_ERRLEN], warnings[2048], desc[512];
    ad_line_io *io = NULL;

    /* nothing configured: nothing opened, nothing to say */
    assert_int_equal(ad_line_io_open(&io, &none, NULL, err, sizeof err), 0);
    ad_line_io_describe(io, desc, sizeof desc);
    assert_string_equal(desc, "");
    assert_int_equal(ad_line_io_probe(&none, warnings, sizeof warnings), 0);
    ad_verdict v = a_reject(1);
    ad_line_io_inspected(io, &v);
    ad_line_io_recorded(io, &v);

    /* SIGHUP adds the command, then changes it, then takes it away */
    assert_int_equal(ad_line_io_reload(io, &one, err, sizeof err), 0);
    v = a_reject(2);
    ad_line_io_recorded(io, &v);
    ad_line_io_describe(io, desc, sizeof desc);
    assert_non_null(strstr(desc, "command "));
    assert_int_equal(ad_line_io_reload(io, &one, err, sizeof err), 0); /* unchanged: kept */
    assert_int_equal(ad_line_io_reload(io, &two, err, sizeof err), 0); /* closing flushes part 2 */
    v = a_reject(3);
    ad_line_io_recorded(io, &v);
    assert_int_equal(ad_line_io_reload(io, &none, err, sizeof err), 0);
    v = a_reject(4);
    ad_line_io_recorded(io, &v);
    ad_line_io_close(io);
    uint8_t *text = NULL;
    size_t len = 0;
    assert_int_equal(ad_read_file(out, 1 << 16, &text, &len, err, sizeof err), 0);
    assert_string_equal((char *)text, "first 2\nsecond 3\n");
    free(text);

    /* --check-config names the missing program */
    const char *gone[] = {"/nonexistent/hook", NULL};
    command_config(&one, gone, 5000, 8);
    assert_int_equal(ad_line_io_probe(&one, warnings, sizeof warnings), 1);
    assert_string_equal(warnings,
                        "command output: outputs.command.on_reject: /nonexistent/hook is not an executable file");
    free(script);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_station_is_never_inspected),
        cmocka_unit_test(a_part_is_inspected_once_on_its_first_frame_at_rest),
        cmocka_unit_test(a_part_resting_60_frames_is_inspected_once),
        cmocka_unit_test(a_part_that_never_settles_is_counted_not_inspected),
        cmocka_unit_test(back_to_back_parts_are_two_parts),
        cmocka_unit_test(a_shaken_part_is_not_inspected_again),
        cmocka_unit_test(a_roi_of_another_size_is_refused),
        cmocka_unit_test(the_grid_is_gray_and_keeps_the_aspect),
        cmocka_unit_test(trigger_queue_is_bounded_and_counts_drops),
        cmocka_unit_test(command_gets_the_verdict_in_its_environment),
        cmocka_unit_test(a_hanging_command_is_killed_with_its_group_and_logged_once),
        cmocka_unit_test(a_failing_command_is_logged_and_counted),
        cmocka_unit_test(a_full_command_queue_drops_and_counts),
        cmocka_unit_test(line_io_runs_the_command_and_reloads_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

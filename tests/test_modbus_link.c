/* Tests of the Modbus TCP link (src/line/modbus_link.c) against a Modbus
 * TCP server written with libmodbus in tests/support/plc_server.c, started
 * on a free loopback port: it stands in for the PLC, raises the trigger
 * input and records every coil and register write with its time.
 *
 * Unit part: pulses, good coil, score register, heartbeat, trigger edges
 * and part ids, the server down at start and mid-run, a hanging server
 * (bounded queue, counted drops), --check-config probe, config errors.
 * Integration part: the real anomalyd on a replay with trigger.mode modbus.
 *
 * No timed assertions beyond lower bounds the code guarantees (a pulse is
 * never shorter than pulse_ms): waits poll until a condition holds and fail
 * only after WAIT_S. */
#include "test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"
#include "daemon_harness.h"
#include "line/line.h"
#include "plc_server.h"

#define WAIT_S 120.0

#define WAIT_UNTIL(cond)                                                        \
    do {                                                                        \
        double wait_end_ = ad_now_sec() + WAIT_S;                               \
        while (!(cond)) {                                                       \
            if (ad_now_sec() > wait_end_) fail_msg("gave up waiting for: %s", #cond); \
            usleep(2000);                                                       \
        }                                                                       \
    } while (0)

/* ---- the link's log: stderr goes to a file for the whole run (cmocka's
 * failure messages too; main shows the file when a test failed) ---- */

static char log_path[256];
static int saved_stderr = -1;

static void redirect_log(void)
{
    snprintf(log_path, sizeof log_path, "%s/test_modbus_link.%d.log", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static void restore_log(bool show)
{
    if (saved_stderr < 0) return;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    if (show) {
        char *text = NULL;
        size_t len = 0;
        if (ad_read_file(log_path, 1 << 24, (uint8_t **)&text, &len, NULL, 0) == 0) fwrite(text, 1, len, stderr);
        free(text);
    }
    unlink(log_path);
}

/* Occurrences of needle in the log since the test began (mark). */
static long log_mark(void)
{
    return lseek(STDERR_FILENO, 0, SEEK_END);
}

static int log_count_since(long mark, const char *needle)
{
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    fseek(f, mark, SEEK_SET);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return (int)ts_count(buf, needle);
}

/* ---- config from YAML, the way the daemon gets it ---- */

static void parse_cfg(ad_config *cfg, const char *body)
{
    char text[4096], err[AD_ERRLEN];
    snprintf(text, sizeof text, "model:\n  path: /m.safetensors\nthreshold: 0.5\n%s", body);
    if (ad_config_parse("mb.yaml", text, strlen(text), cfg, err, sizeof err)) fail_msg("%s", err);
}

static void link_cfg(ad_config *cfg, int port, const char *outputs, const char *extra)
{
    char body[3072];
    snprintf(body, sizeof body, "modbus:\n  host: 127.0.0.1\n  port: %d\n  timeout_ms: 300\n%s%s%s", port,
             outputs ? "outputs:\n  modbus:\n" : "", outputs ? outputs : "", extra ? extra : "");
    parse_cfg(cfg, body);
}

static ad_modbus_link *open_link(const ad_config *cfg, ad_trigger_queue *q)
{
    ad_modbus_link *l = NULL;
    char err[AD_ERRLEN];
    if (ad_modbus_link_open(&l, cfg, q, err, sizeof err)) fail_msg("%s", err);
    return l;
}

static ad_link_counts counts(ad_modbus_link *l)
{
    ad_link_counts c;
    ad_modbus_link_counts(l, &c);
    return c;
}

static ad_verdict verdict(bool reject, double score)
{
    ad_verdict v;
    memset(&v, 0, sizeof v);
    v.reject = reject;
    v.score = score;
    v.threshold = 0.5;
    v.t_trigger = ad_now_sec();
    return v;
}

/* The writes of one address and function from index `from` on. */
static int writes_of(plc *p, int from, int function, int addr, plc_write *out, int max)
{
    static plc_write all[4096];
    int n = plc_writes(p, from, all, 4096), k = 0;
    for (int i = 0; i < n && k < max; i++)
        if (all[i].function == function && all[i].addr == addr) out[k++] = all[i];
    return k;
}

static int coil_writes(plc *p, int from, int addr, plc_write *out, int max)
{
    return writes_of(p, from, 5, addr, out, max);
}

static plc *start_plc(void)
{
    char err[AD_ERRLEN];
    plc *p = plc_start(0, err, sizeof err);
    if (!p) fail_msg("%s", err);
    return p;
}

/* Waits until the link has read the PLC n more times. */
static void wait_polls(plc *p, int n)
{
    long reads = plc_reads(p);
    WAIT_UNTIL(plc_reads(p) >= reads + n);
}

/* A rising edge of discrete input addr: low long enough for the link to
 * see it, then high. */
static void make_edge(plc *p, int addr)
{
    plc_set_input(p, addr, false);
    wait_polls(p, 3);
    plc_set_input(p, addr, true);
}

/* Connected, and the coils written off as every (re)connect does:
 * returns the write index after that. */
static int wait_ready(plc *p, ad_modbus_link *l, int resets)
{
    WAIT_UNTIL(counts(l).connected && plc_write_count(p) >= resets);
    return plc_write_count(p);
}

/* A PLC stand-in on a free port and a link to it, configured with
 * outputs.modbus lines and other YAML (either may be NULL); with
 * trigger.mode modbus, a trigger queue too. */
typedef struct rig {
    plc *p;
    ad_config cfg;
    ad_trigger_queue *q;
    ad_modbus_link *l;
} rig;

static void rig_link(rig *r, const char *outputs, const char *extra)
{
    link_cfg(&r->cfg, plc_port(r->p), outputs, extra);
    r->q = r->cfg.trigger.mode == AD_TRIGGER_MODBUS ? ad_trigger_queue_create(8) : NULL;
    r->l = open_link(&r->cfg, r->q);
}

static void rig_open(rig *r, const char *outputs, const char *extra)
{
    r->p = start_plc();
    rig_link(r, outputs, extra);
}

static void rig_close(rig *r)
{
    ad_modbus_link_close(r->l);
    ad_trigger_queue_destroy(r->q);
    plc_free(r->p);
}

/* ---- outputs ---- */

static void test_reject_and_good_pulses_and_score(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "    reject_coil: 5\n    good_coil: 6\n    score_register: 10\n    pulse_ms: 300\n", NULL);
    plc *p = r.p;
    ad_modbus_link *l = r.l;
    int base = wait_ready(p, l, 2);
    plc_write w[16];

    /* a reject: the score register, then one pulse of at least pulse_ms */
    ad_verdict v = verdict(true, 0.8);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 5, w, 16) == 2);
    assert_int_equal(w[0].value, 1);
    assert_int_equal(w[1].value, 0);
    assert_true(w[1].t - w[0].t >= 0.300);
    plc_write reg[4];
    assert_int_equal(writes_of(p, base, 6, 10, reg, 4), 1);
    assert_int_equal(reg[0].value, 800);
    assert_true(reg[0].t <= w[0].t);
    assert_int_equal(coil_writes(p, base, 6, w, 16), 0);

    /* a good part: the good coil, the reject coil untouched */
    base = plc_write_count(p);
    v = verdict(false, 0.1234);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 6, w, 16) == 2);
    assert_int_equal(w[0].value, 1);
    assert_int_equal(w[1].value, 0);
    assert_true(w[1].t - w[0].t >= 0.300);
    assert_int_equal(writes_of(p, base, 6, 10, reg, 4), 1);
    assert_int_equal(reg[0].value, 123);
    assert_int_equal(coil_writes(p, base, 5, w, 16), 0);

    /* a score beyond the register clamps to 65535 */
    base = plc_write_count(p);
    v = verdict(false, 100.0);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 6, w, 16) == 2);
    assert_int_equal(plc_register(p, 10), 65535);

    /* a second reject while the coil is on: one pulse, the "on" written
     * again (the server confirms it), extended to pulse_ms after the second */
    base = plc_write_count(p);
    v = verdict(true, 0.9);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 5, w, 16) == 1);
    double t2 = ad_now_sec();
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 5, w, 16) == 3);
    assert_int_equal(w[0].value, 1);
    assert_int_equal(w[1].value, 1);
    assert_int_equal(w[2].value, 0);
    assert_true(w[2].t >= t2 + 0.300);
    usleep(500 * 1000);
    assert_int_equal(coil_writes(p, base, 5, w, 16), 3);

    /* two rejects further apart than the pulse: two pulses */
    base = plc_write_count(p);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 5, w, 16) == 2);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 5, w, 16) == 4);
    assert_int_equal(w[2].value, 1);
    assert_int_equal(w[3].value, 0);

    ad_link_counts c = counts(l);
    assert_int_equal(c.sent, 7); /* every verdict's pulse, the extended one too */
    assert_int_equal(c.dropped, 0);
    assert_int_equal(c.queued, 0);
    rig_close(&r);
}

static void test_heartbeat_toggles_while_camera_up(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "    heartbeat_coil: 7\n", NULL);
    plc *p = r.p;
    ad_modbus_link *l = r.l;
    plc_write w[16];
    WAIT_UNTIL(counts(l).connected && coil_writes(p, 0, 7, w, 16) == 1);
    assert_int_equal(w[0].value, 0); /* written at connect */

    ad_line_status up = {.camera_up = true, .state = "running"};
    ad_line_status down = {.camera_up = false, .state = "waiting for camera"};
    for (int i = 0; i < 3; i++) {
        ad_modbus_link_status(l, &up);
        WAIT_UNTIL(coil_writes(p, 0, 7, w, 16) == 2 + i);
    }
    ad_modbus_link_status(l, &down); /* no toggle: the next one goes on from 1 */
    ad_modbus_link_status(l, &up);
    WAIT_UNTIL(coil_writes(p, 0, 7, w, 16) >= 5);
    assert_int_equal(coil_writes(p, 0, 7, w, 16), 5);
    int expect[5] = {0, 1, 0, 1, 0};
    for (int i = 0; i < 5; i++) assert_int_equal(w[i].value, expect[i]);
    rig_close(&r);
}

/* ---- trigger ---- */

static void test_trigger_rising_edge_fires_once_with_part_id(void **state)
{
    (void)state;
    rig r = {.p = start_plc()};
    plc *p = r.p;
    plc_set_input(p, 3, true); /* already high when the link connects */
    plc_set_register(p, 20, 1234);
    rig_link(&r, NULL, "trigger:\n  mode: modbus\n  modbus:\n    input: 3\n    poll_ms: 5\n    part_id_register: 20\n");
    ad_trigger_queue *q = r.q;
    ad_trigger t;

    /* a high input at the first poll is a level, not an edge */
    WAIT_UNTIL(plc_reads(p) >= 5);
    assert_false(ad_trigger_take(q, &t, 0));

    double raised = ad_now_sec();
    make_edge(p, 3);
    assert_true(ad_trigger_take(q, &t, WAIT_S));
    assert_string_equal(t.part_id, "1234");
    assert_true(t.t_fired >= raised);

    /* held high: no second trigger */
    wait_polls(p, 10);
    assert_false(ad_trigger_take(q, &t, 0));

    /* the next part */
    plc_set_register(p, 20, 1235);
    make_edge(p, 3);
    assert_true(ad_trigger_take(q, &t, WAIT_S));
    assert_string_equal(t.part_id, "1235");

    ad_trigger_counts tc;
    ad_trigger_queue_counts(q, &tc);
    assert_int_equal(tc.fired, 2);
    rig_close(&r);
}

static void test_trigger_on_a_coil_without_part_id(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, NULL, "trigger:\n  mode: modbus\n  modbus:\n    input: 9\n    kind: coil\n    poll_ms: 5\n");
    plc *p = r.p;
    ad_trigger t;
    WAIT_UNTIL(plc_reads(p) >= 3);
    plc_set_input(p, 9, true); /* the discrete input of the same address is not the trigger */
    wait_polls(p, 5);
    assert_false(ad_trigger_take(r.q, &t, 0));
    plc_set_coil(p, 9, true);
    assert_true(ad_trigger_take(r.q, &t, WAIT_S));
    assert_string_equal(t.part_id, "");
    rig_close(&r);
}

/* ---- faults ---- */

static void test_server_down_at_start_then_back(void **state)
{
    (void)state;
    long mark = log_mark();
    rig r = {.p = start_plc()};
    plc *p = r.p;
    plc_down(p); /* its port, with nothing listening */
    rig_link(&r, "    reject_coil: 5\n    max_delay_ms: 200\n", NULL);
    ad_modbus_link *l = r.l;

    /* rejects while it is down: dropped and counted, never blocking */
    ad_verdict v = verdict(true, 0.9);
    for (int i = 0; i < 3; i++) ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(counts(l).dropped == 3);
    assert_false(counts(l).connected);
    usleep(2000 * 1000); /* a few reconnect attempts (0.5 s, 1 s backoff) */
    assert_int_equal(log_count_since(mark, "modbus: cannot reach 127.0.0.1"), 1);

    assert_int_equal(plc_restart(p), 0);
    int base = wait_ready(p, l, 1);
    ad_modbus_link_inspected(l, &v);
    plc_write w[8];
    WAIT_UNTIL(coil_writes(p, base, 5, w, 8) == 2);
    assert_int_equal(w[0].value, 1);
    assert_int_equal(log_count_since(mark, "modbus: cannot reach 127.0.0.1"), 1);
    assert_int_equal(log_count_since(mark, "is back"), 1);
    assert_int_equal(log_count_since(mark, "3 outputs dropped meanwhile"), 1);
    ad_link_counts c = counts(l);
    assert_int_equal(c.sent, 1);
    assert_int_equal(c.dropped, 3);
    rig_close(&r);
}

static void test_server_down_mid_run_then_back(void **state)
{
    (void)state;
    long mark = log_mark();
    rig r;
    rig_open(&r, "    reject_coil: 5\n    pulse_ms: 50\n    max_delay_ms: 200\n",
             "trigger:\n  mode: modbus\n  modbus:\n    input: 3\n    poll_ms: 5\n");
    plc *p = r.p;
    ad_modbus_link *l = r.l;
    ad_trigger_queue *q = r.q;
    int base = wait_ready(p, l, 1);
    ad_verdict v = verdict(true, 0.9);
    ad_modbus_link_inspected(l, &v);
    plc_write w[8];
    WAIT_UNTIL(coil_writes(p, base, 5, w, 8) == 2);

    /* down while the trigger input goes high: the poll notices the loss */
    plc_down(p);
    plc_set_input(p, 3, true);
    WAIT_UNTIL(!counts(l).connected);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(counts(l).dropped == 1);
    usleep(2000 * 1000);
    assert_int_equal(log_count_since(mark, "modbus: lost 127.0.0.1"), 1);
    assert_int_equal(log_count_since(mark, "modbus: cannot reach 127.0.0.1"), 0); /* the loss is the one message */

    /* back: the input is still high, which is no edge after a reconnect */
    long conns = plc_connections(p);
    assert_int_equal(plc_restart(p), 0);
    base = wait_ready(p, l, plc_write_count(p) + 1);
    assert_true(plc_connections(p) > conns);
    wait_polls(p, 10);
    ad_trigger t;
    assert_false(ad_trigger_take(q, &t, 0));
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(coil_writes(p, base, 5, w, 8) == 2);
    assert_int_equal(log_count_since(mark, "is back"), 1);
    /* and a real edge still triggers */
    make_edge(p, 3);
    assert_true(ad_trigger_take(q, &t, WAIT_S));
    rig_close(&r);
}

static void test_hanging_server_bounded_queue(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "    reject_coil: 5\n    max_delay_ms: 60000\n", NULL);
    plc *p = r.p;
    ad_modbus_link *l = r.l;
    wait_ready(p, l, 1);
    plc_set_hang(p, true);
    ad_verdict v = verdict(true, 0.9);
    ad_modbus_link_inspected(l, &v);
    WAIT_UNTIL(counts(l).queued == 0); /* the link thread now waits for an answer */
    double worst = 0;
    for (int i = 0; i < 200; i++) {
        double t0 = ad_now_sec();
        ad_modbus_link_inspected(l, &v);
        double dt = ad_now_sec() - t0;
        if (dt > worst) worst = dt;
    }
    ad_link_counts c = counts(l);
    /* while the thread is stuck (up to timeout_ms, 300 ms) the queue fills
     * to its bound and the rest are counted */
    assert_true(c.queued <= 64);
    assert_true(c.queued + c.dropped >= 200);
    assert_true(worst < 0.25); /* a mutex and a copy, not a network wait */
    plc_set_hang(p, false);
    WAIT_UNTIL(counts(l).connected && counts(l).queued == 0);
    rig_close(&r);
}

static void test_close_turns_a_pulse_off(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "    reject_coil: 5\n    pulse_ms: 5000\n", NULL);
    plc *p = r.p;
    ad_modbus_link *l = r.l;
    int base = wait_ready(p, l, 1);
    ad_verdict v = verdict(true, 0.9);
    ad_modbus_link_inspected(l, &v);
    plc_write w[8];
    WAIT_UNTIL(coil_writes(p, base, 5, w, 8) == 1);
    double t0 = ad_now_sec();
    ad_modbus_link_close(l); /* a flush of at most a second, then the coil off */
    r.l = NULL;
    assert_true(ad_now_sec() - t0 < 5.0);
    assert_int_equal(coil_writes(p, base, 5, w, 8), 2);
    assert_int_equal(w[1].value, 0);
    assert_false(plc_coil(p, 5));
    rig_close(&r);
}

/* ---- --check-config ---- */

static void test_probe(void **state)
{
    (void)state;
    plc *p = start_plc();
    ad_config cfg;
    char err[AD_ERRLEN];
    link_cfg(&cfg, plc_port(p), "    reject_coil: 5\n    score_register: 10\n",
             "trigger:\n  mode: modbus\n  modbus:\n    input: 3\n");
    assert_int_equal(ad_modbus_link_probe(&cfg, err, sizeof err), 0);

    link_cfg(&cfg, plc_port(p), "    reject_coil: 300\n", NULL);
    assert_int_equal(ad_modbus_link_probe(&cfg, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want,
             "Modbus server 127.0.0.1:%d unit 1 answers, but reading outputs.modbus.reject_coil 300 failed: "
             "Illegal data address",
             plc_port(p));
    assert_string_equal(err, want);

    plc_down(p);
    link_cfg(&cfg, plc_port(p), "    reject_coil: 5\n", NULL);
    assert_int_equal(ad_modbus_link_probe(&cfg, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "Modbus server 127.0.0.1:%d unit 1 is not reachable (Connection refused); the link will keep retrying",
             plc_port(p));
    assert_string_equal(err, want);
    plc_free(p);
}

/* ---- config ---- */

static void test_configured_and_same_settings(void **state)
{
    (void)state;
    ad_config a, b;
    parse_cfg(&a, "");
    assert_false(ad_modbus_link_configured(&a));
    parse_cfg(&a, "modbus:\n  host: plc.local\n"); /* a server, nothing to do with it */
    assert_false(ad_modbus_link_configured(&a));
    link_cfg(&a, 502, "    reject_coil: 0\n", NULL);
    assert_true(ad_modbus_link_configured(&a));
    link_cfg(&b, 502, NULL, "trigger:\n  mode: modbus\n");
    assert_true(ad_modbus_link_configured(&b));
    assert_false(ad_modbus_link_same_settings(&a, &b));
    link_cfg(&b, 502, "    reject_coil: 0\n", NULL);
    assert_true(ad_modbus_link_same_settings(&a, &b));
    b.threshold = 0.9; /* not a Modbus key */
    assert_true(ad_modbus_link_same_settings(&a, &b));
    link_cfg(&b, 502, "    reject_coil: 0\n    pulse_ms: 300\n", NULL);
    assert_false(ad_modbus_link_same_settings(&a, &b));
    link_cfg(&b, 503, "    reject_coil: 0\n", NULL);
    assert_false(ad_modbus_link_same_settings(&a, &b));
}

typedef struct bad_case {
    const char *yaml;
    const char *expected;
} bad_case;

#define MIN "model:\n  path: /m.safetensors\nthreshold: 0.5\n"

static const bad_case bad_cases[] = {
    {MIN "trigger:\n  mode: modbus\n",
     "bad.yaml:5:9: trigger.mode is modbus but modbus.host is not set, expected modbus.host: the PLC or remote I/O "
     "module whose input is polled"},
    {MIN "outputs:\n  modbus:\n    reject_coil: 4\n",
     "bad.yaml:6:18: outputs.modbus.reject_coil is set but modbus.host is not, expected modbus.host: the PLC or "
     "remote I/O module that owns it (or outputs.modbus.reject_coil: -1)"},
    {MIN "modbus:\n  host: 10.0.0.5\n  unit_id: 250\n",
     "bad.yaml:6:12: modbus.unit_id is 250, expected 0..247, or 255"},
    {MIN "modbus:\n  host: 10.0.0.5\n  port: 0\n",
     "bad.yaml:6:9: modbus.port: 0 is out of range, expected an integer in 1..65535"},
    {MIN "modbus:\n  host: 10.0.0.5\noutputs:\n  modbus:\n    reject_coil: 4\n    good_coil: 4\n",
     "bad.yaml:9:16: outputs.modbus.reject_coil and outputs.modbus.good_coil are both coil 4, expected a coil of "
     "its own for each"},
    {MIN "modbus:\n  host: 10.0.0.5\noutputs:\n  modbus:\n    heartbeat_coil: 2\n"
         "trigger:\n  mode: modbus\n  modbus:\n    kind: coil\n    input: 2\n",
     "bad.yaml:13:12: outputs.modbus.heartbeat_coil and trigger.modbus.input are both coil 2, expected a coil of "
     "its own for each"},
    {MIN "trigger:\n  modbus:\n    kind: register\n",
     "bad.yaml:6:11: trigger.modbus.kind: 'register' is not a valid choice, expected one of discrete_input, coil"},
    {MIN "outputs:\n  modbus:\n    pulse_ms: 5\n",
     "bad.yaml:6:15: outputs.modbus.pulse_ms: 5 is out of range, expected an integer in 10..60000"},
    {MIN "outputs:\n  modbus:\n    score_scale: 0\n",
     "bad.yaml:6:18: outputs.modbus.score_scale: 0 is out of range, expected a number in (0, 1e9]"},
    {MIN "modbus:\n  hots: 10.0.0.5\n",
     "bad.yaml:5:3: unknown key 'hots' in modbus (did you mean host?), expected one of: host, port, unit_id, "
     "timeout_ms"},
};

static void test_wrong_config_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        ad_config cfg;
        char err[AD_ERRLEN] = "";
        int rc = ad_config_parse("bad.yaml", bad_cases[i].yaml, strlen(bad_cases[i].yaml), &cfg, err, sizeof err);
        if (rc != -1 || strcmp(err, bad_cases[i].expected) != 0)
            fail_msg("case %zu: rc %d\n got:      %s\n expected: %s", i, rc, err, bad_cases[i].expected);
    }
}

/* ---- the real anomalyd (replay of the fixture frames, fixture model) ---- */

/* The harness's config (replay in a loop at 30 fps, threshold 0: every
 * part is a reject) plus Modbus keys; %d in yaml is the PLC's port. */
static void daemon_config(fx *f, int port, const char *yaml)
{
    write_config(f, 0.0, true, 30);
    FILE *fp = fopen(f->config, "a");
    assert_non_null(fp);
    fprintf(fp, yaml, port);
    fclose(fp);
}

/* Rising-edge writes ("on") of coil addr from index 0. */
static int coil_pulses(plc *p, int addr)
{
    static plc_write w[4096];
    int n = coil_writes(p, 0, addr, w, 4096), on = 0;
    for (int i = 0; i < n; i++) on += w[i].value == 1;
    return on;
}

static void stop_daemon(fx *f)
{
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
}

/* The daemon test's PLC and fixture, freed (the daemon killed) by the
 * teardown even when the test fails. */
static plc *d_plc;
static fx *d_fx;

static int daemon_teardown(void **state)
{
    (void)state;
    fx_free(d_fx);
    plc_free(d_plc);
    d_fx = NULL;
    d_plc = NULL;
    return 0;
}

/* trigger.mode modbus: no edge, no inspection; each rising edge, exactly
 * one inspection: one row and one reject pulse. */
static void test_daemon_inspects_once_per_edge(void **state)
{
    (void)state;
    plc *p = d_plc = start_plc();
    fx *f = d_fx = fx_new("modbus-trigger");
    daemon_config(f, plc_port(p),
                  "trigger:\n  mode: modbus\n  modbus:\n    input: 3\n    poll_ms: 5\n"
                  "outputs:\n  modbus:\n    reject_coil: 5\n    pulse_ms: 50\n"
                  "modbus:\n  host: 127.0.0.1\n  port: %d\n");
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    WAIT_UNTIL(plc_reads(p) >= 20); /* frames stream, the input is polled, no edge */
    wait_polls(p, 50);
    assert_int_equal(db_rows(f), 0);
    assert_int_equal(coil_pulses(p, 5), 0);

    for (int k = 1; k <= 3; k++) {
        make_edge(p, 3);
        WAIT_UNTIL(db_rows(f) >= k && coil_pulses(p, 5) >= k);
        /* the input stays high: nothing more for this part */
        wait_polls(p, 40);
        assert_int_equal(db_rows(f), k);
        assert_int_equal(coil_pulses(p, 5), k);
    }
    stop_daemon(f);
    assert_int_equal(db_rows(f), 3);
}

/* The PLC down at start and mid-run: inspection and the reject log go on,
 * the log says so once each time, the pulses come back with the server.
 * Every frame is a reject, 33 ms apart, so the 50 ms pulse never ends: the
 * loss is found by the "on" written again for each reject. */
static void test_daemon_goes_on_while_plc_is_down(void **state)
{
    (void)state;
    plc *p = d_plc = start_plc();
    plc_down(p);
    fx *f = d_fx = fx_new("modbus-down");
    daemon_config(f, plc_port(p),
                  "outputs:\n  modbus:\n    reject_coil: 5\n    pulse_ms: 50\n"
                  "modbus:\n  host: 127.0.0.1\n  port: %d\n");
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    WAIT_UNTIL(db_rows(f) >= 10);
    sleep_s(2.0); /* several reconnect attempts */
    assert_int_equal(log_count(f, "modbus: cannot reach 127.0.0.1"), 1);

    assert_int_equal(plc_restart(p), 0);
    WAIT_UNTIL(coil_pulses(p, 5) >= 1);
    wait_log(f, "is back after", 1);

    plc_down(p);
    wait_log(f, "modbus: lost 127.0.0.1", 1);
    long long rows = db_rows(f);
    WAIT_UNTIL(db_rows(f) >= rows + 10);
    sleep_s(2.0);
    assert_int_equal(log_count(f, "modbus: lost 127.0.0.1"), 1);
    int pulses = coil_pulses(p, 5);
    assert_int_equal(plc_restart(p), 0);
    WAIT_UNTIL(coil_pulses(p, 5) > pulses);
    wait_log(f, "is back after", 2);
    assert_int_equal(log_count(f, "modbus: cannot reach 127.0.0.1"), 1);
    stop_daemon(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_and_good_pulses_and_score),
        cmocka_unit_test(test_heartbeat_toggles_while_camera_up),
        cmocka_unit_test(test_trigger_rising_edge_fires_once_with_part_id),
        cmocka_unit_test(test_trigger_on_a_coil_without_part_id),
        cmocka_unit_test(test_server_down_at_start_then_back),
        cmocka_unit_test(test_server_down_mid_run_then_back),
        cmocka_unit_test(test_hanging_server_bounded_queue),
        cmocka_unit_test(test_close_turns_a_pulse_off),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_configured_and_same_settings),
        cmocka_unit_test(test_wrong_config_errors),
        cmocka_unit_test_teardown(test_daemon_inspects_once_per_edge, daemon_teardown),
        cmocka_unit_test_teardown(test_daemon_goes_on_while_plc_is_down, daemon_teardown),
    };
    /* while debugging: MODBUS_ONLY='*daemon*', MODBUS_SKIP='*daemon*' */
    const char *only = getenv("MODBUS_ONLY"), *skip = getenv("MODBUS_SKIP");
    if (only && *only) cmocka_set_test_filter(only);
    if (skip && *skip) cmocka_set_skip_filter(skip);
    redirect_log();
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    restore_log(failed != 0);
    return failed;
}

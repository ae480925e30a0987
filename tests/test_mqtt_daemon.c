/* The real anomalyd with its MQTT link, against Debian's mosquitto started
 * by the test on a free loopback port (tests/support/mqtt_broker.c), on a
 * replay of the fixture frames with the fixture model: every verdict
 * message against the reject log's rows, the retained status through a
 * clean stop and a kill -9 (the last will), the broker down at start and
 * stopped mid-run (inspection and the log go on, said once each time,
 * every row's verdict delivered once the broker is back), --check-config's
 * warning, and a SIGHUP that moves the topics. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_harness.h"
#include "mqtt_broker.h"

#include "anomalyd/util.h"

#define T_VERDICT "anomalyd/dtest/verdict"
#define T_STATUS "anomalyd/dtest/status"
#define T_STATE "anomalyd/dtest/state"
#define T_COUNTERS "anomalyd/dtest/counters"

/* The harness's config (replay, fixture model, images on) plus the broker
 * and yaml (more keys; "%d" in it, if any, is the broker's port again). */
static void daemon_config(fx *f, double threshold, bool loop, double fps, int port, const char *yaml)
{
    write_config(f, threshold, loop, fps);
    FILE *fp = fopen(f->config, "a");
    assert_non_null(fp);
    fprintf(fp, "mqtt:\n  host: 127.0.0.1\n  port: %d\n  keepalive: 5\n", port);
    if (yaml) fprintf(fp, yaml, port);
    fclose(fp);
}

static void wait_rows(fx *f, long long n)
{
    double end = now_s() + DH_WAIT_S;
    while (db_rows(f) < n) {
        if (now_s() > end) fail_msg("%lld rows in the reject log, expected %lld", db_rows(f), n);
        sleep_s(0.02);
    }
}

static sqlite3_stmt *query(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    return s;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) fail_msg("not JSON (%s): %s", e.text, text);
    return j;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* Parts (and how often each came) of the verdict messages with verdict
 * want ("good", "reject"); returns how many messages that is. */
static size_t verdict_parts(mqb_client *c, const char *topic, const char *want, int *seen, int nseen)
{
    size_t n = 0, k = 0;
    mqb_msg *m = mqb_messages(c, topic, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse(m[i].payload);
        if (strcmp(jstr(j, "verdict"), want) == 0) {
            long part = (long)json_integer_value(json_object_get(j, "part"));
            if (part < 1 || part >= nseen) fail_msg("verdict with part %ld: %s", part, m[i].payload);
            seen[part]++;
            k++;
        }
        json_decref(j);
    }
    mqb_msgs_free(m, n);
    return k;
}

/* The test's broker, subscriber and fixture, freed (the daemon killed) by
 * the teardown even when the test fails. */
static mqb_broker *d_broker;
static mqb_client *d_sub;
static fx *d_fx;

static int teardown(void **state)
{
    (void)state;
    fx_free(d_fx);
    mqb_client_free(d_sub);
    mqb_free(d_broker);
    d_fx = NULL;
    d_sub = NULL;
    d_broker = NULL;
    return 0;
}

static void stop_daemon(fx *f)
{
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
}

/* A broker, a subscriber to filter (client_id: a persistent session) and
 * a fixture, freed by the teardown. */
static fx *station(const char *tag, const char *client_id, const char *filter)
{
    d_broker = mqb_start(NULL);
    d_sub = mqb_client_start(d_broker->port, client_id, filter);
    return d_fx = fx_new(tag);
}

/* Every frame once (--no-drop), verdicts: all. A first run with a
 * threshold nothing reaches gives every frame's score; the second, with a
 * threshold between them, has good parts and rejects. Each reject row has
 * exactly one "reject" verdict with its part, time, score, box, area,
 * image paths and model; every other part has one "good" verdict; the
 * status is online while it runs and offline (retained) after; the
 * counters add up to the counters table. */
static void test_every_verdict_matches_the_log(void **state)
{
    (void)state;
    fx *f = station("mqtt-verdicts", NULL, "anomalyd/dtest/#");
    mqb_client *sub = d_sub;

    daemon_config(f, 1e9, false, 500, d_broker->port, NULL);
    start_daemon(f, "--no-drop");
    assert_int_equal(wait_exit(f), 0);
    mqb_wait_last(sub, T_STATUS, "offline");
    size_t n = 0;
    mqb_msg *m = mqb_messages(sub, T_VERDICT, &n);
    assert_true(n >= 4);
    double *scores = ad_xcalloc(n, sizeof *scores);
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse(m[i].payload);
        scores[i] = json_real_value(json_object_get(j, "score"));
        assert_string_equal(jstr(j, "verdict"), "good");
        json_decref(j);
    }
    mqb_msgs_free(m, n);
    /* a threshold between the middle two scores */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && scores[k - 1] > scores[k]; k--) {
            double t = scores[k];
            scores[k] = scores[k - 1];
            scores[k - 1] = t;
        }
    double threshold = (scores[n / 2 - 1] + scores[n / 2]) / 2;
    size_t frames = n;
    free(scores);
    mqb_client_free(sub);
    sub = d_sub = mqb_client_start(d_broker->port, NULL, "anomalyd/dtest/#");

    fx_free(f);
    f = d_fx = fx_new("mqtt-verdicts");
    daemon_config(f, threshold, false, 500, d_broker->port, NULL);
    start_daemon(f, "--no-drop");
    assert_int_equal(wait_exit(f), 0);
    mqb_wait_last(sub, T_STATUS, "offline");
    char *retained = mqb_retained(d_broker->port, T_STATUS);
    assert_string_equal(retained, "offline");
    free(retained);
    /* after the first run's retained "offline": online, then offline */
    m = mqb_messages(sub, T_STATUS, &n);
    size_t live = 0;
    while (live < n && m[live].retain) live++;
    assert_true(n >= live + 2);
    assert_string_equal(m[live].payload, "online");
    assert_string_equal(m[n - 1].payload, "offline");
    mqb_msgs_free(m, n);

    int *good = ad_xcalloc(frames + 2, sizeof *good), *bad = ad_xcalloc(frames + 2, sizeof *bad);
    size_t ngood = verdict_parts(sub, T_VERDICT, "good", good, (int)frames + 2);
    size_t nbad = verdict_parts(sub, T_VERDICT, "reject", bad, (int)frames + 2);
    assert_int_equal(ngood + nbad, frames);
    for (size_t p = 1; p <= frames; p++)
        if (good[p] + bad[p] != 1) fail_msg("part %zu: %d good, %d reject verdicts", p, good[p], bad[p]);
    assert_true(nbad >= 1 && ngood >= 1);

    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), (long long)nbad);
    sqlite3_stmt *s = query(db, "SELECT part, ts, score, threshold, box_x, box_y, box_w, box_h, area, "
                                "image_path, heatmap_path, model_sha256, line FROM rejects");
    m = mqb_messages(sub, T_VERDICT, &n);
    size_t rows = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        long part = (long)sqlite3_column_int64(s, 0);
        json_t *v = NULL;
        for (size_t i = 0; i < n && !v; i++) {
            json_t *j = parse(m[i].payload);
            if (json_integer_value(json_object_get(j, "part")) == part && !strcmp(jstr(j, "verdict"), "reject"))
                v = j;
            else json_decref(j);
        }
        if (!v) fail_msg("no reject verdict for the row of part %ld", part);
        char when[40];
        snprintf(when, sizeof when, "%sZ", (const char *)sqlite3_column_text(s, 1));
        when[10] = 'T';
        assert_string_equal(jstr(v, "time"), when);
        assert_float_equal(json_real_value(json_object_get(v, "score")), sqlite3_column_double(s, 2), 1e-6);
        assert_float_equal(json_real_value(json_object_get(v, "threshold")), sqlite3_column_double(s, 3), 1e-6);
        assert_true(sqlite3_column_double(s, 2) > threshold);
        json_t *box = json_object_get(v, "box");
        if (sqlite3_column_int(s, 6) > 0) {
            assert_int_equal(json_integer_value(json_object_get(box, "x")), sqlite3_column_int(s, 4));
            assert_int_equal(json_integer_value(json_object_get(box, "y")), sqlite3_column_int(s, 5));
            assert_int_equal(json_integer_value(json_object_get(box, "w")), sqlite3_column_int(s, 6));
            assert_int_equal(json_integer_value(json_object_get(box, "h")), sqlite3_column_int(s, 7));
        } else {
            assert_true(json_is_null(box));
        }
        assert_int_equal(json_integer_value(json_object_get(v, "area")), sqlite3_column_int64(s, 8));
        const char *img = (const char *)sqlite3_column_text(s, 9), *heat = (const char *)sqlite3_column_text(s, 10);
        assert_non_null(img);
        assert_non_null(heat);
        assert_string_equal(jstr(v, "image"), img);
        assert_string_equal(jstr(v, "heatmap"), heat);
        assert_true(file_exists(img));
        assert_string_equal(jstr(v, "model_sha256"), (const char *)sqlite3_column_text(s, 11));
        assert_string_equal(jstr(v, "line"), (const char *)sqlite3_column_text(s, 12));
        assert_string_equal(jstr(v, "trigger"), "continuous");
        json_decref(v);
        rows++;
    }
    sqlite3_finalize(s);
    assert_int_equal(rows, nbad);
    /* the good ones: below the threshold, no images */
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse(m[i].payload);
        if (!strcmp(jstr(j, "verdict"), "good")) {
            assert_true(json_real_value(json_object_get(j, "score")) <= threshold);
            assert_true(json_is_null(json_object_get(j, "image")));
        }
        json_decref(j);
    }
    mqb_msgs_free(m, n);

    /* the counters: the same minutes as the table */
    m = mqb_messages(sub, T_COUNTERS, &n);
    long inspected = 0, rejects = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse(m[i].payload);
        inspected += (long)json_integer_value(json_object_get(j, "inspected"));
        rejects += (long)json_integer_value(json_object_get(j, "rejects"));
        json_decref(j);
    }
    mqb_msgs_free(m, n);
    assert_int_equal(n, q_int(db, "SELECT COUNT(*) FROM counters"));
    assert_int_equal(inspected, q_int(db, "SELECT SUM(inspected) FROM counters"));
    assert_int_equal(rejects, q_int(db, "SELECT SUM(rejects) FROM counters"));
    assert_int_equal(inspected, (long)frames);
    sqlite3_close(db);
    free(good);
    free(bad);
}

/* kill -9: the broker publishes the last will, a retained "offline". */
static void test_kill9_gives_offline(void **state)
{
    (void)state;
    fx *f = station("mqtt-will", NULL, "anomalyd/dtest/#");
    mqb_client *sub = d_sub;
    daemon_config(f, 0.0, true, 30, d_broker->port, NULL);
    start_daemon(f, NULL);
    mqb_wait_last(sub, T_STATUS, "online");
    mqb_wait_count(sub, T_STATE, 2); /* it runs: the state comes every second */
    char *retained = mqb_retained(d_broker->port, T_STATUS);
    assert_string_equal(retained, "online");
    free(retained);
    kill(f->pid, SIGKILL);
    assert_int_equal(wait_exit(f), 128 + SIGKILL);
    mqb_wait_last(sub, T_STATUS, "offline");
    retained = mqb_retained(d_broker->port, T_STATUS);
    assert_string_equal(retained, "offline");
    free(retained);
}

/* Every reject row's part has a verdict message (at least one: QoS 1 may
 * repeat one across a reconnect), and every verdict is a row's. */
static void assert_every_row_has_its_verdict(fx *f, mqb_client *sub)
{
    long long rows = db_rows(f);
    assert_true(rows > 0);
    long long max_part = 0;
    sqlite3 *db = open_db(f);
    max_part = q_int(db, "SELECT MAX(part) FROM rejects");
    int *seen = ad_xcalloc((size_t)max_part + 2, sizeof *seen);
    mqb_wait_count(sub, T_VERDICT, (size_t)rows);
    size_t n = verdict_parts(sub, T_VERDICT, "reject", seen, (int)max_part + 2);
    assert_true(n >= (size_t)rows);
    sqlite3_stmt *s = query(db, "SELECT part FROM rejects");
    long long matched = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        long part = (long)sqlite3_column_int64(s, 0);
        if (seen[part] < 1) fail_msg("the row of part %ld has no verdict message", part);
        matched += seen[part];
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_int_equal(matched, (long long)n); /* no verdict without its row */
    fprintf(stderr, "%lld rows, %zu verdict messages\n", rows, n);
    free(seen);
}

/* The broker down at start, then up; stopped mid-run, then back: the
 * daemon inspects and logs rejects all along, says each loss and each
 * recovery once, and every row's verdict arrives. The subscriber's session
 * is persistent, so the broker keeps what comes while it reconnects. */
static void test_broker_down_at_start_and_mid_run(void **state)
{
    (void)state;
    fx *f = station("mqtt-down", "t-daemon-sub", "anomalyd/dtest/#");
    mqb_client *sub = d_sub;
    mqb_stop(d_broker, SIGTERM);
    daemon_config(f, 0.0, true, 10, d_broker->port, "outputs:\n  mqtt:\n    verdicts: rejects\n");
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    wait_rows(f, 10);
    sleep_s(3.5); /* a few connection attempts */
    char down[128];
    snprintf(down, sizeof down, "mqtt: broker 127.0.0.1:%d unreachable", d_broker->port);
    assert_int_equal(log_count(f, down), 1);

    mqb_restart(d_broker);
    wait_log(f, "mqtt: connected to", 1);
    mqb_wait_count(sub, T_VERDICT, 10);

    mqb_stop(d_broker, SIGTERM);
    snprintf(down, sizeof down, "mqtt: broker 127.0.0.1:%d lost", d_broker->port);
    wait_log(f, down, 1);
    long long rows = db_rows(f);
    wait_rows(f, rows + 10); /* the log goes on */
    sleep_s(3.5);
    assert_int_equal(log_count(f, down), 1);
    mqb_restart(d_broker);
    wait_log(f, "again after", 1);
    stop_daemon(f);
    assert_every_row_has_its_verdict(f, sub);
    assert_int_equal(log_count(f, "again after"), 1);
    assert_int_equal(log_count(f, "messages not delivered"), 0);
}

/* --check-config: a broker that does not answer is a warning naming
 * host:port, not an error; one that answers says nothing. */
static void test_check_config_warns(void **state)
{
    (void)state;
    fx *f = station("mqtt-check", NULL, "anomalyd/dtest/#");
    daemon_config(f, 0.5, false, 30, d_broker->port, NULL);
    char *bin = ts_bin("anomalyd"), cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s --check-config", bin, f->config);
    assert_int_equal(ts_run(cmd, &out), 0);
    assert_null(strstr(out, "warning"));
    free(out);
    int port = mqb_free_port();
    daemon_config(f, 0.5, false, 30, port, NULL);
    assert_int_equal(ts_run(cmd, &out), 0);
    fprintf(stderr, "%s", out);
    char want[128];
    snprintf(want, sizeof want, "warning: mqtt output: broker 127.0.0.1:%d (mqtt.host, mqtt.port): Connection refused",
             port);
    assert_non_null(strstr(out, want));
    free(out);
    free(bin);
}

/* SIGHUP with a new mqtt.prefix: the link is reopened; the old status
 * says offline, the new one online, and verdicts go to the new topics. */
static void test_reload_moves_the_topics(void **state)
{
    (void)state;
    fx *f = station("mqtt-reload", NULL, "#");
    mqb_client *sub = d_sub;
    daemon_config(f, 0.0, true, 10, d_broker->port, NULL);
    start_daemon(f, NULL);
    mqb_wait_count(sub, T_VERDICT, 2);
    daemon_config(f, 0.0, true, 10, d_broker->port, "  prefix: plant/hall2\n");
    kill(f->pid, SIGHUP);
    mqb_wait_last(sub, T_STATUS, "offline");
    mqb_wait_last(sub, "plant/hall2/dtest/status", "online");
    mqb_wait_count(sub, "plant/hall2/dtest/verdict", 2);
    size_t before = mqb_count(sub, T_VERDICT);
    sleep_s(1.0);
    assert_int_equal(mqb_count(sub, T_VERDICT), before); /* nothing more on the old ones */
    stop_daemon(f);
    mqb_wait_last(sub, "plant/hall2/dtest/status", "offline");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_every_verdict_matches_the_log, teardown),
        cmocka_unit_test_teardown(test_kill9_gives_offline, teardown),
        cmocka_unit_test_teardown(test_broker_down_at_start_and_mid_run, teardown),
        cmocka_unit_test_teardown(test_check_config_warns, teardown),
        cmocka_unit_test_teardown(test_reload_moves_the_topics, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

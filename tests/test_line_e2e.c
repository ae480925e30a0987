/* The "done when", end to end with real components on loopback:
 * the real anomalyd replays fixtures/line/mixed (two good and two
 * defective parts) with trigger.mode part, telling a real mosquitto broker
 * (started by the test) and a Modbus TCP server written with libmodbus
 * (the PLC stand-in, started by the test). Every part is inspected exactly
 * once, and every defective part gives exactly one SQLite row, one MQTT
 * verdict "reject" and one reject-coil pulse; the good parts give a
 * "good" verdict and no pulse. */
#include "line_station.h"
#include "mqtt_broker.h"
#include "plc_server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"

#define REJECT_COIL 5

static void every_defective_part_gives_one_row_one_verdict_and_one_pulse(void **state)
{
    (void)state;
    char *reference = ls_record_reference();
    ls_part truth[LS_MAX_PARTS];
    int nt = ls_read_truth("mixed", truth), resting = 0, defective = 0;
    for (int i = 0; i < nt; i++) {
        resting += truth[i].rests_from >= 0;
        defective += truth[i].rests_from >= 0 && strcmp(truth[i].defect, "good") != 0;
    }
    assert_int_equal(defective, 2);

    char err[AD_ERRLEN];
    mqb_broker *broker = mqb_start(NULL);
    plc *p = plc_start(0, err, sizeof err);
    if (!p) fail_msg("%s", err);
    mqb_client *client = mqb_client_start(broker->port, NULL, "anomalyd/dtest/verdict");
    fx *f = fx_new("line-e2e");
    char extra[2048];
    snprintf(extra, sizeof extra,
             "outputs:\n  mqtt: {verdicts: all}\n  modbus: {reject_coil: %d, pulse_ms: 50}\n"
             "modbus: {host: 127.0.0.1, port: %d}\n"
             "mqtt: {host: 127.0.0.1, port: %d}\n",
             REJECT_COIL, plc_port(p), broker->port);
    ls_write_config(f, "mixed", false, "part", reference, extra);
    ls_run_to_end(f);

    /* the rows: one per defective part */
    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), defective);
    long row_parts[LS_MAX_PARTS];
    for (int r = 0; r < defective; r++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT part FROM rejects ORDER BY part LIMIT 1 OFFSET %d", r);
        row_parts[r] = (long)q_int(db, sql);
    }
    sqlite3_close(db);

    /* the verdicts: one per part, "reject" exactly for the rows' parts */
    mqb_wait_count(client, "anomalyd/dtest/verdict", (size_t)resting);
    size_t n = 0;
    mqb_msg *m = mqb_messages(client, "anomalyd/dtest/verdict", &n);
    assert_int_equal(n, (size_t)resting);
    int rejects = 0;
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *v = json_loads(m[i].payload, 0, &jerr);
        if (!v) fail_msg("verdict %zu is not JSON: %s: %s", i, jerr.text, m[i].payload);
        const char *verdict = json_string_value(json_object_get(v, "verdict"));
        long part = (long)json_integer_value(json_object_get(v, "part"));
        assert_non_null(verdict);
        assert_string_equal(json_string_value(json_object_get(v, "trigger")), "part");
        bool is_row = false;
        for (int r = 0; r < defective; r++) is_row |= row_parts[r] == part;
        assert_int_equal(strcmp(verdict, "reject") == 0, is_row);
        rejects += strcmp(verdict, "reject") == 0;
        json_decref(v);
    }
    assert_int_equal(rejects, defective);
    mqb_msgs_free(m, n);

    /* the reject coil: switched on once per defective part, and off again */
    plc_write w[256];
    int nw = plc_writes(p, 0, w, 256), on = 0;
    for (int i = 0; i < nw; i++) on += w[i].addr == REJECT_COIL && (w[i].function == 5 || w[i].function == 15) &&
                                       w[i].value == 1;
    assert_int_equal(on, defective);
    assert_false(plc_coil(p, REJECT_COIL));

    fx_free(f);
    mqb_client_free(client);
    plc_free(p);
    mqb_free(broker);
    ls_reference_free(reference);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_defective_part_gives_one_row_one_verdict_and_one_pulse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

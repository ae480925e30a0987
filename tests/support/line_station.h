/* The station of fixtures/line for tests that run the real daemon on it:
 * its empty-station reference recorded by the real anomalyctl capture
 * --empty, a config of anomalyd on one of its replays, and each replay's
 * truth.csv. Used by test_line_replay and test_line_e2e. */
#ifndef ANOMALYD_LINE_STATION_H
#define ANOMALYD_LINE_STATION_H

#include "daemon_harness.h"

#include <stdbool.h>

#define LS_MAX_PARTS 8

/* anomalyctl capture --empty on fixtures/line/empty into a fresh folder;
 * returns the reference's path (malloc'd); ls_reference_free removes it. */
char *ls_record_reference(void);
void ls_reference_free(char *reference);

/* f's config: anomalyd on fixtures/line/SEQ (looped or not) with
 * trigger.mode MODE and that reference; extra: more YAML, right after the
 * reference line (lines indented by 4 add trigger.part keys; then other
 * sections: outputs, modbus, mqtt). Replaced atomically, for reloads. */
void ls_write_config(fx *f, const char *seq, bool loop, const char *mode, const char *reference,
                     const char *extra);

/* anomalyd --no-drop with f's config, to the replay's end: exit status 0,
 * else the test fails with the daemon's log. */
void ls_run_to_end(fx *f);

typedef struct ls_part {
    char defect[32];          /* "good", "scratch", ... */
    int rests_from, rests_to; /* frames at rest; -1: never at rest */
} ls_part;

/* fixtures/line/SEQ/truth.csv; returns the number of parts. */
int ls_read_truth(const char *seq, ls_part parts[LS_MAX_PARTS]);

#endif

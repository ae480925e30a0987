/* Driving the real anomalyd binary from a cmocka test: a fixture folder with
 * a config, database, image folder, log file and an sd_notify socket; start
 * the daemon (optionally with extra environment and an address-space limit),
 * wait for log lines, notify messages and its exit, and query the reject
 * database. Used by test_daemon and test_daemon_faults.
 *
 * No timed assertions: every wait polls until the condition holds and fails
 * only after DH_WAIT_S, a bound generous enough for the sanitizer build on a
 * busy machine. */
#ifndef ANOMALYD_DAEMON_HARNESS_H
#define ANOMALYD_DAEMON_HARNESS_H

#include "test_support.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <sys/types.h>

#define DH_WAIT_S 300.0

typedef struct fx {
    char *dir;                 /* the fixture's temporary folder */
    char config[1200], db[1200], images[1200], log[1200], sock[1200];
    char replay[1400];         /* camera.replay_dir written by write_config */
    char model[1400];          /* model.path written by write_config */
    int sock_fd;
    char *notes;               /* every notify datagram received, '|' separated */
    size_t notes_len;
    pid_t pid;                 /* running daemon or -1 */
} fx;

/* A fresh fixture under $TMPDIR (tag names the folder): config dir/dtest.yaml,
 * database dir/state/dtest.db, images dir/state/images, log
 * dir/anomalyd.log, the fixture replay frames and model. fx_free kills a
 * daemon still running and removes the folder. */
fx *fx_new(const char *tag);
void fx_free(fx *f);

/* (DH_SHOW_LOG=1 in the environment prints the daemon log at fx_free.) */

/* Writes the config (replaced atomically, so a reload never reads half a
 * file): replay source of f->replay at fps, f->model with its head,
 * threshold, images on. */
void write_config(fx *f, double threshold, bool loop, double fps);
/* Writes text as f->config, replaced atomically like write_config's. */
void write_config_text(fx *f, const char *text);

/* Starts anomalyd --config f->config [extra], stdout and stderr appended to
 * f->log, NOTIFY_SOCKET and WATCHDOG_USEC set. start_daemon_env also sets
 * env ("NAME=value" strings, NULL-terminated; may be NULL) and, when
 * as_limit_bytes > 0, an RLIMIT_AS for the child. */
void start_daemon(fx *f, const char *extra);
void start_daemon_env(fx *f, const char *const *args, const char *const *env,
                      unsigned long long as_limit_bytes);

/* Exit status (or 128+signal); fails the test after DH_WAIT_S. */
int wait_exit(fx *f);

void drain_notify(fx *f);
char *read_log(fx *f);                    /* malloc'd, "" when absent */
int count_in(const char *text, const char *needle);
int log_count(fx *f, const char *needle); /* count_in(read_log(f), needle) */
/* Waits until the log holds needle at least times times / a notify message
 * holds needle. */
void wait_log(fx *f, const char *needle, int times);
void wait_notify(fx *f, const char *needle);
/* Last "captured N" in the STATUS messages received so far, -1 if none. */
long status_captured(fx *f);

sqlite3 *open_db(fx *f);
long long q_int(sqlite3 *db, const char *sql);
long long db_rows(fx *f);
bool file_exists(const char *path);       /* a regular file with content */

double now_s(void);
void sleep_s(double s);

#endif

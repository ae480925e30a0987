/* The anomalyd service: option parsing, threads, signals, reload, sd_notify.
 *
 *   anomalyd --config FILE [--check-config] [--no-drop] [--version] [--help]
 *
 * Threads: capture (outer reopen loop with backoff, inner grab loop, newest
 * frame into a one-slot mailbox, drops counted), inspection (takes the newest
 * frame when free, runs the detector), writer (queue of rejects and per-minute
 * counters; SQLite + PNG off the hot path; rows are never dropped, images
 * are skipped and counted when more than AD_DAEMON_MAX_PENDING_IMAGES wait).
 * The main thread waits for signals (sigtimedwait; every thread blocks them),
 * reloads on SIGHUP, talks to systemd and rolls the minute counters. Each
 * thread's state and what they hand each other: src/daemon/daemon_internal.h.
 *
 * Exit codes: 0 clean stop (SIGTERM/SIGINT, or the replay source ended),
 * 1 runtime failure (model, database, rows that could not be recorded),
 * 2 usage or config error. */
#ifndef ANOMALYD_DAEMON_H
#define ANOMALYD_DAEMON_H

#include <stddef.h>

#define AD_DAEMON_MAX_PENDING_IMAGES 32

/* Runs the daemon program; returns the process exit code. */
int ad_daemon_main(int argc, char **argv);

/* sd_notify(3) without libsystemd: sends msg (e.g. "READY=1\nSTATUS=...")
 * as one datagram to $NOTIFY_SOCKET, a filesystem path or an abstract
 * socket written with a leading '@'. Returns 0 when sent, 1 when no socket
 * is set (not under systemd), -1 on error. */
int ad_sd_notify(const char *msg);

/* Watchdog ping interval in seconds from $WATCHDOG_USEC (half of it), or 0
 * when the watchdog is off or $WATCHDOG_PID names another process. */
double ad_sd_watchdog_interval(void);

#endif

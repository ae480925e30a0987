/* The anomalyd service: option parsing, threads, signals, reload, sd_notify. */
#ifndef ANOMALYD_DAEMON_H
#define ANOMALYD_DAEMON_H

/* Runs the daemon program; returns the process exit code. */
int ad_daemon_main(int argc, char **argv);

#endif

/* anomalyd, the program: options, --check-config, and the daemon's start
 * and stop around the main thread's loop. The threads and what they hand
 * each other: daemon_internal.h. */
#include "anomalyd/daemon.h"

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/store.h"
#include "anomalyd/util.h"
#include "daemon_internal.h"

#ifndef ANOMALYD_VERSION
#define ANOMALYD_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyd --config FILE [--check-config] [--no-drop]\n"
            "       anomalyd --version | --help\n"
            "\n"
            "Inspects camera frames with a diffusion model and logs rejects to SQLite.\n"
            "\n"
            "  -c, --config FILE   the line's YAML config (e.g. /etc/anomalyd/line3.yaml)\n"
            "  -t, --check-config  validate the config, load the model, check\n"
            "                      camera.controls against the camera, print the\n"
            "                      effective config, exit 0 (ok) or 1/2 (like sshd -t)\n"
            "      --no-drop       replay source only: capture waits for inspection\n"
            "                      instead of dropping frames (re-inspecting recordings)\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this text\n"
            "\n"
            "Signals: SIGTERM/SIGINT finish the frame in hand, flush the log, exit 0;\n"
            "SIGHUP reloads config, threshold and model (the old ones stay on error).\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.\n");
}

static int check_config(const ad_config *cfg)
{
    char err[AD_ERRLEN];
    ad_detector *det = NULL;
    if (ad_detector_open(&det, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s: model check failed: %s\n", cfg->path, err);
        return 1;
    }
    ad_source *src = NULL;
    if (ad_source_init(&src, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s: camera settings: %s\n", cfg->path, err);
        ad_detector_close(det);
        return 1;
    }
    ad_source_destroy(src);
    bool checked;
    if (ad_daemon_check_controls(cfg, true, &checked)) {
        ad_detector_close(det);
        return 2;
    }
    ad_part_detector *parts = NULL;
    if (cfg->trigger.mode == AD_TRIGGER_PART && ad_part_detector_load(&parts, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s: %s\n", cfg->path, err);
        ad_detector_close(det);
        return 1;
    }
    ad_part_detector_close(parts);
    /* peers that do not answer now may later: warnings, not errors */
    char warnings[4096];
    if (ad_line_io_probe(cfg, warnings, sizeof warnings) > 0)
        for (char *line = warnings, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = '\0';
            fprintf(stderr, "anomalyd: %s: warning: %s\n", cfg->path, line);
        }
    ad_config_print(stdout, cfg);
    fprintf(stderr, "anomalyd: %s: config OK, model %s OK (sha256 %s)", cfg->path,
            cfg->model.path, ad_detector_model_sha256(det));
    if (checked)
        fprintf(stderr, ", camera.controls OK on %s (%d)", cfg->camera.device, cfg->camera.ncontrols);
    fputc('\n', stderr);
    ad_detector_close(det);
    return 0;
}

/* The model and the log first (either failing is exit 1), then the
 * threads (no_drop: the mailbox waits for inspection); the main thread runs its loop until SIGTERM/SIGINT or the end of
 * a replay; then capture and inspection stop (the frame in hand is
 * finished), the last minute is counted and the writer drains its queue. */
static int run(ad_daemon *d, bool no_drop)
{
    ad_main_thread *m = &d->main;
    const ad_config *c = &m->cfg;
    char err[AD_ERRLEN];
    ad_log(AD_LOG_INFO, "anomalyd %s starting: config %s, line %s, camera %s", ANOMALYD_VERSION,
           m->config_path, c->line.name, ad_daemon_camera_name(c));
    bool controls_checked;
    if (ad_daemon_check_controls(c, false, &controls_checked)) return 2;
    ad_detector *det = NULL;
    if (ad_detector_open(&det, c, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "cannot load the model: %s", err);
        return 1;
    }
    ad_detector_set_threshold(det, c->threshold);
    ad_log(AD_LOG_INFO, "model %s loaded (sha256 %s), threshold %g", c->model.path,
           ad_detector_model_sha256(det), c->threshold);
    ad_store *store = NULL;
    ad_store_options store_opt;
    ad_store_options_from_config(&store_opt, c);
    if (ad_store_open(&store, &store_opt, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "cannot open the reject log: %s", err);
        ad_detector_close(det);
        return 1;
    }
    ad_log(AD_LOG_INFO, "reject log %s, images %s", c->reject_log.database,
           c->reject_log.save_images ? c->reject_log.image_dir : "off");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the line: after the mask, so the links' threads inherit it */
    d->triggers = ad_trigger_queue_create(c->trigger.queue);
    ad_part_stage_init(&d->parts, d->triggers);
    int code = 0;
    if (ad_part_stage_offer(&d->parts, c, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "%s", err);
        code = 1;
    } else if (ad_line_io_open(&d->io, c, d->triggers, err, sizeof err) != 0) {
        ad_log(AD_LOG_ERR, "cannot start the line outputs: %s", err);
        code = 2;
    }
    if (code) {
        ad_part_stage_destroy(&d->parts);
        ad_trigger_queue_destroy(d->triggers);
        ad_store_close(store);
        ad_detector_close(det);
        return code;
    }

    ad_mailbox_init(&d->mailbox, no_drop);
    ad_camera_slot_init(&d->camera, c);
    ad_reload_slot_init(&d->reload);
    ad_inspect_stats_init(&d->stats, c->threshold);
    ad_writer_queue_init(&d->queue);
    ad_capture_thread_init(&d->capture, &d->mailbox, &d->camera, &d->parts);
    ad_inspect_thread_init(&d->inspect, &d->mailbox, &d->reload, d->triggers, &d->queue, &d->stats, d->io, c,
                           det);
    ad_writer_thread_init(&d->writer, &d->queue, store, d->io);
    m->lat_scratch = ad_xmalloc(AD_MINUTE_SAMPLES_MAX * sizeof(double));
    ad_main_thread_minute_start(d);

    pthread_create(&d->writer.tid, NULL, ad_writer_thread_main, &d->writer);
    pthread_create(&d->inspect.tid, NULL, ad_inspect_thread_main, &d->inspect);
    pthread_create(&d->capture.tid, NULL, ad_capture_thread_main, &d->capture);

    ad_main_thread_run(d, &sigs);

    ad_sd_notify("STOPPING=1");
    atomic_store(&d->capture.stop, 1);
    ad_mailbox_close(&d->mailbox);
    pthread_join(d->capture.tid, NULL);
    pthread_join(d->inspect.tid, NULL);
    ad_main_thread_minute_flush(d);
    ad_writer_queue_stop(&d->queue);
    pthread_join(d->writer.tid, NULL);
    ad_line_io_close(d->io); /* after the writer: the last rejects reach the links */
    d->io = NULL;

    ad_counts n;
    ad_daemon_read_counts(d, &n);
    ad_log(n.rows_lost ? AD_LOG_ERR : AD_LOG_INFO,
           "stopped: captured %ld, inspected %ld, dropped %ld, rejects %ld (%ld rows written, "
           "%ld not recorded), images skipped %ld",
           n.captured, n.inspected, n.dropped, n.rejects, n.rows_written, n.rows_lost,
           n.images_skipped);
    if (m->cfg.trigger.mode != AD_TRIGGER_CONTINUOUS) {
        ad_trigger_counts tc;
        ad_trigger_queue_counts(d->triggers, &tc);
        ad_log(AD_LOG_INFO, "triggers: %ld fired, %ld served, %ld dropped (queue full) or not served; parts "
               "that passed without coming to rest: %ld; frames passed over: %ld", tc.fired,
               atomic_load(&d->inspect.inspected), tc.dropped + atomic_load(&d->inspect.unserved),
               n.unsettled, atomic_load(&d->inspect.passed_over));
    }

    ad_writer_thread_destroy(&d->writer);
    ad_inspect_thread_destroy(&d->inspect);
    ad_capture_thread_destroy(&d->capture);
    ad_writer_queue_destroy(&d->queue);
    ad_inspect_stats_destroy(&d->stats);
    ad_reload_slot_destroy(&d->reload);
    ad_camera_slot_destroy(&d->camera);
    ad_mailbox_destroy(&d->mailbox);
    ad_part_stage_destroy(&d->parts);
    ad_trigger_queue_destroy(d->triggers);
    free(m->lat_scratch);
    return n.rows_lost ? 1 : 0;
}

int ad_daemon_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"no-drop", no_argument, NULL, 'D'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool check = false, no_drop = false;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":c:tVh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 't': check = true; break;
        case 'D': no_drop = true; break;
        case 'V': printf("anomalyd %s\n", ANOMALYD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "anomalyd: option %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "anomalyd: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "anomalyd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!config) {
        fprintf(stderr, "anomalyd: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (getenv("ANOMALYD_DEBUG")) ad_log_set_level(AD_LOG_DEBUG);

    ad_daemon *d = ad_xcalloc(1, sizeof *d);
    ad_main_thread *m = &d->main;
    char err[AD_ERRLEN];
    int code;
    if (ad_config_load(config, &m->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyd: %s\n", err);
        code = 2;
        goto out;
    }
    if (no_drop && m->cfg.camera.source != AD_SOURCE_REPLAY) {
        fprintf(stderr, "anomalyd: --no-drop works only with camera.source: replay\n");
        code = 2;
        goto out;
    }
    if (check) {
        code = check_config(&m->cfg);
        goto out;
    }
    ad_fmt_trunc(m->config_path, sizeof m->config_path, "%s", config);
    code = run(d, no_drop);
out:
    free(d);
    return code;
}

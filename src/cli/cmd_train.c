/* anomalyctl train --config F --images DIR [--resume CKPT] [--steps N]
 *                  [--head-steps N] [--head-only] [--resume-head] [--stats-only]
 *
 * After the diffusion model, when train.head_steps > 0, the learned anomaly
 * head is trained on synthetic defects with the model frozen (head.h). Last,
 * when detector.normalize is true, the per-pixel statistics of the anomaly
 * map over the same images are fitted through the detector and written
 * beside the model (detect.h, ad_stats_path).
 *
 * Exit codes: 0 trained (model written) or interrupted by Ctrl-C/SIGTERM with
 * a checkpoint saved (the message says how to resume); 1 runtime failure
 * (images unreadable, training diverged, a file not writable); 2 usage or
 * config error. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/head.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"

static volatile int stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyctl train --config FILE --images DIR [--resume CKPT] [--steps N]\n"
            "                        [--head-steps N] [--head-only] [--resume-head]\n"
            "                        [--stats-only]\n"
            "\n"
            "Trains the diffusion model on a folder of good images (*.png) with the model\n"
            "and train sections of FILE, and writes the EMA weights to model.path. Then,\n"
            "when train.head_steps > 0, trains the learned anomaly head on synthetic\n"
            "defects pasted on the same images (model frozen) and writes it beside the\n"
            "model as NAME.head.safetensors (used by detector.map: head or both).\n"
            "Last, when detector.normalize is true, fits the per-pixel statistics of the\n"
            "anomaly map over the same images and writes NAME.stats.safetensors.\n"
            "\n"
            "  --config FILE   station config (YAML)\n"
            "  --images DIR    folder of good images; other files are skipped with a warning\n"
            "  --resume CKPT   continue a run from its checkpoint, exactly where it stopped\n"
            "  --steps N       total steps (overrides train.steps)\n"
            "  --head-steps N  head training steps (overrides train.head_steps; 0 = none)\n"
            "  --head-only     train only the head, on the existing model at model.path\n"
            "  --resume-head   continue the head from its checkpoint (NAME.head.safetensors.ckpt)\n"
            "  --stats-only    only fit the map statistics for the existing model (and head),\n"
            "                  e.g. after changing detector settings\n"
            "\n"
            "A checkpoint (train.checkpoint, default model.path + \".ckpt\") is written every\n"
            "train.checkpoint_every steps, at the end, and on Ctrl-C, which stops cleanly\n"
            "(press it twice to abort without saving).\n"
            "exit codes: 0 done or interrupted with a checkpoint, 1 runtime failure,\n"
            "2 usage or config error\n");
}

static void format_duration(char *out, size_t len, double sec)
{
    if (sec < 0 || sec > 1e8) {
        snprintf(out, len, "?");
        return;
    }
    long s = (long)(sec + 0.5);
    if (s >= 3600)
        snprintf(out, len, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        snprintf(out, len, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, len, "%lds", s);
}

typedef struct progress_view {
    int tty;
    double last_draw;
    long last_logged_step;
    int drew;
    const char *stage;          /* "model 1/2", "head 2/2", ... */
    /* later stages: their steps and their cost per step in units of this
     * stage's step, so the ETA covers the whole job */
    long later_steps;
    double later_cost;
} progress_view;

/* One head step (batch of train.head_crop crops: one-step reconstruction of
 * each, head forward and backward) costs about this many diffusion steps of
 * the same batch at the same crop size; measured on the 2-core development
 * machine (MTD: 0.56 s per model step at 64x64, 1.43 s per head step at
 * 128x128). The ETA scales it by the ratio of crop areas. */
#define HEAD_STEP_COST_PER_AREA 0.64

static double head_cost_in_model_steps(const ad_config *cfg)
{
    double r = (double)cfg->train.head_crop / (double)cfg->train.crop;
    return HEAD_STEP_COST_PER_AREA * r * r;
}

static void show_progress(const ad_train_progress *p, void *user)
{
    progress_view *v = user;
    double now = ad_now_sec();
    int final = p->step >= p->total_steps;
    char eta[32];
    double eta_sec = p->eta_sec;
    if (v->later_steps > 0 && p->step > 0 && p->total_steps > 0) {
        /* time per step of this stage, from its own ETA */
        double per_step = p->eta_sec / (double)(p->total_steps - p->step > 0 ? p->total_steps - p->step : 1);
        if (p->step >= p->total_steps) per_step = 0;
        eta_sec += per_step > 0 ? per_step * v->later_cost * (double)v->later_steps : 0;
    }
    format_duration(eta, sizeof eta, eta_sec);
    const char *stage = v->stage ? v->stage : "";
    if (v->tty) {
        if (!final && now - v->last_draw < 0.1) return;
        v->last_draw = now;
        int width = 24, filled = (int)((double)p->step * width / p->total_steps);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        printf("\r%s%s[%s] step %ld/%ld  loss %.4f  %.1f samples/s  ETA %s%s   ", stage, *stage ? " " : "",
               bar, p->step, p->total_steps, p->loss_smoothed, p->samples_per_sec, eta,
               v->later_steps > 0 ? " (whole job)" : "");
        if (final) printf("\n");
        fflush(stdout);
        v->drew = !final;
        return;
    }
    long every = p->total_steps / 20;
    if (every < 1) every = 1;
    if (!final && p->step - v->last_logged_step < every && now - v->last_draw < 10.0) return;
    v->last_draw = now;
    v->last_logged_step = p->step;
    printf("%s%sstep %ld/%ld (%.0f%%) loss %.5f smoothed %.5f, %.1f samples/s, ETA %s%s\n", stage,
           *stage ? ": " : "", p->step, p->total_steps, 100.0 * p->step / p->total_steps, p->loss,
           p->loss_smoothed, p->samples_per_sec, eta, v->later_steps > 0 ? " (whole job)" : "");
    fflush(stdout);
}

typedef struct head_progress_state {
    progress_view *view;
    int batch;
} head_progress_state;

/* The ETA from the speed of this run (the trainer counts it from the step
 * it started at, so a resumed run is not taken for a fast one). */
static void show_head_progress(long step, long total, double loss, double samples_per_sec, void *user)
{
    head_progress_state *hs = user;
    ad_train_progress p = {step, total, loss, loss, samples_per_sec,
                           samples_per_sec > 0 ? (double)(total - step) * hs->batch / samples_per_sec : 0};
    show_progress(&p, hs->view);
}

/* Trains the head; returns the exit code. */
static int train_head(const ad_config *cfg, const char *images, bool resume, const char *stage)
{
    char err[AD_ERRLEN], head_path[AD_PATH_MAX + 32];
    ad_head_path(head_path, sizeof head_path, cfg->model.path);
    printf("training the learned head: %d steps on synthetic defects\n", cfg->train.head_steps);
    fflush(stdout);
    progress_view view = {.tty = isatty(STDOUT_FILENO), .stage = stage};
    head_progress_state hs = {&view, cfg->train.batch};
    ad_head_train_opts ho = {.cfg = cfg, .images_dir = images, .resume = resume, .stop_flag = &stop_requested,
                             .progress = show_head_progress, .user = &hs};
    int rc = ad_head_train_run(&ho, err, sizeof err);
    if (view.drew) printf("\n");
    if (rc < 0) {
        fprintf(stderr, "anomalyctl train: head: %s\n", err);
        return 1;
    }
    if (rc == 1)
        printf("head training interrupted; the head trained so far is saved to %s "
               "(continue with --head-only --resume-head)\n", head_path);
    else
        printf("head written to %s\n", head_path);
    return 0;
}

/* Fits the map statistics over the good images through the detector itself
 * (the pixels and the map inspection sees) and writes them beside the model;
 * returns the exit code. */
static int fit_stats(const ad_config *cfg, const char *images)
{
    char err[AD_ERRLEN], path[AD_PATH_MAX + 32];
    ad_stats_path(path, sizeof path, cfg->model.path);
    printf("fitting the per-pixel map statistics over %s\n", images);
    fflush(stdout);
    /* the folder as an absolute path: error messages offer it for a refit */
    char *source = realpath(images, NULL);
    ad_detector_tuning fit_here = {.normalize = 1};
    ad_detector *d = NULL;
    int n = 0, rc = 1;
    if (ad_detector_open_tuned(&d, cfg, &fit_here, err, sizeof err) == 0 &&
        ad_detector_fit_stats_dir(d, images, &n, err, sizeof err) == 0 &&
        ad_detector_save_stats(d, path, source ? source : images, n, err, sizeof err) == 0) {
        printf("statistics of %d images written to %s\n", n, path);
        rc = 0;
    } else {
        fprintf(stderr, "anomalyctl train: statistics: %s\n", err);
    }
    ad_detector_close(d);
    free(source);
    return rc;
}

/* After the model or the head: the statistics when the detector uses them. */
static int fit_stats_if_used(const ad_config *cfg, const char *images)
{
    if (!cfg->detector.normalize) return 0;
    if (stop_requested) {
        printf("per-pixel map statistics not fitted (interrupted); fit them with --stats-only "
               "once training is done\n");
        return 0;
    }
    return fit_stats(cfg, images);
}

/* What the command line asks for. */
typedef struct train_args {
    const char *config_path, *images, *resume;
    long steps;                  /* 0 = train.steps */
    long head_steps;             /* -1 = train.head_steps */
    bool head_only, resume_head, stats_only;
} train_args;

static int parse_args(train_args *a, int argc, char **argv)
{
    static const ad_cli cli = {"train", usage};
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},   {"images", required_argument, NULL, 'i'},
        {"resume", required_argument, NULL, 'r'},   {"steps", required_argument, NULL, 's'},
        {"head-steps", required_argument, NULL, 'H'}, {"head-only", no_argument, NULL, 'o'},
        {"resume-head", no_argument, NULL, 'R'},    {"stats-only", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->head_steps = -1;
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'c': a->config_path = optarg; break;
        case 'i': a->images = optarg; break;
        case 'r': a->resume = optarg; break;
        case 's':
            if (ad_parse_long(optarg, 1, 10000000, &a->steps) < 0)
                return ad_cli_usage_error(&cli, "--steps must be a whole number from 1 to "
                                          "10000000, got '%s'", optarg);
            break;
        case 'H':
            if (ad_parse_long(optarg, 0, 10000000, &a->head_steps) < 0)
                return ad_cli_usage_error(&cli, "--head-steps must be a whole number from 0 to "
                                          "10000000, got '%s'", optarg);
            break;
        case 'o': a->head_only = true; break;
        case 'R': a->resume_head = true; break;
        case 'S': a->stats_only = true; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!a->config_path || !a->images)
        return ad_cli_usage_error(&cli, "--config and --images are required");
    return AD_CLI_RUN;
}

/* The options that depend on the config: 0, or AD_EXIT_USAGE with the
 * reason printed. --head-steps overrides train.head_steps in cfg. */
static int check_args(const train_args *a, ad_config *cfg)
{
    char err[AD_ERRLEN];
    if (a->stats_only) {
        if (a->head_only || a->resume_head || a->resume || a->steps || a->head_steps >= 0) {
            fprintf(stderr, "anomalyctl train: --stats-only fits only the statistics; it takes no "
                            "--head-only, --resume, --resume-head, --steps or --head-steps\n");
            return AD_EXIT_USAGE;
        }
        return 0;
    }
    if (ad_train_check_config(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyctl train: %s\n", err);
        return AD_EXIT_USAGE;
    }
    if (a->head_steps >= 0) cfg->train.head_steps = (int)a->head_steps;
    if (a->head_only && (a->resume || a->steps)) {
        fprintf(stderr, "anomalyctl train: --head-only trains only the head; it takes no --resume or --steps\n");
        return AD_EXIT_USAGE;
    }
    if (a->head_only && cfg->train.head_steps <= 0) {
        fprintf(stderr, "anomalyctl train: --head-only needs train.head_steps > 0 in %s or --head-steps N\n",
                a->config_path);
        return AD_EXIT_USAGE;
    }
    return 0;
}

/* While a stage trains, SIGINT/SIGTERM ask it to stop at the next step
 * (and save); a second one aborts at once. */
static void catch_stop_signals(bool on)
{
    if (!on) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C aborts at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The diffusion model, with the progress line; ad_train_run's result (0
 * trained, 1 interrupted and saved, negative with err). */
static int train_model(const train_args *a, const ad_config *cfg, ad_train_progress *last,
                       char *err, size_t errlen)
{
    progress_view view = {.tty = isatty(STDOUT_FILENO)};
    if (cfg->train.head_steps > 0) {
        view.stage = "model 1/2";
        view.later_steps = cfg->train.head_steps;
        view.later_cost = head_cost_in_model_steps(cfg);
    }
    ad_train_opts opts = {.cfg = cfg, .images_dir = a->images, .resume_path = a->resume,
                          .steps = a->steps, .stop_flag = &stop_requested,
                          .progress = show_progress, .user = &view, .last = last};
    int rc = ad_train_run(&opts, err, errlen);
    if (view.drew) printf("\n");
    return rc;
}

/* What the model's training came to; the exit code when the job ends
 * here (failed or interrupted), else -1 to go on. */
static int report_model(const train_args *a, const ad_config *cfg, int rc,
                        const ad_train_progress *last, const char *err)
{
    char ckpt[AD_PATH_MAX + 8];
    ad_train_checkpoint_path(cfg, ckpt, sizeof ckpt);
    if (rc < 0) {
        fprintf(stderr, "anomalyctl train: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    if (rc == 1) {
        char more[40] = "";
        if (a->steps) snprintf(more, sizeof more, " --steps %ld", a->steps);
        printf("interrupted at step %ld of %ld; checkpoint saved to %s\n"
               "resume with: anomalyctl train --config %s --images %s --resume %s%s\n",
               last->step, last->total_steps, ckpt, a->config_path, a->images, ckpt, more);
        return AD_EXIT_OK;
    }
    printf("trained %ld steps, final loss %.5f; model written to %s (checkpoint %s)\n",
           last->step, last->loss_smoothed, cfg->model.path, ckpt);
    return -1;
}

/* The stages the arguments ask for: statistics only; the head only; or the
 * model, then the head (train.head_steps > 0), then the statistics
 * (detector.normalize). Returns the exit code. */
static int run(const train_args *a, ad_config *cfg)
{
    if (a->stats_only) {
        if (!cfg->detector.normalize)
            printf("note: detector.normalize is false in %s; the detector reads the statistics "
                   "once it is true\n", a->config_path);
        return fit_stats(cfg, a->images);
    }
    if (a->head_only) {
        catch_stop_signals(true);
        int hrc = train_head(cfg, a->images, a->resume_head, "head");
        catch_stop_signals(false);
        return hrc ? hrc : fit_stats_if_used(cfg, a->images);
    }
    char err[AD_ERRLEN];
    ad_train_progress last = {0};
    catch_stop_signals(true);
    int rc = train_model(a, cfg, &last, err, sizeof err);
    catch_stop_signals(false);
    rc = report_model(a, cfg, rc, &last, err);
    if (rc >= 0) return rc;
    if (cfg->train.head_steps > 0) {
        catch_stop_signals(true);
        int hrc = train_head(cfg, a->images, a->resume_head, "head 2/2");
        catch_stop_signals(false);
        if (hrc) return hrc;
    }
    return fit_stats_if_used(cfg, a->images);
}

int ad_cmd_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    static ad_config cfg; /* large; keep it off the stack */
    char err[AD_ERRLEN];
    if (ad_config_load(a.config_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyctl train: %s\n", err);
        return AD_EXIT_USAGE;
    }
    rc = check_args(&a, &cfg);
    return rc ? rc : run(&a, &cfg);
}

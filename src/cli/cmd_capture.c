/* anomalyctl capture: grab N frames from the configured camera (or replay
 * folder), apply the daemon's ROI and colour preprocessing, write PNGs; or,
 * with --empty, average them into the part trigger's empty-station
 * reference and measure the camera's noise against it. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"
#include "line/line.h"

#define MAX_CONSECUTIVE_TIMEOUTS 3

static volatile sig_atomic_t capture_stop;

static void on_signal(int sig)
{
    (void)sig;
    capture_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyctl capture --config FILE --count N --out DIR [--every MS]\n"
            "       anomalyctl capture --config FILE --empty [--count N] [--out FILE]\n"
            "       anomalyctl capture --config FILE --list-formats\n"
            "\n"
            "Grabs N frames from the camera in FILE (camera.source v4l2 or replay), crops\n"
            "camera.roi and converts to model.color exactly like the daemon, and writes\n"
            "DIR/frame_000000.png, frame_000001.png ... (numbering continues after frames\n"
            "already in DIR), to build a training set of good parts.\n"
            "\n"
            "  --config FILE  station config (YAML)\n"
            "  --count N      frames to save (1..10000000)\n"
            "  --out DIR      output folder, created if missing\n"
            "  --every MS     save at most one frame every MS milliseconds (default 0:\n"
            "                 every frame the camera delivers)\n"
            "  --quiet        no progress output\n"
            "  --list-formats print the formats, sizes and frame rates camera.device\n"
            "                 offers (to choose camera.width/height/fps), then exit\n"
            "  --empty        the station is empty: average N frames (default 30) of the\n"
            "                 ROI into the part trigger's reference (--out FILE, default\n"
            "                 trigger.part.reference), then print how far the frames\n"
            "                 stray from it (the camera's noise) and whether\n"
            "                 trigger.part.pixel_delta and absent_percent clear it\n"
            "\n"
            "exit codes: 0 ok, 1 camera or disk failure, 2 usage or config error\n");
}

/* Index after the highest DIR/frame_NNNNNN.png, so a second run appends. */
static long next_frame_index(const char *dir)
{
    long next = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long n;
        char tail[8];
        if (sscanf(e->d_name, "frame_%ld%7s", &n, tail) == 2 && !strcmp(tail, ".png") && n >= next)
            next = n + 1;
    }
    closedir(d);
    return next;
}

static int list_formats(const char *config_path)
{
    char err[AD_ERRLEN];
    ad_config *cfg = ad_xcalloc(1, sizeof *cfg);
    int rc = 2;
    if (ad_config_load(config_path, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        goto out;
    }
    rc = 1;
    if (cfg->camera.source != AD_SOURCE_V4L2) {
        fprintf(stderr, "anomalyctl capture: %s: camera.source is replay; --list-formats needs a "
                "V4L2 camera\n", config_path);
        rc = 2;
        goto out;
    }
    ad_camera_mode *modes = NULL;
    size_t n = 0;
    if (ad_v4l2_list_modes(cfg->camera.device, &modes, &n, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        goto out;
    }
    printf("camera %s offers (formats marked * are converted by libv4l2):\n", cfg->camera.device);
    for (size_t i = 0; i < n; i++) {
        printf("  %-7s%s", modes[i].fourcc, modes[i].emulated ? "*" : " ");
        if (modes[i].width)
            printf(" %5dx%-5d%s", modes[i].width, modes[i].height,
                   modes[i].stepwise ? " (largest of a range)" : "");
        for (int k = 0; k < modes[i].nfps; k++)
            printf("%s%g", k ? " " : "  fps: ", modes[i].fps[k]);
        printf("\n");
    }
    free(modes);
    rc = 0;
out:
    free(cfg);
    return rc;
}

/* What the command line asks for. */
typedef struct capture_args {
    const char *config_path, *out_dir;
    long count;                  /* -1 until given */
    long every_ms;
    bool quiet, list, empty;
} capture_args;

static int parse_args(capture_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"count", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},    {"every", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"list-formats", no_argument, NULL, 'l'}, {"empty", no_argument, NULL, 'E'},
        {NULL, 0, NULL, 0}};
    static const ad_cli cli = {"capture", usage};
    memset(a, 0, sizeof *a);
    a->count = -1;
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "c:n:o:e:qh", longopts)) != -1) {
        switch (opt) {
        case 'c': a->config_path = optarg; break;
        case 'o': a->out_dir = optarg; break;
        case 'n':
            if (ad_parse_long(optarg, 1, 10000000, &a->count) < 0)
                return ad_cli_usage_error(&cli, "--count must be a whole number from 1 to "
                                          "10000000, got '%s'", optarg);
            break;
        case 'e':
            if (ad_parse_long(optarg, 0, 86400000, &a->every_ms) < 0)
                return ad_cli_usage_error(&cli, "--every must be milliseconds from 0 to "
                                          "86400000, got '%s'", optarg);
            break;
        case 'q': a->quiet = true; break;
        case 'l': a->list = true; break;
        case 'E': a->empty = true; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (a->list && a->config_path) return AD_CLI_RUN;
    if (a->empty && a->config_path) {
        if (a->count < 0) a->count = 30;
        return AD_CLI_RUN;
    }
    if (!a->config_path || !a->out_dir || a->count < 0)
        return ad_cli_usage_error(&cli, "--config, --count and --out are required");
    return AD_CLI_RUN;
}

/* The run: the open camera, the frames saved and passed over. */
typedef struct capture_run {
    ad_config *cfg;
    ad_source *src;
    char granted[256];           /* what the camera gave */
    long first;                  /* index of the first frame written */
    long saved, skipped, between;/* written; bad buffers; passed over (--every) */
    uint64_t dropped;            /* by the driver or the replay pacing */
    double t_start;
    ad_image frame, roi;
    bool tty;                    /* progress on one line */
    /* --empty: the sum of every ROI and each frame's grid */
    uint32_t *sum;
    int sum_w, sum_h, sum_c;
    ad_image *grids;
} capture_run;

/* The config, the source, the output folder. 0 or the exit code (the
 * error printed). */
static int open_camera(const capture_args *a, capture_run *c)
{
    char err[AD_ERRLEN];
    c->cfg = ad_xcalloc(1, sizeof *c->cfg);
    if (ad_config_load(a->config_path, c->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        return AD_EXIT_USAGE;
    }
    if (ad_source_init(&c->src, c->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s: %s\n", a->config_path, err);
        return AD_EXIT_USAGE;
    }
    char folder[AD_PATH_MAX];
    snprintf(folder, sizeof folder, "%s", a->out_dir ? a->out_dir : c->cfg->trigger.part.reference);
    if (a->empty) { /* --out names the reference file: its folder must exist */
        char *slash = strrchr(folder, '/');
        if (slash) *slash = '\0';
        else snprintf(folder, sizeof folder, ".");
    }
    if (ad_mkdirs(folder, 0755, err, sizeof err) < 0 ||
        ad_source_open(c->src, c->granted, sizeof c->granted, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    if (a->empty) {
        c->grids = ad_xcalloc((size_t)a->count, sizeof *c->grids);
        if (!a->quiet) fprintf(stderr, "camera: %s\n", c->granted);
        return 0;
    }
    c->first = next_frame_index(a->out_dir);
    if (!a->quiet) {
        fprintf(stderr, "camera: %s\n", c->granted);
        if (c->first > 0)
            fprintf(stderr, "%s already holds frames up to frame_%06ld.png; appending\n",
                    a->out_dir, c->first - 1);
    }
    return 0;
}

/* --empty: the ROI added to the sum, its grid kept. 0 or the exit code. */
static int add_empty_frame(capture_run *c, char *err, size_t errlen)
{
    const ad_image *r = &c->roi;
    if (!c->sum) {
        c->sum_w = r->w, c->sum_h = r->h, c->sum_c = r->c;
        c->sum = ad_xcalloc((size_t)r->w * r->h * r->c, sizeof *c->sum);
    }
    if (r->w != c->sum_w || r->h != c->sum_h) {
        ad_err(err, errlen, "the camera's frames changed size during the capture (%dx%d, then %dx%d)", c->sum_w,
               c->sum_h, r->w, r->h);
        return AD_EXIT_FAILURE;
    }
    for (size_t i = 0; i < (size_t)r->w * r->h * r->c; i++) c->sum[i] += r->px[i];
    if (ad_part_grid(r, c->cfg->trigger.part.grid, &c->grids[c->saved], err, errlen) != 0) return AD_EXIT_FAILURE;
    return 0;
}

/* The frame just grabbed, preprocessed like the daemon's, as the next
 * PNG (--empty: into the average). 0 or the exit code (the error printed). */
static int save_frame(const capture_args *a, capture_run *c)
{
    char err[AD_ERRLEN];
    const char *nl = c->tty ? "\n" : "";
    ad_image_free(&c->roi);
    if (ad_preprocess_roi(c->cfg, &c->frame, &c->roi, err, sizeof err) < 0) {
        fprintf(stderr, "%sanomalyctl capture: %s: %s\n", nl, a->config_path, err);
        return AD_EXIT_USAGE; /* the ROI does not fit the frames the camera gives: a config error */
    }
    if (a->empty) {
        int rc = add_empty_frame(c, err, sizeof err);
        if (rc) {
            fprintf(stderr, "%sanomalyctl capture: %s\n", nl, err);
            return rc;
        }
        c->saved++;
        return 0;
    }
    char path[AD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/frame_%06ld.png", a->out_dir, c->first + c->saved);
    if (ad_png_write(path, &c->roi, err, sizeof err) < 0) {
        fprintf(stderr, "%sanomalyctl capture: %s\n", nl, err);
        return AD_EXIT_FAILURE;
    }
    c->saved++;
    if (!a->quiet && c->tty)
        fprintf(stderr, "\rcaptured %ld/%ld (%dx%d %s), %llu dropped", c->saved, a->count,
                c->roi.w, c->roi.h, c->roi.c == 1 ? "gray" : "RGB",
                (unsigned long long)c->dropped);
    else if (!a->quiet && (c->saved == a->count || c->saved % 100 == 0))
        fprintf(stderr, "captured %ld/%ld\n", c->saved, a->count);
    return 0;
}

/* Grabs until --count frames are saved or SIGINT/SIGTERM; the camera is
 * kept drained between saves (--every). 0 or the exit code (the error
 * printed). */
static int grab_frames(const capture_args *a, capture_run *c)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    capture_stop = 0;

    char err[AD_ERRLEN], last_problem[AD_ERRLEN] = "";
    const char *nl = c->tty ? "\n" : "";
    long timeouts = 0;
    double next_due = 0;
    c->t_start = ad_now_sec();
    while (c->saved < a->count && !capture_stop) {
        uint64_t seq = 0, dropped = 0;
        int g = ad_source_grab(c->src, &c->frame, &seq, &dropped, err, sizeof err);
        c->dropped += dropped;
        if (g == AD_CAPTURE_TIMEOUT || g == AD_CAPTURE_AGAIN) {
            if (g == AD_CAPTURE_TIMEOUT && ++timeouts >= MAX_CONSECUTIVE_TIMEOUTS) {
                fprintf(stderr, "%sanomalyctl capture: %s (%d times in a row); giving up\n", nl,
                        err, MAX_CONSECUTIVE_TIMEOUTS);
                return AD_EXIT_FAILURE;
            }
            c->skipped += g == AD_CAPTURE_AGAIN;
            if (strcmp(err, last_problem)) { /* say each distinct problem once */
                fprintf(stderr, "%swarning: %s\n", nl, err);
                snprintf(last_problem, sizeof last_problem, "%s", err);
            }
            continue;
        }
        if (g == AD_CAPTURE_END) {
            fprintf(stderr, "%sanomalyctl capture: the replay folder ran out after %ld of %ld "
                    "frames (set camera.replay_loop: true to loop)\n", nl, c->saved, a->count);
            return AD_EXIT_FAILURE;
        }
        if (g != AD_CAPTURE_OK) {
            fprintf(stderr, "%sanomalyctl capture: %s\n", nl, err);
            return AD_EXIT_FAILURE;
        }
        timeouts = 0;
        double now = ad_now_sec();
        if (a->every_ms > 0 && now < next_due) { /* keep the camera drained */
            c->between++;
            continue;
        }
        next_due = (next_due > 0 && now - next_due < a->every_ms / 1000.0 ? next_due : now) +
                   a->every_ms / 1000.0;
        int rc = save_frame(a, c);
        if (rc != 0) return rc;
    }
    return 0;
}

/* --empty: the average written as the reference, then each frame's grid
 * against the reference's: how far an empty station strays (the camera's
 * noise), and what that means for trigger.part.pixel_delta and
 * absent_percent. 0 or the exit code (the error printed). */
static int write_reference(const capture_args *a, capture_run *c)
{
    char err[AD_ERRLEN];
    const char *path = a->out_dir ? a->out_dir : c->cfg->trigger.part.reference;
    const ad_config *cfg = c->cfg;
    ad_image ref = {0}, ref_grid = {0};
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = AD_EXIT_FAILURE;
    if (c->saved == 0 || ad_image_alloc(&ref, c->sum_w, c->sum_h, c->sum_c) != 0) {
        fprintf(stderr, "anomalyctl capture: no frame captured, no reference written\n");
        return AD_EXIT_FAILURE;
    }
    for (size_t i = 0; i < (size_t)ref.w * ref.h * ref.c; i++)
        ref.px[i] = (uint8_t)((c->sum[i] + (uint32_t)c->saved / 2) / (uint32_t)c->saved);
    if (ad_png_encode(&ref, &png, &len, err, sizeof err) != 0 ||
        ad_write_file_durable(path, png, len, err, sizeof err) != 0 ||
        ad_part_grid(&ref, cfg->trigger.part.grid, &ref_grid, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        goto out;
    }
    int noise = 0;
    double worst = 0;
    for (long f = 0; f < c->saved; f++) {
        const ad_image *g = &c->grids[f];
        for (size_t i = 0; i < (size_t)g->w * g->h; i++) {
            int d = abs((int)g->px[i] - (int)ref_grid.px[i]);
            if (d > noise) noise = d;
        }
        double p = ad_part_differ_percent(g, &ref_grid, cfg->trigger.part.pixel_delta);
        if (p > worst) worst = p;
    }
    printf("empty station: %ld frames averaged into %s (%dx%d %s)\n", c->saved, path, ref.w, ref.h,
           ref.c == 1 ? "gray" : "RGB");
    printf("camera noise: the frames stray from it by up to %d gray levels on the %dx%d grid\n", noise,
           ref_grid.w, ref_grid.h);
    printf("at trigger.part.pixel_delta %d, up to %.1f%% of the cells of an empty frame differ "
           "(absent_percent %g, present_percent %g)\n",
           cfg->trigger.part.pixel_delta, worst, cfg->trigger.part.absent_percent,
           cfg->trigger.part.present_percent);
    int suggest = 2 * noise + 4;
    if (cfg->trigger.part.pixel_delta <= noise || worst >= cfg->trigger.part.absent_percent)
        printf("warning: the empty station looks like a part at these settings: set trigger.part.pixel_delta "
               "to at least %d\n", suggest > 255 ? 255 : suggest);
    else
        printf("ok: pixel_delta %d is above the noise (%d; %d would still clear it)\n",
               cfg->trigger.part.pixel_delta, noise, suggest > 255 ? 255 : suggest);
    rc = 0;
out:
    free(png);
    ad_image_free(&ref);
    ad_image_free(&ref_grid);
    return rc;
}

/* What was written; an interrupted run is a failure. */
static int report(const capture_args *a, const capture_run *c)
{
    if (!a->quiet && !a->empty) {
        double secs = ad_now_sec() - c->t_start;
        fprintf(stderr, "%s%ld frames written to %s (frame_%06ld.png .. frame_%06ld.png) in "
                "%.1f s; %ld passed over (--every), %llu dropped, %ld bad\n",
                c->tty ? "\n" : "", c->saved, a->out_dir, c->first,
                c->first + (c->saved ? c->saved - 1 : 0), secs, c->between,
                (unsigned long long)c->dropped, c->skipped);
    }
    if (capture_stop && c->saved < a->count) {
        fprintf(stderr, "anomalyctl capture: interrupted after %ld of %ld frames\n", c->saved,
                a->count);
        return AD_EXIT_FAILURE;
    }
    return 0;
}

int ad_cmd_capture(int argc, char **argv)
{
    capture_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    if (a.list) return list_formats(a.config_path);
    capture_run c;
    memset(&c, 0, sizeof c);
    c.tty = isatty(STDERR_FILENO);
    rc = open_camera(&a, &c);
    if (rc == 0) rc = grab_frames(&a, &c);
    if (rc == 0) rc = report(&a, &c);
    if (rc == 0 && a.empty) rc = write_reference(&a, &c);
    ad_image_free(&c.frame);
    ad_image_free(&c.roi);
    for (long i = 0; c.grids && i < a.count; i++) ad_image_free(&c.grids[i]);
    free(c.grids);
    free(c.sum);
    ad_source_destroy(c.src);
    free(c.cfg);
    return rc;
}

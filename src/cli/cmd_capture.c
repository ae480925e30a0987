/* anomalyctl capture: grab N frames from the configured camera (or replay
 * folder), apply the daemon's ROI and colour preprocessing, write PNGs. */
#include <signal.h>
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

int ad_cmd_capture(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"count", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},    {"every", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"list-formats", no_argument, NULL, 'l'},
        {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *out_dir = NULL;
    long count = -1, every_ms = 0;
    int quiet = 0, list = 0, opt;
    static const ad_cli cli = {"capture", usage};
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "c:n:o:e:qh", longopts)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'o': out_dir = optarg; break;
        case 'n':
            if (ad_parse_long(optarg, 1, 10000000, &count) < 0)
                return ad_cli_usage_error(&cli, "--count must be a whole number from 1 to "
                                          "10000000, got '%s'", optarg);
            break;
        case 'e':
            if (ad_parse_long(optarg, 0, 86400000, &every_ms) < 0)
                return ad_cli_usage_error(&cli, "--every must be milliseconds from 0 to "
                                          "86400000, got '%s'", optarg);
            break;
        case 'q': quiet = 1; break;
        case 'l': list = 1; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (list && config_path) return list_formats(config_path);
    if (!config_path || !out_dir || count < 0)
        return ad_cli_usage_error(&cli, "--config, --count and --out are required");

    char err[AD_ERRLEN], granted[256];
    ad_config *cfg = ad_xcalloc(1, sizeof *cfg);
    ad_source *src = NULL;
    ad_image frame = {0}, roi = {0};
    int rc = 1;
    if (ad_config_load(config_path, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        rc = 2;
        goto out;
    }
    if (ad_source_init(&src, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s: %s\n", config_path, err);
        rc = 2;
        goto out;
    }
    if (ad_mkdirs(out_dir, 0755, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        goto out;
    }
    if (ad_source_open(src, granted, sizeof granted, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl capture: %s\n", err);
        goto out;
    }
    long first = next_frame_index(out_dir);
    if (!quiet) {
        fprintf(stderr, "camera: %s\n", granted);
        if (first > 0)
            fprintf(stderr, "%s already holds frames up to frame_%06ld.png; appending\n",
                    out_dir, first - 1);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    capture_stop = 0;

    int tty = isatty(STDERR_FILENO);
    long saved = 0, timeouts = 0, skipped = 0, between = 0;
    uint64_t dropped_total = 0;
    double next_due = 0;
    char last_problem[AD_ERRLEN] = "";
    double t_start = ad_now_sec();
    while (saved < count && !capture_stop) {
        uint64_t seq = 0, dropped = 0;
        int g = ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err);
        dropped_total += dropped;
        if (g == AD_CAPTURE_TIMEOUT || g == AD_CAPTURE_AGAIN) {
            if (g == AD_CAPTURE_TIMEOUT && ++timeouts >= MAX_CONSECUTIVE_TIMEOUTS) {
                fprintf(stderr, "%sanomalyctl capture: %s (%d times in a row); giving up\n",
                        tty ? "\n" : "", err, MAX_CONSECUTIVE_TIMEOUTS);
                goto out;
            }
            skipped += g == AD_CAPTURE_AGAIN;
            if (strcmp(err, last_problem)) { /* say each distinct problem once */
                fprintf(stderr, "%swarning: %s\n", tty ? "\n" : "", err);
                snprintf(last_problem, sizeof last_problem, "%s", err);
            }
            continue;
        }
        if (g == AD_CAPTURE_END) {
            fprintf(stderr, "%sanomalyctl capture: the replay folder ran out after %ld of %ld "
                    "frames (set camera.replay_loop: true to loop)\n", tty ? "\n" : "", saved,
                    count);
            goto out;
        }
        if (g != AD_CAPTURE_OK) {
            fprintf(stderr, "%sanomalyctl capture: %s\n", tty ? "\n" : "", err);
            goto out;
        }
        timeouts = 0;
        double now = ad_now_sec();
        if (every_ms > 0 && now < next_due) { /* keep the camera drained */
            between++;
            continue;
        }
        next_due = (next_due > 0 && now - next_due < every_ms / 1000.0 ? next_due : now) +
                   every_ms / 1000.0;
        ad_image_free(&roi);
        if (ad_preprocess_roi(cfg, &frame, &roi, err, sizeof err) < 0) {
            fprintf(stderr, "%sanomalyctl capture: %s: %s\n", tty ? "\n" : "", config_path, err);
            rc = 2; /* the ROI does not fit the frames the camera gives: a config error */
            goto out;
        }
        char path[AD_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/frame_%06ld.png", out_dir, first + saved);
        if (ad_png_write(path, &roi, err, sizeof err) < 0) {
            fprintf(stderr, "%sanomalyctl capture: %s\n", tty ? "\n" : "", err);
            goto out;
        }
        saved++;
        if (!quiet && tty)
            fprintf(stderr, "\rcaptured %ld/%ld (%dx%d %s), %llu dropped", saved, count, roi.w,
                    roi.h, roi.c == 1 ? "gray" : "RGB", (unsigned long long)dropped_total);
        else if (!quiet && (saved == count || saved % 100 == 0))
            fprintf(stderr, "captured %ld/%ld\n", saved, count);
    }
    if (!quiet) {
        double secs = ad_now_sec() - t_start;
        fprintf(stderr, "%s%ld frames written to %s (frame_%06ld.png .. frame_%06ld.png) in "
                "%.1f s; %ld passed over (--every), %llu dropped, %ld bad\n",
                tty ? "\n" : "", saved, out_dir, first, first + (saved ? saved - 1 : 0), secs,
                between, (unsigned long long)dropped_total, skipped);
    }
    if (capture_stop && saved < count) {
        fprintf(stderr, "anomalyctl capture: interrupted after %ld of %ld frames\n", saved, count);
        goto out;
    }
    rc = 0;
out:
    ad_image_free(&frame);
    ad_image_free(&roi);
    ad_source_destroy(src);
    free(cfg);
    return rc;
}

/* vm_capture_probe: the capture module's two loops (reopen with backoff,
 * grab newest frames) run against a real V4L2 device for a while, printing
 * what happened in lines the VM scenarios check:
 *
 *   granted: 640x480 GREY 25.00 fps, 4 buffers
 *   event: no device: camera /dev/video0 stopped delivering frames ...
 *   summary: frames=.. dropped=.. bad=.. timeouts=.. again=.. opens=.. failed_opens=..
 *            width=.. height=.. channels=.. min=.. max=.. fps=..
 *
 * Each distinct event is printed once. SIGTERM/SIGINT end it early (exit 0).
 * Exit 1 if an open failed with AD_CAPTURE_ERROR (not worth retrying). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/capture.h"
#include "anomalyd/util.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int stopped(void *ctx)
{
    (void)ctx;
    return stop_flag;
}

static char last_event[AD_ERRLEN + 64];

static void event(const char *kind, const char *msg)
{
    char line[AD_ERRLEN + 32];
    snprintf(line, sizeof line, "%s: %s", kind, msg);
    if (!strcmp(line, last_event)) return;
    snprintf(last_event, sizeof last_event, "%s", line);
    printf("event: %s\n", line);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    ad_capture_options o;
    memset(&o, 0, sizeof o);
    o.source = AD_SOURCE_V4L2;
    snprintf(o.device, sizeof o.device, "/dev/video0");
    o.width = 640;
    o.height = 480;
    o.pixel_format = AD_PIXFMT_AUTO;
    o.channels = 1;
    o.fps = 25;
    o.buffers = 4;
    o.timeout_ms = 2000;
    double seconds = 3, backoff_s = 0.25;
    static const struct option longopts[] = {
        {"device", required_argument, NULL, 'd'}, {"width", required_argument, NULL, 'W'},
        {"height", required_argument, NULL, 'H'}, {"format", required_argument, NULL, 'f'},
        {"color", required_argument, NULL, 'c'},  {"fps", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'}, {"backoff", required_argument, NULL, 'b'},
        {"buffers", required_argument, NULL, 'n'}, {"timeout-ms", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': snprintf(o.device, sizeof o.device, "%s", optarg); break;
        case 'W': o.width = atoi(optarg); break;
        case 'H': o.height = atoi(optarg); break;
        case 'f':
            o.pixel_format = !strcmp(optarg, "GREY")    ? AD_PIXFMT_GREY
                             : !strcmp(optarg, "RGB24") ? AD_PIXFMT_RGB24
                                                        : AD_PIXFMT_AUTO;
            break;
        case 'c': o.channels = !strcmp(optarg, "rgb") ? 3 : 1; break;
        case 'r': o.fps = atof(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'b': backoff_s = atof(optarg); break;
        case 'n': o.buffers = atoi(optarg); break;
        case 't': o.timeout_ms = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: vm_capture_probe [--device D] [--width W] [--height H] "
                            "[--format auto|GREY|RGB24] [--color gray|rgb] [--fps F] "
                            "[--seconds S] [--backoff S] [--buffers N] [--timeout-ms MS]\n");
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    ad_source *src = NULL;
    char err[AD_ERRLEN], granted[256];
    if (ad_source_init_options(&src, &o, err, sizeof err) < 0) {
        printf("error: %s\n", err);
        return 2;
    }
    ad_backoff b;
    ad_backoff_init(&b, backoff_s, 4 * backoff_s); /* short: the scenarios are timed */
    ad_image frame = {0};
    unsigned long frames = 0, timeouts = 0, again = 0, opens = 0, failed_opens = 0;
    unsigned long long dropped = 0;
    int minv = 255, maxv = 0, rc = 0;
    double end = ad_now_sec() + seconds, t_first = 0, t_last = 0;
    unsigned long frames_at_first = 0;
    while (!stop_flag && ad_now_sec() < end) {
        int orc = ad_source_open(src, granted, sizeof granted, err, sizeof err);
        if (orc == 0) {
            opens++;
            ad_backoff_reset(&b);
            printf("granted: %s\n", granted);
            while (!stop_flag && ad_now_sec() < end) {
                uint64_t seq = 0, d = 0;
                int g = ad_source_grab(src, &frame, &seq, &d, err, sizeof err);
                dropped += d;
                if (g == AD_CAPTURE_OK) {
                    if (frames == 0) {
                        t_first = ad_now_sec();
                        frames_at_first = 1;
                    }
                    t_last = ad_now_sec();
                    frames++;
                    for (size_t i = 0; i < (size_t)frame.w * frame.h * frame.c; i += 97) {
                        if (frame.px[i] < minv) minv = frame.px[i];
                        if (frame.px[i] > maxv) maxv = frame.px[i];
                    }
                    continue;
                }
                event(ad_capture_status_name(g), err);
                if (g == AD_CAPTURE_AGAIN) again++;
                else if (g == AD_CAPTURE_TIMEOUT) timeouts++;
                else break; /* NODEV, ERROR: reopen */
            }
            ad_source_close(src);
        } else {
            failed_opens++;
            event(orc == AD_CAPTURE_NODEV ? "open failed, retrying" : "open refused", err);
            if (orc == AD_CAPTURE_ERROR) {
                rc = 1;
                break;
            }
        }
        if (stop_flag || ad_now_sec() >= end) break;
        if (ad_backoff_wait(&b, stopped, NULL)) break;
    }
    ad_source_info info;
    ad_source_get_info(src, &info);
    double fps = frames > frames_at_first && t_last > t_first
                     ? (double)(frames - frames_at_first) / (t_last - t_first) : 0;
    printf("summary: frames=%lu dropped=%llu bad=%llu timeouts=%lu again=%lu opens=%lu "
           "failed_opens=%lu width=%d height=%d channels=%d min=%d max=%d fps=%.1f\n",
           frames, dropped, (unsigned long long)info.bad_buffers, timeouts, again, opens,
           failed_opens, frame.w, frame.h, frame.c, minv, maxv, fps);
    ad_image_free(&frame);
    ad_source_destroy(src);
    return rc;
}

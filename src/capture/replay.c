/* Replay source: the PNGs of a folder in name order at a fixed rate, on an
 * absolute schedule (frame k at t0 + k / fps) so the rate does not drift. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anomalyd/capture.h"
#include "anomalyd/util.h"
#include "capture_internal.h"

static void free_files(ad_replay_state *r)
{
    for (size_t i = 0; i < r->nfiles; i++) free(r->files[i]);
    free(r->files);
    r->files = NULL;
    r->nfiles = 0;
}

int ad_replay_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen)
{
    ad_replay_state *r = &src->replay;
    const char *dir = src->opt.replay_dir;
    char **names = NULL, why[AD_ERRLEN];
    int n = 0;
    if (ad_png_list(dir, &names, &n, why, sizeof why) != 0)
        return ad_err(err, errlen, "replay folder %s", why);
    r->files = ad_xcalloc((size_t)n, sizeof *r->files);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        r->files[i] = ad_xmalloc(len);
        snprintf(r->files[i], len, "%s/%s", dir, names[i]);
    }
    r->nfiles = (size_t)n;
    ad_png_list_free(names, n);
    r->next = 0;
    r->emitted = 0;
    r->t0 = ad_now_sec();
    src->info.fps = src->opt.fps;
    src->info.buffers = 0;
    src->info.converted = false;
    snprintf(src->info.fourcc, sizeof src->info.fourcc, "PNG");
    snprintf(src->info.native_fourcc, sizeof src->info.native_fourcc, "PNG");
    if (granted && granted_len)
        snprintf(granted, granted_len, "replay of %zu PNG frames from %s at %.2f fps%s, %s",
                 r->nfiles, dir, src->opt.fps, src->opt.replay_loop ? ", looping" : "",
                 src->opt.channels == 1 ? "gray" : "RGB");
    return 0;
}

/* Sleeps until the absolute monotonic time `when` (seconds). */
static void sleep_until(double when)
{
    struct timespec ts;
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

int ad_replay_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                   char *err, size_t errlen)
{
    ad_replay_state *r = &src->replay;
    *dropped = 0;
    if (r->next >= r->nfiles) {
        if (!src->opt.replay_loop) {
            ad_err(err, errlen, "replay of %s finished after %zu frames", src->opt.replay_dir,
                   r->nfiles);
            return AD_CAPTURE_END;
        }
        r->next = 0;
    }
    double period = 1.0 / src->opt.fps;
    double due = r->t0 + (double)r->emitted * period;
    double now = ad_now_sec();
    if (now < due) {
        sleep_until(due);
    } else if (now - due > 1.0) {
        /* The consumer stalled for over a second: restart the schedule here
         * rather than firing a burst of overdue frames. */
        r->t0 = now;
        r->emitted = 0;
    }
    const char *path = r->files[r->next++];
    r->emitted++;
    *seq = src->seq++;
    ad_image im = {0};
    if (ad_png_read(path, src->opt.channels, &im, err, errlen) < 0) {
        /* The folder (or the files listed at open) vanished: that is the
         * camera being unplugged, reopen with backoff. A file that is only
         * unreadable (corrupt, half-copied) is one bad frame. */
        struct stat st;
        int gone = stat(src->opt.replay_dir, &st) != 0 ? errno : 0;
        if (gone || !S_ISDIR(st.st_mode)) {
            ad_err(err, errlen, "replay folder %s is gone: %s", src->opt.replay_dir,
                   gone ? strerror(gone) : "no longer a folder");
            return AD_CAPTURE_NODEV;
        }
        if (stat(path, &st) != 0) {
            ad_err(err, errlen, "replay file %s disappeared from %s; re-reading the folder", path,
                   src->opt.replay_dir);
            return AD_CAPTURE_NODEV;
        }
        return AD_CAPTURE_AGAIN;
    }
    if (frame->px && frame->w == im.w && frame->h == im.h && frame->c == im.c) {
        memcpy(frame->px, im.px, (size_t)im.w * im.h * im.c);
        ad_image_free(&im);
    } else {
        ad_image_free(frame);
        *frame = im;
    }
    src->info.width = frame->w;
    src->info.height = frame->h;
    return AD_CAPTURE_OK;
}

void ad_replay_close(ad_source *src)
{
    free_files(&src->replay);
    src->replay.next = 0;
    src->replay.emitted = 0;
}

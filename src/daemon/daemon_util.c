/* Helpers every daemon thread uses: "log each distinct error once",
 * truncating format, thread entry, timed condition wait, the camera.controls
 * check. See daemon_internal.h. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon_internal.h"

void ad_fmt_trunc(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

void ad_thread_enter(const char *name)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_setname_np(pthread_self(), name);
}

void ad_cond_wait_s(pthread_cond_t *c, pthread_mutex_t *m, double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)(s * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(c, m, &ts);
}

const char *ad_daemon_camera_name(const ad_config *cfg)
{
    return cfg->camera.source == AD_SOURCE_REPLAY ? cfg->camera.replay_dir : cfg->camera.device;
}

int ad_daemon_check_controls(const ad_config *cfg, bool to_stderr, bool *checked)
{
    char problems[8192], err[AD_ERRLEN];
    *checked = false;
    int rc = ad_camera_controls_check(cfg, problems, sizeof problems, err, sizeof err);
    if (rc < 0) {
        if (to_stderr)
            fprintf(stderr, "anomalyd: warning: camera.controls not checked: %s; they are checked when the "
                    "camera opens\n", err);
        else
            ad_log(AD_LOG_WARN, "camera.controls not checked: %s; they are checked when the camera opens", err);
        return 0;
    }
    *checked = cfg->camera.source == AD_SOURCE_V4L2 && cfg->camera.ncontrols > 0;
    for (char *line = problems, *next; rc > 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (to_stderr) fprintf(stderr, "anomalyd: %s\n", line);
        else ad_log(AD_LOG_ERR, "%s", line);
    }
    return rc > 0 ? 2 : 0;
}

int ad_latch_log_keyed(ad_latch *l, const char *key, enum ad_log_level level, const char *msg)
{
    if (l->last[0] && strcmp(l->key, key) == 0) {
        l->repeats++;
        return 0;
    }
    ad_fmt_trunc(l->last, sizeof l->last, "%s", msg);
    ad_fmt_trunc(l->key, sizeof l->key, "%s", key);
    l->repeats = 0;
    ad_log(level, "%s", msg);
    return 1;
}

int ad_latch_log(ad_latch *l, enum ad_log_level level, const char *msg)
{
    return ad_latch_log_keyed(l, msg, level, msg);
}

const char *ad_error_reason(const char *err)
{
    const char *p = strrchr(err, ':');
    return p && p[1] == ' ' ? p + 2 : err;
}

void ad_latch_clear(ad_latch *l, const char *recovered_what)
{
    if (!l->last[0]) return;
    ad_log(AD_LOG_INFO, "%s (after %ld repeats of: %s)", recovered_what, l->repeats, l->last);
    l->last[0] = 0;
    l->repeats = 0;
}

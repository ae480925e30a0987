/* See daemon_harness.h. */
#include "daemon_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anomalyd/util.h"

double now_s(void) { return ad_now_sec(); }

void sleep_s(double s) { usleep((useconds_t)(s * 1e6)); }

fx *fx_new(const char *tag)
{
    fx *f = ad_xcalloc(1, sizeof *f);
    f->dir = ts_tmpdir(tag);
    snprintf(f->config, sizeof f->config, "%s/dtest.yaml", f->dir);
    snprintf(f->db, sizeof f->db, "%s/state/dtest.db", f->dir);
    snprintf(f->images, sizeof f->images, "%s/state/images", f->dir);
    snprintf(f->log, sizeof f->log, "%s/anomalyd.log", f->dir);
    snprintf(f->sock, sizeof f->sock, "%s/notify.sock", f->dir);
    snprintf(f->replay, sizeof f->replay, "%s/replay/frames", FIXTURES_DIR);
    snprintf(f->model, sizeof f->model, "%s/model/parts.safetensors", FIXTURES_DIR);
    f->sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(f->sock_fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(f->sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
    assert_int_equal(bind(f->sock_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    f->notes = ad_xstrdup("");
    f->pid = -1;
    return f;
}

void fx_free(fx *f)
{
    if (!f) return;
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    if (getenv("DH_SHOW_LOG")) { /* debugging: what the daemon said */
        char *log = read_log(f);
        fprintf(stderr, "---- %s ----\n%s----\n", f->log, log);
        free(log);
    }
    close(f->sock_fd);
    ts_rmtree(f->dir);
    free(f->dir);
    free(f->notes);
    free(f);
}

void write_config(fx *f, double threshold, bool loop, double fps)
{
    char text[8192];
    snprintf(text, sizeof text,
             "line:\n  name: dtest\n"
             "camera:\n  source: replay\n  replay_dir: %s\n"
             "  replay_loop: %s\n  width: 80\n  height: 80\n  fps: %g\n"
             "  roi: {x: 8, y: 8, width: 64, height: 64}\n"
             "model:\n  path: %s\n  color: gray\n"
             "  input_width: 64\n  input_height: 64\n"
             "detector:\n  noise_level: 0.1\n  steps: 1\n  draws: 1\n  sigma: 1\n  map: head\n"
             "  threads: 1\n"
             "threshold: %.9g\n"
             "reject_log:\n  database: %s\n  image_dir: %s\n  retention_days: 30\n"
             "  max_megabytes: 100\n",
             f->replay, loop ? "true" : "false", fps, f->model, threshold, f->db, f->images);
    write_config_text(f, text);
}

void write_config_text(fx *f, const char *text)
{
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.new", f->config);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(rename(tmp, f->config), 0);
}

void start_daemon_env(fx *f, const char *const *args, const char *const *env,
                      unsigned long long as_limit_bytes)
{
    char *bin = ts_bin("anomalyd");
    const char *argv[16];
    int n = 0;
    argv[n++] = "anomalyd";
    argv[n++] = "--config";
    argv[n++] = f->config;
    for (int i = 0; args && args[i] && n < 15; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) _exit(127);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        setenv("NOTIFY_SOCKET", f->sock, 1);
        setenv("WATCHDOG_USEC", "2000000", 1);
        unsetenv("WATCHDOG_PID");
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
        if (as_limit_bytes > 0) {
            struct rlimit rl = {(rlim_t)as_limit_bytes, (rlim_t)as_limit_bytes};
            if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(126);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    free(bin);
    f->pid = pid;
}

void start_daemon(fx *f, const char *extra)
{
    const char *args[] = {extra, NULL};
    start_daemon_env(f, args, NULL, 0);
}

int wait_exit(fx *f)
{
    double until = now_s() + DH_WAIT_S;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(f->pid, &status, WNOHANG);
        if (r == f->pid) break;
        drain_notify(f); /* keep the socket's queue from filling up */
        if (now_s() > until) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, NULL, 0);
            f->pid = -1;
            fail_msg("anomalyd did not exit within %.0f s", DH_WAIT_S);
        }
        sleep_s(0.02);
    }
    f->pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void drain_notify(fx *f)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(f->sock_fd, buf, sizeof buf - 1, 0);
        if (n <= 0) break;
        buf[n] = 0;
        size_t add = (size_t)n + 1;
        f->notes = ad_xrealloc(f->notes, f->notes_len + add + 1);
        memcpy(f->notes + f->notes_len, buf, (size_t)n);
        f->notes[f->notes_len + n] = '|';
        f->notes_len += add;
        f->notes[f->notes_len] = 0;
    }
}

char *read_log(fx *f)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    if (ad_read_file(f->log, 1 << 26, &data, &len, err, sizeof err) != 0) return ad_xstrdup("");
    return (char *)data;
}

int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

int log_count(fx *f, const char *needle)
{
    char *log = read_log(f);
    int n = count_in(log, needle);
    free(log);
    return n;
}

void wait_log(fx *f, const char *needle, int times)
{
    double until = now_s() + DH_WAIT_S;
    for (;;) {
        if (log_count(f, needle) >= times) return;
        if (now_s() > until) {
            char *l = read_log(f);
            fprintf(stderr, "---- anomalyd log ----\n%s\n----\n", l);
            free(l);
            fail_msg("log never showed '%s' %d times", needle, times);
        }
        drain_notify(f);
        sleep_s(0.05);
    }
}

void wait_notify(fx *f, const char *needle)
{
    double until = now_s() + DH_WAIT_S;
    for (;;) {
        drain_notify(f);
        if (strstr(f->notes, needle)) return;
        if (now_s() > until) fail_msg("no '%s' on the notify socket; got: %.500s", needle, f->notes);
        sleep_s(0.05);
    }
}

long status_captured(fx *f)
{
    drain_notify(f);
    const char *p = f->notes, *last = NULL;
    while ((p = strstr(p, "captured ")) != NULL) last = p++;
    return last ? strtol(last + 9, NULL, 10) : -1;
}

sqlite3 *open_db(fx *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

long long q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

long long db_rows(fx *f)
{
    sqlite3 *db = open_db(f);
    long long n = q_int(db, "SELECT COUNT(*) FROM rejects");
    sqlite3_close(db);
    return n;
}

bool file_exists(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
}

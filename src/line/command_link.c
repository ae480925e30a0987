/* The command output: outputs.command.on_reject run once per recorded
 * reject, from a thread of its own with a bounded queue, so a slow, hanging
 * or failing program never holds up a daemon thread. See line.h.
 *
 * The program is started with posix_spawnp (argv as configured, never a
 * shell) in a process group of its own, stdin from /dev/null, stdout and
 * stderr shared with the daemon (the journal), default signal handling and
 * nothing blocked, and the verdict in ANOMALYD_* environment variables on
 * top of the daemon's environment. A run past timeout_ms gets SIGTERM, one
 * second later SIGKILL, both to the whole group. Each distinct problem is
 * logged once; the repeats are counted and told when a run works again. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/util.h"
#include "line/line.h"

extern char **environ;

#define COMMAND_KILL_GRACE_S 1.0 /* SIGTERM, then this long, then SIGKILL */
#define COMMAND_CLOSE_S 1.0      /* close: what is queued may still run this long */
#define COMMAND_ENV_VARS 16
#define COMMAND_MAX_ARGS 64      /* the key table's limit on outputs.command.on_reject */

struct ad_command_link {
    char argv_bytes[AD_COMMAND_BYTES];
    int argc;
    double timeout_s;
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ad_verdict *ring;           /* queued rejects */
    int capacity, head, count;
    bool stopping;
    double stop_deadline;       /* ad_now_sec() when close gives up on the queue */
    long sent, dropped;         /* under lock */
    bool last_ok;               /* under lock */
    /* the command thread's own */
    char problem[AD_ERRLEN];    /* the problem logged last; "" = none */
    long repeats;               /* runs since with the same problem */
};

bool ad_command_link_configured(const ad_config *cfg)
{
    return cfg->outputs.command.argc > 0;
}

bool ad_command_link_same_settings(const ad_config *a, const ad_config *b)
{
    return a->outputs.command.argc == b->outputs.command.argc &&
           memcmp(a->outputs.command.on_reject, b->outputs.command.on_reject, AD_COMMAND_BYTES) == 0 &&
           a->outputs.command.timeout_ms == b->outputs.command.timeout_ms &&
           a->outputs.command.queue == b->outputs.command.queue;
}

/* argv pointers into the NUL-separated bytes (argc + 1 entries). */
static void split_argv(char *bytes, int argc, char **argv)
{
    for (int i = 0; i < argc; i++, bytes += strlen(bytes) + 1) argv[i] = bytes;
    argv[argc] = NULL;
}

/* The program as posix_spawnp will find it: a path with a '/' as it is,
 * else the first executable of that name on $PATH. */
static bool program_found(const char *prog)
{
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    char full[AD_PATH_MAX + 256];
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(full, sizeof full, "%.*s/%s", (int)len, len ? p : ".", prog);
        if (access(full, X_OK) == 0) return true;
        p += len + (p[len] == ':');
    }
    return false;
}

int ad_command_link_probe(const ad_config *cfg, char *err, size_t errlen)
{
    const char *prog = cfg->outputs.command.on_reject;
    if (program_found(prog)) return 0;
    return ad_err(err, errlen, "outputs.command.on_reject: %s is not an executable file%s", prog,
                  strchr(prog, '/') ? "" : " on $PATH");
}

/* The outcome of one run: counted, and a problem logged when it is not the
 * one logged last (its text up to " (part", which differs every time),
 * else counted as a repeat; a run that works again says so. */
static void tell_outcome(ad_command_link *l, enum ad_log_level level, const char *problem)
{
    pthread_mutex_lock(&l->lock);
    l->sent++;
    l->last_ok = problem == NULL;
    pthread_mutex_unlock(&l->lock);
    if (!problem) {
        if (l->problem[0])
            ad_log(AD_LOG_INFO, "outputs.command: %s runs fine again (after %ld more runs with: %s)",
                   l->argv_bytes, l->repeats, l->problem);
        l->problem[0] = '\0';
        l->repeats = 0;
        return;
    }
    size_t key = strcspn(problem, "(");
    while (key > 0 && problem[key - 1] == ' ') key--;
    if (strlen(l->problem) == key && strncmp(l->problem, problem, key) == 0) {
        l->repeats++;
        return;
    }
    ad_log(level, "outputs.command: %s", problem);
    snprintf(l->problem, sizeof l->problem, "%.*s", (int)key, problem);
    l->repeats = 0;
}

/* The verdict as NAME=value strings in vars (caller frees each). */
static int verdict_env(const ad_verdict *v, char **vars)
{
    int n = 0;
#define PUT(...)                                                          \
    do {                                                                  \
        AD_ASSERT(asprintf(&vars[n], __VA_ARGS__) >= 0 && n < COMMAND_ENV_VARS); \
        n++;                                                              \
    } while (0)
    PUT("ANOMALYD_VERDICT=%s", v->reject ? "reject" : "good");
    PUT("ANOMALYD_LINE=%s", v->line);
    PUT("ANOMALYD_PART=%ld", v->part);
    PUT("ANOMALYD_PART_ID=%s", v->part_id);
    PUT("ANOMALYD_TRIGGER=%s", v->trigger);
    PUT("ANOMALYD_TS=%s", v->ts);
    PUT("ANOMALYD_SCORE=%.6f", v->score);
    PUT("ANOMALYD_THRESHOLD=%.6f", v->threshold);
    PUT("ANOMALYD_BOX=%d,%d,%d,%d", v->box_x, v->box_y, v->box_w, v->box_h);
    PUT("ANOMALYD_AREA=%ld", v->area);
    PUT("ANOMALYD_IMAGE=%s", v->image_path);
    PUT("ANOMALYD_HEATMAP=%s", v->heatmap_path);
    PUT("ANOMALYD_MODEL_SHA256=%s", v->model_sha256);
#undef PUT
    return n;
}

/* The daemon's environment without ANOMALYD_* (ours replace them), then
 * vars; a malloc'd array of borrowed pointers. */
static char **build_env(char **vars, int nvars)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **env = ad_xcalloc(n + (size_t)nvars + 1, sizeof *env);
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "ANOMALYD_", 9) != 0) env[k++] = *e;
    for (int i = 0; i < nvars; i++) env[k++] = vars[i];
    env[k] = NULL;
    return env;
}

static int spawn(ad_command_link *l, const ad_verdict *v, pid_t *pid, char *err, size_t errlen)
{
    char *argv[COMMAND_MAX_ARGS + 1];
    char *vars[COMMAND_ENV_VARS];
    split_argv(l->argv_bytes, l->argc, argv);
    int nvars = verdict_env(v, vars);
    char **env = build_env(vars, nvars);

    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&fa);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    for (int i = 0; i < nvars; i++) free(vars[i]);
    if (rc != 0) return ad_err(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static bool past_close_deadline(ad_command_link *l)
{
    pthread_mutex_lock(&l->lock);
    bool past = l->stopping && ad_now_sec() > l->stop_deadline;
    pthread_mutex_unlock(&l->lock);
    return past;
}

/* Waits for pid; past the timeout (or the close deadline) the whole group
 * gets SIGTERM, then SIGKILL. Returns the wait status; *killed tells why. */
static int reap(ad_command_link *l, pid_t pid, bool *timed_out, bool *at_close)
{
    double start = ad_now_sec(), term_at = 0;
    int status = 0;
    *timed_out = *at_close = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) break;
        double now = ad_now_sec();
        if (!term_at) {
            *timed_out = now - start > l->timeout_s;
            *at_close = !*timed_out && past_close_deadline(l);
            if (*timed_out || *at_close) {
                kill(-pid, SIGTERM);
                term_at = now;
            }
        } else if (now - term_at > COMMAND_KILL_GRACE_S) {
            kill(-pid, SIGKILL);
            term_at = now + 3600; /* once */
        }
        sleep_s(0.005);
    }
    /* what it left behind in its group goes too */
    if (term_at) kill(-pid, SIGKILL);
    return status;
}

static void run_one(ad_command_link *l, const ad_verdict *v)
{
    char err[AD_ERRLEN], what[AD_ERRLEN + 128];
    pid_t pid = 0;
    if (spawn(l, v, &pid, err, sizeof err) != 0) {
        snprintf(what, sizeof what, "%s (part %ld)", err, v->part);
        tell_outcome(l, AD_LOG_ERR, what);
        return;
    }
    bool timed_out, at_close;
    int status = reap(l, pid, &timed_out, &at_close);
    if (timed_out) {
        snprintf(what, sizeof what, "%.300s ran longer than outputs.command.timeout_ms %.0f ms (part %ld): "
                 "stopped its process group (SIGTERM, then SIGKILL)", l->argv_bytes, l->timeout_s * 1000,
                 v->part);
    } else if (at_close) {
        snprintf(what, sizeof what, "%.300s still ran at shutdown (part %ld): stopped its process group",
                 l->argv_bytes, v->part);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(what, sizeof what, "%.300s exited with status %d (part %ld)", l->argv_bytes, WEXITSTATUS(status),
                 v->part);
    } else if (WIFSIGNALED(status)) {
        snprintf(what, sizeof what, "%.300s was killed by signal %d (part %ld)", l->argv_bytes, WTERMSIG(status),
                 v->part);
    } else {
        tell_outcome(l, AD_LOG_INFO, NULL);
        return;
    }
    tell_outcome(l, AD_LOG_WARN, what);
}

static void *command_thread(void *arg)
{
    ad_command_link *l = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_setname_np(pthread_self(), "ad-command");
    ad_verdict v;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (l->count == 0 && !l->stopping) pthread_cond_wait(&l->wake, &l->lock);
        if (l->count == 0) break;
        if (l->stopping && ad_now_sec() > l->stop_deadline) {
            ad_log(AD_LOG_WARN, "outputs.command: %d rejects' runs not started at shutdown (each reject "
                   "is in the reject log)", l->count);
            l->dropped += l->count;
            l->count = 0;
            break;
        }
        v = l->ring[l->head];
        l->head = (l->head + 1) % l->capacity;
        l->count--;
        pthread_mutex_unlock(&l->lock);
        run_one(l, &v);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int ad_command_link_open(ad_command_link **out, const ad_config *cfg, ad_trigger_queue *triggers, char *err,
                         size_t errlen)
{
    (void)triggers;
    *out = NULL;
    if (cfg->outputs.command.argc < 1 || cfg->outputs.command.argc > COMMAND_MAX_ARGS)
        return ad_err(err, errlen, "outputs.command.on_reject has %d entries, expected the program and at most "
                      "%d arguments", cfg->outputs.command.argc, COMMAND_MAX_ARGS - 1);
    ad_command_link *l = ad_xcalloc(1, sizeof *l);
    memcpy(l->argv_bytes, cfg->outputs.command.on_reject, sizeof l->argv_bytes);
    l->argc = cfg->outputs.command.argc;
    l->timeout_s = cfg->outputs.command.timeout_ms / 1000.0;
    l->capacity = cfg->outputs.command.queue;
    l->ring = ad_xcalloc((size_t)l->capacity, sizeof *l->ring);
    l->last_ok = true;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    int rc = pthread_create(&l->tid, NULL, command_thread, l);
    if (rc != 0) {
        pthread_cond_destroy(&l->wake);
        pthread_mutex_destroy(&l->lock);
        free(l->ring);
        free(l);
        return ad_err(err, errlen, "cannot start the command thread: %s", strerror(rc));
    }
    *out = l;
    return 0;
}

void ad_command_link_recorded(ad_command_link *l, const ad_verdict *v)
{
    if (!v->reject) return;
    pthread_mutex_lock(&l->lock);
    if (l->count == l->capacity || l->stopping) {
        if (l->dropped++ == 0 || l->dropped % 100 == 0)
            ad_log(AD_LOG_WARN, "outputs.command: %d runs already wait, part %ld's run dropped (%ld dropped "
                   "so far; the reject is in the reject log)", l->count, v->part, l->dropped);
    } else {
        l->ring[(l->head + l->count) % l->capacity] = *v;
        l->count++;
        pthread_cond_signal(&l->wake);
    }
    pthread_mutex_unlock(&l->lock);
}

void ad_command_link_counts(ad_command_link *l, ad_link_counts *c)
{
    pthread_mutex_lock(&l->lock);
    c->sent = l->sent;
    c->queued = l->count;
    c->dropped = l->dropped;
    c->connected = l->last_ok;
    pthread_mutex_unlock(&l->lock);
}

void ad_command_link_close(ad_command_link *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    l->stop_deadline = ad_now_sec() + COMMAND_CLOSE_S;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->tid, NULL);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l->ring);
    free(l);
}

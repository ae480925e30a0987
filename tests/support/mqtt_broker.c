/* The tests' mosquitto broker and recording client; see mqtt_broker.h. */
#include "mqtt_broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#include "anomalyd/util.h"

#define BROKER_BIN "/usr/sbin/mosquitto"

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int mqb_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_answers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void print_log(const mqb_broker *b)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", b->log);
    if (system(cmd) != 0) fprintf(stderr, "(no broker log)\n");
}

/* Brokers running, so a test that fails half-way (cmocka jumps out of it)
 * leaves none behind: they are killed at exit, and with the test process
 * if it dies. */
#define MAX_BROKERS 64
static pid_t running[MAX_BROKERS];

static void kill_leftovers(void)
{
    for (int i = 0; i < MAX_BROKERS; i++)
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
}

static void track(pid_t pid, bool add)
{
    static bool registered;
    if (!registered) atexit(kill_leftovers), registered = true;
    for (int i = 0; i < MAX_BROKERS; i++)
        if (add ? running[i] == 0 : running[i] == pid) {
            running[i] = add ? pid : 0;
            return;
        }
}

static void launch(mqb_broker *b)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        closefrom(3); /* nothing of the test (an output pipe held open would stall ctest) */
        execl(BROKER_BIN, "mosquitto", "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    track(pid, true);
    double end = ad_now_sec() + MQB_WAIT_S;
    while (!port_answers(b->port)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            track(pid, false);
            b->pid = -1;
            print_log(b);
            fail_msg("%s exited before listening on port %d (status %d)", BROKER_BIN, b->port, status);
        }
        if (ad_now_sec() > end) {
            print_log(b);
            fail_msg("%s does not listen on port %d", BROKER_BIN, b->port);
        }
        nap(0.02);
    }
}

mqb_broker *mqb_start(const mqb_options *opt)
{
    mqb_options none = {0};
    if (!opt) opt = &none;
    mqb_broker *b = ad_xcalloc(1, sizeof *b);
    char *dir = ts_tmpdir("broker");
    snprintf(b->dir, sizeof b->dir, "%s", dir);
    free(dir);
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", b->dir);
    snprintf(b->log, sizeof b->log, "%s/mosquitto.log", b->dir);
    b->port = mqb_free_port();
    b->pid = -1;

    char auth[1400] = "allow_anonymous true\n", tls[4096] = "";
    if (opt->user) {
        char cmd[2048], *out = NULL;
        snprintf(cmd, sizeof cmd, "mosquitto_passwd -b -c '%s/passwd' '%s' '%s'", b->dir, opt->user,
                 opt->password);
        int rc = ts_run(cmd, &out);
        if (rc != 0) fail_msg("%s: %s", cmd, out ? out : "");
        free(out);
        snprintf(auth, sizeof auth, "allow_anonymous false\npassword_file %s/passwd\n", b->dir);
    }
    if (opt->cafile)
        snprintf(tls, sizeof tls, "cafile %s\ncertfile %s\nkeyfile %s\n", opt->cafile, opt->certfile,
                 opt->keyfile);
    char text[8192];
    /* as root it would switch to the mosquitto user, who cannot read a
     * test's private folder */
    snprintf(text, sizeof text,
             "listener %d 127.0.0.1\n%s%s"
             "persistence true\npersistence_location %s/\nautosave_interval 1\n"
             "log_dest stderr\nlog_type all\nconnection_messages true\n%s",
             b->port, auth, tls, b->dir, geteuid() == 0 ? "user root\n" : "");
    free(ts_write_text(b->dir, "mosquitto.conf", text));
    launch(b);
    return b;
}

void mqb_stop(mqb_broker *b, int sig)
{
    if (b->pid <= 0) return;
    kill(b->pid, sig);
    int status;
    while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR) {
    }
    track(b->pid, false);
    b->pid = -1;
}

void mqb_restart(mqb_broker *b)
{
    assert_true(b->pid <= 0);
    launch(b);
}

void mqb_free(mqb_broker *b)
{
    if (!b) return;
    mqb_stop(b, SIGTERM);
    if (getenv("MQB_SHOW_LOG")) print_log(b);
    ts_rmtree(b->dir);
    free(b);
}

/* ---- the recording client ---- */

struct mqb_client {
    struct mosquitto *m;
    char *filter;
    pthread_mutex_t lock;
    mqb_msg *msgs;
    size_t n, cap;
    bool subscribed;
    int acked[256];               /* mids of PUBACKs received, a ring */
    unsigned nacked;
};

static void c_on_connect(struct mosquitto *m, void *ud, int rc)
{
    mqb_client *c = ud;
    if (rc == 0) mosquitto_subscribe(m, NULL, c->filter, 1);
}

static void c_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    (void)m, (void)mid, (void)n, (void)granted;
    mqb_client *c = ud;
    pthread_mutex_lock(&c->lock);
    c->subscribed = true;
    pthread_mutex_unlock(&c->lock);
}

static void c_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    mqb_client *c = ud;
    pthread_mutex_lock(&c->lock);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->msgs = ad_xrealloc(c->msgs, c->cap * sizeof *c->msgs);
    }
    mqb_msg *r = &c->msgs[c->n++];
    r->topic = ad_xstrdup(msg->topic);
    r->len = msg->payloadlen;
    r->payload = ad_xmalloc((size_t)msg->payloadlen + 1);
    if (msg->payloadlen) memcpy(r->payload, msg->payload, (size_t)msg->payloadlen);
    r->payload[msg->payloadlen] = '\0';
    r->retain = msg->retain;
    pthread_mutex_unlock(&c->lock);
}

static void c_on_publish(struct mosquitto *m, void *ud, int mid)
{
    (void)m;
    mqb_client *c = ud;
    pthread_mutex_lock(&c->lock);
    c->acked[c->nacked++ % 256] = mid;
    pthread_mutex_unlock(&c->lock);
}

mqb_client *mqb_client_start_async(int port, const char *client_id, const char *filter)
{
    mosquitto_lib_init();
    mqb_client *c = ad_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->filter = ad_xstrdup(filter);
    c->m = mosquitto_new(client_id, client_id == NULL, c);
    assert_non_null(c->m);
    mosquitto_connect_callback_set(c->m, c_on_connect);
    mosquitto_subscribe_callback_set(c->m, c_on_subscribe);
    mosquitto_message_callback_set(c->m, c_on_message);
    mosquitto_publish_callback_set(c->m, c_on_publish);
    mosquitto_reconnect_delay_set(c->m, 1, 1, false);
    mosquitto_connect_async(c->m, "127.0.0.1", port, 30); /* a broker still down: the loop retries */
    assert_int_equal(mosquitto_loop_start(c->m), MOSQ_ERR_SUCCESS);
    return c;
}

mqb_client *mqb_client_start(int port, const char *client_id, const char *filter)
{
    mqb_client *c = mqb_client_start_async(port, client_id, filter);
    double end = ad_now_sec() + MQB_WAIT_S;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        bool ok = c->subscribed;
        pthread_mutex_unlock(&c->lock);
        if (ok) return c;
        if (ad_now_sec() > end) fail_msg("no SUBACK for %s from the broker on port %d", filter, port);
        nap(0.01);
    }
}

void mqb_client_free(mqb_client *c)
{
    if (!c) return;
    mosquitto_disconnect(c->m);
    mosquitto_loop_stop(c->m, false);
    mosquitto_destroy(c->m);
    mqb_msgs_free(c->msgs, c->n);
    free(c->filter);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void mqb_publish(mqb_client *c, const char *topic, const void *payload, int len, bool retain)
{
    int mid = 0;
    assert_int_equal(mosquitto_publish(c->m, &mid, topic, len, payload, 1, retain), MOSQ_ERR_SUCCESS);
    double end = ad_now_sec() + MQB_WAIT_S;
    for (;;) {
        bool done = false;
        pthread_mutex_lock(&c->lock);
        for (unsigned i = 0; i < 256 && i < c->nacked; i++)
            if (c->acked[i] == mid) done = true;
        pthread_mutex_unlock(&c->lock);
        if (done) return;
        if (ad_now_sec() > end) fail_msg("no PUBACK for a message on %s", topic);
        nap(0.005);
    }
}

mqb_msg *mqb_messages(mqb_client *c, const char *topic, size_t *n)
{
    pthread_mutex_lock(&c->lock);
    mqb_msg *out = ad_xcalloc(c->n + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->msgs[i].topic, topic) != 0) continue;
        out[k] = c->msgs[i];
        out[k].topic = ad_xstrdup(c->msgs[i].topic);
        out[k].payload = ad_xmalloc((size_t)c->msgs[i].len + 1);
        memcpy(out[k].payload, c->msgs[i].payload, (size_t)c->msgs[i].len + 1);
        k++;
    }
    pthread_mutex_unlock(&c->lock);
    *n = k;
    return out;
}

void mqb_msgs_free(mqb_msg *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].topic);
        free(m[i].payload);
    }
    free(m);
}

size_t mqb_count(mqb_client *c, const char *topic)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) n += strcmp(c->msgs[i].topic, topic) == 0;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void mqb_wait_count(mqb_client *c, const char *topic, size_t n)
{
    double end = ad_now_sec() + MQB_WAIT_S;
    size_t got;
    while ((got = mqb_count(c, topic)) < n) {
        if (ad_now_sec() > end) fail_msg("%zu messages on %s, expected at least %zu", got, topic, n);
        nap(0.01);
    }
}

void mqb_wait_last(mqb_client *c, const char *topic, const char *payload)
{
    double end = ad_now_sec() + MQB_WAIT_S;
    for (;;) {
        bool match = false;
        pthread_mutex_lock(&c->lock);
        for (size_t i = c->n; i-- > 0;)
            if (strcmp(c->msgs[i].topic, topic) == 0) {
                match = strcmp(c->msgs[i].payload, payload) == 0;
                break;
            }
        pthread_mutex_unlock(&c->lock);
        if (match) return;
        if (ad_now_sec() > end) fail_msg("the last message on %s is not '%s'", topic, payload);
        nap(0.01);
    }
}

char *mqb_retained(int port, const char *topic)
{
    mqb_client *c = mqb_client_start(port, NULL, topic);
    double end = ad_now_sec() + 1.0;
    while (mqb_count(c, topic) == 0 && ad_now_sec() < end) nap(0.01);
    size_t n = 0;
    mqb_msg *m = mqb_messages(c, topic, &n);
    char *out = ad_xstrdup(n > 0 && m[0].retain ? m[0].payload : "");
    mqb_msgs_free(m, n);
    mqb_client_free(c);
    return out;
}

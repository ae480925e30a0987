/* MQTT link (libmosquitto): a verdict per part, the station's status and
 * per-minute counters out to a broker; with trigger.mode mqtt, triggers in.
 * See line.h for the lifecycle every link shares.
 *
 * Topics, all under <mqtt.prefix>/<line.name>/ (docs/line.md has payloads):
 *   status    "online" / "offline", retained, QoS 1. "online" on every
 *             connect; "offline" on a clean stop and, as the last will, from
 *             the broker when the daemon dies or goes silent for 1.5
 *             keepalives. One retained word, so a PLC or SCADA tag reads it
 *             without parsing anything.
 *   state     JSON once a second, QoS 0, not retained (a stale one would
 *             outlive the daemon): state, camera, parts, rejects, scores.
 *   verdict   JSON per part, QoS 1 (outputs.mqtt.verdicts). A reject's is
 *             sent once the writer has its image paths; a good part's at
 *             inspection, so "part" orders them, not arrival.
 *   counters  JSON per minute, QoS 1 (outputs.mqtt.counters).
 *   trigger   subscribed with trigger.mode mqtt: each message is one
 *             trigger, its payload an optional part id (plain text, or JSON
 *             {"part_id": ...}).
 *
 * Threads: the link's own thread owns the mosquitto client and runs its
 * network loop (poll on the socket and on an eventfd the callers ring). The
 * daemon's threads only render JSON and append it to a bounded queue under
 * a short mutex. Verdicts and counters wait there while the broker is away;
 * beyond outputs.mqtt.queue the oldest are dropped and counted (the reject
 * log keeps every row). The state is never queued: the next second brings
 * a fresh one. At most LINK_INFLIGHT messages are handed to libmosquitto
 * unacknowledged; it keeps those across a reconnect and sends them again.
 *
 * A lost or refused connection is retried with ad_backoff (1 s doubling to
 * 15 s), logged once when lost and once when back. */
#include <errno.h>
#include <math.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>

#include "anomalyd/capture.h"
#include "daemon/daemon_internal.h"
#include "line/line.h"

#define LINK_INFLIGHT 64           /* handed to libmosquitto, not yet acknowledged */
#define LINK_BACKOFF_MIN_S 1.0
#define LINK_BACKOFF_MAX_S 15.0
#define LINK_CONNECT_TIMEOUT_S 10 /* seconds for TCP, TLS and CONNACK together */
#define LINK_CLOSE_FLUSH_S 1.0     /* close: queued messages and "offline", at most this long */
#define PROBE_TIMEOUT_S 3.0
#define TRIGGER_MAX_BYTES 1024     /* a trigger payload longer than this is refused unread */
#define PASSWORD_MAX_BYTES 4096
#define AD_STRINGIFY_(x) #x
#define AD_STRINGIFY(x) AD_STRINGIFY_(x)

/* The keys the link runs on, copied out of the config. */
typedef struct mqtt_settings {
    char host[sizeof(((ad_config *)0)->mqtt.host)];
    int port, keepalive;
    char client_id[sizeof(((ad_config *)0)->mqtt.client_id) + 80];
    char username[sizeof(((ad_config *)0)->mqtt.username)];
    char password[PASSWORD_MAX_BYTES]; /* from mqtt.password or the first line of password_file */
    bool tls, tls_insecure;
    char ca_file[AD_PATH_MAX], cert_file[AD_PATH_MAX], key_file[AD_PATH_MAX];
    enum ad_mqtt_verdicts verdicts;
    bool counters;
    int queue;
    char topic_status[256], topic_state[256], topic_verdict[256], topic_counters[256],
        topic_trigger[256];
} mqtt_settings;

/* One message waiting for the broker: payload copied in. */
typedef struct link_msg {
    struct link_msg *next;
    const char *topic;            /* one of the settings' topics */
    size_t len;
    char payload[];
} link_msg;

enum link_conn { LINK_DOWN, LINK_CONNECTING, LINK_UP };

/* libmosquitto tells what went wrong in TLS only in its log: the last error
 * line, kept for the message. The first member of the link and of the
 * probe's state, so one log callback serves both. */
typedef struct client_log {
    char last_error[256];
} client_log;

struct ad_mqtt_link {
    client_log log;
    mqtt_settings set;
    ad_trigger_queue *triggers;   /* NULL unless trigger.mode is mqtt */
    char peer[300];               /* "host:port", for messages */
    int wake_fd;                  /* eventfd: the callers ring it */
    pthread_t tid;

    /* shared with the callers, under lock */
    pthread_mutex_t lock;
    link_msg *head, *tail;
    long pending;                 /* in the list */
    long inflight;                /* handed to libmosquitto, not acknowledged */
    char *state_json;             /* the latest status, not yet published; malloc'd */
    long sent, dropped;
    bool connected, stop;
    bool drop_told;               /* the first drop of an outage was logged */

    /* the link thread's own */
    struct mosquitto *mosq;
    enum link_conn conn;
    bool ever_connected;
    double next_connect, connect_started, down_since;
    ad_backoff backoff;
    ad_latch down_log, trigger_log;
    int inflight_mid[LINK_INFLIGHT]; /* mids of our QoS 1 messages not yet acknowledged */
    bool closing;                 /* stop_cleanly runs: a disconnect is expected */
    bool announce;                /* connected: "online" and the trigger subscription are due */
    int offline_mid;              /* the clean stop's "offline", -1 until sent */
    bool offline_acked;
};

/* ---- settings ---- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_init(void) { mosquitto_lib_init(); }

/* The first line of path (no newline) into out. */
static int read_password_file(const char *path, char *out, size_t n, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char why[AD_ERRLEN];
    if (ad_read_file(path, PASSWORD_MAX_BYTES, &data, &len, why, sizeof why) != 0)
        return ad_err(err, errlen, "mqtt.password_file: %s", why);
    size_t line = 0;
    while (line < len && data[line] != '\n' && data[line] != '\r') line++;
    int rc = 0;
    if (line == 0) rc = ad_err(err, errlen, "mqtt.password_file %s: the first line is empty, expected the password", path);
    else if (line >= n) rc = ad_err(err, errlen, "mqtt.password_file %s: the password is over %zu bytes", path, n - 1);
    else if (memchr(data, '\0', line))
        rc = ad_err(err, errlen, "mqtt.password_file %s: the password contains a NUL byte", path);
    else {
        memcpy(out, data, line);
        out[line] = '\0';
    }
    explicit_bzero(data, len);
    free(data);
    return rc;
}

static int readable(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ad_err(err, errlen, "%s %s: cannot read: %s", key, path, strerror(errno));
    fclose(f);
    return 0;
}

/* The link's settings from cfg; reads the password file. */
static int settings_from_config(mqtt_settings *s, const ad_config *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    ad_fmt_trunc(s->host, sizeof s->host, "%s", cfg->mqtt.host);
    s->port = cfg->mqtt.port;
    s->keepalive = cfg->mqtt.keepalive;
    if (cfg->mqtt.client_id[0]) ad_fmt_trunc(s->client_id, sizeof s->client_id, "%s", cfg->mqtt.client_id);
    else ad_fmt_trunc(s->client_id, sizeof s->client_id, "anomalyd-%s", cfg->line.name);
    ad_fmt_trunc(s->username, sizeof s->username, "%s", cfg->mqtt.username);
    if (cfg->mqtt.password_file[0]) {
        if (read_password_file(cfg->mqtt.password_file, s->password, sizeof s->password, err, errlen))
            return -1;
    } else {
        ad_fmt_trunc(s->password, sizeof s->password, "%s", cfg->mqtt.password);
    }
    s->tls = cfg->mqtt.tls.enabled;
    s->tls_insecure = cfg->mqtt.tls.insecure;
    ad_fmt_trunc(s->ca_file, sizeof s->ca_file, "%s", cfg->mqtt.tls.ca_file);
    ad_fmt_trunc(s->cert_file, sizeof s->cert_file, "%s", cfg->mqtt.tls.cert_file);
    ad_fmt_trunc(s->key_file, sizeof s->key_file, "%s", cfg->mqtt.tls.key_file);
    if (s->tls) {
        if (s->ca_file[0] && readable("mqtt.tls.ca_file", s->ca_file, err, errlen)) return -1;
        if (s->cert_file[0] && readable("mqtt.tls.cert_file", s->cert_file, err, errlen)) return -1;
        if (s->key_file[0] && readable("mqtt.tls.key_file", s->key_file, err, errlen)) return -1;
    }
    s->verdicts = cfg->outputs.mqtt.verdicts;
    s->counters = cfg->outputs.mqtt.counters;
    s->queue = cfg->outputs.mqtt.queue;
    const char *pre = cfg->mqtt.prefix, *ln = cfg->line.name;
    ad_fmt_trunc(s->topic_status, sizeof s->topic_status, "%s/%s/status", pre, ln);
    ad_fmt_trunc(s->topic_state, sizeof s->topic_state, "%s/%s/state", pre, ln);
    ad_fmt_trunc(s->topic_verdict, sizeof s->topic_verdict, "%s/%s/verdict", pre, ln);
    ad_fmt_trunc(s->topic_counters, sizeof s->topic_counters, "%s/%s/counters", pre, ln);
    ad_fmt_trunc(s->topic_trigger, sizeof s->topic_trigger, "%s/%s/trigger", pre, ln);
    return 0;
}

/* A mosquitto client with the settings' identity, credentials and TLS.
 * The probe passes a client id of its own, so it never takes over the
 * daemon's session, and no will, so it never says "offline". */
static int client_new(struct mosquitto **out, const mqtt_settings *s, const char *client_id,
                      const char *will_topic, void *userdata, char *err, size_t errlen)
{
    pthread_once(&lib_once, lib_init);
    struct mosquitto *m = mosquitto_new(client_id, true, userdata);
    if (!m) return ad_err(err, errlen, "mqtt: cannot create a client: %s", strerror(errno));
    int rc = MOSQ_ERR_SUCCESS;
    const char *what = "";
    if (s->username[0]) {
        what = "mqtt.username";
        rc = mosquitto_username_pw_set(m, s->username, s->password[0] ? s->password : NULL);
    }
    if (rc == MOSQ_ERR_SUCCESS && s->tls) {
        what = "mqtt.tls";
        /* no CA file: the system's CA folder (Debian's ca-certificates) */
        rc = mosquitto_tls_set(m, s->ca_file[0] ? s->ca_file : NULL, s->ca_file[0] ? NULL : "/etc/ssl/certs",
                               s->cert_file[0] ? s->cert_file : NULL, s->key_file[0] ? s->key_file : NULL,
                               NULL);
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(m, s->tls_insecure);
    }
    if (rc == MOSQ_ERR_SUCCESS && will_topic) {
        what = "mqtt last will";
        rc = mosquitto_will_set(m, will_topic, 7, "offline", 1, true);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(m);
        return ad_err(err, errlen, "%s: %s", what, mosquitto_strerror(rc));
    }
    *out = m;
    return 0;
}

static void on_log(struct mosquitto *m, void *ud, int level, const char *str)
{
    (void)m;
    client_log *log = ud;
    if (level == MOSQ_LOG_ERR) ad_fmt_trunc(log->last_error, sizeof log->last_error, "%s", str);
}

/* libmosquitto's sentences end with a full stop; ours go on after them. */
static void without_stop(char *out, size_t n, const char *text)
{
    ad_fmt_trunc(out, n, "%s", text);
    size_t len = strlen(out);
    if (len && out[len - 1] == '.') out[len - 1] = '\0';
}

/* Why rc failed, in words (errno is read at once, for MOSQ_ERR_ERRNO). */
static void failure_reason(int rc, const char *last_error, char *out, size_t n)
{
    if (rc == MOSQ_ERR_ERRNO) ad_fmt_trunc(out, n, "%s", strerror(errno));
    else if (rc == MOSQ_ERR_TLS && last_error[0]) ad_fmt_trunc(out, n, "TLS: %s", last_error);
    else without_stop(out, n, mosquitto_strerror(rc));
}

/* ---- JSON payloads ---- */

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *text_or_null(const char *s) { return s && s[0] ? json_string(s) : json_null(); }

/* 'YYYY-MM-DD HH:MM:SS.SSS' (the reject row's ts) as ISO 8601 UTC. */
static void iso_time(const char *ts, char out[40])
{
    char now[32];
    if (!ts || !ts[0]) {
        ad_utc_timestamp(now);
        ts = now;
    }
    ad_fmt_trunc(out, 40, "%sZ", ts);
    if (strlen(out) > 10 && out[10] == ' ') out[10] = 'T';
}

static json_t *verdict_json(const ad_verdict *v)
{
    char when[40];
    iso_time(v->ts, when);
    json_t *box = v->box_w > 0 && v->box_h > 0
                      ? json_pack("{s:i, s:i, s:i, s:i}", "x", v->box_x, "y", v->box_y, "w", v->box_w, "h",
                                  v->box_h)
                      : json_null();
    /* the part id passed json_string's UTF-8 check when it came in by MQTT;
     * from elsewhere it may not, and then it is left out rather than lost */
    return json_pack("{s:s, s:I, s:o, s:s, s:s, s:o, s:o, s:s, s:o, s:I, s:o, s:o, s:o}",
                     "line", v->line, "part", (json_int_t)v->part, "part_id", text_or_null(v->part_id),
                     "trigger", v->trigger, "time", when, "score", number(v->score), "threshold",
                     number(v->threshold), "verdict", v->reject ? "reject" : "good", "box", box, "area",
                     (json_int_t)v->area, "image", text_or_null(v->image_path), "heatmap",
                     text_or_null(v->heatmap_path), "model_sha256", text_or_null(v->model_sha256));
}

static json_t *state_json(const ad_line_status *s)
{
    char when[40];
    iso_time(NULL, when);
    return json_pack("{s:s, s:b, s:I, s:I, s:I, s:o, s:o, s:s}", "state", s->state ? s->state : "",
                     "camera", s->camera_up, "parts", (json_int_t)s->parts, "inspected",
                     (json_int_t)s->inspected, "rejects", (json_int_t)s->rejects, "last_score",
                     number(s->last_score), "threshold", number(s->threshold), "time", when);
}

static json_t *counters_json(const ad_minute_counts *c)
{
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "minute", c->minute, "line", c->line, "seconds", number(c->seconds), "captured",
                     (json_int_t)c->captured, "inspected", (json_int_t)c->inspected, "dropped",
                     (json_int_t)c->dropped, "rejects", (json_int_t)c->rejects, "images_skipped",
                     (json_int_t)c->images_skipped, "score_p50", number(c->score_p50), "score_p90",
                     number(c->score_p90), "score_p99", number(c->score_p99), "score_max",
                     number(c->score_max), "latency_ms_p50", number(c->latency_ms_p50), "latency_ms_p99",
                     number(c->latency_ms_p99), "latency_ms_max", number(c->latency_ms_max));
}

/* Compact text of obj (consumed); NULL when obj is (text json_pack refused). */
static char *dump(json_t *obj)
{
    if (!obj) return NULL;
    char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(obj);
    return text;
}

/* ---- the callers' side: queue and wake ---- */

static void wake(ad_mqtt_link *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wake_fd, &one, sizeof one);
    (void)n; /* a full counter (EAGAIN) is already a wake-up */
}

/* Appends text (freed here) for topic; beyond the queue's size the oldest
 * waiting message goes. */
static void enqueue(ad_mqtt_link *l, const char *topic, char *text, const char *what)
{
    if (!text) {
        ad_log(AD_LOG_ERR, "mqtt: %s could not be written as JSON; not sent", what);
        return;
    }
    size_t len = strlen(text);
    link_msg *m = ad_xmalloc(sizeof *m + len);
    m->next = NULL;
    m->topic = topic;
    m->len = len;
    memcpy(m->payload, text, len);
    free(text);

    link_msg *gone = NULL;
    bool tell = false;
    long queued;
    pthread_mutex_lock(&l->lock);
    if (l->tail) l->tail->next = m;
    else l->head = m;
    l->tail = m;
    l->pending++;
    if (l->pending + l->inflight > l->set.queue && l->head) {
        gone = l->head;
        l->head = gone->next;
        if (!l->head) l->tail = NULL;
        l->pending--;
        l->dropped++;
        tell = !l->drop_told;
        l->drop_told = true;
    }
    queued = l->pending + l->inflight;
    pthread_mutex_unlock(&l->lock);
    free(gone);
    if (tell)
        ad_log(AD_LOG_WARN,
               "mqtt: %ld messages wait for the broker %s (outputs.mqtt.queue): dropping the oldest from now "
               "on, counted (the reject log keeps every reject)",
               queued, l->peer);
    wake(l);
}

void ad_mqtt_link_inspected(ad_mqtt_link *l, const ad_verdict *v)
{
    /* a reject's verdict waits for its image paths (ad_mqtt_link_recorded) */
    if (v->reject || l->set.verdicts != AD_MQTT_VERDICTS_ALL) return;
    enqueue(l, l->set.topic_verdict, dump(verdict_json(v)), "a verdict");
}

void ad_mqtt_link_recorded(ad_mqtt_link *l, const ad_verdict *v)
{
    if (!v->reject || l->set.verdicts == AD_MQTT_VERDICTS_NONE) return;
    enqueue(l, l->set.topic_verdict, dump(verdict_json(v)), "a verdict");
}

void ad_mqtt_link_minute(ad_mqtt_link *l, const ad_minute_counts *c)
{
    if (!l->set.counters) return;
    enqueue(l, l->set.topic_counters, dump(counters_json(c)), "the minute's counters");
}

void ad_mqtt_link_status(ad_mqtt_link *l, const ad_line_status *s)
{
    char *text = dump(state_json(s));
    if (!text) return;
    pthread_mutex_lock(&l->lock);
    char *old = l->state_json;
    l->state_json = text;
    pthread_mutex_unlock(&l->lock);
    free(old);
    wake(l);
}

void ad_mqtt_link_counts(ad_mqtt_link *l, ad_link_counts *c)
{
    pthread_mutex_lock(&l->lock);
    c->sent = l->sent;
    c->queued = l->pending + l->inflight;
    c->dropped = l->dropped;
    c->connected = l->connected;
    pthread_mutex_unlock(&l->lock);
}

/* ---- triggers ---- */

/* See line.h; the reason returned is the log latch's key. */
const char *ad_mqtt_trigger_part_id(const char *payload, size_t len, char id[64], char *detail, size_t dn)
{
    id[0] = '\0';
    detail[0] = '\0';
    if (len > TRIGGER_MAX_BYTES) {
        snprintf(detail, dn, "%zu bytes, at most %d", len, TRIGGER_MAX_BYTES);
        return "payload too long";
    }
    while (len && (*payload == ' ' || *payload == '\t' || *payload == '\r' || *payload == '\n')) payload++, len--;
    while (len && (payload[len - 1] == ' ' || payload[len - 1] == '\t' || payload[len - 1] == '\r' ||
                   payload[len - 1] == '\n'))
        len--;
    if (len == 0) return NULL;
    const char *text = payload;
    size_t tlen = len;
    json_t *doc = NULL;
    char num[32];
    if (payload[0] == '{') {
        json_error_t jerr;
        doc = json_loadb(payload, len, 0, &jerr);
        if (!doc) {
            ad_fmt_trunc(detail, dn, "%s", jerr.text);
            return "not valid JSON";
        }
        json_t *pid = json_object_get(doc, "part_id");
        if (!pid || json_is_null(pid)) {
            json_decref(doc);
            return NULL;
        }
        if (json_is_string(pid)) {
            text = json_string_value(pid);
            tlen = json_string_length(pid);
        } else if (json_is_integer(pid)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(pid));
            text = num;
            tlen = strlen(num);
        } else {
            json_decref(doc);
            return "part_id is neither a string nor an integer";
        }
    }
    const char *why = NULL;
    if (tlen >= 64) {
        snprintf(detail, dn, "%zu bytes", tlen);
        why = "part id too long (at most 63 bytes)";
    } else if (memchr(text, '\0', tlen)) {
        why = "part id contains a NUL byte";
    } else {
        for (size_t i = 0; i < tlen && !why; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) why = "part id contains a control character";
        json_t *utf8 = why ? NULL : json_stringn(text, tlen); /* NULL: not UTF-8 */
        if (!why && !utf8) why = "part id is not UTF-8 text";
        json_decref(utf8);
    }
    if (!why) {
        memcpy(id, text, tlen);
        id[tlen] = '\0';
    }
    json_decref(doc);
    return why;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    ad_mqtt_link *l = ud;
    double t = ad_now_sec();
    if (!l->triggers || strcmp(msg->topic, l->set.topic_trigger) != 0) return;
    char text[AD_ERRLEN + 256], id[64], detail[128];
    if (msg->retain) {
        /* a retained trigger would fire again on every reconnect */
        ad_fmt_trunc(text, sizeof text,
                     "mqtt: a retained message on %s is ignored, expected triggers sent without retain "
                     "(clear it: publish an empty retained message there)",
                     msg->topic);
        ad_latch_log_keyed(&l->trigger_log, "retained", AD_LOG_WARN, text);
        return;
    }
    const char *why = ad_mqtt_trigger_part_id(msg->payload ? msg->payload : "", (size_t)msg->payloadlen, id, detail,
                                      sizeof detail);
    if (why) {
        ad_fmt_trunc(text, sizeof text,
                     "mqtt: trigger on %s ignored: %s%s%s, expected an empty payload, a part id (printable, "
                     "at most 63 bytes) or {\"part_id\": ...}",
                     msg->topic, why, detail[0] ? ": " : "", detail);
        ad_latch_log_keyed(&l->trigger_log, why, AD_LOG_WARN, text);
        return;
    }
    ad_latch_clear(&l->trigger_log, "mqtt: trigger messages are valid again");
    ad_trigger_fire(l->triggers, id[0] ? id : NULL, t);
}

/* ---- the link thread: connection ---- */

static void set_connected(ad_mqtt_link *l, bool up)
{
    pthread_mutex_lock(&l->lock);
    l->connected = up;
    pthread_mutex_unlock(&l->lock);
}

/* The connection failed or was lost: say so once, retry after the backoff. */
static void went_down(ad_mqtt_link *l, const char *why)
{
    double now = ad_now_sec();
    if (l->conn == LINK_UP) l->down_since = now;
    l->conn = LINK_DOWN;
    set_connected(l, false);
    double wait = ad_backoff_next(&l->backoff);
    l->next_connect = now + wait;
    char msg[AD_ERRLEN + 256];
    ad_fmt_trunc(msg, sizeof msg,
                 "mqtt: broker %s %s: %s; verdicts and counters wait (up to outputs.mqtt.queue %d), "
                 "retrying with backoff up to %.0f s",
                 l->peer, l->ever_connected ? "lost" : "unreachable", why, l->set.queue, LINK_BACKOFF_MAX_S);
    /* one line per outage: its first reason */
    ad_latch_log_keyed(&l->down_log, "down", AD_LOG_WARN, msg);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    ad_mqtt_link *l = ud;
    if (rc != 0) {
        char why[AD_ERRLEN];
        without_stop(why, sizeof why, mosquitto_connack_string(rc));
        went_down(l, why);
        return;
    }
    (void)m;
    l->conn = LINK_UP;
    l->announce = true;
    ad_backoff_reset(&l->backoff);
    pthread_mutex_lock(&l->lock);
    l->connected = true;
    long queued = l->pending + l->inflight, dropped = l->dropped;
    l->drop_told = false;
    pthread_mutex_unlock(&l->lock);
    char what[AD_ERRLEN];
    if (!l->ever_connected)
        ad_fmt_trunc(what, sizeof what, "mqtt: connected to %s as %s, status on %s%s; %ld messages queued, "
                     "%ld dropped so far", l->peer, l->set.client_id, l->set.topic_status,
                     l->triggers ? ", triggers from the trigger topic" : "", queued, dropped);
    else
        ad_fmt_trunc(what, sizeof what, "mqtt: connected to %s again after %.0f s; %ld messages queued, "
                     "%ld dropped so far", l->peer, ad_now_sec() - l->down_since, queued, dropped);
    l->ever_connected = true;
    /* after a failure the recovery line also quotes it */
    if (l->down_log.last[0]) ad_latch_clear(&l->down_log, what);
    else ad_log(AD_LOG_INFO, "%s", what);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    ad_mqtt_link *l = ud;
    if (l->closing) {
        l->conn = LINK_DOWN;
        set_connected(l, false);
        return;
    }
    if (l->conn == LINK_DOWN) return; /* already told (a refused CONNACK) */
    char why[AD_ERRLEN];
    if (rc == 0) ad_fmt_trunc(why, sizeof why, "disconnected");
    else failure_reason(rc, l->log.last_error, why, sizeof why);
    went_down(l, why);
}


static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    (void)m;
    ad_mqtt_link *l = ud;
    if (mid == l->offline_mid) l->offline_acked = true;
    for (int i = 0; i < LINK_INFLIGHT; i++) {
        if (l->inflight_mid[i] != mid) continue;
        l->inflight_mid[i] = -1;
        pthread_mutex_lock(&l->lock);
        l->inflight--;
        l->sent++;
        pthread_mutex_unlock(&l->lock);
        return;
    }
}

/* A fresh connection attempt; it closes a socket still waiting from the
 * last one. The messages libmosquitto holds unacknowledged are kept. */
static void start_connect(ad_mqtt_link *l)
{
    l->log.last_error[0] = '\0';
    int rc = mosquitto_connect_async(l->mosq, l->set.host, l->set.port, l->set.keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        char why[AD_ERRLEN];
        failure_reason(rc, l->log.last_error, why, sizeof why);
        went_down(l, why);
        return;
    }
    l->conn = LINK_CONNECTING;
    l->connect_started = ad_now_sec();
}

/* Hands waiting messages and the latest state to libmosquitto while the
 * connection is up, keeping at most LINK_INFLIGHT unacknowledged. */
static void pump(ad_mqtt_link *l)
{
    if (l->conn != LINK_UP) return;
    /* here, not in on_connect: libmosquitto holds its callback lock there,
     * and publishing under it takes its locks in an order its own writer
     * reverses (ThreadSanitizer's lock-order report) */
    if (l->announce) {
        l->announce = false;
        mosquitto_publish(l->mosq, NULL, l->set.topic_status, 6, "online", 1, true);
        if (l->triggers) mosquitto_subscribe(l->mosq, NULL, l->set.topic_trigger, 1);
    }
    pthread_mutex_lock(&l->lock);
    char *state = l->state_json;
    l->state_json = NULL;
    pthread_mutex_unlock(&l->lock);
    if (state) {
        mosquitto_publish(l->mosq, NULL, l->set.topic_state, (int)strlen(state), state, 0, false);
        free(state);
    }
    for (;;) {
        int slot = -1;
        for (int i = 0; i < LINK_INFLIGHT && slot < 0; i++)
            if (l->inflight_mid[i] < 0) slot = i;
        if (slot < 0) return;
        pthread_mutex_lock(&l->lock);
        link_msg *m = l->head;
        if (m) {
            l->head = m->next;
            if (!l->head) l->tail = NULL;
            l->pending--;
            l->inflight++;
        }
        pthread_mutex_unlock(&l->lock);
        if (!m) return;
        int mid = 0;
        int rc = mosquitto_publish(l->mosq, &mid, m->topic, (int)m->len, m->payload, 1, false);
        if (rc == MOSQ_ERR_SUCCESS) {
            l->inflight_mid[slot] = mid;
            free(m);
            continue;
        }
        bool retry = rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NOMEM;
        pthread_mutex_lock(&l->lock);
        l->inflight--;
        if (retry) { /* the connection just went: back to the front */
            m->next = l->head;
            l->head = m;
            if (!l->tail) l->tail = m;
            l->pending++;
        } else {
            l->dropped++;
        }
        pthread_mutex_unlock(&l->lock);
        if (retry) return;
        /* a message libmosquitto will never take would block the queue */
        ad_log(AD_LOG_ERR, "mqtt: a message of %zu bytes on %s refused: %s; dropped", m->len, m->topic,
               mosquitto_strerror(rc));
        free(m);
    }
}

/* One turn of the network loop: waits up to timeout_s for the socket or a
 * wake-up, then lets libmosquitto read, write and keep alive. */
static void turn(ad_mqtt_link *l, double timeout_s)
{
    struct pollfd fds[2] = {{.fd = l->wake_fd, .events = POLLIN}, {.fd = -1}};
    int sock = mosquitto_socket(l->mosq);
    if (sock >= 0) {
        fds[1].fd = sock;
        fds[1].events = POLLIN | (mosquitto_want_write(l->mosq) ? POLLOUT : 0);
    }
    int ms = timeout_s > 0 ? (int)(timeout_s * 1000) + 1 : 0;
    if (poll(fds, sock >= 0 ? 2 : 1, ms) < 0 && errno != EINTR)
        ad_die("mqtt: poll failed: %s", strerror(errno));
    if (fds[0].revents & POLLIN) {
        uint64_t n;
        ssize_t got = read(l->wake_fd, &n, sizeof n);
        (void)got;
    }
    int rc = MOSQ_ERR_SUCCESS;
    if (sock >= 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) rc = mosquitto_loop_read(l->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && sock >= 0 && mosquitto_socket(l->mosq) >= 0 && (fds[1].revents & POLLOUT))
        rc = mosquitto_loop_write(l->mosq, 1);
    /* a TLS handshake that fails closes the socket without on_disconnect */
    if (rc != MOSQ_ERR_SUCCESS && l->conn != LINK_DOWN && mosquitto_socket(l->mosq) < 0 && !l->closing) {
        char why[AD_ERRLEN];
        failure_reason(rc, l->log.last_error, why, sizeof why);
        went_down(l, why);
    }
    if (mosquitto_socket(l->mosq) >= 0) mosquitto_loop_misc(l->mosq);
    pump(l);
}

static bool stopping(ad_mqtt_link *l)
{
    pthread_mutex_lock(&l->lock);
    bool s = l->stop;
    pthread_mutex_unlock(&l->lock);
    return s;
}

static bool flushed(ad_mqtt_link *l)
{
    pthread_mutex_lock(&l->lock);
    bool empty = l->pending == 0 && l->inflight == 0;
    pthread_mutex_unlock(&l->lock);
    return empty;
}

/* Close: what is queued, then "offline" (a clean disconnect sends no
 * will), within LINK_CLOSE_FLUSH_S; what is left is counted as dropped. */
static void stop_cleanly(ad_mqtt_link *l)
{
    double end = ad_now_sec() + LINK_CLOSE_FLUSH_S;
    l->closing = true;
    while (l->conn == LINK_UP && !flushed(l) && ad_now_sec() < end - 0.2) turn(l, 0.05);
    if (l->conn == LINK_UP) {
        mosquitto_publish(l->mosq, &l->offline_mid, l->set.topic_status, 7, "offline", 1, true);
        while (l->conn == LINK_UP && !l->offline_acked && ad_now_sec() < end) turn(l, 0.05);
        mosquitto_disconnect(l->mosq);
        while (mosquitto_socket(l->mosq) >= 0 && mosquitto_want_write(l->mosq) && ad_now_sec() < end)
            turn(l, 0.05);
    }
    pthread_mutex_lock(&l->lock);
    long left = l->pending + l->inflight;
    l->dropped += left;
    l->pending = l->inflight = 0;
    pthread_mutex_unlock(&l->lock);
    if (left)
        ad_log(AD_LOG_WARN, "mqtt: %ld messages not delivered to %s at stop (the reject log has every reject)",
               left, l->peer);
}

static void *link_main(void *arg)
{
    ad_mqtt_link *l = arg;
    ad_thread_enter("ad-mqtt");
    ad_backoff_init(&l->backoff, LINK_BACKOFF_MIN_S, LINK_BACKOFF_MAX_S);
    l->next_connect = ad_now_sec();
    while (!stopping(l)) {
        double now = ad_now_sec();
        if (l->conn == LINK_DOWN && now >= l->next_connect) start_connect(l);
        else if (l->conn == LINK_CONNECTING && now - l->connect_started > LINK_CONNECT_TIMEOUT_S)
            went_down(l, "no answer within " AD_STRINGIFY(LINK_CONNECT_TIMEOUT_S) " s");
        double wait = 1.0;
        if (l->conn == LINK_DOWN && l->next_connect - now < wait) wait = l->next_connect - now;
        turn(l, wait);
    }
    stop_cleanly(l);
    return NULL;
}

/* ---- lifecycle ---- */

bool ad_mqtt_link_configured(const ad_config *cfg) { return cfg->mqtt.host[0] != '\0'; }

bool ad_mqtt_link_same_settings(const ad_config *a, const ad_config *b)
{
#define SAME(f) (a->f == b->f)
#define SAME_TEXT(f) (strcmp(a->f, b->f) == 0)
    return SAME_TEXT(mqtt.host) && SAME(mqtt.port) && SAME_TEXT(mqtt.client_id) && SAME_TEXT(mqtt.username) &&
           SAME_TEXT(mqtt.password) && SAME_TEXT(mqtt.password_file) && SAME_TEXT(mqtt.prefix) &&
           SAME(mqtt.keepalive) && SAME(mqtt.tls.enabled) && SAME_TEXT(mqtt.tls.ca_file) &&
           SAME_TEXT(mqtt.tls.cert_file) && SAME_TEXT(mqtt.tls.key_file) && SAME(mqtt.tls.insecure) &&
           SAME(outputs.mqtt.verdicts) && SAME(outputs.mqtt.counters) && SAME(outputs.mqtt.queue) &&
           SAME_TEXT(line.name) && (a->trigger.mode == AD_TRIGGER_MQTT) == (b->trigger.mode == AD_TRIGGER_MQTT);
#undef SAME
#undef SAME_TEXT
}

int ad_mqtt_link_open(ad_mqtt_link **out, const ad_config *cfg, ad_trigger_queue *triggers, char *err,
                      size_t errlen)
{
    *out = NULL;
    ad_mqtt_link *l = ad_xcalloc(1, sizeof *l);
    l->wake_fd = -1;
    if (settings_from_config(&l->set, cfg, err, errlen)) goto fail;
    l->triggers = triggers;
    ad_fmt_trunc(l->peer, sizeof l->peer, "%s:%d", l->set.host, l->set.port);
    for (int i = 0; i < LINK_INFLIGHT; i++) l->inflight_mid[i] = -1;
    l->offline_mid = -1;
    if (client_new(&l->mosq, &l->set, l->set.client_id, l->set.topic_status, l, err, errlen)) goto fail;
    mosquitto_connect_callback_set(l->mosq, on_connect);
    mosquitto_disconnect_callback_set(l->mosq, on_disconnect);
    mosquitto_publish_callback_set(l->mosq, on_publish);
    mosquitto_message_callback_set(l->mosq, on_message);
    mosquitto_log_callback_set(l->mosq, on_log);
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0) {
        ad_err(err, errlen, "mqtt: eventfd: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&l->lock, NULL);
    int rc = pthread_create(&l->tid, NULL, link_main, l);
    if (rc != 0) {
        pthread_mutex_destroy(&l->lock);
        ad_err(err, errlen, "mqtt: cannot start its thread: %s", strerror(rc));
        goto fail;
    }
    *out = l;
    return 0;
fail:
    if (l->mosq) mosquitto_destroy(l->mosq);
    if (l->wake_fd >= 0) close(l->wake_fd);
    explicit_bzero(&l->set, sizeof l->set);
    free(l);
    return -1;
}

void ad_mqtt_link_close(ad_mqtt_link *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_mutex_unlock(&l->lock);
    wake(l);
    pthread_join(l->tid, NULL);
    mosquitto_destroy(l->mosq);
    close(l->wake_fd);
    while (l->head) {
        link_msg *m = l->head;
        l->head = m->next;
        free(m);
    }
    free(l->state_json);
    pthread_mutex_destroy(&l->lock);
    explicit_bzero(&l->set, sizeof l->set);
    free(l);
}

/* ---- --check-config ---- */

typedef struct probe_state {
    client_log log;
    int connack;                  /* -1 until the CONNACK */
    int lost;                     /* MOSQ_ERR_* of a lost connection, 0 while none */
} probe_state;

static void probe_on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    ((probe_state *)ud)->connack = rc;
}

static void probe_on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    probe_state *p = ud;
    if (p->connack < 0) p->lost = rc ? rc : MOSQ_ERR_CONN_LOST;
}

int ad_mqtt_link_probe(const ad_config *cfg, char *err, size_t errlen)
{
    mqtt_settings *s = ad_xcalloc(1, sizeof *s);
    struct mosquitto *m = NULL;
    probe_state p = {.connack = -1};
    char why[AD_ERRLEN], id[sizeof s->client_id + 8];
    int rc = -1;
    if (settings_from_config(s, cfg, why, sizeof why)) goto out;
    ad_fmt_trunc(id, sizeof id, "%s-probe", s->client_id);
    if (client_new(&m, s, id, NULL, &p, why, sizeof why)) goto out;
    mosquitto_connect_callback_set(m, probe_on_connect);
    mosquitto_disconnect_callback_set(m, probe_on_disconnect);
    mosquitto_log_callback_set(m, on_log);
    int mrc = mosquitto_connect_async(m, s->host, s->port, s->keepalive);
    if (mrc != MOSQ_ERR_SUCCESS) {
        failure_reason(mrc, p.log.last_error, why, sizeof why);
        goto out;
    }
    double end = ad_now_sec() + PROBE_TIMEOUT_S;
    while (p.connack < 0 && !p.lost && mosquitto_socket(m) >= 0 && ad_now_sec() < end) {
        struct pollfd fd = {.fd = mosquitto_socket(m), .events = POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0)};
        if (poll(&fd, 1, 100) < 0 && errno != EINTR) break;
        int lrc = MOSQ_ERR_SUCCESS;
        if (fd.revents & (POLLIN | POLLERR | POLLHUP)) lrc = mosquitto_loop_read(m, 1);
        if (lrc == MOSQ_ERR_SUCCESS && mosquitto_socket(m) >= 0 && (fd.revents & POLLOUT))
            lrc = mosquitto_loop_write(m, 1);
        if (lrc != MOSQ_ERR_SUCCESS && !p.lost && p.connack < 0) p.lost = lrc;
    }
    if (p.connack == 0) {
        rc = 0;
        mosquitto_disconnect(m);
        if (mosquitto_socket(m) >= 0) mosquitto_loop_write(m, 1);
    } else if (p.connack > 0) {
        without_stop(why, sizeof why, mosquitto_connack_string(p.connack));
    } else if (p.lost) {
        failure_reason(p.lost, p.log.last_error, why, sizeof why);
    } else {
        ad_fmt_trunc(why, sizeof why, "no answer within %.0f s", PROBE_TIMEOUT_S);
    }
out:
    if (rc != 0)
        ad_err(err, errlen, "broker %s:%d (mqtt.host, mqtt.port): %s; the daemon starts anyway and keeps "
               "trying", cfg->mqtt.host, cfg->mqtt.port, why);
    if (m) mosquitto_destroy(m);
    explicit_bzero(s, sizeof *s);
    free(s);
    return rc;
}

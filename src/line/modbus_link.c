/* Modbus TCP link (libmodbus): tells a PLC or a remote I/O module about each
 * part, and with trigger.mode modbus polls its trigger input. See line.h for
 * the lifecycle every link shares.
 *
 * Outputs, per inspected part: the score into a holding register, then a
 * pulse of the reject coil (or of the good coil), so a PLC that reads the
 * register on the coil's rising edge reads this part's score; once a second
 * while the camera is up, the heartbeat coil is toggled (it stops toggling
 * while the camera is down, so the PLC sees the station is not inspecting).
 *
 * Overlapping pulses: a reject while the reject coil is still on keeps it on
 * until pulse_ms after the latest reject (one longer pulse; an off-gap of one
 * network round trip is shorter than a PLC scan and could be missed). The
 * "on" is written again for that reject: the server's answer confirms the
 * pulse, and a server gone mid-run is found at the next part even while a
 * run of rejects holds the coil on. A PLC that counts pulses needs pulse_ms
 * shorter than the time between parts.
 * A pulse not sent within outputs.modbus.max_delay_ms of its verdict is
 * dropped and counted: pulsed late, it could reject the wrong part.
 *
 * One thread, the link's own, owns the one connection (a libmodbus context
 * is not thread safe). The daemon's threads only put commands into a bounded
 * queue (full: dropped and counted) and never wait for the network. A lost
 * connection is retried with ad_backoff (0.5 s doubling to 5 s), logged once
 * when lost and once when back. After every (re)connect the link writes the
 * coils off (a pulse cut by the loss ends), the heartbeat and the last score.
 *
 * Trigger: every trigger.modbus.poll_ms the input (a discrete input or a
 * coil) is read; a 0 -> 1 change fires ad_trigger_fire, with the value of
 * the holding register trigger.modbus.part_id_register (read at the edge, in
 * decimal) as the part id when that key is set. The first read after a
 * (re)connect only learns the level: an input already high is not an edge. */
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/capture.h"
#include "daemon/daemon_internal.h"
#include "line/line.h"

#define MB_QUEUE 64            /* verdicts waiting for the link thread */
#define MB_BACKOFF_MIN_S 0.5
#define MB_BACKOFF_MAX_S 5.0
#define MB_CLOSE_FLUSH_S 1.0   /* close: what is queued and pulses on, at most this long */

/* The keys the link runs on, copied out of the config; zeroed before it is
 * filled, so two are compared with memcmp. */
typedef struct mb_settings {
    char host[sizeof(((ad_config *)0)->modbus.host)];
    int port, unit_id, timeout_ms;
    int reject_coil, good_coil, heartbeat_coil, score_register; /* -1 = off */
    double score_scale;
    int pulse_ms, max_delay_ms;
    bool trigger;              /* trigger.mode is modbus */
    int input, poll_ms, part_id_register;
    enum ad_modbus_bit_kind input_kind;
} mb_settings;

typedef struct mb_verdict {
    bool reject;
    double score;
    double t_queued;           /* ad_now_sec() */
} mb_verdict;

typedef struct mb_coil {
    const char *what;          /* "reject coil", for messages */
    int addr;                  /* -1 = not configured */
    bool on;
    double off_at;             /* while on */
} mb_coil;

struct ad_modbus_link {
    mb_settings set;
    ad_trigger_queue *triggers; /* NULL unless trigger.mode is modbus */
    char peer[300];             /* "host:port unit N", for messages */

    /* shared with the callers, under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* CLOCK_MONOTONIC */
    mb_verdict queue[MB_QUEUE];
    int q_head, q_len;
    bool heartbeat_level, heartbeat_due;
    bool stop;
    double stop_by;             /* close: give up flushing at this time */

    atomic_long sent, dropped;
    atomic_bool connected;

    /* the link thread's own */
    pthread_t tid;
    modbus_t *ctx;
    mb_coil reject, good;
    bool input_known;
    uint8_t input_level;
    double next_poll;
    bool have_score;
    double last_score;
    double down_since;          /* when the connection was lost or first failed; 0 while up */
    long dropped_at_down;
    bool down_logged;           /* the loss is told once, the recovery once */
    ad_latch refused_log;
};

/* ---- settings ---- */

static void settings_from_config(mb_settings *s, const ad_config *cfg)
{
    memset(s, 0, sizeof *s);
    snprintf(s->host, sizeof s->host, "%s", cfg->modbus.host);
    s->port = cfg->modbus.port;
    s->unit_id = cfg->modbus.unit_id;
    s->timeout_ms = cfg->modbus.timeout_ms;
    s->reject_coil = cfg->outputs.modbus.reject_coil;
    s->good_coil = cfg->outputs.modbus.good_coil;
    s->heartbeat_coil = cfg->outputs.modbus.heartbeat_coil;
    s->score_register = cfg->outputs.modbus.score_register;
    s->score_scale = cfg->outputs.modbus.score_scale;
    s->pulse_ms = cfg->outputs.modbus.pulse_ms;
    s->max_delay_ms = cfg->outputs.modbus.max_delay_ms;
    s->trigger = cfg->trigger.mode == AD_TRIGGER_MODBUS;
    if (s->trigger) {
        s->input = cfg->trigger.modbus.input;
        s->input_kind = cfg->trigger.modbus.kind;
        s->poll_ms = cfg->trigger.modbus.poll_ms;
        s->part_id_register = cfg->trigger.modbus.part_id_register;
    }
}

static bool has_outputs(const mb_settings *s)
{
    return s->reject_coil >= 0 || s->good_coil >= 0 || s->heartbeat_coil >= 0 || s->score_register >= 0;
}

bool ad_modbus_link_configured(const ad_config *cfg)
{
    mb_settings s;
    settings_from_config(&s, cfg);
    return s.host[0] && (s.trigger || has_outputs(&s));
}

bool ad_modbus_link_same_settings(const ad_config *a, const ad_config *b)
{
    mb_settings sa, sb;
    settings_from_config(&sa, a);
    settings_from_config(&sb, b);
    return memcmp(&sa, &sb, sizeof sa) == 0;
}

/* The register value of a score: score x scale, rounded, clamped to 0..65535. */
static uint16_t score_word(double score, double scale)
{
    double v = nearbyint(score * scale);
    if (!(v > 0)) return 0; /* also NaN */
    return v > 65535 ? 65535 : (uint16_t)v;
}

/* ---- the connection (link thread and probe) ---- */

/* libmodbus leaves errno 0 when a connect times out in its select. */
static const char *mb_reason(int e)
{
    return e ? modbus_strerror(e) : "timed out";
}

/* A context connected to the configured server, or NULL with err. */
static modbus_t *mb_connect(const mb_settings *s, char *err, size_t errlen)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    modbus_t *ctx = modbus_new_tcp_pi(s->host, port);
    if (!ctx) {
        ad_err(err, errlen, "cannot set up a Modbus TCP context for %s:%d: %s", s->host, s->port,
               modbus_strerror(errno));
        return NULL;
    }
    uint32_t sec = (uint32_t)(s->timeout_ms / 1000), usec = (uint32_t)(s->timeout_ms % 1000) * 1000;
    if (modbus_set_slave(ctx, s->unit_id) || modbus_set_response_timeout(ctx, sec, usec)) {
        ad_err(err, errlen, "Modbus unit %d or timeout %d ms refused by libmodbus: %s", s->unit_id,
               s->timeout_ms, modbus_strerror(errno));
        modbus_free(ctx);
        return NULL;
    }
    errno = 0;
    if (modbus_connect(ctx) == -1) {
        ad_err(err, errlen, "cannot connect to %s:%d: %s", s->host, s->port, mb_reason(errno));
        modbus_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A Modbus exception: the server answered and refused this request (bad
 * address, function not supported); the connection itself is fine. */
static bool is_exception(int e)
{
    return e >= EMBXILFUN && e <= EMBXGTAR;
}

/* The connection is lost, or (ctx NULL) could not be made: told once. */
static void went_down(ad_modbus_link *l, const char *how, const char *why)
{
    if (l->down_since == 0) {
        l->down_since = ad_now_sec();
        l->dropped_at_down = atomic_load(&l->dropped);
    }
    if (l->down_logged) return;
    l->down_logged = true;
    ad_log(AD_LOG_WARN, "modbus: %s %s: %s; dropping outputs and %s with backoff", how, l->peer, why,
           l->ctx ? "reconnecting" : "retrying");
}

static void disconnect(ad_modbus_link *l, const char *why)
{
    if (!l->ctx) return;
    went_down(l, "lost", why);
    modbus_close(l->ctx);
    modbus_free(l->ctx);
    l->ctx = NULL;
    atomic_store(&l->connected, false);
}

/* After a failed request: a refusal is logged once per request kind and the
 * connection kept; anything else (timeout, reset) drops the connection. */
static void request_failed(ad_modbus_link *l, const char *what, int addr, const char *key)
{
    int e = errno;
    char msg[AD_ERRLEN];
    if (is_exception(e)) {
        ad_fmt_trunc(msg, sizeof msg, "modbus: %s refused %s %d: %s; check the address in the config",
                     l->peer, what, addr, modbus_strerror(e));
        ad_latch_log_keyed(&l->refused_log, key, AD_LOG_WARN, msg);
        return;
    }
    ad_fmt_trunc(msg, sizeof msg, "%s %d: %s", what, addr, mb_reason(e));
    disconnect(l, msg);
}

static int write_coil(ad_modbus_link *l, mb_coil *c, bool on)
{
    if (!l->ctx) return -1;
    if (modbus_write_bit(l->ctx, c->addr, on ? 1 : 0) == 1) {
        c->on = on;
        return 0;
    }
    request_failed(l, c->what, c->addr, c->what);
    return -1;
}

static int write_score(ad_modbus_link *l)
{
    if (!l->ctx || l->set.score_register < 0 || !l->have_score) return 0;
    if (modbus_write_register(l->ctx, l->set.score_register, score_word(l->last_score, l->set.score_scale)) == 1)
        return 0;
    request_failed(l, "score register", l->set.score_register, "score register");
    return -1;
}

static void write_heartbeat(ad_modbus_link *l, bool level)
{
    if (!l->ctx || l->set.heartbeat_coil < 0) return;
    if (modbus_write_bit(l->ctx, l->set.heartbeat_coil, level ? 1 : 0) != 1)
        request_failed(l, "heartbeat coil", l->set.heartbeat_coil, "heartbeat coil");
}

/* A fresh connection: coils to a known state, heartbeat and score again,
 * the trigger input's level still to learn. */
static void on_connect(ad_modbus_link *l)
{
    atomic_store(&l->connected, true);
    if (l->down_logged)
        ad_log(AD_LOG_INFO, "modbus: %s is back after %.1f s; %ld outputs dropped meanwhile", l->peer,
               ad_now_sec() - l->down_since, atomic_load(&l->dropped) - l->dropped_at_down);
    else
        ad_log(AD_LOG_INFO, "modbus: connected to %s", l->peer);
    l->down_since = 0;
    l->down_logged = false;
    l->input_known = false;
    l->next_poll = ad_now_sec();
    mb_coil *coils[2] = {&l->reject, &l->good};
    for (int i = 0; i < 2; i++)
        if (coils[i]->addr >= 0) write_coil(l, coils[i], false);
    pthread_mutex_lock(&l->lock);
    bool level = l->heartbeat_level;
    l->heartbeat_due = false;
    pthread_mutex_unlock(&l->lock);
    write_heartbeat(l, level);
    write_score(l);
}

/* ---- the link thread's work ---- */

/* Drops the queued verdicts older than max_delay_ms (counted); lock held. */
static void drop_stale(ad_modbus_link *l, double now)
{
    double max_age = l->set.max_delay_ms / 1000.0;
    while (l->q_len && now - l->queue[l->q_head].t_queued > max_age) {
        l->q_head = (l->q_head + 1) % MB_QUEUE;
        l->q_len--;
        atomic_fetch_add(&l->dropped, 1);
    }
}

/* On for pulse_ms from when the server has it (so never shorter), or, still
 * on from the part before, written on again (confirmed) and extended to
 * pulse_ms from now. */
static void pulse(ad_modbus_link *l, mb_coil *c)
{
    if (write_coil(l, c, true)) {
        atomic_fetch_add(&l->dropped, 1);
        return;
    }
    c->off_at = ad_now_sec() + l->set.pulse_ms / 1000.0;
    atomic_fetch_add(&l->sent, 1);
}

static void serve_verdict(ad_modbus_link *l, const mb_verdict *v)
{
    l->last_score = v->score;
    l->have_score = true;
    write_score(l);
    mb_coil *c = v->reject ? &l->reject : &l->good;
    if (c->addr < 0) return;
    if (ad_now_sec() - v->t_queued > l->set.max_delay_ms / 1000.0 || !l->ctx) {
        atomic_fetch_add(&l->dropped, 1);
        return;
    }
    pulse(l, c);
}

static void end_pulses(ad_modbus_link *l, double now, bool all)
{
    mb_coil *coils[2] = {&l->reject, &l->good};
    for (int i = 0; i < 2; i++)
        if (coils[i]->on && (all || now >= coils[i]->off_at)) write_coil(l, coils[i], false);
}

static void poll_trigger(ad_modbus_link *l)
{
    const mb_settings *s = &l->set;
    uint8_t level = 0;
    int rc = s->input_kind == AD_MODBUS_COIL ? modbus_read_bits(l->ctx, s->input, 1, &level)
                                             : modbus_read_input_bits(l->ctx, s->input, 1, &level);
    double now = ad_now_sec();
    if (rc != 1) {
        request_failed(l, s->input_kind == AD_MODBUS_COIL ? "trigger coil" : "trigger discrete input", s->input,
                       "trigger input");
        return;
    }
    bool edge = l->input_known && level && !l->input_level;
    l->input_level = level;
    l->input_known = true;
    if (!edge) return;
    char part_id[16] = "";
    if (s->part_id_register >= 0) {
        uint16_t id = 0;
        if (modbus_read_registers(l->ctx, s->part_id_register, 1, &id) == 1)
            snprintf(part_id, sizeof part_id, "%u", (unsigned)id);
        else
            request_failed(l, "part id register", s->part_id_register, "part id register");
    }
    ad_trigger_fire(l->triggers, part_id[0] ? part_id : NULL, now);
}

/* Waits on the link's condition until `until` (monotonic seconds) at most;
 * lock held. */
static void wait_until(ad_modbus_link *l, double until)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double left = until - ad_now_sec();
    if (left <= 0) return;
    long long ns = ts.tv_nsec + (long long)(left * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(&l->wake, &l->lock, &ts);
}

/* Down: waits the backoff delay (close ends it at once), dropping the
 * verdicts that get too old meanwhile. Returns true when stopping. */
static bool wait_backoff(ad_modbus_link *l, ad_backoff *b)
{
    double until = ad_now_sec() + ad_backoff_next(b);
    pthread_mutex_lock(&l->lock);
    for (;;) {
        double now = ad_now_sec();
        drop_stale(l, now);
        if (l->stop || now >= until) break;
        double next = until;
        if (l->q_len) {
            double expiry = l->queue[l->q_head].t_queued + l->set.max_delay_ms / 1000.0;
            if (expiry < next) next = expiry;
        }
        wait_until(l, next + 0.001);
    }
    bool stop = l->stop;
    if (stop) { /* nothing more will be sent */
        atomic_fetch_add(&l->dropped, l->q_len);
        l->q_len = 0;
    }
    pthread_mutex_unlock(&l->lock);
    return stop;
}

/* Connected: one round of work. Returns true when the link is done. */
static bool serve(ad_modbus_link *l)
{
    mb_verdict batch[MB_QUEUE];
    int n = 0;
    bool heartbeat = false, level = false, stop;
    double stop_by;

    pthread_mutex_lock(&l->lock);
    for (;;) {
        double now = ad_now_sec();
        if (l->q_len || l->heartbeat_due) break;
        if (l->stop && !l->reject.on && !l->good.on) break;
        double next = now + 1.0;
        if (l->set.trigger && !l->stop && l->next_poll < next) next = l->next_poll;
        if (l->reject.on && l->reject.off_at < next) next = l->reject.off_at;
        if (l->good.on && l->good.off_at < next) next = l->good.off_at;
        if (l->stop && l->stop_by < next) next = l->stop_by;
        if (next <= now) break;
        wait_until(l, next);
        if (ad_now_sec() >= next) break;
    }
    for (; l->q_len; n++) {
        batch[n] = l->queue[l->q_head];
        l->q_head = (l->q_head + 1) % MB_QUEUE;
        l->q_len--;
    }
    if (l->heartbeat_due) heartbeat = true, level = l->heartbeat_level, l->heartbeat_due = false;
    stop = l->stop;
    stop_by = l->stop_by;
    pthread_mutex_unlock(&l->lock);

    for (int i = 0; i < n; i++) serve_verdict(l, &batch[i]);
    if (heartbeat) write_heartbeat(l, level);
    double now = ad_now_sec();
    end_pulses(l, now, stop && now >= stop_by);
    if (l->set.trigger && l->ctx && !stop && now >= l->next_poll) {
        poll_trigger(l);
        l->next_poll = now + l->set.poll_ms / 1000.0;
    }
    /* stopping: done once the queue is served and the pulses ended */
    return stop && (!l->ctx || (!l->reject.on && !l->good.on));
}

static void *link_main(void *arg)
{
    ad_modbus_link *l = arg;
    ad_thread_enter("modbus");
    ad_backoff backoff;
    ad_backoff_init(&backoff, MB_BACKOFF_MIN_S, MB_BACKOFF_MAX_S);
    for (;;) {
        if (!l->ctx) {
            pthread_mutex_lock(&l->lock);
            bool stop = l->stop;
            pthread_mutex_unlock(&l->lock);
            if (stop) break;
            char err[AD_ERRLEN];
            l->ctx = mb_connect(&l->set, err, sizeof err);
            if (l->ctx) {
                ad_backoff_reset(&backoff);
                on_connect(l);
            } else {
                went_down(l, "cannot reach", ad_error_reason(err));
                if (wait_backoff(l, &backoff)) break;
                continue;
            }
        }
        if (serve(l)) break;
    }
    if (l->ctx) {
        modbus_close(l->ctx);
        modbus_free(l->ctx);
        l->ctx = NULL;
    }
    atomic_store(&l->connected, false);
    return NULL;
}

/* ---- the calls (any daemon thread) ---- */

int ad_modbus_link_open(ad_modbus_link **out, const ad_config *cfg, ad_trigger_queue *triggers, char *err,
                        size_t errlen)
{
    *out = NULL;
    ad_modbus_link *l = ad_xcalloc(1, sizeof *l);
    settings_from_config(&l->set, cfg);
    if (!l->set.host[0]) {
        free(l);
        return ad_err(err, errlen, "modbus.host is empty, expected the Modbus TCP server's address");
    }
    if (l->set.trigger && !triggers) {
        free(l);
        return ad_err(err, errlen, "trigger.mode is modbus but the Modbus link was given no trigger queue");
    }
    l->triggers = l->set.trigger ? triggers : NULL;
    ad_fmt_trunc(l->peer, sizeof l->peer, "%s:%d unit %d", l->set.host, l->set.port, l->set.unit_id);
    l->reject = (mb_coil){.what = "reject coil", .addr = l->set.reject_coil};
    l->good = (mb_coil){.what = "good coil", .addr = l->set.good_coil};

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->lock, NULL);
    int rc = pthread_create(&l->tid, NULL, link_main, l);
    if (rc) {
        pthread_cond_destroy(&l->wake);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return ad_err(err, errlen, "cannot start the Modbus thread: %s", strerror(rc));
    }
    *out = l;
    return 0;
}

void ad_modbus_link_inspected(ad_modbus_link *l, const ad_verdict *v)
{
    const mb_settings *s = &l->set;
    bool coil = v->reject ? s->reject_coil >= 0 : s->good_coil >= 0;
    if (!coil && s->score_register < 0) return;
    pthread_mutex_lock(&l->lock);
    if (l->q_len == MB_QUEUE) {
        atomic_fetch_add(&l->dropped, 1);
    } else {
        l->queue[(l->q_head + l->q_len) % MB_QUEUE] =
            (mb_verdict){.reject = v->reject, .score = v->score, .t_queued = ad_now_sec()};
        l->q_len++;
        pthread_cond_signal(&l->wake);
    }
    pthread_mutex_unlock(&l->lock);
}

void ad_modbus_link_status(ad_modbus_link *l, const ad_line_status *s)
{
    if (l->set.heartbeat_coil < 0 || !s->camera_up) return;
    pthread_mutex_lock(&l->lock);
    l->heartbeat_level = !l->heartbeat_level;
    l->heartbeat_due = true;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
}

void ad_modbus_link_counts(ad_modbus_link *l, ad_link_counts *c)
{
    pthread_mutex_lock(&l->lock);
    c->queued = l->q_len;
    pthread_mutex_unlock(&l->lock);
    c->sent = atomic_load(&l->sent);
    c->dropped = atomic_load(&l->dropped);
    c->connected = atomic_load(&l->connected);
}

void ad_modbus_link_close(ad_modbus_link *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    l->stop_by = ad_now_sec() + MB_CLOSE_FLUSH_S;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->tid, NULL);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* --check-config: connects and reads each configured address once, so a
 * wrong address shows before the line runs. */
int ad_modbus_link_probe(const ad_config *cfg, char *err, size_t errlen)
{
    mb_settings s;
    settings_from_config(&s, cfg);
    char why[AD_ERRLEN];
    modbus_t *ctx = mb_connect(&s, why, sizeof why);
    if (!ctx)
        return ad_err(err, errlen, "Modbus server %s:%d unit %d is not reachable (%s); the link will keep retrying",
                      s.host, s.port, s.unit_id, ad_error_reason(why));
    struct {
        const char *key;
        int addr;
        int kind; /* 0 coil, 1 discrete input, 2 holding register */
    } reads[] = {
        {"outputs.modbus.reject_coil", s.reject_coil, 0},
        {"outputs.modbus.good_coil", s.good_coil, 0},
        {"outputs.modbus.heartbeat_coil", s.heartbeat_coil, 0},
        {"outputs.modbus.score_register", s.score_register, 2},
        {"trigger.modbus.input", s.trigger ? s.input : -1, s.input_kind == AD_MODBUS_COIL ? 0 : 1},
        {"trigger.modbus.part_id_register", s.trigger ? s.part_id_register : -1, 2},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof reads / sizeof reads[0] && rc == 0; i++) {
        if (reads[i].addr < 0) continue;
        uint8_t bit;
        uint16_t word;
        int got = reads[i].kind == 0   ? modbus_read_bits(ctx, reads[i].addr, 1, &bit)
                  : reads[i].kind == 1 ? modbus_read_input_bits(ctx, reads[i].addr, 1, &bit)
                                       : modbus_read_registers(ctx, reads[i].addr, 1, &word);
        if (got != 1)
            rc = ad_err(err, errlen, "Modbus server %s:%d unit %d answers, but reading %s %d failed: %s", s.host,
                        s.port, s.unit_id, reads[i].key, reads[i].addr, mb_reason(errno));
    }
    modbus_close(ctx);
    modbus_free(ctx);
    return rc;
}

/* line_io: every configured link behind one object, each daemon call fanned
 * out to them, and the reload that reopens only what changed. See line.h.
 *
 * Locking: the calls from the threads (inspected, recorded, status, minute,
 * counts) hold the read side of one rwlock while they walk the links, so
 * they overlap freely; the links themselves never block. A reload takes the
 * write side only to take a link out of its slot and to put one in: the
 * slow part (a link's close flushes for up to a second, an open may start a
 * thread) runs outside the lock, so inspection never waits for it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"
#include "line/line.h"

/* One kind of link: its functions through void * (wrappers below), and the
 * trigger mode it serves (its trigger source), or -1. */
typedef struct link_ops {
    const char *name;
    int trigger_mode;
    bool (*configured)(const ad_config *cfg);
    bool (*same_settings)(const ad_config *a, const ad_config *b);
    int (*open)(void **out, const ad_config *cfg, ad_trigger_queue *triggers, char *err, size_t errlen);
    void (*inspected)(void *l, const ad_verdict *v);    /* NULL: nothing to do */
    void (*recorded)(void *l, const ad_verdict *v);     /* NULL: nothing to do */
    void (*status)(void *l, const ad_line_status *s);   /* NULL: nothing to do */
    void (*minute)(void *l, const ad_minute_counts *c); /* NULL: nothing to do */
    void (*counts)(void *l, ad_link_counts *c);
    void (*close)(void *l);
    int (*probe)(const ad_config *cfg, char *err, size_t errlen); /* NULL: no peer to ask */
} link_ops;

/* Typed link functions behind void *: one wrapper per entry point. */
#define WRAP_OPEN(P)                                                                               \
    static int P##_open_any(void **out, const ad_config *cfg, ad_trigger_queue *triggers, char *err, \
                            size_t errlen)                                                         \
    {                                                                                              \
        P *l = NULL;                                                                               \
        int rc = P##_open(&l, cfg, triggers, err, errlen);                                         \
        *out = l;                                                                                  \
        return rc;                                                                                 \
    }
#define WRAP_CALL(P, fn, T) \
    static void P##_##fn##_any(void *l, T arg) { P##_##fn((P *)l, arg); }
#define WRAP_CLOSE(P) \
    static void P##_close_any(void *l) { P##_close((P *)l); }

WRAP_OPEN(ad_command_link)
WRAP_CALL(ad_command_link, recorded, const ad_verdict *)
WRAP_CALL(ad_command_link, counts, ad_link_counts *)
WRAP_CLOSE(ad_command_link)

/* modbus (modbus_link.c): pulses at inspection, nothing per record or minute */
WRAP_OPEN(ad_modbus_link)
WRAP_CALL(ad_modbus_link, inspected, const ad_verdict *)
WRAP_CALL(ad_modbus_link, status, const ad_line_status *)
WRAP_CALL(ad_modbus_link, counts, ad_link_counts *)
WRAP_CLOSE(ad_modbus_link)

/* mqtt (mqtt_link.c): good verdicts at inspection, rejects once recorded */
WRAP_OPEN(ad_mqtt_link)
WRAP_CALL(ad_mqtt_link, inspected, const ad_verdict *)
WRAP_CALL(ad_mqtt_link, recorded, const ad_verdict *)
WRAP_CALL(ad_mqtt_link, status, const ad_line_status *)
WRAP_CALL(ad_mqtt_link, minute, const ad_minute_counts *)
WRAP_CALL(ad_mqtt_link, counts, ad_link_counts *)
WRAP_CLOSE(ad_mqtt_link)

/* ---- LINKS PLUG IN HERE ----
 * A new link: its WRAP_* lines above (one per function it has) and a row
 * below; nothing else changes. mqtt_link.c and modbus_link.c each add theirs:
 *
 *   WRAP_OPEN(ad_mqtt_link) WRAP_CALL(ad_mqtt_link, inspected, const ad_verdict *) ...
 *   {"mqtt", AD_TRIGGER_MQTT, ad_mqtt_link_configured, ad_mqtt_link_same_settings,
 *    ad_mqtt_link_open_any, ad_mqtt_link_inspected_any, ...},
 */
static const link_ops LINKS[] = {
    {.name = "command", .trigger_mode = -1, .configured = ad_command_link_configured,
     .same_settings = ad_command_link_same_settings, .open = ad_command_link_open_any,
     .recorded = ad_command_link_recorded_any, .counts = ad_command_link_counts_any,
     .close = ad_command_link_close_any, .probe = ad_command_link_probe},
    {.name = "modbus", .trigger_mode = AD_TRIGGER_MODBUS, .configured = ad_modbus_link_configured,
     .same_settings = ad_modbus_link_same_settings, .open = ad_modbus_link_open_any,
     .inspected = ad_modbus_link_inspected_any, .status = ad_modbus_link_status_any,
     .counts = ad_modbus_link_counts_any, .close = ad_modbus_link_close_any, .probe = ad_modbus_link_probe},
    {.name = "mqtt", .trigger_mode = AD_TRIGGER_MQTT, .configured = ad_mqtt_link_configured,
     .same_settings = ad_mqtt_link_same_settings, .open = ad_mqtt_link_open_any,
     .inspected = ad_mqtt_link_inspected_any, .recorded = ad_mqtt_link_recorded_any,
     .status = ad_mqtt_link_status_any, .minute = ad_mqtt_link_minute_any,
     .counts = ad_mqtt_link_counts_any, .close = ad_mqtt_link_close_any, .probe = ad_mqtt_link_probe},
};
#define NLINKS (sizeof LINKS / sizeof LINKS[0])

struct ad_line_io {
    pthread_rwlock_t lock;
    void *obj[NLINKS];          /* NULL: not configured (or being reopened) */
    ad_config *cfg;             /* what the open links were opened with */
    ad_trigger_queue *triggers; /* the caller's */
};

static ad_trigger_queue *triggers_for(const link_ops *ops, const ad_config *cfg, ad_trigger_queue *q)
{
    return ops->trigger_mode >= 0 && (int)cfg->trigger.mode == ops->trigger_mode ? q : NULL;
}

static int open_link(const link_ops *ops, void **obj, const ad_config *cfg, ad_trigger_queue *q, char *err,
                     size_t errlen)
{
    char why[AD_ERRLEN];
    *obj = NULL;
    if (ops->open(obj, cfg, triggers_for(ops, cfg, q), why, sizeof why) != 0) {
        *obj = NULL;
        return ad_err(err, errlen, "%s output: %s", ops->name, why);
    }
    return 0;
}

int ad_line_io_open(ad_line_io **out, const ad_config *cfg, ad_trigger_queue *triggers, char *err,
                    size_t errlen)
{
    ad_line_io *io = ad_xcalloc(1, sizeof *io);
    pthread_rwlock_init(&io->lock, NULL);
    io->cfg = ad_xmalloc(sizeof *io->cfg);
    *io->cfg = *cfg;
    io->triggers = triggers;
    *out = NULL;
    for (size_t i = 0; i < NLINKS; i++) {
        if (!LINKS[i].configured(cfg)) continue;
        if (open_link(&LINKS[i], &io->obj[i], cfg, triggers, err, errlen) != 0) {
            ad_line_io_close(io);
            return -1;
        }
    }
    *out = io;
    return 0;
}

void ad_line_io_close(ad_line_io *io)
{
    if (!io) return;
    for (size_t i = 0; i < NLINKS; i++)
        if (io->obj[i]) LINKS[i].close(io->obj[i]);
    pthread_rwlock_destroy(&io->lock);
    free(io->cfg);
    free(io);
}

/* Calls entry point fn (when the link has it) of every open link. */
#define FAN_OUT(io, fn, arg)                                                      \
    do {                                                                          \
        pthread_rwlock_rdlock(&(io)->lock);                                       \
        for (size_t i = 0; i < NLINKS; i++)                                       \
            if ((io)->obj[i] && LINKS[i].fn) LINKS[i].fn((io)->obj[i], arg);      \
        pthread_rwlock_unlock(&(io)->lock);                                       \
    } while (0)

void ad_line_io_inspected(ad_line_io *io, const ad_verdict *v) { FAN_OUT(io, inspected, v); }
void ad_line_io_recorded(ad_line_io *io, const ad_verdict *v) { FAN_OUT(io, recorded, v); }
void ad_line_io_status(ad_line_io *io, const ad_line_status *s) { FAN_OUT(io, status, s); }
void ad_line_io_minute(ad_line_io *io, const ad_minute_counts *c) { FAN_OUT(io, minute, c); }

/* Whether the link must be closed and opened again for cfg b. */
static bool needs_reopen(const link_ops *ops, const ad_config *a, const ad_config *b)
{
    bool served_a = ops->trigger_mode >= 0 && (int)a->trigger.mode == ops->trigger_mode;
    bool served_b = ops->trigger_mode >= 0 && (int)b->trigger.mode == ops->trigger_mode;
    return served_a != served_b || !ops->same_settings(a, b);
}

static void put_link(ad_line_io *io, size_t i, void *obj)
{
    pthread_rwlock_wrlock(&io->lock);
    io->obj[i] = obj;
    pthread_rwlock_unlock(&io->lock);
}

int ad_line_io_reload(ad_line_io *io, const ad_config *cfg, char *err, size_t errlen)
{
    int rc = 0;
    char why[AD_ERRLEN];
    for (size_t i = 0; i < NLINKS; i++) {
        const link_ops *ops = &LINKS[i];
        bool want = ops->configured(cfg), have = io->obj[i] != NULL;
        if (have && want && !needs_reopen(ops, io->cfg, cfg)) continue;
        if (!have && !want) continue;
        void *old = io->obj[i];
        if (have) {
            put_link(io, i, NULL);
            ops->close(old);
        }
        if (!want) {
            ad_log(AD_LOG_INFO, "reload: %s output closed (no longer configured)", ops->name);
            continue;
        }
        void *nobj = NULL;
        if (open_link(ops, &nobj, cfg, io->triggers, why, sizeof why) == 0) {
            put_link(io, i, nobj);
            ad_log(AD_LOG_INFO, "reload: %s output %s with the new settings", ops->name,
                   have ? "reopened" : "opened");
            continue;
        }
        /* the new settings are refused: back to the old ones, which worked */
        if (!rc) ad_err(err, errlen, "%s", why);
        rc = -1;
        if (have && open_link(ops, &nobj, io->cfg, io->triggers, why, sizeof why) == 0) put_link(io, i, nobj);
        else if (have) ad_log(AD_LOG_ERR, "reload: %s output is off: %s", ops->name, why);
    }
    /* a link kept on its old settings is compared with them next time */
    if (rc == 0) *io->cfg = *cfg;
    return rc;
}

void ad_line_io_describe(ad_line_io *io, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    pthread_rwlock_rdlock(&io->lock);
    for (size_t i = 0; i < NLINKS && used < n; i++) {
        if (!io->obj[i]) continue;
        ad_link_counts c = {0};
        LINKS[i].counts(io->obj[i], &c);
        int w = snprintf(out + used, n - used, "%s%s %s, %ld sent, %ld queued, %ld dropped", used ? "; " : "",
                         LINKS[i].name, c.connected ? "up" : "down", c.sent, c.queued, c.dropped);
        if (w < 0) break;
        used += (size_t)w;
    }
    pthread_rwlock_unlock(&io->lock);
}

long ad_line_io_dropped(ad_line_io *io)
{
    long dropped = 0;
    pthread_rwlock_rdlock(&io->lock);
    for (size_t i = 0; i < NLINKS; i++) {
        if (!io->obj[i]) continue;
        ad_link_counts c = {0};
        LINKS[i].counts(io->obj[i], &c);
        dropped += c.dropped;
    }
    pthread_rwlock_unlock(&io->lock);
    return dropped;
}

int ad_line_io_probe(const ad_config *cfg, char *warnings, size_t n)
{
    int count = 0;
    size_t used = 0;
    char why[AD_ERRLEN];
    warnings[0] = '\0';
    for (size_t i = 0; i < NLINKS; i++) {
        if (!LINKS[i].probe || !LINKS[i].configured(cfg)) continue;
        if (LINKS[i].probe(cfg, why, sizeof why) == 0) continue;
        count++;
        if (used < n) {
            int w = snprintf(warnings + used, n - used, "%s%s output: %s", used ? "\n" : "", LINKS[i].name, why);
            if (w > 0) used += (size_t)w;
        }
    }
    return count;
}

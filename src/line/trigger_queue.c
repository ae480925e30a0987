/* The trigger queue: Modbus poller / MQTT subscriber -> inspection thread.
 * A ring of pending triggers under one mutex; fire never waits for space
 * (a full ring drops the new trigger and counts it). See line.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/util.h"
#include "line/line.h"

struct ad_trigger_queue {
    pthread_mutex_t lock;
    pthread_cond_t fired_cond;
    ad_trigger *ring;
    int capacity, head, count;
    bool closed;
    ad_trigger_counts counts;
};

ad_trigger_queue *ad_trigger_queue_create(int capacity)
{
    AD_ASSERT(capacity >= 1);
    ad_trigger_queue *q = ad_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->fired_cond, &ca);
    pthread_condattr_destroy(&ca);
    q->ring = ad_xcalloc((size_t)capacity, sizeof *q->ring);
    q->capacity = capacity;
    return q;
}

void ad_trigger_queue_destroy(ad_trigger_queue *q)
{
    if (!q) return;
    pthread_cond_destroy(&q->fired_cond);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
}

void ad_trigger_fire(ad_trigger_queue *q, const char *part_id, double t_fired)
{
    pthread_mutex_lock(&q->lock);
    q->counts.fired++;
    if (q->count == q->capacity || q->closed) {
        q->counts.dropped++;
    } else {
        ad_trigger *t = &q->ring[(q->head + q->count) % q->capacity];
        snprintf(t->part_id, sizeof t->part_id, "%.*s", (int)sizeof t->part_id - 1, part_id ? part_id : "");
        t->t_fired = t_fired;
        q->count++;
        pthread_cond_signal(&q->fired_cond);
    }
    pthread_mutex_unlock(&q->lock);
}

bool ad_trigger_take(ad_trigger_queue *q, ad_trigger *out, double timeout_s)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double whole = (double)(long)timeout_s;
    until.tv_sec += (time_t)whole;
    until.tv_nsec += (long)((timeout_s - whole) * 1e9);
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;

    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed && timeout_s > 0)
        if (pthread_cond_timedwait(&q->fired_cond, &q->lock, &until) != 0) break;
    bool got = q->count > 0 && !q->closed;
    if (got) {
        *out = q->ring[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        q->counts.taken++;
    }
    pthread_mutex_unlock(&q->lock);
    return got;
}

void ad_trigger_queue_resize(ad_trigger_queue *q, int capacity)
{
    AD_ASSERT(capacity >= 1);
    ad_trigger *ring = ad_xcalloc((size_t)capacity, sizeof *ring);
    pthread_mutex_lock(&q->lock);
    int keep = q->count < capacity ? q->count : capacity;
    for (int i = 0; i < keep; i++) ring[i] = q->ring[(q->head + i) % q->capacity];
    q->counts.dropped += q->count - keep;
    free(q->ring);
    q->ring = ring;
    q->capacity = capacity;
    q->head = 0;
    q->count = keep;
    pthread_mutex_unlock(&q->lock);
}

long ad_trigger_flush(ad_trigger_queue *q)
{
    pthread_mutex_lock(&q->lock);
    long n = q->count;
    q->counts.dropped += n;
    q->count = 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void ad_trigger_queue_counts(ad_trigger_queue *q, ad_trigger_counts *c)
{
    pthread_mutex_lock(&q->lock);
    *c = q->counts;
    pthread_mutex_unlock(&q->lock);
}

void ad_trigger_queue_close(ad_trigger_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->fired_cond);
    pthread_mutex_unlock(&q->lock);
}

/* The writer's queue: jobs (reject rows with their images, minute counters)
 * in order, and the orders to reopen the log or to stop. See
 * daemon_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "daemon_internal.h"

void ad_job_free(ad_job *j)
{
    ad_image_free(&j->frame);
    ad_image_free(&j->heat);
    free(j);
}

void ad_writer_queue_init(ad_writer_queue *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
}

void ad_writer_queue_destroy(ad_writer_queue *q)
{
    while (q->jobs.head) {
        ad_job *j = q->jobs.head;
        q->jobs.head = j->next;
        ad_job_free(j);
    }
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
}

void ad_writer_queue_push(ad_writer_queue *q, ad_job *j)
{
    pthread_mutex_lock(&q->lock);
    if (q->jobs.tail)
        q->jobs.tail->next = j;
    else
        q->jobs.head = j;
    q->jobs.tail = j;
    if (j->frame.px || j->heat.px) q->pending_images++;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

int ad_writer_queue_pending_images(ad_writer_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->pending_images;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void ad_writer_queue_reopen_store(ad_writer_queue *q, const ad_store_options *opt)
{
    pthread_mutex_lock(&q->lock);
    q->store = *opt;
    q->store_changed = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

void ad_writer_queue_stop(ad_writer_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

void ad_writer_queue_take(ad_writer_queue *q, ad_job_list *held, double timeout_s,
                          ad_writer_orders *orders)
{
    pthread_mutex_lock(&q->lock);
    if (!q->jobs.head && !held->head && !q->stop && !q->store_changed)
        ad_cond_wait_s(&q->wake, &q->lock, timeout_s);
    if (q->jobs.head) {
        if (held->tail)
            held->tail->next = q->jobs.head;
        else
            held->head = q->jobs.head;
        held->tail = q->jobs.tail;
        q->jobs.head = q->jobs.tail = NULL;
    }
    orders->stop = q->stop;
    orders->reopen = q->store_changed;
    if (orders->reopen) orders->store = q->store;
    q->store_changed = false;
    pthread_mutex_unlock(&q->lock);
}

void ad_writer_queue_images_done(ad_writer_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->pending_images--;
    pthread_mutex_unlock(&q->lock);
}

bool ad_writer_queue_empty(ad_writer_queue *q)
{
    pthread_mutex_lock(&q->lock);
    bool empty = q->jobs.head == NULL;
    pthread_mutex_unlock(&q->lock);
    return empty;
}

/* Debian's mosquitto broker, started by a test on a free loopback port, and
 * an MQTT client (libmosquitto, its own thread) that records every message
 * it receives. Used by test_mqtt_link and test_mqtt_daemon.
 *
 * The broker keeps its sessions in a persistence file in its folder, so a
 * client with a persistent session (clean_session false) gets the QoS 1
 * messages published while it was away, also across a broker restart: the
 * tests stop and start the broker under a running client and still see
 * every message the daemon published. Waits poll and fail only after
 * MQB_WAIT_S, a bound for a loaded machine, never a timing assertion. */
#ifndef ANOMALYD_MQTT_BROKER_H
#define ANOMALYD_MQTT_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MQB_WAIT_S 120.0

typedef struct mqb_broker {
    char dir[1024];               /* its folder: config, log, persistence, password file */
    char conf[1200], log[1200];
    int port;
    pid_t pid;                    /* -1 while stopped */
} mqb_broker;

/* How a broker is set up; every field may be NULL. */
typedef struct mqb_options {
    const char *user, *password;  /* both set: that account only (made with
                                     mosquitto_passwd -b); else anyone */
    const char *cafile, *certfile, *keyfile; /* PEM files: TLS only */
} mqb_options;

/* A broker on a free port of 127.0.0.1, up when this returns; opt NULL:
 * plain MQTT, anonymous clients welcome. */
mqb_broker *mqb_start(const mqb_options *opt);
/* Stops it with sig (SIGTERM: it saves its sessions; SIGKILL: a crash) and
 * waits for it to exit; the port stays the broker's for mqb_restart. */
void mqb_stop(mqb_broker *b, int sig);
/* Starts it again on the same port and folder; up when this returns. */
void mqb_restart(mqb_broker *b);
/* Stops it (if running), removes its folder and frees. NULL ok. */
void mqb_free(mqb_broker *b);
/* A port nothing listens on (for "broker down" cases). */
int mqb_free_port(void);

typedef struct mqb_msg {
    char *topic, *payload;        /* NUL-terminated copies */
    int len;
    bool retain;
} mqb_msg;

typedef struct mqb_client mqb_client;

/* Connects (and keeps reconnecting, every second) to the broker on port,
 * subscribes to filter with QoS 1 and records each message. With a
 * client_id the session is persistent (see above). Returns once subscribed.
 * (mqb_client_start_async returns at once: the broker may still be down.) */
mqb_client *mqb_client_start(int port, const char *client_id, const char *filter);
mqb_client *mqb_client_start_async(int port, const char *client_id, const char *filter);
/* Disconnects and frees; NULL ok. */
void mqb_client_free(mqb_client *c);
/* Publishes payload (len bytes) on topic with QoS 1; waits for the PUBACK. */
void mqb_publish(mqb_client *c, const char *topic, const void *payload, int len, bool retain);

/* Messages received on topic (exactly), in arrival order, copied: free with
 * mqb_msgs_free. */
mqb_msg *mqb_messages(mqb_client *c, const char *topic, size_t *n);
void mqb_msgs_free(mqb_msg *m, size_t n);
size_t mqb_count(mqb_client *c, const char *topic);
/* Waits until at least n messages arrived on topic; fails the test after
 * MQB_WAIT_S. */
void mqb_wait_count(mqb_client *c, const char *topic, size_t n);
/* Waits until the last message on topic has this payload. */
void mqb_wait_last(mqb_client *c, const char *topic, const char *payload);

/* The retained message of topic as a new client sees it ("" when none,
 * malloc'd): subscribes with a fresh session and returns what comes within
 * a second of the SUBACK. */
char *mqb_retained(int port, const char *topic);

#endif

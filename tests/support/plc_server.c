/* The PLC stand-in of plc_server.h: libmodbus serves the requests, one
 * thread selects over the listening socket and every connection. */
#include "plc_server.h"

#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "anomalyd/util.h"

#define PLC_CLIENTS 16
#define PLC_WRITES_MAX 100000

struct plc {
    int port;
    modbus_t *ctx;             /* the server thread's; set_socket per connection */
    modbus_mapping_t *map;
    int listen_fd;
    int clients[PLC_CLIENTS];
    pthread_t tid;
    bool running;
    atomic_int stop;

    pthread_mutex_t lock;      /* map, writes, counters, hang */
    plc_write *writes;
    int nwrites;
    long reads, connections;
    bool hang;
};

static int listen_on(plc *p, char *err, size_t errlen)
{
    p->ctx = modbus_new_tcp("127.0.0.1", p->port);
    if (!p->ctx) return ad_err(err, errlen, "modbus_new_tcp: %s", modbus_strerror(errno));
    p->listen_fd = modbus_tcp_listen(p->ctx, PLC_CLIENTS);
    if (p->listen_fd < 0) {
        ad_err(err, errlen, "cannot listen on 127.0.0.1:%d: %s", p->port, modbus_strerror(errno));
        modbus_free(p->ctx);
        p->ctx = NULL;
        return -1;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(p->listen_fd, (struct sockaddr *)&sa, &len) == 0) p->port = ntohs(sa.sin_port);
    for (int i = 0; i < PLC_CLIENTS; i++) p->clients[i] = -1;
    return 0;
}

static void record(plc *p, const uint8_t *q)
{
    int hl = modbus_get_header_length(p->ctx);
    int fc = q[hl], addr = q[hl + 1] << 8 | q[hl + 2];
    if (fc >= 1 && fc <= 4) {
        p->reads++;
        return;
    }
    int value;
    if (fc == 5) value = q[hl + 3] == 0xFF;
    else if (fc == 6) value = q[hl + 3] << 8 | q[hl + 4];
    else if (fc == 15) value = q[hl + 6] & 1;
    else if (fc == 16) value = q[hl + 6] << 8 | q[hl + 7];
    else return;
    if (p->nwrites < PLC_WRITES_MAX)
        p->writes[p->nwrites++] = (plc_write){.t = ad_now_sec(), .function = fc, .addr = addr, .value = value};
}

static void accept_client(plc *p)
{
    int fd = accept(p->listen_fd, NULL, NULL);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (int i = 0; i < PLC_CLIENTS; i++)
        if (p->clients[i] < 0) {
            p->clients[i] = fd;
            pthread_mutex_lock(&p->lock);
            p->connections++;
            pthread_mutex_unlock(&p->lock);
            return;
        }
    close(fd);
}

static void *serve(void *arg)
{
    plc *p = arg;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!atomic_load(&p->stop)) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p->listen_fd, &rd);
        int maxfd = p->listen_fd;
        for (int i = 0; i < PLC_CLIENTS; i++)
            if (p->clients[i] >= 0) {
                FD_SET(p->clients[i], &rd);
                if (p->clients[i] > maxfd) maxfd = p->clients[i];
            }
        struct timeval tv = {0, 20000};
        if (select(maxfd + 1, &rd, NULL, NULL, &tv) <= 0) continue;
        if (FD_ISSET(p->listen_fd, &rd)) accept_client(p);
        for (int i = 0; i < PLC_CLIENTS; i++) {
            int fd = p->clients[i];
            if (fd < 0 || !FD_ISSET(fd, &rd)) continue;
            modbus_set_socket(p->ctx, fd);
            int rc = modbus_receive(p->ctx, query);
            if (rc == -1) {
                close(fd);
                p->clients[i] = -1;
                continue;
            }
            if (rc == 0) continue;
            pthread_mutex_lock(&p->lock);
            record(p, query);
            if (!p->hang) modbus_reply(p->ctx, query, rc, p->map);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

static int run(plc *p)
{
    atomic_store(&p->stop, 0);
    if (pthread_create(&p->tid, NULL, serve, p)) return -1;
    p->running = true;
    return 0;
}

plc *plc_start(int port, char *err, size_t errlen)
{
    plc *p = ad_xcalloc(1, sizeof *p);
    p->port = port;
    p->listen_fd = -1;
    pthread_mutex_init(&p->lock, NULL);
    p->writes = ad_xcalloc(PLC_WRITES_MAX, sizeof *p->writes);
    p->map = modbus_mapping_new(PLC_SIZE, PLC_SIZE, PLC_SIZE, PLC_SIZE);
    if (!p->map || listen_on(p, err, errlen) || run(p)) {
        if (!p->map) ad_err(err, errlen, "modbus_mapping_new: %s", modbus_strerror(errno));
        plc_free(p);
        return NULL;
    }
    return p;
}

int plc_port(const plc *p) { return p->port; }

void plc_down(plc *p)
{
    if (!p->running) return;
    atomic_store(&p->stop, 1);
    pthread_join(p->tid, NULL);
    p->running = false;
    /* the listening socket first: a client reset by the close below and
     * reconnecting at once must be refused, not queued in its backlog */
    if (p->listen_fd >= 0) close(p->listen_fd);
    p->listen_fd = -1;
    for (int i = 0; i < PLC_CLIENTS; i++)
        if (p->clients[i] >= 0) close(p->clients[i]), p->clients[i] = -1;
    if (p->ctx) modbus_free(p->ctx);
    p->ctx = NULL;
}

int plc_restart(plc *p)
{
    char err[AD_ERRLEN];
    if (p->running) return 0;
    if (listen_on(p, err, sizeof err)) {
        fprintf(stderr, "plc_restart: %s\n", err);
        return -1;
    }
    return run(p);
}

void plc_free(plc *p)
{
    if (!p) return;
    plc_down(p);
    if (p->map) modbus_mapping_free(p->map);
    pthread_mutex_destroy(&p->lock);
    free(p->writes);
    free(p);
}

#define LOCKED(p, stmt)                \
    do {                               \
        pthread_mutex_lock(&(p)->lock);   \
        stmt;                          \
        pthread_mutex_unlock(&(p)->lock); \
    } while (0)

void plc_set_hang(plc *p, bool hang) { LOCKED(p, p->hang = hang); }
void plc_set_input(plc *p, int addr, bool on) { LOCKED(p, p->map->tab_input_bits[addr] = on); }
void plc_set_coil(plc *p, int addr, bool on) { LOCKED(p, p->map->tab_bits[addr] = on); }
void plc_set_register(plc *p, int addr, uint16_t value) { LOCKED(p, p->map->tab_registers[addr] = value); }

bool plc_coil(plc *p, int addr)
{
    bool on;
    LOCKED(p, on = p->map->tab_bits[addr]);
    return on;
}

uint16_t plc_register(plc *p, int addr)
{
    uint16_t v;
    LOCKED(p, v = p->map->tab_registers[addr]);
    return v;
}

long plc_reads(plc *p)
{
    long n;
    LOCKED(p, n = p->reads);
    return n;
}

long plc_connections(plc *p)
{
    long n;
    LOCKED(p, n = p->connections);
    return n;
}

int plc_writes(plc *p, int from, plc_write *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = from; i < p->nwrites && n < max; i++) out[n++] = p->writes[i];
    pthread_mutex_unlock(&p->lock);
    return n;
}

int plc_write_count(plc *p)
{
    int n;
    LOCKED(p, n = p->nwrites);
    return n;
}

/* A Modbus TCP server on 127.0.0.1, written with libmodbus, that stands in
 * for a PLC or a remote I/O module in the tests and the latency bench: it
 * serves coils, discrete inputs and holding registers (PLC_SIZE of each),
 * raises inputs when told, records every coil and register write with the
 * time it arrived, and can go down and come back on the same port, or hang
 * (take requests and never answer). Thread-safe; one server thread. */
#ifndef ANOMALYD_PLC_SERVER_H
#define ANOMALYD_PLC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLC_SIZE 256

typedef struct plc_write {
    double t;                  /* ad_now_sec() when the request arrived */
    int function;              /* 5 write coil, 6 write register (15, 16 for several) */
    int addr;
    int value;                 /* coil 0/1, register value */
} plc_write;

typedef struct plc plc;

/* Listens on 127.0.0.1:port (0 = a free port the system picks); NULL when
 * it cannot (err says why). */
plc *plc_start(int port, char *err, size_t errlen);
int plc_port(const plc *p);
/* Down: closes the listening socket and every connection; nothing answers
 * on the port until plc_restart. */
void plc_down(plc *p);
/* Back on the same port; 0 or -1. */
int plc_restart(plc *p);
/* Stops and frees; NULL ok. */
void plc_free(plc *p);

/* Hang: requests are read and never answered (a stuck device). */
void plc_set_hang(plc *p, bool hang);
void plc_set_input(plc *p, int addr, bool on);
void plc_set_coil(plc *p, int addr, bool on);
void plc_set_register(plc *p, int addr, uint16_t value);
bool plc_coil(plc *p, int addr);
uint16_t plc_register(plc *p, int addr);
/* Read requests answered so far (polls). */
long plc_reads(plc *p);
/* Connections accepted so far. */
long plc_connections(plc *p);
/* Writes recorded so far: copies those from index `from` on into out (at
 * most max) and returns how many it copied. */
int plc_writes(plc *p, int from, plc_write *out, int max);
/* Writes recorded so far. */
int plc_write_count(plc *p);

#endif

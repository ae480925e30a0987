/* Trigger-to-reject latency of the real anomalyd (bench/latency.sh drives
 * it; a benchmark, not a test).
 *
 *   line_latency ANOMALYD MODEL FRAMES N modbus|mqtt
 *
 * Starts the PLC stand-in of the tests (tests/support/plc_server.c, a
 * libmodbus server on a free loopback port) and, for mqtt, Debian's
 * mosquitto broker on another (tests/support/mqtt_broker.c); writes a
 * config for MODEL (its learned head beside it) with the default detector
 * recipe, camera = replay of the PNG folder FRAMES in a loop at 30 fps,
 * outputs.modbus.reject_coil 0, threshold 0 (every part is a reject) and
 * trigger.mode modbus (discrete input 0, polled every 10 ms) or mqtt;
 * starts ANOMALYD on it and, once its heartbeat coil toggles, fires 3
 * warm-up triggers and then N measured ones, each after a random 0..40 ms
 * (so triggers fall anywhere in the frame and poll periods):
 *   modbus: the input goes low until the daemon has polled it, then high;
 *           t0 = when the server raised it;
 *   mqtt:   a QoS 1 message on anomalyd/latency/trigger; t0 = just before
 *           the publish.
 * Latency = the time the server received the reject coil's "on" minus t0;
 * the pulse is let end before the next trigger. Prints one Markdown table
 * row (N, p50, p99, max, missed: no pulse within 30 s), then the daemon's
 * own per-minute lines (inspection time alone). The daemon's folder is
 * named on stderr. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"
#include "mqtt_broker.h"
#include "plc_server.h"

#define WARMUP 3
#define MISS_S 30.0
#define INPUT 0
#define REJECT_COIL 0
#define HEARTBEAT_COIL 1

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void die(const char *what)
{
    fprintf(stderr, "line_latency: %s\n", what);
    exit(1);
}

/* Waits until the daemon has read the PLC n more times; false after limit_s. */
static bool wait_polls(plc *p, int n, double limit_s)
{
    long reads = plc_reads(p);
    double end = ad_now_sec() + limit_s;
    while (plc_reads(p) < reads + n)
        if (ad_now_sec() > end) return false;
        else sleep_s(0.001);
    return true;
}

/* The first write of coil addr with value, at index >= from; its time, or
 * -1 after limit_s. */
static double wait_coil(plc *p, int from, int addr, int value, double limit_s)
{
    static plc_write w[4096];
    double end = ad_now_sec() + limit_s;
    for (;;) {
        int n = plc_writes(p, from, w, 4096);
        for (int i = 0; i < n; i++)
            if (w[i].function == 5 && w[i].addr == addr && w[i].value == value) return w[i].t;
        if (n == 4096) from += n;
        if (ad_now_sec() > end) return -1;
        sleep_s(0.0005);
    }
}

static pid_t start_daemon(const char *bin, const char *config, const char *log)
{
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        if (!f) _exit(127);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execl(bin, "anomalyd", "--config", config, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* What fires a trigger, and where its t0 is taken. */
typedef struct trigger_source {
    bool mqtt;
    plc *p;
    mqb_client *client;
} trigger_source;

/* One trigger; returns t0. */
static double fire(trigger_source *ts, ad_rng *rng)
{
    if (!ts->mqtt) {
        plc_set_input(ts->p, INPUT, false);
        if (!wait_polls(ts->p, 3, 60)) die("the daemon stopped polling the trigger input");
    }
    sleep_s(0.040 * ad_rng_uniform(rng));
    double t0 = ad_now_sec();
    if (ts->mqtt) mqb_publish(ts->client, "anomalyd/latency/trigger", "", 0, false);
    else plc_set_input(ts->p, INPUT, true);
    return t0;
}

/* The daemon's minute lines (inspection time alone), to stdout. */
static void print_minutes(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        if (strstr(line, "minute ")) printf("daemon: %s", line[0] == '<' ? line + 3 : line);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[5], "modbus") && strcmp(argv[5], "mqtt"))) {
        fprintf(stderr, "usage: line_latency ANOMALYD MODEL FRAMES N modbus|mqtt\n");
        return 2;
    }
    long n;
    if (ad_parse_long(argv[4], 1, 100000, &n)) die("N must be a number in 1..100000");
    char err[AD_ERRLEN];
    trigger_source ts = {.mqtt = strcmp(argv[5], "mqtt") == 0};
    plc *p = ts.p = plc_start(0, err, sizeof err);
    if (!p) die(err);
    mqb_broker *broker = ts.mqtt ? mqb_start(NULL) : NULL;

    char dir[] = "/tmp/line_latency.XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp failed");
    char config[256], log[256], trigger[256];
    snprintf(config, sizeof config, "%s/latency.yaml", dir);
    snprintf(log, sizeof log, "%s/anomalyd.log", dir);
    if (ts.mqtt)
        snprintf(trigger, sizeof trigger, "  mode: mqtt\nmqtt:\n  host: 127.0.0.1\n  port: %d\n", broker->port);
    else
        snprintf(trigger, sizeof trigger, "  mode: modbus\n  modbus:\n    input: %d\n    poll_ms: 10\n", INPUT);
    FILE *f = fopen(config, "w");
    if (!f) die("cannot write the config");
    /* the detector keys are left out: their defaults are the recipe */
    fprintf(f,
            "line:\n  name: latency\n"
            "camera:\n  source: replay\n  replay_dir: %s\n  replay_loop: true\n  fps: 30\n"
            "model:\n  path: %s\n"
            "threshold: 0\n"
            "reject_log:\n  database: %s/latency.db\n  image_dir: %s/images\n"
            "trigger:\n%s"
            "outputs:\n  modbus:\n    reject_coil: %d\n    heartbeat_coil: %d\n    pulse_ms: 50\n"
            "modbus:\n  host: 127.0.0.1\n  port: %d\n",
            argv[3], argv[2], dir, dir, trigger, REJECT_COIL, HEARTBEAT_COIL, plc_port(p));
    fclose(f);
    fprintf(stderr, "line_latency: config and daemon log in %s\n", dir);

    pid_t pid = start_daemon(argv[1], config, log);
    /* up: the heartbeat coil toggled twice (the camera streams) */
    if (wait_coil(p, 0, HEARTBEAT_COIL, 1, 300) < 0) die("the daemon's heartbeat never came (see its log)");
    int from = plc_write_count(p);
    if (wait_coil(p, from, HEARTBEAT_COIL, 0, 60) < 0) die("the heartbeat stopped (see the daemon log)");
    if (ts.mqtt) ts.client = mqb_client_start(broker->port, NULL, "anomalyd/latency/status");

    double *lat = ad_xcalloc((size_t)n, sizeof *lat);
    long got = 0, missed = 0;
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    for (long i = 0; i < n + WARMUP; i++) {
        from = plc_write_count(p);
        double t0 = fire(&ts, &rng);
        double t_on = wait_coil(p, from, REJECT_COIL, 1, MISS_S);
        if (t_on < 0) {
            if (i >= WARMUP) missed++;
            continue;
        }
        if (i >= WARMUP) lat[got++] = (t_on - t0) * 1000.0;
        wait_coil(p, from, REJECT_COIL, 0, MISS_S); /* the pulse ends before the next trigger */
    }
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    mqb_client_free(ts.client);
    mqb_free(broker);
    plc_free(p);

    if (got == 0) die("no trigger gave a reject pulse");
    ad_sort_doubles(lat, (size_t)got);
    printf("| %s -> reject coil on | %ld | %.0f | %.0f | %.0f | %ld |\n",
           ts.mqtt ? "MQTT trigger message" : "Modbus input edge", got, ad_quantile_sorted(lat, (size_t)got, 0.50),
           ad_quantile_sorted(lat, (size_t)got, 0.99), lat[got - 1], missed);
    print_minutes(log);
    free(lat);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

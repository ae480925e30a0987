/* Station I/O: what tells anomalyd when a part is there (triggers) and what
 * anomalyd tells the line about each part (outputs: Modbus TCP, MQTT, a
 * command per reject). The SQLite row stays the record; every output here is
 * best effort, never blocks a daemon thread, and counts what it drops.
 *
 * Who calls what (threads of src/daemon/daemon_internal.h):
 *
 *   Modbus poller / MQTT subscriber --ad_trigger_fire--> ad_trigger_queue --> inspection
 *   inspection --ad_line_io_inspected(verdict)----------> every link, at once, every part
 *   writer     --ad_line_io_recorded(verdict + paths)---> every link, per reject, once its
 *                                                         images are written or skipped
 *   main       --ad_line_io_status / _minute / _reload--> every link
 *
 * line_io.c opens every configured link and fans each call out to them.
 * A link (mqtt_link.c, modbus_link.c, command_link.c) is an object with the
 * lifecycle below; for a link PREFIX (ad_mqtt_link, ad_modbus_link):
 *
 *   int  PREFIX_open(PREFIX **out, const ad_config *cfg, ad_trigger_queue *triggers,
 *                    char *err, size_t errlen);
 *        triggers is NULL unless trigger.mode names this transport; then the
 *        link calls ad_trigger_fire for each trigger (rising edge, message).
 *        Returns -1 only for what will never work (bad settings); a peer that
 *        is down is not an error: the link reconnects with backoff, logs the
 *        loss once and the recovery once.
 *   void PREFIX_inspected(PREFIX *l, const ad_verdict *v);  inspection thread
 *   void PREFIX_recorded(PREFIX *l, const ad_verdict *v);   writer thread
 *   void PREFIX_status(PREFIX *l, const ad_line_status *s); main thread, 1/s
 *   void PREFIX_minute(PREFIX *l, const ad_minute_counts *c); main thread
 *   void PREFIX_counts(PREFIX *l, ad_link_counts *c);       main thread
 *   void PREFIX_close(PREFIX *l);     flushes what it can within a second; NULL ok
 *   int  PREFIX_probe(const ad_config *cfg, char *err, size_t errlen);
 *        --check-config: 0 when the peer answers, else -1 and a warning
 *        sentence naming host:port (called only when configured).
 *   bool PREFIX_configured(const ad_config *cfg);
 *        whether cfg asks for this link at all (an output or the trigger).
 *   bool PREFIX_same_settings(const ad_config *a, const ad_config *b);
 *        whether a link opened with a would behave as one opened with b
 *        (its own keys, field by field, and whether trigger.mode names it);
 *        SIGHUP reopens the link when this is false.
 *
 * Contract for every link:
 *   - inspected, recorded, status, minute and counts may run at the same time
 *     on different threads (inspection, writer, main): a link guards its own
 *     state. None of them may block: copy into a bounded queue served by the
 *     link's own thread (or its library's loop) and count a drop when full.
 *   - line_io never calls close while another call on the same link runs,
 *     and never calls anything after close.
 *   - the verdict pointer is valid during the call only: copy what you keep.
 *   - a link is opened only when PREFIX_configured says so; a link with
 *     nothing to do for a call (the command hook has no status) leaves that
 *     entry NULL in line_io.c's table instead of writing an empty function.
 *
 * Adding a link: write its functions with the signatures above, declare them
 * below next to the others, and add one row to the table marked
 * "LINKS PLUG IN HERE" in line_io.c (the function pointers). Nothing else
 * in the daemon changes. Link with its library in CMakeLists.txt
 * (pkg_check_modules + anomalyd_core's target_link_libraries). */
#ifndef ANOMALYD_LINE_H
#define ANOMALYD_LINE_H

#include <stdbool.h>
#include <stddef.h>

#include "anomalyd/config.h"
#include "anomalyd/image.h"
#include "anomalyd/store.h"

/* ---- one inspected part ----
 * Filled by the inspection thread; the writer adds the image paths of a
 * reject before ad_line_io_recorded. Plain data: copy by assignment. */
typedef struct ad_verdict {
    long part;                  /* part number since the daemon started, from 1 */
    char part_id[64];           /* the trigger's part id ("" when none) */
    char trigger[16];           /* "continuous", "part", "modbus", "mqtt" */
    double t_trigger;           /* ad_now_sec() when the trigger fired (frame arrival for continuous/part) */
    char ts[32];                /* UTC time of the frame, same text as the reject row's ts */
    char line[64];
    double score, threshold;
    bool reject;
    int box_x, box_y, box_w, box_h; long area;
    char image_path[1024], heatmap_path[1024]; /* "" for good parts and until the writer wrote them */
    char model_sha256[65];
} ad_verdict;

/* ---- triggers: sources -> inspection thread ----
 * A bounded FIFO of pending triggers. ad_trigger_fire never blocks (a short
 * mutex only): when the queue is full the trigger is dropped and counted.
 * The inspection thread takes one trigger per inspection. Thread-safe. */
typedef struct ad_trigger_queue ad_trigger_queue;

typedef struct ad_trigger {
    char part_id[64];           /* "" when the source gave none */
    double t_fired;             /* ad_now_sec() */
} ad_trigger;

typedef struct ad_trigger_counts {
    long fired, taken, dropped; /* dropped: queue full, or flushed unserved */
} ad_trigger_counts;

/* capacity >= 1 (trigger.queue). Free with ad_trigger_queue_destroy. */
ad_trigger_queue *ad_trigger_queue_create(int capacity);
void ad_trigger_queue_destroy(ad_trigger_queue *q);
/* From any thread; part_id may be NULL; longer ids are cut to 63 bytes.
 * t_fired: ad_now_sec() when the edge or message was seen. */
void ad_trigger_fire(ad_trigger_queue *q, const char *part_id, double t_fired);
/* The oldest pending trigger into *out: true; none within timeout_s
 * (0 = do not wait): false. */
bool ad_trigger_take(ad_trigger_queue *q, ad_trigger *out, double timeout_s);
/* SIGHUP's new trigger.queue: keeps the oldest pending triggers that fit,
 * drops (and counts) the rest. */
void ad_trigger_queue_resize(ad_trigger_queue *q, int capacity);
/* Drops every pending trigger (counted as dropped); returns how many. */
long ad_trigger_flush(ad_trigger_queue *q);
void ad_trigger_queue_counts(ad_trigger_queue *q, ad_trigger_counts *c);
/* Wakes a waiting take (stopping); later takes return false at once. */
void ad_trigger_queue_close(ad_trigger_queue *q);

/* ---- the part trigger: parts detected in the frames (part_trigger.c) ----
 * Every frame's ROI (as ad_preprocess_roi cuts it) is shrunk to a small gray
 * grid (trigger.part.grid cells on its long side, area averaged) and
 * compared cell by cell: a cell differs when its gray level moved by more
 * than trigger.part.pixel_delta. Three shares of differing cells drive it:
 *   present: against the empty-station reference (a part is there at
 *            present_percent, gone below absent_percent);
 *   motion:  against the previous frame (still below motion_percent);
 *   change:  against the frame last inspected (another part when it
 *            differs from it as much as a part from the empty station).
 * States: EMPTY -> (present) MOVING -> (settle_frames still frames in a
 * row: INSPECT that frame) RESTING. From RESTING, empty again re-arms
 * (EMPTY); motion makes it DISTURBED until still again: then it is another
 * part (INSPECT) when on the way the ROI differed from the part inspected
 * by present_percent or more, else the same part shaken (RESTING).
 * A part that leaves while MOVING was never at rest: never inspected,
 * counted as unsettled. The daemon runs it on every captured frame (the
 * capture thread), so no frame goes unseen while an inspection runs.
 * Not thread-safe: one thread owns it. */
typedef struct ad_part_detector ad_part_detector;

enum ad_part_state { AD_PART_EMPTY = 0, AD_PART_MOVING, AD_PART_RESTING, AD_PART_DISTURBED };

enum ad_part_event {
    AD_PART_NOTHING = 0,        /* no change worth telling */
    AD_PART_ARRIVED,            /* a part came into the empty ROI */
    AD_PART_INSPECT,            /* this frame: a new part's first frame at rest; inspect it */
    AD_PART_LEFT,               /* the inspected part left; re-armed */
    AD_PART_LEFT_UNSETTLED,     /* a part left without ever coming to rest: not inspected */
};

typedef struct ad_part_step {
    enum ad_part_event event;
    enum ad_part_state state;   /* after this frame */
    double present, motion, change; /* percent of cells differing (motion 100 on the first frame) */
} ad_part_step;

typedef struct ad_part_counts {
    long arrived, inspected, unsettled, frames;
} ad_part_counts;

/* The ROI as the part trigger sees it: gray, shrunk to the grid (long side
 * `grid` cells, the other in proportion, at least 1). The one policy, used
 * by the detector and by anomalyctl capture --empty. dst allocated. */
int ad_part_grid(const ad_image *roi, int grid, ad_image *dst, char *err, size_t errlen);
/* Percent of cells of a and b (same size, gray) differing by more than delta. */
double ad_part_differ_percent(const ad_image *a, const ad_image *b, int delta);

/* From cfg's trigger.* and the reference ROI image (any size, gray or RGB).
 * Owns a copy; free with ad_part_detector_close (NULL ok). */
int ad_part_detector_open(ad_part_detector **out, const ad_config *cfg, const ad_image *reference,
                          char *err, size_t errlen);
/* Reads trigger.part.reference (PNG) and opens; errors name the file and
 * say how to record it. */
int ad_part_detector_load(ad_part_detector **out, const ad_config *cfg, char *err, size_t errlen);
/* One frame's ROI. -1 when it cannot be compared (a ROI of another size
 * than the reference): err says so, the state is unchanged. */
int ad_part_detector_feed(ad_part_detector *d, const ad_image *roi, ad_part_step *out, char *err,
                          size_t errlen);
void ad_part_detector_counts(const ad_part_detector *d, ad_part_counts *c);
void ad_part_detector_close(ad_part_detector *d);

/* ---- the daemon's status, once a second (MQTT status, Modbus heartbeat) ---- */
typedef struct ad_line_status {
    bool camera_up;
    long inspected, rejects, parts;
    double last_score, threshold;
    const char *state;          /* "running", "waiting for camera", ...; valid during the call */
} ad_line_status;

/* ---- what a link tells the status line and the logs ---- */
typedef struct ad_link_counts {
    long sent, queued, dropped;
    bool connected;
} ad_link_counts;

/* ---- the links ---- */
typedef struct ad_mqtt_link ad_mqtt_link;       /* mqtt_link.c: mqtt.*, outputs.mqtt.*, trigger via MQTT */
int  ad_mqtt_link_open(ad_mqtt_link **out, const ad_config *cfg, ad_trigger_queue *triggers,
                       char *err, size_t errlen);
void ad_mqtt_link_inspected(ad_mqtt_link *l, const ad_verdict *v);
void ad_mqtt_link_recorded(ad_mqtt_link *l, const ad_verdict *v);
void ad_mqtt_link_status(ad_mqtt_link *l, const ad_line_status *s);
void ad_mqtt_link_minute(ad_mqtt_link *l, const ad_minute_counts *c);
void ad_mqtt_link_counts(ad_mqtt_link *l, ad_link_counts *c);
void ad_mqtt_link_close(ad_mqtt_link *l);
int  ad_mqtt_link_probe(const ad_config *cfg, char *err, size_t errlen);
bool ad_mqtt_link_configured(const ad_config *cfg);
bool ad_mqtt_link_same_settings(const ad_config *a, const ad_config *b);
/* The part id of an MQTT trigger payload (bytes from the network; fuzzed by
 * tests/fuzz/fuzz_mqtt_trigger.c) into id, "" for none: an empty payload,
 * plain text, or a JSON object with an optional "part_id" (string or
 * integer); at most 63 bytes of UTF-8 without control characters. Returns
 * NULL, or why the payload is refused (a fixed text; detail says more). */
const char *ad_mqtt_trigger_part_id(const char *payload, size_t len, char id[64], char *detail, size_t dn);

/* modbus_link.c: modbus.*, outputs.modbus.*, trigger.modbus.* — the score
 * register and the reject or good coil pulse at inspection, the heartbeat
 * coil from status; nothing per record or minute (no recorded, no minute). */
typedef struct ad_modbus_link ad_modbus_link;
int  ad_modbus_link_open(ad_modbus_link **out, const ad_config *cfg, ad_trigger_queue *triggers,
                         char *err, size_t errlen);
void ad_modbus_link_inspected(ad_modbus_link *l, const ad_verdict *v);
void ad_modbus_link_status(ad_modbus_link *l, const ad_line_status *s);
void ad_modbus_link_counts(ad_modbus_link *l, ad_link_counts *c);
void ad_modbus_link_close(ad_modbus_link *l);
int  ad_modbus_link_probe(const ad_config *cfg, char *err, size_t errlen);
bool ad_modbus_link_configured(const ad_config *cfg);
bool ad_modbus_link_same_settings(const ad_config *a, const ad_config *b);

/* command_link.c: outputs.command.* — runs on_reject per recorded reject
 * from its own thread (bounded queue), with the verdict in ANOMALYD_*
 * environment variables; kills it after timeout_ms (SIGTERM, then SIGKILL
 * to its whole process group). No trigger and no status: triggers is
 * ignored; probe checks that the program is there and executable. */
typedef struct ad_command_link ad_command_link;
int  ad_command_link_open(ad_command_link **out, const ad_config *cfg, ad_trigger_queue *triggers,
                          char *err, size_t errlen);
void ad_command_link_recorded(ad_command_link *l, const ad_verdict *v);
void ad_command_link_counts(ad_command_link *l, ad_link_counts *c);
void ad_command_link_close(ad_command_link *l);
int  ad_command_link_probe(const ad_config *cfg, char *err, size_t errlen);
bool ad_command_link_configured(const ad_config *cfg);
bool ad_command_link_same_settings(const ad_config *a, const ad_config *b);

/* ---- line_io: every configured link behind one object (line_io.c) ----
 * Thread-safe in the sense of the contract above: inspected (inspection
 * thread), recorded (writer thread), status/minute/reload/counts (main
 * thread) may overlap; reload closes and reopens only the links whose
 * settings changed, while the other calls wait for it. */
typedef struct ad_line_io ad_line_io;

/* Opens every link cfg configures. triggers (owned by the caller, must
 * outlive the object) goes to the link named by trigger.mode. A link that
 * fails to open fails the whole open (-1, err names the link). */
int  ad_line_io_open(ad_line_io **out, const ad_config *cfg, ad_trigger_queue *triggers,
                     char *err, size_t errlen);
void ad_line_io_inspected(ad_line_io *io, const ad_verdict *v);
void ad_line_io_recorded(ad_line_io *io, const ad_verdict *v);
void ad_line_io_status(ad_line_io *io, const ad_line_status *s);
void ad_line_io_minute(ad_line_io *io, const ad_minute_counts *c);
/* SIGHUP: closes and reopens the links whose settings differ in cfg (and the
 * one that gains or loses the trigger). On error (a link refused its new
 * settings) that link keeps running with its old ones: -1, err says which. */
int  ad_line_io_reload(ad_line_io *io, const ad_config *cfg, char *err, size_t errlen);
/* The links' counts as text for the status line and logs, e.g.
 * "mqtt up 12 sent 0 dropped, command 3 run 0 dropped"; "" with no link. */
void ad_line_io_describe(ad_line_io *io, char *out, size_t n);
/* Sum of every link's dropped count (for the minute log line). */
long ad_line_io_dropped(ad_line_io *io);
void ad_line_io_close(ad_line_io *io);  /* NULL ok */
/* --check-config: asks every configured link's probe; writes one warning
 * line per unreachable peer into warnings (newline separated) and returns
 * how many. */
int  ad_line_io_probe(const ad_config *cfg, char *warnings, size_t n);

#endif

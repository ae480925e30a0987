/* The one table of config keys: names, types, where they live in ad_config,
 * defaults, ranges and documentation. Parsing, validation, printing, the
 * reference YAML and the docs all read it, so they cannot drift apart.
 *
 * Keys of one section must be contiguous (the printer opens a section once).
 * Detector and train defaults are starting values; tune them here. */
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "anomalyd/config.h"

#define FIELD(f) .offset = offsetof(ad_config, f), .size = sizeof(((ad_config *)0)->f)

#define STR(nm, f, dflt, fl, dc) \
    {.name = nm, .type = AD_CFG_STRING, FIELD(f), .def = dflt, .range = "", .flags = fl, .doc = dc}
#define PATHK(nm, f, dflt, ex, fl, dc) \
    {.name = nm, .type = AD_CFG_PATH, FIELD(f), .def = dflt, .example = ex, .range = "", .flags = fl, .doc = dc}
/* Integer in lo..hi; the range text is the literal bounds, so it cannot drift. */
#define INT(nm, f, dflt, lo, hi, dc) \
    {.name = nm, .type = AD_CFG_INT, FIELD(f), .def = #dflt, .min = lo, .max = hi, .range = #lo ".." #hi, .doc = dc}
#define INT_GE(nm, f, dflt, lo, dc) \
    {.name = nm, .type = AD_CFG_INT, FIELD(f), .def = #dflt, .min = lo, .max = INT_MAX, .range = ">= " #lo, .doc = dc}
#define FLT(nm, f, dflt, lo, hi, dc) \
    {.name = nm, .type = AD_CFG_FLOAT, FIELD(f), .def = #dflt, .min = lo, .max = hi, .range = #lo ".." #hi, .doc = dc}
#define FLT_GE(nm, f, dflt, lo, dc) \
    {.name = nm, .type = AD_CFG_FLOAT, FIELD(f), .def = #dflt, .min = lo, .max = DBL_MAX, .range = ">= " #lo, .doc = dc}
#define BOOLK(nm, f, dflt, dc) \
    {.name = nm, .type = AD_CFG_BOOL, FIELD(f), .def = #dflt, .range = "", .doc = dc}
#define ENUMK(nm, f, dflt, names, values, dc)                                             \
    {.name = nm, .type = AD_CFG_ENUM, FIELD(f), .def = dflt, .range = "", .choices = names, \
     .choice_values = values, .doc = dc}

static const char *const source_names[] = {"v4l2", "replay", NULL};
static const int source_values[] = {AD_SOURCE_V4L2, AD_SOURCE_REPLAY};
static const char *const pixfmt_names[] = {"auto", "GREY", "RGB24", NULL};
static const int pixfmt_values[] = {AD_PIXFMT_AUTO, AD_PIXFMT_GREY, AD_PIXFMT_RGB24};
static const char *const color_names[] = {"gray", "rgb", NULL};
static const int color_values[] = {AD_COLOR_GRAY, AD_COLOR_RGB};
static const char *const map_names[] = {"diff", "head", "both", NULL};
static const int map_values[] = {AD_MAP_DIFF, AD_MAP_HEAD, AD_MAP_BOTH};
static const char *const mirror_names[] = {"none", "lr", "all", NULL};
static const int mirror_values[] = {1, 2, 4}; /* head passes */
static const char *const score_names[] = {"max", "topk", NULL};
static const int score_values[] = {AD_SCORE_MAX, AD_SCORE_TOPK};
static const char *const schedule_names[] = {"linear", "cosine", NULL};
static const int schedule_values[] = {AD_SCHEDULE_LINEAR, AD_SCHEDULE_COSINE};
static const char *const trigger_names[] = {"continuous", "part", "modbus", "mqtt", NULL};
static const int trigger_values[] = {AD_TRIGGER_CONTINUOUS, AD_TRIGGER_PART, AD_TRIGGER_MODBUS, AD_TRIGGER_MQTT};
static const char *const mqtt_verdict_names[] = {"all", "rejects", "none", NULL};
static const int mqtt_verdict_values[] = {AD_MQTT_VERDICTS_ALL, AD_MQTT_VERDICTS_REJECTS, AD_MQTT_VERDICTS_NONE};
static const char *const modbus_bit_names[] = {"discrete_input", "coil", NULL};
static const int modbus_bit_values[] = {AD_MODBUS_DISCRETE_INPUT, AD_MODBUS_COIL};

/* The parser stores enums through an int pointer. */
_Static_assert(sizeof(enum ad_source_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_pixfmt) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_color) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_map_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_score_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_schedule) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_trigger_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_modbus_bit_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ad_mqtt_verdicts) == sizeof(int), "enum size");

static const ad_config_key keys[] = {
    {.name = "line.name", .type = AD_CFG_STRING, FIELD(line.name), .def = NULL, .example = "line3",
     .range = "", .flags = AD_CFG_NAME_CHARS | AD_CFG_DERIVED,
     .doc = "Line/station name used in reject rows, file names and status; "
            "default: the config file name without .yaml"},

    ENUMK("camera.source", camera.source, "v4l2", source_names, source_values,
          "Where frames come from: a V4L2 camera, or a folder of PNG frames (tests, demos)"),
    STR("camera.device", camera.device, "/dev/video0", 0, "V4L2 device node (source: v4l2)"),
    PATHK("camera.replay_dir", camera.replay_dir, "", NULL, 0,
          "Folder of PNG frames played in name order; required when source is replay"),
    BOOLK("camera.replay_loop", camera.replay_loop, false,
          "Start the replay folder again at its end instead of stopping"),
    INT("camera.width", camera.width, 640, 16, 8192, "Requested capture width, pixels"),
    INT("camera.height", camera.height, 480, 16, 8192, "Requested capture height, pixels"),
    ENUMK("camera.pixel_format", camera.pixel_format, "auto", pixfmt_names, pixfmt_values,
          "Capture pixel format; auto lets libv4l2 convert from what the camera offers"),
    FLT("camera.fps", camera.fps, 30, 0.1, 1000, "Requested frame rate (replay: playback rate), frames/s"),
    INT("camera.roi.x", camera.roi_x, 0, 0, 8192, "Left edge of the inspected region, frame pixels"),
    INT("camera.roi.y", camera.roi_y, 0, 0, 8192, "Top edge of the inspected region, frame pixels"),
    INT("camera.roi.width", camera.roi_width, 0, 0, 8192,
        "Width of the inspected region, pixels; 0 = whole frame width"),
    INT("camera.roi.height", camera.roi_height, 0, 0, 8192,
        "Height of the inspected region, pixels; 0 = whole frame height"),
    INT("camera.buffers", camera.buffers, 4, 4, 32, "V4L2 mmap buffers queued to the driver"),
    INT("camera.timeout_ms", camera.timeout_ms, 2000, 10, 60000,
        "Wait for a frame before counting it missing and retrying, milliseconds"),
    {.name = "camera.controls", .type = AD_CFG_CONTROLS, .offset = offsetof(ad_config, camera.controls),
     .size = AD_MAX_CONTROLS, .count_offset = offsetof(ad_config, camera.ncontrols), .def = "{}",
     .example = "{auto_exposure: manual_mode, exposure_time_absolute: 250}", .range = "",
     .doc = "V4L2 controls set at every open and read back, by the names v4l2-ctl --list-ctrls prints: "
            "an integer, true/false, or a menu item's index or name. Turn automatic exposure, gain, "
            "white balance and focus off (anomalyctl init does): they change the picture during a "
            "shift, and a model trained on one exposure flags the next as defective"},

    PATHK("model.path", model.path, NULL, "/var/lib/anomalyd/line3.safetensors", AD_CFG_REQUIRED,
          "Model file (.safetensors) written by anomalyctl train"),
    ENUMK("model.color", model.color, "gray", color_names, color_values,
          "Channels the model sees: gray (1) or rgb (3)"),
    INT("model.input_width", model.input_width, 128, 16, 4096,
        "The ROI is resized to this width before inspection, pixels (the recipe: 128, measured "
        "more accurate than 256 and 4x faster, docs/accuracy.md)"),
    INT("model.input_height", model.input_height, 128, 16, 4096,
        "The ROI is resized to this height before inspection, pixels"),
    INT("model.base_channels", model.base_channels, 32, 4, 256,
        "UNet channels at full resolution (training a new model)"),
    {.name = "model.channel_mult", .type = AD_CFG_INT_LIST, .offset = offsetof(ad_config, model.channel_mult),
     .size = AD_MAX_LEVELS, .count_offset = offsetof(ad_config, model.num_levels), .def = "[1, 2, 2]",
     .min = 1, .max = 8, .min_count = 1, .range = "1..8",
     .doc = "Channel multiplier per UNet level, one entry per resolution (training a new model)"},
    INT("model.res_blocks", model.res_blocks, 1, 1, 4, "Residual blocks per UNet level (training a new model)"),
    INT("model.groups", model.groups, 8, 1, 64,
        "GroupNorm groups; must divide every channel count (training a new model)"),

    FLT("detector.noise_level", detector.noise_level, 0.2, 0.001, 1,
        "Fraction of the diffusion steps the frame is noised to (t0 = noise_level * T)"),
    INT("detector.steps", detector.steps, 1, 1, 100,
        "Deterministic DDIM steps back to t=0; 1 = a single x0 prediction"),
    FLT("detector.guidance", detector.guidance, 0, 0, 20,
        "Weight pulling the reconstruction toward the input (DDAD-style); 0 = off"),
    INT("detector.draws", detector.draws, 1, 1, 16, "Noise draws averaged per frame"),
    ENUMK("detector.map", detector.map, "head", map_names, map_values,
          "Anomaly map: learned head on frame + reconstruction, pixel difference, or both"),
    BOOLK("detector.normalize", detector.normalize, false,
          "Map minus its per-pixel mean over good images, over their spread, read from "
          "NAME.stats.safetensors beside the model (anomalyctl train writes it)"),
    ENUMK("detector.mirror", detector.mirror, "all", mirror_names, mirror_values,
          "The head also reads the mirrored frame and reconstruction (lr: left-right; all: also "
          "upside down and both) and the maps are averaged; each extra pass costs one head pass "
          "(about 28 ms at 128x128 on 2 cores)"),
    FLT("detector.sigma", detector.sigma, 0, 0, 32,
        "Gaussian smoothing of the map, pixels at input size; 0 = off (the learned head's map is "
        "scored as it is; smooth the noisier map: diff)"),
    ENUMK("detector.score", detector.score, "max", score_names, score_values,
          "Image score: the map's maximum, or the mean of its top topk_percent"),
    FLT("detector.topk_percent", detector.topk_percent, 1, 0.001, 100,
        "Percent of map pixels averaged when score is topk"),
    FLT_GE("detector.pixel_threshold", detector.pixel_threshold, 0, 0,
           "Map value that marks a pixel defective for the box; 0 = same as threshold"),
    INT("detector.threads", detector.threads, 2, 1, 256, "Compute threads for inspection"),

    {.name = "threshold", .type = AD_CFG_FLOAT, FIELD(threshold), .def = NULL, .example = "0.5",
     .min = 0, .max = DBL_MAX, .range = ">= 0", .flags = AD_CFG_REQUIRED,
     .doc = "Image score above this rejects the part; anomalyctl calibrate suggests one"},

    PATHK("reject_log.database", reject_log.database, "", NULL, AD_CFG_DERIVED,
          "SQLite reject log; empty = /var/lib/anomalyd/<line.name>.db"),
    PATHK("reject_log.image_dir", reject_log.image_dir, "", NULL, AD_CFG_DERIVED,
          "Folder of reject PNGs; empty = /var/lib/anomalyd/<line.name>-images"),
    BOOLK("reject_log.save_images", reject_log.save_images, true,
          "Save the ROI and a heat-map overlay PNG per reject"),
    INT("reject_log.retention_days", reject_log.retention_days, 30, 0, 36500,
        "Delete saved images older than this, days; 0 = keep forever"),
    INT("reject_log.max_megabytes", reject_log.max_megabytes, 2048, 0, 10000000,
        "Cap on the image folder size, MiB (oldest deleted first); 0 = no cap"),

    /* Station I/O (src/line/line.h). Keys of one section stay together:
     * trigger.modbus.* after trigger.part.*, outputs.mqtt.* and
     * outputs.modbus.* after outputs.command.*. */
    ENUMK("trigger.mode", trigger.mode, "continuous", trigger_names, trigger_values,
          "Which frames are inspected: every frame (continuous), once per part seen at rest (part), "
          "once per Modbus input edge (modbus) or MQTT message (mqtt)"),
    INT("trigger.delay_ms", trigger.delay_ms, 0, 0, 10000,
        "modbus, mqtt: inspect the first frame captured this long after the trigger, milliseconds"),
    INT("trigger.queue", trigger.queue, 8, 1, 1024,
        "modbus, mqtt: triggers that may wait for their frame; more are dropped and counted"),
    INT("trigger.settle_frames", trigger.settle_frames, 3, 1, 1000,
        "part: frames in a row with motion below trigger.part.motion_percent before the part counts as at rest"),
    PATHK("trigger.part.reference", trigger.part.reference, "", NULL, AD_CFG_DERIVED,
          "part: the empty station (ROI PNG) written by anomalyctl capture --empty; "
          "empty = /var/lib/anomalyd/<line.name>-empty.png"),
    INT("trigger.part.grid", trigger.part.grid, 32, 4, 256,
        "part: the ROI is compared in gray at this many cells on its long side"),
    INT("trigger.part.pixel_delta", trigger.part.pixel_delta, 20, 1, 255,
        "part: a cell differs when its gray level changed by more than this (above the camera's noise)"),
    FLT("trigger.part.present_percent", trigger.part.present_percent, 10, 0.1, 100,
        "part: percent of cells differing from the empty reference that means a part is there"),
    FLT("trigger.part.absent_percent", trigger.part.absent_percent, 3, 0, 100,
        "part: below this percent of cells differing from the reference the station is empty again"),
    FLT("trigger.part.motion_percent", trigger.part.motion_percent, 1, 0, 100,
        "part: percent of cells differing from the previous frame below which the part is still"),
    INT("trigger.modbus.input", trigger.modbus.input, 0, 0, 65535,
        "modbus: address (0-based) of the discrete input or coil whose rising edge triggers an inspection"),
    ENUMK("trigger.modbus.kind", trigger.modbus.kind, "discrete_input", modbus_bit_names, modbus_bit_values,
          "modbus: what trigger.modbus.input addresses: a discrete input (photo-eye on remote I/O) or a coil (PLC bit)"),
    INT("trigger.modbus.poll_ms", trigger.modbus.poll_ms, 10, 1, 10000,
        "modbus: read the trigger input this often, milliseconds (an edge is seen up to this late)"),
    INT("trigger.modbus.part_id_register", trigger.modbus.part_id_register, -1, -1, 65535,
        "modbus: holding register read at each rising edge, its value in decimal becomes the part id; -1 = none"),

    {.name = "outputs.command.on_reject", .type = AD_CFG_STRING_LIST, FIELD(outputs.command.on_reject),
     .count_offset = offsetof(ad_config, outputs.command.argc), .def = "[]", .min = 0, .max = 64, .min_count = 0,
     .range = "", .doc = "Program and arguments run once per recorded reject (an argv list, never a shell "
                         "string), the verdict in ANOMALYD_* environment variables; [] = none"},
    INT("outputs.command.timeout_ms", outputs.command.timeout_ms, 5000, 10, 600000,
        "A run still going after this is stopped (SIGTERM, 1 s later SIGKILL to its process group), milliseconds"),
    INT("outputs.command.queue", outputs.command.queue, 16, 1, 1024,
        "Rejects that may wait for the command; more are dropped and counted"),
    ENUMK("outputs.mqtt.verdicts", outputs.mqtt.verdicts, "all", mqtt_verdict_names, mqtt_verdict_values,
          "Parts that get a JSON verdict on <mqtt.prefix>/<line.name>/verdict (QoS 1): every part, "
          "rejects only (sent once the reject's images are written), or none"),
    BOOLK("outputs.mqtt.counters", outputs.mqtt.counters, true,
          "Publish the per-minute counters on <mqtt.prefix>/<line.name>/counters (QoS 1)"),
    INT("outputs.mqtt.queue", outputs.mqtt.queue, 1000, 1, 1000000,
        "Verdict and counter messages kept while the broker is away; beyond it the oldest are dropped "
        "and counted (the reject log keeps every row)"),
    INT("outputs.modbus.reject_coil", outputs.modbus.reject_coil, -1, -1, 65535,
        "Coil (0-based address on modbus.host) pulsed for pulse_ms per reject, at inspection; "
        "a reject while it is on keeps it on until pulse_ms after the latest; -1 = off"),
    INT("outputs.modbus.good_coil", outputs.modbus.good_coil, -1, -1, 65535,
        "Coil pulsed for pulse_ms per good part; -1 = off"),
    INT("outputs.modbus.heartbeat_coil", outputs.modbus.heartbeat_coil, -1, -1, 65535,
        "Coil toggled once a second while the camera is up (it stops while the camera is down); -1 = off"),
    INT("outputs.modbus.score_register", outputs.modbus.score_register, -1, -1, 65535,
        "Holding register given each part's score x score_scale, rounded and clamped to 0..65535, "
        "written before the coil pulse; -1 = off"),
    {.name = "outputs.modbus.score_scale", .type = AD_CFG_FLOAT, FIELD(outputs.modbus.score_scale), .def = "1000",
     .min = 0, .max = 1e9, .range = "(0, 1e9]", .flags = AD_CFG_MIN_EXCLUSIVE,
     .doc = "Multiplier of the score written to outputs.modbus.score_register"},
    INT("outputs.modbus.pulse_ms", outputs.modbus.pulse_ms, 200, 10, 60000,
        "Length of a reject or good coil pulse, milliseconds"),
    INT("outputs.modbus.max_delay_ms", outputs.modbus.max_delay_ms, 1000, 10, 60000,
        "A pulse not sent this long after its verdict (server down or slow) is dropped and counted, "
        "so a late pulse never rejects the wrong part, milliseconds"),

    STR("modbus.host", modbus.host, "", 0,
        "Modbus TCP server (PLC or remote I/O), name or address, for outputs.modbus.* and trigger.mode modbus; "
        "empty = none"),
    INT("modbus.port", modbus.port, 502, 1, 65535, "Modbus TCP port of modbus.host"),
    INT("modbus.unit_id", modbus.unit_id, 1, 0, 255,
        "Unit identifier (slave id) sent with each request: 0..247, or 255 for a device that ignores it"),
    INT("modbus.timeout_ms", modbus.timeout_ms, 500, 10, 60000,
        "Connect and response timeout; a server that does not answer in time is reconnected, milliseconds"),

    /* mqtt_link.c: the broker connection, for outputs.mqtt.* and trigger.mode mqtt */
    STR("mqtt.host", mqtt.host, "", 0,
        "MQTT broker host name or address; empty = no MQTT (no verdicts, status or trigger)"),
    INT("mqtt.port", mqtt.port, 1883, 1, 65535, "MQTT broker port (usually 8883 with TLS)"),
    STR("mqtt.client_id", mqtt.client_id, "", 0, "MQTT client id; empty = anomalyd-<line.name>"),
    STR("mqtt.username", mqtt.username, "", 0, "User name for the broker; empty = anonymous"),
    STR("mqtt.password", mqtt.password, "", 0,
        "Password for mqtt.username; better mqtt.password_file, so the config can stay world-readable"),
    PATHK("mqtt.password_file", mqtt.password_file, "", NULL, 0,
          "File whose first line is the password for mqtt.username (mode 0640, group anomalyd)"),
    STR("mqtt.prefix", mqtt.prefix, "anomalyd", 0,
        "First topic level(s): topics are <prefix>/<line.name>/verdict, status, state, counters, trigger"),
    INT("mqtt.keepalive", mqtt.keepalive, 30, 5, 3600,
        "Seconds between keepalive pings; the broker sends the last will (status offline) "
        "after 1.5 times this without a word"),
    BOOLK("mqtt.tls.enabled", mqtt.tls.enabled, false, "Connect to the broker over TLS"),
    PATHK("mqtt.tls.ca_file", mqtt.tls.ca_file, "", NULL, 0,
          "PEM file of the CA that signed the broker's certificate; empty = the system's CAs"),
    PATHK("mqtt.tls.cert_file", mqtt.tls.cert_file, "", NULL, 0,
          "PEM client certificate, when the broker asks for one (with mqtt.tls.key_file)"),
    PATHK("mqtt.tls.key_file", mqtt.tls.key_file, "", NULL, 0, "PEM private key of mqtt.tls.cert_file"),
    BOOLK("mqtt.tls.insecure", mqtt.tls.insecure, false,
          "Accept a broker certificate whose name differs from mqtt.host (tests only: anyone on the "
          "path could pose as the broker)"),

    INT("train.steps", train.steps, 3000, 1, 10000000, "Optimizer steps"),
    INT("train.batch", train.batch, 8, 1, 1024, "Crops per optimizer step"),
    INT("train.crop", train.crop, 64, 8, 4096, "Side of the random square crops, pixels"),
    {.name = "train.lr", .type = AD_CFG_FLOAT, FIELD(train.lr), .def = "0.0002", .min = 0, .max = 1,
     .range = "(0, 1]", .flags = AD_CFG_MIN_EXCLUSIVE, .doc = "Adam learning rate (peak, after warmup)"},
    FLT("train.weight_decay", train.weight_decay, 0, 0, 1, "Decoupled weight decay (AdamW); 0 = off"),
    INT_GE("train.warmup", train.warmup, 100, 0, "Linear learning-rate warmup, steps"),
    FLT_GE("train.grad_clip", train.grad_clip, 1.0, 0, "Clip the global gradient norm to this; 0 = off"),
    FLT("train.ema", train.ema, 0.999, 0, 1, "EMA decay of the weights that are saved; 0 = no EMA"),
    ENUMK("train.schedule", train.schedule, "linear", schedule_names, schedule_values,
          "Diffusion noise schedule (beta): linear or cosine"),
    BOOLK("train.flip_h", train.flip_h, true, "Random horizontal flips of training crops"),
    BOOLK("train.flip_v", train.flip_v, false, "Random vertical flips of training crops"),
    {.name = "train.seed", .type = AD_CFG_U64, FIELD(train.seed), .def = "1", .min = 0, .max = 0,
     .range = "", .doc = "Seed of every random choice in training; same seed, same model"},
    INT_GE("train.checkpoint_every", train.checkpoint_every, 500, 0,
           "Write a checkpoint every N steps; 0 = only at the end and on Ctrl-C"),
    PATHK("train.checkpoint", train.checkpoint, "", NULL, 0,
          "Checkpoint file for --resume; empty = model.path + \".ckpt\""),
    FLT("train.defect_share", train.defect_share, 0, 0, 1,
        "Share of diffusion training crops given a synthetic defect that the model learns to remove"),
    INT_GE("train.head_steps", train.head_steps, 3000, 0,
           "Steps training the learned anomaly-map head on synthetic defects; 0 = no head"),
    INT("train.head_crop", train.head_crop, 128, 16, 4096,
        "Side of the head's square training crops, pixels (at most the input size)"),
    BOOLK("train.head_zscore", train.head_zscore, false,
          "The head also reads each pixel's z-score against the good training images (their "
          "per-pixel mean and spread, kept in the head file); off by default: measured no better "
          "on the bottle or MTD after 2000-3000 steps (docs/accuracy.md)"),
    BOOLK("train.head_detail", train.head_detail, false,
          "The head also reads the frame at twice the input size (folded into 4 channels per "
          "colour), for defects thinner than a pixel at the input size, and trains on finer "
          "synthetic defects (lines down to a third of a pixel, straight cracks, defects at the "
          "image's edges); the training images are loaded at twice the size for it. Off by "
          "default: measured better on MTD (0.877 against 0.849 image AUROC) and worse on the "
          "bottle (0.903 against 0.940) (docs/accuracy.md)"),
    BOOLK("train.head_transpose", train.head_transpose, false,
          "Head training also shows each sample transposed (turned a quarter), not only mirrored; "
          "off by default: a turned surface (striation, grain) is one the camera never shows, "
          "measured better on MTD and level on the bottle (docs/accuracy.md)"),
};

const ad_config_key *ad_config_keys(size_t *n)
{
    *n = sizeof keys / sizeof keys[0];
    return keys;
}

const ad_config_key *ad_config_key_find(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

void ad_config_key_expect(const ad_config_key *k, char *out, size_t n)
{
    /* ">= 0" reads "an integer >= 0"; "16..8192" reads "an integer in 16..8192" */
    const char *in = (k->range[0] == '>' || k->range[0] == '<') ? " " : " in ";
    switch (k->type) {
    case AD_CFG_STRING:
        if (k->flags & AD_CFG_NAME_CHARS)
            snprintf(out, n, "a name of 1..%zu characters from A-Z a-z 0-9 _ . -", k->size - 1);
        else
            snprintf(out, n, "a string of at most %zu bytes", k->size - 1);
        break;
    case AD_CFG_PATH: snprintf(out, n, "a path of at most %zu bytes", k->size - 1); break;
    case AD_CFG_INT: snprintf(out, n, "an integer%s%s", in, k->range); break;
    case AD_CFG_U64: snprintf(out, n, "an integer in 0..18446744073709551615"); break;
    case AD_CFG_FLOAT: snprintf(out, n, "a number%s%s", in, k->range); break;
    case AD_CFG_BOOL: snprintf(out, n, "true or false"); break;
    case AD_CFG_ENUM: {
        size_t used = (size_t)snprintf(out, n, "one of ");
        for (int i = 0; k->choices[i] && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, "%s%s", i ? ", " : "", k->choices[i]);
        break;
    }
    case AD_CFG_INT_LIST:
        snprintf(out, n, "a list of %zu..%zu integers, each in %s", k->min_count, k->size, k->range);
        break;
    case AD_CFG_STRING_LIST:
        snprintf(out, n, "a list of %zu..%.0f strings, at most %zu bytes in all", k->min_count, k->max,
                 k->size);
        break;
    case AD_CFG_CONTROLS:
        snprintf(out, n, "a mapping of at most %zu V4L2 control names, as v4l2-ctl --list-ctrls prints "
                 "them, to an integer, true/false or a menu item name", k->size);
        break;
    }
}

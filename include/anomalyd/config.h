/* YAML configuration of one line/station, parsed strictly into a typed struct.
 *
 * One key table (src/config/config_keys.c) drives parsing, validation, defaults,
 * `anomalyd --check-config` output and the documentation. The struct is plain
 * data with fixed-size strings: copy it by assignment, nothing to free. */
#ifndef ANOMALYD_CONFIG_H
#define ANOMALYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AD_PATH_MAX 1024
#define AD_MAX_LEVELS 6
#define AD_MAX_CONTROLS 32        /* camera.controls entries */
#define AD_CONTROL_NAME_BYTES 32  /* V4L2 control and menu item names: at most 31 bytes */

enum ad_source_kind { AD_SOURCE_V4L2 = 0, AD_SOURCE_REPLAY = 1 };
enum ad_pixfmt { AD_PIXFMT_AUTO = 0, AD_PIXFMT_GREY = 1, AD_PIXFMT_RGB24 = 2 };
enum ad_color { AD_COLOR_GRAY = 1, AD_COLOR_RGB = 3 }; /* value = channels */
enum ad_score_mode { AD_SCORE_MAX = 0, AD_SCORE_TOPK = 1 };
enum ad_map_mode { AD_MAP_DIFF = 0, AD_MAP_HEAD = 1, AD_MAP_BOTH = 2 };
enum ad_schedule { AD_SCHEDULE_LINEAR = 0, AD_SCHEDULE_COSINE = 1 };
enum ad_modbus_bit_kind { AD_MODBUS_DISCRETE_INPUT = 0, AD_MODBUS_COIL = 1 };
enum ad_mqtt_verdicts { AD_MQTT_VERDICTS_ALL = 0, AD_MQTT_VERDICTS_REJECTS = 1, AD_MQTT_VERDICTS_NONE = 2 };
enum ad_trigger_mode { AD_TRIGGER_CONTINUOUS = 0, AD_TRIGGER_PART = 1, AD_TRIGGER_MODBUS = 2, AD_TRIGGER_MQTT = 3 };

#define AD_COMMAND_BYTES 4096          /* outputs.command.on_reject: argv, NUL-separated */

/* One entry of camera.controls: a V4L2 control by the name v4l2-ctl
 * --list-ctrls prints, and the value to hold it at. */
enum ad_control_value { AD_CONTROL_INT = 0, AD_CONTROL_BOOL = 1, AD_CONTROL_ITEM = 2 };
typedef struct ad_camera_control {
    char name[AD_CONTROL_NAME_BYTES];  /* "exposure_time_absolute" */
    enum ad_control_value kind;        /* how the value was written */
    int64_t value;                     /* INT: the number (a menu's index), BOOL: 0 or 1 */
    char item[AD_CONTROL_NAME_BYTES];  /* ITEM: a menu item's name, as written */
} ad_camera_control;

/* A V4L2 control's name the way v4l2-ctl prints it: letters and digits
 * lower-cased, every run of other characters one '_', none at either end
 * ("White Balance, Automatic" -> "white_balance_automatic"). out gets at
 * most n-1 bytes. */
void ad_control_name(char *out, size_t n, const char *driver_name);

typedef struct ad_config {
    char path[AD_PATH_MAX];            /* file it was read from */

    struct {
        char name[64];                 /* line/station name, used in rows and status */
    } line;

    struct {
        enum ad_source_kind source;    /* v4l2 | replay */
        char device[AD_PATH_MAX];      /* /dev/videoN */
        char replay_dir[AD_PATH_MAX];  /* folder of PNGs played in name order */
        bool replay_loop;
        int width, height;             /* requested capture size */
        enum ad_pixfmt pixel_format;   /* auto | GREY | RGB24 */
        double fps;                    /* requested frame rate (replay: playback rate) */
        int roi_x, roi_y, roi_width, roi_height; /* roi_width/height 0 = whole frame */
        int buffers;                   /* mmap buffers, >= 4 */
        int timeout_ms;                /* poll timeout before a frame counts as missing */
        int ncontrols;                 /* entries used in controls */
        ad_camera_control controls[AD_MAX_CONTROLS]; /* camera.controls, in file order */
    } camera;

    struct {
        char path[AD_PATH_MAX];        /* .safetensors model file */
        enum ad_color color;           /* gray | rgb: channels the model sees */
        int input_width, input_height; /* ROI is resized to this before inspection */
        /* Architecture used when training a new model (a loaded model's own
         * metadata always wins at inspection time). */
        int base_channels;
        int channel_mult[AD_MAX_LEVELS];
        int num_levels;                /* entries used in channel_mult */
        int res_blocks;
        int groups;
    } model;

    struct {
        double noise_level;            /* t0 = noise_level * T */
        int steps;                     /* DDIM steps back to 0 (1 = one x0 prediction) */
        double guidance;               /* DDAD-style guidance weight w, 0 = off */
        int draws;                     /* noise draws averaged */
        enum ad_map_mode map;          /* diff | head | both */
        bool normalize;                /* per-pixel map statistics from NAME.stats.safetensors */
        int mirror;                    /* head passes averaged: 1 as is, 2 + left-right, 4 + upside down */
        double sigma;                  /* Gaussian smoothing of the map, pixels at input size */
        enum ad_score_mode score;      /* max | topk */
        double topk_percent;           /* for score: topk */
        double pixel_threshold;        /* map value for the defect box; 0 = threshold */
        int threads;                   /* compute threads */
    } detector;

    double threshold;                  /* image score above this = reject */

    struct {
        char database[AD_PATH_MAX];
        char image_dir[AD_PATH_MAX];
        bool save_images;
        int retention_days;            /* 0 = keep forever */
        int max_megabytes;             /* image folder size cap, 0 = no cap */
    } reject_log;

    struct {
        enum ad_trigger_mode mode;     /* which frames are inspected: one verdict per part */
        int delay_ms;                  /* modbus/mqtt: inspect the first frame this long after the trigger */
        int queue;                     /* triggers waiting for a frame; more are dropped and counted */
        int settle_frames;             /* part: frames below the motion threshold = at rest */
        struct {
            char reference[AD_PATH_MAX]; /* empty-station ROI PNG from anomalyctl capture --empty */
            int grid;                  /* ROI shrunk to this many cells on its long side, gray */
            int pixel_delta;           /* a cell differs when it moved more than this many gray levels */
            double present_percent;    /* cells differing from the reference: part present */
            double absent_percent;     /* below this: the station is empty again */
            double motion_percent;     /* cells differing from the previous frame: still moving */
        } part;
        /* trigger.modbus.* (modbus_link.c) goes below */
        struct {
            int input;                 /* address of the discrete input or coil polled */
            enum ad_modbus_bit_kind kind; /* discrete_input | coil */
            int poll_ms;               /* read it this often */
            int part_id_register;      /* holding register read at the edge as the part id; -1 = none */
        } modbus;
    } trigger;

    struct {
        struct {
            char on_reject[AD_COMMAND_BYTES]; /* argv entries, each NUL-terminated, back to back */
            int argc;                  /* entries in on_reject; 0 = no command */
            int timeout_ms;            /* then SIGTERM, then SIGKILL to its process group */
            int queue;                 /* rejects waiting for the command; more are dropped */
        } command;
        /* outputs.mqtt.* and outputs.modbus.* (their links) go below */
        struct {
            enum ad_mqtt_verdicts verdicts; /* which parts get a verdict message */
            bool counters;             /* per-minute counters on <prefix>/<line>/counters */
            int queue;                 /* messages kept while the broker is away; oldest dropped */
        } mqtt;
        struct {
            int reject_coil;           /* coil pulsed per reject; -1 = off */
            int good_coil;             /* coil pulsed per good part; -1 = off */
            int heartbeat_coil;        /* coil toggled once a second while the camera is up; -1 = off */
            int score_register;        /* holding register given score x score_scale; -1 = off */
            double score_scale;
            int pulse_ms;              /* coil pulse length */
            int max_delay_ms;          /* a pulse not sent by then is dropped */
        } modbus;
    } outputs;

    struct {
        char host[256];                /* Modbus TCP server (PLC, remote I/O); "" = none */
        int port;
        int unit_id;                   /* unit identifier (slave id) */
        int timeout_ms;                /* connect and response timeout */
    } modbus;

    struct {
        char host[256];                /* MQTT broker; "" = no MQTT */
        int port;
        char client_id[128];           /* "" = anomalyd-<line.name> */
        char username[128];
        char password[256];
        char password_file[AD_PATH_MAX]; /* first line is the password */
        char prefix[128];              /* topics are <prefix>/<line.name>/... */
        int keepalive;                 /* seconds */
        struct {
            bool enabled;
            char ca_file[AD_PATH_MAX]; /* "" = the system's CAs */
            char cert_file[AD_PATH_MAX], key_file[AD_PATH_MAX]; /* client certificate, both or neither */
            bool insecure;             /* skip the broker host name check */
        } tls;
    } mqtt;

    struct {
        int steps;
        int batch;
        int crop;                      /* random crop size (square) */
        double lr;
        double weight_decay;
        int warmup;
        double grad_clip;
        double ema;
        enum ad_schedule schedule;
        bool flip_h, flip_v;
        uint64_t seed;
        int checkpoint_every;
        char checkpoint[AD_PATH_MAX];  /* "" = model.path + ".ckpt" */
        double defect_share;           /* share of diffusion crops with a defect to remove */
        int head_steps;                /* learned head training steps (0 = none) */
        int head_crop;                 /* side of the head's training crops */
        bool head_zscore;              /* the head also reads the frame's per-pixel z-score */
        bool head_detail;              /* the head also reads the frame at twice the input size */
        bool head_transpose;           /* head training also sees its samples transposed */
    } train;
} ad_config;

/* ---- The key table ----
 * Every YAML key is one row: its dotted name ("camera.roi.width"), type, where
 * it lives in ad_config, default, range and one line of documentation. The
 * parser, the validator, ad_config_print, ad_config_write_reference and the
 * docs are all driven by it. Rows are static; nothing to free. */
typedef enum ad_config_type {
    AD_CFG_STRING = 0,   /* char[size] */
    AD_CFG_PATH,         /* char[size]; relative values resolved against the config's folder */
    AD_CFG_INT,          /* int, range [min, max] */
    AD_CFG_U64,          /* uint64_t, any non-negative integer */
    AD_CFG_FLOAT,        /* double, range [min, max] (min exclusive with AD_CFG_MIN_EXCLUSIVE) */
    AD_CFG_BOOL,         /* bool, true | false */
    AD_CFG_ENUM,         /* int-sized enum, one of choices[] */
    AD_CFG_INT_LIST,     /* int[size] + int count at count_offset; each entry in [min, max] */
    AD_CFG_STRING_LIST,  /* char[size]: entries back to back, each NUL-terminated; int count
                            at count_offset; min_count..max entries (argv lists) */
    AD_CFG_CONTROLS,     /* ad_camera_control[size] + int count at count_offset: a mapping
                            of V4L2 control names to values (camera.controls) */
} ad_config_type;

enum {
    AD_CFG_REQUIRED = 1u << 0,      /* must be given in the file */
    AD_CFG_MIN_EXCLUSIVE = 1u << 1, /* value must be > min */
    AD_CFG_NAME_CHARS = 1u << 2,    /* string limited to [A-Za-z0-9_.-] and non-empty */
    AD_CFG_DERIVED = 1u << 3,       /* empty default is filled from other keys (see doc) */
};

typedef struct ad_config_key {
    const char *name;                 /* dotted path, e.g. "camera.roi.width" */
    ad_config_type type;
    size_t offset;                    /* offsetof(ad_config, ...) */
    size_t size;                      /* string, string list: buffer bytes; int list: max entries */
    size_t count_offset;              /* lists: offsetof the entry count (int) */
    const char *def;                  /* default as YAML text; NULL when required/derived */
    const char *example;              /* shown in the reference when def is NULL */
    double min, max;                  /* numeric range; int list: range of each entry;
                                         string list: max = most entries */
    size_t min_count;                 /* lists: fewest entries */
    const char *range;                /* human text: "16..8192", "(0, 1]", ">= 0", "" */
    const char *const *choices;       /* enum: NULL-terminated names ... */
    const int *choice_values;         /* ... and their values */
    unsigned flags;                   /* AD_CFG_* above */
    const char *doc;                  /* one line: what it does, units */
} ad_config_key;

/* The table, in file order; *n gets the row count. */
const ad_config_key *ad_config_keys(size_t *n);
/* Row by dotted name, or NULL. */
const ad_config_key *ad_config_key_find(const char *name);
/* "an integer in 16..8192", "one of v4l2, replay", ...: what a value must be. */
void ad_config_key_expect(const ad_config_key *k, char *out, size_t n);

/* Like ad_config_print, with each key's one-line documentation and range as
 * a comment above it (for starter files people will edit). */
void ad_config_print_commented(FILE *out, const ad_config *cfg);
/* Writes a documented YAML of every key with its default (example values for
 * required keys), one comment per key; it parses as a valid config. */
void ad_config_write_reference(FILE *out);
/* Writes a Markdown table (key, type, default, range, meaning) of every key. */
void ad_config_write_markdown(FILE *out);
/* Writes the whole configuration reference page, docs/configuration.md: a
 * short introduction and the table above. */
void ad_config_write_markdown_page(FILE *out);

/* Fills cfg with every default (required keys stay empty/zero). */
void ad_config_defaults(ad_config *cfg);

/* Parses and validates a YAML file. On error returns -1 and err holds
 * "FILE:LINE:COL: what is wrong, what was expected" (LINE and COL 1-based,
 * at the offending node; "FILE: ..." for file-level problems such as a
 * missing file, an empty file or a missing required key). Callers exit with 2.
 * cfg is written only on success, so a failed reload keeps the old config.
 * Absent keys get their defaults; line.name defaults to the file name without
 * .yaml/.yml, reject_log.database to /var/lib/anomalyd/<line.name>.db,
 * reject_log.image_dir to /var/lib/anomalyd/<line.name>-images,
 * trigger.part.reference to /var/lib/anomalyd/<line.name>-empty.png.
 * Relative paths are resolved against the (real) folder of the config file. */
int ad_config_load(const char *path, ad_config *cfg, char *err, size_t errlen);
/* Same from a memory buffer; `name` is used in messages, for the line.name
 * default and, when it contains a '/', relative paths are resolved against
 * its folder (as written, not made absolute). */
int ad_config_parse(const char *name, const char *text, size_t len,
                    ad_config *cfg, char *err, size_t errlen);

/* Prints the effective config (defaults filled in) as valid YAML that
 * ad_config_parse reads back into the same struct (cfg->path aside). */
void ad_config_print(FILE *out, const ad_config *cfg);

/* Rewrites only the value of the top-level `threshold:` key in the file,
 * every other byte unchanged; durable write with a backup PATH.bak. Refuses
 * (returns -1) if the file's content differs from `expected` (the bytes read
 * at the start of the run), so concurrent edits are never lost. */
int ad_config_write_threshold(const char *path, double threshold,
                              const char *expected, size_t expected_len,
                              char *err, size_t errlen);

/* Where a key's value is in a config file: "FILE:LINE:COL" (1-based) for a
 * dotted key such as "camera.controls.gain", or "FILE" when the file does not
 * set it or cannot be read. For problems found after parsing (a control the
 * camera lacks), so they point where the parser's errors would. */
void ad_config_key_where(const char *path, const char *dotted, char *out, size_t n);

#endif

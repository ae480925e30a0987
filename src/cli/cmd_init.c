/* anomalyctl init: writes a starter config for a new camera station.
 *
 * With --device it asks the camera (through libv4l2) which formats and sizes
 * it offers and picks: a native GREY mode if there is one (no conversion),
 * else the mode libv4l2 can deliver as RGB24; among sizes, the largest one
 * not above 1280x720 (inspection resizes the ROI anyway), at its highest
 * listed rate. It also writes the camera's current values of the controls
 * that change the picture under camera.controls, with automatic exposure,
 * gain, white balance and focus turned off, so the picture the model is
 * trained on stays put. With --replay it reads the first PNG of a folder instead, so
 * the whole walkthrough can be tried without a camera. The file is the
 * effective config (every key, defaults filled in) under a comment block
 * that says what to do next; `man anomalyd.yaml` documents each key. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anomalyctl init --line NAME (--device /dev/videoN | --replay DIR)\n"
            "                       [--out FILE] [--state DIR] [--force]\n"
            "\n"
            "Writes a starter config for a new station: probes the camera's formats and\n"
            "sizes (or reads the first PNG of a replay folder), fills in the camera\n"
            "section with the camera's controls at their current values (automatic\n"
            "exposure, gain, white balance and focus turned off), and puts model,\n"
            "database and images under the state folder.\n"
            "\n"
            "  --line NAME    station name (A-Z a-z 0-9 _ . -), used for file names\n"
            "  --device DEV   V4L2 camera to probe, e.g. /dev/video0\n"
            "  --replay DIR   folder of PNG frames to replay instead of a camera\n"
            "  --out FILE     where to write (default /etc/anomalyd/NAME.yaml)\n"
            "  --state DIR    folder for model, database and images\n"
            "                 (default /var/lib/anomalyd)\n"
            "  --force        overwrite an existing file\n"
            "\n"
            "Next steps are printed at the end and written at the top of the file.\n"
            "exit codes: 0 ok, 1 camera or file failure, 2 usage error\n");
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* Picks the camera mode: native GREY first, then the rest; largest size
 * not above 1280x720. */
static const ad_camera_mode *pick_mode(const ad_camera_mode *modes, size_t n)
{
    const ad_camera_mode *best = NULL;
    long best_score = -1;
    for (size_t i = 0; i < n; i++) {
        const ad_camera_mode *m = &modes[i];
        int grey = !strcmp(m->fourcc, "GREY") && !m->emulated;
        int rgb = !strcmp(m->fourcc, "RGB3");
        if (!grey && !rgb) continue;
        long w = m->width, h = m->height;
        if (m->stepwise) {
            if (w > 1280) w = 1280;
            if (h > 720) h = 720;
        }
        if (w <= 0 || h <= 0 || w > 1280 || h > 720) continue;
        long score = (grey ? 1L << 40 : 0) + w * h;
        if (score > best_score) {
            best_score = score;
            best = m;
        }
    }
    return best;
}

/* The first frame replay would play (ad_png_list's order and policy). */
static int first_png(const char *dir, char *out, size_t outlen, char *err, size_t errlen)
{
    char **names = NULL;
    int n = 0;
    if (ad_png_list(dir, &names, &n, err, errlen) != 0) return -1;
    snprintf(out, outlen, "%s/%s", dir, names[0]);
    ad_png_list_free(names, n);
    return 0;
}

/* What the command line asks for. */
typedef struct init_args {
    const char *line, *device, *replay, *state;
    char out_path[AD_PATH_MAX];  /* --out, or /etc/anomalyd/LINE.yaml */
    bool force;
} init_args;

/* What was found on the camera besides its modes. */
typedef struct camera_notes {
    char granted[256];           /* "/dev/video0 offers 640x480 GREY at 30.00 fps" */
    char turned_off[512];        /* automatic controls that were on, "" when none */
    char controls_warning[AD_ERRLEN]; /* why camera.controls stayed empty, "" when read */
} camera_notes;

static int parse_args(init_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"line", required_argument, NULL, 'l'},  {"device", required_argument, NULL, 'd'},
        {"replay", required_argument, NULL, 'r'}, {"out", required_argument, NULL, 'o'},
        {"state", required_argument, NULL, 's'}, {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    static const ad_cli cli = {"init", usage};
    memset(a, 0, sizeof *a);
    a->state = "/var/lib/anomalyd";
    const char *out = NULL;
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "l:d:r:o:s:fh", longopts)) != -1) {
        switch (opt) {
        case 'l': a->line = optarg; break;
        case 'd': a->device = optarg; break;
        case 'r': a->replay = optarg; break;
        case 'o': out = optarg; break;
        case 's': a->state = optarg; break;
        case 'f': a->force = true; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!a->line) return ad_cli_usage_error(&cli, "--line NAME is required");
    if (!a->device == !a->replay)
        return ad_cli_usage_error(&cli, "give one of --device DEV and --replay DIR");
    if (!valid_name(a->line))
        return ad_cli_usage_error(&cli, "--line '%s': use 1..63 characters from A-Z a-z 0-9 _ . -",
                                  a->line);
    if (out)
        snprintf(a->out_path, sizeof a->out_path, "%s", out);
    else
        snprintf(a->out_path, sizeof a->out_path, "/etc/anomalyd/%s.yaml", a->line);
    return AD_CLI_RUN;
}

/* The camera section from what the camera offers (pick_mode) and its
 * controls; notes say what was found. 0 or -1 with err. */
static int camera_from_device(const char *device, ad_config *cfg, camera_notes *notes, char *err,
                              size_t errlen)
{
    char *granted = notes->granted;
    size_t granted_len = sizeof notes->granted;
    ad_camera_mode *modes = NULL;
    size_t n = 0;
    if (ad_v4l2_list_modes(device, &modes, &n, err, errlen)) return -1;
    const ad_camera_mode *m = pick_mode(modes, n);
    if (!m) {
        free(modes);
        return ad_err(err, errlen, "%s offers no GREY or RGB24 mode up to 1280x720 (%zu modes "
                      "listed); write the camera section by hand", device, n);
    }
    cfg->camera.source = AD_SOURCE_V4L2;
    snprintf(cfg->camera.device, sizeof cfg->camera.device, "%s", device);
    cfg->camera.width = m->width > 1280 ? 1280 : m->width;
    cfg->camera.height = m->height > 720 ? 720 : m->height;
    int grey = !strcmp(m->fourcc, "GREY");
    cfg->camera.pixel_format = grey ? AD_PIXFMT_GREY : AD_PIXFMT_RGB24;
    cfg->model.color = grey ? AD_COLOR_GRAY : AD_COLOR_RGB;
    if (m->nfps > 0) cfg->camera.fps = m->fps[0] > 1000 ? 1000 : m->fps[0];
    snprintf(granted, granted_len, "%s offers %dx%d %s%s at %.2f fps", device, cfg->camera.width,
             cfg->camera.height, m->fourcc, m->emulated ? " (converted by libv4l2)" : "",
             cfg->camera.fps);
    free(modes);
    /* without them the camera still works, as it does today */
    if (ad_v4l2_read_controls(device, cfg->camera.controls, AD_MAX_CONTROLS, &cfg->camera.ncontrols,
                              notes->turned_off, sizeof notes->turned_off, notes->controls_warning,
                              sizeof notes->controls_warning))
        cfg->camera.ncontrols = 0;
    return 0;
}

/* The camera section from the replay folder's first frame. */
static int camera_from_replay(const char *replay, ad_config *cfg, camera_notes *notes, char *err,
                              size_t errlen)
{
    char *granted = notes->granted;
    size_t granted_len = sizeof notes->granted;
    char first[AD_PATH_MAX + 256];
    ad_image im = {0, 0, 0, NULL};
    if (first_png(replay, first, sizeof first, err, errlen) ||
        ad_png_read(first, 0, &im, err, errlen))
        return -1;
    char *real = realpath(replay, NULL);
    cfg->camera.source = AD_SOURCE_REPLAY;
    snprintf(cfg->camera.replay_dir, sizeof cfg->camera.replay_dir, "%s", real ? real : replay);
    free(real);
    cfg->camera.width = im.w;
    cfg->camera.height = im.h;
    cfg->camera.pixel_format = im.c == 1 ? AD_PIXFMT_GREY : AD_PIXFMT_RGB24;
    cfg->model.color = im.c == 1 ? AD_COLOR_GRAY : AD_COLOR_RGB;
    snprintf(granted, granted_len, "%s holds %dx%d %s frames", replay, im.w, im.h,
             im.c == 1 ? "gray" : "colour");
    ad_image_free(&im);
    return 0;
}

/* The inspected size: the frame's, rounded down to a multiple of 16 and
 * capped at INPUT_SIDE on the longer side (the ROI is resized to it); the
 * model and the log under the state folder. */
enum { INPUT_SIDE = 128 }; /* the recipe's input (docs/accuracy.md: r1 against r2) */

static void model_and_paths(const init_args *a, ad_config *cfg)
{
    int w = cfg->camera.width, h = cfg->camera.height, longer = w > h ? w : h;
    if (longer > INPUT_SIDE) {
        w = (int)((long)w * INPUT_SIDE / longer);
        h = (int)((long)h * INPUT_SIDE / longer);
    }
    cfg->model.input_width = w / 16 * 16 >= 16 ? w / 16 * 16 : 16;
    cfg->model.input_height = h / 16 * 16 >= 16 ? h / 16 * 16 : 16;
    snprintf(cfg->model.path, sizeof cfg->model.path, "%s/%s.safetensors", a->state, a->line);
    snprintf(cfg->reject_log.database, sizeof cfg->reject_log.database, "%s/%s.db", a->state,
             a->line);
    snprintf(cfg->reject_log.image_dir, sizeof cfg->reject_log.image_dir, "%s/%s-images",
             a->state, a->line);
}

/* Comment lines at `indent`, text wrapped at 78 columns. */
static void put_wrapped_comment(FILE *out, int indent, const char *text)
{
    const char *p = text;
    while (*p) {
        int room = 78 - indent - 2, used = 0;
        fprintf(out, "%*s#", indent, "");
        while (*p) {
            size_t word = strcspn(p, " ");
            if (used && used + 1 + (int)word > room) break;
            fprintf(out, " %.*s", (int)word, p);
            used += 1 + (int)word;
            p += word;
            while (*p == ' ') p++;
        }
        fputc('\n', out);
    }
}

/* Every key, with a comment above camera.controls: where its values came
 * from and why the automatic controls are off. */
static void put_config(FILE *out, const ad_config *cfg, const camera_notes *notes)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) ad_die("open_memstream failed");
    ad_config_print(mem, cfg);
    fclose(mem);
    const char *at = cfg->camera.ncontrols ? strstr(text, "\n  controls:\n") : NULL;
    if (!at) {
        fputs(text, out);
        free(text);
        return;
    }
    char why[2048];
    snprintf(why, sizeof why,
             "The camera's values when anomalyctl init ran, set again at every open (names and ranges: "
             "v4l2-ctl -d %s --list-ctrls-menus). Automatic exposure, gain, white balance and focus are off: "
             "they change the picture during a shift, and a model trained on one exposure flags the next as "
             "defective.%s%s%s Set the manual values before recording good parts, then keep them.",
             cfg->camera.device, notes->turned_off[0] ? " Turned off here: " : "", notes->turned_off,
             notes->turned_off[0] ? "." : "");
    fwrite(text, 1, (size_t)(at + 1 - text), out);
    put_wrapped_comment(out, 2, why);
    fputs(at + 1, out);
    free(text);
}

/* The file: the next steps as comments, then every key. Caller frees. */
static char *starter_text(const init_args *a, const ad_config *cfg, const camera_notes *notes,
                          size_t *len)
{
    const char *granted = notes->granted;
    char *text = NULL;
    FILE *mem = open_memstream(&text, len);
    if (!mem) ad_die("open_memstream failed");
    const char *line = a->line, *state = a->state, *out_path = a->out_path;
    fprintf(mem,
            "# anomalyd station '%s', written by anomalyctl init: %s.\n"
            "# Every key is listed with its value; `man anomalyd.yaml` explains each one.\n"
            "# Next steps:\n"
            "#   1. set camera.roi to the part, then record 100+ good parts:\n"
            "#        anomalyctl capture --config %s --count 200 --out %s/%s-good\n"
            "#   2. keep 20%% of them aside for calibration, train on the rest:\n"
            "#        anomalyctl train --config %s --images %s/%s-good\n"
            "#   3. set the threshold from the held-out good parts (until then threshold: 0\n"
            "#      rejects every part):\n"
            "#        anomalyctl calibrate --config %s --good DIR --write\n"
            "#   4. systemctl enable --now anomalyd@%s\n"
            "#   5. rejects: sqlite3 %s \"SELECT * FROM rejects ORDER BY id DESC LIMIT 10\"\n",
            line, granted, out_path, state, line, out_path, state, line, out_path, line,
            cfg->reject_log.database);
    put_config(mem, cfg, notes);
    fclose(mem);
    return text;
}

/* Builds the config and writes it (refusing to overwrite without --force).
 * 0, or AD_EXIT_FAILURE with the error printed. */
static int run(const init_args *a, ad_config *cfg, camera_notes *notes)
{
    char err[AD_ERRLEN];
    struct stat sb;
    if (!a->force && stat(a->out_path, &sb) == 0) {
        fprintf(stderr, "anomalyctl init: %s already exists; use --force to overwrite it\n",
                a->out_path);
        return AD_EXIT_FAILURE;
    }
    ad_config_defaults(cfg);
    snprintf(cfg->line.name, sizeof cfg->line.name, "%s", a->line);
    int rc = a->device ? camera_from_device(a->device, cfg, notes, err, sizeof err)
                       : camera_from_replay(a->replay, cfg, notes, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "anomalyctl init: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    model_and_paths(a, cfg);
    size_t len = 0;
    char *text = starter_text(a, cfg, notes, &len);
    /* What we write must load: validate it before it lands. */
    ad_config check;
    rc = 0;
    if (ad_config_parse(a->out_path, text, len, &check, err, sizeof err)) {
        fprintf(stderr, "anomalyctl init: internal error, the starter config does not parse: %s\n", err);
        rc = AD_EXIT_FAILURE;
    } else if (ad_write_file_durable(a->out_path, text, len, err, sizeof err)) {
        fprintf(stderr, "anomalyctl init: %s\n", err);
        rc = AD_EXIT_FAILURE;
    }
    free(text);
    return rc;
}

static void report(const init_args *a, const ad_config *cfg, const camera_notes *notes)
{
    if (notes->controls_warning[0])
        printf("warning: camera.controls left empty: %s\n", notes->controls_warning);
    else if (a->device)
        printf("camera.controls: %d of the camera's controls at their current values%s%s\n",
               cfg->camera.ncontrols, notes->turned_off[0] ? "; turned off: " : "", notes->turned_off);
    printf("%s\nwrote %s (%s %dx%d, inspected at %dx%d)\n", notes->granted, a->out_path,
           cfg->model.color == AD_COLOR_GRAY ? "gray" : "colour", cfg->camera.width,
           cfg->camera.height, cfg->model.input_width, cfg->model.input_height);
    printf("next: anomalyctl capture --config %s --count 200 --out %s/%s-good\n", a->out_path,
           a->state, a->line);
}

int ad_cmd_init(int argc, char **argv)
{
    init_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    ad_config cfg;
    camera_notes notes;
    memset(&notes, 0, sizeof notes);
    rc = run(&a, &cfg, &notes);
    if (rc == 0) report(&a, &cfg, &notes);
    return rc;
}

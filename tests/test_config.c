/* Tests of the YAML config: exact error messages for bad files, defaults,
 * derived values, relative paths, print/parse round trip, the shipped example
 * and the documented reference. */
#include "test_support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

/* The smallest valid file: the two required keys. */
#define MIN_CFG "model:\n  path: /m.safetensors\nthreshold: 0.5\n"
/* The sections at top level, as messages list them (one place to extend). */
#define TOP_KEYS "line, camera, model, detector, threshold, reject_log, trigger, outputs, modbus, mqtt, train"

typedef struct bad_case {
    const char *yaml;
    const char *expected; /* exact message, file name "bad.yaml" */
} bad_case;

static const bad_case bad_cases[] = {
    /* unknown keys, with the allowed ones and a hint for a misplaced key */
    {MIN_CFG "camera:\n  widht: 640\n",
     "bad.yaml:5:3: unknown key 'widht' in camera (did you mean width?), expected one of: source, device, replay_dir, replay_loop, "
     "width, height, pixel_format, fps, roi, buffers, timeout_ms, controls"},
    {MIN_CFG "width: 640\n",
     "bad.yaml:4:1: unknown key 'width' at top level (did you mean camera.width?), expected one of: " TOP_KEYS},
    {MIN_CFG "camera:\n  roi:\n    z: 1\n",
     "bad.yaml:6:5: unknown key 'z' in camera.roi, expected one of: x, y, width, height"},
    {MIN_CFG "camera.width: 640\n",
     "bad.yaml:4:1: unknown key 'camera.width' at top level, expected one of: " TOP_KEYS},
    /* wrong types */
    {MIN_CFG "camera:\n  width: wide\n",
     "bad.yaml:5:10: camera.width: 'wide' is not an integer, expected an integer in 16..8192"},
    {MIN_CFG "camera:\n  width: \"640\"\n",
     "bad.yaml:5:10: camera.width: \"640\" is a quoted string, expected an integer in 16..8192"},
    {MIN_CFG "camera:\n  width: 640.5\n",
     "bad.yaml:5:10: camera.width: '640.5' is not an integer, expected an integer in 16..8192"},
    {MIN_CFG "camera:\n  width: [640]\n",
     "bad.yaml:5:10: camera.width: got a list, expected an integer in 16..8192"},
    {MIN_CFG "camera:\n  width:\n",
     "bad.yaml:5:9: camera.width: the value is empty, expected an integer in 16..8192"},
    {MIN_CFG "camera:\n  replay_loop: yes\n",
     "bad.yaml:5:16: camera.replay_loop: 'yes' is not true or false, expected true or false"},
    {MIN_CFG "train:\n  head_zscore: 1\n",
     "bad.yaml:5:16: train.head_zscore: '1' is not true or false, expected true or false"},
    {MIN_CFG "detector:\n  noise_level: .nan\n",
     "bad.yaml:5:16: detector.noise_level: '.nan' is not a number, expected a number in 0.001..1"},
    {MIN_CFG "camera: 5\n",
     "bad.yaml:4:9: camera: got a single value, expected a mapping with keys source, device, replay_dir, "
     "replay_loop, width, height, pixel_format, fps, roi, buffers, timeout_ms, controls"},
    {"model:\n  path: {a: 1}\nthreshold: 1\n",
     "bad.yaml:2:9: model.path: got a mapping, expected a path of at most 1023 bytes"},
    /* out of range */
    {MIN_CFG "camera:\n  width: 99999\n",
     "bad.yaml:5:10: camera.width: 99999 is out of range, expected an integer in 16..8192"},
    {MIN_CFG "train:\n  steps: 99999999999999999999999\n",
     "bad.yaml:5:10: train.steps: 99999999999999999999999 is out of range, expected an integer in 1..10000000"},
    {MIN_CFG "detector:\n  noise_level: 1.5\n",
     "bad.yaml:5:16: detector.noise_level: 1.5 is out of range, expected a number in 0.001..1"},
    {MIN_CFG "train:\n  lr: 0\n", "bad.yaml:5:7: train.lr: 0 is out of range, expected a number in (0, 1]"},
    {MIN_CFG "detector:\n  sigma: 1e999\n",
     "bad.yaml:5:10: detector.sigma: 1e999 is out of range, expected a number in 0..32"},
    {"model:\n  path: /m\nthreshold: -0.1\n",
     "bad.yaml:3:12: threshold: -0.1 is out of range, expected a number >= 0"},
    {MIN_CFG "train:\n  seed: -1\n",
     "bad.yaml:5:9: train.seed: -1 is out of range, expected an integer in 0..18446744073709551615"},
    {MIN_CFG "camera:\n  roi: {x: -1, y: 0, width: 10, height: 10}\n",
     "bad.yaml:5:12: camera.roi.x: -1 is out of range, expected an integer in 0..8192"},
    /* duplicates */
    {MIN_CFG "camera:\n  width: 640\n  width: 320\n",
     "bad.yaml:6:3: duplicate key 'camera.width' (first given at line 5), expected each key once"},
    {MIN_CFG "camera:\n  width: 640\ncamera:\n  height: 320\n",
     "bad.yaml:6:1: duplicate key 'camera' (first given at line 4), expected each key once"},
    /* tabs */
    {MIN_CFG "camera:\n\twidth: 640\n",
     "bad.yaml:5:1: tab character in indentation, expected spaces (YAML does not allow tabs there)"},
    {MIN_CFG "camera:\n  width: 640\n \theight: 480\n",
     "bad.yaml:6:2: tab character in indentation, expected spaces (YAML does not allow tabs there)"},
    /* empty documents and a top level that is not a mapping */
    {"", "bad.yaml: the file has no settings, expected a YAML mapping with at least model.path and threshold"},
    {"# only a comment\n\n",
     "bad.yaml: the file has no settings, expected a YAML mapping with at least model.path and threshold"},
    {"---\n", "bad.yaml: the file has no settings, expected a YAML mapping with at least model.path and threshold"},
    {"- model\n- threshold\n",
     "bad.yaml:1:1: the top level is a list, expected a mapping with keys " TOP_KEYS},
    {"threshold\n",
     "bad.yaml:1:1: the top level is a single value, expected a mapping with keys " TOP_KEYS},
    {MIN_CFG "---\nthreshold: 1\n",
     "bad.yaml:4:1: a second YAML document starts here, expected one document per file"},
    {MIN_CFG "detector:\n  tresh: 1\n",
     "bad.yaml:5:3: unknown key 'tresh' in detector, expected one of: noise_level, steps, guidance, draws, map, "
     "normalize, mirror, sigma, score, topk_percent, pixel_threshold, threads"},
    {MIN_CFG "detector:\n  mirror: 4\n",
     "bad.yaml:5:11: detector.mirror: '4' is not a valid choice, expected one of none, lr, all"},
    {MIN_CFG "modle:\n  color: rgb\n",
     "bad.yaml:4:1: unknown key 'modle' at top level (did you mean model?), expected one of: " TOP_KEYS},
    {MIN_CFG "camera:\n  device: \"\"\n",
     "bad.yaml:5:11: camera.device is empty, expected the V4L2 device node of the camera, such as /dev/video0"},
    /* required keys */
    {"threshold: 0.5\n", "bad.yaml: missing required key model.path, expected a path of at most 1023 bytes"},
    {"model:\n  path: /m\n", "bad.yaml: missing required key threshold, expected a number >= 0"},
    {"model:\n  path: \"\"\nthreshold: 1\n",
     "bad.yaml:2:9: model.path: the value is empty, expected a path of at most 1023 bytes"},
    /* enums, names, string lengths */
    {MIN_CFG "camera:\n  source: usb\n",
     "bad.yaml:5:11: camera.source: 'usb' is not a valid choice, expected one of v4l2, replay"},
    {MIN_CFG "camera:\n  pixel_format: grey\n",
     "bad.yaml:5:17: camera.pixel_format: 'grey' is not a valid choice (did you mean GREY?), expected one of auto, GREY, RGB24"},
    {MIN_CFG "line:\n  name: line 3\n",
     "bad.yaml:5:9: line.name: 'line 3' has a character that is not allowed, expected a name of 1..63 "
     "characters from A-Z a-z 0-9 _ . -"},
    {MIN_CFG "line:\n  name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "bad.yaml:5:9: line.name: the value is 66 bytes long, expected a name of 1..63 characters from A-Z a-z "
     "0-9 _ . -"},
    {MIN_CFG "line:\n  name: \"a\\0b\"\n",
     "bad.yaml:5:9: line.name: the value contains a NUL byte, expected a name of 1..63 characters from A-Z "
     "a-z 0-9 _ . -"},
    /* the model's architecture */
    {MIN_CFG "model:\n  channel_mult: [1, 2, 2, 2, 2, 2, 2]\n",
     "bad.yaml:4:1: duplicate key 'model' (first given at line 1), expected each key once"},
    {"model:\n  path: /m\n  channel_mult: [1, 2, 2, 2, 2, 2, 2]\nthreshold: 1\n",
     "bad.yaml:3:17: model.channel_mult has 7 entries, expected a list of 1..6 integers, each in 1..8"},
    {"model:\n  path: /m\n  channel_mult: []\nthreshold: 1\n",
     "bad.yaml:3:17: model.channel_mult has 0 entries, expected a list of 1..6 integers, each in 1..8"},
    {"model:\n  path: /m\n  channel_mult: [1, 9]\nthreshold: 1\n",
     "bad.yaml:3:21: model.channel_mult: entry 2: 9 is out of range, expected a list of 1..6 integers, each "
     "in 1..8"},
    {"model:\n  path: /m\n  channel_mult: 2\nthreshold: 1\n",
     "bad.yaml:3:17: model.channel_mult: got a single value, expected a list of 1..6 integers, each in 1..8"},
    {"model:\n  path: /m\n  base_channels: 48\n  channel_mult: [1, 3]\n  groups: 32\nthreshold: 1\n",
     "bad.yaml:5:11: model.groups 32 does not divide model.base_channels 48, expected a divisor of "
     "base_channels (every channel count is a multiple of it)"},
    {"model:\n  path: /m\n  base_channels: 12\nthreshold: 1\n",
     "bad.yaml:3:18: model.groups 8 does not divide model.base_channels 12, expected a divisor of "
     "base_channels (every channel count is a multiple of it)"},
    /* camera cross-checks */
    {MIN_CFG "camera:\n  source: replay\n",
     "bad.yaml:5:11: camera.source is replay but camera.replay_dir is not set, expected camera.replay_dir: "
     "the folder of PNG frames to play"},
    {MIN_CFG "camera:\n  roi: {x: 600, y: 0, width: 100, height: 10}\n",
     "bad.yaml:5:30: the ROI ends at x 600 + 100 = 700, beyond camera.width 640, expected the ROI inside the "
     "frame"},
    {MIN_CFG "camera:\n  roi: {x: 0, y: 6}\n",
     "bad.yaml:5:18: camera.roi.y is 6 but camera.roi.height is 0 (the whole frame), expected camera.roi.y 0 "
     "or a non-zero camera.roi.height"},
    /* camera.controls: names as v4l2-ctl prints them, one value each */
    {MIN_CFG "camera:\n  controls:\n    Gain: 5\n",
     "bad.yaml:6:5: camera.controls: 'Gain' is not a control name as v4l2-ctl --list-ctrls prints it (did you "
     "mean gain?), expected lower-case letters and digits joined by single underscores"},
    {MIN_CFG "camera:\n  controls:\n    \"White Balance, Automatic\": false\n",
     "bad.yaml:6:5: camera.controls: 'White Balance, Automatic' is not a control name as v4l2-ctl --list-ctrls "
     "prints it (did you mean white_balance_automatic?), expected lower-case letters and digits joined by single "
     "underscores"},
    {MIN_CFG "camera:\n  controls: {gain: 5, gain: 6}\n",
     "bad.yaml:5:23: duplicate key 'camera.controls.gain' (first given at line 5), expected each key once"},
    {MIN_CFG "camera:\n  controls:\n    gain: 1.5\n",
     "bad.yaml:6:11: camera.controls.gain: '1.5' is not an integer, expected an integer, true or false, or a menu "
     "item name of at most 31 bytes"},
    {MIN_CFG "camera:\n  controls:\n    gain:\n",
     "bad.yaml:6:10: camera.controls.gain: the value is empty, expected an integer, true or false, or a menu item "
     "name of at most 31 bytes"},
    {MIN_CFG "camera:\n  controls:\n    auto_exposure: \"\"\n",
     "bad.yaml:6:20: camera.controls.auto_exposure: the value is empty, expected an integer, true or false, or a "
     "menu item name of at most 31 bytes"},
    {MIN_CFG "camera:\n  controls:\n    gain: [1]\n",
     "bad.yaml:6:11: camera.controls.gain: got a list, expected an integer, true or false, or a menu item name of "
     "at most 31 bytes"},
    {MIN_CFG "camera:\n  controls:\n    exposure_time_absolute: 99999999999999999999\n",
     "bad.yaml:6:29: camera.controls.exposure_time_absolute: 99999999999999999999 is out of range, expected an "
     "integer of at most 64 bits"},
    {MIN_CFG "camera:\n  controls:\n    auto_exposure: aperture_priority_mode_of_a_long_menu\n",
     "bad.yaml:6:20: camera.controls.auto_exposure: the menu item name is 37 bytes long, expected an integer, true "
     "or false, or a menu item name of at most 31 bytes"},
    {MIN_CFG "camera:\n  controls: [gain]\n",
     "bad.yaml:5:13: camera.controls: got a list, expected a mapping of at most 32 V4L2 control names, as v4l2-ctl "
     "--list-ctrls prints them, to an integer, true/false or a menu item name"},
    /* YAML features a config has no use for */
    {"model:\n  path: /m\nthreshold: &t 1\n",
     "bad.yaml:3:12: YAML anchor '&t' is not supported, expected a plain value"},
    {"model:\n  path: !!str /m\nthreshold: 1\n",
     "bad.yaml:2:9: explicit YAML tag 'tag:yaml.org,2002:str' is not supported, expected a plain value"},
    {MIN_CFG "? [a]\n: 1\n", "bad.yaml:4:3: a key is a list, expected a plain key name"},
    /* syntax and encoding */
    {MIN_CFG "camera:\n  width: 640\n height: 5\n",
     "bad.yaml:6:2: invalid YAML: did not find expected key (while parsing a block mapping at line 1), "
     "expected well-formed YAML with consistent indentation and quoting"},
    {MIN_CFG "line:\n  name: \"abc\n",
     "bad.yaml:6:1: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 5), "
     "expected well-formed YAML with consistent indentation and quoting"},
    {MIN_CFG "line:\n  name: \xff\n",
     "bad.yaml:5:9: invalid leading UTF-8 octet (byte 0xff), expected UTF-8 text without control characters"},
    /* triggers and the command output */
    {MIN_CFG "trigger:\n  mode: photoeye\n",
     "bad.yaml:5:9: trigger.mode: 'photoeye' is not a valid choice, expected one of continuous, part, modbus, mqtt"},
    {MIN_CFG "trigger:\n  mode: Part\n",
     "bad.yaml:5:9: trigger.mode: 'Part' is not a valid choice (did you mean part?), expected one of continuous, "
     "part, modbus, mqtt"},
    {MIN_CFG "trigger:\n  delay_ms: 0.5\n",
     "bad.yaml:5:13: trigger.delay_ms: '0.5' is not an integer, expected an integer in 0..10000"},
    {MIN_CFG "trigger:\n  settle_frames: 0\n",
     "bad.yaml:5:18: trigger.settle_frames: 0 is out of range, expected an integer in 1..1000"},
    {MIN_CFG "trigger:\n  part:\n    present_percent: lots\n",
     "bad.yaml:6:22: trigger.part.present_percent: 'lots' is not a number, expected a number in 0.1..100"},
    {MIN_CFG "trigger:\n  part:\n    present_percent: 5\n    absent_percent: 5\n",
     "bad.yaml:7:21: trigger.part.absent_percent 5 is not below trigger.part.present_percent 5, expected "
     "absent_percent < present_percent (the gap keeps a part on the edge from flickering)"},
    {MIN_CFG "trigger:\n  part:\n    reference: [a.png]\n",
     "bad.yaml:6:16: trigger.part.reference: got a list, expected a path of at most 1023 bytes"},
    {MIN_CFG "outputs:\n  command:\n    on_reject: /usr/bin/logger -t reject\n",
     "bad.yaml:6:16: outputs.command.on_reject: got a single value, expected a list of 0..64 strings, at most "
     "4096 bytes in all (an argv list, never a shell string)"},
    {MIN_CFG "outputs:\n  command:\n    on_reject: [\"\"]\n",
     "bad.yaml:6:17: outputs.command.on_reject: entry 1 (the program) is empty, expected a list of 0..64 "
     "strings, at most 4096 bytes in all"},
    {MIN_CFG "outputs:\n  command:\n    on_reject:\n      - \"\"\n      - -t\n",
     "bad.yaml:7:9: outputs.command.on_reject: entry 1 (the program) is empty, expected a list of 0..64 "
     "strings, at most 4096 bytes in all"},
    {MIN_CFG "outputs:\n  command:\n    on_reject: [/bin/echo, {a: 1}]\n",
     "bad.yaml:6:28: outputs.command.on_reject: an entry is a mapping, expected a list of 0..64 strings, at "
     "most 4096 bytes in all"},
    {MIN_CFG "outputs:\n  command:\n    on_reject: [/bin/echo, \"a\\0b\"]\n",
     "bad.yaml:6:28: outputs.command.on_reject: entry 2 contains a NUL byte, expected a list of 0..64 "
     "strings, at most 4096 bytes in all"},
    {MIN_CFG "outputs:\n  command:\n    timeout_ms: 5s\n",
     "bad.yaml:6:17: outputs.command.timeout_ms: '5s' is not an integer, expected an integer in 10..600000"},
};

static void bad_configs_give_exact_messages(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        ad_config cfg;
        char err[AD_ERRLEN] = "";
        int rc = ad_config_parse("bad.yaml", bad_cases[i].yaml, strlen(bad_cases[i].yaml), &cfg, err, sizeof err);
        if (rc != -1 || strcmp(err, bad_cases[i].expected) != 0) {
            print_error("case %zu: rc %d\n  got:      %s\n  expected: %s\n", i, rc, err, bad_cases[i].expected);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    assert_true(sizeof bad_cases / sizeof bad_cases[0] >= 20);
    /* every message: "bad.yaml:LINE:COL: " or "bad.yaml: ", then what is wrong, then what was expected */
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const char *m = bad_cases[i].expected;
        unsigned line, col;
        char colon;
        bool located = sscanf(m, "bad.yaml:%u:%u%c", &line, &col, &colon) == 3 && colon == ':' && line >= 1 &&
                       col >= 1;
        assert_true(located || strncmp(m, "bad.yaml: ", 10) == 0);
        assert_non_null(strstr(m, ", expected "));
    }
}

static void file_level_problems(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("config");
    char path[1200], expected[1400], err[AD_ERRLEN];
    ad_config cfg;

    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    assert_int_equal(ad_config_load(path, &cfg, err, sizeof err), -1);
    snprintf(expected, sizeof expected,
             "%s: cannot open: No such file or directory, expected a readable YAML config file", path);
    assert_string_equal(err, expected);

    snprintf(path, sizeof path, "%s/dir.yaml", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(ad_config_load(path, &cfg, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s: is a directory, expected a YAML config file", path);
    assert_string_equal(err, expected);

    char *empty = ts_write_text(dir, "empty.yaml", "");
    assert_int_equal(ad_config_load(empty, &cfg, err, sizeof err), -1);
    snprintf(expected, sizeof expected,
             "%s: the file has no settings, expected a YAML mapping with at least model.path and threshold", empty);
    assert_string_equal(err, expected);

    /* a file name that cannot be a line name needs line.name */
    char *spaced = ts_write_text(dir, "line 3.yaml", MIN_CFG);
    assert_int_equal(ad_config_load(spaced, &cfg, err, sizeof err), -1);
    snprintf(expected, sizeof expected,
             "%s: line.name is not set and the file name cannot serve as one, expected line.name: a name of "
             "1..63 characters from A-Z a-z 0-9 _ . -",
             spaced);
    assert_string_equal(err, expected);

    /* messages carry the path as given, line and column 1-based */
    char *tabbed = ts_write_text(dir, "tab.yaml", MIN_CFG "camera:\n\twidth: 640\n");
    assert_int_equal(ad_config_load(tabbed, &cfg, err, sizeof err), -1);
    snprintf(expected, sizeof expected,
             "%s:5:1: tab character in indentation, expected spaces (YAML does not allow tabs there)", tabbed);
    assert_string_equal(err, expected);

    /* a huge file is refused before it is parsed */
    snprintf(path, sizeof path, "%s/huge.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < (1 << 20) / 16 + 1; i++) fputs("# padding line.\n", f);
    fclose(f);
    assert_int_equal(ad_config_load(path, &cfg, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s: is 1048592 bytes, expected a config file of at most 1048576 bytes",
             path);
    assert_string_equal(err, expected);

    free(empty);
    free(spaced);
    free(tabbed);
    ts_rmtree(dir);
    free(dir);
}

static void failed_parse_leaves_config_untouched(void **state)
{
    (void)state;
    ad_config cfg, before;
    char err[AD_ERRLEN];
    const char *good = MIN_CFG "camera:\n  width: 800\n";
    assert_int_equal(ad_config_parse("a.yaml", good, strlen(good), &cfg, err, sizeof err), 0);
    before = cfg;
    const char *bad = MIN_CFG "camera:\n  width: 1\n";
    assert_int_equal(ad_config_parse("a.yaml", bad, strlen(bad), &cfg, err, sizeof err), -1);
    assert_memory_equal(&cfg, &before, sizeof cfg);
}

static void defaults_fill_absent_keys(void **state)
{
    (void)state;
    ad_config cfg;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_parse("line7.yaml", MIN_CFG, strlen(MIN_CFG), &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.path, "line7.yaml");
    assert_string_equal(cfg.line.name, "line7"); /* from the file name */
    assert_int_equal(cfg.camera.source, AD_SOURCE_V4L2);
    assert_string_equal(cfg.camera.device, "/dev/video0");
    assert_string_equal(cfg.camera.replay_dir, "");
    assert_false(cfg.camera.replay_loop);
    assert_int_equal(cfg.camera.width, 640);
    assert_int_equal(cfg.camera.height, 480);
    assert_int_equal(cfg.camera.pixel_format, AD_PIXFMT_AUTO);
    assert_true(cfg.camera.fps == 30.0);
    assert_int_equal(cfg.camera.roi_x + cfg.camera.roi_y + cfg.camera.roi_width + cfg.camera.roi_height, 0);
    assert_int_equal(cfg.camera.buffers, 4);
    assert_int_equal(cfg.camera.timeout_ms, 2000);
    assert_string_equal(cfg.model.path, "/m.safetensors");
    assert_int_equal(cfg.model.color, AD_COLOR_GRAY);
    assert_int_equal(cfg.model.input_width, 128);
    assert_int_equal(cfg.model.input_height, 128);
    assert_int_equal(cfg.model.base_channels, 32);
    assert_int_equal(cfg.model.num_levels, 3);
    assert_int_equal(cfg.model.channel_mult[0], 1);
    assert_int_equal(cfg.model.channel_mult[1], 2);
    assert_int_equal(cfg.model.channel_mult[2], 2);
    assert_int_equal(cfg.model.res_blocks, 1);
    assert_int_equal(cfg.model.groups, 8);
    assert_true(cfg.detector.noise_level == 0.2);
    assert_int_equal(cfg.detector.steps, 1);
    assert_true(cfg.detector.guidance == 0.0);
    assert_int_equal(cfg.detector.draws, 1);
    assert_int_equal(cfg.detector.map, AD_MAP_HEAD);
    assert_int_equal(cfg.detector.mirror, 4);
    assert_true(cfg.detector.sigma == 0.0);
    assert_int_equal(cfg.detector.score, AD_SCORE_MAX);
    assert_true(cfg.detector.topk_percent == 1.0);
    assert_true(cfg.detector.pixel_threshold == 0.0);
    assert_int_equal(cfg.detector.threads, 2);
    assert_true(cfg.threshold == 0.5);
    assert_string_equal(cfg.reject_log.database, "/var/lib/anomalyd/line7.db");
    assert_string_equal(cfg.reject_log.image_dir, "/var/lib/anomalyd/line7-images");
    assert_true(cfg.reject_log.save_images);
    assert_int_equal(cfg.reject_log.retention_days, 30);
    assert_int_equal(cfg.reject_log.max_megabytes, 2048);
    assert_int_equal(cfg.trigger.mode, AD_TRIGGER_CONTINUOUS); /* existing configs inspect every frame */
    assert_string_equal(cfg.trigger.part.reference, "/var/lib/anomalyd/line7-empty.png");
    assert_int_equal(cfg.outputs.command.argc, 0);
    assert_int_equal(cfg.train.steps, 3000);
    assert_int_equal(cfg.train.batch, 8);
    assert_int_equal(cfg.train.crop, 64);
    assert_true(cfg.train.lr == 0.0002);
    assert_true(cfg.train.weight_decay == 0.0);
    assert_int_equal(cfg.train.warmup, 100);
    assert_true(cfg.train.grad_clip == 1.0);
    assert_true(cfg.train.ema == 0.999);
    assert_int_equal(cfg.train.schedule, AD_SCHEDULE_LINEAR);
    assert_true(cfg.train.flip_h);
    assert_false(cfg.train.flip_v);
    assert_true(cfg.train.seed == 1);
    assert_int_equal(cfg.train.checkpoint_every, 500);
    assert_string_equal(cfg.train.checkpoint, "");
    assert_int_equal(cfg.train.head_steps, 3000);
    assert_int_equal(cfg.train.head_crop, 128);
    assert_false(cfg.train.head_zscore);
    assert_false(cfg.train.head_detail);
    assert_false(cfg.train.head_transpose);

    /* ad_config_defaults: the same values, required keys empty */
    ad_config d;
    ad_config_defaults(&d);
    assert_string_equal(d.model.path, "");
    assert_true(d.threshold == 0.0);
    assert_string_equal(d.line.name, "anomalyd");
    assert_string_equal(d.reject_log.database, "/var/lib/anomalyd/anomalyd.db");
    d.threshold = cfg.threshold;
    memcpy(d.model.path, cfg.model.path, sizeof d.model.path);
    memcpy(d.line.name, cfg.line.name, sizeof d.line.name);
    memcpy(d.reject_log.database, cfg.reject_log.database, sizeof d.reject_log.database);
    memcpy(d.reject_log.image_dir, cfg.reject_log.image_dir, sizeof d.reject_log.image_dir);
    memcpy(d.trigger.part.reference, cfg.trigger.part.reference, sizeof d.trigger.part.reference);
    memcpy(d.path, cfg.path, sizeof d.path);
    assert_memory_equal(&d, &cfg, sizeof d);

    /* empty sections are allowed (every setting commented out) */
    const char *sparse = MIN_CFG "camera:\ndetector:\n  # steps: 3\n";
    assert_int_equal(ad_config_parse("x.yml", sparse, strlen(sparse), &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.line.name, "x");
}

static void key_table_is_consistent(void **state)
{
    (void)state;
    size_t n;
    const ad_config_key *keys = ad_config_keys(&n);
    assert_true(n >= 50);
    for (size_t i = 0; i < n; i++) {
        const ad_config_key *k = &keys[i];
        assert_non_null(k->doc);
        assert_true(strlen(k->doc) > 10);
        assert_ptr_equal(ad_config_key_find(k->name), k);
        assert_true(k->def || k->example); /* the reference shows something */
        if (k->type == AD_CFG_ENUM) assert_non_null(k->choices);
        /* a section never reopens after another one: the printer relies on it */
        const char *dot = strrchr(k->name, '.');
        size_t sec = dot ? (size_t)(dot - k->name) : 0;
        for (size_t j = i + 2; j < n && sec; j++) {
            if (strncmp(keys[j].name, k->name, sec) == 0 && keys[j].name[sec] == '.')
                assert_true(strncmp(keys[j - 1].name, k->name, sec) == 0);
        }
    }
    assert_null(ad_config_key_find("camera"));
    char expect[256];
    ad_config_key_expect(ad_config_key_find("train.lr"), expect, sizeof expect);
    assert_string_equal(expect, "a number in (0, 1]");
    ad_config_key_expect(ad_config_key_find("detector.map"), expect, sizeof expect);
    assert_string_equal(expect, "one of diff, head, both");
}

static char *print_to_string(const ad_config *cfg, bool reference)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (reference) ad_config_write_reference(f);
    else ad_config_print(f, cfg);
    fclose(f);
    return buf;
}

/* camera.controls: what each value means, the empty forms, the limit, and
 * the block form it is printed in (which must read back as written). */
static void camera_controls_parse_and_print(void **state)
{
    (void)state;
    const char *text = MIN_CFG "camera:\n  controls:\n    auto_exposure: manual_mode\n"
                               "    exposure_time_absolute: -250\n    white_balance_automatic: FALSE\n"
                               "    focus_absolute: +0\n    power_line_frequency: \"50 Hz\"\n    scene: 'true'\n"
                               "    x1_y: \"7\"\n    gain_automatic: True\n    plf: 50_hz\n    e: \"1e5\"\n";
    ad_config a, b;
    char err[AD_ERRLEN];
    int rc = ad_config_parse("c.yaml", text, strlen(text), &a, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    static const char *const want[] = {
        "auto_exposure: 'manual_mode'", "exposure_time_absolute: -250", "white_balance_automatic: false",
        "focus_absolute: 0",            "power_line_frequency: '50 Hz'", "scene: 'true'",
        "x1_y: '7'",                    "gain_automatic: true",         "plf: '50_hz'",
        "e: '1e5'",                     NULL,
    };
    ts_assert_controls(a.camera.controls, a.camera.ncontrols, want);
    char *printed = print_to_string(&a, false);
    assert_non_null(strstr(printed, "\n  controls:\n    auto_exposure: manual_mode\n    exposure_time_absolute: -250\n"
                                    "    white_balance_automatic: false\n    focus_absolute: 0\n"
                                    "    power_line_frequency: \"50 Hz\"\n    scene: \"true\"\n    x1_y: \"7\"\n"
                                    "    gain_automatic: true\n    plf: 50_hz\n    e: \"1e5\"\n"));
    rc = ad_config_parse("c.yaml", printed, strlen(printed), &b, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_memory_equal(&a, &b, sizeof a);
    free(printed);

    /* none: absent, commented out, or an empty flow mapping */
    const char *none[] = {MIN_CFG, MIN_CFG "camera:\n  controls:\n    # gain: 5\n", MIN_CFG "camera:\n  controls: {}\n"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ad_config_parse("c.yaml", none[i], strlen(none[i]), &a, err, sizeof err), 0);
        assert_int_equal(a.camera.ncontrols, 0);
    }
    printed = print_to_string(&a, false);
    assert_non_null(strstr(printed, "\n  controls: {}\n"));
    free(printed);

    /* 32 controls fit, a 33rd is refused at its name */
    char many[4096];
    size_t used = (size_t)snprintf(many, sizeof many, "%scamera:\n  controls:\n", MIN_CFG);
    for (int i = 0; i < 33; i++) used += (size_t)snprintf(many + used, sizeof many - used, "    c%d: %d\n", i, i);
    assert_int_equal(ad_config_parse("c.yaml", many, used, &a, err, sizeof err), -1);
    assert_string_equal(err, "c.yaml:38:5: camera.controls has more than 32 controls, expected a mapping of at most "
                             "32 V4L2 control names, as v4l2-ctl --list-ctrls prints them, to an integer, true/false "
                             "or a menu item name");
    many[used - strlen("    c32: 32\n")] = '\0';
    assert_int_equal(ad_config_parse("c.yaml", many, strlen(many), &a, err, sizeof err), 0);
    assert_int_equal(a.camera.ncontrols, 32);
    assert_true(a.camera.controls[31].value == 31);
}

/* The rule v4l2-ctl names controls by, which camera.controls keys follow. */
static void control_names_as_v4l2_ctl_prints_them(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"White Balance, Automatic", "white_balance_automatic"},
        {"Exposure Time, Absolute", "exposure_time_absolute"},
        {"Focus, Automatic Continuous", "focus_automatic_continuous"},
        {"Gain", "gain"},
        {"Integer 32 Bits", "integer_32_bits"},
        {"  (Leading) & trailing --", "leading_trailing"},
        {"Percentage of Dropped Buffers", "percentage_of_dropped_buffers"},
        {"100% Colorbar", "100_colorbar"},
        {"Rec. 709", "rec_709"},
        {"", ""},
        {"--", ""},
    };
    char out[AD_CONTROL_NAME_BYTES];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ad_control_name(out, sizeof out, cases[i][0]);
        assert_string_equal(out, cases[i][1]);
    }
    /* cut to the buffer, never ending in '_' */
    char small[8];
    ad_control_name(small, sizeof small, "Gain Red Channel");
    assert_string_equal(small, "gain_re");
    ad_control_name(small, sizeof small, "Gain Is Blue");
    assert_string_equal(small, "gain_is");
    ad_control_name(small, 6, "Gain Red");
    assert_string_equal(small, "gain");
}

/* Where a key's value is, for problems found after parsing: the position
 * the parser would give, in block and flow mappings. */
static void key_positions_in_a_file(void **state)
{
    (void)state;
    static const char text[] = "model:\n  path: /m\nthreshold: 1\n"
                               "camera:\n  roi: {x: 1, y: [2, 3], width: 8}\n  controls:\n    gain: 5\n"
                               "    brightness: {a: 1}\n    contrast: 7\n";
    char where[1400], expected[1400], *dir = ts_tmpdir("config"), *path = ts_write_text(dir, "w.yaml", text);
    static const struct {
        const char *key;
        int line, col;
    } cases[] = {
        {"camera.controls.gain", 7, 11}, {"camera.controls.contrast", 9, 15}, {"camera.roi.width", 5, 33},
        {"camera.controls", 7, 5},       {"threshold", 3, 12},               {"camera.width", 0, 0},
        {"camera.controls.hue", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ad_config_key_where(path, cases[i].key, where, sizeof where);
        if (cases[i].line) snprintf(expected, sizeof expected, "%s:%d:%d", path, cases[i].line, cases[i].col);
        else snprintf(expected, sizeof expected, "%s", path);
        assert_string_equal(where, expected);
    }
    ad_config_key_where("/nonexistent/x.yaml", "threshold", where, sizeof where);
    assert_string_equal(where, "/nonexistent/x.yaml");
    free(path);
    ts_rmtree(dir);
    free(dir);
}

static void print_parses_back_to_the_same_struct(void **state)
{
    (void)state;
    /* every key away from its default, strings with characters that need quoting */
    const char *text = "line:\n  name: L-9.x_y\n"
                       "camera:\n  source: replay\n  device: \"/dev/v4l/by-id/usb-\\\"cam\\\" \\\\ #1\"\n"
                       "  replay_dir: 'frames: a #b'\n  replay_loop: true\n  width: 800\n  height: 600\n"
                       "  pixel_format: RGB24\n  fps: 7.5\n  roi: {x: 8, y: 9, width: 64, height: 65}\n"
                       "  buffers: 6\n  timeout_ms: 500\n"
                       "  controls: {auto_exposure: \"Manual Mode\", gain: -7, focus_automatic_continuous: false}\n"
                       "model:\n  path: \"/models/p\\u00e4rts\\nx.safetensors\"\n  color: rgb\n"
                       "  input_width: 64\n  input_height: 48\n  base_channels: 12\n  channel_mult: [1, 2, 4, 8]\n"
                       "  res_blocks: 2\n  groups: 4\n"
                       "detector:\n  noise_level: 0.1\n  steps: 5\n  guidance: 0.3\n  draws: 3\n  map: both\n"
                       "  mirror: lr\n  sigma: 3\n  score: topk\n  topk_percent: 0.001\n  pixel_threshold: 1e-7\n  threads: 1\n"
                       "threshold: 0.123456789012345678\n"
                       "reject_log:\n  database: /d/x.db\n  image_dir: /d/img\n  save_images: false\n"
                       "  retention_days: 0\n  max_megabytes: 0\n"
                       "train:\n  steps: 1\n  batch: 1024\n  crop: 8\n  lr: 1\n  weight_decay: 0.01\n  warmup: 0\n"
                       "  grad_clip: 0\n  ema: 0\n  schedule: cosine\n  flip_h: false\n  flip_v: true\n"
                       "  seed: 18446744073709551615\n  checkpoint_every: 0\n  checkpoint: \"/c/\\u0085\\u2028\\x81\\ufeff\\t\\r.ckpt\"\n"
                       "  head_steps: 250\n  head_zscore: true\n  head_transpose: true\n"
                       "trigger:\n  mode: part\n  delay_ms: 40\n  queue: 3\n  settle_frames: 7\n"
                       "  part: {reference: /r/empty.png, grid: 24, pixel_delta: 9, present_percent: 7.5,\n"
                       "         absent_percent: 0.5, motion_percent: 2}\n"
                       "outputs:\n  command:\n    on_reject: [/usr/bin/env, \"a b\", \"\", \"it's \\\"q\\\"\", '#x']\n"
                       "    timeout_ms: 250\n    queue: 2\n";
    ad_config a, b;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_parse("rt.yaml", text, strlen(text), &a, err, sizeof err), 0);
    assert_string_equal(a.camera.device, "/dev/v4l/by-id/usb-\"cam\" \\ #1");
    assert_string_equal(a.camera.replay_dir, "frames: a #b");
    assert_string_equal(a.model.path, "/models/p\xc3\xa4rts\nx.safetensors");
    assert_int_equal(a.model.num_levels, 4);
    assert_true(a.train.seed == UINT64_MAX);
    assert_true(a.train.head_transpose);   /* not the default */
    assert_string_equal(a.train.checkpoint, "/c/\xc2\x85\xe2\x80\xa8\xc2\x81\xef\xbb\xbf\t\r.ckpt");
    assert_int_equal(a.trigger.mode, AD_TRIGGER_PART);
    assert_string_equal(a.trigger.part.reference, "/r/empty.png");
    assert_int_equal(a.outputs.command.argc, 5);
    static const char argv_bytes[] = "/usr/bin/env\0a b\0\0it's \"q\"\0#x";
    assert_memory_equal(a.outputs.command.on_reject, argv_bytes, sizeof argv_bytes);

    char *printed = print_to_string(&a, false);
    assert_int_equal(ad_config_parse("other.yaml", printed, strlen(printed), &b, err, sizeof err), 0);
    memcpy(b.path, a.path, sizeof b.path);
    assert_memory_equal(&a, &b, sizeof a);
    char *again = print_to_string(&b, false);
    assert_string_equal(printed, again);
    free(printed);
    free(again);

    /* the commented form carries the same values */
    size_t printed_len = 0;
    FILE *f = open_memstream(&printed, &printed_len);
    assert_non_null(f);
    ad_config_print_commented(f, &a);
    fclose(f);
    assert_non_null(strstr(printed, "  # Requested capture width, pixels; range 16..8192\n  width: 800\n"));
    assert_int_equal(ad_config_parse("rt.yaml", printed, strlen(printed), &b, err, sizeof err), 0);
    assert_memory_equal(&a, &b, sizeof a);
    free(printed);

    /* defaults round trip too */
    assert_int_equal(ad_config_parse("d.yaml", MIN_CFG, strlen(MIN_CFG), &a, err, sizeof err), 0);
    printed = print_to_string(&a, false);
    assert_int_equal(ad_config_parse("d.yaml", printed, strlen(printed), &b, err, sizeof err), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_non_null(strstr(printed, "\n  fps: 30\n")); /* plain numbers, not 3e+01 */
    assert_non_null(strstr(printed, "\n  lr: 0.0002\n"));
    free(printed);
}

static void reference_is_a_valid_documented_config(void **state)
{
    (void)state;
    char *ref = print_to_string(NULL, true);
    ad_config cfg, d;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_parse("line3.yaml", ref, strlen(ref), &cfg, err, sizeof err), 0);
    ad_config_defaults(&d);
    assert_int_equal(cfg.camera.width, d.camera.width);
    assert_true(cfg.train.ema == d.train.ema);
    assert_string_equal(cfg.model.path, "/var/lib/anomalyd/line3.safetensors");
    assert_true(cfg.threshold == 0.5);
    assert_string_equal(cfg.reject_log.database, "/var/lib/anomalyd/line3.db");
    /* one comment per key */
    size_t n, comments = 0;
    ad_config_keys(&n);
    for (const char *p = ref; (p = strstr(p, "# ")); p++) comments++;
    assert_true(comments >= n);
    assert_non_null(strstr(ref, "  # Required. Model file (.safetensors) written by anomalyctl train\n"));
    assert_non_null(strstr(ref, "; range 16..8192\n  width: 640\n"));
    free(ref);
}

static void markdown_table_has_a_row_per_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0, n, rows = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ad_config_write_markdown(f);
    fclose(f);
    ad_config_keys(&n);
    for (const char *p = buf; (p = strstr(p, "\n| `")); p++) rows++;
    assert_int_equal(rows, n);
    assert_non_null(strstr(buf, "\n| `camera.width` | integer | `640` | 16..8192 | Requested capture width, pixels |\n"));
    assert_non_null(strstr(buf, "\n| `threshold` | number | **required** | >= 0 |"));
    assert_non_null(strstr(buf, "\n| `camera.source` | choice | `v4l2` | one of v4l2, replay |"));

    /* the page docs/configuration.md is made of (test_docs compares the file) */
    char *page = NULL;
    size_t plen = 0;
    f = open_memstream(&page, &plen);
    assert_non_null(f);
    ad_config_write_markdown_page(f);
    fclose(f);
    assert_true(strncmp(page, "# Configuration reference\n", 26) == 0);
    assert_true(plen > len && strcmp(page + plen - len, buf) == 0); /* ends with the whole table */
    free(page);
    free(buf);
}

static void example_file_parses_and_sets_every_key(void **state)
{
    (void)state;
    ad_config cfg;
    char err[AD_ERRLEN];
    const char *path = SOURCE_DIR "/etc/line3.yaml";
    int rc = ad_config_load(path, &cfg, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.line.name, "line3");
    assert_int_equal(cfg.camera.source, AD_SOURCE_V4L2);
    assert_string_equal(cfg.camera.device, "/dev/video0");
    assert_int_equal(cfg.camera.roi_width, 256);
    assert_string_equal(cfg.model.path, "/var/lib/anomalyd/line3.safetensors");
    assert_string_equal(cfg.reject_log.database, "/var/lib/anomalyd/line3.db");

    /* every key of the table is set in the example, found by its whole
     * dotted path (detector.steps does not stand in for train.steps) */
    uint8_t *text;
    size_t len, nwritten, n;
    assert_int_equal(ad_read_file(path, 1 << 20, &text, &len, err, sizeof err), 0);
    ts_yaml_key *written = ts_yaml_keys((const char *)text, &nwritten);
    const ad_config_key *keys = ad_config_keys(&n);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < nwritten && !found; j++) found = !strcmp(written[j].path, keys[i].name);
        if (!found) {
            print_error("etc/line3.yaml lacks %s\n", keys[i].name);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    free(written);
    free(text);
}

static void relative_paths_resolve_against_the_config_folder(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("config");
    char sub[1200], real[PATH_MAX], expected[PATH_MAX + 64], err[AD_ERRLEN];
    snprintf(sub, sizeof sub, "%s/etc", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_non_null(realpath(sub, real));
    char *path = ts_write_text(sub, "st.yaml",
                               "model:\n  path: ../model/parts.safetensors\nthreshold: 1\n"
                               "camera:\n  source: replay\n  replay_dir: frames\n"
                               "reject_log:\n  database: /abs/x.db\n  image_dir: ./img\n"
                               "train:\n  checkpoint: ck/p.ckpt\n");
    ad_config cfg;
    int rc = ad_config_load(path, &cfg, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    snprintf(expected, sizeof expected, "%s/../model/parts.safetensors", real);
    assert_string_equal(cfg.model.path, expected);
    snprintf(expected, sizeof expected, "%s/frames", real);
    assert_string_equal(cfg.camera.replay_dir, expected);
    snprintf(expected, sizeof expected, "%s/./img", real);
    assert_string_equal(cfg.reject_log.image_dir, expected);
    snprintf(expected, sizeof expected, "%s/ck/p.ckpt", real);
    assert_string_equal(cfg.train.checkpoint, expected);
    assert_string_equal(cfg.reject_log.database, "/abs/x.db");
    assert_string_equal(cfg.camera.device, "/dev/video0"); /* not a path key */
    assert_string_equal(cfg.path, path);

    /* from memory: against the name's folder as written; no folder, no change */
    const char *text = "model:\n  path: m.st\nthreshold: 1\n";
    assert_int_equal(ad_config_parse("fixtures/configs/a.yaml", text, strlen(text), &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.model.path, "fixtures/configs/m.st");
    assert_int_equal(ad_config_parse("/a.yaml", text, strlen(text), &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.model.path, "/m.st");
    assert_int_equal(ad_config_parse("a.yaml", text, strlen(text), &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.model.path, "m.st");

    /* a path that no longer fits once resolved is an error at its node */
    char longtext[1400];
    char name[1100];
    memset(name, 'p', 1000);
    name[1000] = '\0';
    snprintf(longtext, sizeof longtext, "model:\n  path: %s\nthreshold: 1\n", name);
    assert_int_equal(ad_config_parse("some/folder/with/a/long/name/a.yaml", longtext, strlen(longtext), &cfg, err,
                                     sizeof err),
                     -1);
    assert_string_equal(err, "some/folder/with/a/long/name/a.yaml:2:9: model.path: the path is 1029 bytes long after "
                             "resolving it against some/folder/with/a/long/name, expected a path of at most 1023 "
                             "bytes");
    free(path);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_configs_give_exact_messages),
        cmocka_unit_test(file_level_problems),
        cmocka_unit_test(failed_parse_leaves_config_untouched),
        cmocka_unit_test(defaults_fill_absent_keys),
        cmocka_unit_test(key_table_is_consistent),
        cmocka_unit_test(print_parses_back_to_the_same_struct),
        cmocka_unit_test(reference_is_a_valid_documented_config),
        cmocka_unit_test(markdown_table_has_a_row_per_key),
        cmocka_unit_test(example_file_parses_and_sets_every_key),
        cmocka_unit_test(relative_paths_resolve_against_the_config_folder),
        cmocka_unit_test(camera_controls_parse_and_print),
        cmocka_unit_test(control_names_as_v4l2_ctl_prints_them),
        cmocka_unit_test(key_positions_in_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

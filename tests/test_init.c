/* anomalyctl init through the real binary: a starter config from a replay
 * folder that loads as written, refusal to overwrite, usage and camera errors. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

static void starter_config_from_replay_folder_loads(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("init"), *ctl = ts_bin("anomalyctl"), cmd[4096], path[1100];
    snprintf(path, sizeof path, "%s/station7.yaml", dir);
    snprintf(cmd, sizeof cmd, "%s init --line station7 --replay %s/replay/frames --out %s --state %s/state",
             ctl, FIXTURES_DIR, path, dir);
    char *out;
    assert_int_equal(ts_run(cmd, &out), 0);
    assert_non_null(strstr(out, "80x80 gray"));
    free(out);
    ad_config cfg;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_load(path, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.line.name, "station7");
    assert_int_equal(cfg.camera.source, AD_SOURCE_REPLAY);
    assert_int_equal(cfg.camera.width, 80);
    assert_int_equal(cfg.camera.height, 80);
    assert_int_equal(cfg.camera.pixel_format, AD_PIXFMT_GREY);
    assert_int_equal(cfg.model.color, AD_COLOR_GRAY);
    assert_int_equal(cfg.model.input_width, 80);
    assert_non_null(strstr(cfg.model.path, "/state/station7.safetensors"));
    assert_non_null(strstr(cfg.reject_log.database, "/state/station7.db"));

    /* a second run does not overwrite the engineer's edits */
    assert_int_equal(ts_run(cmd, &out), 1);
    assert_non_null(strstr(out, "already exists"));
    free(out);
    strcat(cmd, " --force");
    assert_int_equal(ts_run(cmd, NULL), 0);
    ts_rmtree(dir);
    free(dir);
    free(ctl);
}

static void bad_usage_and_missing_camera(void **state)
{
    (void)state;
    char *ctl = ts_bin("anomalyctl"), cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s init --line 'bad name' --replay /tmp", ctl);
    assert_int_equal(ts_run(cmd, &out), 2);
    assert_non_null(strstr(out, "A-Z a-z 0-9"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s init --line x --device /dev/video0 --replay /tmp", ctl);
    assert_int_equal(ts_run(cmd, NULL), 2);
    snprintf(cmd, sizeof cmd, "%s init --line x --device /dev/anomalyd-no-such-camera --out /tmp/anomalyd-init-x.yaml", ctl);
    assert_int_equal(ts_run(cmd, &out), 1);
    assert_non_null(strstr(out, "/dev/anomalyd-no-such-camera"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s init --line x --replay %s/configs --out /tmp/anomalyd-init-y.yaml", ctl, FIXTURES_DIR);
    assert_int_equal(ts_run(cmd, &out), 1);
    assert_non_null(strstr(out, "no PNG images (*.png) in the folder"));
    free(out);
    free(ctl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(starter_config_from_replay_folder_loads),
        cmocka_unit_test(bad_usage_and_missing_camera),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

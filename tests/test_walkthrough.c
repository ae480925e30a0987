/* The README's five-step walkthrough end to end on the replay source, with
 * the real binaries: init -> capture -> train (model + head, few steps) ->
 * calibrate --write -> anomalyd on the frames, rows in SQLite. It checks the
 * tools fit together, not accuracy (the model trains for seconds). */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

static void run_ok(const char *cmd)
{
    char *out;
    int rc = ts_run(cmd, &out);
    if (rc != 0) fail_msg("'%s' exited %d:\n%s", cmd, rc, out);
    free(out);
}

static void five_steps_on_the_replay_source(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("walk"), *ctl = ts_bin("anomalyctl"), *daemon = ts_bin("anomalyd");
    char cmd[8192], cfg_path[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/walk.yaml", dir);

    /* 1. starter config from the frames; then the engineer's edits: ROI on
     * the part, a small model and short training for the test */
    snprintf(cmd, sizeof cmd, "%s init --line walk --replay %s/replay/frames --out %s --state %s/state",
             ctl, FIXTURES_DIR, cfg_path, dir);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd,
             "sed -i -e '/^  roi:/,/^  buffers:/{s/^    x: 0/    x: 8/;s/^    y: 0/    y: 8/;"
             "s/^    width: 0/    width: 64/;s/^    height: 0/    height: 64/}' "
             "-e 's/^  input_width: .*/  input_width: 64/' -e 's/^  input_height: .*/  input_height: 64/' "
             "-e 's/^  base_channels: .*/  base_channels: 8/' -e 's/^  groups: .*/  groups: 4/' "
             "-e 's/^  steps: 3000/  steps: 20/' -e 's/^  batch: .*/  batch: 4/' -e 's/^  crop: .*/  crop: 32/' "
             "-e 's/^  head_steps: .*/  head_steps: 5/' -e 's/^  replay_loop: .*/  replay_loop: false/' %s",
             cfg_path);
    run_ok(cmd);
    ad_config cfg;
    char err[AD_ERRLEN];
    if (ad_config_load(cfg_path, &cfg, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(cfg.camera.roi_width, 64);
    assert_int_equal(cfg.train.steps, 20);

    /* 2. record the good frames through the daemon's preprocessing */
    snprintf(cmd, sizeof cmd, "%s capture --config %s --count 12 --out %s/good --quiet", ctl, cfg_path, dir);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, "%s capture --config %s --count 6 --out %s/holdout --quiet", ctl, cfg_path, dir);
    run_ok(cmd);

    /* 3. train the model and the head */
    snprintf(cmd, sizeof cmd, "%s train --config %s --images %s/good", ctl, cfg_path, dir);
    run_ok(cmd);
    char model[1200], head[1300];
    snprintf(model, sizeof model, "%s/state/walk.safetensors", dir);
    snprintf(head, sizeof head, "%s/state/walk.head.safetensors", dir);
    assert_int_equal(access(model, R_OK), 0);
    assert_int_equal(access(head, R_OK), 0);

    /* 4. threshold from held-out frames, written into the YAML. A model
     * trained for seconds does not separate anything, so the rate is high:
     * at 40% of six scores the threshold (the larger of the 5th score and
     * the tail estimate, which stays below the largest) lies under the
     * highest held-out score, and the daemon, which sees those frames again,
     * must reject at least that frame. */
    snprintf(cmd, sizeof cmd, "%s calibrate --config %s --good %s/holdout --target-frr 40%% --write", ctl,
             cfg_path, dir);
    run_ok(cmd);
    if (ad_config_load(cfg_path, &cfg, err, sizeof err)) fail_msg("%s", err);
    assert_true(cfg.threshold > 0);

    /* 5. the daemon inspects every frame and logs its rejects: there are
     * some (step 4), and every reject it announces is a row, in order, with
     * a score above its threshold and its images on disk */
    char *out;
    snprintf(cmd, sizeof cmd, "%s --config %s --no-drop", daemon, cfg_path);
    if (ts_run(cmd, &out) != 0) fail_msg("'%s' failed:\n%s", cmd, out);
    char announced[1024] = "";
    int nannounced = 0;
    for (const char *p = out; (p = strstr(p, "reject: frame ")) != NULL; p++) {
        unsigned long long seq = strtoull(p + strlen("reject: frame "), NULL, 10);
        size_t used = strlen(announced);
        snprintf(announced + used, sizeof announced - used, "%s%llu", nannounced ? "," : "", seq);
        nannounced++;
    }
    free(out);
    snprintf(cmd, sizeof cmd,
             "sqlite3 %s/state/walk.db 'SELECT SUM(inspected) FROM counters; "
             "SELECT COUNT(*) FROM rejects WHERE score > threshold AND image_path IS NOT NULL "
             "AND heatmap_path IS NOT NULL; "
             "SELECT COALESCE(group_concat(frame_seq), -1) FROM "
             "(SELECT frame_seq FROM rejects ORDER BY id); "
             "SELECT COALESCE((SELECT image_path FROM rejects ORDER BY id LIMIT 1), -1);'",
             dir);
    assert_int_equal(ts_run(cmd, &out), 0);
    int inspected = -1, complete = -1;
    char seqs[1024] = "", image[1200] = "";
    if (sscanf(out, "%d %d %1023s %1199s", &inspected, &complete, seqs, image) != 4)
        fail_msg("unexpected sqlite3 output:\n%s", out);
    free(out);
    print_message("walkthrough: %d frames inspected, %d rejects announced (frames %s)\n",
                  inspected, nannounced, announced);
    assert_int_equal(inspected, 24);
    assert_true(nannounced >= 1);
    assert_int_equal(complete, nannounced); /* one row each, score above, images named */
    assert_string_equal(seqs, announced);   /* the same frames, in order */
    if (access(image, R_OK) != 0) fail_msg("the first reject's image %s is not there", image);
    ts_rmtree(dir);
    free(dir);
    free(ctl);
    free(daemon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(five_steps_on_the_replay_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* See line_station.h. */
#include "line_station.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ls_record_reference(void)
{
    char *dir = ts_tmpdir("line-ref");
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "line: {name: station}\n"
             "camera: {source: replay, replay_dir: %s/line/empty/frames, width: 80, height: 80, fps: 200,\n"
             "         roi: {x: 8, y: 8, width: 64, height: 64}}\n"
             "model: {path: %s/model/parts.safetensors, color: gray, input_width: 64, input_height: 64}\n"
             "threshold: 0.39\n",
             FIXTURES_DIR, FIXTURES_DIR);
    char *cfg = ts_write_text(dir, "empty.yaml", yaml);
    char *reference = malloc(strlen(dir) + 32);
    assert_non_null(reference);
    sprintf(reference, "%s/station/empty.png", dir);
    char args[4096];
    snprintf(args, sizeof args, "capture --config %s --empty --count 20 --out %s", cfg, reference);
    int rc;
    char *out = ts_run_bin("anomalyctl", args, &rc);
    if (rc != 0) print_error("%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "empty station: 20 frames averaged into"));
    assert_non_null(strstr(out, "ok: pixel_delta 20 is above the noise"));
    free(out);
    free(cfg);
    free(dir);
    return reference;
}

void ls_reference_free(char *reference)
{
    char *slash = strstr(reference, "/station/empty.png");
    assert_non_null(slash);
    *slash = '\0';
    ts_rmtree(reference);
    free(reference);
}

void ls_write_config(fx *f, const char *seq, bool loop, const char *mode, const char *reference,
                     const char *extra)
{
    char yaml[16384];
    snprintf(yaml, sizeof yaml,
             "line:\n  name: dtest\n"
             "camera:\n  source: replay\n  replay_dir: %s/line/%s/frames\n  replay_loop: %s\n  width: 80\n"
             "  height: 80\n  fps: 100\n  roi: {x: 8, y: 8, width: 64, height: 64}\n"
             "model:\n  path: %s\n  color: gray\n  input_width: 64\n  input_height: 64\n"
             "detector:\n  noise_level: 0.1\n  steps: 1\n  draws: 1\n  sigma: 1\n  map: head\n  threads: 1\n"
             "threshold: 0.39\n"
             "reject_log:\n  database: %s\n  image_dir: %s\n"
             "trigger:\n  mode: %s\n  part:\n    reference: %s\n"
             "%s",
             FIXTURES_DIR, seq, loop ? "true" : "false", f->model, f->db, f->images, mode, reference,
             extra ? extra : "");
    write_config_text(f, yaml);
}

void ls_run_to_end(fx *f)
{
    start_daemon(f, "--no-drop");
    int rc = wait_exit(f);
    if (rc != 0) {
        char *log = read_log(f);
        print_error("%s\n", log);
        free(log);
    }
    assert_int_equal(rc, 0);
}

int ls_read_truth(const char *seq, ls_part parts[LS_MAX_PARTS])
{
    char path[1200], line[256];
    snprintf(path, sizeof path, "%s/line/%s/truth.csv", FIXTURES_DIR, seq);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int n = 0;
    assert_non_null(fgets(line, sizeof line, fp)); /* header */
    while (fgets(line, sizeof line, fp)) {
        int part, enters, gone;
        assert_true(n < LS_MAX_PARTS);
        ls_part *t = &parts[n];
        assert_int_equal(sscanf(line, "%d,%31[^,],%d,%d,%d,%d", &part, t->defect, &enters, &t->rests_from,
                                &t->rests_to, &gone),
                         6);
        n++;
    }
    fclose(fp);
    return n;
}

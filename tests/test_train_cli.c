/* `anomalyctl train` end to end: usage and config errors (exit 2), bad data
 * (exit 1), a short run on the fixtures with log lines and a model, and
 * Ctrl-C: checkpoint, exit 0, a resume hint that works. */
#include "test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/model.h"
#include "anomalyd/util.h"

#define GOOD FIXTURES_DIR "/parts/train/good"

static char *write_config(const char *dir, const char *name, int ckpt_every)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model:\n"
             "  path: model.safetensors\n"
             "  input_width: 64\n"
             "  input_height: 64\n"
             "  base_channels: 8\n"
             "  channel_mult: [1, 2]\n"
             "  groups: 4\n"
             "detector:\n"
             "  map: diff\n"
             "  threads: 1\n"
             "threshold: 0.5\n"
             "train:\n"
             "  steps: 20\n"
             "  head_steps: 0   # the diffusion model only; the head has its own tests\n"
             "  batch: 2\n"
             "  crop: 32\n"
             "  lr: 0.002\n"
             "  warmup: 2\n"
             "  checkpoint_every: %d\n",
             ckpt_every);
    return ts_write_text(dir, name, text);
}

static int run(const char *args, char **out)
{
    char *bin = ts_bin("anomalyctl");
    char *cmd = ad_xmalloc(strlen(bin) + strlen(args) + 16);
    sprintf(cmd, "%s train %s", bin, args);
    free(bin);
    int rc = ts_run(cmd, out);
    free(cmd);
    return rc;
}

static void usage_and_config_errors_exit_2(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run("", &out), 2);
    assert_non_null(strstr(out, "--config and --images are required"));
    free(out);
    assert_int_equal(run("--help", &out), 0);
    assert_non_null(strstr(out, "usage: anomalyctl train"));
    free(out);
    assert_int_equal(run("--config x.yaml --images . --steps many", &out), 2);
    assert_non_null(strstr(out, "--steps must be"));
    free(out);
    assert_int_equal(run("--config x.yaml --images . --bogus 1", &out), 2);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
    free(out);
    assert_int_equal(run("--config", &out), 2);
    free(out);

    char *dir = ts_tmpdir("traincli");
    char *bad = ts_write_text(dir, "bad.yaml", "threshold: 0.5\nmodel:\n  path: m.safetensors\n"
                                               "train:\n  steps: lots\n");
    char args[2048];
    snprintf(args, sizeof args, "--config %s --images %s", bad, GOOD);
    assert_int_equal(run(args, &out), 2);
    assert_non_null(strstr(out, "bad.yaml:5:"));
    free(out);
    free(bad);
    /* valid YAML that training cannot use: also a config error */
    char *big = ts_write_text(dir, "big.yaml", "threshold: 0.5\nmodel:\n  path: m.safetensors\n"
                                               "  input_width: 64\ntrain:\n  crop: 128\n");
    snprintf(args, sizeof args, "--config %s --images %s", big, GOOD);
    assert_int_equal(run(args, &out), 2);
    assert_non_null(strstr(out, "big.yaml: train.crop 128 is larger than the model input"));
    free(out);
    free(big);
    ts_rmtree(dir);
    free(dir);
}

static void short_run_logs_and_writes_the_model(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("traincli");
    char *cfg = write_config(dir, "c.yaml", 0);
    char args[2048], *out = NULL;
    snprintf(args, sizeof args, "--config %s --images %s/missing", cfg, dir);
    assert_int_equal(run(args, &out), 1);
    assert_non_null(strstr(out, "/missing: cannot open the folder"));
    free(out);

    snprintf(args, sizeof args, "--config %s --images %s --steps 24", cfg, GOOD);
    int rc = run(args, &out);
    if (rc != 0) fail_msg("exit %d: %s", rc, out);
    /* not a terminal: plain lines about every 5%, the last one at the end */
    assert_non_null(strstr(out, "step 24/24 (100%)"));
    assert_non_null(strstr(out, "samples/s"));
    assert_null(strchr(out, '\r'));
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "\nstep ")) != NULL; p++) lines++;
    assert_true(lines >= 10);
    assert_non_null(strstr(out, "model written to"));
    free(out);

    char model[1200];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    ad_model *m = NULL;
    char err[AD_ERRLEN];
    if (ad_model_load(model, &m, err, sizeof err) != 0) fail_msg("%s", err);
    ad_model_free(m);
    free(cfg);
    ts_rmtree(dir);
    free(dir);
}

/* On a terminal (script(1) gives it one) the progress is one line redrawn
 * with \r: a bar, step/total, loss, samples/s and ETA. */
static void terminal_gets_a_live_progress_bar(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("traincli");
    char *cfg = write_config(dir, "c.yaml", 0);
    char *bin = ts_bin("anomalyctl");
    char *cmd = ad_xmalloc(strlen(bin) + strlen(cfg) + 256);
    sprintf(cmd, "script -qec '%s train --config %s --images %s --steps 6' /dev/null", bin, cfg,
            GOOD);
    char *out = NULL;
    int rc = ts_run(cmd, &out);
    if (rc != 0) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "\r["));
    assert_non_null(strstr(out, "] step 6/6  loss "));
    assert_non_null(strstr(out, "samples/s  ETA "));
    assert_null(strstr(out, "(100%)")); /* no plain log lines */
    free(out);
    free(cmd);
    free(bin);
    free(cfg);
    ts_rmtree(dir);
    free(dir);
}

static char *read_text(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 24, &data, &len, err, sizeof err) != 0) return ad_xstrdup("");
    return (char *)data;
}

static void ctrl_c_saves_a_checkpoint_and_resume_works(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("traincli");
    char *cfg = write_config(dir, "c.yaml", 0);
    char log[1200];
    snprintf(log, sizeof log, "%s/out.log", dir);
    char *bin = ts_bin("anomalyctl");

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "train", "--config", cfg, "--images", GOOD, "--steps", "1000000",
              (char *)NULL);
        _exit(127);
    }
    /* wait for the first progress line (training has started) */
    char *text = NULL;
    for (int i = 0; i < 2400; i++) {
        free(text);
        text = read_text(log);
        if (strstr(text, "step ")) break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!strstr(text, "step ")) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("training never started: %s", text);
    }
    free(text);
    kill(pid, SIGINT);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    text = read_text(log);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("expected exit 0 after SIGINT, status 0x%x: %s", status, text);
    const char *hint = strstr(text, "interrupted at step ");
    if (!hint) fail_msg("no interruption message: %s", text);
    long stopped_at = atol(hint + strlen("interrupted at step "));
    assert_true(stopped_at >= 1);
    assert_non_null(strstr(text, "--resume"));
    free(text);

    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors.ckpt", dir);
    ad_safetensors st = {0};
    char err[AD_ERRLEN];
    if (ad_safetensors_read(ckpt, &st, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(atol(ad_safetensors_meta(&st, "step")), stopped_at);
    ad_safetensors_free(&st);
    struct stat sb;
    char model[1200];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    assert_int_not_equal(stat(model, &sb), 0);

    char args[4096], *out = NULL;
    snprintf(args, sizeof args, "--config %s --images %s --resume %s --steps %ld", cfg, GOOD,
             ckpt, stopped_at + 3);
    int rc = run(args, &out);
    if (rc != 0) fail_msg("resume exit %d: %s", rc, out);
    char want[64];
    snprintf(want, sizeof want, "trained %ld steps", stopped_at + 3);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(stat(model, &sb), 0);
    free(bin);
    free(cfg);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usage_and_config_errors_exit_2),
        cmocka_unit_test(short_run_logs_and_writes_the_model),
        cmocka_unit_test(terminal_gets_a_live_progress_bar),
        cmocka_unit_test(ctrl_c_saves_a_checkpoint_and_resume_works),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

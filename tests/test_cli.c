/* One argument convention for every anomalyctl command (src/cli/cli.h):
 * --help prints the usage on stdout and exits 0; an unknown option, an
 * option without its value (or with another option as its value) and a
 * stray operand print "anomalyctl CMD: ..." and the usage on stderr and
 * exit 2. For report, score and synth: a value out of range, a missing
 * required option and a config that does not load are usage or config
 * errors (exit 2); a runtime failure exits 1. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name, *value_opt; /* an option that takes a value */
    int operands;                 /* takes operands (score: images) */
} commands[] = {
    {"init", "--line", 0},    {"capture", "--config", 0}, {"train", "--config", 0},
    {"calibrate", "--config", 0}, {"score", "--config", 1}, {"eval", "--config", 0},
    {"synth", "--config", 0}, {"report", "--config", 0},
};

static void expect(const char *args, int want_rc, const char *needle)
{
    char *bin = ts_bin("anomalyctl"), cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s", bin, args);
    int rc = ts_run(cmd, &out);
    if (rc != want_rc || !strstr(out, needle))
        fail_msg("'anomalyctl %s': exit %d (want %d), output lacks '%s':\n%s", args, rc, want_rc,
                 needle, out);
    free(out);
    free(bin);
}

static void every_command_follows_the_convention(void **state)
{
    (void)state;
    char args[256], want[256];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *c = commands[i].name, *v = commands[i].value_opt;
        /* help on stdout (stderr dropped), exit 0 */
        snprintf(args, sizeof args, "%s --help 2>/dev/null", c);
        snprintf(want, sizeof want, "usage: anomalyctl %s", c);
        expect(args, 0, want);
        snprintf(args, sizeof args, "%s -h 2>/dev/null", c);
        expect(args, 0, want);
        /* usage errors on stderr (stdout dropped), exit 2, with the usage */
        snprintf(args, sizeof args, "%s --no-such-option 2>&1 >/dev/null", c);
        snprintf(want, sizeof want, "anomalyctl %s: unknown option '--no-such-option'\nusage: ", c);
        expect(args, 2, want);
        snprintf(args, sizeof args, "%s %s 2>&1 >/dev/null", c, v);
        snprintf(want, sizeof want, "anomalyctl %s: option '%s' needs a value\nusage: ", c, v);
        expect(args, 2, want);
        snprintf(args, sizeof args, "%s %s --help 2>&1 >/dev/null", c, v);
        expect(args, 2, want); /* another option is not a value */
        if (!commands[i].operands) {
            snprintf(args, sizeof args, "%s stray 2>&1 >/dev/null", c);
            snprintf(want, sizeof want, "anomalyctl %s: unexpected argument 'stray'\nusage: ", c);
            expect(args, 2, want);
        }
    }
}

/* Each of report, score and synth: a bad value and a missing required
 * option are usage errors with the usage on stderr (exit 2); a config that
 * does not load exits 2 without the usage; a runtime failure exits 1. */
static void report_score_synth_exit_codes(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("cli");
    char *bad = ts_write_text(dir, "bad.yaml", "line: [broken\n");
    char args[2048];
    const char *demo = FIXTURES_DIR "/configs/demo.yaml";
    const char *parts = FIXTURES_DIR "/configs/parts.yaml";
    const char *good = FIXTURES_DIR "/parts/train/good";

    /* report */
    expect("report --out x.html 2>&1 >/dev/null", 2,
           "anomalyctl report: --config FILE is required\nusage: anomalyctl report");
    snprintf(args, sizeof args, "report --config %s --out x.html --limit 0 2>&1 >/dev/null", demo);
    expect(args, 2, "anomalyctl report: --limit takes a whole number from 1 to 10000, got '0'\nusage: ");
    snprintf(args, sizeof args, "report --config %s --out x.html --since 5x 2>&1 >/dev/null", demo);
    expect(args, 2, "anomalyctl report: --since takes a number with s, m, h or d");
    snprintf(args, sizeof args, "report --config %s --out x.html --to 2026-01-01 2>&1 >/dev/null", demo);
    expect(args, 2, "anomalyctl report: --to needs --from\nusage: ");
    snprintf(args, sizeof args, "report --config %s --out %s/x.html 2>&1 >/dev/null", bad, dir);
    expect(args, 2, "anomalyctl report: ");
    snprintf(args, sizeof args,
             "report --config %s --out %s/x.html --database %s/none.db 2>&1 >/dev/null", demo, dir,
             dir);
    expect(args, 1, "anomalyctl report: ");

    /* score */
    expect("score x.png 2>&1 >/dev/null", 2,
           "anomalyctl score: --config FILE is required\nusage: anomalyctl score");
    snprintf(args, sizeof args, "score --config %s 2>&1 >/dev/null", parts);
    expect(args, 2, "anomalyctl score: no IMAGE given\nusage: ");
    snprintf(args, sizeof args, "score --config %s x.png 2>&1 >/dev/null", bad);
    expect(args, 2, "anomalyctl score: ");
    snprintf(args, sizeof args, "score --config %s %s/none.png 2>&1 >/dev/null", parts, dir);
    expect(args, 1, "anomalyctl score: ");

    /* synth */
    snprintf(args, sizeof args, "synth --config %s --images %s 2>&1 >/dev/null", parts, good);
    expect(args, 2, "anomalyctl synth: --config, --images and --out are required\nusage: ");
    snprintf(args, sizeof args, "synth --config %s --images %s --out %s/o --count 0 2>&1 >/dev/null",
             parts, good, dir);
    expect(args, 2, "anomalyctl synth: --count must be 1..100000, got '0'\nusage: ");
    snprintf(args, sizeof args, "synth --config %s --images %s --out %s/o 2>&1 >/dev/null", bad,
             good, dir);
    expect(args, 2, "anomalyctl synth: ");
    snprintf(args, sizeof args, "synth --config %s --images %s/none --out %s/o 2>&1 >/dev/null",
             parts, dir, dir);
    expect(args, 1, "anomalyctl synth: ");

    ts_rmtree(dir);
    free(bad);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_command_follows_the_convention),
        cmocka_unit_test(report_score_synth_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* One argument convention for every anomalyctl command (src/cli/cli.h):
 * --help prints the usage on stdout and exits 0; an unknown option, an
 * option without its value (or with another option as its value) and a
 * stray operand print "anomalyctl CMD: ..." and the usage on stderr and
 * exit 2. */
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
    {"synth", "--config", 0},
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_command_follows_the_convention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

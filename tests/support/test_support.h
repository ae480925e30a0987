/* Shared test helpers. Every test includes this after the cmocka headers'
 * prerequisites. FIXTURES_DIR, SOURCE_DIR and BIN_DIR are compile definitions. */
#ifndef ANOMALYD_TEST_SUPPORT_H
#define ANOMALYD_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Makes a fresh temporary folder (mkdtemp under $TMPDIR or /tmp); returns a
 * malloc'd path. ts_rmtree removes it recursively. */
char *ts_tmpdir(const char *tag);
void ts_rmtree(const char *path);
/* Writes text to dir/name; returns malloc'd full path. */
char *ts_write_text(const char *dir, const char *name, const char *text);
/* Runs a shell command line, captures stdout+stderr (malloc'd into *output
 * if non-NULL) and returns the exit code (or 128+signal). */
int ts_run(const char *cmdline, char **output);
/* Path of a built program (BIN_DIR/name), malloc'd. */
char *ts_bin(const char *name);

#endif

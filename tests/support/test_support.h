/* Shared test helpers. Every test includes this after the cmocka headers'
 * prerequisites. FIXTURES_DIR, SOURCE_DIR and BIN_DIR are compile definitions. */
#ifndef ANOMALYD_TEST_SUPPORT_H
#define ANOMALYD_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "anomalyd/model.h"

/* 1 in a build under AddressSanitizer or ThreadSanitizer (the sanitizer
 * stages of scripts/test.sh: shadow memory, unoptimized code), else 0. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* Makes a fresh temporary folder (mkdtemp under $TMPDIR or /tmp); returns a
 * malloc'd path. ts_rmtree removes it recursively. */
char *ts_tmpdir(const char *tag);
void ts_rmtree(const char *path);
/* Writes text to dir/name; returns malloc'd full path. */
char *ts_write_text(const char *dir, const char *name, const char *text);
/* Runs a shell command line, captures stdout+stderr (malloc'd into *output
 * if non-NULL) and returns the exit code (or 128+signal). */
int ts_run(const char *cmdline, char **output);
/* Occurrences of needle in hay (not overlapping). */
size_t ts_count(const char *hay, const char *needle);
/* stderr into dir/stderr.log until stop, to count what the code under test
 * logs; stop restores stderr and returns the text (malloc'd). */
typedef struct ts_stderr_capture {
    char path[1200];
    int saved;
} ts_stderr_capture;
void ts_stderr_capture_start(ts_stderr_capture *c, const char *dir);
char *ts_stderr_capture_stop(ts_stderr_capture *c);
/* Path of a built program (BIN_DIR/name), malloc'd. */
char *ts_bin(const char *name);
/* Runs the built program with args (shell words) like ts_run; returns its
 * output (malloc'd) and puts the exit code in *rc. */
char *ts_run_bin(const char *name, const char *args, int *rc);

/* The keys of a block-style YAML file as written (a commented example
 * config): each key line's dotted path ("camera.roi.width", from the
 * indentation), its line number, and whether a comment explains it: a
 * comment line right above it, or right above the sibling key or the nested
 * mapping it directly follows (one comment for width and height, or for roi
 * and its x, y, width, height). A top-level section ("camera:") needs no
 * comment and documents nothing below it. Lines that are not keys break the
 * chain. Returns a malloc'd array of *n entries. */
typedef struct ts_yaml_key {
    char path[128];
    int line;
    int documented;
} ts_yaml_key;
ts_yaml_key *ts_yaml_keys(const char *text, size_t *n);

/* Asserts that camera controls c[0..n) read, in order, as want, which ends
 * with NULL: "gain: 40", "white_balance_automatic: false", a menu item name
 * in quotes, "auto_exposure: 'manual_mode'". */
struct ad_camera_control;
void ts_assert_controls(const struct ad_camera_control *c, int n, const char *const *want);

/* Golden fixtures written by tests/reference/make_golden.py into
 * FIXTURES_DIR/golden/: the path of NAME's network file and the tensors of
 * NAME.data.safetensors (free with ad_safetensors_free); a missing or
 * unreadable file fails the test. */
void ts_golden_path(char *out, size_t outlen, const char *name);
void ts_golden_data(const char *name, ad_safetensors *data);
/* The float32 tensor `name` of st; fails the test when it is missing or does
 * not hold `expect` floats (0: any count). Points into st. */
const float *ts_golden_tensor(const ad_safetensors *st, const char *name, size_t expect);
/* The number in metadata `key` of st; fails the test when it is missing. */
double ts_golden_meta(const ad_safetensors *st, const char *key);
/* max |a - b| / max |b|: how far a is from the reference b. */
double ts_rel_err(const float *a, const float *b, size_t n);
/* ts_rel_err of parameter tensor pi's gradient (grads + pi->offset)
 * against the reference's "grad.<name>". */
double ts_golden_grad_err(const ad_safetensors *st, const ad_param_info *pi, const float *grads);

#endif

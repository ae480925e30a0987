/* ad_config_write_threshold: only the value's bytes change, refusals leave
 * the file alone. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

static char *slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 20, &d, len, err, sizeof err) != 0) return NULL;
    char *s = ad_xmalloc(*len + 1);
    memcpy(s, d, *len);
    s[*len] = 0;
    free(d);
    return s;
}

/* before/after differ only where `old_value` became `new_value` (the first
 * occurrence of `marker`, which locates it). */
typedef struct layout {
    const char *name;
    const char *before;
    const char *after;
    double value;
} layout;

static const layout layouts[] = {
    {"comment after the value",
     "# line 3 station\nline:\n  name: line3   # the press\nthreshold: 0.5      # reject above\n"
     "model:\n  path: m.safetensors\n",
     "# line 3 station\nline:\n  name: line3   # the press\nthreshold: 0.0375      # reject above\n"
     "model:\n  path: m.safetensors\n", 0.0375},
    {"double-quoted value",
     "model: {path: m.safetensors}\nthreshold: \"0.5\"   # q\n",
     "model: {path: m.safetensors}\nthreshold: \"0.125\"   # q\n", 0.125},
    {"single-quoted value",
     "threshold: '1'\nmodel:\n  path: x\n", "threshold: '2.5'\nmodel:\n  path: x\n", 2.5},
    {"flow style elsewhere, nested key of the same name, comments naming it",
     "# threshold: 9 (old value)\ncamera: {width: 64, height: 64, roi: {x: 0, y: 0}}\n"
     "other:\n  threshold: 7\n  list: [1, 2, {threshold: 3}]\nthreshold: 0.25 #t\n",
     "# threshold: 9 (old value)\ncamera: {width: 64, height: 64, roi: {x: 0, y: 0}}\n"
     "other:\n  threshold: 7\n  list: [1, 2, {threshold: 3}]\nthreshold: 0.75 #t\n", 0.75},
    {"CRLF line endings",
     "line:\r\n  name: a\r\n\r\nthreshold:   0.5   # x\r\nmodel:\r\n  path: m\r\n",
     "line:\r\n  name: a\r\n\r\nthreshold:   0.0625   # x\r\nmodel:\r\n  path: m\r\n", 0.0625},
    {"root flow mapping with UTF-8 before the value",
     "# Gr\xc3\xb6\xc3\x9f""e der Teile\n{line: {name: \"\xc3\xbc\xc3\xbc\"}, threshold: 0.5, model: {path: m}}\n",
     "# Gr\xc3\xb6\xc3\x9f""e der Teile\n{line: {name: \"\xc3\xbc\xc3\xbc\"}, threshold: 3, model: {path: m}}\n", 3},
    {"byte order mark, key on the first line",
     "\xef\xbb\xbfthreshold: 0.5\n", "\xef\xbb\xbfthreshold: 0.001\n", 0.001},
    {"empty value with a comment",
     "threshold:   # set by calibrate\nmodel:\n  path: m\n",
     "threshold: 0.2   # set by calibrate\nmodel:\n  path: m\n", 0.2},
    {"null value, no final newline, tab before comment",
     "model:\n  path: m\nthreshold: ~\t# none yet", "model:\n  path: m\nthreshold: 12.5\t# none yet",
     12.5},
    {"document markers and a quoted key",
     "---\n\"threshold\": 0.5\n...\n", "---\n\"threshold\": 0.0001\n...\n", 0.0001},
};

static void test_preserves_every_other_byte(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("thrw");
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        const layout *l = &layouts[i];
        char *path = ts_write_text(dir, "line.yaml", l->before);
        assert_int_equal(chmod(path, 0640), 0);
        char err[AD_ERRLEN] = "";
        int rc = ad_config_write_threshold(path, l->value, l->before, strlen(l->before), err,
                                           sizeof err);
        if (rc != 0) fail_msg("%s: %s", l->name, err);
        size_t len;
        char *got = slurp(path, &len);
        assert_non_null(got);
        if (len != strlen(l->after) || memcmp(got, l->after, len) != 0)
            fail_msg("%s: got\n%s\nwant\n%s", l->name, got, l->after);
        free(got);
        char bakp[1024];
        snprintf(bakp, sizeof bakp, "%s.bak", path);
        char *bak = slurp(bakp, &len);
        assert_non_null(bak);
        assert_int_equal(len, strlen(l->before));
        assert_memory_equal(bak, l->before, len);
        free(bak);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        unlink(bakp);
        unlink(path);
        free(path);
    }
    ts_rmtree(dir);
    free(dir);
}

static void expect_refusal(const char *text, const char *needle)
{
    char *dir = ts_tmpdir("thrw");
    char *path = ts_write_text(dir, "c.yaml", text);
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_config_write_threshold(path, 1.0, text, strlen(text), err, sizeof err), -1);
    if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(got, text, len);
    free(got);
    char bakp[1024];
    snprintf(bakp, sizeof bakp, "%s.bak", path);
    assert_int_not_equal(access(bakp, F_OK), 0);
    free(path);
    ts_rmtree(dir);
    free(dir);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refusal("model:\n  path: m\n# threshold: 0.5\n", "no top-level 'threshold:'");
    expect_refusal("model:\n  threshold: 0.5\n", "no top-level 'threshold:'");
    expect_refusal("threshold: 0.5\nthreshold: 0.6\n", "appears twice");
    expect_refusal("threshold: {a: 1}\n", "must be a number");
    expect_refusal("threshold: [1]\n", "must be a number");
    expect_refusal("x: &t 0.5\nthreshold: *t\n", "alias");
    expect_refusal("threshold: &t 0.5\ny: *t\n", "anchor");
    expect_refusal("threshold: !!float 0.5\n", "tag");
    expect_refusal("threshold: |\n  0.5\n", "block scalar");
    expect_refusal("- threshold: 0.5\n", "list");
    expect_refusal("threshold: 0.5\nx: \"open\n", "not valid YAML");
    expect_refusal("threshold: 0.5\n---\nthreshold: 0.6\n", "several YAML documents");
}

static void test_refuses_concurrent_change(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("thrw");
    const char *original = "threshold: 0.5 # a\nmodel:\n  path: m\n";
    const char *edited = "threshold: 0.5 # a\nmodel:\n  path: other\n";
    char *path = ts_write_text(dir, "c.yaml", edited); /* someone edited it meanwhile */
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_config_write_threshold(path, 0.7, original, strlen(original), err,
                                               sizeof err), -1);
    assert_non_null(strstr(err, "changed since it was read"));
    size_t len;
    char *got = slurp(path, &len);
    assert_string_equal(got, edited);
    free(got);
    /* negative and non-finite values are refused too */
    assert_int_equal(ad_config_write_threshold(path, -1, edited, strlen(edited), err, sizeof err), -1);
    assert_non_null(strstr(err, ">= 0"));
    free(path);
    ts_rmtree(dir);
    free(dir);
}

static void test_symlink_writes_target(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("thrw");
    const char *text = "threshold: 0.5\n";
    char *real = ts_write_text(dir, "real.yaml", text);
    char link[1024];
    snprintf(link, sizeof link, "%s/link.yaml", dir);
    assert_int_equal(symlink(real, link), 0);
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_config_write_threshold(link, 0.25, text, strlen(text), err, sizeof err), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    size_t len;
    char *got = slurp(real, &len);
    assert_string_equal(got, "threshold: 0.25\n");
    free(got);
    free(real);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preserves_every_other_byte),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refuses_concurrent_change),
        cmocka_unit_test(test_symlink_writes_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

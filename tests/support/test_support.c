#include "test_support.h"

#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

char *ts_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char *path = ad_xmalloc(strlen(base) + strlen(tag) + 32);
    sprintf(path, "%s/anomalyd-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) ad_die("mkdtemp %s failed", path);
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ts_rmtree(const char *path)
{
    if (path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *ts_write_text(const char *dir, const char *name, const char *text)
{
    char *path = ad_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) ad_die("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

int ts_run(const char *cmdline, char **output)
{
    char *full = ad_xmalloc(strlen(cmdline) + 16);
    sprintf(full, "(%s) 2>&1", cmdline);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) ad_die("popen failed");
    size_t cap = 4096, len = 0;
    char *buf = ad_xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = ad_xrealloc(buf, cap);
        }
    }
    buf[len] = 0;
    int status = pclose(p);
    if (output)
        *output = buf;
    else
        free(buf);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

size_t ts_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

void ts_stderr_capture_start(ts_stderr_capture *c, const char *dir)
{
    snprintf(c->path, sizeof c->path, "%s/stderr.log", dir);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(c->saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

char *ts_stderr_capture_stop(ts_stderr_capture *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    uint8_t *text = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    if (ad_read_file(c->path, 1 << 24, &text, &len, err, sizeof err) != 0) fail_msg("%s", err);
    return (char *)text;
}

char *ts_bin(const char *name)
{
    char *path = ad_xmalloc(strlen(BIN_DIR) + strlen(name) + 2);
    sprintf(path, "%s/%s", BIN_DIR, name);
    return path;
}

char *ts_run_bin(const char *name, const char *args, int *rc)
{
    char *bin = ts_bin(name);
    char *cmd = ad_xmalloc(strlen(bin) + strlen(args) + 2);
    sprintf(cmd, "%s %s", bin, args);
    char *out = NULL;
    *rc = ts_run(cmd, &out);
    free(cmd);
    free(bin);
    return out;
}

void ts_golden_path(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/golden/%s.safetensors", FIXTURES_DIR, name);
}

void ts_golden_data(const char *name, ad_safetensors *data)
{
    char path[1024], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/golden/%s.data.safetensors", FIXTURES_DIR, name);
    if (ad_safetensors_read(path, data, err, sizeof err) < 0) fail_msg("%s", err);
}

const float *ts_golden_tensor(const ad_safetensors *st, const char *name, size_t expect)
{
    const ad_st_tensor *t = ad_safetensors_find(st, name);
    if (!t) fail_msg("golden tensor '%s' missing", name);
    if (expect && t->nbytes != expect * sizeof(float))
        fail_msg("golden tensor '%s' has %zu floats, expected %zu", name, t->nbytes / sizeof(float), expect);
    return (const float *)(st->data + t->offset);
}

double ts_golden_meta(const ad_safetensors *st, const char *key)
{
    const char *v = ad_safetensors_meta(st, key);
    if (!v) fail_msg("golden metadata '%s' missing", key);
    return atof(v);
}

double ts_rel_err(const float *a, const float *b, size_t n)
{
    double md = 0.0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

double ts_golden_grad_err(const ad_safetensors *st, const ad_param_info *pi, const float *grads)
{
    char key[160];
    snprintf(key, sizeof key, "grad.%s", pi->name);
    return ts_rel_err(grads + pi->offset, ts_golden_tensor(st, key, pi->count), pi->count);
}

ts_yaml_key *ts_yaml_keys(const char *text, size_t *n)
{
    ts_yaml_key *keys = NULL;
    size_t count = 0, cap = 0;
    struct {
        int indent;
        char name[64];
    } stack[8];
    int depth = 0, line = 0, documented = 0;
    for (const char *p = text; *p; line++) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int indent = 0;
        while ((size_t)indent < len && p[indent] == ' ') indent++;
        const char *k = p + indent;
        size_t klen = 0;
        while (indent + klen < len && (isalnum((unsigned char)k[klen]) || k[klen] == '_')) klen++;
        int is_key = klen > 0 && klen < 64 && indent + klen < len && k[klen] == ':' &&
                     (indent + klen + 1 == len || k[klen + 1] == ' ');
        if ((size_t)indent == len) {
            documented = 0; /* blank line */
        } else if (*k == '#') {
            documented = 1;
        } else if (!is_key) {
            documented = 0;
        } else {
            while (depth > 0 && stack[depth - 1].indent >= indent) depth--;
            char path[128] = "";
            for (int i = 0; i < depth; i++) {
                strncat(path, stack[i].name, sizeof path - strlen(path) - 1);
                strncat(path, ".", sizeof path - strlen(path) - 1);
            }
            strncat(path, k, klen < sizeof path - strlen(path) - 1 ? klen : sizeof path - strlen(path) - 1);
            if (depth < 8) {
                stack[depth].indent = indent;
                snprintf(stack[depth].name, sizeof stack[depth].name, "%.*s", (int)klen, k);
                depth++;
            }
            const char *v = k + klen + 1;
            while (v < p + len && *v == ' ') v++;
            int section = indent == 0 && (v == p + len || *v == '#');
            if (count == cap) {
                cap = cap ? 2 * cap : 64;
                keys = realloc(keys, cap * sizeof *keys);
                if (!keys) ad_die("out of memory");
            }
            snprintf(keys[count].path, sizeof keys[count].path, "%s", path);
            keys[count].line = line + 1;
            keys[count].documented = section || documented;
            count++;
            if (section) documented = 0; /* a section header explains nothing below it */
        }
        p += len + (end ? 1 : 0);
    }
    *n = count;
    return keys;
}

void ts_assert_controls(const ad_camera_control *c, int n, const char *const *want)
{
    int i = 0;
    for (; want[i]; i++) {
        char got[128] = "(none)";
        if (i >= n)
            ;
        else if (c[i].kind == AD_CONTROL_ITEM)
            snprintf(got, sizeof got, "%s: '%s'", c[i].name, c[i].item);
        else if (c[i].kind == AD_CONTROL_BOOL)
            snprintf(got, sizeof got, "%s: %s", c[i].name, c[i].value ? "true" : "false");
        else
            snprintf(got, sizeof got, "%s: %lld", c[i].name, (long long)c[i].value);
        if (strcmp(got, want[i])) fail_msg("control %d is %s, expected %s", i, got, want[i]);
    }
    assert_int_equal(n, i);
}

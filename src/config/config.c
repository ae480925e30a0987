/* Strict YAML config parser: libyaml events walked against the key table.
 *
 * The first problem wins and is reported as "FILE:LINE:COL: what is wrong,
 * what was expected" at the node that is wrong. Nothing is written to the
 * caller's struct unless the whole file is valid. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_KEYS 128
#define STATE_DIR "/var/lib/anomalyd"

typedef struct parse_state {
    yaml_parser_t yp;
    const char *name;              /* file name used in messages */
    const unsigned char *text;
    size_t len;
    ad_config *cfg;
    const ad_config_key *keys;
    size_t nkeys;
    size_t line[CONFIG_MAX_KEYS];  /* 1-based location of each key's value, 0 = absent */
    size_t col[CONFIG_MAX_KEYS];
    char *err;
    size_t errlen;
} parse_state;

static void *field(ad_config *cfg, const ad_config_key *k) { return (char *)cfg + k->offset; }

/* A value fit for a message: at most 40 bytes, control bytes escaped. */
static void show(char *out, size_t n, const char *v, size_t len)
{
    size_t o = 0, limit = 40;
    bool cut = len > limit;
    if (cut) {
        len = limit;
        while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80) len--; /* whole UTF-8 chars */
    }
    for (size_t i = 0; i < len && o + 5 < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\n') o += (size_t)snprintf(out + o, n - o, "\\n");
        else if (c == '\t') o += (size_t)snprintf(out + o, n - o, "\\t");
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    if (cut && o + 4 < n) o += (size_t)snprintf(out + o, n - o, "...");
    out[o < n ? o : n - 1] = '\0';
}

static int fail_at(parse_state *st, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(parse_state *st, yaml_mark_t m, const char *fmt, ...)
{
    char msg[AD_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ad_err(st->err, st->errlen, "%s:%zu:%zu: %s", st->name, m.line + 1, m.column + 1, msg);
}

static int fail_key(parse_state *st, const ad_config_key *k, size_t key_index,
                    const char *what) /* at the key's value, "KEY: what, expected ..." */
{
    char expect[256];
    ad_config_key_expect(k, expect, sizeof expect);
    yaml_mark_t m = {0, 0, 0};
    if (st->line[key_index]) m.line = st->line[key_index] - 1, m.column = st->col[key_index] - 1;
    return fail_at(st, m, "%s: %s, expected %s", k->name, what, expect);
}

/* Byte offset of a libyaml mark (line, column in characters) in the input,
 * or len when it cannot be found; used only to look for a tab there. */
static size_t mark_offset(const parse_state *st, yaml_mark_t m)
{
    size_t off = 0;
    for (size_t line = 0; line < m.line; line++) {
        const unsigned char *nl = memchr(st->text + off, '\n', st->len - off);
        if (!nl) return st->len;
        off = (size_t)(nl - st->text) + 1;
    }
    for (size_t c = 0; c < m.column && off < st->len; c++) {
        off++;
        while (off < st->len && (st->text[off] & 0xC0) == 0x80) off++;
    }
    return off;
}

static int fail_yaml(parse_state *st)
{
    yaml_parser_t *p = &st->yp;
    if (p->error == YAML_MEMORY_ERROR) ad_die("%s: out of memory parsing YAML", st->name);
    if (p->error == YAML_READER_ERROR) {
        /* reader errors carry a byte offset, not a mark */
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < st->len; i++) {
            if (st->text[i] == '\n') line++, col = 1;
            else col++;
        }
        char extra[32] = "";
        if (p->problem_value != -1) snprintf(extra, sizeof extra, " (byte 0x%02x)", p->problem_value & 0xff);
        return ad_err(st->err, st->errlen, "%s:%zu:%zu: %s%s, expected UTF-8 text without control characters",
                      st->name, line, col, p->problem ? p->problem : "unreadable input", extra);
    }
    yaml_mark_t m = p->problem_mark;
    size_t off = mark_offset(st, m);
    if (off < st->len && st->text[off] == '\t')
        return fail_at(st, m, "tab character in indentation, expected spaces (YAML does not allow tabs there)");
    char context[128] = "";
    if (p->context)
        snprintf(context, sizeof context, " (%s at line %zu)", p->context, p->context_mark.line + 1);
    return fail_at(st, m, "invalid YAML: %s%s, expected well-formed YAML with consistent indentation and quoting",
                   p->problem ? p->problem : "syntax error", context);
}

static const char *node_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_SCALAR_EVENT: return "a single value";
    default: return "an unexpected YAML item";
    }
}

/* Next event; aliases, anchors and explicit tags are refused here, once. */
static int next_event(parse_state *st, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&st->yp, ev)) return fail_yaml(st);
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        fail_at(st, ev->start_mark, "YAML alias '*%s' is not supported, expected a plain value",
                (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return -1;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default: break;
    }
    if (anchor) {
        char shown[64];
        show(shown, sizeof shown, (const char *)anchor, strlen((const char *)anchor));
        fail_at(st, ev->start_mark, "YAML anchor '&%s' is not supported, expected a plain value", shown);
        yaml_event_delete(ev);
        return -1;
    }
    if (tag) {
        char shown[64];
        show(shown, sizeof shown, (const char *)tag, strlen((const char *)tag));
        fail_at(st, ev->start_mark, "explicit YAML tag '%s' is not supported, expected a plain value", shown);
        yaml_event_delete(ev);
        return -1;
    }
    return 0;
}

static bool is_null(const char *v, size_t len, bool plain)
{
    if (!plain) return false;
    return len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* YAML 1.2 core float: [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE][-+]?[0-9]+ )? */
static bool is_decimal_number(const char *s)
{
    if (*s == '+' || *s == '-') s++;
    int digits = 0;
    while (*s >= '0' && *s <= '9') s++, digits++;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') s++, digits++;
    }
    if (!digits) return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!all_digits(s)) return false;
        return true;
    }
    return *s == '\0';
}

/* Converts one scalar for key k into cfg. On failure returns -1 and writes
 * "what is wrong" (without the key or the expectation) into why. */
static int convert_scalar(const ad_config_key *k, const char *v, size_t len, bool plain, void *dst,
                          char *why, size_t whylen)
{
    char shown[128];
    show(shown, sizeof shown, v, len);
    bool null = is_null(v, len, plain);
    if (k->type == AD_CFG_STRING || k->type == AD_CFG_PATH) {
        if (null) len = 0;
        if (memchr(v, '\0', len)) return snprintf(why, whylen, "the value contains a NUL byte"), -1;
        if (len >= k->size)
            return snprintf(why, whylen, "the value is %zu bytes long", len), -1;
        if (k->flags & AD_CFG_NAME_CHARS) {
            if (len == 0) return snprintf(why, whylen, "the name is empty"), -1;
            for (size_t i = 0; i < len; i++) {
                char c = v[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '-'))
                    return snprintf(why, whylen, "'%s' has a character that is not allowed", shown), -1;
            }
        }
        memset(dst, 0, k->size);
        memcpy(dst, v, len);
        return 0;
    }
    if (null) return snprintf(why, whylen, "the value is empty"), -1;
    if (k->type == AD_CFG_ENUM) {
        for (int i = 0; k->choices[i]; i++)
            if (strlen(k->choices[i]) == len && memcmp(k->choices[i], v, len) == 0) {
                *(int *)dst = k->choice_values[i];
                return 0;
            }
        for (int i = 0; k->choices[i]; i++)
            if (strlen(k->choices[i]) == len && strncasecmp(k->choices[i], v, len) == 0)
                return snprintf(why, whylen, "'%s' is not a valid choice (did you mean %s?)", shown, k->choices[i]),
                       -1;
        return snprintf(why, whylen, "'%s' is not a valid choice", shown), -1;
    }
    if (!plain) return snprintf(why, whylen, "\"%s\" is a quoted string", shown), -1;
    if (memchr(v, '\0', len)) return snprintf(why, whylen, "the value contains a NUL byte"), -1;
    switch (k->type) {
    case AD_CFG_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) *(bool *)dst = true;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) *(bool *)dst = false;
        else return snprintf(why, whylen, "'%s' is not true or false", shown), -1;
        return 0;
    case AD_CFG_INT: {
        const char *d = v + (v[0] == '+' || v[0] == '-');
        if (!all_digits(d)) return snprintf(why, whylen, "'%s' is not an integer", shown), -1;
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        if (errno == ERANGE || x < (long long)k->min || x > (long long)k->max)
            return snprintf(why, whylen, "%s is out of range", shown), -1;
        *(int *)dst = (int)x;
        return 0;
    }
    case AD_CFG_U64: {
        const char *d = v + (v[0] == '+');
        if (v[0] == '-' && all_digits(v + 1)) return snprintf(why, whylen, "%s is out of range", shown), -1;
        if (!all_digits(d)) return snprintf(why, whylen, "'%s' is not an integer", shown), -1;
        errno = 0;
        unsigned long long x = strtoull(d, NULL, 10);
        if (errno == ERANGE) return snprintf(why, whylen, "%s is out of range", shown), -1;
        *(uint64_t *)dst = (uint64_t)x;
        return 0;
    }
    case AD_CFG_FLOAT: {
        if (!is_decimal_number(v)) return snprintf(why, whylen, "'%s' is not a number", shown), -1;
        double x = strtod(v, NULL);
        bool low = (k->flags & AD_CFG_MIN_EXCLUSIVE) ? !(x > k->min) : !(x >= k->min);
        if (!isfinite(x) || low || x > k->max) return snprintf(why, whylen, "%s is out of range", shown), -1;
        *(double *)dst = x;
        return 0;
    }
    default: AD_ASSERT(0 && "list keys are not scalars");
    }
    return -1;
}

/* The next entry of a list key: 1 with a scalar in *ev (the caller deletes
 * it), 0 at the end of the list, -1 on error (reported). */
static int next_list_entry(parse_state *st, const ad_config_key *k, const char *expect, yaml_event_t *ev)
{
    if (next_event(st, ev)) return -1;
    if (ev->type == YAML_SEQUENCE_END_EVENT) {
        yaml_event_delete(ev);
        return 0;
    }
    if (ev->type != YAML_SCALAR_EVENT) {
        fail_at(st, ev->start_mark, "%s: an entry is %s, expected %s", k->name, node_kind(ev->type), expect);
        yaml_event_delete(ev);
        return -1;
    }
    return 1;
}

/* A list key: a YAML sequence of integers. `start` is its SEQUENCE_START. */
static int parse_int_list(parse_state *st, const ad_config_key *k, size_t ki, yaml_mark_t start)
{
    int *dst = field(st->cfg, k);
    int *count = (int *)((char *)st->cfg + k->count_offset);
    size_t n = 0;
    char expect[256];
    ad_config_key_expect(k, expect, sizeof expect);
    memset(dst, 0, k->size * sizeof(int));
    for (;;) {
        yaml_event_t ev;
        int more = next_list_entry(st, k, expect, &ev);
        if (more < 0) return -1;
        if (!more) break;
        /* entries are checked like an int key with the list's entry range */
        ad_config_key entry = *k;
        entry.type = AD_CFG_INT;
        int value = 0;
        char why[256];
        const char *v = (const char *)ev.data.scalar.value;
        if (convert_scalar(&entry, v, ev.data.scalar.length, ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE,
                           &value, why, sizeof why)) {
            fail_at(st, ev.start_mark, "%s: entry %zu: %s, expected %s", k->name, n + 1, why, expect);
            yaml_event_delete(&ev);
            return -1;
        }
        if (n < k->size) dst[n] = value;
        n++;
        yaml_event_delete(&ev);
    }
    st->line[ki] = start.line + 1;
    st->col[ki] = start.column + 1;
    if (n < k->min_count || n > k->size)
        return fail_at(st, start, "%s has %zu entries, expected %s", k->name, n, expect);
    *count = (int)n;
    return 0;
}

/* A string list key (an argv): a YAML sequence of scalars, stored back to
 * back, each NUL-terminated. `start` is its SEQUENCE_START. */
static int parse_string_list(parse_state *st, const ad_config_key *k, size_t ki, yaml_mark_t start)
{
    char *dst = field(st->cfg, k);
    int *count = (int *)((char *)st->cfg + k->count_offset);
    size_t n = 0, used = 0;
    char expect[256];
    ad_config_key_expect(k, expect, sizeof expect);
    memset(dst, 0, k->size);
    for (;;) {
        yaml_event_t ev;
        int more = next_list_entry(st, k, expect, &ev);
        if (more < 0) return -1;
        if (!more) break;
        const char *v = (const char *)ev.data.scalar.value;
        size_t len = ev.data.scalar.length;
        const char *why = NULL;
        if (memchr(v, '\0', len)) why = "contains a NUL byte";
        else if (n == 0 && len == 0) why = "(the program) is empty";
        else if (used + len + 1 > k->size) why = "goes beyond the size limit";
        else if (n + 1 > (size_t)k->max) why = "is one too many";
        if (why) {
            fail_at(st, ev.start_mark, "%s: entry %zu %s, expected %s", k->name, n + 1, why, expect);
            yaml_event_delete(&ev);
            return -1;
        }
        memcpy(dst + used, v, len);
        used += len + 1;
        n++;
        yaml_event_delete(&ev);
    }
    st->line[ki] = start.line + 1;
    st->col[ki] = start.column + 1;
    if (n < k->min_count) return fail_at(st, start, "%s has %zu entries, expected %s", k->name, n, expect);
    *count = (int)n;
    return 0;
}

/* What a camera.controls value may be; a mapping's own expectation is the key's. */
#define CONTROL_VALUE_EXPECT "an integer, true or false, or a menu item name of at most 31 bytes"

/* One camera.controls value into c: an integer (a menu's index), true/false,
 * or any other text as a menu item name. */
static int parse_control_value(parse_state *st, const char *key, const yaml_event_t *ev, ad_camera_control *c)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    char shown[128];
    show(shown, sizeof shown, v, len);
    const char *why = NULL;
    if (len == 0 || is_null(v, len, plain)) why = "the value is empty";
    else if (memchr(v, '\0', len)) why = "the value contains a NUL byte";
    if (why) return fail_at(st, ev->start_mark, "camera.controls.%s: %s, expected " CONTROL_VALUE_EXPECT, key, why);
    if (plain && all_digits(v + (v[0] == '+' || v[0] == '-'))) {
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        if (errno == ERANGE)
            return fail_at(st, ev->start_mark,
                           "camera.controls.%s: %s is out of range, expected an integer of at most 64 bits", key,
                           shown);
        c->kind = AD_CONTROL_INT;
        c->value = x;
        return 0;
    }
    if (plain && (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE") || !strcmp(v, "false") ||
                  !strcmp(v, "False") || !strcmp(v, "FALSE"))) {
        c->kind = AD_CONTROL_BOOL;
        c->value = v[0] == 't' || v[0] == 'T';
        return 0;
    }
    if (plain && is_decimal_number(v)) /* no V4L2 control takes a fraction */
        return fail_at(st, ev->start_mark, "camera.controls.%s: '%s' is not an integer, expected " CONTROL_VALUE_EXPECT,
                       key, shown);
    if (len >= sizeof c->item)
        return fail_at(st, ev->start_mark,
                       "camera.controls.%s: the menu item name is %zu bytes long, expected " CONTROL_VALUE_EXPECT, key,
                       len);
    c->kind = AD_CONTROL_ITEM;
    memcpy(c->item, v, len);
    return 0;
}

/* camera.controls: a mapping of control names, as v4l2-ctl prints them, to
 * values. Whether the camera has them is checked when it opens (and by
 * --check-config). `start` is its MAPPING_START. */
static int parse_controls(parse_state *st, const ad_config_key *k, size_t ki, yaml_mark_t start)
{
    ad_camera_control *dst = field(st->cfg, k);
    int *count = (int *)((char *)st->cfg + k->count_offset);
    size_t n = 0, first_line[AD_MAX_CONTROLS];
    char expect[256];
    ad_config_key_expect(k, expect, sizeof expect);
    AD_ASSERT(k->size <= AD_MAX_CONTROLS);
    memset(dst, 0, k->size * sizeof *dst);
    for (;;) {
        yaml_event_t kev, vev;
        if (next_event(st, &kev)) return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            fail_at(st, kev.start_mark, "%s: a control name is %s, expected %s", k->name, node_kind(kev.type), expect);
            yaml_event_delete(&kev);
            return -1;
        }
        const char *name = (const char *)kev.data.scalar.value;
        size_t len = kev.data.scalar.length;
        char shown[128], normal[AD_CONTROL_NAME_BYTES], hint[AD_CONTROL_NAME_BYTES + 32] = "";
        show(shown, sizeof shown, name, len);
        ad_control_name(normal, sizeof normal, name);
        bool bad = len == 0 || len >= sizeof normal || memchr(name, '\0', len) || strcmp(normal, name) != 0;
        if (bad && normal[0] && strlen(name) < sizeof normal)
            snprintf(hint, sizeof hint, " (did you mean %s?)", normal);
        for (size_t i = 0; !bad && i < n; i++)
            if (strcmp(dst[i].name, name) == 0) {
                fail_at(st, kev.start_mark, "duplicate key '%s.%s' (first given at line %zu), expected each key once",
                        k->name, name, first_line[i]);
                yaml_event_delete(&kev);
                return -1;
            }
        if (bad)
            fail_at(st, kev.start_mark,
                    "%s: '%s' is not a control name as v4l2-ctl --list-ctrls prints it%s, expected lower-case "
                    "letters and digits joined by single underscores",
                    k->name, shown, hint);
        else if (n == k->size)
            fail_at(st, kev.start_mark, "%s has more than %zu controls, expected %s", k->name, k->size, expect);
        if (bad || n == k->size) {
            yaml_event_delete(&kev);
            return -1;
        }
        memcpy(dst[n].name, name, len + 1);
        first_line[n] = kev.start_mark.line + 1;
        yaml_event_delete(&kev);
        if (next_event(st, &vev)) return -1;
        int rc = vev.type == YAML_SCALAR_EVENT
                     ? parse_control_value(st, dst[n].name, &vev, &dst[n])
                     : fail_at(st, vev.start_mark, "%s.%s: got %s, expected " CONTROL_VALUE_EXPECT, k->name,
                               dst[n].name, node_kind(vev.type));
        yaml_event_delete(&vev);
        if (rc) return -1;
        n++;
    }
    st->line[ki] = start.line + 1;
    st->col[ki] = start.column + 1;
    *count = (int)n;
    return 0;
}

static int parse_value(parse_state *st, const ad_config_key *k)
{
    size_t ki = (size_t)(k - st->keys);
    char expect[256];
    ad_config_key_expect(k, expect, sizeof expect);
    yaml_event_t ev;
    if (next_event(st, &ev)) return -1;
    if (k->type == AD_CFG_INT_LIST || k->type == AD_CFG_STRING_LIST) {
        bool argv = k->type == AD_CFG_STRING_LIST;
        if (ev.type != YAML_SEQUENCE_START_EVENT) {
            fail_at(st, ev.start_mark, "%s: got %s, expected %s%s", k->name, node_kind(ev.type), expect,
                    argv ? " (an argv list, never a shell string)" : "");
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_mark_t start = ev.start_mark;
        yaml_event_delete(&ev);
        return argv ? parse_string_list(st, k, ki, start) : parse_int_list(st, k, ki, start);
    }
    if (k->type == AD_CFG_CONTROLS) {
        yaml_mark_t start = ev.start_mark;
        bool empty = ev.type == YAML_SCALAR_EVENT && /* every control commented out */
                     is_null((const char *)ev.data.scalar.value, ev.data.scalar.length,
                             ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_MAPPING_START_EVENT) return parse_controls(st, k, ki, start);
        if (!empty) return fail_at(st, start, "%s: got %s, expected %s", k->name, node_kind(t), expect);
        st->line[ki] = start.line + 1;
        st->col[ki] = start.column + 1;
        return 0;
    }
    if (ev.type != YAML_SCALAR_EVENT) {
        fail_at(st, ev.start_mark, "%s: got %s, expected %s", k->name, node_kind(ev.type), expect);
        yaml_event_delete(&ev);
        return -1;
    }
    char why[256];
    int rc = convert_scalar(k, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                            ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, field(st->cfg, k), why, sizeof why);
    if (rc) fail_at(st, ev.start_mark, "%s: %s, expected %s", k->name, why, expect);
    st->line[ki] = ev.start_mark.line + 1;
    st->col[ki] = ev.start_mark.column + 1;
    yaml_event_delete(&ev);
    return rc;
}

/* True when some key lives below `prefix` ("camera" or "camera.roi"). */
static bool is_section(const parse_state *st, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < st->nkeys; i++)
        if (strncmp(st->keys[i].name, prefix, pl) == 0 && st->keys[i].name[pl] == '.') return true;
    return false;
}

/* "a, b, c": the distinct names directly below prefix ("" = top level). */
static void list_children(const parse_state *st, const char *prefix, char *out, size_t n)
{
    size_t pl = strlen(prefix), used = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < st->nkeys; i++) {
        const char *name = st->keys[i].name;
        if (pl) {
            if (strncmp(name, prefix, pl) != 0 || name[pl] != '.') continue;
            name += pl + 1;
        }
        size_t len = strcspn(name, ".");
        if (prev && prev_len == len && memcmp(prev, name, len) == 0) continue; /* sections are contiguous */
        if (used < n) used += (size_t)snprintf(out + used, n - used, "%s%.*s", used ? ", " : "", (int)len, name);
        prev = name;
        prev_len = len;
    }
}

/* Edit distance of two short strings (keys are < 64 bytes). */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t row[64];
    if (la >= 64 || lb >= 64) return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* A hint for an unknown key: a sibling one or two typos away ("widht" ->
 * width), else where a misplaced key lives ("width" at top level ->
 * camera.width). Empty when there is none. */
static void suggest(const parse_state *st, const char *prefix, const char *key, char *out, size_t n)
{
    size_t pl = strlen(prefix), kl = strlen(key), best = kl > 3 ? 3 : kl > 1 ? 2 : 1;
    out[0] = '\0';
    for (size_t i = 0; i < st->nkeys; i++) {
        const char *name = st->keys[i].name;
        if (pl) {
            if (strncmp(name, prefix, pl) != 0 || name[pl] != '.') continue;
            name += pl + 1;
        }
        size_t len = strcspn(name, ".");
        size_t d = edit_distance(key, kl, name, len);
        if (d < best) {
            best = d;
            snprintf(out, n, "%.*s", (int)len, name);
        }
    }
    if (out[0]) return;
    for (size_t i = 0; i < st->nkeys; i++) {
        const char *dot = strrchr(st->keys[i].name, '.');
        if (dot && strcmp(dot + 1, key) == 0) {
            snprintf(out, n, "%s", st->keys[i].name);
            return;
        }
    }
}

typedef struct seen_key {
    char name[64];
    size_t line;
} seen_key;

/* Body of a mapping at `prefix` ("" = top level); its MAPPING_START is consumed. */
static int parse_mapping(parse_state *st, const char *prefix)
{
    seen_key seen[64];
    size_t nseen = 0;
    for (;;) {
        yaml_event_t kev;
        if (next_event(st, &kev)) return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            fail_at(st, kev.start_mark, "a key is %s, expected a plain key name", node_kind(kev.type));
            yaml_event_delete(&kev);
            return -1;
        }
        const char *key = (const char *)kev.data.scalar.value;
        size_t klen = kev.data.scalar.length;
        yaml_mark_t kmark = kev.start_mark;
        char full[160] = "";
        const ad_config_key *k = NULL;
        bool section = false;
        if (klen < 64 && !memchr(key, '\0', klen) && !strchr(key, '.')) {
            snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", key);
            k = ad_config_key_find(full);
            section = !k && is_section(st, full);
        }
        if (!k && !section) {
            char shown[128], children[400], hint[128] = "";
            show(shown, sizeof shown, key, klen);
            list_children(st, prefix, children, sizeof children);
            char other[100] = "";
            if (klen < 64) suggest(st, prefix, key, other, sizeof other);
            if (other[0]) snprintf(hint, sizeof hint, " (did you mean %s?)", other);
            if (prefix[0])
                fail_at(st, kmark, "unknown key '%s' in %s%s, expected one of: %s", shown, prefix, hint, children);
            else
                fail_at(st, kmark, "unknown key '%s' at top level%s, expected one of: %s", shown, hint, children);
            yaml_event_delete(&kev);
            return -1;
        }
        for (size_t i = 0; i < nseen; i++)
            if (strcmp(seen[i].name, key) == 0) {
                fail_at(st, kmark, "duplicate key '%s' (first given at line %zu), expected each key once", full,
                        seen[i].line);
                yaml_event_delete(&kev);
                return -1;
            }
        AD_ASSERT(nseen < sizeof seen / sizeof seen[0]);
        snprintf(seen[nseen].name, sizeof seen[nseen].name, "%s", key);
        seen[nseen++].line = kmark.line + 1;
        yaml_event_delete(&kev);

        if (k) {
            if (parse_value(st, k)) return -1;
            continue;
        }
        yaml_event_t vev;
        if (next_event(st, &vev)) return -1;
        if (vev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&vev);
            if (parse_mapping(st, full)) return -1;
            continue;
        }
        /* "camera:" with every setting commented out is an empty section */
        bool empty = vev.type == YAML_SCALAR_EVENT &&
                     is_null((const char *)vev.data.scalar.value, vev.data.scalar.length,
                             vev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
        if (!empty) {
            char children[400];
            list_children(st, full, children, sizeof children);
            fail_at(st, vev.start_mark, "%s: got %s, expected a mapping with keys %s", full,
                    node_kind(vev.type), children);
        }
        yaml_event_delete(&vev);
        if (!empty) return -1;
    }
}

static int fail_empty(parse_state *st)
{
    return ad_err(st->err, st->errlen,
                  "%s: the file has no settings, expected a YAML mapping with at least model.path and threshold",
                  st->name);
}

static int parse_stream(parse_state *st)
{
    yaml_event_t ev;
    if (next_event(st, &ev)) return -1;
    AD_ASSERT(ev.type == YAML_STREAM_START_EVENT);
    yaml_event_delete(&ev);
    if (next_event(st, &ev)) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return fail_empty(st);
    }
    AD_ASSERT(ev.type == YAML_DOCUMENT_START_EVENT);
    yaml_event_delete(&ev);

    if (next_event(st, &ev)) return -1;
    if (ev.type == YAML_SCALAR_EVENT && is_null((const char *)ev.data.scalar.value, ev.data.scalar.length,
                                                ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
        yaml_event_delete(&ev);
        return fail_empty(st);
    }
    if (ev.type != YAML_MAPPING_START_EVENT) {
        char children[400];
        list_children(st, "", children, sizeof children);
        fail_at(st, ev.start_mark, "the top level is %s, expected a mapping with keys %s", node_kind(ev.type),
                children);
        yaml_event_delete(&ev);
        return -1;
    }
    yaml_event_delete(&ev);
    if (parse_mapping(st, "")) return -1;

    if (next_event(st, &ev)) return -1;
    AD_ASSERT(ev.type == YAML_DOCUMENT_END_EVENT);
    yaml_event_delete(&ev);
    if (next_event(st, &ev)) return -1;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        fail_at(st, ev.start_mark, "a second YAML document starts here, expected one document per file");
        yaml_event_delete(&ev);
        return -1;
    }
    AD_ASSERT(ev.type == YAML_STREAM_END_EVENT);
    yaml_event_delete(&ev);
    return 0;
}

static size_t key_index(const parse_state *st, const char *name)
{
    const ad_config_key *k = ad_config_key_find(name);
    AD_ASSERT(k);
    return (size_t)(k - st->keys);
}

/* Location of a key's value; 1:1 for a key not in the file (only a bad
 * default in the table could point there, and the tests parse the defaults). */
static yaml_mark_t mark_of(const parse_state *st, size_t ki)
{
    yaml_mark_t m = {0, 0, 0};
    if (st->line[ki]) m.line = st->line[ki] - 1, m.column = st->col[ki] - 1;
    return m;
}

/* line.name from "dir/line3.yaml" -> "line3"; -1 when the file name won't do. */
static int name_from_file(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".yaml") == 0) len -= 5;
    else if (len > 4 && strcmp(base + len - 4, ".yml") == 0) len -= 4;
    if (len == 0 || len >= n) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = base[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return -1;
    }
    memcpy(out, base, len);
    out[len] = '\0';
    return 0;
}

static void derive_defaults(ad_config *cfg)
{
    if (!cfg->reject_log.database[0])
        snprintf(cfg->reject_log.database, sizeof cfg->reject_log.database, STATE_DIR "/%s.db", cfg->line.name);
    if (!cfg->reject_log.image_dir[0])
        snprintf(cfg->reject_log.image_dir, sizeof cfg->reject_log.image_dir, STATE_DIR "/%s-images",
                 cfg->line.name);
    if (!cfg->trigger.part.reference[0])
        snprintf(cfg->trigger.part.reference, sizeof cfg->trigger.part.reference, STATE_DIR "/%s-empty.png",
                 cfg->line.name);
}

/* modbus.*, outputs.modbus.*, trigger.modbus.*: a server for whatever uses
 * one, a unit id libmodbus sends, and no coil given two jobs. */
static int validate_modbus(parse_state *st)
{
    const ad_config *cfg = st->cfg;
    if (!cfg->modbus.host[0]) {
        size_t km = key_index(st, "trigger.mode");
        if (cfg->trigger.mode == AD_TRIGGER_MODBUS)
            return fail_at(st, mark_of(st, km),
                           "trigger.mode is modbus but modbus.host is not set, expected modbus.host: "
                           "the PLC or remote I/O module whose input is polled");
        static const char *const outs[] = {"outputs.modbus.reject_coil", "outputs.modbus.good_coil",
                                           "outputs.modbus.heartbeat_coil", "outputs.modbus.score_register"};
        for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
            size_t ko = key_index(st, outs[i]);
            if (*(const int *)field(st->cfg, &st->keys[ko]) >= 0)
                return fail_at(st, mark_of(st, ko),
                               "%s is set but modbus.host is not, expected modbus.host: the PLC or remote I/O "
                               "module that owns it (or %s: -1)",
                               outs[i], outs[i]);
        }
    }
    size_t ku = key_index(st, "modbus.unit_id");
    if (cfg->modbus.unit_id > 247 && cfg->modbus.unit_id != 255)
        return fail_at(st, mark_of(st, ku), "modbus.unit_id is %d, expected 0..247, or 255", cfg->modbus.unit_id);

    /* the same coil for two jobs would mix their signals (or trigger itself) */
    const char *coil_keys[4] = {"outputs.modbus.reject_coil", "outputs.modbus.good_coil",
                                "outputs.modbus.heartbeat_coil", "trigger.modbus.input"};
    int coils[4] = {cfg->outputs.modbus.reject_coil, cfg->outputs.modbus.good_coil,
                    cfg->outputs.modbus.heartbeat_coil,
                    cfg->trigger.mode == AD_TRIGGER_MODBUS && cfg->trigger.modbus.kind == AD_MODBUS_COIL
                        ? cfg->trigger.modbus.input
                        : -1};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (coils[i] >= 0 && coils[i] == coils[j]) {
                size_t kj = key_index(st, coil_keys[j]);
                return fail_at(st, mark_of(st, st->line[kj] ? kj : key_index(st, coil_keys[i])),
                               "%s and %s are both coil %d, expected a coil of its own for each", coil_keys[i],
                               coil_keys[j], coils[i]);
            }
    return 0;
}

/* Whether key i was given in the file with a value other than its default
 * (the example config sets every key, most to their defaults). */
static bool set_otherwise(const parse_state *st, size_t i)
{
    const ad_config_key *k = &st->keys[i];
    if (!st->line[i]) return false;
    ad_config *d = ad_xcalloc(1, sizeof *d);
    ad_config_defaults(d);
    const char *a = field(st->cfg, k), *b = field(d, k);
    bool differs = k->type == AD_CFG_STRING || k->type == AD_CFG_PATH ? strcmp(a, b) != 0
                                                                      : memcmp(a, b, k->size) != 0;
    free(d);
    return differs;
}

/* mqtt.*, outputs.mqtt.*: a broker for whatever uses one, topics a
 * subscriber can name, and TLS and password keys that make sense together. */
static int validate_mqtt(parse_state *st)
{
    const ad_config *cfg = st->cfg;
    const ad_config_key *keys = st->keys;
    size_t n = st->nkeys;
    if (!cfg->mqtt.host[0]) {
        size_t km = key_index(st, "trigger.mode");
        if (cfg->trigger.mode == AD_TRIGGER_MQTT)
            return fail_at(st, mark_of(st, km),
                           "trigger.mode is mqtt but mqtt.host is not set, expected mqtt.host: the broker "
                           "the trigger messages come through");
        /* a key of the link changed without a broker is a mistake, not a choice */
        for (size_t i = 0; i < n; i++)
            if ((strncmp(keys[i].name, "mqtt.", 5) == 0 || strncmp(keys[i].name, "outputs.mqtt.", 13) == 0) &&
                set_otherwise(st, i))
                return fail_at(st, mark_of(st, i),
                               "%s is set but mqtt.host is not, expected mqtt.host: the broker's host name or "
                               "address (or no mqtt keys at all)",
                               keys[i].name);
        return 0;
    }
    size_t kh = key_index(st, "mqtt.host");
    for (const char *c = cfg->mqtt.host; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '/')
            return fail_at(st, mark_of(st, kh), "mqtt.host contains %s, expected a host name or address "
                           "(not a URL: the port goes in mqtt.port)",
                           *c == '/' ? "'/'" : "a space or control character");

    /* topics are <prefix>/<line.name>/...: wildcards or empty levels would
     * make them unsubscribable or ambiguous */
    size_t kp = key_index(st, "mqtt.prefix");
    const char *p = cfg->mqtt.prefix;
    size_t plen = strlen(p);
    if (plen == 0 || p[0] == '/' || p[plen - 1] == '/' || strstr(p, "//") || strpbrk(p, "+#"))
        return fail_at(st, mark_of(st, kp),
                       "mqtt.prefix '%s' is not a topic prefix, expected one or more topic levels "
                       "separated by '/', without '+', '#', empty levels or a '/' at either end",
                       p);
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            return fail_at(st, mark_of(st, kp), "mqtt.prefix contains a control character, expected printable text");

    size_t kpw = key_index(st, "mqtt.password"), kpf = key_index(st, "mqtt.password_file");
    if (cfg->mqtt.password[0] && cfg->mqtt.password_file[0])
        return fail_at(st, mark_of(st, kpf),
                       "mqtt.password and mqtt.password_file are both set, expected one of them");
    if (!cfg->mqtt.username[0] && (cfg->mqtt.password[0] || cfg->mqtt.password_file[0]))
        return fail_at(st, mark_of(st, cfg->mqtt.password[0] ? kpw : kpf),
                       "a password is set but mqtt.username is not, expected mqtt.username as well");

    size_t kc = key_index(st, "mqtt.tls.cert_file"), kk = key_index(st, "mqtt.tls.key_file");
    if (!cfg->mqtt.tls.cert_file[0] != !cfg->mqtt.tls.key_file[0])
        return fail_at(st, mark_of(st, cfg->mqtt.tls.cert_file[0] ? kc : kk),
                       "only one of mqtt.tls.cert_file and mqtt.tls.key_file is set, expected both (a client "
                       "certificate and its key) or neither");
    if (!cfg->mqtt.tls.enabled)
        for (size_t i = 0; i < n; i++)
            if (strncmp(keys[i].name, "mqtt.tls.", 9) == 0 && set_otherwise(st, i))
                return fail_at(st, mark_of(st, i),
                               "%s is set but mqtt.tls.enabled is false, expected mqtt.tls.enabled: true", keys[i].name);
    return 0;
}

/* Checks that involve more than one key, then the derived defaults. */
static int validate(parse_state *st, const char *basedir)
{
    ad_config *cfg = st->cfg;
    char expect[256];
    for (size_t i = 0; i < st->nkeys; i++) {
        const ad_config_key *k = &st->keys[i];
        if (!(k->flags & AD_CFG_REQUIRED)) continue;
        ad_config_key_expect(k, expect, sizeof expect);
        if (!st->line[i])
            return ad_err(st->err, st->errlen, "%s: missing required key %s, expected %s", st->name, k->name,
                          expect);
        if ((k->type == AD_CFG_STRING || k->type == AD_CFG_PATH) && !((char *)field(cfg, k))[0])
            return fail_key(st, k, i, "the value is empty");
    }

    size_t src = key_index(st, "camera.source");
    if (cfg->camera.source == AD_SOURCE_REPLAY && !cfg->camera.replay_dir[0])
        return fail_at(st, mark_of(st, src),
                       "camera.source is replay but camera.replay_dir is not set, "
                       "expected camera.replay_dir: the folder of PNG frames to play");

    size_t kd = key_index(st, "camera.device");
    if (cfg->camera.source == AD_SOURCE_V4L2 && !cfg->camera.device[0])
        return fail_at(st, mark_of(st, kd),
                       "camera.device is empty, expected the V4L2 device node of the camera, such as /dev/video0");

    /* a ROI with a zero size spans the whole frame, so it cannot also have an offset */
    static const char *const roi_pairs[2][3] = {{"camera.roi.x", "camera.roi.width", "width"},
                                                {"camera.roi.y", "camera.roi.height", "height"}};
    int off[2] = {cfg->camera.roi_x, cfg->camera.roi_y};
    int size[2] = {cfg->camera.roi_width, cfg->camera.roi_height};
    int frame[2] = {cfg->camera.width, cfg->camera.height};
    for (int a = 0; a < 2; a++) {
        size_t ko = key_index(st, roi_pairs[a][0]), ks = key_index(st, roi_pairs[a][1]);
        if (size[a] == 0 && off[a] != 0)
            return fail_at(st, mark_of(st, ko),
                           "%s is %d but %s is 0 (the whole frame), expected %s 0 or a non-zero %s", roi_pairs[a][0],
                           off[a], roi_pairs[a][1], roi_pairs[a][0], roi_pairs[a][1]);
        /* a replay frame's size is only known when it is read */
        if (cfg->camera.source == AD_SOURCE_V4L2 && off[a] + size[a] > frame[a]) {
            size_t kf = key_index(st, a == 0 ? "camera.width" : "camera.height");
            size_t at = st->line[ks] ? ks : st->line[ko] ? ko : kf;
            return fail_at(st, mark_of(st, at),
                           "the ROI ends at %s %d + %d = %d, beyond camera.%s %d, expected the ROI inside the frame",
                           a == 0 ? "x" : "y", off[a], size[a], off[a] + size[a], roi_pairs[a][2], frame[a]);
        }
    }

    /* every channel count (levels, skip concatenations) is a multiple of
     * base_channels, so groups dividing it divides them all */
    size_t kg = key_index(st, "model.groups"), kb = key_index(st, "model.base_channels");
    if (cfg->model.base_channels % cfg->model.groups)
        return fail_at(st, mark_of(st, st->line[kg] ? kg : kb),
                       "model.groups %d does not divide model.base_channels %d, expected a divisor of "
                       "base_channels (every channel count is a multiple of it)",
                       cfg->model.groups, cfg->model.base_channels);

    /* a gap between the two keeps a part on the edge of detection from flickering */
    size_t ka = key_index(st, "trigger.part.absent_percent"), kp = key_index(st, "trigger.part.present_percent");
    if (!(cfg->trigger.part.absent_percent < cfg->trigger.part.present_percent))
        return fail_at(st, mark_of(st, st->line[ka] ? ka : kp),
                       "trigger.part.absent_percent %g is not below trigger.part.present_percent %g, expected "
                       "absent_percent < present_percent (the gap keeps a part on the edge from flickering)",
                       cfg->trigger.part.absent_percent, cfg->trigger.part.present_percent);

    if (validate_modbus(st)) return -1;
    if (validate_mqtt(st)) return -1;

    size_t kn = key_index(st, "line.name");
    if (!st->line[kn] && name_from_file(st->name, cfg->line.name, sizeof cfg->line.name))
        return ad_err(st->err, st->errlen,
                      "%s: line.name is not set and the file name cannot serve as one, expected line.name: "
                      "a name of 1..63 characters from A-Z a-z 0-9 _ . -",
                      st->name);
    derive_defaults(cfg);

    /* relative paths given in the file are relative to the file's folder */
    for (size_t i = 0; basedir && i < st->nkeys; i++) {
        const ad_config_key *k = &st->keys[i];
        char *v = field(cfg, k);
        if (k->type != AD_CFG_PATH || !st->line[i] || !v[0] || v[0] == '/') continue;
        char joined[AD_PATH_MAX * 2 + 2];
        size_t bl = strlen(basedir);
        snprintf(joined, sizeof joined, "%s%s%s", basedir, bl && basedir[bl - 1] == '/' ? "" : "/", v);
        if (strlen(joined) >= k->size) {
            char what[160];
            snprintf(what, sizeof what, "the path is %zu bytes long after resolving it against %.60s",
                     strlen(joined), basedir);
            return fail_key(st, k, i, what);
        }
        memcpy(v, joined, strlen(joined) + 1);
    }
    return 0;
}

/* Parses into *cfg only on success. basedir: folder for relative paths, or NULL. */
static int parse_config(const char *name, const char *basedir, const char *text, size_t len, ad_config *cfg,
                        char *err, size_t errlen)
{
    parse_state *st = ad_xcalloc(1, sizeof *st);
    ad_config *tmp = ad_xcalloc(1, sizeof *tmp);
    int rc = -1;
    st->name = name;
    st->text = (const unsigned char *)text;
    st->len = len;
    st->cfg = tmp;
    st->keys = ad_config_keys(&st->nkeys);
    st->err = err;
    st->errlen = errlen;
    AD_ASSERT(st->nkeys <= CONFIG_MAX_KEYS);
    if (strlen(name) >= sizeof tmp->path) {
        ad_err(err, errlen, "%.100s...: the config path is too long, expected at most %zu bytes", name,
               sizeof tmp->path - 1);
        goto out;
    }
    ad_config_defaults(tmp);
    memset(tmp->line.name, 0, sizeof tmp->line.name);
    memset(tmp->reject_log.database, 0, sizeof tmp->reject_log.database);
    memset(tmp->reject_log.image_dir, 0, sizeof tmp->reject_log.image_dir);
    memset(tmp->trigger.part.reference, 0, sizeof tmp->trigger.part.reference);
    snprintf(tmp->path, sizeof tmp->path, "%s", name);

    if (!yaml_parser_initialize(&st->yp)) ad_die("%s: out of memory starting the YAML parser", name);
    yaml_parser_set_input_string(&st->yp, (const unsigned char *)text, len);
    rc = parse_stream(st);
    yaml_parser_delete(&st->yp);
    if (rc == 0) rc = validate(st, basedir);
    if (rc == 0) *cfg = *tmp;
out:
    free(tmp);
    free(st);
    return rc;
}

int ad_config_parse(const char *name, const char *text, size_t len, ad_config *cfg, char *err, size_t errlen)
{
    const char *slash = strrchr(name, '/');
    if (!slash) return parse_config(name, NULL, text, len, cfg, err, errlen);
    char dir[AD_PATH_MAX];
    size_t dl = (size_t)(slash - name);
    if (dl >= sizeof dir) dl = sizeof dir - 1; /* the path length is refused later anyway */
    memcpy(dir, name, dl);
    dir[dl] = '\0';
    if (dl == 0) strcpy(dir, "/");
    return parse_config(name, dir, text, len, cfg, err, errlen);
}

int ad_config_load(const char *path, ad_config *cfg, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ad_err(err, errlen, "%s: cannot open: %s, expected a readable YAML config file", path,
                      strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        ad_err(err, errlen, "%s: cannot stat: %s, expected a readable YAML config file", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        ad_err(err, errlen, "%s: is a directory, expected a YAML config file", path);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        ad_err(err, errlen, "%s: is not a regular file, expected a YAML config file", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > CONFIG_MAX_BYTES) {
        ad_err(err, errlen, "%s: is %lld bytes, expected a config file of at most %u bytes", path,
               (long long)sb.st_size, CONFIG_MAX_BYTES);
        goto out;
    }
    size_t cap = (size_t)sb.st_size, got = 0;
    text = ad_xmalloc(cap + 1);
    while (got < cap) {
        ssize_t n = read(fd, text + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ad_err(err, errlen, "%s: read failed: %s, expected a readable YAML config file", path, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    text[got] = '\0';

    /* resolve relative paths against the real folder, so they survive a chdir */
    char dir[AD_PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!realpath(dir, real)) {
        ad_err(err, errlen, "%s: cannot resolve its folder %s: %s, expected a readable YAML config file", path, dir,
               strerror(errno));
        goto out;
    }
    rc = parse_config(path, real, text, got, cfg, err, errlen);
out:
    free(text);
    close(fd);
    return rc;
}

/* Sets one key from its table text; the table is ours, so failure is a bug. */
static void set_default(const ad_config_key *k, const char *text, ad_config *cfg)
{
    if (k->type == AD_CFG_CONTROLS) { /* "{}": none */
        AD_ASSERT(strcmp(text, "{}") == 0);
        *(int *)((char *)cfg + k->count_offset) = 0;
        return;
    }
    if (k->type == AD_CFG_INT_LIST) {
        int *dst = field(cfg, k);
        int n = 0;
        const char *p = text + 1; /* "[1, 2, 2]" */
        while (*p && *p != ']') {
            char *end;
            long v = strtol(p, &end, 10);
            AD_ASSERT(end != p && n < (int)k->size && v >= k->min && v <= k->max);
            dst[n++] = (int)v;
            p = end;
            while (*p == ',' || *p == ' ') p++;
        }
        *(int *)((char *)cfg + k->count_offset) = n;
        return;
    }
    if (k->type == AD_CFG_STRING_LIST) { /* the table's lists start empty */
        AD_ASSERT(strcmp(text, "[]") == 0);
        memset(field(cfg, k), 0, k->size);
        *(int *)((char *)cfg + k->count_offset) = 0;
        return;
    }
    char why[256];
    if (convert_scalar(k, text, strlen(text), true, field(cfg, k), why, sizeof why))
        ad_die("config key table: default of %s: %s", k->name, why);
}

void ad_config_defaults(ad_config *cfg)
{
    size_t n;
    const ad_config_key *keys = ad_config_keys(&n);
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < n; i++)
        if (keys[i].def) set_default(&keys[i], keys[i].def, cfg);
    snprintf(cfg->line.name, sizeof cfg->line.name, "anomalyd");
    derive_defaults(cfg);
}

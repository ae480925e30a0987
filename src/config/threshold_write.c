/* Write-back of the top-level `threshold:` value into a YAML config, every
 * other byte unchanged.
 *
 * libyaml finds the value (so comments, quoting, flow style and CRLF are
 * understood as YAML understands them); its marks count characters, not
 * bytes, so the (line, column) of each mark is turned into a byte offset by
 * walking the buffer, and the bytes found are checked against the scalar
 * before anything is replaced. Any doubt refuses; the file is never guessed
 * at. Decisions:
 *  - no top-level threshold key: refuse (the config is invalid without one,
 *    and a line added by a program could land somewhere surprising);
 *  - the key twice, a value that is a mapping, a sequence or an alias, or
 *    one that carries an anchor or a tag: refuse;
 *  - an empty value (`threshold:`) gets the number after the colon;
 *  - a quoted value keeps its quotes;
 *  - a symlinked config is written through to its target, which keeps its
 *    mode and (where allowed) its owner; the previous content goes to
 *    PATH.bak (one level, replaced each time). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "anomalyd/calib.h"
#include "anomalyd/config.h"
#include "anomalyd/util.h"

#define CONFIG_MAX_BYTES (16u << 20)

/* Byte offset of libyaml's (line, column): lines end at \n, \r\n or a lone
 * \r; columns count UTF-8 characters; a leading BOM is not counted. Returns
 * -1 when the position lies outside the buffer. */
static long mark_to_byte(const char *buf, size_t len, size_t line, size_t column)
{
    size_t i = 0;
    if (len >= 3 && (uint8_t)buf[0] == 0xEF && (uint8_t)buf[1] == 0xBB && (uint8_t)buf[2] == 0xBF)
        i = 3;
    for (size_t l = 0; l < line; l++) {
        while (i < len && buf[i] != '\n' && buf[i] != '\r') i++;
        if (i >= len) return -1;
        if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') i++;
        i++;
    }
    for (size_t c = 0; c < column; c++) {
        if (i >= len) return -1;
        i++;
        while (i < len && ((uint8_t)buf[i] & 0xC0) == 0x80) i++;
    }
    return i <= len ? (long)i : -1;
}

/* Where the value goes: bytes [start, end) are replaced; `prefix` is
 * written before the number (" " after a bare colon). */
typedef struct value_span {
    long start, end;
    const char *prefix;
} value_span;

static int locate_threshold(const char *name, const char *buf, size_t len, value_span *span,
                            char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = -1, depth = 0, found = 0, docs = 0;
    int expect_key = 1;      /* at depth 1: the next event is a key */
    int value_is_threshold = 0;
    size_t key_end_line = 0, key_end_col = 0;

    if (!yaml_parser_initialize(&parser)) return ad_err(err, errlen, "%s: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            ad_err(err, errlen, "%s:%zu:%zu: not valid YAML: %s", name,
                   parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                   parser.problem ? parser.problem : "parse error");
            goto out;
        }
        yaml_event_type_t type = ev.type;
        size_t line = ev.start_mark.line, col = ev.start_mark.column;
        int at_top = depth == 1;

        if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            ad_err(err, errlen, "%s:%zu: holds several YAML documents; a config has one", name,
                   line + 1);
            goto fail_event;
        }
        if (at_top && value_is_threshold) {
            /* This event is the value of the top-level threshold key. */
            value_is_threshold = 0;
            if (found++) {
                ad_err(err, errlen, "%s:%zu:%zu: 'threshold' appears twice at the top level",
                       name, line + 1, col + 1);
                goto fail_event;
            }
            if (type != YAML_SCALAR_EVENT) {
                ad_err(err, errlen, "%s:%zu:%zu: 'threshold' must be a number, found %s", name,
                       line + 1, col + 1,
                       type == YAML_ALIAS_EVENT ? "an alias" : "a mapping or a list");
                goto fail_event;
            }
            if (ev.data.scalar.anchor || ev.data.scalar.tag) {
                ad_err(err, errlen, "%s:%zu:%zu: the threshold value carries an %s; edit it by "
                       "hand", name, line + 1, col + 1, ev.data.scalar.anchor ? "anchor" : "tag");
                goto fail_event;
            }
            long s = mark_to_byte(buf, len, ev.start_mark.line, ev.start_mark.column);
            long e = mark_to_byte(buf, len, ev.end_mark.line, ev.end_mark.column);
            size_t vlen = ev.data.scalar.length;
            const char *v = (const char *)ev.data.scalar.value;
            yaml_scalar_style_t style = ev.data.scalar.style;
            if (s < 0 || e < s) goto confused;
            if (vlen == 0 && style == YAML_PLAIN_SCALAR_STYLE) {
                /* `threshold:` with nothing after it: the number goes right
                 * after the colon that follows the key. */
                long k = mark_to_byte(buf, len, key_end_line, key_end_col);
                if (k < 0) goto confused;
                while ((size_t)k < len && (buf[k] == ' ' || buf[k] == '\t')) k++;
                if ((size_t)k >= len || buf[k] != ':') goto confused;
                span->start = span->end = k + 1;
                span->prefix = " ";
            } else if (style == YAML_PLAIN_SCALAR_STYLE) {
                if ((size_t)(e - s) != vlen || memcmp(buf + s, v, vlen) != 0) goto confused;
                span->start = s;
                span->end = e;
                span->prefix = "";
            } else if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
                char q = style == YAML_SINGLE_QUOTED_SCALAR_STYLE ? '\'' : '"';
                if (e - s < 2 || buf[s] != q || buf[e - 1] != q) goto confused;
                if (memchr(buf + s, '\n', (size_t)(e - s)) || memchr(buf + s, '\r', (size_t)(e - s)))
                    goto confused;
                span->start = s + 1;
                span->end = e - 1;
                span->prefix = "";
            } else {
                ad_err(err, errlen, "%s:%zu:%zu: the threshold is a block scalar; write it as a "
                       "plain number", name, line + 1, col + 1);
                goto fail_event;
            }
        } else if (at_top && expect_key && type == YAML_SCALAR_EVENT) {
            value_is_threshold = !strcmp((const char *)ev.data.scalar.value, "threshold");
            key_end_line = ev.end_mark.line;
            key_end_col = ev.end_mark.column;
        }

        /* Track nesting and whether the next top-level event is a key. */
        if (depth == 0 && type == YAML_SEQUENCE_START_EVENT) {
            ad_err(err, errlen, "%s:%zu:%zu: the top level is a list, not a mapping of keys",
                   name, line + 1, col + 1);
            goto fail_event;
        }
        if (depth == 0 && type == YAML_SCALAR_EVENT) {
            ad_err(err, errlen, "%s:%zu:%zu: the top level is a single value, not a mapping of "
                   "keys", name, line + 1, col + 1);
            goto fail_event;
        }
        if (type == YAML_MAPPING_START_EVENT || type == YAML_SEQUENCE_START_EVENT) {
            if (depth == 1) expect_key = !expect_key;
            depth++;
        } else if (type == YAML_MAPPING_END_EVENT || type == YAML_SEQUENCE_END_EVENT) {
            depth--;
        } else if (depth == 1 && (type == YAML_SCALAR_EVENT || type == YAML_ALIAS_EVENT)) {
            expect_key = !expect_key;
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT) break;
        continue;

    confused:
        ad_err(err, errlen, "%s:%zu:%zu: cannot locate the bytes of the threshold value "
               "(unusual layout); edit it by hand", name, line + 1, col + 1);
    fail_event:
        yaml_event_delete(&ev);
        goto out;
    }
    if (!found) {
        ad_err(err, errlen, "%s: has no top-level 'threshold:' key; add a line 'threshold: 0' "
               "(the config needs one anyway) and run again", name);
        goto out;
    }
    rc = 0;
out:
    yaml_parser_delete(&parser);
    return rc;
}

/* Shortest decimal text that reads back as exactly t, without an exponent
 * where a plain decimal does it (other YAML readers take 1e-05 for a
 * string). */
static void format_threshold(char *buf, size_t len, double t)
{
    for (int d = 1; d <= 17; d++) {
        snprintf(buf, len, "%.*g", d, t);
        if (strtod(buf, NULL) == t) break;
    }
    if (!strchr(buf, 'e')) return;
    char fixed[64];
    for (int d = 1; d <= 24; d++) {
        snprintf(fixed, sizeof fixed, "%.*f", d, t);
        if (strtod(fixed, NULL) == t) {
            snprintf(buf, len, "%s", fixed);
            return;
        }
    }
}

/* 0 when the file still holds exactly `expected`. */
static int check_unchanged(const char *path, const char *expected, size_t expected_len,
                           char *err, size_t errlen)
{
    uint8_t *now = NULL;
    size_t now_len = 0;
    if (ad_read_file(path, CONFIG_MAX_BYTES, &now, &now_len, err, errlen) != 0) return -1;
    int same = now_len == expected_len && memcmp(now, expected, now_len) == 0;
    free(now);
    if (!same)
        return ad_err(err, errlen, "%s: the file changed since it was read at the start of this "
                      "run; nothing was written (run again to calibrate against the new file)",
                      path);
    return 0;
}

int ad_threshold_edit(const char *name, const char *text, size_t len, double value,
                      char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (!isfinite(value) || value < 0)
        return ad_err(err, errlen, "%s: refusing to write threshold %g (must be a number >= 0)",
                      name, value);
    value_span span;
    if (locate_threshold(name, text, len, &span, err, errlen) != 0) return -1;
    char num[64];
    format_threshold(num, sizeof num, value);
    size_t plen = strlen(span.prefix), nlen = strlen(num);
    size_t n = (size_t)span.start + plen + nlen + (len - (size_t)span.end);
    char *buf = ad_xmalloc(n + 1);
    memcpy(buf, text, (size_t)span.start);
    memcpy(buf + span.start, span.prefix, plen);
    memcpy(buf + span.start + plen, num, nlen);
    memcpy(buf + span.start + plen + nlen, text + span.end, len - (size_t)span.end);
    buf[n] = 0;

    /* The result must read back with the new value where the old one was. */
    value_span check;
    char cerr[AD_ERRLEN];
    if (locate_threshold(name, buf, n, &check, cerr, sizeof cerr) != 0 ||
        check.start != span.start + (long)plen || check.end - check.start != (long)nlen) {
        free(buf);
        return ad_err(err, errlen, "%s: the edited file would not read back the new threshold; "
                      "nothing was written", name);
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int ad_config_write_threshold(const char *path, double threshold,
                              const char *expected, size_t expected_len,
                              char *err, size_t errlen)
{
    int rc = -1;
    char *target = NULL, *out = NULL, *bak = NULL;
    size_t out_len = 0;
    if (!isfinite(threshold) || threshold < 0)
        return ad_err(err, errlen, "%s: refusing to write threshold %g (must be a number >= 0)",
                      path, threshold);
    target = realpath(path, NULL);
    if (!target) return ad_err(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (stat(target, &st) != 0 || !S_ISREG(st.st_mode)) {
        ad_err(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (check_unchanged(target, expected, expected_len, err, errlen) != 0) goto out;
    if (ad_threshold_edit(path, expected, expected_len, threshold, &out, &out_len, err,
                          errlen) != 0)
        goto out;

    size_t blen = strlen(target) + 5;
    bak = ad_xmalloc(blen);
    snprintf(bak, blen, "%s.bak", target);
    if (ad_write_file_durable_like(bak, expected, expected_len, &st, err, errlen) != 0) goto out;
    /* Last look just before the rename narrows the window for a concurrent
     * edit to the time of one write. */
    if (check_unchanged(target, expected, expected_len, err, errlen) != 0) goto out;
    if (ad_write_file_durable_like(target, out, out_len, &st, err, errlen) != 0) goto out;
    rc = 0;
out:
    free(target);
    free(out);
    free(bak);
    return rc;
}

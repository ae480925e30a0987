/* YAML output driven by the key table: the effective config (--check-config)
 * and the documented reference of every key. Both parse back with
 * ad_config_parse. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

/* Double-quoted YAML scalar: always valid, whatever the bytes. Code points
 * that YAML reads as line breaks (NEL, LS, PS) or refuses raw (C1 controls,
 * BOM, noncharacters) are escaped so the value reads back unchanged. */
static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
            continue;
        }
        if (*p == '\n') {
            fputs("\\n", out);
            continue;
        }
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\x%02x", *p);
            continue;
        }
        if (*p < 0x80) {
            fputc(*p, out);
            continue;
        }
        /* a UTF-8 sequence (the parser only accepts valid UTF-8) */
        unsigned cp = 0;
        int n = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : 1;
        cp = *p & (0x3Fu >> n);
        int got = 0;
        while (got < n && (p[got + 1] & 0xC0) == 0x80) cp = (cp << 6) | (p[++got] & 0x3Fu);
        if (got < n) { /* not valid UTF-8: keep the byte as an escape */
            fprintf(out, "\\x%02x", *p);
            continue;
        }
        if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE ||
            cp == 0xFFFF) {
            fprintf(out, "\\u%04x", cp);
        } else {
            fwrite(p, 1, (size_t)n + 1, out);
        }
        p += n;
    }
    fputc('"', out);
}

/* Shortest %g form that reads back to the same double. */
static void put_double(FILE *out, double x)
{
    char buf[64];
    /* plain digits when some precision allows it (30, not 3e+01), else exponent */
    for (int pass = 0; pass < 2; pass++)
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, x);
            if (strtod(buf, NULL) == x && (pass == 1 || !strchr(buf, 'e'))) {
                fputs(buf, out);
                return;
            }
        }
    AD_ASSERT(0 && "%.17g always reads back");
}

static void put_value(FILE *out, const ad_config_key *k, const ad_config *cfg)
{
    const void *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case AD_CFG_STRING:
    case AD_CFG_PATH: put_quoted(out, p); break;
    case AD_CFG_INT: fprintf(out, "%d", *(const int *)p); break;
    case AD_CFG_U64: fprintf(out, "%" PRIu64, *(const uint64_t *)p); break;
    case AD_CFG_FLOAT: put_double(out, *(const double *)p); break;
    case AD_CFG_BOOL: fputs(*(const bool *)p ? "true" : "false", out); break;
    case AD_CFG_ENUM: {
        int v = *(const int *)p;
        const char *name = NULL;
        for (int i = 0; k->choices[i]; i++)
            if (k->choice_values[i] == v) name = k->choices[i];
        AD_ASSERT(name);
        fputs(name, out);
        break;
    }
    case AD_CFG_INT_LIST: {
        int n = *(const int *)((const char *)cfg + k->count_offset);
        fputc('[', out);
        for (int i = 0; i < n; i++) fprintf(out, "%s%d", i ? ", " : "", ((const int *)p)[i]);
        fputc(']', out);
        break;
    }
    case AD_CFG_STRING_LIST: {
        int n = *(const int *)((const char *)cfg + k->count_offset);
        const char *entry = p;
        fputc('[', out);
        for (int i = 0; i < n; i++, entry += strlen(entry) + 1) {
            if (i) fputs(", ", out);
            put_quoted(out, entry);
        }
        fputc(']', out);
        break;
    }
    case AD_CFG_CONTROLS: AD_ASSERT(0 && "emit writes controls with put_controls"); break;
    }
}

/* camera.controls as a block mapping below its key, or {} when empty. A
 * menu item name is written plain when it cannot read back as anything else. */
static void put_controls(FILE *out, const ad_config_key *k, const ad_config *cfg, int indent)
{
    int n = *(const int *)((const char *)cfg + k->count_offset);
    const ad_camera_control *c = (const ad_camera_control *)((const char *)cfg + k->offset);
    if (n == 0) fputs(" {}", out);
    for (int i = 0; i < n; i++) {
        fprintf(out, "\n%*s%s: ", indent, "", c[i].name);
        if (c[i].kind == AD_CONTROL_BOOL) {
            fputs(c[i].value ? "true" : "false", out);
        } else if (c[i].kind == AD_CONTROL_INT) {
            fprintf(out, "%" PRId64, c[i].value);
        } else {
            const char *v = c[i].item; /* "50_hz" plain; "7", "1e5" and "true" would read back as others */
            bool plain = v[strspn(v, "0123456789eE")] != '\0' && strcasecmp(v, "true") && strcasecmp(v, "false") &&
                         strcasecmp(v, "null");
            for (const char *q = v; plain && *q; q++)
                plain = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_';
            if (plain) fputs(v, out);
            else put_quoted(out, v);
        }
    }
}

/* One line of the reference: "doc [range]" or "required. doc [range]". */
static void put_comment(FILE *out, const ad_config_key *k, int indent)
{
    char range[256] = "";
    switch (k->type) {
    case AD_CFG_INT:
    case AD_CFG_FLOAT: snprintf(range, sizeof range, "; range %s", k->range); break;
    case AD_CFG_INT_LIST:
        snprintf(range, sizeof range, "; %zu..%zu entries, each %s", k->min_count, k->size, k->range);
        break;
    case AD_CFG_ENUM: {
        size_t used = (size_t)snprintf(range, sizeof range, "; one of ");
        for (int i = 0; k->choices[i] && used < sizeof range; i++)
            used += (size_t)snprintf(range + used, sizeof range - used, "%s%s", i ? " | " : "", k->choices[i]);
        break;
    }
    default: break;
    }
    fprintf(out, "%*s# %s%s%s\n", indent, "", (k->flags & AD_CFG_REQUIRED) ? "Required. " : "", k->doc, range);
}

static void emit(FILE *out, const ad_config *cfg, bool comments)
{
    size_t n;
    const ad_config_key *keys = ad_config_keys(&n);
    const char *prev = "";
    for (size_t i = 0; i < n; i++) {
        const char *name = keys[i].name;
        /* sections shared with the previous key stay open */
        size_t common = 0, depth = 0;
        for (size_t j = 0; name[j] && name[j] == prev[j]; j++)
            if (name[j] == '.') common = j + 1, depth++;
        const char *rest = name + common;
        if (comments && depth == 0 && i > 0) fputc('\n', out);
        for (const char *dot; (dot = strchr(rest, '.')); rest = dot + 1, depth++)
            fprintf(out, "%*s%.*s:\n", (int)(2 * depth), "", (int)(dot - rest), rest);
        if (comments) put_comment(out, &keys[i], (int)(2 * depth));
        fprintf(out, "%*s%s:", (int)(2 * depth), "", rest);
        if (keys[i].type == AD_CFG_CONTROLS) {
            put_controls(out, &keys[i], cfg, (int)(2 * depth) + 2);
        } else {
            fputc(' ', out);
            put_value(out, &keys[i], cfg);
        }
        fputc('\n', out);
        prev = name;
    }
}

void ad_config_print(FILE *out, const ad_config *cfg)
{
    fprintf(out, "# effective configuration");
    if (cfg->path[0]) {
        fputs(" of ", out);
        for (const char *p = cfg->path; *p; p++) fputc(*p == '\n' ? ' ' : *p, out); /* stays one comment line */
    }
    fputs(" (defaults filled in)\n", out);
    emit(out, cfg, false);
}

void ad_config_print_commented(FILE *out, const ad_config *cfg)
{
    emit(out, cfg, true);
}

void ad_config_write_reference(FILE *out)
{
    size_t n;
    const ad_config_key *keys = ad_config_keys(&n);
    ad_config cfg;
    ad_config_defaults(&cfg);
    /* required and derived keys show an example; derived paths stay empty (= derived) */
    for (size_t i = 0; i < n; i++) {
        const ad_config_key *k = &keys[i];
        if (k->def || !k->example) continue;
        void *p = (char *)&cfg + k->offset;
        if (k->type == AD_CFG_FLOAT) *(double *)p = strtod(k->example, NULL);
        else snprintf(p, k->size, "%s", k->example);
    }
    cfg.reject_log.database[0] = '\0';
    cfg.reject_log.image_dir[0] = '\0';
    cfg.trigger.part.reference[0] = '\0';
    fputs("# anomalyd configuration: every key with its default.\n"
          "# Relative paths are resolved against this file's folder.\n\n",
          out);
    emit(out, &cfg, true);
}

static const char *type_name(const ad_config_key *k)
{
    switch (k->type) {
    case AD_CFG_STRING: return "string";
    case AD_CFG_PATH: return "path";
    case AD_CFG_INT: return "integer";
    case AD_CFG_U64: return "integer";
    case AD_CFG_FLOAT: return "number";
    case AD_CFG_BOOL: return "bool";
    case AD_CFG_ENUM: return "choice";
    case AD_CFG_INT_LIST: return "integer list";
    case AD_CFG_STRING_LIST: return "string list";
    case AD_CFG_CONTROLS: return "mapping";
    }
    return "?";
}

void ad_config_write_markdown(FILE *out)
{
    size_t n;
    const ad_config_key *keys = ad_config_keys(&n);
    fputs("| key | type | default | allowed | meaning |\n| --- | --- | --- | --- | --- |\n", out);
    for (size_t i = 0; i < n; i++) {
        const ad_config_key *k = &keys[i];
        char allowed[256];
        if (k->type == AD_CFG_ENUM || k->type == AD_CFG_INT_LIST || k->type == AD_CFG_STRING_LIST ||
            k->type == AD_CFG_CONTROLS || k->type == AD_CFG_U64 ||
            (k->flags & AD_CFG_NAME_CHARS)) {
            ad_config_key_expect(k, allowed, sizeof allowed);
        } else if (k->type == AD_CFG_INT || k->type == AD_CFG_FLOAT) {
            snprintf(allowed, sizeof allowed, "%s", k->range);
        } else {
            allowed[0] = '\0';
        }
        fprintf(out, "| `%s` | %s | ", k->name, type_name(k));
        if (k->flags & AD_CFG_REQUIRED) fputs("**required**", out);
        else if (!k->def) fputs("(derived)", out);
        else fprintf(out, "`%s`", k->def[0] ? k->def : "\"\"");
        fprintf(out, " | %s | ", allowed);
        for (const char *p = k->doc; *p; p++) { /* keep the table intact */
            if (*p == '|') fputs("\\|", out);
            else fputc(*p, out);
        }
        fputs(" |\n", out);
    }
}

void ad_config_write_markdown_page(FILE *out)
{
    fputs("# Configuration reference\n"
          "\n"
          "*Generated from the key table in `src/config/config_keys.c`; do not edit by\n"
          "hand. After changing a key, regenerate it with\n"
          "`cmake --build build/release --target configuration-md` (test_docs fails\n"
          "while this page is stale).*\n"
          "\n"
          "Every key of a station's YAML file (`/etc/anomalyd/NAME.yaml`, one per line\n"
          "or camera). The file is validated strictly: an unknown key, a wrong type, a\n"
          "value out of range, a duplicate key, a tab, an empty file or a folder is an\n"
          "error `FILE:LINE:COL: what is wrong, what was expected`, and the programs\n"
          "exit with status 2. Absent keys take the defaults below; relative paths are\n"
          "resolved against the folder of the config file.\n"
          "\n"
          "- `anomalyd --check-config --config FILE` validates a file and prints the\n"
          "  effective config, every default filled in.\n"
          "- [etc/line3.yaml](../etc/line3.yaml) sets every key, each with a comment;\n"
          "  `anomalyctl init` writes such a file for a camera.\n"
          "- `man anomalyd.yaml` is this reference as a man page.\n"
          "- `camera.controls` holds V4L2 controls by the names `v4l2-ctl --list-ctrls`\n"
          "  prints (`auto_exposure: manual_mode`, `gain_automatic: false`, `gain: 40`).\n"
          "  They are set at every open of the camera, automatic ones first, and read\n"
          "  back; a value the driver changed is logged once. Which names and values\n"
          "  are valid depends on the camera, so `--check-config` and the daemon's start\n"
          "  check them against it (`FILE:LINE:COL` errors; a camera that cannot be\n"
          "  opened then is a warning).\n"
          "\n",
          out);
    ad_config_write_markdown(out);
}

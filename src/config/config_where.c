/* Finds where a key's value sits in a config file, for problems that only
 * show after parsing (a camera control the device lacks). The struct the
 * parser fills is plain data without positions, so the file is walked again
 * here with the same libyaml events. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

/* Consumes the rest of a mapping or list whose start event was read. */
static int skip_node(yaml_parser_t *p)
{
    for (int depth = 1; depth > 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) return -1;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) depth++;
        else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) depth--;
        else if (t == YAML_STREAM_END_EVENT) return -1;
    }
    return 0;
}

/* The body of a mapping at `prefix`: 1 with *at set when dotted is found
 * below it, 0 when the mapping ended without it, -1 on a YAML error. */
static int find_in_mapping(yaml_parser_t *p, const char *prefix, const char *dotted, yaml_mark_t *at)
{
    for (;;) {
        yaml_event_t key, value;
        if (!yaml_parser_parse(p, &key)) return -1;
        if (key.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key);
            return 0;
        }
        if (key.type != YAML_SCALAR_EVENT) { /* not a config the parser accepts */
            yaml_event_delete(&key);
            return -1;
        }
        char path[512];
        snprintf(path, sizeof path, "%s%s%.*s", prefix, prefix[0] ? "." : "", (int)key.data.scalar.length,
                 (const char *)key.data.scalar.value);
        yaml_event_delete(&key);
        if (!yaml_parser_parse(p, &value)) return -1;
        yaml_event_type_t t = value.type;
        size_t pl = strlen(path);
        if (strcmp(path, dotted) == 0) {
            *at = value.start_mark;
            yaml_event_delete(&value);
            return 1;
        }
        yaml_event_delete(&value);
        if (t == YAML_MAPPING_START_EVENT && strncmp(path, dotted, pl) == 0 && dotted[pl] == '.') {
            int rc = find_in_mapping(p, path, dotted, at);
            if (rc != 0) return rc;
        } else if ((t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) && skip_node(p) < 0) {
            return -1;
        }
    }
}

void ad_config_key_where(const char *path, const char *dotted, char *out, size_t n)
{
    uint8_t *text = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    snprintf(out, n, "%s", path);
    if (ad_read_file(path, 1u << 20, &text, &len, err, sizeof err) != 0) return;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) ad_die("%s: out of memory starting the YAML parser", path);
    yaml_parser_set_input_string(&p, text, len);
    yaml_mark_t at = {0, 0, 0};
    bool found = false;
    /* stream start, document start, then the top-level mapping */
    for (int i = 0; i < 3; i++) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) break;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (i == 2 && t == YAML_MAPPING_START_EVENT) found = find_in_mapping(&p, "", dotted, &at) == 1;
    }
    yaml_parser_delete(&p);
    free(text);
    if (found) snprintf(out, n, "%s:%zu:%zu", path, at.line + 1, at.column + 1);
}

/* The documentation cannot drift from the code: docs/configuration.md is
 * exactly what the parser's key table generates, and the commented example
 * etc/line3.yaml explains every key it sets with a comment (that it sets
 * every key of the table is test_config's check). */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

static char *read_text(const char *path)
{
    uint8_t *data;
    size_t len;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 22, &data, &len, err, sizeof err)) fail_msg("%s", err);
    return (char *)data;
}

static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at; p++) line += *p == '\n';
    return line;
}

static void configuration_reference_is_current(void **state)
{
    (void)state;
    char *page = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&page, &len);
    assert_non_null(mem);
    ad_config_write_markdown_page(mem);
    fclose(mem);
    char *file = read_text(SOURCE_DIR "/docs/configuration.md");
    if (strcmp(file, page)) {
        const char *a = file, *b = page;
        while (*a && *a == *b) a++, b++;
        while (a > file && a[-1] != '\n') a--, b--;
        fail_msg("docs/configuration.md is not what the key table in src/config/config_keys.c generates; "
                 "regenerate it: cmake --build build/release --target configuration-md\n"
                 "first difference, line %d:\n  file:      %.*s\n  generated: %.*s",
                 line_of(file, a), (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    free(file);
    free(page);
}

/* Each key of the example config has a comment above it or above its group
 * (ts_yaml_keys): a key added without a word on what it does fails here. */
static void example_config_explains_every_key(void **state)
{
    (void)state;
    uint8_t *text;
    size_t len, n;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(SOURCE_DIR "/etc/line3.yaml", 1 << 20, &text, &len, err, sizeof err), 0);
    ts_yaml_key *keys = ts_yaml_keys((const char *)text, &n);
    int undocumented = 0, table_keys = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ad_config_key_find(keys[i].path)) continue; /* sections, camera.roi */
        table_keys++;
        if (!keys[i].documented) {
            print_error("etc/line3.yaml:%d: %s has no comment above it or its group\n", keys[i].line,
                        keys[i].path);
            undocumented++;
        }
    }
    assert_int_equal(undocumented, 0);
    assert_true(table_keys >= 50);
    free(keys);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(configuration_reference_is_current),
        cmocka_unit_test(example_config_explains_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

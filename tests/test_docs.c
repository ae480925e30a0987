/* The documentation cannot drift from the code: README.md carries the
 * config key table exactly as the parser's key table prints it, and the
 * commented example etc/line3.yaml explains every key it sets with a comment
 * (that it sets every key of the table is test_config's check). */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

static void readme_has_the_key_table(void **state)
{
    (void)state;
    char *table = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&table, &len);
    assert_non_null(mem);
    ad_config_write_markdown(mem);
    fclose(mem);
    uint8_t *readme;
    size_t rlen;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(SOURCE_DIR "/README.md", 1 << 22, &readme, &rlen, err, sizeof err), 0);
    if (!strstr((char *)readme, table))
        fail_msg("README.md does not contain the current key table; regenerate it with "
                 "build/release/packaging/gen_yaml_man --markdown");
    free(readme);
    free(table);
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
        cmocka_unit_test(readme_has_the_key_table),
        cmocka_unit_test(example_config_explains_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

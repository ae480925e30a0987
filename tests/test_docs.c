/* The documentation cannot drift from the code: README.md carries the
 * config key table exactly as the parser's key table prints it, and the
 * commented example etc/line3.yaml names every key. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readme_has_the_key_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

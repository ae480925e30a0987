/* libFuzzer harness for the YAML config parser: any bytes in, a config or a
 * "FILE:LINE:COL: ..." message out, never a crash, leak or UB. A parsed
 * config must also print as YAML that parses back to the same struct.
 *   CC=clang cmake -S . -B build-fuzz -DANOMALYD_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_config
 *   build-fuzz/tests/fuzz/fuzz_config -max_total_time=300 tests/fuzz/corpus/config */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ad_config cfg, back;
    char err[AD_ERRLEN];
    err[0] = '\0';
    if (ad_config_parse("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof err) != 0) {
        /* a failure always says where (the file name first) and what was expected */
        if (strncmp(err, "fuzz.yaml:", 10) != 0 || !strstr(err, ", expected ")) {
            fprintf(stderr, "badly formed message: %s\n", err);
            abort();
        }
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) abort();
    ad_config_print(f, &cfg);
    fclose(f);
    if (ad_config_parse("fuzz.yaml", text, len, &back, err, sizeof err) != 0) {
        fprintf(stderr, "printed config does not parse: %s\n%s", err, text);
        abort();
    }
    if (memcmp(&cfg, &back, sizeof cfg) != 0) {
        fprintf(stderr, "printed config parses to a different struct:\n%s", text);
        abort();
    }
    free(text);
    return 0;
}

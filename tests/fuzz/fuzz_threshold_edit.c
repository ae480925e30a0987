/* libFuzzer: the threshold write-back edit on arbitrary bytes. It must never
 * crash; when it succeeds, only the value changed: the bytes before and after
 * it are the input's, and the edit finds the new value again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[AD_ERRLEN];
    char *out = NULL;
    size_t out_len = 0;
    if (ad_threshold_edit("fuzz.yaml", (const char *)data, size, 0.125, &out, &out_len, err,
                          sizeof err) != 0)
        return 0;
    /* common prefix + common suffix must cover everything but the value */
    size_t pre = 0;
    while (pre < size && pre < out_len && out[pre] == (char)data[pre]) pre++;
    size_t suf = 0;
    while (suf < size - pre && suf < out_len - pre &&
           out[out_len - 1 - suf] == (char)data[size - 1 - suf])
        suf++;
    size_t changed = out_len - pre - suf;
    if (changed > strlen(" 0.125")) abort();
    char *again = NULL;
    size_t again_len = 0;
    if (ad_threshold_edit("fuzz.yaml", out, out_len, 0.125, &again, &again_len, err,
                          sizeof err) != 0)
        abort();
    if (again_len != out_len || memcmp(again, out, out_len) != 0) abort();
    free(again);
    free(out);
    return 0;
}

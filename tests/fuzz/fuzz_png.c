/* libFuzzer harness for the PNG loader (ad_png_read_mem).
 *
 * Each input is decoded twice: as given, and with every chunk CRC recomputed,
 * so mutations reach the IHDR/PLTE/tRNS/IDAT logic instead of stopping at
 * the checksum. Both channel conversions are exercised, and a decoded image
 * is encoded again and must decode to the same pixels. */
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void fix_crcs(uint8_t *d, size_t len)
{
    size_t pos = 8;
    while (len >= pos + 12) {
        uint64_t n = (uint64_t)d[pos] << 24 | (uint64_t)d[pos + 1] << 16 |
                     (uint64_t)d[pos + 2] << 8 | d[pos + 3];
        if (n > len - pos - 12) break;
        uint32_t c = crc32_png(d + pos + 4, (size_t)n + 4);
        uint8_t *q = d + pos + 8 + n;
        q[0] = (uint8_t)(c >> 24);
        q[1] = (uint8_t)(c >> 16);
        q[2] = (uint8_t)(c >> 8);
        q[3] = (uint8_t)c;
        pos += 12 + (size_t)n;
    }
}

static void decode(const uint8_t *data, size_t size, int want_c)
{
    ad_image im;
    char err[AD_ERRLEN];
    if (ad_png_read_mem("fuzz.png", data, size, want_c, &im, err, sizeof err) != 0) {
        if (im.px || strncmp(err, "fuzz.png: ", 10) != 0) abort();
        return;
    }
    if (!im.px || im.w < 1 || im.h < 1 || (im.c != 1 && im.c != 3)) abort();
    if (want_c && im.c != want_c) abort();
    uint8_t *enc = NULL;
    size_t len = 0;
    if (ad_png_encode(&im, &enc, &len, err, sizeof err) != 0) abort();
    ad_image back;
    if (ad_png_read_mem("re.png", enc, len, 0, &back, err, sizeof err) != 0) abort();
    if (back.w != im.w || back.h != im.h || back.c != im.c ||
        memcmp(back.px, im.px, (size_t)im.w * im.h * im.c) != 0)
        abort();
    ad_image_free(&back);
    free(enc);
    ad_image_free(&im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!crc_table[1]) crc_init();
    decode(data, size, 0);
    uint8_t *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    fix_crcs(copy, size);
    decode(copy, size, size & 1 ? 1 : 3);
    free(copy);
    return 0;
}

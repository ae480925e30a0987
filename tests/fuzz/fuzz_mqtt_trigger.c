/* libFuzzer: the part id of an MQTT trigger payload (bytes any client on the
 * broker can publish). It must never crash or read past the payload (a
 * copy of exactly size bytes, no NUL after it); an accepted id is at most
 * 63 bytes, NUL-terminated, free of control characters and valid UTF-8,
 * and a plain-text payload that is accepted is that id with its blanks
 * trimmed; a refusal has a reason and leaves id empty. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line/line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *payload = malloc(size ? size : 1);
    if (!payload) abort();
    memcpy(payload, data, size);
    char id[64], detail[128];
    memset(id, 'x', sizeof id);
    const char *why = ad_mqtt_trigger_part_id(payload, size, id, detail, sizeof detail);
    if (!memchr(id, '\0', sizeof id)) abort();
    size_t n = strlen(id);
    if (why) {
        if (!why[0] || n != 0) abort();
    } else {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f) abort();
        json_t *s = json_stringn(id, n);
        if (!s) abort(); /* not UTF-8: a verdict could not carry it */
        json_decref(s);
        size_t b = 0, e = size;
        while (b < e && memchr(" \t\r\n", payload[b], 4)) b++;
        while (e > b && memchr(" \t\r\n", payload[e - 1], 4)) e--;
        if (b < e && payload[b] != '{' && (e - b != n || memcmp(payload + b, id, n) != 0)) abort();
    }
    free(payload);
    return 0;
}

/* libFuzzer: the report's HTML escaping on arbitrary bytes (line names,
 * camera names and paths come from the reject log as they are). The output
 * must be valid UTF-8 without a raw < > " ' or a control character but tab
 * and newline, and every & must start one of the entities the escaper
 * writes; the same text inside an SVG chart keeps the chart one element. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/report.h"

/* Length of the valid UTF-8 sequence at s, 0 if none (checked apart from
 * the escaper's own decoder, the thing under test). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    if (s[0] < 0x80) return 1;
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (n == 0 || n > left) return 0;
    uint32_t cp = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static void check(const char *out, size_t len)
{
    static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    const unsigned char *s = (const unsigned char *)out;
    for (size_t i = 0; i < len;) {
        if (s[i] == '<' || s[i] == '>' || s[i] == '"' || s[i] == '\'') abort();
        if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n') || s[i] == 0x7F) abort();
        if (s[i] == '&') {
            size_t k = 0;
            while (k < 5 && strncmp(out + i, entities[k], strlen(entities[k]))) k++;
            if (k == 5) abort();
        }
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0) abort();
        i += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0; /* a NUL inside ends the text, as in a C string from SQLite */

    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ad_html_escape(f, text);
    fclose(f);
    check(out, len);
    free(out);

    double v[2] = {1, NAN};
    const char *labels[2] = {text, text};
    ad_chart_series s = {text, "#1f77b4", v, true};
    ad_chart c = {text, text, 2, labels, &s, 1, 0.5, 1, text, text};
    f = open_memstream(&out, &len);
    ad_svg_chart(f, &c);
    fclose(f);
    /* the text never opens or closes an element: one <svg, one </svg> */
    char *first = strstr(out, "<svg"), *end = strstr(out, "</svg>");
    if (!first || !end || strstr(first + 1, "<svg") || strstr(end + 1, "</svg>")) abort();
    free(out);
    free(text);
    return 0;
}

/* HTML text for the report: escaping and data URIs. See report.h. */
#include "anomalyd/report.h"

#include <string.h>

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s does not
 * start one (stray continuation byte, overlong form, surrogate, > U+10FFFF,
 * cut short). */
static int utf8_length(const unsigned char *s)
{
    unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000;
    else return 0;
    unsigned cp = c & (0x3F >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

void ad_html_escape(FILE *out, const char *s)
{
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        case '\t':
        case '\n': fputc(*p, out); break;
        default:
            if (*p < 0x20 || *p == 0x7F) {
                fputs(REPLACEMENT, out);
                break;
            }
            int n = utf8_length(p);
            if (n == 0) {
                fputs(REPLACEMENT, out);
                break;
            }
            fwrite(p, 1, (size_t)n, out);
            p += n;
            continue;
        }
        p++;
    }
}

void ad_html_data_uri(FILE *out, const char *mime, const uint8_t *data, size_t len)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fprintf(out, "data:%s;base64,", mime);
    char quad[4];
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        quad[0] = B64[v >> 18], quad[1] = B64[(v >> 12) & 63];
        quad[2] = B64[(v >> 6) & 63], quad[3] = B64[v & 63];
        fwrite(quad, 1, 4, out);
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        quad[0] = B64[v >> 18], quad[1] = B64[(v >> 12) & 63];
        quad[2] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        quad[3] = '=';
        fwrite(quad, 1, 4, out);
    }
}

/* The one rule that turns a V4L2 control's name into the key camera.controls
 * uses for it: what `v4l2-ctl --list-ctrls` prints, so a name can be copied
 * from there. The config checks its keys against it; the V4L2 source matches
 * the driver's controls through it. */
#include <stdbool.h>
#include <stddef.h>

#include "anomalyd/config.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void ad_control_name(char *out, size_t n, const char *driver_name)
{
    size_t used = 0;
    bool gap = false; /* other characters since the last letter or digit */
    if (n == 0) return;
    for (const char *p = driver_name; *p; p++) {
        if (!is_alnum(*p)) {
            gap = used > 0; /* none at the start */
            continue;
        }
        if (gap && used + 1 < n) out[used++] = '_';
        gap = false;
        if (used + 1 < n) out[used++] = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
    }
    while (used > 0 && out[used - 1] == '_') used--; /* a name cut short by n */
    out[used] = '\0';
}

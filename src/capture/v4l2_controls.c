/* camera.controls on a V4L2 camera: the device's controls are listed with
 * VIDIOC_QUERY_EXT_CTRL and matched by the name v4l2-ctl prints for them
 * (ad_control_name); values are checked against each control's range, step
 * or menu, set one by one with VIDIOC_S_EXT_CTRLS (automatic controls first,
 * so their manual counterparts are not overridden or refused), and read back
 * with VIDIOC_G_EXT_CTRLS. Every call goes through v4l2_ioctl, which the
 * unit tests wrap to play a simulated camera. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libv4l2.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/util.h"
#include "capture_internal.h"

#define MAX_DEVICE_CONTROLS 1024 /* a driver listing more is broken or hostile */
#define MAX_MENU_ITEMS 64

/* One control as the device describes it. */
typedef struct dev_control {
    uint32_t id, type, flags;
    char name[AD_CONTROL_NAME_BYTES]; /* as v4l2-ctl prints it */
    int64_t min, max, step;
} dev_control;

typedef struct dev_controls {
    dev_control *v;
    size_t n;
} dev_controls;

/* A configured control matched to the device's and checked: the value to set. */
typedef struct resolved {
    const ad_camera_control *want;
    const dev_control *dc;
    int64_t value;
} resolved;

/* Automatic controls and the value that turns each off. They are set before
 * every other control; anomalyctl init writes them at these values. */
static const struct {
    uint32_t id;
    int64_t manual;
} automatic[] = {
    {V4L2_CID_EXPOSURE_AUTO, V4L2_EXPOSURE_MANUAL},
    {V4L2_CID_EXPOSURE_AUTO_PRIORITY, 0}, /* 1 lets the camera lower the frame rate */
    {V4L2_CID_AUTOGAIN, 0},
    {V4L2_CID_ISO_SENSITIVITY_AUTO, V4L2_ISO_SENSITIVITY_MANUAL},
    {V4L2_CID_AUTO_WHITE_BALANCE, 0},
    {V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE, V4L2_WHITE_BALANCE_MANUAL},
    {V4L2_CID_FOCUS_AUTO, 0},
    {V4L2_CID_HUE_AUTO, 0},
    {V4L2_CID_AUTOBRIGHTNESS, 0},
    {V4L2_CID_CHROMA_AGC, 0},
};

/* The manual controls anomalyctl init writes (when the camera has them):
 * what the automatic ones would otherwise move, and what a replug or another
 * program could reset. */
static const uint32_t picture_controls[] = {
    V4L2_CID_EXPOSURE_ABSOLUTE, V4L2_CID_EXPOSURE, V4L2_CID_GAIN, V4L2_CID_ISO_SENSITIVITY,
    V4L2_CID_WHITE_BALANCE_TEMPERATURE, V4L2_CID_RED_BALANCE, V4L2_CID_BLUE_BALANCE,
    V4L2_CID_FOCUS_ABSOLUTE, V4L2_CID_IRIS_ABSOLUTE, V4L2_CID_ZOOM_ABSOLUTE, V4L2_CID_BRIGHTNESS,
    V4L2_CID_CONTRAST, V4L2_CID_SATURATION, V4L2_CID_HUE, V4L2_CID_GAMMA, V4L2_CID_SHARPNESS,
    V4L2_CID_BACKLIGHT_COMPENSATION, V4L2_CID_POWER_LINE_FREQUENCY,
};

static int automatic_index(uint32_t id)
{
    for (size_t i = 0; i < sizeof automatic / sizeof automatic[0]; i++)
        if (automatic[i].id == id) return (int)i;
    return -1;
}

/* The camera vanished. Narrower than for streaming: a UVC camera answers a
 * control request it rejects with an error too, and that is a refusal. */
static bool device_gone(int e) { return e == ENODEV || e == ENXIO; }

static bool is_menu(const dev_control *dc)
{
    return dc->type == V4L2_CTRL_TYPE_MENU || dc->type == V4L2_CTRL_TYPE_INTEGER_MENU;
}

/* The types camera.controls can hold: one number each. */
static const char *unsupported_type(uint32_t type)
{
    switch (type) {
    case V4L2_CTRL_TYPE_INTEGER:
    case V4L2_CTRL_TYPE_INTEGER64:
    case V4L2_CTRL_TYPE_BOOLEAN:
    case V4L2_CTRL_TYPE_MENU:
    case V4L2_CTRL_TYPE_INTEGER_MENU:
    case V4L2_CTRL_TYPE_BITMASK: return NULL;
    case V4L2_CTRL_TYPE_BUTTON: return "a button (an action, not a setting)";
    case V4L2_CTRL_TYPE_STRING: return "a string control";
    default: return "a compound control";
    }
}

/* ---- what the device has ---- */

/* Every enabled control (class headings left out); 0, or -1 with errno set
 * when the device failed. A device without the ioctl has no controls. */
static int list_controls(int fd, dev_controls *out)
{
    size_t cap = 0;
    out->v = NULL;
    out->n = 0;
    uint32_t id = V4L2_CTRL_FLAG_NEXT_CTRL;
    for (int guard = 0; guard < MAX_DEVICE_CONTROLS; guard++) {
        struct v4l2_query_ext_ctrl q;
        memset(&q, 0, sizeof q);
        q.id = id;
        if (ad_v4l2_xioctl(fd, VIDIOC_QUERY_EXT_CTRL, &q) < 0) {
            if (errno == EINVAL || errno == ENOTTY) return 0; /* the end, or no controls */
            free(out->v);
            out->v = NULL;
            out->n = 0;
            return -1;
        }
        if ((q.id & ~V4L2_CTRL_FLAG_NEXT_CTRL) <= (id & ~V4L2_CTRL_FLAG_NEXT_CTRL) && guard > 0)
            break; /* a driver that does not move on would loop forever */
        id = q.id | V4L2_CTRL_FLAG_NEXT_CTRL;
        if ((q.flags & V4L2_CTRL_FLAG_DISABLED) || q.type == V4L2_CTRL_TYPE_CTRL_CLASS) continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            out->v = ad_xrealloc(out->v, cap * sizeof *out->v);
        }
        dev_control *dc = &out->v[out->n++];
        dc->id = q.id;
        dc->type = q.type;
        dc->flags = q.flags;
        char name[sizeof q.name + 1];
        memcpy(name, q.name, sizeof q.name);
        name[sizeof q.name] = '\0';
        ad_control_name(dc->name, sizeof dc->name, name);
        dc->min = q.minimum;
        dc->max = q.maximum;
        dc->step = q.step > 0 ? (int64_t)q.step : 1;
    }
    return 0;
}

static const dev_control *find_control(const dev_controls *dev, const char *name)
{
    for (size_t i = 0; i < dev->n; i++)
        if (strcmp(dev->v[i].name, name) == 0) return &dev->v[i];
    return NULL;
}

static const dev_control *find_id(const dev_controls *dev, uint32_t id)
{
    for (size_t i = 0; i < dev->n; i++)
        if (dev->v[i].id == id) return &dev->v[i];
    return NULL;
}

/* A menu item's name as camera.controls writes it: v4l2-ctl's form of a
 * menu's text, the number of an integer menu. False when the index is not an
 * item (drivers skip some). */
static bool menu_item(int fd, const dev_control *dc, int64_t index, char *name, size_t n)
{
    if (index < dc->min || index > dc->max || index < 0 || index > UINT32_MAX) return false;
    struct v4l2_querymenu m;
    memset(&m, 0, sizeof m);
    m.id = dc->id;
    m.index = (uint32_t)index;
    if (ad_v4l2_xioctl(fd, VIDIOC_QUERYMENU, &m) < 0) return false;
    if (dc->type == V4L2_CTRL_TYPE_INTEGER_MENU) {
        snprintf(name, n, "%lld", (long long)m.value);
    } else {
        char text[sizeof m.name + 1];
        memcpy(text, m.name, sizeof m.name);
        text[sizeof m.name] = '\0';
        ad_control_name(name, n, text);
    }
    return true;
}

/* "1 (manual_mode), 3 (aperture_priority_mode)": the items a menu offers. */
static void describe_menu(int fd, const dev_control *dc, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    int shown = 0;
    for (int64_t i = dc->min; i <= dc->max && shown < MAX_MENU_ITEMS && used + 1 < n; i++) {
        char name[AD_CONTROL_NAME_BYTES];
        if (!menu_item(fd, dc, i, name, sizeof name)) continue;
        int w = snprintf(out + used, n - used, "%s%lld (%s)", shown ? ", " : "", (long long)i, name);
        if (w > 0) used += (size_t)w < n - used ? (size_t)w : n - used - 1;
        shown++;
    }
    if (!shown) snprintf(out, n, "(the camera lists no items)");
}

/* A value as a person reads it: "3 (aperture_priority_mode)", "true", "250". */
static void describe_value(int fd, const dev_control *dc, int64_t v, char *out, size_t n)
{
    char name[AD_CONTROL_NAME_BYTES];
    if (dc->type == V4L2_CTRL_TYPE_BOOLEAN && (v == 0 || v == 1))
        snprintf(out, n, "%s", v ? "true" : "false");
    else if (is_menu(dc) && menu_item(fd, dc, v, name, sizeof name))
        snprintf(out, n, "%lld (%s)", (long long)v, name);
    else if (dc->type == V4L2_CTRL_TYPE_BITMASK)
        snprintf(out, n, "0x%llx", (unsigned long long)(uint32_t)v);
    else
        snprintf(out, n, "%lld", (long long)v);
}

/* The value as the config wrote it, for messages. */
static void written_value(const ad_camera_control *c, char *out, size_t n)
{
    if (c->kind == AD_CONTROL_BOOL) snprintf(out, n, "%s", c->value ? "true" : "false");
    else if (c->kind == AD_CONTROL_ITEM) snprintf(out, n, "'%s'", c->item);
    else snprintf(out, n, "%lld", (long long)c->value);
}

/* "gain, brightness, ...": the names camera.controls could use, as many
 * whole names as fit, then "...". */
static void describe_names(const dev_controls *dev, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < dev->n; i++) {
        if (unsupported_type(dev->v[i].type) || (dev->v[i].flags & V4L2_CTRL_FLAG_READ_ONLY)) continue;
        if (used + strlen(dev->v[i].name) + sizeof ", , ..." > n) {
            snprintf(out + used, n - used, ", ...");
            return;
        }
        used += (size_t)snprintf(out + used, n - used, "%s%s", used ? ", " : "", dev->v[i].name);
    }
    if (!used) snprintf(out, n, "none, it lists no settable controls");
}

/* ---- checking a configured control ---- */

/* Matches c to the device's control and checks its value. 0 with r filled,
 * or -1 with why: "<what is wrong>, expected <what would do>". */
static int resolve(int fd, const char *device, const dev_controls *dev, const ad_camera_control *c,
                   resolved *r, char *why, size_t n)
{
    char shown[64], range[400];
    const dev_control *dc = find_control(dev, c->name);
    r->want = c;
    r->dc = dc;
    if (!dc) {
        describe_names(dev, range, sizeof range);
        snprintf(why, n, "camera %s has no control %s, expected one of its controls: %s", device, c->name, range);
        return -1;
    }
    const char *unsupported = unsupported_type(dc->type);
    if (unsupported) {
        snprintf(why, n, "%s of camera %s is %s, expected an integer, boolean or menu control", c->name, device,
                 unsupported);
        return -1;
    }
    if (dc->flags & V4L2_CTRL_FLAG_READ_ONLY) {
        snprintf(why, n, "%s of camera %s is read-only, expected a control the camera lets you set", c->name,
                 device);
        return -1;
    }
    written_value(c, shown, sizeof shown);
    if (is_menu(dc)) {
        describe_menu(fd, dc, range, sizeof range);
        if (c->kind == AD_CONTROL_ITEM) { /* by name: as v4l2-ctl writes it, any case */
            char want[AD_CONTROL_NAME_BYTES], name[AD_CONTROL_NAME_BYTES];
            ad_control_name(want, sizeof want, c->item);
            for (int64_t i = dc->min; i <= dc->max && i - dc->min < 256; i++)
                if (menu_item(fd, dc, i, name, sizeof name) && strcmp(name, want) == 0) {
                    r->value = i;
                    return 0;
                }
        } else if (c->kind == AD_CONTROL_INT) {
            char name[AD_CONTROL_NAME_BYTES];
            if (menu_item(fd, dc, c->value, name, sizeof name)) {
                r->value = c->value;
                return 0;
            }
        }
        snprintf(why, n, "%s is not an item of the %s menu of camera %s, expected one of: %s", shown, c->name,
                 device, range);
        return -1;
    }
    if (dc->type == V4L2_CTRL_TYPE_BOOLEAN) {
        if (c->kind == AD_CONTROL_BOOL || (c->kind == AD_CONTROL_INT && (c->value == 0 || c->value == 1))) {
            r->value = c->value;
            return 0;
        }
        snprintf(why, n, "%s is not a boolean, expected true or false (%s of camera %s is on/off)", shown, c->name,
                 device);
        return -1;
    }
    if (dc->type == V4L2_CTRL_TYPE_BITMASK) {
        if (c->kind == AD_CONTROL_INT && c->value >= 0 && (c->value & ~dc->max) == 0) {
            r->value = c->value;
            return 0;
        }
        snprintf(why, n, "%s is not a valid bitmask for %s of camera %s, expected bits of 0x%llx", shown, c->name,
                 device, (unsigned long long)dc->max);
        return -1;
    }
    /* integers */
    if (dc->step > 1)
        snprintf(range, sizeof range, "an integer in %lld..%lld in steps of %lld from %lld", (long long)dc->min,
                 (long long)dc->max, (long long)dc->step, (long long)dc->min);
    else
        snprintf(range, sizeof range, "an integer in %lld..%lld", (long long)dc->min, (long long)dc->max);
    if (c->kind != AD_CONTROL_INT) {
        snprintf(why, n, "%s is not an integer, expected %s", shown, range);
        return -1;
    }
    if (c->value < dc->min || c->value > dc->max) {
        snprintf(why, n, "%s is out of range for camera %s, expected %s", shown, device, range);
        return -1;
    }
    if (((uint64_t)c->value - (uint64_t)dc->min) % (uint64_t)dc->step != 0) { /* exact: value >= min */
        snprintf(why, n, "%s is between two steps of camera %s, expected %s", shown, device, range);
        return -1;
    }
    r->value = c->value;
    return 0;
}

/* ---- setting and reading ---- */

static int get_value(int fd, const dev_control *dc, int64_t *v)
{
    struct v4l2_ext_control c;
    struct v4l2_ext_controls cs;
    memset(&c, 0, sizeof c);
    memset(&cs, 0, sizeof cs);
    c.id = dc->id;
    cs.which = V4L2_CTRL_ID2WHICH(dc->id);
    cs.count = 1;
    cs.controls = &c;
    if (ad_v4l2_xioctl(fd, VIDIOC_G_EXT_CTRLS, &cs) < 0) return -1;
    *v = dc->type == V4L2_CTRL_TYPE_INTEGER64 ? c.value64 : c.value;
    return 0;
}

static int set_value(int fd, const dev_control *dc, int64_t v)
{
    struct v4l2_ext_control c;
    struct v4l2_ext_controls cs;
    memset(&c, 0, sizeof c);
    memset(&cs, 0, sizeof cs);
    c.id = dc->id;
    if (dc->type == V4L2_CTRL_TYPE_INTEGER64) c.value64 = v;
    else c.value = (int32_t)v;
    cs.which = V4L2_CTRL_ID2WHICH(dc->id);
    cs.count = 1;
    cs.controls = &c;
    return ad_v4l2_xioctl(fd, VIDIOC_S_EXT_CTRLS, &cs);
}

/* Appends a clause to a list of them, after sep unless it is the first;
 * cut at the buffer's end. */
static void report_add(char *report, size_t n, const char *sep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_add(char *report, size_t n, const char *sep, const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + strlen(sep) + 1 >= n) return;
    if (used) used += (size_t)snprintf(report + used, n - used, "%s", sep);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, n - used, fmt, ap);
    va_end(ap);
}

/* Automatic controls first, in the order of the table above, then the rest
 * as the config lists them. */
static int set_order(const void *a, const void *b)
{
    const resolved *x = a, *y = b;
    int ax = automatic_index(x->dc->id), ay = automatic_index(y->dc->id);
    if (ax < 0) ax = (int)(sizeof automatic / sizeof automatic[0]);
    if (ay < 0) ay = (int)(sizeof automatic / sizeof automatic[0]);
    if (ax != ay) return ax - ay;
    return x->want < y->want ? -1 : x->want > y->want;
}

int ad_v4l2_apply_controls(ad_source *src, int *set, char *err, size_t errlen)
{
    const ad_capture_options *o = &src->opt;
    char *report = src->controls_report;
    size_t rn = sizeof src->controls_report;
    int fd = src->v4l2.fd, rc = 0;
    *set = 0;
    if (o->ncontrols == 0) return 0;
    dev_controls dev;
    if (list_controls(fd, &dev) < 0) {
        int e = errno;
        if (device_gone(e)) {
            ad_err(err, errlen, "camera %s disappeared while listing its controls: %s", o->device, strerror(e));
            return AD_CAPTURE_NODEV;
        }
        report_add(report, rn, "\n", "cannot list the controls (%s), none set", strerror(e));
        return 0;
    }
    resolved *todo = ad_xcalloc((size_t)o->ncontrols, sizeof *todo);
    size_t ntodo = 0;
    char why[768];
    for (int i = 0; i < o->ncontrols; i++) {
        if (resolve(fd, o->device, &dev, &o->controls[i], &todo[ntodo], why, sizeof why) == 0) ntodo++;
        else report_add(report, rn, "\n", "%s: %s", o->controls[i].name, why);
    }
    qsort(todo, ntodo, sizeof *todo, set_order);
    bool *done = ad_xcalloc(ntodo ? ntodo : 1, sizeof *done);
    for (size_t i = 0; i < ntodo && rc == 0; i++) {
        char want[64];
        describe_value(fd, todo[i].dc, todo[i].value, want, sizeof want);
        if (set_value(fd, todo[i].dc, todo[i].value) == 0) {
            done[i] = true;
        } else if (device_gone(errno)) {
            rc = AD_CAPTURE_NODEV;
            ad_err(err, errlen, "camera %s disappeared while setting %s: %s", o->device, todo[i].want->name,
                   strerror(errno));
        } else {
            report_add(report, rn, "\n", "%s: the camera refused %s (%s)", todo[i].want->name, want, strerror(errno));
        }
    }
    /* read back after all are set: a later automatic control may move an earlier one */
    for (size_t i = 0; i < ntodo && rc == 0; i++) {
        if (!done[i] || (todo[i].dc->flags & V4L2_CTRL_FLAG_WRITE_ONLY)) continue;
        int64_t got = 0;
        char want[64], have[64];
        describe_value(fd, todo[i].dc, todo[i].value, want, sizeof want);
        if (get_value(fd, todo[i].dc, &got) < 0) {
            if (device_gone(errno)) {
                rc = AD_CAPTURE_NODEV;
                ad_err(err, errlen, "camera %s disappeared while reading %s back: %s", o->device,
                       todo[i].want->name, strerror(errno));
            } else {
                report_add(report, rn, "\n", "%s: set to %s but cannot be read back (%s)", todo[i].want->name, want,
                           strerror(errno));
            }
            continue;
        }
        if (got == todo[i].value) {
            (*set)++;
            continue;
        }
        describe_value(fd, todo[i].dc, got, have, sizeof have);
        report_add(report, rn, "\n", "%s: wanted %s, got %s", todo[i].want->name, want, have);
    }
    free(done);
    free(todo);
    free(dev.v);
    return rc;
}

/* ---- without streaming: --check-config and anomalyctl init ---- */

static int open_for_controls(const char *device, int *fd, char *err, size_t errlen)
{
    *fd = v4l2_open(device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (*fd >= 0) return 0;
    int e = errno;
    ad_err(err, errlen, "cannot open camera %s to ask for its controls: %s", device, strerror(e));
    return e == ENOENT || e == ENODEV || e == ENXIO || e == EBUSY ? AD_CAPTURE_NODEV : AD_CAPTURE_ERROR;
}

int ad_camera_controls_check(const ad_config *cfg, char *problems, size_t problems_len, char *err,
                             size_t errlen)
{
    if (problems_len) problems[0] = '\0';
    if (cfg->camera.source != AD_SOURCE_V4L2 || cfg->camera.ncontrols == 0) return 0;
    const char *device = cfg->camera.device;
    int fd, rc;
    if ((rc = open_for_controls(device, &fd, err, errlen)) < 0) return rc;
    dev_controls dev;
    if (list_controls(fd, &dev) < 0) {
        int e = errno;
        v4l2_close(fd);
        ad_err(err, errlen, "cannot list the controls of camera %s: %s", device, strerror(e));
        return device_gone(e) ? AD_CAPTURE_NODEV : AD_CAPTURE_ERROR;
    }
    int bad = 0;
    size_t used = 0;
    for (int i = 0; i < cfg->camera.ncontrols; i++) {
        const ad_camera_control *c = &cfg->camera.controls[i];
        resolved r;
        char why[768], key[AD_CONTROL_NAME_BYTES + 32], where[AD_PATH_MAX + 64];
        if (resolve(fd, device, &dev, c, &r, why, sizeof why) == 0) continue;
        bad++;
        snprintf(key, sizeof key, "camera.controls.%s", c->name);
        ad_config_key_where(cfg->path, key, where, sizeof where);
        if (used + 1 < problems_len) {
            int w = snprintf(problems + used, problems_len - used, "%s%s: %s: %s", used ? "\n" : "", where, key,
                             why);
            if (w > 0) used += (size_t)w < problems_len - used ? (size_t)w : problems_len - used - 1;
        }
    }
    free(dev.v);
    v4l2_close(fd);
    return bad;
}

/* c as camera.controls should hold it: a menu by its item's name, a boolean
 * as true/false. */
static void control_value(int fd, const dev_control *dc, int64_t v, ad_camera_control *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", dc->name);
    c->value = v;
    if (dc->type == V4L2_CTRL_TYPE_BOOLEAN) c->kind = AD_CONTROL_BOOL;
    else if (dc->type == V4L2_CTRL_TYPE_MENU && menu_item(fd, dc, v, c->item, sizeof c->item))
        c->kind = AD_CONTROL_ITEM, c->value = 0;
    else c->kind = AD_CONTROL_INT;
}

static bool settable(const dev_control *dc)
{
    return dc && !unsupported_type(dc->type) &&
           !(dc->flags & (V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_WRITE_ONLY));
}

int ad_v4l2_read_controls(const char *device, ad_camera_control *out, int max, int *n, char *turned_off,
                          size_t turned_off_len, char *err, size_t errlen)
{
    *n = 0;
    if (turned_off_len) turned_off[0] = '\0';
    int fd;
    if (open_for_controls(device, &fd, err, errlen) < 0) return -1;
    dev_controls dev;
    if (list_controls(fd, &dev) < 0) {
        ad_err(err, errlen, "cannot list the controls of camera %s: %s", device, strerror(errno));
        v4l2_close(fd);
        return -1;
    }
    int rc = 0;
    size_t nauto = sizeof automatic / sizeof automatic[0], npic = sizeof picture_controls / sizeof picture_controls[0];
    for (size_t i = 0; i < nauto + npic && *n < max; i++) {
        bool is_auto = i < nauto;
        const dev_control *dc = find_id(&dev, is_auto ? automatic[i].id : picture_controls[i - nauto]);
        if (!settable(dc)) continue;
        int64_t now = 0;
        if (get_value(fd, dc, &now) < 0) {
            rc = ad_err(err, errlen, "cannot read control %s of camera %s: %s", dc->name, device, strerror(errno));
            break;
        }
        int64_t v = now;
        if (is_auto) {
            char item[AD_CONTROL_NAME_BYTES];
            v = automatic[i].manual;
            /* a menu without the manual item (a camera that cannot) stays out */
            if (v < dc->min || v > dc->max || (is_menu(dc) && !menu_item(fd, dc, v, item, sizeof item))) continue;
            if (now != v) {
                char was[64];
                describe_value(fd, dc, now, was, sizeof was);
                const char *shown = strchr(was, '(') ? strchr(was, '(') + 1 : was; /* "3 (x)" -> "x" */
                report_add(turned_off, turned_off_len, ", ", "%s (was %.*s)", dc->name,
                           (int)strcspn(shown, ")"), shown);
            }
        }
        control_value(fd, dc, v, &out[(*n)++]);
    }
    free(dev.v);
    v4l2_close(fd);
    return rc;
}

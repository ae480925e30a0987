/* The V4L2 source against a simulated camera: libv4l2's entry points and
 * poll are wrapped at link time (-Wl,--wrap, tests/cmake/capture.cmake), so
 * every ioctl the source makes lands in the `sim` below, which behaves like
 * a driver (buffer queue, sequence numbers) and can be told to misbehave. */
#include <errno.h>
#include <linux/videodev2.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_support.h"

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/util.h"
#include "commands.h"

#define SIM_FD 77
#define SIM_MAXBUF 32

struct sim_fmt {
    uint32_t fourcc;
    uint32_t flags;
};

/* A control as a driver holds it. menu: item texts by index, NULL = no
 * such item (drivers skip some). */
struct sim_ctrl {
    uint32_t id, type, flags;
    const char *name;
    int64_t min, max, step, value;
    const char *menu[8];
};

struct sim_ready {
    int index;
    uint32_t sequence, flags, bytesused;
};

static struct sim {
    /* behaviour */
    int open_errno;
    uint32_t caps;
    int querycap_errno;
    struct sim_fmt fmts[8];
    int nfmts;
    int sfmt_errno;
    uint32_t force_fourcc;           /* S_FMT answers with this format */
    uint32_t grant_w, grant_h;       /* S_FMT grants this size (0 = as asked) */
    uint32_t pad;                    /* extra bytes per line */
    uint32_t force_sizeimage;        /* S_FMT reports (and buffers hold) this many bytes */
    bool timeperframe;
    double grant_fps;                /* 0 = as asked */
    int reqbufs_errno;
    uint32_t grant_bufs;             /* 0 = as asked */
    int streamon_errno;
    int dqbuf_errno;                 /* DQBUF fails with this once the queue is empty */
    int poll_errno;
    bool poll_ready_empty;           /* poll reports POLLIN with nothing queued */
    int qbuf_errno_once;             /* the next QBUF fails with this */
    struct sim_ctrl ctrls[16];
    int nctrls;
    int query_ctrl_errno;            /* QUERY_EXT_CTRL fails with this */
    int64_t exposure_quantum;        /* the driver rounds exposure down to multiples of this */
    /* state */
    bool opened;
    uint32_t w, h, fourcc, bpl, sizeimage;
    struct v4l2_fract tpf;
    int nbufs;
    uint8_t *mem[SIM_MAXBUF];
    size_t len[SIM_MAXBUF];
    bool queued[SIM_MAXBUF];
    int qorder[SIM_MAXBUF], nq;      /* FIFO of queued buffers */
    struct sim_ready ready[64];
    int nready;
    bool streaming;
    uint32_t seq;
    /* call log */
    int opens, closes, mmaps, munmaps, s_fmt_calls, s_parm_calls, last_s_fmt_call, last_s_parm_call;
    int calls;
    uint32_t asked_fourcc;
    uint32_t set_order[32];          /* control ids in the order they were set */
    int nset;
} sim;

/* Like a UVC webcam with vivid's gain cluster: exposure and gain have
 * automatic counterparts that override them, and one disabled control. */
static void sim_add_controls(void)
{
    static const struct sim_ctrl ctrls[] = {
        {V4L2_CID_USER_CLASS, V4L2_CTRL_TYPE_CTRL_CLASS, V4L2_CTRL_FLAG_READ_ONLY, "User Controls", 0, 0, 0, 0, {0}},
        {V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_INTEGER, 0, "Brightness", 0, 255, 1, 128, {0}},
        {V4L2_CID_CONTRAST, V4L2_CTRL_TYPE_INTEGER, 0, "Contrast", 0, 100, 5, 50, {0}},
        {V4L2_CID_AUTOGAIN, V4L2_CTRL_TYPE_BOOLEAN, V4L2_CTRL_FLAG_UPDATE, "Gain, Automatic", 0, 1, 1, 1, {0}},
        {V4L2_CID_GAIN, V4L2_CTRL_TYPE_INTEGER, V4L2_CTRL_FLAG_VOLATILE, "Gain", 0, 255, 1, 100, {0}},
        {V4L2_CID_POWER_LINE_FREQUENCY, V4L2_CTRL_TYPE_MENU, 0, "Power Line Frequency", 0, 2, 1, 1,
         {"Disabled", "50 Hz", "60 Hz"}},
        {V4L2_CID_HUE, V4L2_CTRL_TYPE_INTEGER, V4L2_CTRL_FLAG_DISABLED, "Hue", -128, 127, 1, 0, {0}},
        {V4L2_CID_DO_WHITE_BALANCE, V4L2_CTRL_TYPE_BUTTON, V4L2_CTRL_FLAG_WRITE_ONLY, "Do White Balance", 0, 0, 0,
         0, {0}},
        {V4L2_CID_CAMERA_CLASS, V4L2_CTRL_TYPE_CTRL_CLASS, V4L2_CTRL_FLAG_READ_ONLY, "Camera Controls", 0, 0, 0, 0,
         {0}},
        {V4L2_CID_EXPOSURE_AUTO, V4L2_CTRL_TYPE_MENU, 0, "Auto Exposure", 0, 3, 1, 3,
         {"Auto Mode", "Manual Mode", NULL, "Aperture Priority Mode"}},
        {V4L2_CID_EXPOSURE_ABSOLUTE, V4L2_CTRL_TYPE_INTEGER, 0, "Exposure Time, Absolute", 3, 2047, 1, 250, {0}},
        {V4L2_CID_EXPOSURE_AUTO_PRIORITY, V4L2_CTRL_TYPE_BOOLEAN, 0, "Exposure, Dynamic Framerate", 0, 1, 1, 0, {0}},
        {V4L2_CID_PAN_ABSOLUTE, V4L2_CTRL_TYPE_INTEGER64, 0, "Pan, Absolute", -36000, 36000, 3600, 0, {0}},
        {V4L2_CID_CAMERA_SENSOR_ROTATION, V4L2_CTRL_TYPE_INTEGER, V4L2_CTRL_FLAG_READ_ONLY, "Camera Sensor Rotation",
         0, 270, 90, 0, {0}},
    };
    memcpy(sim.ctrls, ctrls, sizeof ctrls);
    sim.nctrls = (int)(sizeof ctrls / sizeof ctrls[0]);
}

static struct sim_ctrl *sim_ctrl(uint32_t id)
{
    for (int i = 0; i < sim.nctrls; i++)
        if (sim.ctrls[i].id == id && !(sim.ctrls[i].flags & V4L2_CTRL_FLAG_DISABLED)) return &sim.ctrls[i];
    return NULL;
}

static int64_t sim_ctrl_value(uint32_t id) { return sim_ctrl(id)->value; }

static void sim_reset(void)
{
    for (int i = 0; i < SIM_MAXBUF; i++) free(sim.mem[i]);
    memset(&sim, 0, sizeof sim);
    sim.caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
    sim.fmts[0] = (struct sim_fmt){V4L2_PIX_FMT_YUYV, 0};
    sim.fmts[1] = (struct sim_fmt){V4L2_PIX_FMT_GREY, 0};
    sim.fmts[2] = (struct sim_fmt){V4L2_PIX_FMT_RGB24, V4L2_FMT_FLAG_EMULATED};
    sim.nfmts = 3;
    sim.timeperframe = true;
    sim_add_controls();
}

/* The camera fills the oldest queued buffer: pixel bytes = value. */
static void sim_produce(uint8_t value, uint32_t flags, uint32_t bytesused, uint32_t seq_skip)
{
    assert_true(sim.streaming);
    assert_true(sim.nq > 0); /* the source starved the driver */
    int idx = sim.qorder[0];
    memmove(sim.qorder, sim.qorder + 1, (size_t)(sim.nq - 1) * sizeof sim.qorder[0]);
    sim.nq--;
    sim.queued[idx] = false;
    memset(sim.mem[idx], value, sim.len[idx]);
    sim.seq += seq_skip;
    sim.ready[sim.nready++] = (struct sim_ready){idx, sim.seq++, flags,
                                                 bytesused ? bytesused : sim.sizeimage};
}

static int sim_fail(int e)
{
    errno = e;
    return -1;
}

int __wrap_v4l2_open(const char *file, int oflag, ...)
{
    (void)file;
    (void)oflag;
    sim.opens++;
    if (sim.open_errno) return sim_fail(sim.open_errno);
    assert_false(sim.opened);
    sim.opened = true;
    return SIM_FD;
}

int __wrap_v4l2_close(int fd)
{
    assert_int_equal(fd, SIM_FD);
    assert_true(sim.opened);
    sim.opened = false;
    sim.closes++;
    sim.streaming = false;
    return 0;
}

void *__wrap_v4l2_mmap(void *start, size_t length, int prot, int flags, int fd, int64_t offset)
{
    (void)start;
    (void)prot;
    (void)flags;
    assert_int_equal(fd, SIM_FD);
    int idx = (int)(offset / 4096);
    if (idx < 0 || idx >= sim.nbufs) {
        fail_msg("mmap of an offset no buffer has: %lld", (long long)offset);
        return MAP_FAILED;
    }
    assert_int_equal(length, sim.len[idx]);
    sim.mmaps++;
    return sim.mem[idx];
}

/* cppcheck-suppress constParameter ; the signature is libv4l2's */
int __wrap_v4l2_munmap(void *start, size_t length)
{
    for (int i = 0; i < sim.nbufs; i++)
        if (sim.mem[i] == start) {
            assert_int_equal(length, sim.len[i]);
            sim.munmaps++;
            return 0;
        }
    fail_msg("munmap of an unknown address");
    return -1;
}

int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    if (nfds != 1 || fds[0].fd != SIM_FD) return __real_poll(fds, nfds, timeout);
    if (sim.poll_errno) return sim_fail(sim.poll_errno);
    if (!sim.opened || sim.dqbuf_errno) {
        fds[0].revents = POLLERR;
        return 1;
    }
    if (sim.nready > 0 || sim.poll_ready_empty) {
        fds[0].revents = POLLIN;
        return 1;
    }
    fds[0].revents = 0;
    return 0; /* timeout, without the wait */
}

static int sim_ioctl(unsigned long request, void *arg)
{
    sim.calls++;
    switch (request) {
    case VIDIOC_QUERYCAP: {
        if (sim.querycap_errno) return sim_fail(sim.querycap_errno);
        struct v4l2_capability *c = arg;
        memset(c, 0, sizeof *c);
        strcpy((char *)c->driver, "simcam");
        strcpy((char *)c->card, "Simulated camera");
        c->capabilities = sim.caps | V4L2_CAP_DEVICE_CAPS;
        c->device_caps = sim.caps;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *f = arg;
        if (f->index >= (uint32_t)sim.nfmts) return sim_fail(EINVAL);
        f->pixelformat = sim.fmts[f->index].fourcc;
        f->flags = sim.fmts[f->index].flags;
        snprintf((char *)f->description, sizeof f->description, "fmt %u", f->index);
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        static const uint32_t sizes[][2] = {{640, 480}, {320, 240}};
        if (s->index >= 2) return sim_fail(EINVAL);
        s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        s->discrete.width = sizes[s->index][0];
        s->discrete.height = sizes[s->index][1];
        return 0;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *iv = arg;
        if (iv->index >= 2) return sim_fail(EINVAL);
        iv->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        iv->discrete = (struct v4l2_fract){1, iv->index == 0 ? 15 : 30};
        return 0;
    }
    case VIDIOC_S_FMT: {
        struct v4l2_format *f = arg;
        sim.s_fmt_calls++;
        sim.last_s_fmt_call = sim.calls;
        assert_false(sim.streaming);
        sim.asked_fourcc = f->fmt.pix.pixelformat;
        if (sim.sfmt_errno) return sim_fail(sim.sfmt_errno);
        if (sim.force_fourcc) f->fmt.pix.pixelformat = sim.force_fourcc;
        if (sim.grant_w) f->fmt.pix.width = sim.grant_w;
        if (sim.grant_h) f->fmt.pix.height = sim.grant_h;
        uint32_t bpp = f->fmt.pix.pixelformat == V4L2_PIX_FMT_GREY ? 1
                       : f->fmt.pix.pixelformat == V4L2_PIX_FMT_YUYV ? 2 : 3;
        f->fmt.pix.bytesperline = f->fmt.pix.width * bpp + sim.pad;
        f->fmt.pix.sizeimage = sim.force_sizeimage ? sim.force_sizeimage
                                                   : f->fmt.pix.bytesperline * f->fmt.pix.height;
        sim.w = f->fmt.pix.width;
        sim.h = f->fmt.pix.height;
        sim.fourcc = f->fmt.pix.pixelformat;
        sim.bpl = f->fmt.pix.bytesperline;
        sim.sizeimage = f->fmt.pix.sizeimage;
        sim.tpf = (struct v4l2_fract){1, 5}; /* like vivid: rate resets on S_FMT */
        return 0;
    }
    case VIDIOC_G_PARM: {
        struct v4l2_streamparm *p = arg;
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = sim.timeperframe ? V4L2_CAP_TIMEPERFRAME : 0;
        p->parm.capture.timeperframe = sim.timeperframe ? sim.tpf : (struct v4l2_fract){0, 0};
        return 0;
    }
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        sim.s_parm_calls++;
        sim.last_s_parm_call = sim.calls;
        if (!sim.timeperframe) return sim_fail(EINVAL);
        if (sim.grant_fps > 0)
            sim.tpf = (struct v4l2_fract){1000, (uint32_t)lround(sim.grant_fps * 1000)};
        else
            sim.tpf = p->parm.capture.timeperframe;
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe = sim.tpf;
        return 0;
    }
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *r = arg;
        assert_int_equal(r->memory, V4L2_MEMORY_MMAP);
        if (r->count == 0) {
            for (int i = 0; i < sim.nbufs; i++) {
                free(sim.mem[i]);
                sim.mem[i] = NULL;
            }
            sim.nbufs = 0;
            sim.nq = 0;
            sim.nready = 0;
            return 0;
        }
        if (sim.reqbufs_errno) return sim_fail(sim.reqbufs_errno);
        assert_int_equal(sim.nbufs, 0);
        if (sim.grant_bufs) r->count = sim.grant_bufs;
        if (r->count > SIM_MAXBUF) r->count = SIM_MAXBUF;
        sim.nbufs = (int)r->count;
        for (int i = 0; i < sim.nbufs; i++) {
            sim.len[i] = sim.sizeimage;
            sim.mem[i] = calloc(1, sim.sizeimage);
            sim.queued[i] = false;
        }
        return 0;
    }
    case VIDIOC_QUERYBUF: {
        struct v4l2_buffer *b = arg;
        if (b->index >= (uint32_t)sim.nbufs) return sim_fail(EINVAL);
        b->length = (uint32_t)sim.len[b->index];
        b->m.offset = b->index * 4096;
        return 0;
    }
    case VIDIOC_QBUF: {
        struct v4l2_buffer *b = arg;
        if (!sim.opened) return sim_fail(ENODEV);
        if (b->index >= (uint32_t)sim.nbufs) return sim_fail(EINVAL);
        if (sim.qbuf_errno_once) {
            int e = sim.qbuf_errno_once;
            sim.qbuf_errno_once = 0;
            return sim_fail(e);
        }
        assert_false(sim.queued[b->index]); /* queued twice: a source bug */
        for (int i = 0; i < sim.nready; i++) assert_int_not_equal(sim.ready[i].index, b->index);
        sim.queued[b->index] = true;
        sim.qorder[sim.nq++] = (int)b->index;
        return 0;
    }
    case VIDIOC_DQBUF: {
        struct v4l2_buffer *b = arg;
        if (sim.nready == 0) return sim_fail(sim.dqbuf_errno ? sim.dqbuf_errno : EAGAIN);
        struct sim_ready r = sim.ready[0];
        memmove(sim.ready, sim.ready + 1, (size_t)(sim.nready - 1) * sizeof sim.ready[0]);
        sim.nready--;
        b->index = (uint32_t)r.index;
        b->sequence = r.sequence;
        b->flags = r.flags;
        b->bytesused = r.bytesused;
        return 0;
    }
    case VIDIOC_STREAMON:
        if (sim.streamon_errno) return sim_fail(sim.streamon_errno);
        sim.streaming = true;
        return 0;
    case VIDIOC_STREAMOFF:
        sim.streaming = false;
        /* like the kernel: every buffer returns to the application */
        sim.nq = 0;
        sim.nready = 0;
        for (int i = 0; i < sim.nbufs; i++) sim.queued[i] = false;
        return 0;
    case VIDIOC_QUERY_EXT_CTRL: {
        struct v4l2_query_ext_ctrl *q = arg;
        if (sim.query_ctrl_errno) return sim_fail(sim.query_ctrl_errno);
        assert_true(q->id & V4L2_CTRL_FLAG_NEXT_CTRL); /* enumeration only */
        uint32_t after = q->id & ~(V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND);
        const struct sim_ctrl *next = NULL;
        for (int i = 0; i < sim.nctrls; i++) /* in id order, like the kernel */
            if (sim.ctrls[i].id > after && (!next || sim.ctrls[i].id < next->id)) next = &sim.ctrls[i];
        if (!next) return sim_fail(EINVAL);
        memset(q, 0, sizeof *q);
        q->id = next->id;
        q->type = next->type;
        q->flags = next->flags;
        snprintf(q->name, sizeof q->name, "%s", next->name);
        q->minimum = next->min;
        q->maximum = next->max;
        q->step = (uint64_t)next->step;
        return 0;
    }
    case VIDIOC_QUERYMENU: {
        struct v4l2_querymenu *m = arg;
        const struct sim_ctrl *c = sim_ctrl(m->id);
        if (!c || c->type != V4L2_CTRL_TYPE_MENU || m->index < c->min || m->index > c->max || m->index >= 8 ||
            !c->menu[m->index])
            return sim_fail(EINVAL);
        snprintf((char *)m->name, sizeof m->name, "%s", c->menu[m->index]);
        return 0;
    }
    case VIDIOC_G_EXT_CTRLS:
    case VIDIOC_S_EXT_CTRLS: {
        struct v4l2_ext_controls *cs = arg;
        assert_int_equal(cs->count, 1);
        struct v4l2_ext_control *x = &cs->controls[0];
        assert_int_equal(cs->which, V4L2_CTRL_ID2WHICH(x->id)); /* one class per call */
        struct sim_ctrl *c = sim_ctrl(x->id);
        if (!c) return sim_fail(EINVAL);
        bool is64 = c->type == V4L2_CTRL_TYPE_INTEGER64;
        if (request == VIDIOC_G_EXT_CTRLS) {
            if (c->flags & V4L2_CTRL_FLAG_WRITE_ONLY) return sim_fail(EACCES);
            int64_t v = c->value;
            if (c->id == V4L2_CID_GAIN && sim_ctrl_value(V4L2_CID_AUTOGAIN)) v = 17; /* what autogain chose */
            if (is64) x->value64 = v;
            else x->value = (int32_t)v;
            return 0;
        }
        int64_t v = is64 ? x->value64 : x->value;
        if (c->flags & V4L2_CTRL_FLAG_READ_ONLY) return sim_fail(EACCES);
        if (v < c->min || v > c->max) return sim_fail(ERANGE);
        /* like a UVC camera: exposure is refused while auto exposure runs */
        if (c->id == V4L2_CID_EXPOSURE_ABSOLUTE && sim_ctrl_value(V4L2_CID_EXPOSURE_AUTO) != V4L2_EXPOSURE_MANUAL)
            return sim_fail(EACCES);
        if (c->id == V4L2_CID_EXPOSURE_ABSOLUTE && sim.exposure_quantum) v -= v % sim.exposure_quantum;
        c->value = v;
        if (sim.nset < 32) sim.set_order[sim.nset++] = c->id;
        return 0;
    }
    default:
        return sim_fail(ENOTTY);
    }
}

int __wrap_v4l2_ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (fd != SIM_FD || !sim.opened) return sim_fail(EBADF);
    return sim_ioctl(request, arg);
}

/* ---- helpers ---- */

static ad_capture_options camera_options(int channels, enum ad_pixfmt pf)
{
    ad_capture_options o;
    memset(&o, 0, sizeof o);
    o.source = AD_SOURCE_V4L2;
    strcpy(o.device, "/dev/video0");
    o.width = 640;
    o.height = 480;
    o.pixel_format = pf;
    o.channels = channels;
    o.fps = 30;
    o.buffers = 4;
    o.timeout_ms = 2000;
    return o;
}

static int setup(void **state)
{
    (void)state;
    sim_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_reset();
    return 0;
}

static ad_source *open_ok(ad_capture_options o, char *granted, size_t glen)
{
    ad_source *src = NULL;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    int rc = ad_source_open(src, granted, glen, err, sizeof err);
    if (rc != 0) fail_msg("open failed: %s", err);
    return src;
}

static int all_buffers_with_driver(void) { return sim.nq + sim.nready == sim.nbufs; }

/* ---- tests ---- */

static void test_native_grey(void **state)
{
    (void)state;
    char granted[256];
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), granted, sizeof granted);
    assert_int_equal(sim.asked_fourcc, V4L2_PIX_FMT_GREY);
    assert_string_equal(granted, "640x480 GREY 30.00 fps, 4 buffers");
    assert_true(all_buffers_with_driver());
    /* the rate is set again after the format (vivid falls to 5 fps otherwise) */
    assert_true(sim.last_s_parm_call > sim.last_s_fmt_call);

    sim_produce(123, 0, 0, 0);
    ad_image frame = {0};
    uint64_t seq = 99, dropped = 99;
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.w, 640);
    assert_int_equal(frame.h, 480);
    assert_int_equal(frame.c, 1);
    assert_int_equal(frame.px[0], 123);
    assert_int_equal(frame.px[640 * 480 - 1], 123);
    assert_int_equal(seq, 0);
    assert_int_equal(dropped, 0);
    assert_true(all_buffers_with_driver());

    ad_source_info info;
    ad_source_get_info(src, &info);
    assert_true(info.open);
    assert_string_equal(info.fourcc, "GREY");
    assert_false(info.converted);
    assert_int_equal(info.buffers, 4);
    assert_int_equal(info.frames, 1);
    ad_image_free(&frame);
    ad_source_destroy(src);
    assert_int_equal(sim.mmaps, sim.munmaps);
    assert_int_equal(sim.closes, 1);
}

static void test_rgb24_fallback_converts_to_gray(void **state)
{
    (void)state;
    sim.fmts[1] = (struct sim_fmt){V4L2_PIX_FMT_MJPEG, 0}; /* no native GREY */
    char granted[256];
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_GREY), granted, sizeof granted);
    assert_int_equal(sim.asked_fourcc, V4L2_PIX_FMT_RGB24);
    assert_non_null(strstr(granted, "RGB3"));
    assert_non_null(strstr(granted, "converted by libv4l2"));
    assert_non_null(strstr(granted, "gray computed from RGB"));
    sim_produce(200, 0, 0, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.c, 1);
    assert_int_equal(frame.px[0], 200); /* luma of (200,200,200) */
    ad_source_info info;
    ad_source_get_info(src, &info);
    assert_true(info.converted);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

/* The camera path and the PNG path turn the same colour into the same gray
 * (one BT.601 rounding, ad_rgb_to_gray): pure green is 150 from both, so a
 * scene scores the same from the camera as from a PNG of it. */
static void test_camera_gray_matches_png_gray(void **state)
{
    (void)state;
    sim.fmts[1] = (struct sim_fmt){V4L2_PIX_FMT_MJPEG, 0}; /* no native GREY */
    char granted[256], err[AD_ERRLEN];
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_GREY), granted, sizeof granted);
    assert_int_equal(sim.asked_fourcc, V4L2_PIX_FMT_RGB24);
    sim_produce(0, 0, 0, 0);
    uint8_t *px = sim.mem[sim.ready[sim.nready - 1].index];
    for (uint32_t i = 1; i < sim.sizeimage; i += 3) px[i] = 255; /* (0, 255, 0) */
    ad_image frame = {0};
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.c, 1);

    char *dir = ts_tmpdir("v4l2-green"), path[1024];
    snprintf(path, sizeof path, "%s/green.png", dir);
    ad_image rgb = {0}, gray = {0};
    assert_int_equal(ad_image_alloc(&rgb, 2, 2, 3), 0);
    for (int i = 0; i < 4; i++) rgb.px[3 * i + 1] = 255;
    assert_int_equal(ad_png_write(path, &rgb, err, sizeof err), 0);
    assert_int_equal(ad_png_read(path, 1, &gray, err, sizeof err), 0);
    assert_int_equal(gray.px[0], 150);
    assert_int_equal(frame.px[0], gray.px[0]);
    assert_int_equal(frame.px[640 * 480 - 1], gray.px[0]);
    ad_image_free(&rgb);
    ad_image_free(&gray);
    ad_image_free(&frame);
    ad_source_destroy(src);
    ts_rmtree(dir);
    free(dir);
}

static void test_rgb_model_gets_rgb_even_with_grey_camera(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(3, AD_PIXFMT_AUTO), NULL, 0);
    assert_int_equal(sim.asked_fourcc, V4L2_PIX_FMT_RGB24);
    sim_produce(7, 0, 0, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.c, 3);
    assert_int_equal(frame.px[3 * 640 * 480 - 1], 7);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_format_refused(void **state)
{
    (void)state;
    sim.force_fourcc = V4L2_PIX_FMT_YUYV;
    ad_capture_options o = camera_options(1, AD_PIXFMT_GREY);
    ad_source *src = NULL;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "camera /dev/video0 refused 640x480 GREY"));
    assert_non_null(strstr(err, "it offers: YUYV 640x480 320x240, GREY 640x480 320x240"));
    assert_null(strstr(err, "RGB3")); /* emulated formats are not the camera's */
    assert_false(sim.opened);

    sim.force_fourcc = 0;
    sim.sfmt_errno = EINVAL;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "refused 640x480 GREY"));
    assert_false(sim.opened);

    sim.sfmt_errno = EBUSY;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "busy"));
    ad_source_destroy(src);
}

static void test_granted_size_and_rate_differ(void **state)
{
    (void)state;
    sim.grant_w = 640;
    sim.grant_h = 360;
    sim.grant_fps = 25;
    sim.pad = 64; /* rows padded by the driver */
    char granted[256];
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), granted, sizeof granted);
    assert_string_equal(granted,
                        "640x360 GREY 25.00 fps, 4 buffers (asked 640x480) (asked 30.00 fps)");
    /* fill one row's padding differently to see it is skipped */
    sim_produce(50, 0, 0, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.w, 640);
    assert_int_equal(frame.h, 360);
    ad_source_info info;
    ad_source_get_info(src, &info);
    assert_true(fabs(info.fps - 25) < 1e-9);
    ad_image_free(&frame);
    ad_source_destroy(src);

    sim_reset();
    sim.timeperframe = false;
    src = open_ok(camera_options(1, AD_PIXFMT_AUTO), granted, sizeof granted);
    assert_non_null(strstr(granted, "frame rate not settable"));
    ad_source_destroy(src);
}

static void test_padding_is_skipped(void **state)
{
    (void)state;
    sim.pad = 16;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    sim_produce(0, 0, 0, 0);
    /* write a ramp into the pixels and 255 into the padding of the last-produced buffer */
    int idx = sim.ready[0].index;
    for (uint32_t y = 0; y < sim.h; y++)
        for (uint32_t x = 0; x < sim.bpl; x++)
            sim.mem[idx][y * sim.bpl + x] = x < sim.w ? (uint8_t)(x + y) : 255;
    ad_image frame = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    for (int y = 0; y < frame.h; y += 37)
        for (int x = 0; x < frame.w; x += 13)
            assert_int_equal(frame.px[y * frame.w + x], (uint8_t)(x + y));
    ad_image_free(&frame);
    ad_source_destroy(src);
}

/* Found by tests/fuzz/fuzz_v4l2: a bytesperline so large that the bytes a
 * frame needs wrapped around 32 bits to a small number; a small buffer then
 * passed the size check and the grab read rows gigabytes past it. */
static void test_huge_bytesperline_refused(void **state)
{
    (void)state;
    sim.grant_h = 5;
    sim.pad = 0x40000000u - 640; /* bytesperline 2^30: 4 rows of it wrap to 0 */
    sim.force_sizeimage = 4096;
    ad_capture_options o = camera_options(1, AD_PIXFMT_AUTO);
    ad_source *src = NULL;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "camera /dev/video0 reports 1073741824 bytes per line for "
                                "640x5 GREY"));
    assert_false(sim.opened);
    assert_int_equal(sim.mmaps, sim.munmaps);
    ad_source_destroy(src);
}

static void test_capabilities(void **state)
{
    (void)state;
    ad_capture_options o = camera_options(1, AD_PIXFMT_AUTO);
    ad_source *src = NULL;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);

    sim.caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_READWRITE;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_string_equal(err, "camera /dev/video0 does not support streaming I/O");

    sim.caps = V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "is not a video capture device"));

    sim.caps = V4L2_CAP_VIDEO_CAPTURE_MPLANE | V4L2_CAP_STREAMING;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "multi-planar"));

    sim.caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
    sim.querycap_errno = ENOTTY;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "is not a V4L2 video device"));
    assert_false(sim.opened);
    assert_int_equal(sim.opens, sim.closes);

    sim.querycap_errno = 0;
    sim.open_errno = ENOENT;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "camera /dev/video0 not found"));

    sim.open_errno = EACCES;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "'video' group"));
    ad_source_destroy(src);
}

static void test_buffers_and_streamon_failures(void **state)
{
    (void)state;
    ad_capture_options o = camera_options(1, AD_PIXFMT_AUTO);
    ad_source *src = NULL;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);

    sim.reqbufs_errno = EINVAL;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "refused 4 memory-mapped buffers (Invalid argument); if this "
                                "persists it does not support mmap streaming"));

    sim.reqbufs_errno = 0;
    sim.grant_bufs = 1;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "granted only 1 capture buffer"));
    assert_int_equal(sim.nbufs, 0); /* released again */

    sim.grant_bufs = 0;
    sim.streamon_errno = EINVAL;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "refused to start streaming"));
    assert_int_equal(sim.mmaps, sim.munmaps);
    assert_int_equal(sim.nbufs, 0);
    assert_false(sim.opened);

    sim.streamon_errno = 0;
    sim.grant_bufs = 6;
    char granted[256];
    assert_int_equal(ad_source_open(src, granted, sizeof granted, err, sizeof err), 0);
    assert_non_null(strstr(granted, "6 buffers"));
    ad_source_destroy(src);
    assert_int_equal(sim.mmaps, sim.munmaps);
}

static void test_newest_frame_and_drops(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    ad_image frame = {0};
    uint64_t seq = 0, dropped = 0;
    char err[AD_ERRLEN];
    sim_produce(1, 0, 0, 0);
    sim_produce(2, 0, 0, 0);
    sim_produce(3, 0, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.px[0], 3);
    assert_int_equal(seq, 2);
    assert_int_equal(dropped, 2);
    assert_true(all_buffers_with_driver());

    /* all four buffers full: the driver would stall if they were not returned */
    for (int round = 0; round < 10; round++) {
        for (int k = 0; k < 4; k++) sim_produce((uint8_t)(10 + k), 0, 0, 0);
        assert_int_equal(ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err),
                         AD_CAPTURE_OK);
        assert_int_equal(frame.px[0], 13);
        assert_int_equal(dropped, 3);
        assert_true(all_buffers_with_driver());
    }
    /* a gap in the driver's sequence is counted: frames the camera lost */
    sim_produce(40, 0, 0, 5);
    assert_int_equal(ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(dropped, 5);
    assert_int_equal(seq, 3 + 40 + 5);
    ad_source_info info;
    ad_source_get_info(src, &info);
    assert_int_equal(info.frames, 12);
    assert_int_equal(info.dropped, 2 + 30 + 5);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_bad_and_short_buffers(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    ad_image frame = {0};
    uint64_t dropped = 0;
    char err[AD_ERRLEN];
    sim_produce(1, V4L2_BUF_FLAG_ERROR, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, &dropped, err, sizeof err),
                     AD_CAPTURE_AGAIN);
    assert_non_null(strstr(err, "corrupt frame (V4L2_BUF_FLAG_ERROR)"));
    assert_null(frame.px);
    assert_true(all_buffers_with_driver());

    sim_produce(1, 0, 1000, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, &dropped, err, sizeof err),
                     AD_CAPTURE_AGAIN);
    assert_non_null(strstr(err, "short frame (1000 of 307200 bytes)"));
    assert_true(all_buffers_with_driver());

    /* a good frame behind a bad one is still delivered */
    sim_produce(5, 0, 0, 0);
    sim_produce(6, V4L2_BUF_FLAG_ERROR, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, &dropped, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.px[0], 5);
    assert_int_equal(dropped, 0);
    ad_source_info info;
    ad_source_get_info(src, &info);
    assert_int_equal(info.bad_buffers, 3);
    assert_true(all_buffers_with_driver());
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_eagain_timeout_eintr(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err),
                     AD_CAPTURE_TIMEOUT);
    assert_string_equal(err, "no frame from camera /dev/video0 within 2000 ms");

    sim.poll_ready_empty = true; /* poll says ready, DQBUF says EAGAIN */
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_AGAIN);
    sim.poll_ready_empty = false;

    sim.poll_errno = EINTR;
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_AGAIN);
    sim.poll_errno = 0;

    sim_produce(9, 0, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.px[0], 9);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_enodev_mid_stream_and_reopen(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    sim_produce(1, 0, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    /* unplugged: a frame was ready, then DQBUF fails */
    sim_produce(2, 0, 0, 0);
    sim.dqbuf_errno = ENODEV;
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "stopped delivering frames"));
    ad_source_close(src);
    ad_source_close(src); /* safe twice */
    assert_false(sim.opened);
    assert_int_equal(sim.mmaps, sim.munmaps);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_NODEV);
    assert_string_equal(err, "camera is not open");

    /* still gone: reopen says so; plugged back in: reopen works */
    sim.dqbuf_errno = 0;
    sim.open_errno = ENOENT;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    sim.open_errno = 0;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    sim_produce(3, 0, 0, 0);
    uint64_t seq = 0;
    assert_int_equal(ad_source_grab(src, &frame, &seq, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.px[0], 3);
    assert_int_equal(seq, 2); /* numbering continues across reopen */

    /* fatal streaming error (EIO) also asks for a reopen */
    sim.dqbuf_errno = EIO;
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_NODEV);
    ad_image_free(&frame);
    ad_source_destroy(src);
    ad_source_destroy(NULL);
}

static void test_refused_requeue_asks_for_reopen(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    sim_produce(4, 0, 0, 0);
    sim.qbuf_errno_once = EINVAL; /* like vivid's inject_vidioc_qbuf_error */
    /* the frame in hand is still delivered ... */
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.px[0], 4);
    /* ... and the lost buffer makes the next grab ask for a reopen */
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_NODEV);
    assert_non_null(strstr(err, "failed a buffer exchange (Invalid argument)"));
    ad_source_close(src);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    assert_true(all_buffers_with_driver());
    sim_produce(5, 0, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_size_change_on_reopen(void **state)
{
    (void)state;
    ad_source *src = open_ok(camera_options(1, AD_PIXFMT_AUTO), NULL, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    sim_produce(1, 0, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.w, 640);
    ad_source_close(src);
    sim.grant_w = 320;
    sim.grant_h = 240;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    sim_produce(2, 0, 0, 0);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.w, 320);
    assert_int_equal(frame.h, 240);
    assert_int_equal(frame.px[320 * 240 - 1], 2);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_list_modes(void **state)
{
    (void)state;
    ad_camera_mode *modes = NULL;
    size_t n = 0;
    char err[AD_ERRLEN];
    assert_int_equal(ad_v4l2_list_modes("/dev/video0", &modes, &n, err, sizeof err), 0);
    assert_int_equal(n, 6); /* 3 formats x 2 sizes */
    assert_string_equal(modes[0].fourcc, "YUYV");
    assert_int_equal(modes[0].width, 640);
    assert_int_equal(modes[1].height, 240);
    assert_int_equal(modes[0].nfps, 2);
    assert_true(fabs(modes[0].fps[0] - 30) < 1e-9); /* highest first */
    assert_true(modes[4].emulated);
    assert_false(sim.opened);
    free(modes);

    sim.open_errno = ENOENT;
    assert_int_equal(ad_v4l2_list_modes("/dev/video9", &modes, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "/dev/video9"));
}

static int stop_now(void *ctx)
{
    (*(int *)ctx)++;
    return 1;
}

static void test_backoff(void **state)
{
    (void)state;
    ad_backoff b;
    ad_backoff_init(&b, 1, 30);
    const double want[] = {1, 2, 4, 8, 16, 30, 30};
    for (int i = 0; i < 7; i++) {
        assert_true(fabs(ad_backoff_peek(&b) - want[i]) < 1e-12); /* what the wait will take */
        assert_true(fabs(ad_backoff_next(&b) - want[i]) < 1e-12);
    }
    ad_backoff_reset(&b);
    assert_true(fabs(ad_backoff_next(&b) - 1) < 1e-12);
    int calls = 0;
    assert_int_equal(ad_backoff_wait(&b, stop_now, &calls), 1);
    assert_int_equal(calls, 1);
    ad_backoff_init(&b, 0.01, 0.02);
    assert_int_equal(ad_backoff_wait(&b, NULL, NULL), 0);
    ad_backoff zero;
    memset(&zero, 0, sizeof zero);
    assert_true(fabs(ad_backoff_peek(&zero) - 1) < 1e-12);
    assert_true(fabs(ad_backoff_next(&zero) - 1) < 1e-12); /* zeroed = 1 s .. 30 s */
}

static void test_options_from_config(void **state)
{
    (void)state;
    ad_config cfg;
    ad_config_defaults(&cfg);
    ad_capture_options o;
    cfg.camera.pixel_format = AD_PIXFMT_AUTO;
    cfg.model.color = AD_COLOR_RGB;
    ad_capture_options_from_config(&o, &cfg);
    assert_int_equal(o.channels, 3);
    cfg.model.color = AD_COLOR_GRAY;
    ad_capture_options_from_config(&o, &cfg);
    assert_int_equal(o.channels, 1);
    cfg.camera.pixel_format = AD_PIXFMT_RGB24;
    ad_capture_options_from_config(&o, &cfg);
    assert_int_equal(o.channels, 3);
    cfg.camera.pixel_format = AD_PIXFMT_GREY;
    cfg.model.color = AD_COLOR_RGB;
    ad_capture_options_from_config(&o, &cfg);
    assert_int_equal(o.channels, 1);

    ad_source *src = NULL;
    char err[AD_ERRLEN];
    o.source = AD_SOURCE_REPLAY;
    o.replay_dir[0] = '\0';
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "replay_dir is empty"));
    assert_null(src);
    assert_string_equal(ad_capture_status_name(AD_CAPTURE_NODEV), "no device");
}

/* ---- camera.controls ---- */

/* Capture options from a config whose camera.controls block is `controls`
 * (YAML lines indented by four). */
static ad_capture_options options_with_controls(const char *controls)
{
    char text[2048], err[AD_ERRLEN];
    snprintf(text, sizeof text, "model:\n  path: /m.safetensors\nthreshold: 1\ncamera:\n  controls:\n%s", controls);
    ad_config cfg;
    int rc = ad_config_parse("cam.yaml", text, strlen(text), &cfg, err, sizeof err);
    if (rc) fail_msg("%s", err);
    ad_capture_options o;
    ad_capture_options_from_config(&o, &cfg);
    return o;
}

static int set_position(uint32_t id)
{
    for (int i = 0; i < sim.nset; i++)
        if (sim.set_order[i] == id) return i;
    return -1;
}

static void test_controls_set_in_order_and_read_back(void **state)
{
    (void)state;
    /* listed manual-first: the source turns the automatic ones off first */
    ad_capture_options o = options_with_controls("    exposure_time_absolute: 400\n    gain: 40\n"
                                                 "    auto_exposure: manual_mode\n    gain_automatic: false\n"
                                                 "    brightness: 10\n    contrast: 35\n"
                                                 "    power_line_frequency: \"50 Hz\"\n"
                                                 "    exposure_dynamic_framerate: 0\n    pan_absolute: -7200\n");
    char granted[256];
    ad_source *src = open_ok(o, granted, sizeof granted);
    assert_string_equal(granted, "640x480 GREY 30.00 fps, 4 buffers, 9 of 9 controls as asked");
    assert_string_equal(ad_source_controls_report(src), "");
    assert_true(sim_ctrl_value(V4L2_CID_EXPOSURE_AUTO) == V4L2_EXPOSURE_MANUAL);
    assert_true(sim_ctrl_value(V4L2_CID_EXPOSURE_ABSOLUTE) == 400);
    assert_true(sim_ctrl_value(V4L2_CID_AUTOGAIN) == 0);
    assert_true(sim_ctrl_value(V4L2_CID_GAIN) == 40);
    assert_true(sim_ctrl_value(V4L2_CID_BRIGHTNESS) == 10);
    assert_true(sim_ctrl_value(V4L2_CID_CONTRAST) == 35);
    assert_true(sim_ctrl_value(V4L2_CID_POWER_LINE_FREQUENCY) == 1);
    assert_true(sim_ctrl_value(V4L2_CID_PAN_ABSOLUTE) == -7200); /* a 64-bit control */
    assert_int_equal(sim.nset, 9);
    assert_true(set_position(V4L2_CID_EXPOSURE_AUTO) < set_position(V4L2_CID_EXPOSURE_ABSOLUTE));
    assert_true(set_position(V4L2_CID_AUTOGAIN) < set_position(V4L2_CID_GAIN));
    assert_int_equal(set_position(V4L2_CID_EXPOSURE_AUTO), 0);
    assert_int_equal(set_position(V4L2_CID_BRIGHTNESS), 5); /* the rest keep the config's order */
    /* set again at every reopen: a replugged camera starts from its defaults */
    ad_source_close(src);
    sim_add_controls();
    sim.nset = 0;
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    assert_int_equal(sim.nset, 9);
    assert_true(sim_ctrl_value(V4L2_CID_EXPOSURE_ABSOLUTE) == 400);
    assert_true(all_buffers_with_driver());
    ad_source_destroy(src);
}

static void test_controls_the_driver_changed_are_reported(void **state)
{
    (void)state;
    /* autogain left on overrides gain; the driver rounds exposure */
    ad_capture_options o = options_with_controls("    gain_automatic: true\n    gain: 40\n"
                                                 "    auto_exposure: 1\n    exposure_time_absolute: 250\n");
    sim.exposure_quantum = 8;
    char granted[256];
    ad_source *src = open_ok(o, granted, sizeof granted);
    assert_string_equal(granted, "640x480 GREY 30.00 fps, 4 buffers, 2 of 4 controls as asked");
    assert_string_equal(ad_source_controls_report(src),
                        "gain: wanted 40, got 17\nexposure_time_absolute: wanted 250, got 248");
    ad_source_destroy(src);
}

static void test_controls_missing_refused_or_out_of_range_do_not_stop_the_camera(void **state)
{
    (void)state;
    /* what a reopen finds when the camera was swapped for another model */
    ad_capture_options o = options_with_controls("    focus_absolute: 5\n    brightness: 300\n    contrast: 33\n"
                                                 "    auto_exposure: shutter_priority_mode\n"
                                                 "    exposure_time_absolute: 250\n    gain_automatic: 2\n"
                                                 "    power_line_frequency: true\n    camera_sensor_rotation: 90\n"
                                                 "    do_white_balance: 1\n    hue: 0\n");
    char granted[256];
    ad_source *src = open_ok(o, granted, sizeof granted);
    assert_string_equal(granted, "640x480 GREY 30.00 fps, 4 buffers, 0 of 10 controls as asked");
    const char *report = ad_source_controls_report(src);
    static const char *const expected[] = {
        "focus_absolute: camera /dev/video0 has no control focus_absolute, expected one of its controls: brightness, "
        "contrast, gain_automatic, gain, power_line_frequency, auto_exposure, exposure_time_absolute, "
        "exposure_dynamic_framerate, pan_absolute",
        "brightness: 300 is out of range for camera /dev/video0, expected an integer in 0..255",
        "contrast: 33 is between two steps of camera /dev/video0, expected an integer in 0..100 in steps of 5 from 0",
        "auto_exposure: 'shutter_priority_mode' is not an item of the auto_exposure menu of camera /dev/video0, "
        "expected one of: 0 (auto_mode), 1 (manual_mode), 3 (aperture_priority_mode)",
        "gain_automatic: 2 is not a boolean, expected true or false (gain_automatic of camera /dev/video0 is on/off)",
        "power_line_frequency: true is not an item of the power_line_frequency menu of camera /dev/video0, expected "
        "one of: 0 (disabled), 1 (50_hz), 2 (60_hz)",
        "camera_sensor_rotation: camera_sensor_rotation of camera /dev/video0 is read-only, expected a control the "
        "camera lets you set",
        "do_white_balance: do_white_balance of camera /dev/video0 is a button (an action, not a setting), expected an "
        "integer, boolean or menu control",
        "hue: camera /dev/video0 has no control hue", /* disabled: as good as absent */
        /* auto exposure is still on: a UVC camera refuses exposure */
        "exposure_time_absolute: the camera refused 250 (Permission denied)",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(report, expected[i])) fail_msg("report lacks \"%s\":\n%s", expected[i], report);
    /* the camera streams all the same */
    sim_produce(7, 0, 0, 0);
    ad_image frame = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_controls_camera_gone_while_listing_them(void **state)
{
    (void)state;
    ad_capture_options o = options_with_controls("    gain: 40\n");
    ad_source *src = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    sim.query_ctrl_errno = ENODEV;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_NODEV);
    assert_string_equal(err, "camera /dev/video0 disappeared while listing its controls: No such device");
    assert_false(sim.opened);
    /* a camera without the control API: nothing set, said so, frames flow */
    sim.query_ctrl_errno = ENOTTY;
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    assert_non_null(strstr(ad_source_controls_report(src), "gain: camera /dev/video0 has no control gain, expected "
                                                           "one of its controls: none, it lists no settable controls"));
    ad_source_destroy(src);
}

/* --check-config's check: every problem, each at its key's place in the file. */
static void test_controls_check_names_file_line_column(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("v4l2");
    char *path = ts_write_text(dir, "line3.yaml",
                               "model:\n  path: /m.safetensors\nthreshold: 1\ncamera:\n  device: /dev/video0\n"
                               "  controls:\n    gain_automatic: false\n    gain: 256\n    focus_absolute: 10\n"
                               "    auto_exposure: manual_mode\n");
    ad_config cfg;
    char err[AD_ERRLEN], problems[4096], expected[4096];
    assert_int_equal(ad_config_load(path, &cfg, err, sizeof err), 0);
    int calls = sim.calls;
    assert_int_equal(ad_camera_controls_check(&cfg, problems, sizeof problems, err, sizeof err), 2);
    snprintf(expected, sizeof expected,
             "%s:8:11: camera.controls.gain: 256 is out of range for camera /dev/video0, expected an integer in "
             "0..255\n"
             "%s:9:21: camera.controls.focus_absolute: camera /dev/video0 has no control focus_absolute, expected one "
             "of its controls: brightness, contrast, gain_automatic, gain, power_line_frequency, auto_exposure, "
             "exposure_time_absolute, exposure_dynamic_framerate, pan_absolute",
             path, path);
    assert_string_equal(problems, expected);
    assert_int_equal(sim.nset, 0); /* checked, never set */
    assert_true(sim.calls > calls);
    assert_false(sim.opened);

    /* all fine; no controls or a replay source: the camera is not asked */
    cfg.camera.ncontrols = 1;
    cfg.camera.controls[0].value = 255;
    memcpy(&cfg.camera.controls[0], &cfg.camera.controls[1], sizeof cfg.camera.controls[0]);
    cfg.camera.controls[0].value = 255;
    assert_int_equal(ad_camera_controls_check(&cfg, problems, sizeof problems, err, sizeof err), 0);
    assert_string_equal(problems, "");
    cfg.camera.ncontrols = 0;
    calls = sim.calls;
    sim.open_errno = ENOENT;
    assert_int_equal(ad_camera_controls_check(&cfg, problems, sizeof problems, err, sizeof err), 0);
    /* the camera cannot be asked: the caller decides (a warning in --check-config) */
    cfg.camera.ncontrols = 1;
    assert_int_equal(ad_camera_controls_check(&cfg, problems, sizeof problems, err, sizeof err), AD_CAPTURE_NODEV);
    assert_string_equal(err, "cannot open camera /dev/video0 to ask for its controls: No such file or directory");
    free(path);
    ts_rmtree(dir);
    free(dir);
}

/* anomalyctl init's reading: current values, automatic ones at manual. */
static void test_read_controls_turns_automatic_ones_off(void **state)
{
    (void)state;
    ad_camera_control c[AD_MAX_CONTROLS];
    int n = 0;
    char off[512], err[AD_ERRLEN];
    /* gain_automatic is on (1), auto_exposure at aperture priority (3) */
    assert_int_equal(ad_v4l2_read_controls("/dev/video0", c, AD_MAX_CONTROLS, &n, off, sizeof off, err, sizeof err),
                     0);
    assert_string_equal(off, "auto_exposure (was aperture_priority_mode), gain_automatic (was true)");
    static const char *const want[] = {
        "auto_exposure: 'manual_mode'",
        "exposure_dynamic_framerate: false",
        "gain_automatic: false",
        "exposure_time_absolute: 250",
        "gain: 17", /* the value autogain had chosen */
        "brightness: 128",
        "contrast: 50",
        "power_line_frequency: '50_hz'",
        NULL,
    };
    ts_assert_controls(c, n, want);
    assert_int_equal(sim.nset, 0); /* reading changes nothing */
    assert_false(sim.opened);

    /* already manual: nothing to say; max bounds the list */
    sim_ctrl(V4L2_CID_EXPOSURE_AUTO)->value = V4L2_EXPOSURE_MANUAL;
    sim_ctrl(V4L2_CID_AUTOGAIN)->value = 0;
    assert_int_equal(ad_v4l2_read_controls("/dev/video0", c, 2, &n, off, sizeof off, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(off, "");
    sim.open_errno = ENOENT;
    assert_int_equal(ad_v4l2_read_controls("/dev/video7", c, 2, &n, off, sizeof off, err, sizeof err), -1);
    assert_non_null(strstr(err, "/dev/video7"));
}

/* anomalyctl init --device on the simulated camera: the controls land in the
 * file with a comment saying why, and a source opened from that file sets
 * every one of them as asked. */
static void test_init_writes_the_controls_a_source_sets(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("v4l2"), path[1200];
    snprintf(path, sizeof path, "%s/station.yaml", dir);
    char *argv[] = {"init", "--line", "station", "--device", "/dev/video0", "--out", path, "--state", dir, NULL};
    assert_int_equal(ad_cmd_init(9, argv), 0);
    assert_int_equal(sim.nset, 0);
    uint8_t *text;
    size_t len;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(path, 1 << 20, &text, &len, err, sizeof err), 0);
    /* the comment as one paragraph, whatever its wrapping */
    char *flat = ad_xcalloc(len + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (!strncmp((char *)text + i, "\n  # ", 5)) {
            flat[o++] = ' ';
            i += 4;
        } else {
            flat[o++] = (char)text[i];
        }
    }
    assert_non_null(strstr(flat, "Automatic exposure, gain, white balance and focus are off: they change the picture "
                                 "during a shift, and a model trained on one exposure flags the next as defective. "
                                 "Turned off here: auto_exposure (was aperture_priority_mode), gain_automatic (was "
                                 "true)."));
    assert_non_null(strstr((char *)text, "\n  controls:\n    auto_exposure: manual_mode\n"
                                         "    exposure_dynamic_framerate: false\n    gain_automatic: false\n"
                                         "    exposure_time_absolute: 250\n    gain: 17\n    brightness: 128\n"
                                         "    contrast: 50\n    power_line_frequency: 50_hz\n"));
    free(flat);
    free(text);

    ad_config cfg;
    assert_int_equal(ad_config_load(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.camera.ncontrols, 8);
    ad_capture_options o2;
    ad_capture_options_from_config(&o2, &cfg);
    char granted[256];
    ad_source *src = open_ok(o2, granted, sizeof granted);
    assert_non_null(strstr(granted, ", 8 of 8 controls as asked"));
    assert_string_equal(ad_source_controls_report(src), "");
    assert_true(sim_ctrl_value(V4L2_CID_GAIN) == 17); /* frozen where autogain had it */
    ad_source_destroy(src);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_native_grey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rgb24_fallback_converts_to_gray, setup, teardown),
        cmocka_unit_test_setup_teardown(test_camera_gray_matches_png_gray, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rgb_model_gets_rgb_even_with_grey_camera, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_granted_size_and_rate_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_padding_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_bytesperline_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffers_and_streamon_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_frame_and_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_short_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eagain_timeout_eintr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enodev_mid_stream_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_requeue_asks_for_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_change_on_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_from_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controls_set_in_order_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controls_the_driver_changed_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controls_missing_refused_or_out_of_range_do_not_stop_the_camera, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_controls_camera_gone_while_listing_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controls_check_names_file_line_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_controls_turns_automatic_ones_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_writes_the_controls_a_source_sets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

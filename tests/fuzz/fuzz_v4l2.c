/* libFuzzer harness for the V4L2 source against a camera whose every answer
 * comes from the fuzz input: capabilities, the formats/sizes/intervals it
 * lists, what S_FMT grants (fourcc, size, bytes per line, image size), the
 * frame-rate fractions (zero included), how many buffers REQBUFS grants (0
 * and huge included), QUERYBUF lengths and offsets, what DQBUF returns
 * (index out of range, bytesused, flags, sequence), which call fails with
 * which errno, and what poll says. libv4l2 and poll are wrapped at link time
 * (-Wl,--wrap, tests/fuzz/CMakeLists.txt), as in tests/test_v4l2.c.
 *
 * Each input runs init, list modes, one to three open/grab.../close sessions
 * and destroy, and checks:
 *   - every failure message names the device;
 *   - a frame handed out has the granted size and the configured channels,
 *     and its pixels are the newest complete buffer's (stride and padding
 *     honoured, gray computed from RGB with BT.601);
 *   - frame numbers only grow;
 *   - after close (and after a failed open) every mmap'd buffer is unmapped
 *     and the descriptor closed; no call reaches a closed descriptor;
 *   - with a driver that does not lie, no buffer is queued twice and none
 *     is lost (all are with the driver after every grab).
 * Buffers are real heap allocations of the length the source maps, so a read
 * past a too-small buffer is an ASan report; leaks are LSan's.
 *
 * Input layout (little-endian; missing bytes read as 0):
 *   u8 flags: bit0 3 channels, bits1-2 pixel_format %3, bit3 reopen without
 *      close, bit4 destroy without close, bit5 list modes first, bit6
 *      endless enumeration
 *   u16 width, u16 height (clamped 16..8192), u8 fps (table), u8 buffers
 *      (2 + v%31), u8 sessions (1 + v%3), u8 grabs per session (v%8)
 *   u8 caps mode: 0 capture+streaming; else u32 capabilities, u32
 *      device_caps, 16 bytes driver, 32 bytes card (not terminated)
 *   u8 nformats %9, each: u8 fourcc (table, >=0xF0: u32 follows), u8 flags
 *      (bit0 emulated)
 *   u8 nsizes %5, u8 size type, each size: u16 w, u16 h
 *   u8 nintervals %5, u8 interval type, each: u16 numerator, u16 denominator
 *   S_FMT: u8 fourcc (0 as asked, else table), u32 w, u32 h (0 as asked),
 *      u8 bpl mode (0: w*bpp + u16 pad; else u32 raw), u8 sizeimage mode
 *      (0: bpl*h; else u32 raw)
 *   G_PARM: u8 capability (bit0 TIMEPERFRAME), u32 num, u32 den
 *   S_PARM: u8 mode (0 grants what is asked; 1 grants u32 num, u32 den; 2 EINVAL)
 *   REQBUFS: u8 mode (0 as asked; else u32 count)
 *   QUERYBUF: u8 which buffer is odd (0xFF all), u8 length mode (0 sizeimage;
 *      1 u32 raw; 2 sizeimage - (u8 + 1)), u8 offset mode (0 index*4096; else u32)
 *   u8 nfaults %5, each: u8 call kind, u8 nth occurrence, u8 errno (table)
 *   then per grab: u8 poll mode, u8 nframes %5, each frame: u8 index mode
 *      (>=0xF0: u32 raw index), u8 bytesused mode (<0xC0 full; <0xF0 short by
 *      u8+1; else u32 raw), u8 flags (bit0 ERROR), u8 sequence skip (0xFF: u32)
 * tests/fuzz/make_v4l2_seeds.py writes seeds in this layout. */
#include <errno.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "anomalyd/capture.h"
#include "anomalyd/util.h"

#define SIM_FD 93
#define DEVICE "/dev/video-fuzz"
#define MAXBUF 64
#define MAXMAP 64
#define MAP_CAP (1u << 20) /* larger mappings fail with ENOMEM */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- input reader ---- */

static const uint8_t *in_p;
static size_t in_n, in_i;

static uint8_t u8(void) { return in_i < in_n ? in_p[in_i++] : 0; }
static uint16_t u16(void) { return (uint16_t)(u8() | (u8() << 8)); }
static uint32_t u32(void) { return (uint32_t)u16() | ((uint32_t)u16() << 16); }

static void check(bool ok, const char *what)
{
    if (ok) return;
    fprintf(stderr, "fuzz_v4l2 invariant broken: %s\n", what);
    abort();
}

static const uint32_t fourccs[] = {V4L2_PIX_FMT_GREY, V4L2_PIX_FMT_RGB24, V4L2_PIX_FMT_YUYV,
                                   V4L2_PIX_FMT_MJPEG, V4L2_PIX_FMT_BGR24, V4L2_PIX_FMT_YUV420};

static uint32_t read_fourcc(uint8_t sel)
{
    return sel >= 0xF0 ? u32() : fourccs[sel % (sizeof fourccs / sizeof fourccs[0])];
}

static const int errnos[] = {EINVAL, ENODEV, EIO, EAGAIN, EINTR, EBUSY, EACCES, ENOMEM,
                             EPIPE, ENXIO, ENOENT, EPERM, ENOTTY, EFAULT};

/* calls a fault can hit */
enum { K_OPEN, K_QUERYCAP, K_ENUM_FMT, K_ENUM_SIZES, K_ENUM_IVALS, K_S_FMT, K_G_PARM, K_S_PARM,
       K_REQBUFS, K_QUERYBUF, K_MMAP, K_QBUF, K_DQBUF, K_STREAMON, K_STREAMOFF, K_POLL, K_N };

/* ---- the simulated camera ---- */

struct ready {
    uint32_t index, bytesused, flags, sequence;
};

static struct sim {
    /* answers */
    uint32_t caps, device_caps;
    uint8_t driver[16], card[32];
    uint32_t fmts[8], fmt_flags[8];
    int nfmts;
    int nsizes;
    uint32_t size_type, sizes[4][2];
    int nivals;
    uint32_t ival_type, ivals[4][2];
    bool endless;
    uint32_t sfmt_fourcc, sfmt_w, sfmt_h;
    uint8_t bpl_mode, size_mode;
    uint32_t bpl_raw, pad, sizeimage_raw;
    uint8_t gparm_cap;
    struct v4l2_fract gparm_tpf;
    uint8_t sparm_mode;
    struct v4l2_fract sparm_tpf;
    uint8_t reqbufs_mode;
    uint32_t reqbufs_count;
    uint8_t qb_odd, qb_len_mode, qb_off_mode;
    uint32_t qb_len_raw, qb_off_raw;
    struct { uint8_t kind, nth; int err; } faults[4];
    int nfaults;
    int occurrences[K_N];
    /* state */
    bool opened;
    uint32_t w, h, fourcc, bpl, sizeimage; /* last S_FMT answer */
    struct v4l2_fract tpf;
    int nbufs;                              /* granted, capped at MAXBUF */
    uint32_t qb_off[MAXBUF];
    int last_query;
    bool queued[MAXBUF];
    int qorder[MAXBUF], nq;
    struct ready ready[64];
    int nready;
    bool streaming;
    bool lied;                              /* DQBUF handed out an index of its own making */
    bool faulted;
    uint32_t seq;
    struct { uint8_t *p; size_t len; int index; } maps[MAXMAP];
    int nmaps;
    /* what the newest complete frame dequeued in this grab looks like */
    bool expect;
    uint32_t expect_serial;
    uint32_t serial;
} sim;

static void sim_free(void)
{
    for (int i = 0; i < sim.nmaps; i++) free(sim.maps[i].p);
    memset(&sim, 0, sizeof sim);
}

static int fault(int kind)
{
    int occ = sim.occurrences[kind]++;
    for (int i = 0; i < sim.nfaults; i++)
        if (sim.faults[i].kind == kind && sim.faults[i].nth == occ) {
            sim.faulted = true;
            return sim.faults[i].err;
        }
    return 0;
}

static int fail(int e)
{
    errno = e;
    return -1;
}

static uint8_t pattern(size_t k, uint32_t serial)
{
    return (uint8_t)((k * 131u + serial * 17u + (k >> 7)) ^ (k >> 13));
}

/* The driver writes a frame into every mapping of buffer idx. */
static void fill_buffer(uint32_t idx, uint32_t serial)
{
    for (int i = 0; i < sim.nmaps; i++)
        if (sim.maps[i].index == (int)idx)
            for (size_t k = 0; k < sim.maps[i].len; k++) sim.maps[i].p[k] = pattern(k, serial);
}

static uint32_t bpp_of(uint32_t fourcc)
{
    return fourcc == V4L2_PIX_FMT_GREY ? 1 : fourcc == V4L2_PIX_FMT_YUYV ? 2 : 3;
}

/* Bytes a frame of the last S_FMT answer needs (the last row unpadded). */
static uint64_t frame_bytes(void)
{
    uint64_t bpp = bpp_of(sim.fourcc);
    uint64_t bpl = sim.bpl ? sim.bpl : sim.w * bpp;
    return bpl * (sim.h ? sim.h - 1 : 0) + sim.w * bpp;
}

int __wrap_v4l2_open(const char *file, int oflag, ...);
int __wrap_v4l2_close(int fd);
int __wrap_v4l2_ioctl(int fd, unsigned long request, ...);
void *__wrap_v4l2_mmap(void *start, size_t length, int prot, int flags, int fd, int64_t offset);
int __wrap_v4l2_munmap(void *start, size_t length);
int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);

int __wrap_v4l2_open(const char *file, int oflag, ...)
{
    (void)oflag;
    check(strcmp(file, DEVICE) == 0, "open of another device");
    int e = fault(K_OPEN);
    if (e) return fail(e);
    check(!sim.opened, "device opened twice (descriptor leaked)");
    sim.opened = true;
    return SIM_FD;
}

int __wrap_v4l2_close(int fd)
{
    check(fd == SIM_FD && sim.opened, "close of a descriptor that is not open");
    sim.opened = false;
    sim.streaming = false;
    return 0;
}

void *__wrap_v4l2_mmap(void *start, size_t length, int prot, int flags, int fd, int64_t offset)
{
    (void)start;
    (void)prot;
    (void)flags;
    check(fd == SIM_FD && sim.opened, "mmap on a closed descriptor");
    int e = fault(K_MMAP);
    if (e) {
        errno = e;
        return MAP_FAILED;
    }
    int idx = -1;
    if (sim.last_query >= 0 && sim.qb_off[sim.last_query] == (uint32_t)offset)
        idx = sim.last_query;
    for (int i = 0; idx < 0 && i < sim.nbufs; i++)
        if (sim.qb_off[i] == (uint32_t)offset) idx = i;
    if (idx < 0 || length == 0 || offset < 0) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    if (length > MAP_CAP || sim.nmaps == MAXMAP) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    uint8_t *p = malloc(length);
    check(p != NULL, "out of memory in the simulator");
    memset(p, 0xA5, length);
    sim.maps[sim.nmaps].p = p;
    sim.maps[sim.nmaps].len = length;
    sim.maps[sim.nmaps].index = idx;
    sim.nmaps++;
    return p;
}

int __wrap_v4l2_munmap(void *start, size_t length)
{
    for (int i = 0; i < sim.nmaps; i++)
        if (sim.maps[i].p == start) {
            check(sim.maps[i].len == length, "munmap with another length than mapped");
            free(sim.maps[i].p);
            sim.maps[i] = sim.maps[--sim.nmaps];
            return 0;
        }
    check(false, "munmap of an address never mapped");
    return -1;
}

/* poll modes of the grab script: how the next timed poll answers */
static uint8_t poll_mode;
static int poll_errno;

int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    if (nfds != 1 || fds[0].fd != SIM_FD) return __real_poll(fds, nfds, timeout);
    check(sim.opened, "poll on a closed descriptor");
    int e = fault(K_POLL);
    if (e) return fail(e);
    if (timeout != 0) { /* the grab's wait */
        switch (poll_mode % 5) {
        case 1: fds[0].revents = 0; return 0;
        case 2: return fail(poll_errno);
        case 3: fds[0].revents = POLLERR; return 1;
        case 4: fds[0].revents = POLLIN; return 1;
        default: break;
        }
    }
    fds[0].revents = sim.nready > 0 ? POLLIN : 0;
    return sim.nready > 0;
}

static void answer_fract(struct v4l2_fract *f, const uint32_t v[2])
{
    f->numerator = v[0];
    f->denominator = v[1];
}

static int sim_ioctl(unsigned long request, void *arg)
{
    int e;
    switch (request) {
    case VIDIOC_QUERYCAP: {
        if ((e = fault(K_QUERYCAP))) return fail(e);
        struct v4l2_capability *c = arg;
        memset(c, 0, sizeof *c);
        memcpy(c->driver, sim.driver, sizeof c->driver);
        memcpy(c->card, sim.card, sizeof c->card);
        c->capabilities = sim.caps;
        c->device_caps = sim.device_caps;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *f = arg;
        if ((e = fault(K_ENUM_FMT))) return fail(e);
        if (!sim.endless && f->index >= (uint32_t)sim.nfmts) return fail(EINVAL);
        int i = sim.nfmts ? (int)(f->index % (uint32_t)sim.nfmts) : 0;
        f->pixelformat = sim.nfmts ? sim.fmts[i] : V4L2_PIX_FMT_GREY;
        f->flags = sim.nfmts ? sim.fmt_flags[i] : 0;
        memset(f->description, 'D', sizeof f->description); /* not terminated */
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        if ((e = fault(K_ENUM_SIZES))) return fail(e);
        if (!sim.endless && s->index >= (uint32_t)sim.nsizes) return fail(EINVAL);
        const uint32_t *wh = sim.sizes[sim.nsizes ? s->index % (uint32_t)sim.nsizes : 0];
        s->type = sim.size_type;
        if (s->type == V4L2_FRMSIZE_TYPE_DISCRETE) {
            s->discrete.width = wh[0];
            s->discrete.height = wh[1];
        } else {
            s->stepwise = (struct v4l2_frmsize_stepwise){1, wh[0], 1, 1, wh[1], 1};
        }
        return 0;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *iv = arg;
        if ((e = fault(K_ENUM_IVALS))) return fail(e);
        if (!sim.endless && iv->index >= (uint32_t)sim.nivals) return fail(EINVAL);
        const uint32_t *f = sim.ivals[sim.nivals ? iv->index % (uint32_t)sim.nivals : 0];
        iv->type = sim.ival_type;
        if (iv->type == V4L2_FRMIVAL_TYPE_DISCRETE) {
            answer_fract(&iv->discrete, f);
        } else {
            answer_fract(&iv->stepwise.min, f);
            answer_fract(&iv->stepwise.max, f);
            answer_fract(&iv->stepwise.step, f);
        }
        return 0;
    }
    case VIDIOC_S_FMT: {
        struct v4l2_format *f = arg;
        check(!sim.streaming, "S_FMT while streaming");
        if ((e = fault(K_S_FMT))) return fail(e);
        if (sim.sfmt_fourcc) f->fmt.pix.pixelformat = sim.sfmt_fourcc;
        if (sim.sfmt_w) f->fmt.pix.width = sim.sfmt_w;
        if (sim.sfmt_h) f->fmt.pix.height = sim.sfmt_h;
        uint32_t bpp = bpp_of(f->fmt.pix.pixelformat);
        f->fmt.pix.bytesperline =
            sim.bpl_mode == 0 ? f->fmt.pix.width * bpp + sim.pad : sim.bpl_raw;
        f->fmt.pix.sizeimage =
            sim.size_mode == 0 ? f->fmt.pix.bytesperline * f->fmt.pix.height : sim.sizeimage_raw;
        sim.w = f->fmt.pix.width;
        sim.h = f->fmt.pix.height;
        sim.fourcc = f->fmt.pix.pixelformat;
        sim.bpl = f->fmt.pix.bytesperline;
        sim.sizeimage = f->fmt.pix.sizeimage;
        sim.tpf = sim.gparm_tpf; /* the rate resets on S_FMT, as vivid's does */
        return 0;
    }
    case VIDIOC_G_PARM: {
        struct v4l2_streamparm *p = arg;
        if ((e = fault(K_G_PARM))) return fail(e);
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = sim.gparm_cap & 1 ? V4L2_CAP_TIMEPERFRAME : 0;
        p->parm.capture.timeperframe = sim.tpf;
        return 0;
    }
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        if ((e = fault(K_S_PARM))) return fail(e);
        if (sim.sparm_mode % 3 == 2) return fail(EINVAL);
        sim.tpf = sim.sparm_mode % 3 == 1 ? sim.sparm_tpf : p->parm.capture.timeperframe;
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe = sim.tpf;
        return 0;
    }
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *r = arg;
        check(r->memory == V4L2_MEMORY_MMAP && r->type == V4L2_BUF_TYPE_VIDEO_CAPTURE,
              "REQBUFS for another memory or buffer type");
        if ((e = fault(K_REQBUFS))) return fail(e);
        if (r->count > 0 && sim.reqbufs_mode) r->count = sim.reqbufs_count;
        sim.nbufs = r->count > MAXBUF ? MAXBUF : (int)r->count;
        sim.nq = sim.nready = 0;
        sim.last_query = -1;
        sim.lied = false;
        for (int i = 0; i < MAXBUF; i++) {
            sim.queued[i] = false;
            sim.qb_off[i] = UINT32_MAX;
        }
        return 0;
    }
    case VIDIOC_QUERYBUF: {
        struct v4l2_buffer *b = arg;
        if ((e = fault(K_QUERYBUF))) return fail(e);
        if (b->index >= (uint32_t)sim.nbufs) return fail(EINVAL);
        bool odd = sim.qb_odd == 0xFF || sim.qb_odd == b->index;
        uint32_t len = sim.sizeimage, off = b->index * 4096u;
        if (odd && sim.qb_len_mode % 3 == 1) len = sim.qb_len_raw;
        if (odd && sim.qb_len_mode % 3 == 2) len = sim.sizeimage - sim.qb_len_raw;
        if (odd && sim.qb_off_mode) off = sim.qb_off_raw;
        b->length = len;
        b->m.offset = off;
        sim.qb_off[b->index] = off;
        sim.last_query = (int)b->index;
        return 0;
    }
    case VIDIOC_QBUF: {
        struct v4l2_buffer *b = arg;
        if ((e = fault(K_QBUF))) return fail(e);
        if (b->index >= (uint32_t)sim.nbufs) return fail(EINVAL);
        bool busy = sim.queued[b->index];
        for (int i = 0; i < sim.nready; i++) busy |= sim.ready[i].index == b->index;
        if (busy) {
            check(sim.lied, "a buffer queued twice");
            return fail(EINVAL);
        }
        sim.queued[b->index] = true;
        sim.qorder[sim.nq++] = (int)b->index;
        return 0;
    }
    case VIDIOC_DQBUF: {
        struct v4l2_buffer *b = arg;
        if ((e = fault(K_DQBUF))) return fail(e);
        if (sim.nready == 0) return fail(EAGAIN);
        struct ready r = sim.ready[0];
        memmove(sim.ready, sim.ready + 1, (size_t)(sim.nready - 1) * sizeof sim.ready[0]);
        sim.nready--;
        b->index = r.index;
        b->bytesused = r.bytesused;
        b->flags = r.flags;
        b->sequence = r.sequence;
        b->length = sim.sizeimage;
        /* a complete frame gets its pixels now; the source must copy the newest */
        if (!(r.flags & V4L2_BUF_FLAG_ERROR) && r.bytesused >= frame_bytes() &&
            r.index < (uint32_t)sim.nbufs) {
            sim.serial++;
            fill_buffer(r.index, sim.serial);
            sim.expect = true;
            sim.expect_serial = sim.serial;
        }
        return 0;
    }
    case VIDIOC_STREAMON:
        if ((e = fault(K_STREAMON))) return fail(e);
        sim.streaming = true;
        return 0;
    case VIDIOC_STREAMOFF:
        if ((e = fault(K_STREAMOFF))) return fail(e);
        sim.streaming = false;
        sim.nq = sim.nready = 0;
        for (int i = 0; i < MAXBUF; i++) sim.queued[i] = false;
        return 0;
    default:
        return fail(ENOTTY);
    }
}

int __wrap_v4l2_ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    check(fd == SIM_FD && sim.opened, "ioctl on a closed descriptor");
    return sim_ioctl(request, arg);
}

/* ---- input -> device ---- */

static void read_device(void)
{
    if (u8() == 0) {
        sim.caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_DEVICE_CAPS;
        sim.device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        memcpy(sim.driver, "simcam", 6);
        memcpy(sim.card, "Fuzzed camera", 13);
    } else {
        sim.caps = u32();
        sim.device_caps = u32();
        for (size_t i = 0; i < sizeof sim.driver; i++) sim.driver[i] = u8();
        for (size_t i = 0; i < sizeof sim.card; i++) sim.card[i] = u8();
    }
    sim.nfmts = u8() % 9;
    for (int i = 0; i < sim.nfmts; i++) {
        sim.fmts[i] = read_fourcc(u8());
        sim.fmt_flags[i] = u8() & 1 ? V4L2_FMT_FLAG_EMULATED : 0;
    }
    sim.nsizes = u8() % 5;
    sim.size_type = u8();
    for (int i = 0; i < sim.nsizes; i++) {
        sim.sizes[i][0] = u16();
        sim.sizes[i][1] = u16();
    }
    sim.nivals = u8() % 5;
    sim.ival_type = u8();
    for (int i = 0; i < sim.nivals; i++) {
        sim.ivals[i][0] = u16();
        sim.ivals[i][1] = u16();
    }
    uint8_t sel = u8();
    sim.sfmt_fourcc = sel ? read_fourcc(sel - 1) : 0;
    sim.sfmt_w = u32();
    sim.sfmt_h = u32();
    sim.bpl_mode = u8();
    if (sim.bpl_mode == 0) sim.pad = u16();
    else sim.bpl_raw = u32();
    sim.size_mode = u8();
    if (sim.size_mode) sim.sizeimage_raw = u32();
    sim.gparm_cap = u8();
    sim.gparm_tpf.numerator = u32();
    sim.gparm_tpf.denominator = u32();
    sim.tpf = sim.gparm_tpf;
    sim.sparm_mode = u8();
    if (sim.sparm_mode % 3 == 1) {
        sim.sparm_tpf.numerator = u32();
        sim.sparm_tpf.denominator = u32();
    }
    sim.reqbufs_mode = u8();
    if (sim.reqbufs_mode) sim.reqbufs_count = u32();
    sim.qb_odd = u8();
    sim.qb_len_mode = u8();
    if (sim.qb_len_mode % 3 == 1) sim.qb_len_raw = u32();
    if (sim.qb_len_mode % 3 == 2) sim.qb_len_raw = (uint32_t)u8() + 1;
    sim.qb_off_mode = u8();
    if (sim.qb_off_mode) sim.qb_off_raw = u32();
    sim.nfaults = u8() % 5;
    for (int i = 0; i < sim.nfaults; i++) {
        sim.faults[i].kind = u8() % K_N;
        sim.faults[i].nth = u8();
        sim.faults[i].err = errnos[u8() % (sizeof errnos / sizeof errnos[0])];
    }
    sim.last_query = -1;
}

/* The camera produces this grab's frames into queued buffers (or, lying,
 * into any index it likes). */
static void read_grab_script(void)
{
    poll_mode = u8();
    poll_errno = errnos[(poll_mode / 5) % (sizeof errnos / sizeof errnos[0])];
    int nframes = u8() % 5;
    for (int i = 0; i < nframes; i++) {
        uint8_t im = u8(), bm = u8(), fl = u8(), sk = u8();
        struct ready r;
        if (im >= 0xF0) {
            r.index = u32();
            sim.lied = true;
        } else {
            if (sim.nq == 0 || !sim.streaming) continue;
            r.index = (uint32_t)sim.qorder[0];
            memmove(sim.qorder, sim.qorder + 1, (size_t)(sim.nq - 1) * sizeof sim.qorder[0]);
            sim.nq--;
            sim.queued[r.index] = false;
        }
        if (bm < 0xC0) r.bytesused = sim.sizeimage;
        else if (bm < 0xF0) r.bytesused = sim.sizeimage - ((uint32_t)u8() + 1);
        else r.bytesused = u32();
        r.flags = fl & 1 ? V4L2_BUF_FLAG_ERROR : 0;
        if (sk == 0xFF) sim.seq = u32();
        else sim.seq += sk;
        r.sequence = sim.seq++;
        if (sim.nready < 64) sim.ready[sim.nready++] = r;
    }
}

/* ---- checks ---- */

static void check_err(const char *err, const char *what)
{
    if (err[0] && strstr(err, DEVICE)) return;
    fprintf(stderr, "fuzz_v4l2: %s message does not name the device: \"%s\"\n", what, err);
    abort();
}

static void check_closed(void)
{
    check(!sim.opened, "descriptor left open");
    check(sim.nmaps == 0, "mapped buffers left after close");
}

static void check_frame(const ad_image *f, const ad_capture_options *o)
{
    check(f->px && f->w == (int)sim.w && f->h == (int)sim.h, "frame size is not the granted size");
    check(f->c == o->channels, "frame channels are not the configured channels");
    check(sim.expect, "a frame handed out though no complete frame was dequeued");
    uint32_t bpp = bpp_of(sim.fourcc);
    size_t bpl = sim.bpl ? sim.bpl : (size_t)sim.w * bpp;
    for (int y = 0; y < f->h; y++)
        for (int x = 0; x < f->w; x++) {
            size_t at = (size_t)y * bpl + (size_t)x * bpp;
            const uint8_t *px = f->px + ((size_t)y * f->w + x) * f->c;
            uint8_t p0 = pattern(at, sim.expect_serial);
            if (bpp == 1) {
                for (int c = 0; c < f->c; c++) check(px[c] == p0, "gray frame pixels differ");
            } else {
                uint8_t p1 = pattern(at + 1, sim.expect_serial);
                uint8_t p2 = pattern(at + 2, sim.expect_serial);
                if (f->c == 3)
                    check(px[0] == p0 && px[1] == p1 && px[2] == p2, "RGB frame pixels differ");
                else
                    check(px[0] == (uint8_t)((299u * p0 + 587u * p1 + 114u * p2 + 500u) / 1000u),
                          "gray-from-RGB frame pixels differ");
            }
        }
}

static void list_modes(void)
{
    ad_camera_mode *modes = NULL;
    size_t n = 0;
    char err[AD_ERRLEN] = "";
    if (ad_v4l2_list_modes(DEVICE, &modes, &n, err, sizeof err) < 0) {
        check_err(err, "list modes");
        check(modes == NULL, "modes returned with a failure");
    } else {
        for (size_t i = 0; i < n; i++) {
            check(memchr(modes[i].fourcc, 0, sizeof modes[i].fourcc) != NULL, "fourcc text");
            check(memchr(modes[i].description, 0, sizeof modes[i].description) != NULL,
                  "description text");
            check(modes[i].nfps >= 0 && modes[i].nfps <= 16, "fps count");
            for (int k = 1; k < modes[i].nfps; k++)
                check(modes[i].fps[k] <= modes[i].fps[k - 1], "rates not highest first");
        }
    }
    free(modes);
    check_closed();
}

/* FUZZ_V4L2_TRACE=1 prints what each open and grab returned (to see what a
 * seed or a crash input does). */
static int trace = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (trace < 0) {
        trace = getenv("FUZZ_V4L2_TRACE") != NULL;
        if (!trace) ad_log_set_level(AD_LOG_WARN); /* no line per "capturing RGB24" */
    }
    static const double fps_table[] = {30, 25, 15, 5, 60, 29.97, 0.1, 1000, 7.5, 999.9, 0.5, 120};
    in_p = data;
    in_n = size;
    in_i = 0;
    sim_free();

    ad_capture_options o;
    memset(&o, 0, sizeof o);
    uint8_t flags = u8();
    o.source = AD_SOURCE_V4L2;
    snprintf(o.device, sizeof o.device, "%s", DEVICE);
    o.channels = flags & 1 ? 3 : 1;
    o.pixel_format = (enum ad_pixfmt)(((flags >> 1) & 3) % 3);
    int w = u16(), h = u16();
    o.width = w < 16 ? 16 : w > 8192 ? 8192 : w;
    o.height = h < 16 ? 16 : h > 8192 ? 8192 : h;
    o.fps = fps_table[u8() % (sizeof fps_table / sizeof fps_table[0])];
    o.buffers = 2 + u8() % 31;
    o.timeout_ms = 1000;
    int sessions = 1 + u8() % 3, grabs = u8() % 8;
    sim.endless = (flags & 64) != 0;
    read_device();

    if (flags & 32) list_modes();

    ad_source *src = NULL;
    char err[AD_ERRLEN] = "", granted[256];
    check(ad_source_init_options(&src, &o, err, sizeof err) == 0, "valid options refused");
    ad_image frame = {0};
    bool have_seq = false;
    uint64_t last_seq = 0;
    for (int s = 0; s < sessions; s++) {
        if (s > 0 && !(flags & 8)) {
            ad_source_close(src);
            check_closed();
        }
        err[0] = '\0';
        int rc = ad_source_open(src, granted, sizeof granted, err, sizeof err);
        if (trace)
            fprintf(stderr, "open: %s: %s (S_FMT %ux%u bpl %u sizeimage %u)\n",
                    ad_capture_status_name(rc), rc ? err : granted, sim.w, sim.h, sim.bpl,
                    sim.sizeimage);
        if (rc != 0) {
            check(rc == AD_CAPTURE_ERROR || rc == AD_CAPTURE_NODEV, "open status");
            check_err(err, "open");
            check_closed();
            continue;
        }
        check(sim.opened && sim.streaming, "open succeeded without streaming");
        char size_text[32];
        snprintf(size_text, sizeof size_text, "%ux%u ", sim.w, sim.h);
        check(strncmp(granted, size_text, strlen(size_text)) == 0, "granted text lacks the size");
        ad_source_info info;
        ad_source_get_info(src, &info);
        check(info.open && info.width == (int)sim.w && info.height == (int)sim.h &&
                  info.channels == o.channels && info.buffers == sim.nbufs,
              "info is not what was granted");
        for (int g = 0; g < grabs; g++) {
            read_grab_script();
            sim.expect = false;
            uint64_t seq = 0, dropped = 0;
            err[0] = '\0';
            rc = ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err);
            if (trace)
                fprintf(stderr, "grab: %s seq %llu dropped %llu %s\n", ad_capture_status_name(rc),
                        (unsigned long long)seq, (unsigned long long)dropped, rc ? err : "");
            if (rc == AD_CAPTURE_OK) {
                check_frame(&frame, &o);
                check(!have_seq || seq > last_seq, "frame numbers went back");
                have_seq = true;
                last_seq = seq;
            } else {
                check(rc == AD_CAPTURE_NODEV || rc == AD_CAPTURE_AGAIN ||
                          rc == AD_CAPTURE_TIMEOUT || rc == AD_CAPTURE_ERROR,
                      "grab status");
                check_err(err, "grab");
            }
            if (!sim.lied && !sim.faulted && sim.streaming)
                check(sim.nq + sim.nready == sim.nbufs, "a buffer was lost to the driver");
        }
    }
    if (!(flags & 16)) {
        ad_source_close(src);
        check_closed();
    }
    ad_source_destroy(src);
    check_closed();
    ad_image_free(&frame);

    if (!(flags & 32)) list_modes();
    sim_free();
    return 0;
}

/* V4L2 camera source through libv4l2: capabilities, format, rate, mmap
 * streaming, newest-frame grab. Every call into the device goes through
 * v4l2_open/v4l2_ioctl/v4l2_mmap/v4l2_munmap/v4l2_close and poll, which is
 * what the unit tests wrap (-Wl,--wrap) to play a simulated camera. */
#include <errno.h>
#include <fcntl.h>
#include <libv4l2.h>
#include <linux/videodev2.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "anomalyd/capture.h"
#include "anomalyd/util.h"
#include "capture_internal.h"

#define MAX_FORMATS 128
#define MAX_SIZES 64

int ad_v4l2_xioctl(int fd, unsigned long request, void *arg)
{
    int r;
    do {
        r = v4l2_ioctl(fd, request, arg);
    } while (r == -1 && errno == EINTR);
    return r;
}

static void fourcc_text(uint32_t f, char out[8])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)((f >> (8 * i)) & 0x7f);
        out[i] = c >= 32 && c < 127 ? c : '?';
    }
    out[4] = '\0';
    if (f & (1u << 31)) strcpy(out + 4, "-BE");
}

/* The device vanished (unplugged, driver gone, fatal streaming error). */
static int device_gone(int e) { return e == ENODEV || e == EIO || e == ENXIO || e == ENOENT; }

/* ---- mode listing (also feeds "it offers: ..." messages) ---- */

static int enum_modes_fd(int fd, ad_camera_mode **modes_out, size_t *n_out)
{
    ad_camera_mode *modes = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t fi = 0; fi < MAX_FORMATS; fi++) {
        struct v4l2_fmtdesc fd_ = {.index = fi, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
        if (ad_v4l2_xioctl(fd, VIDIOC_ENUM_FMT, &fd_) < 0) {
            if (errno == EINVAL) break;
            free(modes);
            return -1;
        }
        ad_camera_mode base;
        memset(&base, 0, sizeof base);
        fourcc_text(fd_.pixelformat, base.fourcc);
        snprintf(base.description, sizeof base.description, "%.31s", (const char *)fd_.description);
        base.emulated = (fd_.flags & V4L2_FMT_FLAG_EMULATED) != 0;
        int nsizes = 0;
        for (uint32_t si = 0; si < MAX_SIZES; si++) {
            struct v4l2_frmsizeenum fs = {.index = si, .pixel_format = fd_.pixelformat};
            if (ad_v4l2_xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) < 0) break;
            ad_camera_mode m = base;
            if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
                m.width = (int)fs.discrete.width;
                m.height = (int)fs.discrete.height;
            } else {
                m.width = (int)fs.stepwise.max_width;
                m.height = (int)fs.stepwise.max_height;
                m.stepwise = true;
            }
            for (uint32_t ii = 0; ii < 64 && m.nfps < 16 && !m.stepwise; ii++) {
                struct v4l2_frmivalenum iv = {.index = ii, .pixel_format = fd_.pixelformat,
                                              .width = (uint32_t)m.width,
                                              .height = (uint32_t)m.height};
                if (ad_v4l2_xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &iv) < 0) break;
                if (iv.type != V4L2_FRMIVAL_TYPE_DISCRETE) {
                    if (iv.stepwise.min.numerator)
                        m.fps[m.nfps++] = (double)iv.stepwise.min.denominator /
                                          iv.stepwise.min.numerator;
                    break;
                }
                if (iv.discrete.numerator)
                    m.fps[m.nfps++] = (double)iv.discrete.denominator / iv.discrete.numerator;
            }
            /* highest rate first */
            for (int a = 1; a < m.nfps; a++)
                for (int b = a; b > 0 && m.fps[b] > m.fps[b - 1]; b--) {
                    double t = m.fps[b];
                    m.fps[b] = m.fps[b - 1];
                    m.fps[b - 1] = t;
                }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                modes = ad_xrealloc(modes, cap * sizeof *modes);
            }
            modes[n++] = m;
            nsizes++;
            if (fs.type != V4L2_FRMSIZE_TYPE_DISCRETE) break;
        }
        if (nsizes == 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                modes = ad_xrealloc(modes, cap * sizeof *modes);
            }
            modes[n++] = base;
        }
    }
    *modes_out = modes;
    *n_out = n;
    return 0;
}

int ad_v4l2_list_modes(const char *device, ad_camera_mode **modes, size_t *n,
                       char *err, size_t errlen)
{
    *modes = NULL;
    *n = 0;
    int fd = v4l2_open(device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ad_err(err, errlen, "cannot open camera %s: %s", device, strerror(errno));
    int rc = enum_modes_fd(fd, modes, n);
    if (rc < 0) ad_err(err, errlen, "cannot list the formats of camera %s: %s", device,
                       strerror(errno));
    v4l2_close(fd);
    return rc;
}

/* "YUYV 640x480 1280x720, MJPG 640x480" of the camera's own formats
 * (emulated ones, which libv4l2 adds, are left out). */
static void describe_offers(int fd, char *out, size_t outlen)
{
    ad_camera_mode *modes = NULL;
    size_t n = 0, used = 0;
    out[0] = '\0';
    if (enum_modes_fd(fd, &modes, &n) < 0 || n == 0) {
        snprintf(out, outlen, "(the camera lists no formats)");
        free(modes);
        return;
    }
    const char *last = "";
    for (size_t i = 0; i < n && used + 1 < outlen; i++) {
        if (modes[i].emulated) continue;
        int w;
        if (strcmp(last, modes[i].fourcc))
            w = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", modes[i].fourcc);
        else
            w = 0;
        if (w > 0) used += (size_t)w < outlen - used ? (size_t)w : outlen - used - 1;
        if (modes[i].width && used + 1 < outlen) {
            w = snprintf(out + used, outlen - used, " %dx%d%s", modes[i].width, modes[i].height,
                         modes[i].stepwise ? "(max)" : "");
            if (w > 0) used += (size_t)w < outlen - used ? (size_t)w : outlen - used - 1;
        }
        last = modes[i].fourcc;
    }
    free(modes);
}

/* ---- open: a chain of small steps, one error exit each ---- */

static int open_device(ad_source *src, char *err, size_t errlen)
{
    const char *dev = src->opt.device;
    src->v4l2.fd = v4l2_open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (src->v4l2.fd >= 0) return 0;
    int e = errno;
    if (e == EACCES || e == EPERM) {
        ad_err(err, errlen, "no permission to open camera %s (the service user needs the "
               "'video' group)", dev);
        return AD_CAPTURE_ERROR;
    }
    if (e == ENOENT || e == ENODEV || e == ENXIO)
        ad_err(err, errlen, "camera %s not found (unplugged, or wrong camera.device?)", dev);
    else if (e == EBUSY)
        ad_err(err, errlen, "camera %s is busy (another program is using it)", dev);
    else
        ad_err(err, errlen, "cannot open camera %s: %s", dev, strerror(e));
    return AD_CAPTURE_NODEV;
}

static int check_capabilities(ad_source *src, char *err, size_t errlen)
{
    const char *dev = src->opt.device;
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_QUERYCAP, &cap) < 0) {
        int e = errno;
        if (device_gone(e)) {
            ad_err(err, errlen, "camera %s disappeared while opening it: %s", dev, strerror(e));
            return AD_CAPTURE_NODEV;
        }
        ad_err(err, errlen, "%s is not a V4L2 video device (VIDIOC_QUERYCAP: %s)", dev,
               strerror(e));
        return AD_CAPTURE_ERROR;
    }
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    if (!(caps & V4L2_CAP_VIDEO_CAPTURE)) {
        if (caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE)
            ad_err(err, errlen, "camera %s (%.32s) only offers the multi-planar capture API, "
                   "which anomalyd does not support", dev, (const char *)cap.card);
        else
            ad_err(err, errlen, "%s (%.32s, driver %.16s) is not a video capture device; "
                   "is camera.device the right node?", dev, (const char *)cap.card,
                   (const char *)cap.driver);
        return AD_CAPTURE_ERROR;
    }
    if (!(caps & V4L2_CAP_STREAMING)) {
        ad_err(err, errlen, "camera %s does not support streaming I/O", dev);
        return AD_CAPTURE_ERROR;
    }
    return 0;
}

/* GREY when the camera offers it natively and gray frames are wanted, else
 * RGB24 (native or converted by libv4l2). */
static int choose_format(ad_source *src, uint32_t *fourcc, char *err, size_t errlen)
{
    bool native_grey = false, native_rgb = false;
    for (uint32_t i = 0; i < MAX_FORMATS; i++) {
        struct v4l2_fmtdesc fd_ = {.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
        if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_ENUM_FMT, &fd_) < 0) {
            if (errno == EINVAL) break;
            int e = errno;
            ad_err(err, errlen, "cannot list the formats of camera %s: %s", src->opt.device,
                   strerror(e));
            return device_gone(e) ? AD_CAPTURE_NODEV : AD_CAPTURE_ERROR;
        }
        if (fd_.flags & V4L2_FMT_FLAG_EMULATED) continue;
        if (fd_.pixelformat == V4L2_PIX_FMT_GREY) native_grey = true;
        if (fd_.pixelformat == V4L2_PIX_FMT_RGB24) native_rgb = true;
    }
    if (src->opt.channels == 1 && src->opt.pixel_format != AD_PIXFMT_RGB24 && native_grey) {
        *fourcc = V4L2_PIX_FMT_GREY;
    } else {
        if (src->opt.pixel_format == AD_PIXFMT_GREY)
            ad_log(AD_LOG_INFO, "camera %s has no native GREY format; capturing RGB24%s and "
                   "converting to gray", src->opt.device, native_rgb ? "" : " through libv4l2");
        *fourcc = V4L2_PIX_FMT_RGB24;
    }
    src->info.converted = *fourcc == V4L2_PIX_FMT_RGB24 && !native_rgb;
    return 0;
}

static int set_format(ad_source *src, uint32_t fourcc, char *err, size_t errlen)
{
    const char *dev = src->opt.device;
    char want[8], offers[384];
    fourcc_text(fourcc, want);
    struct v4l2_format fmt;
    memset(&fmt, 0, sizeof fmt);
    fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    fmt.fmt.pix.width = (uint32_t)src->opt.width;
    fmt.fmt.pix.height = (uint32_t)src->opt.height;
    fmt.fmt.pix.pixelformat = fourcc;
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_S_FMT, &fmt) < 0) {
        int e = errno;
        if (device_gone(e)) {
            ad_err(err, errlen, "camera %s disappeared while setting its format: %s", dev,
                   strerror(e));
            return AD_CAPTURE_NODEV;
        }
        if (e == EBUSY) {
            ad_err(err, errlen, "camera %s is busy (another program is streaming from it)", dev);
            return AD_CAPTURE_NODEV;
        }
        describe_offers(src->v4l2.fd, offers, sizeof offers);
        ad_err(err, errlen, "camera %s refused %dx%d %s (%s), it offers: %s", dev,
               src->opt.width, src->opt.height, want, strerror(e), offers);
        return AD_CAPTURE_ERROR;
    }
    if (fmt.fmt.pix.pixelformat != fourcc) {
        char got[8];
        fourcc_text(fmt.fmt.pix.pixelformat, got);
        describe_offers(src->v4l2.fd, offers, sizeof offers);
        ad_err(err, errlen, "camera %s refused %dx%d %s (it switched to %s), it offers: %s", dev,
               src->opt.width, src->opt.height, want, got, offers);
        return AD_CAPTURE_ERROR;
    }
    uint32_t bpp = fourcc == V4L2_PIX_FMT_GREY ? 1 : 3;
    uint32_t w = fmt.fmt.pix.width, h = fmt.fmt.pix.height;
    if (w < 1 || h < 1 || w > 16384 || h > 16384) {
        ad_err(err, errlen, "camera %s granted an impossible size %ux%u", dev, w, h);
        return AD_CAPTURE_ERROR;
    }
    uint32_t bpl = fmt.fmt.pix.bytesperline ? fmt.fmt.pix.bytesperline : w * bpp;
    if (bpl < w * bpp) {
        ad_err(err, errlen, "camera %s reports %u bytes per line for %u pixels of %s", dev, bpl,
               w, want);
        return AD_CAPTURE_ERROR;
    }
    /* bytes a complete frame must carry: the last row needs no padding. In
     * 64 bits: a hostile bytesperline must not wrap it into a small number
     * that a small buffer passes (rows are read at y * bytesperline). */
    uint64_t need = (uint64_t)bpl * (h - 1) + (uint64_t)w * bpp;
    if (need > UINT32_MAX) {
        ad_err(err, errlen, "camera %s reports %u bytes per line for %ux%u %s: a frame of "
               "%llu bytes is more than a buffer can hold", dev, bpl, w, h, want,
               (unsigned long long)need);
        return AD_CAPTURE_ERROR;
    }
    src->v4l2.fourcc = fourcc;
    src->v4l2.width = (int)w;
    src->v4l2.height = (int)h;
    src->v4l2.bytesperline = bpl;
    src->v4l2.sizeimage = (uint32_t)need;
    return 0;
}

/* VIDIOC_S_PARM again after every format change: vivid (and some UVC
 * cameras) fall back to a default rate otherwise. Not fatal if unsupported. */
static int set_rate(ad_source *src, char *err, size_t errlen)
{
    struct v4l2_streamparm parm;
    memset(&parm, 0, sizeof parm);
    parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    src->info.fps = 0;
    if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_G_PARM, &parm) < 0) {
        if (device_gone(errno)) {
            ad_err(err, errlen, "camera %s disappeared while setting its frame rate: %s",
                   src->opt.device, strerror(errno));
            return AD_CAPTURE_NODEV;
        }
        return 0;
    }
    if (parm.parm.capture.capability & V4L2_CAP_TIMEPERFRAME) {
        double fps = src->opt.fps;
        struct v4l2_fract tpf;
        if (fabs(fps - round(fps)) < 1e-9) {
            tpf.numerator = 1;
            tpf.denominator = (uint32_t)round(fps);
        } else {
            tpf.numerator = 1000;
            tpf.denominator = (uint32_t)round(fps * 1000);
        }
        memset(&parm, 0, sizeof parm);
        parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        parm.parm.capture.timeperframe = tpf;
        if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_S_PARM, &parm) < 0) {
            if (device_gone(errno)) {
                ad_err(err, errlen, "camera %s disappeared while setting its frame rate: %s",
                       src->opt.device, strerror(errno));
                return AD_CAPTURE_NODEV;
            }
            memset(&parm, 0, sizeof parm);
            parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
            if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_G_PARM, &parm) < 0) return 0;
        }
    }
    struct v4l2_fract g = parm.parm.capture.timeperframe;
    if (g.numerator && g.denominator) src->info.fps = (double)g.denominator / g.numerator;
    return 0;
}

static int request_buffers(ad_source *src, char *err, size_t errlen)
{
    const char *dev = src->opt.device;
    struct v4l2_requestbuffers req;
    memset(&req, 0, sizeof req);
    req.count = (uint32_t)src->opt.buffers;
    req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    req.memory = V4L2_MEMORY_MMAP;
    if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_REQBUFS, &req) < 0) {
        int e = errno;
        /* EINVAL can mean "no mmap streaming", but the camera claimed
         * streaming I/O and drivers also fail transiently: worth a retry. */
        ad_err(err, errlen, "camera %s refused %d memory-mapped buffers (%s)%s", dev,
               src->opt.buffers, strerror(e),
               e == EINVAL ? "; if this persists it does not support mmap streaming" : "");
        return AD_CAPTURE_NODEV;
    }
    if (req.count > 0 && req.count <= 64) { /* so close releases them on any failure */
        src->v4l2.bufs = ad_xcalloc(req.count, sizeof *src->v4l2.bufs);
        src->v4l2.nbufs = (int)req.count;
        for (int i = 0; i < src->v4l2.nbufs; i++) src->v4l2.bufs[i].start = MAP_FAILED;
    }
    if (req.count < 2) {
        ad_err(err, errlen, "camera %s granted only %u capture buffer(s); at least 2 are needed",
               dev, req.count);
        return AD_CAPTURE_NODEV;
    }
    if (req.count > 64) {
        ad_err(err, errlen, "camera %s granted an implausible %u buffers", dev, req.count);
        return AD_CAPTURE_ERROR;
    }
    return 0;
}

static int map_buffers(ad_source *src, char *err, size_t errlen)
{
    const char *dev = src->opt.device;
    for (int i = 0; i < src->v4l2.nbufs; i++) {
        struct v4l2_buffer b;
        memset(&b, 0, sizeof b);
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b.memory = V4L2_MEMORY_MMAP;
        b.index = (uint32_t)i;
        if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_QUERYBUF, &b) < 0) {
            int e = errno;
            ad_err(err, errlen, "camera %s: cannot query capture buffer %d: %s", dev, i,
                   strerror(e));
            return device_gone(e) ? AD_CAPTURE_NODEV : AD_CAPTURE_ERROR;
        }
        if (b.length < src->v4l2.sizeimage) {
            ad_err(err, errlen, "camera %s: capture buffer %d holds %u bytes, a %dx%d frame "
                   "needs %u", dev, i, b.length, src->v4l2.width, src->v4l2.height,
                   src->v4l2.sizeimage);
            return AD_CAPTURE_ERROR;
        }
        void *p = v4l2_mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, src->v4l2.fd,
                            b.m.offset);
        if (p == MAP_FAILED) {
            int e = errno;
            ad_err(err, errlen, "camera %s: cannot map capture buffer %d (%u bytes): %s", dev, i,
                   b.length, strerror(e));
            return device_gone(e) ? AD_CAPTURE_NODEV : AD_CAPTURE_ERROR;
        }
        src->v4l2.bufs[i].start = p;
        src->v4l2.bufs[i].length = b.length;
    }
    return 0;
}

static int queue_buffer(ad_source *src, int index)
{
    struct v4l2_buffer b;
    memset(&b, 0, sizeof b);
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    b.index = (uint32_t)index;
    return ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_QBUF, &b);
}

static int start_streaming(ad_source *src, char *err, size_t errlen)
{
    const char *dev = src->opt.device;
    for (int i = 0; i < src->v4l2.nbufs; i++) {
        if (queue_buffer(src, i) < 0) {
            ad_err(err, errlen, "camera %s refused capture buffer %d: %s", dev, i,
                   strerror(errno));
            return AD_CAPTURE_NODEV;
        }
    }
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (ad_v4l2_xioctl(src->v4l2.fd, VIDIOC_STREAMON, &type) < 0) {
        ad_err(err, errlen, "camera %s refused to start streaming: %s", dev, strerror(errno));
        return AD_CAPTURE_NODEV; /* transient on real cameras: the outer loop retries */
    }
    src->v4l2.streaming = true;
    return 0;
}

static void describe_granted(ad_source *src, char *granted, size_t len)
{
    if (!granted || !len) return;
    char fcc[8], fps[32];
    fourcc_text(src->v4l2.fourcc, fcc);
    if (src->info.fps > 0)
        snprintf(fps, sizeof fps, "%.2f fps", src->info.fps);
    else
        snprintf(fps, sizeof fps, "frame rate not settable");
    int n = snprintf(granted, len, "%dx%d %s %s, %d buffers", src->v4l2.width, src->v4l2.height,
                     fcc, fps, src->v4l2.nbufs);
    size_t used = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
    if (src->info.converted && used < len)
        used += (size_t)snprintf(granted + used, len - used, ", converted by libv4l2");
    if (used < len && (src->v4l2.width != src->opt.width || src->v4l2.height != src->opt.height))
        used += (size_t)snprintf(granted + used, len - used, " (asked %dx%d)", src->opt.width,
                                 src->opt.height);
    if (used < len && src->info.fps > 0 && fabs(src->info.fps - src->opt.fps) > 0.01)
        used += (size_t)snprintf(granted + used, len - used, " (asked %.2f fps)", src->opt.fps);
    if (used < len && src->opt.channels == 1 && src->v4l2.fourcc != V4L2_PIX_FMT_GREY)
        snprintf(granted + used, len - used, ", gray computed from RGB");
}

int ad_v4l2_open(ad_source *src, char *granted, size_t granted_len, char *err, size_t errlen)
{
    uint32_t fourcc = 0;
    int rc, controls_set = 0;
    if ((rc = open_device(src, err, errlen)) < 0) goto fail;
    if ((rc = check_capabilities(src, err, errlen)) < 0) goto fail;
    if ((rc = choose_format(src, &fourcc, err, errlen)) < 0) goto fail;
    if ((rc = set_format(src, fourcc, err, errlen)) < 0) goto fail;
    if ((rc = set_rate(src, err, errlen)) < 0) goto fail;
    if ((rc = ad_v4l2_apply_controls(src, &controls_set, err, errlen)) < 0) goto fail;
    if ((rc = request_buffers(src, err, errlen)) < 0) goto fail;
    if ((rc = map_buffers(src, err, errlen)) < 0) goto fail;
    if ((rc = start_streaming(src, err, errlen)) < 0) goto fail;
    src->v4l2.have_seq = false;
    src->info.width = src->v4l2.width;
    src->info.height = src->v4l2.height;
    src->info.channels = src->opt.channels;
    src->info.buffers = src->v4l2.nbufs;
    fourcc_text(src->v4l2.fourcc, src->info.fourcc);
    if (!src->info.converted) snprintf(src->info.native_fourcc, 8, "%s", src->info.fourcc);
    else src->info.native_fourcc[0] = '\0';
    describe_granted(src, granted, granted_len);
    size_t used = granted ? strlen(granted) : 0;
    if (src->opt.ncontrols > 0 && used + 1 < granted_len)
        snprintf(granted + used, granted_len - used, ", %d of %d controls as asked", controls_set,
                 src->opt.ncontrols);
    return 0;
fail:
    ad_v4l2_close(src);
    return rc;
}

/* ---- grab ---- */

/* Copies buffer bytes into frame with the wanted channel count. */
static void copy_frame(const ad_source *src, const uint8_t *data, ad_image *frame)
{
    int w = src->v4l2.width, h = src->v4l2.height, c = src->opt.channels;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = data + (size_t)y * src->v4l2.bytesperline;
        uint8_t *out = frame->px + (size_t)y * w * c;
        if (src->v4l2.fourcc == V4L2_PIX_FMT_GREY) {
            if (c == 1)
                memcpy(out, row, (size_t)w);
            else
                for (int x = 0; x < w; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
        } else {
            if (c == 3)
                memcpy(out, row, (size_t)w * 3);
            else
                ad_rgb_to_gray(out, row, (size_t)w);
        }
    }
}

static int report_gone(const ad_source *src, char *err, size_t errlen)
{
    int e = src->v4l2.gone_errno;
    if (device_gone(e) || e == EPIPE)
        ad_err(err, errlen, "camera %s stopped delivering frames (%s); it was unplugged or its "
               "driver failed", src->opt.device, strerror(e));
    else
        ad_err(err, errlen, "camera %s failed a buffer exchange (%s); it needs reopening",
               src->opt.device, strerror(e));
    return AD_CAPTURE_NODEV;
}

int ad_v4l2_grab(ad_source *src, ad_image *frame, uint64_t *seq, uint64_t *dropped,
                 char *err, size_t errlen)
{
    ad_v4l2_state *v = &src->v4l2;
    const char *dev = src->opt.device;
    if (v->gone_errno) return report_gone(src, err, errlen);
    struct pollfd pfd = {.fd = v->fd, .events = POLLIN};
    int r = poll(&pfd, 1, src->opt.timeout_ms);
    if (r < 0) {
        if (errno == EINTR) {
            ad_err(err, errlen, "waiting for camera %s was interrupted", dev);
            return AD_CAPTURE_AGAIN;
        }
        ad_err(err, errlen, "cannot wait for camera %s: %s", dev, strerror(errno));
        return AD_CAPTURE_NODEV;
    }
    if (r == 0) {
        ad_err(err, errlen, "no frame from camera %s within %d ms", dev, src->opt.timeout_ms);
        return AD_CAPTURE_TIMEOUT;
    }

    /* Drain every ready buffer; keep the newest good one, requeue the rest. */
    int held = -1, bad = 0;
    uint32_t bad_flags = 0, bad_bytes = 0;
    uint64_t held_seq = 0;
    for (int iter = 0; iter < 4 * v->nbufs + 4; iter++) {
        /* Ask poll, not DQBUF, whether another buffer is ready: libv4l2
         * prints an error line for every DQBUF that ends in EAGAIN. */
        if (iter > 0) {
            struct pollfd more = {.fd = v->fd, .events = POLLIN};
            if (poll(&more, 1, 0) <= 0 || !(more.revents & (POLLIN | POLLERR | POLLHUP))) break;
        }
        struct v4l2_buffer b;
        memset(&b, 0, sizeof b);
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b.memory = V4L2_MEMORY_MMAP;
        if (ad_v4l2_xioctl(v->fd, VIDIOC_DQBUF, &b) < 0) {
            int e = errno;
            if (e == EAGAIN) break;
            v->gone_errno = e;
            if (held >= 0) break; /* hand on the good frame first; the next grab reports */
            return report_gone(src, err, errlen);
        }
        if ((int)b.index < 0 || (int)b.index >= v->nbufs) {
            if (held >= 0) queue_buffer(src, held);
            ad_err(err, errlen, "camera %s returned buffer %u of %d", dev, b.index, v->nbufs);
            return AD_CAPTURE_NODEV;
        }
        /* Gaps in the driver's sequence are frames the camera lost. */
        if (v->have_seq) {
            uint32_t gap = b.sequence - v->last_seq - 1;
            if (gap > 0 && gap < (1u << 24)) {
                *dropped += gap;
                src->seq += gap;
            }
        }
        v->have_seq = true;
        v->last_seq = b.sequence;
        uint64_t this_seq = src->seq++;
        if ((b.flags & V4L2_BUF_FLAG_ERROR) || b.bytesused < v->sizeimage) {
            bad++;
            bad_flags = b.flags;
            bad_bytes = b.bytesused;
            src->info.bad_buffers++;
            if (queue_buffer(src, (int)b.index) < 0) {
                if (held >= 0) queue_buffer(src, held);
                ad_err(err, errlen, "camera %s refused a buffer back: %s", dev, strerror(errno));
                return AD_CAPTURE_NODEV;
            }
            continue;
        }
        if (held >= 0) {
            (*dropped)++;
            if (queue_buffer(src, held) < 0) {
                queue_buffer(src, (int)b.index);
                ad_err(err, errlen, "camera %s refused a buffer back: %s", dev, strerror(errno));
                return AD_CAPTURE_NODEV;
            }
        }
        held = (int)b.index;
        held_seq = this_seq;
    }
    if (held < 0) {
        if (bad && (bad_flags & V4L2_BUF_FLAG_ERROR))
            ad_err(err, errlen, "camera %s delivered a corrupt frame (V4L2_BUF_FLAG_ERROR); "
                   "skipped", dev);
        else if (bad)
            ad_err(err, errlen, "camera %s delivered a short frame (%u of %u bytes); skipped",
                   dev, bad_bytes, v->sizeimage);
        else
            ad_err(err, errlen, "camera %s woke up without a frame", dev);
        return AD_CAPTURE_AGAIN;
    }
    if (!frame->px || frame->w != v->width || frame->h != v->height ||
        frame->c != src->opt.channels) {
        ad_image_free(frame);
        if (ad_image_alloc(frame, v->width, v->height, src->opt.channels) < 0) {
            queue_buffer(src, held);
            ad_err(err, errlen, "cannot allocate a %dx%d frame", v->width, v->height);
            return AD_CAPTURE_ERROR;
        }
    }
    copy_frame(src, v->bufs[held].start, frame);
    *seq = held_seq;
    if (queue_buffer(src, held) < 0 && !v->gone_errno) {
        /* The frame is good; without this buffer the driver would slowly
         * starve, so the next grab asks for a reopen. */
        v->gone_errno = errno;
    }
    return AD_CAPTURE_OK;
}

void ad_v4l2_close(ad_source *src)
{
    ad_v4l2_state *v = &src->v4l2;
    if (v->fd >= 0 && v->streaming) {
        int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        ad_v4l2_xioctl(v->fd, VIDIOC_STREAMOFF, &type);
    }
    v->streaming = false;
    for (int i = 0; i < v->nbufs; i++)
        if (v->bufs[i].start != MAP_FAILED && v->bufs[i].start)
            v4l2_munmap(v->bufs[i].start, v->bufs[i].length);
    free(v->bufs);
    v->bufs = NULL;
    if (v->fd >= 0 && v->nbufs > 0) {
        struct v4l2_requestbuffers req;
        memset(&req, 0, sizeof req);
        req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = V4L2_MEMORY_MMAP;
        ad_v4l2_xioctl(v->fd, VIDIOC_REQBUFS, &req); /* count 0 frees the driver's buffers */
    }
    v->nbufs = 0;
    if (v->fd >= 0) v4l2_close(v->fd);
    v->fd = -1;
    v->have_seq = false;
    v->gone_errno = 0;
}

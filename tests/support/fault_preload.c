/* LD_PRELOAD fault injector for the daemon fault tests: while a control
 * file exists, creating or writing files under given path prefixes fails
 * with an errno, the way a full or read-only disk fails. Removing the control
 * file "frees the disk" again, so a test can fault a running daemon and
 * watch it recover.
 *
 *   AD_FAULT_PREFIX   one or more absolute path prefixes, ':'-separated
 *                     (".../images/" for the image folder, ".../r.db" for
 *                     the database: r.db, r.db-wal, r.db-shm, r.db-journal)
 *   AD_FAULT_CONTROL  the control file; absent = no fault. Its content may
 *                     name the errno ("ENOSPC", "EROFS", "EIO" or a number),
 *                     so a test switches the fault without restarting
 *   AD_FAULT_ERRNO    errno when the control file is empty (default ENOSPC)
 *   AD_FAULT_READS    "1": read/pread/pread64/readv of descriptors under a
 *                     prefix fail too (a disk that fails with EIO; off by
 *                     default: a full or read-only disk still reads)
 *   AD_FAULT_FSYNC    "1": fsync/fdatasync fail too (off by default: an
 *                     fsync that fails after every write succeeded leaves a
 *                     WAL commit SQLite may still recover, which is a
 *                     different fault from a full disk)
 *
 * What fails, for paths (or descriptors whose /proc/self/fd link) under a
 * prefix:
 *   open/open64/openat/openat64/creat/__open_2: with ENOSPC, creating a file
 *     that does not exist; with any other errno, every open for writing.
 *   mkstemp/mkostemp: the template's folder is under a prefix.
 *   write/pwrite/pwrite64/writev/pwritev: always.
 *   ftruncate/ftruncate64: with ENOSPC only when it grows the file.
 *   fallocate/posix_fallocate: always.
 *   rename: either side under a prefix.  mkdir: a folder that does not exist.
 *   unlink: only with EROFS (deleting frees space on a full disk).
 * Reads (unless AD_FAULT_READS=1), stat, close and everything outside the
 * prefixes pass through. The
 * real functions come from dlsym(RTLD_NEXT), so under ASan the sanitizer's
 * interceptors still run (the child needs ASAN_OPTIONS
 * verify_asan_link_order=0 since this library is loaded before libasan). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*creat_fn)(const char *, mode_t);
typedef int (*mkstemp_fn)(char *);
typedef int (*mkostemp_fn)(char *, int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*fd_fn)(int);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*fallocate_fn)(int, int, off_t, off_t);
typedef int (*pfallocate_fn)(int, off_t, off_t);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*mkdir_fn)(const char *, mode_t);
typedef int (*unlink_fn)(const char *);

static void *real(const char *name, void **cache)
{
    void *p = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (!p) {
        p = dlsym(RTLD_NEXT, name);
        if (!p) abort(); /* no next definition: nothing sensible to fall back to */
        __atomic_store_n(cache, p, __ATOMIC_RELEASE);
    }
    return p;
}

#define REAL(type, name)                                                                          \
    static void *cache_##name;                                                                    \
    type real_##name = (type)real(#name, &cache_##name)

/* ---- configuration ---- */

static int parse_errno(const char *s, int dflt)
{
    while (*s == ' ' || *s == '\n') s++;
    if (!*s) return dflt;
    if (!strncmp(s, "ENOSPC", 6)) return ENOSPC;
    if (!strncmp(s, "EROFS", 5)) return EROFS;
    if (!strncmp(s, "EIO", 3)) return EIO;
    if (!strncmp(s, "EDQUOT", 6)) return EDQUOT;
    int v = atoi(s);
    return v > 0 ? v : dflt;
}

/* The errno to fail with right now, 0 when no fault is active. */
static int fault_errno(void)
{
    const char *control = getenv("AD_FAULT_CONTROL");
    if (!control || !*control || !getenv("AD_FAULT_PREFIX")) return 0;
    static void *cache_open;
    open_fn ro = (open_fn)real("open", &cache_open);
    int fd = ro(control, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    static void *cache_read;
    read_fn rr = (read_fn)real("read", &cache_read); /* not our own read() */
    char buf[32];
    ssize_t n = rr(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    const char *d = getenv("AD_FAULT_ERRNO");
    return parse_errno(buf, d ? parse_errno(d, ENOSPC) : ENOSPC);
}

static bool path_matches(const char *path)
{
    const char *list = getenv("AD_FAULT_PREFIX");
    if (!path || !list) return false;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0 && strncmp(path, p, n) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

/* Path of an open descriptor (or of dirfd/name for the *at calls). */
static bool fd_path(int fd, char *out, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    if (n <= 0) return false;
    out[n] = 0;
    return true;
}

static bool fd_matches(int fd)
{
    char path[4096];
    return fd_path(fd, path, sizeof path) && path_matches(path);
}

static bool at_matches(int dirfd, const char *name)
{
    if (!name) return false;
    if (name[0] == '/' || dirfd == AT_FDCWD) {
        if (name[0] == '/') return path_matches(name);
        char cwd[4096], full[8192];
        if (!getcwd(cwd, sizeof cwd)) return false;
        snprintf(full, sizeof full, "%s/%s", cwd, name);
        return path_matches(full);
    }
    char dir[4096], full[8192];
    if (!fd_path(dirfd, dir, sizeof dir)) return false;
    snprintf(full, sizeof full, "%s/%s", dir, name);
    return path_matches(full);
}

static bool exists_at(int dirfd, const char *name)
{
    struct stat sb;
    return fstatat(dirfd, name, &sb, 0) == 0;
}

/* Should an open with these flags fail? Returns the errno or 0. */
static int open_fault(int dirfd, const char *path, int flags)
{
    bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
    if (!writes) return 0;
    int e = fault_errno();
    if (!e || !at_matches(dirfd, path)) return 0;
    if (e == ENOSPC || e == EDQUOT) /* a full disk still opens files that exist */
        return (flags & O_CREAT) && !exists_at(dirfd, path) ? e : 0;
    return e;
}

static int fd_fault(int fd)
{
    int e = fault_errno();
    return e && fd_matches(fd) ? e : 0;
}

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

/* ---- creating files ---- */

EXPORT int open(const char *path, int flags, ...)
{
    REAL(open_fn, open);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    int e = open_fault(AT_FDCWD, path, flags);
    if (e) return errno = e, -1;
    return real_open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    REAL(open_fn, open64);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    int e = open_fault(AT_FDCWD, path, flags);
    if (e) return errno = e, -1;
    return real_open64(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(openat_fn, openat);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    int e = open_fault(dirfd, path, flags);
    if (e) return errno = e, -1;
    return real_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    REAL(openat_fn, openat64);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    int e = open_fault(dirfd, path, flags);
    if (e) return errno = e, -1;
    return real_openat64(dirfd, path, flags, mode);
}

/* _FORTIFY_SOURCE builds call these for open without a constant mode. */
EXPORT int __open_2(const char *path, int flags)
{
    REAL(open2_fn, __open_2);
    int e = open_fault(AT_FDCWD, path, flags);
    if (e) return errno = e, -1;
    return real___open_2(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
    REAL(open2_fn, __open64_2);
    int e = open_fault(AT_FDCWD, path, flags);
    if (e) return errno = e, -1;
    return real___open64_2(path, flags);
}

EXPORT int creat(const char *path, mode_t mode)
{
    REAL(creat_fn, creat);
    int e = open_fault(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC);
    if (e) return errno = e, -1;
    return real_creat(path, mode);
}

/* glibc's mkstemp opens through an internal call no preload sees, so the
 * template is checked here. */
static int template_fault(const char *tmpl)
{
    int e = fault_errno();
    return e && path_matches(tmpl) ? e : 0;
}

EXPORT int mkstemp(char *tmpl)
{
    REAL(mkstemp_fn, mkstemp);
    int e = template_fault(tmpl);
    if (e) return errno = e, -1;
    return real_mkstemp(tmpl);
}

EXPORT int mkostemp(char *tmpl, int flags)
{
    REAL(mkostemp_fn, mkostemp);
    int e = template_fault(tmpl);
    if (e) return errno = e, -1;
    return real_mkostemp(tmpl, flags);
}

/* ---- writing ---- */

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write_fn, write);
    int e = fd > 2 ? fd_fault(fd) : 0; /* stdio (the daemon's log) never faults */
    if (e) return errno = e, -1;
    return real_write(fd, buf, n);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite_fn, pwrite);
    int e = fd_fault(fd);
    if (e) return errno = e, -1;
    return real_pwrite(fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite_fn, pwrite64);
    int e = fd_fault(fd);
    if (e) return errno = e, -1;
    return real_pwrite64(fd, buf, n, off);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev_fn, writev);
    int e = fd > 2 ? fd_fault(fd) : 0;
    if (e) return errno = e, -1;
    return real_writev(fd, iov, cnt);
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev_fn, pwritev);
    int e = fd_fault(fd);
    if (e) return errno = e, -1;
    return real_pwritev(fd, iov, cnt, off);
}

/* ---- reading (AD_FAULT_READS=1 only) ---- */

static int read_fault(int fd)
{
    const char *s = getenv("AD_FAULT_READS");
    return fd > 2 && s && !strcmp(s, "1") ? fd_fault(fd) : 0;
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    REAL(read_fn, read);
    int e = read_fault(fd);
    if (e) return errno = e, -1;
    return real_read(fd, buf, n);
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    REAL(pread_fn, pread);
    int e = read_fault(fd);
    if (e) return errno = e, -1;
    return real_pread(fd, buf, n, off);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    REAL(pread_fn, pread64);
    int e = read_fault(fd);
    if (e) return errno = e, -1;
    return real_pread64(fd, buf, n, off);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    REAL(readv_fn, readv);
    int e = read_fault(fd);
    if (e) return errno = e, -1;
    return real_readv(fd, iov, cnt);
}

static int sync_fault(int fd)
{
    const char *s = getenv("AD_FAULT_FSYNC");
    return s && !strcmp(s, "1") ? fd_fault(fd) : 0;
}

EXPORT int fsync(int fd)
{
    REAL(fd_fn, fsync);
    int e = sync_fault(fd);
    if (e) return errno = e, -1;
    return real_fsync(fd);
}

EXPORT int fdatasync(int fd)
{
    REAL(fd_fn, fdatasync);
    int e = sync_fault(fd);
    if (e) return errno = e, -1;
    return real_fdatasync(fd);
}

static int truncate_fault(int fd, off_t len)
{
    int e = fd_fault(fd);
    if (!e) return 0;
    struct stat sb;
    if ((e == ENOSPC || e == EDQUOT) && fstat(fd, &sb) == 0 && len <= sb.st_size) return 0;
    return e;
}

EXPORT int ftruncate(int fd, off_t len)
{
    REAL(ftruncate_fn, ftruncate);
    int e = truncate_fault(fd, len);
    if (e) return errno = e, -1;
    return real_ftruncate(fd, len);
}

EXPORT int ftruncate64(int fd, off_t len)
{
    REAL(ftruncate_fn, ftruncate64);
    int e = truncate_fault(fd, len);
    if (e) return errno = e, -1;
    return real_ftruncate64(fd, len);
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate_fn, fallocate);
    int e = fd_fault(fd);
    if (e) return errno = e, -1;
    return real_fallocate(fd, mode, off, len);
}

EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
    REAL(pfallocate_fn, posix_fallocate);
    int e = fd_fault(fd);
    if (e) return e; /* returns the error, errno untouched */
    return real_posix_fallocate(fd, off, len);
}

/* ---- names ---- */

EXPORT int rename(const char *from, const char *to)
{
    REAL(rename_fn, rename);
    int e = fault_errno();
    if (e && (path_matches(from) || path_matches(to))) return errno = e, -1;
    return real_rename(from, to);
}

EXPORT int mkdir(const char *path, mode_t mode)
{
    REAL(mkdir_fn, mkdir);
    int e = fault_errno();
    if (e && path_matches(path) && !exists_at(AT_FDCWD, path)) return errno = e, -1;
    return real_mkdir(path, mode);
}

EXPORT int unlink(const char *path)
{
    REAL(unlink_fn, unlink);
    int e = fault_errno();
    if (e == EROFS && path_matches(path)) return errno = e, -1;
    return real_unlink(path);
}

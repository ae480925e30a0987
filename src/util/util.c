/* Shared helpers: errors, allocation, logging, files, RNG, time, hashing. */
#include "anomalyd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ad_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void ad_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("anomalyd: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *ad_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) ad_die("out of memory allocating %zu bytes", n);
    return p;
}

void *ad_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ad_die("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *ad_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) ad_die("out of memory reallocating %zu bytes", n);
    return q;
}

char *ad_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ad_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void *ad_xalloc_aligned(size_t n)
{
    size_t rounded = (n + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) ad_die("out of memory allocating %zu aligned bytes", n);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

/* ---- memory budget ---- */

/* memory.max of this process's cgroup (v2), or SIZE_MAX when unlimited or
 * unknown. */
static size_t cgroup_memory_max(void)
{
    FILE *fp = fopen("/proc/self/cgroup", "r");
    if (!fp) return SIZE_MAX;
    char line[1024], rel[1024] = "";
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "0::", 3) == 0) {
            snprintf(rel, sizeof rel, "%s", line + 3);
            rel[strcspn(rel, "\n")] = 0;
            break;
        }
    }
    fclose(fp);
    if (!rel[0]) return SIZE_MAX;
    char path[1200];
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", strcmp(rel, "/") ? rel : "");
    fp = fopen(path, "r");
    if (!fp) return SIZE_MAX;
    unsigned long long v = 0;
    int ok = fscanf(fp, "%llu", &v) == 1; /* "max" reads as no number */
    fclose(fp);
    return ok && v > 0 && v < SIZE_MAX ? (size_t)v : SIZE_MAX;
}

size_t ad_memory_limit(char *what, size_t whatlen)
{
    size_t limit = SIZE_MAX;
    const char *why = "no limit known";
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) {
        limit = (size_t)pages * (size_t)page;
        why = "physical memory";
    }
    /* What the kernel can hand out now without swapping: a buffer bigger
     * than that would push the line PC into swap or the OOM killer. */
    FILE *mi = fopen("/proc/meminfo", "r");
    if (mi) {
        char line[128];
        unsigned long long kb;
        while (fgets(line, sizeof line, mi)) {
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                if (kb * 1024 < limit) {
                    limit = (size_t)(kb * 1024);
                    why = "memory available now, MemAvailable in /proc/meminfo";
                }
                break;
            }
        }
        fclose(mi);
    }
    size_t cg = cgroup_memory_max();
    if (cg < limit) {
        limit = cg;
        why = "the cgroup memory limit (memory.max, systemd MemoryMax=)";
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t mapped = 0;
        FILE *fp = fopen("/proc/self/statm", "r");
        unsigned long vm_pages = 0;
        if (fp) {
            if (fscanf(fp, "%lu", &vm_pages) == 1 && page > 0) mapped = (size_t)vm_pages * page;
            fclose(fp);
        }
        size_t left = rl.rlim_cur > mapped ? (size_t)(rl.rlim_cur - mapped) : 0;
        if (left < limit) {
            limit = left;
            why = "the address-space limit (RLIMIT_AS, ulimit -v, systemd LimitAS=) less what is "
                  "already mapped";
        }
    }
    if (what && whatlen) snprintf(what, whatlen, "%s", why);
    return limit;
}

int ad_memory_check(size_t bytes, const char *purpose, char *err, size_t errlen)
{
    char what[160];
    size_t limit = ad_memory_limit(what, sizeof what);
    if (bytes <= limit) return 0;
    return ad_err(err, errlen, "%s would need %zu MiB of memory, more than the %zu MiB this "
                  "process can have (%s)", purpose, bytes >> 20, limit >> 20, what);
}

/* ---- logging ---- */

static enum ad_log_level log_max = AD_LOG_INFO;

void ad_log_set_level(enum ad_log_level max_level) { log_max = max_level; }

void ad_log(enum ad_log_level level, const char *fmt, ...)
{
    if (level > log_max) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (isatty(STDERR_FILENO)) {
        const char *word = level <= AD_LOG_ERR    ? "error"
                           : level == AD_LOG_WARN ? "warning"
                           : level == AD_LOG_INFO ? "info"
                                                  : "debug";
        fprintf(stderr, "%s: %s\n", word, msg);
    } else {
        fprintf(stderr, "<%d>%s\n", (int)level, msg);
    }
}

/* ---- files ---- */

int ad_fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ad_err(err, errlen, "%s: cannot open the folder to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd), e = errno;
    close(fd);
    /* EINVAL: a filesystem that cannot sync a folder (nothing to make durable) */
    if (rc != 0 && e != EINVAL) return ad_err(err, errlen, "%s: cannot sync the folder: %s", dir, strerror(e));
    return 0;
}

int ad_fsync_parent(const char *path, char *err, size_t errlen)
{
    char *copy = ad_xstrdup(path);
    int rc = ad_fsync_dir(dirname(copy), err, errlen);
    free(copy);
    return rc;
}

int ad_write_file_durable(const char *path, const void *data, size_t len,
                          char *err, size_t errlen)
{
    return ad_write_file_durable_like(path, data, len, NULL, err, errlen);
}

int ad_write_file_durable_like(const char *path, const void *data, size_t len,
                               const struct stat *like, char *err, size_t errlen)
{
    /* Not mkstemp: its 0600 would need a chmod that ignores the umask (the
     * unit's UMask=0027 must make reject images 0640). A name of our own,
     * created exclusively with 0644 less the umask. */
    static atomic_uint seq;
    size_t tlen = strlen(path) + 48;
    char *tmp = ad_xmalloc(tlen);
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, tlen, "%s.tmp%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1u));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return ad_err(err, errlen, "%s: cannot create a temporary file beside it: %s",
                      path, strerror(e));
    }
    const char *step = "write failed";
    int e = 0;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            e = n < 0 ? errno : ENOSPC;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (!e && like) {
        step = "cannot give it the mode and owner of the file it replaces";
        if (fchmod(fd, like->st_mode & 07777) != 0) e = errno;
        if (!e && (like->st_uid != geteuid() || like->st_gid != getegid()) &&
            fchown(fd, like->st_uid, like->st_gid) != 0 && errno != EPERM)
            e = errno;
    }
    if (!e && fsync(fd) != 0) {
        e = errno;
        step = "fsync failed";
    }
    if (close(fd) != 0 && !e) {
        e = errno;
        step = "write failed";
    }
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        step = "cannot replace the file";
    }
    if (e) {
        unlink(tmp);
        free(tmp);
        return ad_err(err, errlen, "%s: %s: %s", path, step, strerror(e));
    }
    free(tmp);
    char why[AD_ERRLEN];
    if (ad_fsync_parent(path, why, sizeof why) != 0)
        return ad_err(err, errlen, "%s: written, but it may not survive a power cut: %s", path, why);
    return 0;
}

int ad_read_file(const char *path, size_t max_len, uint8_t **data, size_t *len,
                 char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ad_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ad_err(err, errlen, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return ad_err(err, errlen, "%s: is a directory, expected a file", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ad_err(err, errlen, "%s: is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max_len) {
        close(fd);
        return ad_err(err, errlen, "%s: file is %lld bytes, more than the %zu allowed",
                      path, (long long)sb.st_size, max_len);
    }
    size_t cap = (size_t)sb.st_size;
    uint8_t *buf = ad_xmalloc(cap + 1);
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return ad_err(err, errlen, "%s: read failed: %s", path, strerror(e));
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

int ad_mkdirs(const char *path, unsigned mode, char *err, size_t errlen)
{
    char *buf = ad_xstrdup(path);
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char saved = buf[i];
            buf[i] = 0;
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
                int e = errno;
                ad_err(err, errlen, "%s: cannot create folder: %s", buf, strerror(e));
                free(buf);
                return -1;
            }
            buf[i] = saved;
        }
    }
    free(buf);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ad_err(err, errlen, "%s: exists but is not a folder", path);
    return 0;
}

/* ---- RNG: xoshiro256** seeded with splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ad_rng_seed(ad_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
    rng->has_spare = 0;
    rng->spare = 0.0f;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ad_rng_u64(ad_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float ad_rng_uniform(ad_rng *rng)
{
    return (float)(ad_rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

uint32_t ad_rng_below(ad_rng *rng, uint32_t n)
{
    if (n == 0) return 0;
    return (uint32_t)(((ad_rng_u64(rng) >> 32) * (uint64_t)n) >> 32);
}

float ad_rng_normal(ad_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    double u1 = ((double)(ad_rng_u64(rng) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(ad_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
    double r = sqrt(-2.0 * log(u1));
    rng->spare = (float)(r * sin(2.0 * M_PI * u2));
    rng->has_spare = 1;
    return (float)(r * cos(2.0 * M_PI * u2));
}

uint64_t ad_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- time ---- */

double ad_now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int ad_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

void ad_utc_format(int64_t sec, int msec, char out[32])
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03d", msec % 1000);
}

void ad_utc_timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ad_utc_format(ts.tv_sec, (int)(ts.tv_nsec / 1000000L), out);
}

int ad_utc_parse(const char *text, int64_t *sec)
{
    struct tm tm = {0};
    int used = 0, y, mo, d, h = 0, mi = 0, s = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) return -1;
    const char *p = text + used;
    if (*p == ' ' || *p == 'T') {
        int n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5) return -1;
        p += 1 + n;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &s, &n) != 1 || n != 2) return -1;
            p += 3;
            if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++) {
                }
        }
    }
    if (*p == 'Z') p++;
    if (*p) return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    /* timegm normalizes 2026-02-30 to March: such a date does not exist */
    if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d || tm.tm_hour != h ||
        tm.tm_min != mi || tm.tm_sec != s)
        return -1;
    *sec = (int64_t)t;
    return 0;
}

void ad_reexec_with_passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): run on with the default policy */
}

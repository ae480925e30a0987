/* Shared helpers: error buffers, logging, durable writes, seeded RNG, time.
 *
 * Error convention for the whole library: functions return 0 on success and a
 * negative value on failure, and fill the caller's `char *err, size_t errlen`
 * with one sentence a user can act on ("line3.yaml:14:9: threshold must be
 * ..."). Out-of-memory and broken invariants abort (ad_xmalloc, AD_ASSERT). */
#ifndef ANOMALYD_UTIL_H
#define ANOMALYD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define AD_ERRLEN 512

/* Writes a formatted message into err (if err is non-NULL). Always returns -1
 * so callers can write `return ad_err(err, errlen, "...")`. */
int ad_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocation that aborts with a message on failure; never returns NULL. */
void *ad_xmalloc(size_t n);
void *ad_xcalloc(size_t count, size_t size);
void *ad_xrealloc(void *p, size_t n);
char *ad_xstrdup(const char *s);
/* 64-byte aligned, zeroed; free with free(). */
void *ad_xalloc_aligned(size_t n);

/* Bytes this process can still allocate: the smallest of physical memory,
 * the cgroup's memory.max (systemd MemoryMax=) and what RLIMIT_AS leaves
 * over the address space already mapped. `what` (may be NULL) names the
 * binding limit, for error messages. */
size_t ad_memory_limit(char *what, size_t whatlen);
/* Refuses (returns -1 with a message naming `purpose`) a working buffer of
 * `bytes` that does not fit ad_memory_limit; 0 if it fits. */
int ad_memory_check(size_t bytes, const char *purpose, char *err, size_t errlen);

#define AD_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) ad_die("%s:%d: invariant failed: %s", __FILE__, __LINE__, \
                            #cond);                                            \
    } while (0)
void ad_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Logging to stderr with sd-daemon level prefixes ("<3>", "<4>", "<6>", "<7>")
 * that journald understands; on a terminal a readable word is used instead. */
enum ad_log_level { AD_LOG_ERR = 3, AD_LOG_WARN = 4, AD_LOG_INFO = 6, AD_LOG_DEBUG = 7 };
void ad_log_set_level(enum ad_log_level max_level);
void ad_log(enum ad_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Durable replace of `path`, the one way every file that must survive a
 * power cut is written: a temp file in the same folder (0644 less the
 * umask), fsync, rename over path, fsync the folder (ad_fsync_parent). The
 * temp file is unlinked on failure. Returns 0, or -1 with err filled; when
 * only the folder sync fails the file is already replaced and err says so.
 * The _like form gives the new file the mode and, where permitted, the
 * owner of `like` (the config file a write-back replaces). */
struct stat;
int ad_write_file_durable(const char *path, const void *data, size_t len,
                          char *err, size_t errlen);
int ad_write_file_durable_like(const char *path, const void *data, size_t len,
                               const struct stat *like, char *err, size_t errlen);
/* fsync of a folder (after a rename or a create in it), or of the folder
 * holding path. A filesystem that cannot sync folders (EINVAL) counts as
 * done; any other failure is -1 with err naming the folder. */
int ad_fsync_dir(const char *dir, char *err, size_t errlen);
int ad_fsync_parent(const char *path, char *err, size_t errlen);
/* Reads a whole regular file (refuses directories); caller frees *data. */
int ad_read_file(const char *path, size_t max_len, uint8_t **data, size_t *len,
                 char *err, size_t errlen);
/* A whole decimal number in [lo, hi], nothing else in s: 0 and *out, or -1
 * (*out untouched). For command-line options. */
int ad_parse_long(const char *s, long lo, long hi, long *out);
/* mkdir -p; 0 or -1 with err. */
int ad_mkdirs(const char *path, unsigned mode, char *err, size_t errlen);

/* xoshiro256** seeded through splitmix64: same seed, same stream, everywhere. */
typedef struct ad_rng {
    uint64_t s[4];
    int has_spare;
    float spare;
} ad_rng;
void ad_rng_seed(ad_rng *rng, uint64_t seed);
uint64_t ad_rng_u64(ad_rng *rng);
float ad_rng_uniform(ad_rng *rng);           /* [0, 1) */
uint32_t ad_rng_below(ad_rng *rng, uint32_t n); /* [0, n) */
float ad_rng_normal(ad_rng *rng);            /* N(0, 1), Box-Muller */
/* FNV-1a 64 of bytes: used to seed per-frame noise from frame content. */
uint64_t ad_hash64(const void *data, size_t len, uint64_t seed);

double ad_now_sec(void);       /* CLOCK_MONOTONIC seconds */
/* UTC time as 'YYYY-MM-DD HH:MM:SS.SSS' (24 bytes incl. NUL): now, or the
 * given second and millisecond. The reject log's time text. */
void ad_utc_timestamp(char out[32]);
void ad_utc_format(int64_t sec, int msec, char out[32]);
/* Parses UTC 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD HH:MM:SS'
 * (optionally '.fff' and a 'Z'; 'T' may stand for the space) into seconds
 * since 1970 (fractions dropped). -1 for anything else, or a date that does
 * not exist (2026-02-30). */
int ad_utc_parse(const char *text, int64_t *sec);

/* SHA-256 of a file as 64 hex chars + NUL. */
int ad_sha256_file(const char *path, char out_hex[65], char *err, size_t errlen);

/* OpenMP threads that spin while OpenBLAS's own threads run sgemm cost 3x
 * (15x on a loaded machine) on 2 cores. libgomp reads OMP_WAIT_POLICY only
 * when it loads, before main, so the programs call this first: when the
 * variable is unset it sets it to passive and re-executes the program
 * (/proc/self/exe). Returns normally when nothing needed doing or exec failed. */
void ad_reexec_with_passive_openmp(char **argv);

#endif

/* Tests of the shared helpers: RNG reproducibility, durable writes, SHA-256. */
#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/util.h"

/* fsync is wrapped at link time (tests/cmake/util.cmake): while fail_dir_fsync
 * is set, syncing a folder fails with that errno, as on a failing disk. */
static int fail_dir_fsync;
int __real_fsync(int fd);
int __wrap_fsync(int fd)
{
    struct stat sb;
    if (fail_dir_fsync && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        errno = fail_dir_fsync;
        return -1;
    }
    return __real_fsync(fd);
}

static void rng_is_reproducible(void **state)
{
    (void)state;
    ad_rng a, b;
    ad_rng_seed(&a, 42);
    ad_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) assert_true(ad_rng_u64(&a) == ad_rng_u64(&b));
    ad_rng_seed(&a, 7);
    double sum = 0, sq = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = ad_rng_normal(&a);
        sum += x;
        sq += x * x;
    }
    assert_true(fabs(sum / n) < 0.01);
    assert_true(fabs(sq / n - 1.0) < 0.02);
    for (int i = 0; i < 1000; i++) {
        float u = ad_rng_uniform(&a);
        assert_true(u >= 0.0f && u < 1.0f);
        assert_true(ad_rng_below(&a, 10) < 10);
    }
}

static void durable_write_replaces_and_reads_back(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("util");
    char path[1024];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    char err[AD_ERRLEN];
    assert_int_equal(ad_write_file_durable(path, "hello", 5, err, sizeof err), 0);
    assert_int_equal(ad_write_file_durable(path, "bye", 3, err, sizeof err), 0);
    uint8_t *data;
    size_t len;
    assert_int_equal(ad_read_file(path, 1 << 20, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "bye", 3);
    free(data);
    /* a directory is refused with a clear message */
    assert_int_equal(ad_read_file(dir, 1 << 20, &data, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "is a directory"));
    /* writing into a missing folder fails and names the path */
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/missing/x.bin", dir);
    assert_int_equal(ad_write_file_durable(bad, "x", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing/x.bin"));
    ts_rmtree(dir);
    free(dir);
}

/* The written file's mode is 0644 less the process umask (the unit's
 * UMask=0027 makes reject images 0640), and no temporary file is left. */
static void durable_write_honours_umask(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("umask");
    char path[1024], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/a.png", dir);
    mode_t old = umask(027);
    int rc = ad_write_file_durable(path, "x", 1, err, sizeof err);
    umask(022);
    struct stat sb;
    assert_int_equal(rc, 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    assert_int_equal(ad_write_file_durable(path, "yy", 2, err, sizeof err), 0);
    umask(old);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(sb.st_size, 2);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    ts_rmtree(dir);
    free(dir);
}

/* The folder's fsync is part of a durable write: when it fails the caller
 * hears it (the file is already in place, and err says it may not survive a
 * power cut); a filesystem that cannot sync folders (EINVAL) is not an
 * error. The config write-back goes through the same function. */
static void durable_write_reports_a_failed_folder_sync(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("dirsync");
    char path[1024], err[AD_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/a.bin", dir);
    fail_dir_fsync = EIO;
    int rc = ad_write_file_durable(path, "abc", 3, err, sizeof err);
    fail_dir_fsync = 0;
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "a.bin: written, but it may not survive a power cut: "));
    assert_non_null(strstr(err, ": cannot sync the folder: Input/output error"));
    uint8_t *data;
    size_t len;
    assert_int_equal(ad_read_file(path, 16, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 3);
    free(data);

    fail_dir_fsync = EIO;
    assert_int_equal(ad_fsync_dir(dir, err, sizeof err), -1);
    assert_int_equal(ad_fsync_parent(path, err, sizeof err), -1);
    fail_dir_fsync = EINVAL;
    assert_int_equal(ad_write_file_durable(path, "x", 1, err, sizeof err), 0);
    assert_int_equal(ad_fsync_dir(dir, err, sizeof err), 0);
    fail_dir_fsync = 0;
    assert_int_equal(ad_fsync_dir(dir, err, sizeof err), 0);

    char missing[1100];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    assert_int_equal(ad_fsync_dir(missing, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing: cannot open the folder to sync it"));
    ts_rmtree(dir);
    free(dir);
}

/* The _like form takes the mode of the file it stands in for, whatever the
 * umask (the config write-back keeps a 0600 config 0600). */
static void durable_write_like_keeps_the_mode(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("like");
    char path[1024], err[AD_ERRLEN];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    struct stat like = {0};
    like.st_mode = S_IFREG | 0600;
    like.st_uid = geteuid();
    like.st_gid = getegid();
    assert_int_equal(ad_write_file_durable_like(path, "t: 1\n", 5, &like, err, sizeof err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    ts_rmtree(dir);
    free(dir);
}

static void sha256_known_vector(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("sha");
    char *path = ts_write_text(dir, "abc.txt", "abc");
    char hex[65], err[AD_ERRLEN];
    assert_int_equal(ad_sha256_file(path, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(path);
    ts_rmtree(dir);
    free(dir);
}

/* The memory budget names the limit that binds and refuses what cannot fit. */
static void memory_budget_refuses_the_impossible(void **state)
{
    (void)state;
    char what[160] = "";
    size_t limit = ad_memory_limit(what, sizeof what);
    assert_true(limit > ((size_t)16 << 20)); /* a test machine has more than 16 MiB */
    assert_true(what[0] != 0);
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_memory_check((size_t)1 << 20, "a small buffer", err, sizeof err), 0);
    assert_int_equal(ad_memory_check(SIZE_MAX / 2, "a huge buffer", err, sizeof err), -1);
    assert_non_null(strstr(err, "a huge buffer would need "));
    assert_non_null(strstr(err, "MiB this process can have ("));
    assert_non_null(strstr(err, what));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_is_reproducible),
        cmocka_unit_test(durable_write_replaces_and_reads_back),
        cmocka_unit_test(durable_write_honours_umask),
        cmocka_unit_test(durable_write_reports_a_failed_folder_sync),
        cmocka_unit_test(durable_write_like_keeps_the_mode),
        cmocka_unit_test(sha256_known_vector),
        cmocka_unit_test(memory_budget_refuses_the_impossible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Fault injection against the real anomalyd binary on the replay source:
 * image folder full, database full then read-only (also across SIGTERM),
 * database file damaged or moved away mid-run,
 * model file replaced by garbage or a truncated copy before SIGHUP, the
 * model's disk failing reads with EIO before SIGHUP, camera
 * gone and back, hostile model shapes. Each test checks what keeps working,
 * what the log says, and that nothing already recorded is lost: every
 * "reject: frame" line of the log is a row (or, when the database refused
 * until the end, a "reject NOT recorded" line with the whole row), and every
 * file a row names exists.
 *
 * Disk faults come from fault_preload (FAULT_PRELOAD, an LD_PRELOAD library):
 * while the control file exists, writes under a path prefix fail with the
 * errno the file names. With threshold 0 every inspected frame is a reject,
 * so rows keep coming at the replay rate. */
#include "daemon_harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/model.h"
#include "anomalyd/util.h"

/* AddressSanitizer and ThreadSanitizer reserve terabytes of address space
 * for their shadow memory: no RLIMIT_AS under them (UNDER_SANITIZER). */

#define AS_LIMIT (1ULL << 30) /* 1 GiB of address space for the hostile-model runs */

static int setup(void **state)
{
    *state = fx_new("faults");
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* ---- helpers ---- */

typedef struct fault_env {
    char preload[1400], prefix[1440], control[1400], asan[1024]; /* prefix: the name + a path of up to 1400 */
    const char *env[8];
} fault_env;

/* Environment for a daemon whose writes (and with `reads`, reads too)
 * under `prefix` fail while dir/fault exists. */
static void fault_env_init(fault_env *e, fx *f, const char *prefix, bool reads)
{
    snprintf(e->preload, sizeof e->preload, "LD_PRELOAD=%s", FAULT_PRELOAD);
    snprintf(e->prefix, sizeof e->prefix, "AD_FAULT_PREFIX=%s", prefix);
    snprintf(e->control, sizeof e->control, "AD_FAULT_CONTROL=%s/fault", f->dir);
    /* The preload comes before libasan in the link order: tell ASan that is
     * fine, keep the options ctest gave. */
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(e->asan, sizeof e->asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             asan ? asan : "", asan && *asan ? ":" : "");
    int n = 0;
    e->env[n++] = e->preload;
    e->env[n++] = e->prefix;
    e->env[n++] = e->control;
    e->env[n++] = e->asan;
    if (reads) e->env[n++] = "AD_FAULT_READS=1";
    e->env[n] = NULL;
}

/* Starts the daemon (threshold 0, looping replay) with writes under
 * `prefix` failing while dir/fault exists, and waits for READY. */
static void start_faultable(fx *f, const char *prefix)
{
    fault_env fe;
    fault_env_init(&fe, f, prefix, false);
    write_config(f, 0.0, true, 30);
    start_daemon_env(f, NULL, fe.env, 0);
    wait_notify(f, "READY=1");
}

/* Makes the fault active (atomically: the daemon never reads half a name). */
static void fault_set(fx *f, const char *what)
{
    char *tmp = ts_write_text(f->dir, "fault.new", what), dst[1300];
    snprintf(dst, sizeof dst, "%s/fault", f->dir);
    assert_int_equal(rename(tmp, dst), 0);
    free(tmp);
}

static void fault_clear(fx *f)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/fault", f->dir);
    assert_int_equal(unlink(path), 0);
}

/* Waits until the SQL count reaches at least min (the database may be
 * faulted for the daemon; the test's own connection is not). A log the
 * daemon has just created may not hold its tables yet: that counts as not
 * yet, not as a failure. */
static long long wait_sql(fx *f, const char *sql, long long min)
{
    double until = now_s() + DH_WAIT_S;
    for (;;) {
        struct stat sb;
        if (stat(f->db, &sb) == 0) {
            sqlite3 *db = open_db(f);
            long long v = -1;
            if (q_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'rejects'") > 0)
                v = q_int(db, sql);
            sqlite3_close(db);
            if (v >= min) return v;
        }
        if (now_s() > until) fail_msg("'%s' never reached %lld", sql, min);
        drain_notify(f);
        sleep_s(0.05);
    }
}

/* The status line (sent once a second) reports more captured frames than
 * `cap`: capture went on. Polls, since a reject can come sooner than the
 * next status. */
static void wait_captured_beyond(fx *f, long cap)
{
    double until = now_s() + DH_WAIT_S;
    while (status_captured(f) <= cap) {
        if (now_s() > until) fail_msg("captured stayed at %ld", cap);
        sleep_s(0.05);
    }
}

static void wait_more_rejects(fx *f, int more)
{
    wait_log(f, "reject: frame", log_count(f, "reject: frame") + more);
}

/* Every file a row names exists; no image file lies around that no row
 * names (a half-written or orphaned PNG), no temporary file is left. */
static void check_files_match_rows(fx *f)
{
    sqlite3 *db = open_db(f);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT image_path, heatmap_path FROM rejects", -1, &s,
                                        NULL), SQLITE_OK);
    long named = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < 2; c++) {
            const char *p = (const char *)sqlite3_column_text(s, c);
            if (!p) continue;
            if (!file_exists(p)) fail_msg("row names %s, which does not exist", p);
            named++;
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    long files = 0;
    DIR *top = opendir(f->images);
    assert_non_null(top);
    struct dirent *day;
    while ((day = readdir(top)) != NULL) {
        if (day->d_name[0] == '.') continue;
        char sub[1500];
        snprintf(sub, sizeof sub, "%s/%s", f->images, day->d_name);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            if (strstr(e->d_name, ".tmp")) fail_msg("temporary file %s/%s left behind", sub, e->d_name);
            files++;
        }
        closedir(d);
    }
    closedir(top);
    assert_int_equal(files, named);
}

/* Rows == announced rejects, ids without gaps, no row twice, the database
 * intact; returns the row count. */
static long long check_rows_complete(fx *f, int not_recorded)
{
    char *log = read_log(f);
    int announced = count_in(log, "reject: frame");
    free(log);
    sqlite3 *db = open_db(f);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    long long rows = q_int(db, "SELECT COUNT(*) FROM rejects");
    if (rows + not_recorded != announced)
        fail_msg("%lld rows + %d reported as not recorded, but the log announced %d rejects", rows,
                 not_recorded, announced);
    assert_int_equal(q_int(db, "SELECT COALESCE(MAX(id), 0) FROM rejects"), rows);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM (SELECT DISTINCT ts, frame_seq FROM rejects)"),
                     rows);
    sqlite3_close(db);
    return rows;
}

/* ---- 1. image folder full ---- */

/* The image folder's disk fills up mid-run and is freed again: rejects keep
 * becoming rows (with NULL paths, counted as images skipped, logged once),
 * images come back once there is space, and no file is half-written. */
static void test_image_folder_full(void **state)
{
    fx *f = *state;
    char prefix[1300];
    snprintf(prefix, sizeof prefix, "%s/", f->images);
    start_faultable(f, prefix);
    wait_sql(f, "SELECT COUNT(*) FROM rejects WHERE image_path IS NOT NULL", 2);

    fault_set(f, "ENOSPC");
    wait_log(f, "images of rejects are skipped", 1);
    wait_sql(f, "SELECT COUNT(*) FROM rejects WHERE image_path IS NULL", 3);
    char *log = read_log(f);
    assert_non_null(strstr(log, "No space left on device"));
    free(log);

    fault_clear(f);
    wait_log(f, "images of rejects are saved again", 1);
    sqlite3 *db = open_db(f);
    long long last_null = q_int(db, "SELECT MAX(id) FROM rejects WHERE image_path IS NULL");
    sqlite3_close(db);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM rejects WHERE id > %lld AND image_path IS NOT NULL", last_null);
    wait_sql(f, sql, 3);

    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    log = read_log(f);
    assert_int_equal(count_in(log, "<3>images of rejects are skipped: "), 1); /* logged once */
    assert_null(strstr(log, "NOT recorded"));
    free(log);
    check_rows_complete(f, 0);
    check_files_match_rows(f);
    db = open_db(f);
    /* every row without images was counted as skipped, and only those */
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NULL"),
                     q_int(db, "SELECT SUM(images_skipped) FROM counters"));
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE (image_path IS NULL) != "
                               "(heatmap_path IS NULL)"), 0);
    sqlite3_close(db);
}

/* ---- 2. database full, then read-only ---- */

/* The database's disk fills up, then turns read-only, then recovers: the
 * camera and inspection go on, rows wait in memory, and all of them land
 * once the database takes writes again. */
static void test_db_full_then_readonly(void **state)
{
    fx *f = *state;
    start_faultable(f, f->db); /* dtest.db, -wal, -shm, -journal */
    wait_sql(f, "SELECT COUNT(*) FROM rejects", 2);

    fault_set(f, "ENOSPC");
    wait_log(f, "keeping the rows in memory and retrying", 1);
    wait_more_rejects(f, 3);
    char *log = read_log(f); /* SQLite's words, or the OS error behind its I/O error */
    assert_true(strstr(log, "database or disk is full") || strstr(log, "(No space left on device)"));
    free(log);
    long long rows_full = db_rows(f);
    fault_set(f, "EROFS");
    wait_log(f, "the database opens read-only (read-only file system", 1);
    wait_more_rejects(f, 3);
    assert_int_equal(db_rows(f), rows_full); /* nothing got in while it failed */
    long cap = status_captured(f);

    fault_clear(f);
    wait_log(f, "reject log is writable again, held rows written", 1);
    wait_more_rejects(f, 2);
    wait_captured_beyond(f, cap); /* capture never stopped */
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    log = read_log(f);
    assert_null(strstr(log, "NOT recorded"));
    free(log);
    assert_true(check_rows_complete(f, 0) > rows_full);
    check_files_match_rows(f);
}

/* The database file is damaged while the daemon runs (here: overwritten
 * while the daemon could not write and had to reopen it, so no cached page
 * hides it): the daemon moves it aside whole, starts a new reject log and
 * writes every held row into it. Rows before the damage + rows of the new
 * log = rejects announced. */
static void test_db_damaged_mid_run(void **state)
{
    fx *f = *state;
    start_faultable(f, f->db);
    wait_sql(f, "SELECT COUNT(*) FROM rejects", 3);
    fault_set(f, "EROFS");
    wait_log(f, "the database opens read-only (read-only file system", 1);

    /* the test's own connection is not faulted: fold the WAL into the file,
     * count what was recorded, then overwrite the whole file */
    sqlite3 *db = open_db(f);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    long long before = q_int(db, "SELECT COUNT(*) FROM rejects");
    sqlite3_close(db);
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    FILE *fp = fopen(f->db, "r+b");
    assert_non_null(fp);
    for (off_t i = 0; i < sb.st_size; i++) fputc(0x5a, fp);
    assert_int_equal(fclose(fp), 0);
    wait_more_rejects(f, 2); /* rows held meanwhile */

    fault_clear(f);
    wait_log(f, "the reject log is damaged; moved it aside to", 1);
    wait_log(f, "reject log is writable again, held rows written", 1);
    wait_more_rejects(f, 3);
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);

    char *log = read_log(f);
    assert_null(strstr(log, "NOT recorded"));
    assert_non_null(strstr(log, "file is not a database; the file will be moved aside"));
    int announced = count_in(log, "reject: frame");
    free(log);
    db = open_db(f);
    long long after = q_int(db, "SELECT COUNT(*) FROM rejects");
    assert_true(after >= 5);
    assert_int_equal(q_int(db, "SELECT MAX(id) FROM rejects"), after);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NOT NULL AND "
                               "heatmap_path IS NOT NULL"), after);
    sqlite3_close(db);
    if (before + after != announced)
        fail_msg("%lld rows before the damage + %lld in the new log, but %d rejects announced",
                 before, after, announced);
    check_rows_complete(f, (int)before); /* integrity, no gaps; `before` rows are aside */

    /* the damaged file is beside the new one, whole */
    const char *base = strrchr(f->db, '/') + 1;
    char prefix[300], folder[1200];
    snprintf(prefix, sizeof prefix, "%s.corrupt-", base);
    snprintf(folder, sizeof folder, "%.*s", (int)(base - 1 - f->db), f->db);
    DIR *d = opendir(folder);
    assert_non_null(d);
    int aside = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) || strchr(e->d_name + strlen(prefix), '-'))
            continue;
        char p[1600];
        snprintf(p, sizeof p, "%s/%s", folder, e->d_name);
        struct stat ab;
        assert_int_equal(stat(p, &ab), 0);
        assert_int_equal(ab.st_size, sb.st_size);
        aside++;
    }
    closedir(d);
    assert_int_equal(aside, 1);
}

/* An operator moves the reject log away mid-run (`mv line.db archive.db`):
 * rows go on into a new log at the configured path, and archive + new log =
 * rejects announced (test_store.c also covers a deleted log and one another
 * process holds open). */
static void test_db_moved_mid_run(void **state)
{
    fx *f = *state;
    write_config(f, 0.0, true, 30);
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    wait_sql(f, "SELECT COUNT(*) FROM rejects", 3);
    char archive[1300];
    snprintf(archive, sizeof archive, "%s.archive", f->db);
    assert_int_equal(rename(f->db, archive), 0);
    wait_log(f, "the reject log was moved or deleted while open", 1);
    wait_sql(f, "SELECT COUNT(*) FROM rejects", 3); /* the new log fills */
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(archive, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    long long archived = q_int(db, "SELECT COUNT(*) FROM rejects");
    assert_int_equal(q_int(db, "SELECT MAX(id) FROM rejects"), archived);
    sqlite3_close(db);
    assert_true(archived >= 3);
    char *log = read_log(f);
    assert_null(strstr(log, "NOT recorded"));
    free(log);
    check_rows_complete(f, (int)archived); /* new log: no gaps; archived rows are in the archive */
}

/* Starts the daemon, waits for a first row, then makes the database refuse
 * writes with `errno_name` until at least 3 more rejects are announced. */
static void start_with_db_refusing(fx *f, const char *errno_name)
{
    start_faultable(f, f->db);
    wait_sql(f, "SELECT COUNT(*) FROM rejects", 1);
    fault_set(f, errno_name);
    wait_log(f, "keeping the rows in memory and retrying", 1);
    wait_more_rejects(f, 3);
}

/* SIGTERM while the database still refuses, and it recovers during the
 * shutdown grace: the daemon says it is holding rows, waits, and writes them
 * all before exiting 0. */
static void test_sigterm_waits_for_db(void **state)
{
    fx *f = *state;
    start_with_db_refusing(f, "EROFS");
    kill(f->pid, SIGTERM);
    wait_log(f, "rejects not yet recorded at shutdown", 1);
    fault_clear(f);
    assert_int_equal(wait_exit(f), 0);
    char *log = read_log(f);
    assert_null(strstr(log, "NOT recorded"));
    assert_non_null(strstr(log, "reject log is writable again, held rows written"));
    free(log);
    check_rows_complete(f, 0);
    check_files_match_rows(f);
}

/* SIGTERM while the database refuses until the end: after the bounded grace
 * every unrecorded reject is written to the log in full (one "reject NOT
 * recorded" line each, with all columns), the exit status says so, and
 * rows + those lines account for every announced reject. */
static void test_sigterm_db_never_recovers(void **state)
{
    fx *f = *state;
    start_with_db_refusing(f, "ENOSPC");
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 1);
    char *log = read_log(f);
    int lost = count_in(log, "reject NOT recorded");
    assert_true(lost >= 3);
    /* each line carries the whole row */
    for (const char *p = log; (p = strstr(p, "reject NOT recorded")) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        const char *fields[] = {" ts=", " line=dtest", " camera=", " frame=", " score=",
                                " threshold=", " box=", " area=", " image=", " heatmap=",
                                " model="};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            const char *q = strstr(p, fields[i]);
            if (!q || q > eol) fail_msg("lost-row line lacks '%s': %.*s", fields[i], (int)(eol - p), p);
        }
        const char *m = strstr(p, " model=") + 7;
        assert_int_equal(strspn(m, "0123456789abcdef"), 64); /* the whole sha256 */
        /* the images it names were written before the row was due */
        char img[1024];
        const char *ip = strstr(p, " image=") + 7;
        size_t il = strcspn(ip, " \n");
        assert_true(il < sizeof img);
        memcpy(img, ip, il);
        img[il] = 0;
        if (strcmp(img, "-")) assert_true(file_exists(img));
    }
    char summary[128];
    snprintf(summary, sizeof summary, "%d not recorded)", lost);
    assert_non_null(strstr(log, summary));
    free(log);
    check_rows_complete(f, lost);
}

/* ---- 3. model file replaced before SIGHUP ---- */

static void write_raw_safetensors(const char *path, const char *header, size_t data_len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t n = strlen(header);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(n >> (8 * i));
    fwrite(len, 1, 8, fp);
    fwrite(header, 1, n, fp);
    for (size_t i = 0; i < data_len; i++) fputc(0, fp);
    fclose(fp);
}

static void copy_file(const char *from, const char *to, size_t max_bytes)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char err[AD_ERRLEN], tmp[1500];
    if (ad_read_file(from, 1 << 28, &data, &len, err, sizeof err) != 0) fail_msg("%s", err);
    if (len > max_bytes) len = max_bytes;
    snprintf(tmp, sizeof tmp, "%s.part", to);
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    assert_int_equal(rename(tmp, to), 0);
    free(data);
}

/* The fixture model and head, copied into the test folder (f->model and
 * `head`) so that a test may damage them; fixture paths in the others. */
typedef struct model_copy {
    char fixture[1300], head_fixture[1300], head[1400];
} model_copy;

static void copy_fixture_model(fx *f, model_copy *m)
{
    snprintf(m->fixture, sizeof m->fixture, "%s/model/parts.safetensors", FIXTURES_DIR);
    snprintf(m->head_fixture, sizeof m->head_fixture, "%s/model/parts.head.safetensors",
             FIXTURES_DIR);
    snprintf(f->model, sizeof f->model, "%s/parts.safetensors", f->dir);
    snprintf(m->head, sizeof m->head, "%s/parts.head.safetensors", f->dir);
    copy_file(m->fixture, f->model, SIZE_MAX);
    copy_file(m->head_fixture, m->head, SIZE_MAX);
}

static void test_sighup_refuses_broken_model(void **state)
{
    fx *f = *state;
    model_copy m;
    copy_fixture_model(f, &m);
    const char *fixture = m.fixture, *head_fixture = m.head_fixture, *head = m.head;
    write_config(f, 0.0, true, 30);
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    wait_log(f, "reject: frame", 2);

    /* garbage */
    free(ts_write_text(f->dir, "parts.safetensors",
                       "this is not a model, someone copied a text file over it\n"));
    kill(f->pid, SIGHUP);
    wait_log(f, "reload failed, still running on the previous config and model", 1);
    char *log = read_log(f);
    char want[1600];
    snprintf(want, sizeof want, "%s: header length", f->model);
    assert_non_null(strstr(log, want));
    free(log);
    wait_more_rejects(f, 3); /* still inspecting on the old model */

    /* a copy cut off half-way */
    struct stat sb;
    assert_int_equal(stat(fixture, &sb), 0);
    copy_file(fixture, f->model, (size_t)sb.st_size / 2);
    kill(f->pid, SIGHUP);
    wait_log(f, "reload failed, still running on the previous config and model", 2);
    log = read_log(f);
    snprintf(want, sizeof want, "%s: tensor '", f->model);
    assert_non_null(strstr(log, want));
    assert_non_null(strstr(log, "outside the"));
    free(log);
    wait_more_rejects(f, 3);
    assert_int_equal(log_count(f, "inspection now uses the reloaded config"), 0);

    /* the good model, but its learned head (beside it) overwritten */
    copy_file(fixture, f->model, SIZE_MAX);
    write_raw_safetensors(head, "{\"__metadata__\":{\"anomalyd.format\":\"something-else\"}}", 0);
    kill(f->pid, SIGHUP);
    wait_log(f, "reload failed, still running on the previous config and model", 3);
    snprintf(want, sizeof want, "%s: not an anomalyd head file", head);
    wait_log(f, want, 1);
    wait_more_rejects(f, 2);

    /* the good model and head again */
    copy_file(head_fixture, head, SIZE_MAX);
    kill(f->pid, SIGHUP);
    wait_log(f, "inspection now uses the reloaded config", 1);
    wait_more_rejects(f, 2);
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    check_rows_complete(f, 0);
    check_files_match_rows(f);
    /* every row was inspected by the one good model */
    char sha[65], err[AD_ERRLEN], sql[256];
    assert_int_equal(ad_sha256_file(fixture, sha, err, sizeof err), 0);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM rejects WHERE model_sha256 != '%s'", sha);
    sqlite3 *db = open_db(f);
    assert_int_equal(q_int(db, sql), 0);
    sqlite3_close(db);
}

/* The disk under the model fails with EIO before a SIGHUP: the reload fails
 * and names the file and the OS error, inspection goes on with the model in
 * memory, and once the disk reads again the next SIGHUP loads it. */
static void test_sighup_model_read_fails(void **state)
{
    fx *f = *state;
    model_copy m;
    copy_fixture_model(f, &m);
    char prefix[1400];
    snprintf(prefix, sizeof prefix, "%s/parts.", f->dir); /* the model and its head */
    fault_env fe;
    fault_env_init(&fe, f, prefix, true);
    write_config(f, 0.0, true, 30);
    start_daemon_env(f, NULL, fe.env, 0);
    wait_notify(f, "READY=1");
    wait_log(f, "reject: frame", 2);

    fault_set(f, "EIO");
    kill(f->pid, SIGHUP);
    wait_log(f, "reload failed, still running on the previous config and model", 1);
    char *log = read_log(f);
    char want[1600];
    snprintf(want, sizeof want, "%s: read failed: Input/output error", f->model);
    if (!strstr(log, want)) fail_msg("the log does not say '%s':\n%s", want, log);
    free(log);
    wait_more_rejects(f, 3); /* still inspecting on the model in memory */

    fault_clear(f);
    kill(f->pid, SIGHUP);
    wait_log(f, "inspection now uses the reloaded config", 1);
    wait_more_rejects(f, 2);
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    check_rows_complete(f, 0);
    check_files_match_rows(f);
}

/* ---- 4. camera gone and back ---- */

/* The replay folder (a symlink to the fixture frames) disappears mid-run and
 * comes back: the daemon says the camera is gone, retries with backoff,
 * says it is back, and keeps inspecting and recording. */
static void test_camera_gone_and_back(void **state)
{
    fx *f = *state;
    char target[1300];
    snprintf(target, sizeof target, "%s/replay/frames", FIXTURES_DIR);
    snprintf(f->replay, sizeof f->replay, "%s/frames", f->dir);
    assert_int_equal(symlink(target, f->replay), 0);
    write_config(f, 0.0, true, 30);
    start_daemon(f, NULL);
    wait_notify(f, "READY=1");
    wait_log(f, "reject: frame", 3);

    assert_int_equal(unlink(f->replay), 0);
    char want[1600];
    snprintf(want, sizeof want, "replay folder %s is gone", f->replay);
    wait_log(f, want, 1);
    snprintf(want, sizeof want, "replay folder %s: cannot open the folder", f->replay);
    wait_log(f, want, 1); /* a reopen was tried and failed */
    wait_notify(f, "waiting for camera");
    assert_int_equal(log_count(f, want), 1); /* logged once, not per retry */

    assert_int_equal(symlink(target, f->replay), 0);
    wait_log(f, "camera is back", 1);
    wait_more_rejects(f, 3);
    kill(f->pid, SIGTERM);
    assert_int_equal(wait_exit(f), 0);
    snprintf(want, sizeof want, "camera %s open: ", f->replay);
    assert_int_equal(log_count(f, want), 2); /* opened at start and once more */
    check_rows_complete(f, 0);
    check_files_match_rows(f);
}

/* ---- 5. hostile model shapes ---- */

/* The fixture model with up to two metadata values replaced (key2 may be
 * NULL). */
static void write_model_with_meta(const char *path, const char *key, const char *value,
                                  const char *key2, const char *value2)
{
    char src[1300], err[AD_ERRLEN];
    snprintf(src, sizeof src, "%s/model/parts.safetensors", FIXTURES_DIR);
    ad_safetensors st;
    assert_int_equal(ad_safetensors_read(src, &st, err, sizeof err), 0);
    ad_st_out *ts = ad_xcalloc((size_t)st.num_tensors, sizeof *ts);
    for (int i = 0; i < st.num_tensors; i++) {
        ts[i].name = st.tensors[i].name;
        ts[i].ndim = st.tensors[i].ndim;
        for (int d = 0; d < st.tensors[i].ndim; d++) ts[i].shape[d] = st.tensors[i].shape[d];
        ts[i].data = (const float *)(st.data + st.tensors[i].offset);
    }
    const char **mv = ad_xcalloc((size_t)st.num_meta, sizeof *mv);
    for (int i = 0; i < st.num_meta; i++)
        mv[i] = !strcmp(st.meta_keys[i], key)               ? value
                : key2 && !strcmp(st.meta_keys[i], key2) ? value2
                                                         : st.meta_values[i];
    if (ad_safetensors_write(path, ts, st.num_tensors, (const char *const *)st.meta_keys, mv,
                             st.num_meta, err, sizeof err) != 0)
        fail_msg("%s", err);
    free(mv);
    free(ts);
    ad_safetensors_free(&st);
}

/* Runs the daemon (and --check-config) on a hostile model under a 1 GiB
 * address-space limit: both exit 1 naming the file and the problem. */
static void expect_refused_under(fx *f, const char *phrase, unsigned long long limit)
{
    const char *check[] = {"--check-config", NULL};
    for (int pass = 0; pass < 2; pass++) {
        unlink(f->log);
        start_daemon_env(f, pass ? check : NULL, NULL, limit);
        int rc = wait_exit(f);
        char *log = read_log(f);
        char want[1600];
        snprintf(want, sizeof want, "%s: ", f->model);
        if (rc != 1 || !strstr(log, want) || !strstr(log, phrase))
            fail_msg("%s: expected exit 1 naming %s and '%s', got %d:\n%s",
                     pass ? "--check-config" : "daemon", f->model, phrase, rc, log);
        assert_null(strstr(log, "out of memory"));
        if (!pass) assert_non_null(strstr(log, "cannot load the model: "));
        else assert_non_null(strstr(log, "model check failed: "));
        free(log);
    }
}

static void expect_model_refused(fx *f, const char *phrase)
{
    expect_refused_under(f, phrase, UNDER_SANITIZER ? 0 : AS_LIMIT);
}

/* Writes the test config with another model.input_width/height. */
static void set_input_size(fx *f, int w, int h)
{
    write_config(f, 0.5, true, 30);
    uint8_t *text = NULL;
    size_t len = 0;
    char err[AD_ERRLEN];
    if (ad_read_file(f->config, 1 << 20, &text, &len, err, sizeof err) != 0) fail_msg("%s", err);
    const char *old = "  input_width: 64\n  input_height: 64\n";
    char *at = strstr((char *)text, old);
    assert_non_null(at);
    char out[16384];
    snprintf(out, sizeof out, "%.*s  input_width: %d\n  input_height: %d\n%s",
             (int)(at - (char *)text), (char *)text, w, h, at + strlen(old));
    free(text);
    char *p = ts_write_text(f->dir, "dtest.yaml.new", out);
    assert_int_equal(rename(p, f->config), 0);
    free(p);
}

static void test_hostile_model_shapes(void **state)
{
    fx *f = *state;
    snprintf(f->model, sizeof f->model, "%s/hostile.safetensors", f->dir);
    write_config(f, 0.5, true, 30);

    /* the limit itself is no obstacle to the real model */
    unsigned long long limit = UNDER_SANITIZER ? 0 : AS_LIMIT;
    char good[1300];
    snprintf(good, sizeof good, "%s/model/parts.safetensors", FIXTURES_DIR);
    copy_file(good, f->model, SIZE_MAX);
    char head_src[1300], head[1500];
    snprintf(head_src, sizeof head_src, "%s/model/parts.head.safetensors", FIXTURES_DIR);
    snprintf(head, sizeof head, "%s/hostile.head.safetensors", f->dir);
    copy_file(head_src, head, SIZE_MAX);
    const char *check[] = {"--check-config", NULL};
    start_daemon_env(f, check, NULL, limit);
    if (wait_exit(f) != 0) {
        char *log = read_log(f);
        fail_msg("--check-config of the fixture model under the limit failed:\n%s", log);
    }

    /* base channels of a million */
    write_model_with_meta(f->model, AD_META_BASE_CHANNELS, "1000000", NULL, NULL);
    expect_model_refused(f, "metadata 'anomalyd.base_channels' must be an integer in");
    /* every key in range, together far over the parameter cap */
    write_model_with_meta(f->model, AD_META_BASE_CHANNELS, "256", AD_META_CHANNEL_MULT, "8,8,8,8");
    expect_model_refused(f, "architecture in metadata is not acceptable");
    /* a tensor claiming 2^40 elements in 4 bytes of data */
    write_raw_safetensors(f->model,
                          "{\"conv_in.weight\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],"
                          "\"data_offsets\":[0,4]}}", 4);
    expect_model_refused(f, "spans 4 bytes but its shape needs 4398046511104");
    /* and one whose element count overflows past 2^40 */
    write_raw_safetensors(f->model,
                          "{\"conv_in.weight\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576,"
                          "1048576],\"data_offsets\":[0,4]}}", 4);
    expect_model_refused(f, "has an absurdly large shape");
    /* a header length of 2^62 */
    write_raw_safetensors(f->model, "{}", 0);
    FILE *fp = fopen(f->model, "r+b");
    assert_non_null(fp);
    uint8_t huge[8] = {0, 0, 0, 0, 0, 0, 0, 0x40};
    fwrite(huge, 1, 8, fp);
    fclose(fp);
    expect_model_refused(f, "larger than the rest of the file");

    /* The good model, but a config whose input size needs more memory than
     * the process may have: refused before anything is allocated, naming
     * the keys, the memory needed and the limit that binds. */
    copy_file(good, f->model, SIZE_MAX);
    set_input_size(f, 4096, 4096); /* the largest the config allows */
    expect_refused_under(f, "model.input_width/height 4096x4096 in ", limit);
    char *log = read_log(f);
    assert_non_null(strstr(log, "UNet scratch for batch 1 at 4096x4096 would need "));
    assert_non_null(strstr(log, " MiB any one model may use"));
    free(log);
    if (!UNDER_SANITIZER) {
        set_input_size(f, 1024, 1024); /* fine on the machine, not in 1 GiB */
        expect_refused_under(f, "model.input_width/height 1024x1024 in ", AS_LIMIT);
        log = read_log(f);
        assert_non_null(strstr(log, "the address-space limit (RLIMIT_AS"));
        assert_non_null(strstr(log, "would need "));
        free(log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_image_folder_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_full_then_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_damaged_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_moved_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_waits_for_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_db_never_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_refuses_broken_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_model_read_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_camera_gone_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_model_shapes, setup, teardown),
    };
    const char *only = getenv("FAULTS_ONLY"); /* e.g. FAULTS_ONLY='*camera*' while debugging */
    if (only && *only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Reject log: schema, migrations, rows + durable PNGs, locked database,
 * damaged, foreign, moved and deleted database files, skipped images, retention by age and
 * by size. */
#include "test_support.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/store.h"
#include "anomalyd/util.h"

typedef struct fx {
    char *dir;
    char db[AD_PATH_MAX];
    char images[AD_PATH_MAX];
    ad_store_options opt;      /* db and images; images on, no retention, no cap */
} fx;

static int setup(void **state)
{
    fx *f = ad_xcalloc(1, sizeof *f);
    f->dir = ts_tmpdir("store");
    snprintf(f->db, sizeof f->db, "%s/sub/line3.db", f->dir);
    snprintf(f->images, sizeof f->images, "%s/images", f->dir);
    snprintf(f->opt.database, sizeof f->opt.database, "%s", f->db);
    snprintf(f->opt.image_dir, sizeof f->opt.image_dir, "%s", f->images);
    f->opt.save_images = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ts_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static sqlite3 *open_raw(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static long long q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static char *q_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(s, 0);
    char *v = t ? ad_xstrdup((const char *)t) : NULL;
    sqlite3_finalize(s);
    return v;
}

static void make_reject(ad_reject *r, const char *ts, uint64_t seq, double score)
{
    memset(r, 0, sizeof *r);
    snprintf(r->ts, sizeof r->ts, "%s", ts);
    snprintf(r->line, sizeof r->line, "line3");
    snprintf(r->camera, sizeof r->camera, "/dev/video0");
    r->frame_seq = seq;
    r->score = score;
    r->threshold = 0.5;
    r->box_x = 10;
    r->box_y = 12;
    r->box_w = 5;
    r->box_h = 6;
    r->area = 22;
    memset(r->model_sha256, 'a', 64);
}

static void noise_image(ad_image *im, int w, int h, int c, uint64_t seed)
{
    assert_int_equal(ad_image_alloc(im, w, h, c), 0);
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)w * h * c; i++) im->px[i] = (uint8_t)ad_rng_u64(&rng);
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void test_schema_created(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    f->opt.retention_days = 30;
    f->opt.max_megabytes = 100;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "PRAGMA user_version"), AD_STORE_SCHEMA_VERSION);
    char *mode = q_text(db, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE name IN "
                               "('rejects','counters','rejects_ts','counters_minute')"),
                     4);
    sqlite3_close(db);
    /* Reopening a database of this version is a no-op migration. */
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_store_close(st);
}

/* Creates the log through the store, then changes it behind its back. */
static void create_then_alter(fx *f, const char *sql)
{
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A log written by an anomalyd of schema version 1 (no part columns),
 * holding one row, is migrated in place: the row stays, with NULL part,
 * and new rows carry their part; the read-only reader opens both. */
static void test_version_1_log_migrated(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    /* back to what version 1 wrote: the same tables without the part columns */
    create_then_alter(f, "ALTER TABLE rejects DROP COLUMN part;"
                         "ALTER TABLE rejects DROP COLUMN part_id;"
                         "ALTER TABLE rejects DROP COLUMN trigger;"
                         "INSERT INTO rejects (ts, line, camera, frame_seq, score, threshold, area,"
                         " model_sha256) VALUES ('2025-12-01 10:00:00.000', 'line3', 'cam', 7, 0.9,"
                         " 0.5, 3, 'old');"
                         "PRAGMA user_version = 1;");
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_reject r;
    make_reject(&r, "2026-01-01 00:00:00.000", 8, 0.8);
    r.part = 12;
    snprintf(r.part_id, sizeof r.part_id, "SN-0042");
    snprintf(r.trigger, sizeof r.trigger, "mqtt");
    bool skipped = false;
    assert_int_equal(ad_store_add_reject(st, &r, &skipped, err, sizeof err), 0);
    ad_store_close(st);

    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "PRAGMA user_version"), 2);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE frame_seq = 7 AND model_sha256 = 'old' AND "
                               "part IS NULL AND part_id IS NULL AND trigger IS NULL"),
                     1);
    assert_int_equal(q_int(db, "SELECT part FROM rejects WHERE frame_seq = 8"), 12);
    char *id = q_text(db, "SELECT part_id || ' ' || trigger FROM rejects WHERE frame_seq = 8");
    assert_string_equal(id, "SN-0042 mqtt");
    free(id);
    sqlite3_close(db);

    ad_store_reader *rd = NULL;
    assert_int_equal(ad_store_reader_open(&rd, f->db, err, sizeof err), 0);
    ad_reject *rows = NULL;
    size_t n = 0;
    assert_int_equal(ad_store_read_rejects(rd, "2000-01-01", "2100-01-01", false, 10, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    free(rows);
    ad_store_reader_close(rd);
}

static void test_newer_schema_refused(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    create_then_alter(f, "PRAGMA user_version = 7");
    assert_int_not_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    assert_null(st);
    assert_non_null(strstr(err, "newer anomalyd"));
    assert_non_null(strstr(err, "version 7"));
}

static void test_reject_with_images(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_image frame = {0}, heat = {0};
    noise_image(&frame, 32, 24, 1, 1);
    noise_image(&heat, 32, 24, 3, 2);
    ad_reject r;
    make_reject(&r, "2026-11-25 10:43:35.123", 42, 0.91);
    r.frame = &frame;
    r.heatmap = &heat;
    bool skipped = true;
    assert_int_equal(ad_store_add_reject(st, &r, &skipped, err, sizeof err), 0);
    assert_false(skipped);
    ad_store_close(st);

    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), 1);
    assert_int_equal(q_int(db, "SELECT frame_seq FROM rejects"), 42);
    assert_int_equal(q_int(db, "SELECT box_w * 100 + box_h FROM rejects"), 506);
    char *ts = q_text(db, "SELECT ts FROM rejects");
    assert_string_equal(ts, "2026-11-25 10:43:35.123");
    free(ts);
    char *ip = q_text(db, "SELECT image_path FROM rejects");
    char *hp = q_text(db, "SELECT heatmap_path FROM rejects");
    assert_non_null(strstr(ip, "/images/2026-11-25/104335.123-line3-000042-frame.png"));
    assert_non_null(strstr(hp, "heatmap.png"));
    struct stat a, b;
    assert_int_equal(stat(ip, &a), 0);
    assert_int_equal(stat(hp, &b), 0);
    assert_int_equal(q_int(db, "SELECT image_bytes FROM rejects"), a.st_size + b.st_size);
    ad_image back = {0};
    assert_int_equal(ad_png_read(ip, 0, &back, err, sizeof err), 0);
    assert_int_equal(back.w, 32);
    assert_int_equal(back.c, 1);
    assert_memory_equal(back.px, frame.px, 32 * 24);
    ad_image_free(&back);
    assert_int_equal(ad_png_read(hp, 0, &back, err, sizeof err), 0);
    assert_int_equal(back.c, 3);
    ad_image_free(&back);
    free(ip);
    free(hp);
    sqlite3_close(db);
    ad_image_free(&frame);
    ad_image_free(&heat);
}

static void test_images_disabled(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    f->opt.image_dir[0] = 0;
    f->opt.save_images = false;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_image frame = {0};
    noise_image(&frame, 8, 8, 1, 3);
    ad_reject r;
    make_reject(&r, "2026-11-25 10:43:35.123", 1, 0.9);
    r.frame = &frame;
    bool skipped = true;
    assert_int_equal(ad_store_add_reject(st, &r, &skipped, err, sizeof err), 0);
    assert_false(skipped);
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NULL"), 1);
    sqlite3_close(db);
    ad_image_free(&frame);
}

/* The day folder cannot be created (a file is in the way): the row is still
 * committed, with NULL paths, and the skip is reported. */
static void test_images_skipped_row_kept(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    free(ts_write_text(f->images, "2026-01-02", "not a folder"));
    ad_image frame = {0};
    noise_image(&frame, 8, 8, 1, 3);
    ad_reject r;
    make_reject(&r, "2026-01-02 03:04:05.678", 9, 0.9);
    r.frame = &frame;
    r.heatmap = &frame;
    bool skipped = false;
    assert_int_equal(ad_store_add_reject(st, &r, &skipped, err, sizeof err), 0);
    assert_true(skipped);
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NULL "
                               "AND heatmap_path IS NULL AND frame_seq = 9"),
                     1);
    sqlite3_close(db);
    ad_image_free(&frame);
}

/* Another connection holds the write lock: the insert reports RETRY, commits
 * nothing, and succeeds once the lock is gone. */
static void test_locked_database_retry(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_store_set_busy_timeout(st, 50);
    sqlite3 *other = open_raw(f->db);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    ad_reject r1, r2;
    make_reject(&r1, "2026-11-25 10:00:00.000", 1, 0.7);
    make_reject(&r2, "2026-11-25 10:00:01.000", 2, 0.8);
    const ad_reject *rows[2] = {&r1, &r2};
    assert_int_equal(ad_store_insert_rejects(st, rows, 2, err, sizeof err), AD_STORE_RETRY);
    assert_non_null(strstr(err, "locked"));
    ad_minute_counts c = {.minute = "2026-11-25 10:00", .line = "line3", .seconds = 60};
    assert_int_equal(ad_store_add_minute(st, &c, err, sizeof err), AD_STORE_RETRY);

    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(q_int(other, "SELECT COUNT(*) FROM rejects"), 0);
    assert_int_equal(ad_store_insert_rejects(st, rows, 2, err, sizeof err), 0);
    assert_int_equal(ad_store_add_minute(st, &c, err, sizeof err), 0);
    assert_int_equal(q_int(other, "SELECT COUNT(*) FROM rejects"), 2);
    assert_int_equal(q_int(other, "SELECT COUNT(*) FROM counters"), 1);
    sqlite3_close(other);
    ad_store_close(st);
}

/* The database is exclusively locked while the store opens: the open still
 * succeeds, writes report RETRY, and once the lock is gone the schema is
 * created and the row lands. */
static void test_open_while_locked(void **state)
{
    fx *f = *state;
    char err[AD_ERRLEN];
    assert_int_equal(ad_mkdirs(f->dir, 0755, NULL, 0), 0);
    char sub[1300];
    snprintf(sub, sizeof sub, "%s/sub", f->dir);
    assert_int_equal(ad_mkdirs(sub, 0755, NULL, 0), 0);
    sqlite3 *other = open_raw(f->db);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE; CREATE TABLE other_app(a);", NULL,
                                  NULL, NULL), SQLITE_OK);
    ad_store *st = NULL;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    assert_non_null(st);
    ad_store_set_busy_timeout(st, 50);
    ad_reject r;
    make_reject(&r, "2026-11-25 10:00:00.000", 7, 0.7);
    const ad_reject *rows[1] = {&r};
    assert_int_equal(ad_store_insert_rejects(st, rows, 1, err, sizeof err), AD_STORE_RETRY);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(ad_store_insert_rejects(st, rows, 1, err, sizeof err), 0);
    ad_store_close(st);
    assert_int_equal(q_int(other, "PRAGMA user_version"), AD_STORE_SCHEMA_VERSION);
    assert_int_equal(q_int(other, "SELECT frame_seq FROM rejects"), 7);
    sqlite3_close(other);
}

static void test_minute_counters(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_minute_counts idle = {.minute = "2026-11-25 10:00", .line = "line3", .seconds = 60,
                             .captured = 5, .dropped = 5};
    ad_minute_counts busy = {.minute = "2026-11-25 10:01", .line = "line3", .seconds = 60,
                             .captured = 1800, .inspected = 1700, .dropped = 100, .rejects = 3,
                             .score_p50 = 0.1, .score_p90 = 0.2, .score_p99 = 0.4,
                             .score_max = 0.9, .latency_ms_p50 = 20, .latency_ms_p99 = 31,
                             .latency_ms_max = 40};
    assert_int_equal(ad_store_add_minute(st, &idle, err, sizeof err), 0);
    assert_int_equal(ad_store_add_minute(st, &busy, err, sizeof err), 0);
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM counters WHERE score_p50 IS NULL"), 1);
    assert_int_equal(q_int(db, "SELECT SUM(captured) FROM counters"), 1805);
    assert_int_equal(q_int(db, "SELECT latency_ms_p99 FROM counters WHERE minute = '2026-11-25 10:01'"), 31);
    sqlite3_close(db);
}

static void test_retention_by_age(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    f->opt.retention_days = 30;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_image frame = {0};
    noise_image(&frame, 16, 16, 1, 5);
    ad_reject old_r, new_r;
    make_reject(&old_r, "2001-02-03 04:05:06.007", 1, 0.9);
    char now[32];
    ad_utc_timestamp(now);
    make_reject(&new_r, now, 2, 0.9);
    old_r.frame = new_r.frame = &frame;
    assert_int_equal(ad_store_add_reject(st, &old_r, NULL, err, sizeof err), 0);
    assert_int_equal(ad_store_add_reject(st, &new_r, NULL, err, sizeof err), 0);
    assert_true(file_exists(old_r.image_path));
    ad_minute_counts c = {.minute = "2001-02-03 04:05", .line = "line3", .seconds = 60};
    assert_int_equal(ad_store_add_minute(st, &c, err, sizeof err), 0);

    long deleted = -1;
    assert_int_equal(ad_store_retention(st, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 1);
    assert_false(file_exists(old_r.image_path));
    assert_true(file_exists(new_r.image_path));
    char day[1300];
    snprintf(day, sizeof day, "%s/2001-02-03", f->images);
    struct stat sb;
    assert_int_not_equal(stat(day, &sb), 0); /* empty day folder removed */
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), 1);
    assert_int_equal(q_int(db, "SELECT frame_seq FROM rejects"), 2);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM counters"), 0);
    sqlite3_close(db);
    ad_image_free(&frame);
}

/* Three rejects of ~0.5 MB of incompressible images under a 1 MB cap: the
 * oldest lose their files (paths NULL), every row stays. */
static void test_retention_by_size(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    f->opt.max_megabytes = 1;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_reject r[3];
    ad_image im[3];
    for (int i = 0; i < 3; i++) {
        noise_image(&im[i], 400, 400, 3, 10 + (uint64_t)i);
        char ts[32];
        snprintf(ts, sizeof ts, "2026-11-25 10:00:0%u.000", (unsigned)i % 10u);
        make_reject(&r[i], ts, (uint64_t)i, 0.9);
        r[i].frame = &im[i];
        assert_int_equal(ad_store_add_reject(st, &r[i], NULL, err, sizeof err), 0);
        assert_true(r[i].image_bytes > 400 * 1024);
    }
    long long bytes = 0;
    assert_int_equal(ad_store_image_bytes(st, &bytes, err, sizeof err), 0);
    assert_true(bytes > 1024 * 1024);
    long deleted = 0;
    assert_int_equal(ad_store_retention(st, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 1);
    assert_false(file_exists(r[0].image_path));
    assert_true(file_exists(r[1].image_path));
    assert_true(file_exists(r[2].image_path));
    assert_int_equal(ad_store_image_bytes(st, &bytes, err, sizeof err), 0);
    assert_true(bytes <= 1024 * 1024);
    assert_int_equal(bytes, r[1].image_bytes + r[2].image_bytes);
    ad_store_close(st);
    sqlite3 *db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), 3);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects WHERE image_path IS NULL"), 1);
    assert_int_equal(q_int(db, "SELECT frame_seq FROM rejects WHERE image_path IS NULL"), 0);
    sqlite3_close(db);
    for (int i = 0; i < 3; i++) ad_image_free(&im[i]);
}

/* Overwrites everything after the first page of `path` (the schema) with
 * garbage, the way a bad sector damages a table. */
static void damage_after_first_page(const char *path, int page_size)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_true(size >= 2L * page_size);
    assert_int_equal(fseek(fp, page_size, SEEK_SET), 0);
    for (long i = page_size; i < size; i++) fputc(0x5a, fp);
    assert_int_equal(fclose(fp), 0);
}

/* The database is damaged (SQLite: malformed): the write that finds it
 * reports RETRY, the next moves the file aside (kept whole, with a name
 * saying why) and records into a new reject log. */
static void test_damaged_database_moved_aside(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    f->opt.save_images = false;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_reject r[3];
    const ad_reject *rows[3];
    for (int i = 0; i < 3; i++) {
        make_reject(&r[i], "2026-11-25 10:00:00.000", (uint64_t)i, 0.7);
        rows[i] = &r[i];
    }
    assert_int_equal(ad_store_insert_rejects(st, rows, 3, err, sizeof err), 0);
    sqlite3 *db = open_raw(f->db);
    int page = (int)q_int(db, "PRAGMA page_size");
    sqlite3_close(db);
    ad_store_close(st); /* the last connection: the WAL is checkpointed into the file */
    damage_after_first_page(f->db, page);
    struct stat damaged;
    assert_int_equal(stat(f->db, &damaged), 0);

    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    ad_reject later;
    make_reject(&later, "2026-11-25 10:00:05.000", 9, 0.9);
    const ad_reject *one[1] = {&later};
    assert_int_equal(ad_store_insert_rejects(st, one, 1, err, sizeof err), AD_STORE_RETRY);
    assert_non_null(strstr(err, "malformed"));
    assert_non_null(strstr(err, "moved aside"));
    assert_int_equal(ad_store_insert_rejects(st, one, 1, err, sizeof err), 0);
    ad_store_close(st);

    /* the new log holds the row; the damaged file is beside it, untouched */
    db = open_raw(f->db);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM rejects"), 1);
    assert_int_equal(q_int(db, "SELECT frame_seq FROM rejects WHERE id = 1"), 9);
    sqlite3_close(db);
    char folder[1300];
    snprintf(folder, sizeof folder, "%s/sub", f->dir);
    DIR *d = opendir(folder);
    assert_non_null(d);
    int aside = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "line3.db.corrupt-", 17) || strstr(e->d_name, "-wal") ||
            strstr(e->d_name, "-shm"))
            continue;
        char p[1600];
        snprintf(p, sizeof p, "%s/%s", folder, e->d_name);
        struct stat sb;
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_size, damaged.st_size);
        assert_int_equal(sb.st_ino, damaged.st_ino); /* renamed, not copied or rewritten */
        aside++;
    }
    closedir(d);
    assert_int_equal(aside, 1);
}

static void insert_one(ad_store *st, uint64_t seq)
{
    char err[AD_ERRLEN];
    ad_reject r;
    make_reject(&r, "2026-11-25 10:00:00.000", seq, 0.7);
    const ad_reject *rows[1] = {&r};
    if (ad_store_insert_rejects(st, rows, 1, err, sizeof err) != 0) fail_msg("%s", err);
}

static long long count_in_db(const char *path, const char *sql)
{
    sqlite3 *db = open_raw(path);
    long long v = q_int(db, sql);
    sqlite3_close(db);
    return v;
}

/* The open database is renamed (an operator rotating the log), renamed while
 * another process holds it open, or deleted: the next write goes to a new
 * log at the configured path, and the moved file holds every row it got
 * (its WAL folded in). */
static void test_moved_database_starts_new(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN], archive[1300], archive2[1300], wal[1400];
    snprintf(archive, sizeof archive, "%s/sub/archive.db", f->dir);
    snprintf(archive2, sizeof archive2, "%s/sub/archive2.db", f->dir);
    f->opt.save_images = false;
    assert_int_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    insert_one(st, 1);
    insert_one(st, 2);

    assert_int_equal(rename(f->db, archive), 0); /* mv line3.db archive.db */
    insert_one(st, 3);
    assert_int_equal(count_in_db(f->db, "SELECT COUNT(*) FROM rejects"), 1);
    assert_int_equal(count_in_db(f->db, "SELECT frame_seq FROM rejects"), 3);
    assert_int_equal(count_in_db(archive, "SELECT COUNT(*) FROM rejects"), 2);
    snprintf(wal, sizeof wal, "%s-wal", f->db);

    /* renamed while another process keeps it open: the -wal it keeps alive
     * at the old path must not become the new log's */
    sqlite3 *other = open_raw(f->db);
    assert_int_equal(q_int(other, "SELECT COUNT(*) FROM rejects"), 1);
    insert_one(st, 4);
    assert_int_equal(rename(f->db, archive2), 0);
    insert_one(st, 5);
    sqlite3_close(other);
    assert_int_equal(count_in_db(archive2, "SELECT COUNT(*) FROM rejects"), 2); /* 3 and 4 */
    assert_int_equal(count_in_db(f->db, "SELECT COUNT(*) FROM rejects"), 1);
    assert_int_equal(count_in_db(f->db, "SELECT frame_seq FROM rejects"), 5);

    /* deleted while open */
    assert_int_equal(unlink(f->db), 0);
    insert_one(st, 6);
    ad_store_close(st);
    assert_int_equal(count_in_db(f->db, "SELECT COUNT(*) FROM rejects"), 1);
    assert_int_equal(count_in_db(f->db, "SELECT frame_seq FROM rejects"), 6);
}

/* A file that never was a reject log (not a database at all) is refused at
 * open with a message saying what to do, and left as it was. */
static void test_foreign_file_refused(void **state)
{
    fx *f = *state;
    char folder[1300], err[AD_ERRLEN];
    snprintf(folder, sizeof folder, "%s/sub", f->dir);
    assert_int_equal(mkdir(folder, 0755), 0);
    char *text = ad_xmalloc(8193);
    for (int i = 0; i < 8192; i++) text[i] = (char)('a' + i % 26);
    text[8192] = 0;
    free(ts_write_text(folder, "line3.db", text));
    ad_store *st = NULL;
    f->opt.save_images = false;
    assert_int_not_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    assert_null(st);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "not a database"));
    assert_non_null(strstr(err, "reject_log.database must name an anomalyd reject log"));
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ad_read_file(f->db, 1 << 20, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 8192);
    assert_memory_equal(data, text, 8192);
    free(data);
    free(text);
}

static void test_bad_paths(void **state)
{
    fx *f = *state;
    ad_store *st = NULL;
    char err[AD_ERRLEN];
    f->opt.database[0] = 0;
    assert_int_not_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    assert_non_null(strstr(err, "reject_log.database"));
    /* The database's folder is a file. */
    char *file = ts_write_text(f->dir, "plainfile", "x");
    snprintf(f->opt.database, sizeof f->opt.database, "%s/x.db", file);
    assert_int_not_equal(ad_store_open(&st, &f->opt, err, sizeof err), 0);
    assert_non_null(strstr(err, "plainfile"));
    assert_null(st);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_1_log_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_with_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_skipped_row_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_while_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minute_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_database_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_database_starts_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

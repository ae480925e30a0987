/* The reject log: SQLite rows + durable PNG files, retention. See store.h. */
#include "anomalyd/store.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "anomalyd/util.h"
#include "store_internal.h"

#define DEFAULT_BUSY_MS 2000

struct ad_store {
    char *db_path;
    char *image_dir;
    bool save_images;
    int retention_days;
    long max_megabytes;
    int busy_ms;
    sqlite3 *db;
    bool need_reopen;         /* last operation failed in a way a reopen may cure */
    bool opened;              /* this path opened as our reject log at least once */
    bool corrupt;             /* SQLite found it damaged: move it aside, start anew */
    bool moved;               /* the open file was renamed or deleted: start anew */
    sqlite3_stmt *ins_reject, *ins_minute;
};

static const char *SCHEMA_V1[] = {
    "CREATE TABLE rejects ("
    " id INTEGER PRIMARY KEY,"
    " ts TEXT NOT NULL,"             /* UTC 'YYYY-MM-DD HH:MM:SS.SSS' */
    " line TEXT NOT NULL,"
    " camera TEXT NOT NULL,"
    " frame_seq INTEGER NOT NULL,"
    " score REAL NOT NULL,"
    " threshold REAL NOT NULL,"
    " box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER," /* frame pixels, NULL = no box */
    " area INTEGER NOT NULL,"
    " image_path TEXT,"
    " heatmap_path TEXT,"
    " image_bytes INTEGER NOT NULL DEFAULT 0,"
    " model_sha256 TEXT NOT NULL)",
    "CREATE INDEX rejects_ts ON rejects(ts)",
    "CREATE TABLE counters ("
    " id INTEGER PRIMARY KEY,"
    " minute TEXT NOT NULL,"         /* UTC 'YYYY-MM-DD HH:MM' */
    " line TEXT NOT NULL,"
    " seconds REAL NOT NULL,"
    " captured INTEGER NOT NULL, inspected INTEGER NOT NULL, dropped INTEGER NOT NULL,"
    " rejects INTEGER NOT NULL, images_skipped INTEGER NOT NULL,"
    " score_p50 REAL, score_p90 REAL, score_p99 REAL, score_max REAL,"
    " latency_ms_p50 REAL, latency_ms_p99 REAL, latency_ms_max REAL)",
    "CREATE INDEX counters_minute ON counters(minute)",
    "PRAGMA user_version = 1",
    NULL,
};

/* Version 2: which part a row is (station triggers: one verdict per part).
 * Rows of version 1 keep NULL there; readers of version 1 columns never
 * notice the new ones. */
static const char *SCHEMA_V2[] = {
    "ALTER TABLE rejects ADD COLUMN part INTEGER",        /* from 1 since the daemon started */
    "ALTER TABLE rejects ADD COLUMN part_id TEXT",        /* the trigger's part id, NULL = none */
    "ALTER TABLE rejects ADD COLUMN trigger TEXT",        /* continuous, part, modbus, mqtt */
    "PRAGMA user_version = 2",
    NULL,
};

/* What takes a log from version i to i + 1. */
static const char *const *const MIGRATIONS[] = {SCHEMA_V1, SCHEMA_V2};
_Static_assert(sizeof MIGRATIONS / sizeof MIGRATIONS[0] == AD_STORE_SCHEMA_VERSION, "a migration per version");

/* Conditions that may go away by themselves or after a reopen. */
static bool transient(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        return true;
    default:
        return false;
    }
}

static int fail(ad_store *st, int rc, char *err, size_t errlen, const char *what)
{
    /* A damaged file (or, once it was ours, one that no longer reads as a
     * database) will not heal: the next call moves it aside and starts a
     * new reject log, so rows keep being recorded (see quarantine()). */
    if ((rc & 0xff) == SQLITE_CORRUPT || ((rc & 0xff) == SQLITE_NOTADB && st->opened)) {
        ad_err(err, errlen, "%s: %s: %s; the file will be moved aside and a new reject log "
               "started", st->db_path, what, sqlite3_errstr(rc));
        st->corrupt = true;
        st->need_reopen = true;
        return AD_STORE_RETRY;
    }
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB) { /* never ours so far: maybe someone else's file */
        ad_err(err, errlen, "%s: %s: %s; reject_log.database must name an anomalyd reject log "
               "or a file that does not exist yet (if this was the reject log, move it away "
               "and a new one is started)", st->db_path, what, msg);
        return AD_STORE_ERROR;
    }
    /* SQLite says "disk I/O error" for a full disk as for a read-only one;
     * the OS error behind it tells the operator which. */
    int sys = st->db ? sqlite3_system_errno(st->db) : 0;
    if (sys && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN))
        ad_err(err, errlen, "%s: %s: %s (%s)", st->db_path, what, msg, strerror(sys));
    else
        ad_err(err, errlen, "%s: %s: %s", st->db_path, what, msg);
    if (transient(rc)) {
        st->need_reopen = (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED;
        return AD_STORE_RETRY;
    }
    return AD_STORE_ERROR;
}

/* Runs one constant statement (no values bound; prepared like every other). */
static int exec1(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int query_int(sqlite3 *db, const char *sql, long long *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

static void db_close(ad_store *st)
{
    sqlite3_finalize(st->ins_reject);
    sqlite3_finalize(st->ins_minute);
    st->ins_reject = st->ins_minute = NULL;
    if (st->db) sqlite3_close(st->db);
    st->db = NULL;
}

int ad_store_newer_schema_error(const char *db_path, long long version, char *err, size_t errlen)
{
    ad_err(err, errlen,
           "%s: the reject log has schema version %lld, written by a newer anomalyd; "
           "this build knows up to version %d. Upgrade anomalyd or point "
           "reject_log.database at another file",
           db_path, version, AD_STORE_SCHEMA_VERSION);
    return AD_STORE_ERROR;
}

static int migrate(ad_store *st, char *err, size_t errlen)
{
    long long version = 0;
    int rc = query_int(st->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "cannot read the schema version");
    if (version > AD_STORE_SCHEMA_VERSION)
        return ad_store_newer_schema_error(st->db_path, version, err, errlen);
    if (version == AD_STORE_SCHEMA_VERSION) return 0;

    rc = exec1(st->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "cannot start the schema migration");
    /* Another process may have migrated while we waited for the lock. */
    long long from = version;
    rc = query_int(st->db, "PRAGMA user_version", &from);
    for (long long v = from; rc == SQLITE_OK && v >= 0 && v < AD_STORE_SCHEMA_VERSION; v++)
        for (int i = 0; MIGRATIONS[v][i] && rc == SQLITE_OK; i++) rc = exec1(st->db, MIGRATIONS[v][i]);
    if (rc == SQLITE_OK) rc = exec1(st->db, "COMMIT");
    if (rc != SQLITE_OK) {
        int e = fail(st, rc, err, errlen, "cannot create the schema");
        exec1(st->db, "ROLLBACK");
        return e;
    }
    if (from == 0)
        ad_log(AD_LOG_INFO, "%s: created reject log, schema version %d", st->db_path, AD_STORE_SCHEMA_VERSION);
    else if (from < AD_STORE_SCHEMA_VERSION)
        ad_log(AD_LOG_INFO, "%s: reject log migrated from schema version %lld to %d (rows kept)", st->db_path,
               from, AD_STORE_SCHEMA_VERSION);
    return 0;
}

static int db_open(ad_store *st, char *err, size_t errlen)
{
    st->need_reopen = false;
    int rc = sqlite3_open_v2(st->db_path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int e = fail(st, rc, err, errlen, "cannot open the database");
        db_close(st);
        return e;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, st->busy_ms);
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        ad_err(err, errlen, "%s: the database opens read-only (read-only file system, or no "
               "write permission for this user)", st->db_path);
        db_close(st);
        st->need_reopen = true;
        return AD_STORE_RETRY;
    }
    const char *step = "cannot switch to WAL mode";
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(s, 0);
            rc = (mode && strcmp(mode, "wal") == 0) ? SQLITE_OK : SQLITE_CANTOPEN;
        }
        sqlite3_finalize(s);
    }
    /* FULL: the WAL is synced at every commit, so a committed reject survives
     * power loss, not only a crash (NORMAL would only promise the latter). */
    if (rc == SQLITE_OK) {
        step = "cannot set synchronous=FULL";
        rc = exec1(st->db, "PRAGMA synchronous=FULL");
    }
    if (rc != SQLITE_OK) {
        int e = fail(st, rc, err, errlen, step);
        db_close(st);
        return e;
    }
    int e = migrate(st, err, errlen);
    if (e != 0) {
        db_close(st);
        return e;
    }
    rc = sqlite3_prepare_v3(st->db,
                            "INSERT INTO rejects (ts, line, camera, frame_seq, score, threshold,"
                            " box_x, box_y, box_w, box_h, area, image_path, heatmap_path,"
                            " image_bytes, model_sha256, part, part_id, trigger)"
                            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            -1, SQLITE_PREPARE_PERSISTENT, &st->ins_reject, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(st->db,
                                "INSERT INTO counters (minute, line, seconds, captured, inspected,"
                                " dropped, rejects, images_skipped, score_p50, score_p90,"
                                " score_p99, score_max, latency_ms_p50, latency_ms_p99,"
                                " latency_ms_max) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                -1, SQLITE_PREPARE_PERSISTENT, &st->ins_minute, NULL);
    if (rc != SQLITE_OK) {
        e = fail(st, rc, err, errlen, "cannot prepare statements");
        db_close(st);
        return e;
    }
    st->opened = true;
    return 0;
}

/* Renames the database and its -wal, -shm, -journal (those that exist) to
 * PATH.TAG-YYYYMMDDTHHMMSSZ plus the same suffix, so a WAL stays paired with
 * its file. Fills aside (cap bytes) and *moved (may be NULL) with the count
 * of files renamed. Returns 0 or the errno of the first rename that failed. */
static int move_aside(ad_store *st, const char *tag, char *aside, size_t cap, int *moved)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(aside, cap, "%s.%s-%s", st->db_path, tag, stamp);
    for (int n = 1; access(aside, F_OK) == 0 && n < 100; n++) /* twice in one second */
        snprintf(aside, cap, "%s.%s-%s.%d", st->db_path, tag, stamp, n);
    size_t len = strlen(aside) + 16;
    char *from = ad_xmalloc(len), *to = ad_xmalloc(len);
    int e = 0, n = 0;
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0] && !e; i++) {
        snprintf(from, len, "%s%s", st->db_path, sfx[i]);
        snprintf(to, len, "%s%s", aside, sfx[i]);
        if (rename(from, to) == 0)
            n++;
        else if (errno != ENOENT)
            e = errno;
    }
    if (moved) *moved = n;
    free(from);
    free(to);
    char why[AD_ERRLEN];
    if (!e && ad_fsync_parent(st->db_path, why, sizeof why) != 0)
        ad_log(AD_LOG_WARN, "%s: moved aside, but the move may not survive a power cut: %s",
               st->db_path, why);
    return e;
}

/* Moves a damaged database aside (PATH.corrupt-...), nothing deleted, so the
 * next open starts a new reject log. The connection is closed. Returns 0, or
 * AD_STORE_RETRY when the rename fails (tried again on the next call). */
static int quarantine(ad_store *st, char *err, size_t errlen)
{
    size_t cap = strlen(st->db_path) + 64;
    char *aside = ad_xmalloc(cap);
    int e = move_aside(st, "corrupt", aside, cap, NULL), rc = 0;
    if (e) {
        ad_err(err, errlen, "%s: the reject log is damaged, and moving it aside to %s failed: "
               "%s", st->db_path, aside, strerror(e));
        rc = AD_STORE_RETRY;
    } else {
        ad_log(AD_LOG_ERR,
               "%s: the reject log is damaged; moved it aside to %s (nothing deleted: try "
               "`sqlite3 %s .recover`) and started a new one. Images of its rows stay in "
               "the image folder; retention no longer counts them",
               st->db_path, aside, aside);
        st->corrupt = false;
    }
    free(aside);
    return rc;
}

/* Was the open database file renamed or deleted (an operator rotating or
 * removing the log)? Writing on would put rows where nobody looks, or into
 * a file that is gone. */
static bool db_moved(ad_store *st)
{
    int moved = 0;
    return sqlite3_file_control(st->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
           moved;
}

static int ensure_open(ad_store *st, char *err, size_t errlen)
{
    if (st->db && !st->need_reopen) {
        if (!db_moved(st)) return 0;
        ad_log(AD_LOG_WARN, "%s: the reject log was moved or deleted while open; rows go to a "
               "new one at that path", st->db_path);
        /* Fold the WAL into the moved file (through our descriptor), so it
         * holds every row it committed even when another process keeps the
         * -wal at the old path alive. */
        int rc = sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (rc != SQLITE_OK)
            ad_log(AD_LOG_WARN, "%s: the moved reject log's WAL was not folded into it: %s",
                   st->db_path, sqlite3_errmsg(st->db));
        st->moved = true;
    }
    /* Closing the last connection folds the WAL into the file it belongs
     * to (renamed or not) and removes the -wal. */
    db_close(st);
    if (st->moved) {
        /* A -wal left at the path (another process still has the moved file
         * open) belongs to the moved file: a new log must not take it up. */
        int e = 0, n = 0;
        size_t cap = strlen(st->db_path) + 64;
        char *aside = ad_xmalloc(cap);
        if (access(st->db_path, F_OK) != 0 && errno == ENOENT)
            e = move_aside(st, "orphan", aside, cap, &n);
        if (e)
            ad_err(err, errlen, "%s: the reject log was moved or deleted, and moving its leftover "
                   "-wal/-shm aside to %s failed: %s", st->db_path, aside, strerror(e));
        else if (n > 0)
            ad_log(AD_LOG_INFO, "%s: kept the moved log's leftover -wal/-shm as %s-wal/-shm (the "
                   "moved file holds every row this daemon wrote; they matter only to a program "
                   "that still has it open)", st->db_path, aside);
        free(aside);
        if (e) {
            st->need_reopen = true;
            return AD_STORE_RETRY;
        }
        st->moved = false;
    }
    if (st->corrupt) {
        int e = quarantine(st, err, errlen);
        if (e != 0) {
            st->need_reopen = true;
            return e;
        }
    }
    return db_open(st, err, errlen);
}

void ad_store_options_from_config(ad_store_options *opt, const ad_config *cfg)
{
    memset(opt, 0, sizeof *opt);
    snprintf(opt->database, sizeof opt->database, "%s", cfg->reject_log.database);
    snprintf(opt->image_dir, sizeof opt->image_dir, "%s", cfg->reject_log.image_dir);
    opt->save_images = cfg->reject_log.save_images;
    opt->retention_days = cfg->reject_log.retention_days;
    opt->max_megabytes = cfg->reject_log.max_megabytes;
}

bool ad_store_options_equal(const ad_store_options *a, const ad_store_options *b)
{
    return strcmp(a->database, b->database) == 0 && strcmp(a->image_dir, b->image_dir) == 0 &&
           a->save_images == b->save_images && a->retention_days == b->retention_days &&
           a->max_megabytes == b->max_megabytes;
}

int ad_store_open(ad_store **out, const ad_store_options *opt, char *err, size_t errlen)
{
    *out = NULL;
    if (!opt->database[0]) return ad_err(err, errlen, "reject_log.database is empty");
    if (opt->save_images && !opt->image_dir[0])
        return ad_err(err, errlen, "reject_log.image_dir is empty but save_images is on");

    ad_store *st = ad_xcalloc(1, sizeof *st);
    st->db_path = ad_xstrdup(opt->database);
    st->image_dir = ad_xstrdup(opt->image_dir);
    st->save_images = opt->save_images;
    st->retention_days = opt->retention_days;
    st->max_megabytes = opt->max_megabytes;
    st->busy_ms = DEFAULT_BUSY_MS;

    char *copy = ad_xstrdup(opt->database);
    int rc = ad_mkdirs(dirname(copy), 0755, err, errlen);
    free(copy);
    if (rc != 0) goto fail;
    if (opt->save_images) {
        if (ad_mkdirs(st->image_dir, 0755, err, errlen) != 0) goto fail;
        /* Rows name files by canonical path ("a/../b" from config-relative
         * paths would work but reads badly in queries). */
        char *canon = realpath(st->image_dir, NULL);
        if (canon) {
            free(st->image_dir);
            st->image_dir = canon;
        }
    }
    int e = db_open(st, err, errlen);
    if (e == AD_STORE_RETRY) {
        /* Locked by another writer, read-only or failing right now: start
         * anyway; rows are held by the caller and the open is retried on
         * each write. A newer schema or a bad path stays fatal. */
        ad_log(AD_LOG_WARN, "%s; will retry on the first write", err);
        st->need_reopen = true;
        e = 0;
    }
    if (e != 0) goto fail;
    *out = st;
    return 0;
fail:
    ad_store_close(st);
    return -1;
}

void ad_store_close(ad_store *st)
{
    if (!st) return;
    db_close(st);
    free(st->db_path);
    free(st->image_dir);
    free(st);
}

void ad_store_set_busy_timeout(ad_store *st, int ms)
{
    st->busy_ms = ms;
    if (st->db) sqlite3_busy_timeout(st->db, ms);
}

/* ---- images ---- */

static int write_png(const char *path, const ad_image *im, long *bytes, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (ad_png_encode(im, &data, &len, err, errlen) != 0) return -1;
    int rc = ad_write_file_durable(path, data, len, err, errlen);
    free(data);
    if (rc == 0) *bytes += (long)len;
    return rc;
}

int ad_store_save_images(ad_store *st, ad_reject *r, char *err, size_t errlen)
{
    r->image_path[0] = r->heatmap_path[0] = 0;
    r->image_bytes = 0;
    if (!st->save_images || (!r->frame && !r->heatmap)) return 0;
    if (strlen(r->ts) < 23) return ad_err(err, errlen, "reject timestamp '%s' is malformed", r->ts);

    /* image_dir/2026-11-25/104335.123-line3-000042-frame.png */
    char day[16], stamp[16];
    memcpy(day, r->ts, 10);
    day[10] = 0;
    snprintf(stamp, sizeof stamp, "%.2s%.2s%.2s.%.3s", r->ts + 11, r->ts + 14, r->ts + 17, r->ts + 20);
    char dir[1024];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", st->image_dir, day) >= sizeof dir)
        return ad_err(err, errlen, "%s: image folder path too long", st->image_dir);
    struct stat sb;
    bool existed = stat(dir, &sb) == 0;
    if (ad_mkdirs(dir, 0755, err, errlen) != 0) return -1;
    if (!existed && ad_fsync_dir(st->image_dir, err, errlen) != 0) return -1;

    char frame_path[1024], heat_path[1024];
    int n1 = snprintf(frame_path, sizeof frame_path, "%s/%s-%s-%06llu-frame.png", dir, stamp,
                      r->line, (unsigned long long)r->frame_seq);
    int n2 = snprintf(heat_path, sizeof heat_path, "%s/%s-%s-%06llu-heatmap.png", dir, stamp,
                      r->line, (unsigned long long)r->frame_seq);
    if ((size_t)n1 >= sizeof frame_path || (size_t)n2 >= sizeof heat_path)
        return ad_err(err, errlen, "%s: image path too long", dir);

    long bytes = 0;
    if (r->frame) {
        if (write_png(frame_path, r->frame, &bytes, err, errlen) != 0) return -1;
    }
    if (r->heatmap) {
        if (write_png(heat_path, r->heatmap, &bytes, err, errlen) != 0) {
            if (r->frame) unlink(frame_path);
            return -1;
        }
    }
    if (r->frame) memcpy(r->image_path, frame_path, sizeof frame_path);
    if (r->heatmap) memcpy(r->heatmap_path, heat_path, sizeof heat_path);
    r->image_bytes = bytes;
    return 0;
}

/* ---- rows ---- */

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static int insert_one(sqlite3_stmt *s, const ad_reject *r)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_text(s, 1, r->ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, r->line, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, r->camera, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->frame_seq);
    sqlite3_bind_double(s, 5, r->score);
    sqlite3_bind_double(s, 6, r->threshold);
    if (r->box_w > 0 && r->box_h > 0) {
        sqlite3_bind_int(s, 7, r->box_x);
        sqlite3_bind_int(s, 8, r->box_y);
        sqlite3_bind_int(s, 9, r->box_w);
        sqlite3_bind_int(s, 10, r->box_h);
    }
    sqlite3_bind_int64(s, 11, r->area);
    bind_text_or_null(s, 12, r->image_path);
    bind_text_or_null(s, 13, r->heatmap_path);
    sqlite3_bind_int64(s, 14, r->image_bytes);
    sqlite3_bind_text(s, 15, r->model_sha256, -1, SQLITE_TRANSIENT);
    if (r->part > 0) sqlite3_bind_int64(s, 16, r->part);
    bind_text_or_null(s, 17, r->part_id);
    bind_text_or_null(s, 18, r->trigger);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int ad_store_insert_rejects(ad_store *st, const ad_reject *const *rows, size_t n,
                            char *err, size_t errlen)
{
    if (n == 0) return 0;
    int e = ensure_open(st, err, errlen);
    if (e != 0) return e;
    int rc = exec1(st->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "cannot start a transaction");
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) rc = insert_one(st->ins_reject, rows[i]);
    if (rc == SQLITE_OK) rc = exec1(st->db, "COMMIT");
    if (rc != SQLITE_OK) {
        e = fail(st, rc, err, errlen, "cannot insert reject rows");
        if (!sqlite3_get_autocommit(st->db)) exec1(st->db, "ROLLBACK");
        return e;
    }
    return 0;
}

int ad_store_add_reject(ad_store *st, ad_reject *r, bool *images_skipped, char *err, size_t errlen)
{
    if (images_skipped) *images_skipped = false;
    if (!r->image_path[0] && !r->heatmap_path[0] && st->save_images && (r->frame || r->heatmap)) {
        char ierr[AD_ERRLEN];
        if (ad_store_save_images(st, r, ierr, sizeof ierr) != 0) {
            ad_log(AD_LOG_WARN, "reject of frame %llu: images skipped: %s",
                   (unsigned long long)r->frame_seq, ierr);
            if (images_skipped) *images_skipped = true;
        }
    }
    const ad_reject *one = r;
    return ad_store_insert_rejects(st, &one, 1, err, errlen);
}

int ad_store_add_minute(ad_store *st, const ad_minute_counts *c, char *err, size_t errlen)
{
    int e = ensure_open(st, err, errlen);
    if (e != 0) return e;
    sqlite3_stmt *s = st->ins_minute;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_text(s, 1, c->minute, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, c->line, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 3, c->seconds);
    sqlite3_bind_int64(s, 4, c->captured);
    sqlite3_bind_int64(s, 5, c->inspected);
    sqlite3_bind_int64(s, 6, c->dropped);
    sqlite3_bind_int64(s, 7, c->rejects);
    sqlite3_bind_int64(s, 8, c->images_skipped);
    if (c->inspected > 0) {
        sqlite3_bind_double(s, 9, c->score_p50);
        sqlite3_bind_double(s, 10, c->score_p90);
        sqlite3_bind_double(s, 11, c->score_p99);
        sqlite3_bind_double(s, 12, c->score_max);
        sqlite3_bind_double(s, 13, c->latency_ms_p50);
        sqlite3_bind_double(s, 14, c->latency_ms_p99);
        sqlite3_bind_double(s, 15, c->latency_ms_max);
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fail(st, rc, err, errlen, "cannot insert a counters row");
    return 0;
}

/* ---- retention ---- */

static long unlink_files(const char *a, const char *b)
{
    long n = 0;
    if (a && *a && unlink(a) == 0) n++;
    if (b && *b && unlink(b) == 0) n++;
    return n;
}

/* Removes empty YYYY-MM-DD folders left behind by deletions. */
static void remove_empty_days(const char *image_dir)
{
    DIR *d = opendir(image_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 10 || e->d_name[4] != '-' || e->d_name[7] != '-') continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", image_dir, e->d_name);
        rmdir(path); /* fails harmlessly when not empty */
    }
    closedir(d);
}

/* Commits the retention transaction when rc is SQLITE_OK, else (or when the
 * commit fails) reports `what` and rolls back. */
static int finish_retention(ad_store *st, int rc, const char *what, char *err, size_t errlen)
{
    if (rc == SQLITE_OK) rc = exec1(st->db, "COMMIT");
    if (rc != SQLITE_OK) {
        int e = fail(st, rc, err, errlen, what);
        if (!sqlite3_get_autocommit(st->db)) exec1(st->db, "ROLLBACK");
        return e;
    }
    return 0;
}

static int retention_age(ad_store *st, long *deleted, char *err, size_t errlen)
{
    char modifier[32];
    snprintf(modifier, sizeof modifier, "-%d days", st->retention_days);
    sqlite3_stmt *sel = NULL, *del = NULL, *delc = NULL;
    int rc = exec1(st->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "retention: cannot start a transaction");
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT image_path, heatmap_path FROM rejects"
                            " WHERE ts < strftime('%Y-%m-%d %H:%M:%f', 'now', ?1)"
                            " AND (image_path IS NOT NULL OR heatmap_path IS NOT NULL)",
                            -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "DELETE FROM rejects WHERE ts < strftime('%Y-%m-%d %H:%M:%f', 'now', ?1)",
                                -1, &del, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "DELETE FROM counters WHERE minute < strftime('%Y-%m-%d %H:%M', 'now', ?1)",
                                -1, &delc, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(sel, 1, modifier, -1, SQLITE_TRANSIENT);
        while ((rc = sqlite3_step(sel)) == SQLITE_ROW)
            *deleted += unlink_files((const char *)sqlite3_column_text(sel, 0),
                                     (const char *)sqlite3_column_text(sel, 1));
        if (rc == SQLITE_DONE) {
            sqlite3_bind_text(del, 1, modifier, -1, SQLITE_TRANSIENT);
            rc = sqlite3_step(del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        }
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(delc, 1, modifier, -1, SQLITE_TRANSIENT);
            rc = sqlite3_step(delc) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        }
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_finalize(delc);
    return finish_retention(st, rc, "retention by age failed", err, errlen);
}

static int retention_size(ad_store *st, long *deleted, char *err, size_t errlen)
{
    long long total = 0;
    long long cap = (long long)st->max_megabytes * 1024 * 1024;
    int rc = query_int(st->db, "SELECT COALESCE(SUM(image_bytes), 0) FROM rejects", &total);
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "retention: cannot sum image sizes");
    if (total <= cap) return 0;

    sqlite3_stmt *sel = NULL, *upd = NULL;
    rc = exec1(st->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "retention: cannot start a transaction");
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT id, image_path, heatmap_path, image_bytes FROM rejects"
                            " WHERE image_bytes > 0 ORDER BY id",
                            -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                "UPDATE rejects SET image_path = NULL, heatmap_path = NULL,"
                                " image_bytes = 0 WHERE id = ?1",
                                -1, &upd, NULL);
    while (rc == SQLITE_OK && total > cap) {
        int s = sqlite3_step(sel);
        if (s == SQLITE_DONE) break;
        if (s != SQLITE_ROW) {
            rc = s;
            break;
        }
        *deleted += unlink_files((const char *)sqlite3_column_text(sel, 1),
                                 (const char *)sqlite3_column_text(sel, 2));
        total -= sqlite3_column_int64(sel, 3);
        sqlite3_reset(upd);
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
        if (sqlite3_step(upd) != SQLITE_DONE) rc = sqlite3_errcode(st->db);
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return finish_retention(st, rc, "retention by size failed", err, errlen);
}

int ad_store_retention(ad_store *st, long *files_deleted, char *err, size_t errlen)
{
    long deleted = 0;
    int e = ensure_open(st, err, errlen);
    if (e == 0 && st->retention_days > 0) e = retention_age(st, &deleted, err, errlen);
    if (e == 0 && st->max_megabytes > 0) e = retention_size(st, &deleted, err, errlen);
    if (deleted > 0 && st->save_images) remove_empty_days(st->image_dir);
    if (files_deleted) *files_deleted = deleted;
    return e;
}

int ad_store_image_bytes(ad_store *st, long long *bytes, char *err, size_t errlen)
{
    int e = ensure_open(st, err, errlen);
    if (e != 0) return e;
    int rc = query_int(st->db, "SELECT COALESCE(SUM(image_bytes), 0) FROM rejects", bytes);
    if (rc != SQLITE_OK) return fail(st, rc, err, errlen, "cannot sum image sizes");
    return 0;
}

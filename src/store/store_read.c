/* Reading the reject log: read-only, one snapshot, indexed periods. See
 * store.h. The writer (store.c) owns the schema; this file only reads it. */
#include "anomalyd/store.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/util.h"
#include "store_internal.h"

#define READ_BUSY_MS 2000

struct ad_store_reader {
    char *db_path;
    sqlite3 *db;
};

/* Every column the reader uses, so a database without them is refused at
 * open instead of half-way through a report. */
static const char *const SCHEMA_PROBE[] = {
    "SELECT id, ts, line, camera, frame_seq, score, threshold, box_x, box_y, box_w, box_h,"
    " area, image_path, heatmap_path, image_bytes, model_sha256 FROM rejects LIMIT 0",
    "SELECT minute, line, seconds, captured, inspected, dropped, rejects, images_skipped,"
    " score_p50, score_p90, score_p99, score_max, latency_ms_p50, latency_ms_p99,"
    " latency_ms_max FROM counters LIMIT 0",
    NULL,
};

static int read_fail(ad_store_reader *r, int rc, const char *what, char *err, size_t errlen)
{
    if ((rc & 0xff) == SQLITE_NOTADB)
        return ad_err(err, errlen, "%s: %s: %s; reject_log.database must name an anomalyd "
                      "reject log", r->db_path, what, sqlite3_errstr(rc));
    return ad_err(err, errlen, "%s: %s: %s", r->db_path, what,
                  r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
}

static int check_schema(ad_store_reader *r, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &s, NULL);
    long long version = -1;
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        version = sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK) return read_fail(r, rc, "cannot read the schema version", err, errlen);
    if (version > AD_STORE_SCHEMA_VERSION)
        return ad_store_newer_schema_error(r->db_path, version, err, errlen);
    if (version < 1)
        return ad_err(err, errlen, "%s: an SQLite database, but not an anomalyd reject log "
                      "(schema version %lld; the daemon writes version %d)", r->db_path,
                      version, AD_STORE_SCHEMA_VERSION);
    for (int i = 0; SCHEMA_PROBE[i]; i++) {
        rc = sqlite3_prepare_v2(r->db, SCHEMA_PROBE[i], -1, &s, NULL);
        sqlite3_finalize(s);
        if (rc != SQLITE_OK)
            return ad_err(err, errlen, "%s: not a complete anomalyd reject log of schema "
                          "version %lld: %s", r->db_path, version, sqlite3_errmsg(r->db));
    }
    return 0;
}

/* A log in WAL mode is read through its -shm file, which SQLite creates
 * beside it: in a folder nobody can write (a copy on a read-only stick, a
 * read-only mount) that fails. There, with no -wal file, nothing can be
 * writing the log, so it is opened as immutable instead: the URI for that,
 * or NULL where the plain open works. */
static char *frozen_uri(const char *db_path)
{
    char *copy = ad_xstrdup(db_path), *wal = ad_xmalloc(strlen(db_path) + 5);
    sprintf(wal, "%s-wal", db_path);
    bool frozen = access(dirname(copy), W_OK) != 0 && access(wal, F_OK) != 0;
    free(copy);
    free(wal);
    if (!frozen) return NULL;
    /* file:PATH?immutable=1 with %, ? and # (and bytes outside ASCII
     * printables) percent-encoded */
    char *uri = ad_xmalloc(3 * strlen(db_path) + 32), *o = uri;
    o += sprintf(o, "file:");
    for (const unsigned char *p = (const unsigned char *)db_path; *p; p++)
        o += (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7F)
                 ? sprintf(o, "%%%02X", *p)
                 : sprintf(o, "%c", *p);
    sprintf(o, "?immutable=1");
    return uri;
}

int ad_store_reader_open(ad_store_reader **out, const char *db_path, char *err, size_t errlen)
{
    *out = NULL;
    struct stat sb;
    if (!db_path || !*db_path) return ad_err(err, errlen, "reject_log.database is empty");
    if (stat(db_path, &sb) != 0)
        return ad_err(err, errlen, "%s: no reject log there (%s); the daemon creates it when it "
                      "starts: check reject_log.database in the config", db_path,
                      strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return ad_err(err, errlen, "%s: not a file; reject_log.database must name an anomalyd "
                      "reject log", db_path);

    ad_store_reader *r = ad_xcalloc(1, sizeof *r);
    r->db_path = ad_xstrdup(db_path);
    char *uri = frozen_uri(db_path);
    int rc = sqlite3_open_v2(uri ? uri : db_path, &r->db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK) {
        read_fail(r, rc, "cannot open the database read-only", err, errlen);
        goto fail;
    }
    sqlite3_extended_result_codes(r->db, 1);
    sqlite3_busy_timeout(r->db, READ_BUSY_MS);
    /* One read transaction for the reader's life: every query sees the same
     * snapshot while the daemon goes on committing (WAL). */
    rc = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        read_fail(r, rc, "cannot start a read transaction", err, errlen);
        goto fail;
    }
    if (check_schema(r, err, errlen) != 0) goto fail;
    *out = r;
    return 0;
fail:
    ad_store_reader_close(r);
    return -1;
}

void ad_store_reader_close(ad_store_reader *r)
{
    if (!r) return;
    if (r->db) {
        if (!sqlite3_get_autocommit(r->db)) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(r->db);
    }
    free(r->db_path);
    free(r);
}

/* Prepares sql and binds the period as ?1 (from) and ?2 (to). */
static int prepare_period(ad_store_reader *r, const char *sql, const char *from, const char *to,
                          sqlite3_stmt **s, char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v2(r->db, sql, -1, s, NULL);
    if (rc != SQLITE_OK) return read_fail(r, rc, "cannot prepare a query", err, errlen);
    sqlite3_bind_text(*s, 1, from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*s, 2, to, -1, SQLITE_TRANSIENT);
    return 0;
}

static void column_text(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const char *v = (const char *)sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", v ? v : "");
}

static double column_or_nan(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

/* Steps s to its end, calling row() for each row; finalizes s. */
static int walk(ad_store_reader *r, sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ctx),
                void *ctx, char *err, size_t errlen)
{
    int rc, stop = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((stop = row(s, ctx)) != 0) break;
    sqlite3_finalize(s);
    if (stop) return stop;
    if (rc != SQLITE_DONE) return read_fail(r, rc, "cannot read the reject log", err, errlen);
    return 0;
}

struct minute_walk {
    int (*each)(const ad_minute_counts *c, void *ctx);
    void *ctx;
};

static int minute_row(sqlite3_stmt *s, void *ctx)
{
    struct minute_walk *w = ctx;
    ad_minute_counts c;
    column_text(s, 0, c.minute, sizeof c.minute);
    column_text(s, 1, c.line, sizeof c.line);
    c.seconds = sqlite3_column_double(s, 2);
    c.captured = (long)sqlite3_column_int64(s, 3);
    c.inspected = (long)sqlite3_column_int64(s, 4);
    c.dropped = (long)sqlite3_column_int64(s, 5);
    c.rejects = (long)sqlite3_column_int64(s, 6);
    c.images_skipped = (long)sqlite3_column_int64(s, 7);
    c.score_p50 = column_or_nan(s, 8);
    c.score_p90 = column_or_nan(s, 9);
    c.score_p99 = column_or_nan(s, 10);
    c.score_max = column_or_nan(s, 11);
    c.latency_ms_p50 = column_or_nan(s, 12);
    c.latency_ms_p99 = column_or_nan(s, 13);
    c.latency_ms_max = column_or_nan(s, 14);
    return w->each(&c, w->ctx);
}

int ad_store_read_minutes(ad_store_reader *r, const char *from, const char *to,
                          int (*each)(const ad_minute_counts *c, void *ctx), void *ctx,
                          char *err, size_t errlen)
{
    /* minute 'YYYY-MM-DD HH:MM' covers 60 s: it overlaps the period when it
     * starts at or after from's minute and before `to` rounded up to a minute */
    char to_minute[32];
    int64_t t;
    if (strlen(to) < 16 || ad_utc_parse(to, &t) != 0)
        return ad_err(err, errlen, "period end '%s' is not a UTC time", to);
    if (t % 60 != 0 || (strlen(to) > 19 && strspn(to + 20, "0") != strlen(to + 20))) t += 60;
    ad_utc_format(t - t % 60, 0, to_minute);
    to_minute[16] = 0;
    sqlite3_stmt *s = NULL;
    if (prepare_period(r,
                       "SELECT minute, line, seconds, captured, inspected, dropped, rejects,"
                       " images_skipped, score_p50, score_p90, score_p99, score_max,"
                       " latency_ms_p50, latency_ms_p99, latency_ms_max FROM counters"
                       " WHERE minute >= substr(?1, 1, 16) AND minute < ?2"
                       " ORDER BY minute, id",
                       from, to_minute, &s, err, errlen) != 0)
        return -1;
    struct minute_walk w = {each, ctx};
    return walk(r, s, minute_row, &w, err, errlen);
}

struct brief_walk {
    int (*each)(const ad_reject_brief *b, void *ctx);
    void *ctx;
};

static int brief_row(sqlite3_stmt *s, void *ctx)
{
    struct brief_walk *w = ctx;
    const char *sha = (const char *)sqlite3_column_text(s, 2);
    const char *ts = (const char *)sqlite3_column_text(s, 3);
    ad_reject_brief b = {sqlite3_column_double(s, 0), sqlite3_column_double(s, 1),
                         sha ? sha : "", ts ? ts : ""};
    return w->each(&b, w->ctx);
}

int ad_store_read_briefs(ad_store_reader *r, const char *from, const char *to,
                         int (*each)(const ad_reject_brief *b, void *ctx), void *ctx,
                         char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    if (prepare_period(r,
                       "SELECT score, threshold, model_sha256, ts FROM rejects"
                       " WHERE ts >= ?1 AND ts < ?2 ORDER BY ts",
                       from, to, &s, err, errlen) != 0)
        return -1;
    struct brief_walk w = {each, ctx};
    return walk(r, s, brief_row, &w, err, errlen);
}

struct reject_list {
    ad_reject *rows;
    size_t n, cap;
};

static int reject_row(sqlite3_stmt *s, void *ctx)
{
    struct reject_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->rows = ad_xrealloc(l->rows, l->cap * sizeof *l->rows);
    }
    ad_reject *x = &l->rows[l->n++];
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(s, 0);
    column_text(s, 1, x->ts, sizeof x->ts);
    column_text(s, 2, x->line, sizeof x->line);
    column_text(s, 3, x->camera, sizeof x->camera);
    x->frame_seq = (uint64_t)sqlite3_column_int64(s, 4);
    x->score = sqlite3_column_double(s, 5);
    x->threshold = sqlite3_column_double(s, 6);
    if (sqlite3_column_type(s, 9) != SQLITE_NULL && sqlite3_column_type(s, 10) != SQLITE_NULL) {
        x->box_x = sqlite3_column_int(s, 7);
        x->box_y = sqlite3_column_int(s, 8);
        x->box_w = sqlite3_column_int(s, 9);
        x->box_h = sqlite3_column_int(s, 10);
    }
    x->area = (long)sqlite3_column_int64(s, 11);
    column_text(s, 12, x->image_path, sizeof x->image_path);
    column_text(s, 13, x->heatmap_path, sizeof x->heatmap_path);
    x->image_bytes = (long)sqlite3_column_int64(s, 14);
    column_text(s, 15, x->model_sha256, sizeof x->model_sha256);
    return 0;
}

int ad_store_read_rejects(ad_store_reader *r, const char *from, const char *to, bool by_score,
                          size_t limit, ad_reject **rows, size_t *n, char *err, size_t errlen)
{
    *rows = NULL;
    *n = 0;
    /* Newest first walks the ts index backwards and stops at the limit;
     * highest score first keeps the top `limit` of the period's rows. */
    const char *sql = by_score
        ? "SELECT id, ts, line, camera, frame_seq, score, threshold, box_x, box_y, box_w,"
          " box_h, area, image_path, heatmap_path, image_bytes, model_sha256 FROM rejects"
          " WHERE ts >= ?1 AND ts < ?2 ORDER BY score DESC, ts DESC LIMIT ?3"
        : "SELECT id, ts, line, camera, frame_seq, score, threshold, box_x, box_y, box_w,"
          " box_h, area, image_path, heatmap_path, image_bytes, model_sha256 FROM rejects"
          " WHERE ts >= ?1 AND ts < ?2 ORDER BY ts DESC LIMIT ?3";
    sqlite3_stmt *s = NULL;
    if (prepare_period(r, sql, from, to, &s, err, errlen) != 0) return -1;
    sqlite3_bind_int64(s, 3, limit > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    struct reject_list l = {0};
    int rc = walk(r, s, reject_row, &l, err, errlen);
    if (rc != 0) {
        free(l.rows);
        return rc;
    }
    *rows = l.rows;
    *n = l.n;
    return 0;
}

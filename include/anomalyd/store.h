/* The reject log: SQLite (WAL, prepared statements, busy timeout, schema
 * versioned by PRAGMA user_version) plus PNG files of each reject's ROI and
 * heat map under the image folder (one subfolder per UTC day), with retention
 * by age and total size.
 *
 * Durability: the database runs with synchronous=FULL, so a row is on disk
 * once its COMMIT returns (survives kill -9 and power loss). Images are
 * written durably (temp file, fsync, rename, fsync folder) BEFORE the row
 * that names them is committed, so a committed path always names a file.
 *
 * Retention: rows and their files older than retention_days are deleted; when
 * the images of the remaining rows exceed max_megabytes, the oldest rows'
 * files are deleted and their paths set to NULL (the rows stay: they are
 * small and are the record of the reject). Counter rows follow retention_days.
 *
 * Not thread-safe: one writer thread owns an ad_store. */
#ifndef ANOMALYD_STORE_H
#define ANOMALYD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/config.h"
#include "anomalyd/image.h"

#define AD_STORE_SCHEMA_VERSION 2

/* Return codes besides 0: AD_STORE_RETRY means the database is busy, locked,
 * read-only, full or failing I/O right now: nothing was recorded, keep the
 * data and try again later. AD_STORE_ERROR is permanent for this data. */
enum { AD_STORE_ERROR = -1, AD_STORE_RETRY = -2 };

typedef struct ad_reject {
    long long id;             /* row id; filled by ad_store_read_rejects only */
    char ts[32];              /* UTC 'YYYY-MM-DD HH:MM:SS.SSS' */
    char line[64];
    char camera[256];
    uint64_t frame_seq;
    double score, threshold;
    int box_x, box_y, box_w, box_h; /* frame pixels; w = h = 0 if no box */
    long area;                /* frame pixels over the pixel threshold */
    char model_sha256[65];
    long part;                /* part number since the daemon started (0 = NULL: rows of version 1) */
    char part_id[64];         /* the trigger's part id ("" = NULL) */
    char trigger[16];         /* continuous, part, modbus, mqtt ("" = NULL) */
    const ad_image *frame;    /* ROI image to save, or NULL */
    const ad_image *heatmap;  /* overlay to save, or NULL */
    /* Filled by ad_store_save_images (empty = no file); ad_store_add_reject
     * fills them itself. */
    char image_path[1024];
    char heatmap_path[1024];
    long image_bytes;         /* bytes of both files, for the size cap */
} ad_reject;

typedef struct ad_minute_counts {
    char minute[32];          /* 'YYYY-MM-DD HH:MM' UTC */
    char line[64];
    double seconds;           /* length of the interval (shorter at start/stop) */
    long captured, inspected, dropped, rejects, images_skipped;
    double score_p50, score_p90, score_p99, score_max;
    double latency_ms_p50, latency_ms_p99, latency_ms_max; /* inspection time */
} ad_minute_counts;

typedef struct ad_store ad_store;

/* Where and how the log is kept, copied out of the config (plain data:
 * copy by assignment). A new field belongs in ad_store_options_equal too. */
typedef struct ad_store_options {
    char database[AD_PATH_MAX];   /* the SQLite file */
    char image_dir[AD_PATH_MAX];  /* PNG folder; may be empty when save_images is off */
    bool save_images;
    int retention_days;           /* 0 = keep forever */
    long max_megabytes;           /* image size cap, 0 = no cap */
} ad_store_options;

/* The reject_log section of cfg. */
void ad_store_options_from_config(ad_store_options *opt, const ad_config *cfg);
/* True when both name the same log kept the same way (field by field; the
 * daemon's reload reopens the log only when this is false). */
bool ad_store_options_equal(const ad_store_options *a, const ad_store_options *b);

/* Opens/creates the database (WAL, synchronous=FULL, busy timeout 2 s),
 * migrates it to AD_STORE_SCHEMA_VERSION (refusing a newer one), creates the
 * image folder. The store keeps its own copy of opt.
 * A database that is only unavailable for now (locked, read-only, I/O
 * error) does not fail the open: a warning is logged and every write retries
 * the open (returning AD_STORE_RETRY until it works). */
int ad_store_open(ad_store **out, const ad_store_options *opt, char *err, size_t errlen);
void ad_store_close(ad_store *st);
void ad_store_set_busy_timeout(ad_store *st, int ms);

/* Writes r->frame and r->heatmap (those non-NULL) as PNGs under
 * image_dir/YYYY-MM-DD/ and fills r->image_path, heatmap_path, image_bytes.
 * Returns 0, or -1 with err filled and the paths left empty (no partial files
 * left behind). Does nothing when images are disabled. */
int ad_store_save_images(ad_store *st, ad_reject *r, char *err, size_t errlen);

/* Inserts n rows in one transaction (paths as filled by save_images).
 * Returns 0 once committed, AD_STORE_RETRY (nothing committed; keep the rows)
 * or AD_STORE_ERROR. After a RETRY the connection is reopened on the next
 * call, so a database that became writable again is picked up. */
int ad_store_insert_rejects(ad_store *st, const ad_reject *const *rows, size_t n,
                            char *err, size_t errlen);

/* save_images (if r->frame or r->heatmap and images are enabled) then insert
 * one row. If images cannot be written the row is still inserted with NULL
 * paths and *images_skipped is set. Returns 0 once the row is committed, or
 * AD_STORE_RETRY / AD_STORE_ERROR (images already written are kept in r). */
int ad_store_add_reject(ad_store *st, ad_reject *r, bool *images_skipped,
                        char *err, size_t errlen);
int ad_store_add_minute(ad_store *st, const ad_minute_counts *c, char *err, size_t errlen);

/* Deletes rows and files older than the retention age and trims the image
 * files to the size cap (oldest first). *files_deleted (may be NULL) gets the
 * number of files removed. */
int ad_store_retention(ad_store *st, long *files_deleted, char *err, size_t errlen);

/* Total bytes of image files named by rows (what the size cap counts). */
int ad_store_image_bytes(ad_store *st, long long *bytes, char *err, size_t errlen);

/* ---- Reading the log (anomalyctl report) ----
 *
 * A reader opens the file read-only (never creating, migrating or locking it
 * for writing, so a running daemon is not disturbed: WAL readers and the
 * writer never wait for each other) and reads every query of its life from
 * one snapshot, so totals and rows agree while the daemon adds to the log.
 * Periods are [from, to) as UTC text 'YYYY-MM-DD HH:MM:SS.SSS'; the queries
 * use the indexes on rejects.ts and counters.minute. A log in a folder that
 * cannot be written, with no -wal beside it (a copy on read-only media), is
 * opened as immutable: SQLite could not create the -shm it reads WAL with.
 *
 * ad_store_reader_open refuses, with a sentence naming the file: a path that
 * does not exist or is not a file, a file that is not an SQLite database, an
 * SQLite database that is not an anomalyd reject log, and a log from a newer
 * anomalyd (the daemon's words). Owns its connection; close with
 * ad_store_reader_close (NULL is fine). Not thread-safe. */
typedef struct ad_store_reader ad_store_reader;
int ad_store_reader_open(ad_store_reader **out, const char *db_path, char *err, size_t errlen);
void ad_store_reader_close(ad_store_reader *r);

/* Calls each() for every counters row with minute in the period, in minute
 * order (a period boundary inside a minute includes that minute). Quantile
 * columns that are NULL (nothing inspected) read as NaN. A nonzero return
 * from each() stops the walk and is returned. */
int ad_store_read_minutes(ad_store_reader *r, const char *from, const char *to,
                          int (*each)(const ad_minute_counts *c, void *ctx), void *ctx,
                          char *err, size_t errlen);

/* Calls each() with the score, threshold, model and time of every reject in
 * the period, in time order: one pass, few columns, for totals and
 * histograms over any number of rows. */
typedef struct ad_reject_brief {
    double score, threshold;
    const char *model_sha256; /* valid during the call only */
    const char *ts;           /* valid during the call only */
} ad_reject_brief;
int ad_store_read_briefs(ad_store_reader *r, const char *from, const char *to,
                         int (*each)(const ad_reject_brief *b, void *ctx), void *ctx,
                         char *err, size_t errlen);

/* At most `limit` rejects of the period, newest first (by_score false) or
 * highest score first, into a malloc'd array (*rows, *n; free(*rows)). The
 * frame and heatmap pointers are NULL; paths are empty where the row has
 * NULL; text longer than a field is cut. */
int ad_store_read_rejects(ad_store_reader *r, const char *from, const char *to, bool by_score,
                          size_t limit, ad_reject **rows, size_t *n, char *err, size_t errlen);

#endif

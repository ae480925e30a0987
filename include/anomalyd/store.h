/* The reject log: SQLite (WAL, prepared statements, busy timeout, schema
 * versioned by PRAGMA user_version) plus PNG files of each reject's ROI and
 * heat map under the image folder, with retention by age and total size.
 * Not thread-safe: one writer thread owns an ad_store. */
#ifndef ANOMALYD_STORE_H
#define ANOMALYD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomalyd/image.h"

#define AD_STORE_SCHEMA_VERSION 1

typedef struct ad_reject {
    char ts[32];              /* UTC 'YYYY-MM-DD HH:MM:SS.SSS' */
    char line[64];
    char camera[256];
    uint64_t frame_seq;
    double score, threshold;
    int box_x, box_y, box_w, box_h;
    long area;
    char model_sha256[65];
    const ad_image *frame;    /* ROI image to save, or NULL */
    const ad_image *heatmap;  /* overlay to save, or NULL */
} ad_reject;

typedef struct ad_minute_counts {
    char minute[32];          /* 'YYYY-MM-DD HH:MM' UTC */
    long captured, inspected, dropped, rejects, images_skipped;
    double score_p50, score_p90, score_p99, score_max;
} ad_minute_counts;

typedef struct ad_store ad_store;

/* Opens/creates the database (and migrates it), creates the image folder. */
int ad_store_open(ad_store **out, const char *db_path, const char *image_dir,
                  bool save_images, int retention_days, long max_megabytes,
                  char *err, size_t errlen);
void ad_store_close(ad_store *st);
/* Inserts the row (retrying while the database is locked) and writes the
 * PNGs; if images cannot be written the row is still inserted with NULL
 * paths and *images_skipped is set. Returns 0 once the row is committed. */
int ad_store_add_reject(ad_store *st, const ad_reject *r, bool *images_skipped,
                        char *err, size_t errlen);
int ad_store_add_minute(ad_store *st, const ad_minute_counts *c, char *err, size_t errlen);
/* Deletes rows and files older than the retention age and trims the image
 * folder to the size cap (oldest first). */
int ad_store_retention(ad_store *st, char *err, size_t errlen);

#endif

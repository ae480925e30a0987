/* anomalyctl report: one self-contained HTML page of a line's rejects and
 * trends, read from the reject log (store.h's reader: read-only, one
 * snapshot, indexed periods).
 *
 * The page needs nothing beside itself: no network, no script; charts are
 * inline SVG drawn here, the ROI and heat-map images are embedded as
 * downscaled PNG data URIs (decoded and re-encoded, so only pixels from the
 * files reach the page). Every text from outside (line names, cameras,
 * paths, hashes, error messages) goes through ad_html_escape.
 *
 * The writers take a FILE * and own nothing they are given; where they
 * allocate (thumbnails) a matching free is named. */
#ifndef ANOMALYD_REPORT_H
#define ANOMALYD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anomalyd/store.h"
#include "anomalyd/util.h"

/* ---- HTML text ---- */

/* Writes s as HTML text or attribute value: & < > " ' as entities; control
 * characters (but tab and newline) and bytes that are not UTF-8 as U+FFFD,
 * so the page is valid UTF-8 whatever a row holds. NULL writes nothing. */
void ad_html_escape(FILE *out, const char *s);
/* Writes data:MIME;base64,... for the bytes (RFC 4648 alphabet). */
void ad_html_data_uri(FILE *out, const char *mime, const uint8_t *data, size_t len);

/* ---- SVG charts ---- */

typedef struct ad_chart_series {
    const char *name;         /* legend text */
    const char *color;        /* CSS colour, e.g. "#1f77b4" */
    const double *v;          /* n values; NaN = no data (no bar, a gap in a line) */
    bool bars;                /* bars, else a line with a dot per value */
} ad_chart_series;

/* A chart of n slots along x (hours, days or histogram bins) against a
 * linear y axis from 0, with ticks, thinned slot labels, a legend, an
 * optional reference line (the threshold) and a <title> per bar or dot
 * (slot label: value). With no finite value it says `empty_text`. */
typedef struct ad_chart {
    const char *title;        /* drawn above the plot; also the SVG's <title> */
    const char *y_unit;       /* after tick numbers and values ("%", " ms"); may be NULL */
    int n;                    /* slots, >= 1 */
    const char *const *x_labels; /* n labels, or NULL */
    const ad_chart_series *series;
    int nseries;
    double hline;             /* horizontal reference line at this y; NaN: none */
    double vline;             /* vertical reference line at this x, in slots (0..n); NaN: none */
    const char *ref_name;     /* legend text of the reference line */
    const char *empty_text;   /* shown when nothing is finite; NULL: "no data" */
} ad_chart;

void ad_svg_chart(FILE *out, const ad_chart *c);

/* ---- Images ---- */

typedef enum ad_thumb_state {
    AD_THUMB_EMBEDDED,        /* png holds the downscaled image */
    AD_THUMB_NOT_SAVED,       /* the row names no file (images off, skipped, size cap) */
    AD_THUMB_REMOVED,         /* the row names a file that no longer exists */
    AD_THUMB_UNREADABLE,      /* the file is there but is no readable PNG: why says so */
} ad_thumb_state;

typedef struct ad_thumb {
    ad_thumb_state state;
    int w, h;                 /* the file's image size (EMBEDDED) */
    int tw, th;               /* the embedded size: longest side <= side */
    uint8_t *png;             /* malloc'd PNG bytes (EMBEDDED), else NULL */
    size_t len;
    char why[AD_ERRLEN];      /* UNREADABLE: the reader's message */
} ad_thumb;

/* Reads path (NULL or "" = not saved), shrinks it so its longest side is at
 * most `side` pixels (area averaging; never enlarged), keeps 64 gray levels
 * or 32 per colour channel (camera noise would be most of the bytes) and
 * encodes it as PNG.
 * Never fails: the state says what happened. Free with ad_thumb_free. */
void ad_thumb_load(ad_thumb *t, const char *path, int side);
void ad_thumb_free(ad_thumb *t);

/* ---- The page ---- */

/* What went into a page; filled by the writers below as they go. */
typedef struct ad_report_counts {
    long long rejects;        /* reject rows in the period */
    size_t shown;             /* rows in the table */
    size_t images;            /* images embedded */
    size_t not_saved, removed, unreadable; /* images shown as such instead */
    long long inspected;      /* parts inspected in the period (counters) */
} ad_report_counts;

/* One <tr> of the rejects table: time, frame and camera, score, threshold,
 * box and area, the ROI and heat map side by side with the box drawn, the
 * model. The box is in frame pixels; (roi_x, roi_y) is the ROI's corner in
 * the frame (0, 0 when the ROI is the frame), subtracted to draw it on the
 * ROI images. `side` is the thumbnails' longest side in pixels. */
void ad_report_reject_row(FILE *out, const ad_reject *r, int roi_x, int roi_y, int side,
                          ad_report_counts *counts);

typedef struct ad_report_options {
    const char *db_path;      /* the reject log */
    const char *line;         /* line.name, for the heading */
    double threshold;         /* the config's threshold: the charts' reference line */
    int roi_x, roi_y;         /* see ad_report_reject_row */
    int64_t from, to;         /* period [from, to), seconds since 1970 UTC */
    size_t limit;             /* most rejects in the table */
    bool by_score;            /* table by highest score, else newest first */
    int thumb_side;           /* longest side of embedded images, pixels */
} ad_report_options;

#define AD_REPORT_DEFAULT_LIMIT 500
#define AD_REPORT_DEFAULT_THUMB 96

/* Writes the page for the period to out. Returns 0, or -1 with err filled
 * (the log could not be opened or read: not a reject log, a newer schema,
 * missing, damaged); counts (may be NULL) says what went in. */
int ad_report_render(FILE *out, const ad_report_options *o, ad_report_counts *counts,
                     char *err, size_t errlen);
/* ad_report_render into out_path, written durably (temp file, fsync,
 * rename): a failed run leaves any previous report in place. */
int ad_report_write(const char *out_path, const ad_report_options *o, ad_report_counts *counts,
                    char *err, size_t errlen);

#endif

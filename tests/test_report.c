/* The report's writers: HTML escaping and data URIs, SVG charts (and their
 * empty state), reject rows with images embedded, removed, never saved or
 * unreadable, whole pages of an empty period and of a small log, the
 * reader's refusals (the daemon's words for a newer schema), its snapshot
 * while a writer works, and the UTC time text it reads periods from. */
#include "test_support.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/image.h"
#include "anomalyd/report.h"
#include "anomalyd/store.h"
#include "anomalyd/util.h"

/* Runs a writer into a string (malloc'd). */
#define CAPTURE(text, stmt)                                                                        \
    do {                                                                                           \
        size_t len_ = 0;                                                                           \
        FILE *out = open_memstream(&(text), &len_);                                                \
        assert_non_null(out);                                                                      \
        stmt;                                                                                      \
        fclose(out);                                                                               \
    } while (0)

static char *escaped(const char *s)
{
    char *text = NULL;
    CAPTURE(text, ad_html_escape(out, s));
    return text;
}

static void escape_markup_quotes_and_bad_bytes(void **state)
{
    (void)state;
    char *t = escaped("<script>alert(\"x\")</script> & 'y'");
    assert_string_equal(t, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
    free(t);
    /* valid UTF-8 stays; tab and newline stay */
    t = escaped("Linie Gr\xC3\xB6\xC3\x9F" "e \xE2\x82\xAC\t\n");
    assert_string_equal(t, "Linie Gr\xC3\xB6\xC3\x9F" "e \xE2\x82\xAC\t\n");
    free(t);
    /* control bytes, a stray 0xFF, an overlong '/', a cut-off euro sign:
     * each bad byte one U+FFFD, so the page stays valid UTF-8 */
    t = escaped("a\x01" "b\x1b[31m\xFF" "c\xC0\xAF" "d\xE2\x82");
    assert_string_equal(t, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD[31m\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD"
                           "d\xEF\xBF\xBD\xEF\xBF\xBD");
    free(t);
    /* a surrogate half (CESU) is not UTF-8 either */
    t = escaped("\xED\xA0\x80");
    assert_int_equal(ts_count(t, "\xEF\xBF\xBD"), 3);
    free(t);
    t = escaped(NULL);
    assert_string_equal(t, "");
    free(t);
}

static void data_uri_is_base64(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", ""}, {"M", "TQ=="}, {"Ma", "TWE="}, {"Man", "TWFu"},
                              {"Many hands", "TWFueSBoYW5kcw=="}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = NULL;
        CAPTURE(t, ad_html_data_uri(out, "image/png", (const uint8_t *)cases[i][0],
                                    strlen(cases[i][0])));
        char want[64];
        snprintf(want, sizeof want, "data:image/png;base64,%s", cases[i][1]);
        assert_string_equal(t, want);
        free(t);
    }
    uint8_t bytes[3] = {0xFF, 0xFE, 0xFD};
    char *t = NULL;
    CAPTURE(t, ad_html_data_uri(out, "image/png", bytes, 3));
    assert_string_equal(t, "data:image/png;base64,//79");
    free(t);
}

static void chart_draws_series_reference_and_escapes(void **state)
{
    (void)state;
    double a[4] = {1, NAN, 3, 2}, b[4] = {0.5, 0.5, NAN, NAN};
    const char *labels[4] = {"10:00", "11:00", "<12:00>", "13:00"};
    ad_chart_series s[2] = {{"bars & more", "#1f77b4", a, true}, {"line", "#ff7f0e", b, false}};
    ad_chart c = {"Title <b>\"quoted\"</b>", "%", 4, labels, s, 2, 2.5, NAN, "threshold", NULL};
    char *t = NULL;
    CAPTURE(t, ad_svg_chart(out, &c));
    assert_non_null(strstr(t, "<svg class=\"chart\""));
    assert_int_equal(ts_count(t, "</svg>"), 1);
    assert_non_null(strstr(t, "Title &lt;b&gt;&quot;quoted&quot;&lt;/b&gt;"));
    assert_null(strstr(t, "<b>"));
    assert_non_null(strstr(t, "bars &amp; more"));
    assert_non_null(strstr(t, "&lt;12:00&gt;"));
    /* 3 finite bars, legend swatches aside (they have no <title>) */
    assert_int_equal(ts_count(t, "</rect>"), 3);
    /* the line: one run of 2 values, a dot each */
    assert_int_equal(ts_count(t, "<polyline"), 1);
    assert_int_equal(ts_count(t, "<circle"), 2);
    /* the threshold line and its legend entry */
    assert_non_null(strstr(t, "threshold 2.5</title>"));
    assert_non_null(strstr(t, "stroke-dasharray"));
    assert_null(strstr(t, "no data"));
    free(t);
}

static void chart_with_no_values_says_so(void **state)
{
    (void)state;
    double v[3] = {NAN, NAN, NAN};
    const char *labels[3] = {"a", "b", "c"};
    ad_chart_series s = {"rate", "#4c72b0", v, true};
    ad_chart c = {"Reject rate per hour", "%", 3, labels, &s, 1, NAN, NAN, NULL,
                  "nothing inspected in this period"};
    char *t = NULL;
    CAPTURE(t, ad_svg_chart(out, &c));
    assert_non_null(strstr(t, "nothing inspected in this period"));
    assert_null(strstr(t, "</rect>"));
    assert_null(strstr(t, "<polyline"));
    assert_int_equal(ts_count(t, "</svg>"), 1);
    free(t);
    /* a histogram's threshold outside the bins is clamped to the plot */
    double h[2] = {1, 0};
    ad_chart_series hs = {"scores", "#1f77b4", h, true};
    ad_chart hc = {"hist", "%", 2, NULL, &hs, 1, NAN, 7.5, "threshold", NULL};
    CAPTURE(t, ad_svg_chart(out, &hc));
    assert_int_equal(ts_count(t, "</rect>"), 2);
    assert_non_null(strstr(t, "threshold</title></line>"));
    free(t);
}

static char *write_png(const char *dir, const char *name, int w, int h, int c)
{
    ad_image im = {0};
    assert_int_equal(ad_image_alloc(&im, w, h, c), 0);
    for (size_t i = 0; i < (size_t)w * h * c; i++) im.px[i] = (uint8_t)(i * 7);
    char *path = ad_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    char err[AD_ERRLEN];
    if (ad_png_write(path, &im, err, sizeof err) != 0) fail_msg("%s", err);
    ad_image_free(&im);
    return path;
}

static void thumbnail_shrinks_and_never_enlarges(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("thumb");
    char *big = write_png(dir, "big.png", 300, 200, 3), *small = write_png(dir, "small.png", 40, 30, 1);
    ad_thumb t;
    ad_thumb_load(&t, big, 96);
    assert_int_equal(t.state, AD_THUMB_EMBEDDED);
    assert_int_equal(t.w, 300);
    assert_int_equal(t.h, 200);
    assert_int_equal(t.tw, 96);
    assert_int_equal(t.th, 64);
    ad_image back = {0};
    char err[AD_ERRLEN];
    assert_int_equal(ad_png_read_mem("thumb", t.png, t.len, 0, &back, err, sizeof err), 0);
    assert_int_equal(back.w, 96);
    assert_int_equal(back.h, 64);
    assert_int_equal(back.c, 3);
    ad_image_free(&back);
    ad_thumb_free(&t);
    assert_null(t.png);

    ad_thumb_load(&t, small, 96);
    assert_int_equal(t.state, AD_THUMB_EMBEDDED);
    assert_int_equal(t.tw, 40);
    assert_int_equal(t.th, 30);
    ad_thumb_free(&t);

    ad_thumb_load(&t, NULL, 96);
    assert_int_equal(t.state, AD_THUMB_NOT_SAVED);
    ad_thumb_load(&t, "", 96);
    assert_int_equal(t.state, AD_THUMB_NOT_SAVED);
    char gone[1100];
    snprintf(gone, sizeof gone, "%s/2026-01-01/gone.png", dir);
    ad_thumb_load(&t, gone, 96);
    assert_int_equal(t.state, AD_THUMB_REMOVED);
    char *text = ts_write_text(dir, "text.png", "not a png");
    ad_thumb_load(&t, text, 96);
    assert_int_equal(t.state, AD_THUMB_UNREADABLE);
    assert_non_null(strstr(t.why, "text.png"));
    ad_thumb_free(&t);
    free(text);
    free(big);
    free(small);
    ts_rmtree(dir);
    free(dir);
}

static void fill_reject(ad_reject *r, long long id, const char *ts, double score)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    snprintf(r->ts, sizeof r->ts, "%s", ts);
    snprintf(r->line, sizeof r->line, "line3");
    snprintf(r->camera, sizeof r->camera, "/dev/video0");
    r->frame_seq = (uint64_t)id * 10;
    r->score = score;
    r->threshold = 0.5;
    r->area = 12;
    snprintf(r->model_sha256, sizeof r->model_sha256, "%064d", 7);
}

static void reject_row_embeds_images_with_the_box(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("row");
    char *roi = write_png(dir, "roi.png", 80, 40, 1), *heat = write_png(dir, "heat.png", 80, 40, 3);
    ad_reject r;
    fill_reject(&r, 42, "2026-01-01 10:00:00.000", 0.8123);
    snprintf(r.image_path, sizeof r.image_path, "%s", roi);
    snprintf(r.heatmap_path, sizeof r.heatmap_path, "%s", heat);
    /* box in frame pixels; the ROI starts at (8, 8) in the frame */
    r.box_x = 8 + 20, r.box_y = 8 + 10, r.box_w = 40, r.box_h = 10;
    ad_report_counts c = {0};
    char *t = NULL;
    CAPTURE(t, ad_report_reject_row(out, &r, 8, 8, 96, &c));
    assert_int_equal(ts_count(t, "<tr class=\"reject\" id=\"reject-42\">"), 1);
    assert_int_equal(ts_count(t, "<img"), 2);
    assert_int_equal(ts_count(t, "src=\"data:image/png;base64,"), 2);
    assert_int_equal(ts_count(t, "class=\"box\""), 2);
    assert_non_null(strstr(t, "left:25.000%;top:25.000%;width:50.000%;height:25.000%"));
    assert_non_null(strstr(t, "0.8123"));
    assert_non_null(strstr(t, "28,18 40&times;10"));
    assert_null(strstr(t, roi)); /* the page carries pixels, not paths */
    assert_int_equal(c.images, 2);
    assert_int_equal(c.shown, 1);
    free(t);

    /* a box outside the image (the ROI moved since) is not drawn */
    r.box_x = 200;
    CAPTURE(t, ad_report_reject_row(out, &r, 8, 8, 96, &c));
    assert_null(strstr(t, "class=\"box\""));
    assert_int_equal(ts_count(t, "<img"), 2);
    free(t);
    free(roi);
    free(heat);
    ts_rmtree(dir);
    free(dir);
}

static void reject_row_shows_removed_unsaved_and_unreadable_images(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("rowgone");
    char *bad = ts_write_text(dir, "bad<1>.png", "PNG? no");
    ad_reject r;
    fill_reject(&r, 7, "2026-01-01 10:00:00.000", 0.6);
    snprintf(r.image_path, sizeof r.image_path, "%s/2025-12-01/gone-<&>-frame.png", dir);
    r.heatmap_path[0] = 0;
    snprintf(r.camera, sizeof r.camera, "cam \"<script>\"");
    ad_report_counts c = {0};
    char *t = NULL;
    CAPTURE(t, ad_report_reject_row(out, &r, 0, 0, 96, &c));
    assert_null(strstr(t, "<img"));
    assert_non_null(strstr(t, "removed by retention"));
    assert_non_null(strstr(t, "gone-&lt;&amp;&gt;-frame.png"));
    assert_non_null(strstr(t, "no image saved"));
    assert_non_null(strstr(t, "cam &quot;&lt;script&gt;&quot;"));
    assert_null(strstr(t, "<script>"));
    assert_non_null(strstr(t, "no box"));
    assert_int_equal(c.removed, 1);
    assert_int_equal(c.not_saved, 1);
    free(t);

    snprintf(r.image_path, sizeof r.image_path, "%s", bad);
    CAPTURE(t, ad_report_reject_row(out, &r, 0, 0, 96, &c));
    assert_non_null(strstr(t, "unreadable"));
    assert_non_null(strstr(t, "bad&lt;1&gt;.png"));
    assert_int_equal(c.unreadable, 1);
    free(t);
    free(bad);
    ts_rmtree(dir);
    free(dir);
}

/* An empty reject log as the daemon creates it, in dir. */
static char *new_log(const char *dir, ad_store **keep)
{
    char *db = ad_xmalloc(strlen(dir) + 16), img[AD_PATH_MAX], err[AD_ERRLEN];
    sprintf(db, "%s/line3.db", dir);
    snprintf(img, sizeof img, "%s/images", dir);
    ad_store_options opt = {.save_images = true};
    snprintf(opt.database, sizeof opt.database, "%s", db);
    snprintf(opt.image_dir, sizeof opt.image_dir, "%s", img);
    ad_store *st = NULL;
    if (ad_store_open(&st, &opt, err, sizeof err) != 0) fail_msg("%s", err);
    if (keep)
        *keep = st;
    else
        ad_store_close(st);
    return db;
}

static void options_for(ad_report_options *o, const char *db, const char *from, const char *to)
{
    memset(o, 0, sizeof *o);
    o->db_path = db;
    o->line = "line3";
    o->threshold = 0.5;
    assert_int_equal(ad_utc_parse(from, &o->from), 0);
    assert_int_equal(ad_utc_parse(to, &o->to), 0);
    o->limit = AD_REPORT_DEFAULT_LIMIT;
    o->thumb_side = AD_REPORT_DEFAULT_THUMB;
}

static void empty_period_makes_a_page_that_says_so(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("empty");
    char *db = new_log(dir, NULL);
    ad_report_options o;
    options_for(&o, db, "2001-01-01", "2001-01-02");
    o.line = "<img src=x onerror=alert(1)>";
    ad_report_counts c;
    char err[AD_ERRLEN] = "";
    char *t = NULL;
    int rc;
    CAPTURE(t, rc = ad_report_render(out, &o, &c, err, sizeof err));
    if (rc != 0) fail_msg("%s", err);
    assert_true(strncmp(t, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(t, "</html>"));
    assert_non_null(strstr(t, "Nothing was inspected and nothing rejected in this period"));
    assert_non_null(strstr(t, "No rejects in this period."));
    assert_non_null(strstr(t, "nothing inspected in this period"));
    assert_non_null(strstr(t, "no scores in this period"));
    assert_int_equal(ts_count(t, "<svg class=\"chart\""), 3);
    assert_null(strstr(t, "<img"));
    assert_null(strstr(t, "<script"));
    /* nothing fetched from anywhere: the only URL is the SVG namespace */
    assert_int_equal(ts_count(t, "http"), ts_count(t, "\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(t, "&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(t, "2001-01-01 00:00 to 2001-01-02 00:00 UTC (1 day)"));
    assert_int_equal(c.rejects, 0);
    assert_int_equal(c.shown, 0);
    assert_int_equal(c.inspected, 0);
    free(t);

    /* and written to a file */
    char out_path[1100];
    snprintf(out_path, sizeof out_path, "%s/report.html", dir);
    if (ad_report_write(out_path, &o, &c, err, sizeof err) != 0) fail_msg("%s", err);
    uint8_t *page;
    size_t len;
    assert_int_equal(ad_read_file(out_path, 1 << 24, &page, &len, err, sizeof err), 0);
    assert_true(len > 1000);
    free(page);
    free(db);
    ts_rmtree(dir);
    free(dir);
}

static void add_minute(ad_store *st, const char *minute, long inspected, long rejects, double p50)
{
    ad_minute_counts m = {0};
    snprintf(m.minute, sizeof m.minute, "%s", minute);
    snprintf(m.line, sizeof m.line, "line3");
    m.seconds = 60;
    m.captured = inspected + 2;
    m.inspected = inspected;
    m.dropped = 2;
    m.rejects = rejects;
    m.score_p50 = p50, m.score_p90 = p50 + 0.1, m.score_p99 = p50 + 0.2, m.score_max = 0.9;
    m.latency_ms_p50 = 30, m.latency_ms_p99 = 45, m.latency_ms_max = 50;
    char err[AD_ERRLEN];
    if (ad_store_add_minute(st, &m, err, sizeof err) != 0) fail_msg("%s", err);
}

static void add_reject(ad_store *st, const char *ts, double score, const char *sha)
{
    ad_reject r;
    fill_reject(&r, 0, ts, score);
    snprintf(r.model_sha256, sizeof r.model_sha256, "%s", sha);
    r.box_x = 1, r.box_y = 2, r.box_w = 3, r.box_h = 4;
    const ad_reject *one = &r;
    char err[AD_ERRLEN];
    if (ad_store_insert_rejects(st, &one, 1, err, sizeof err) != 0) fail_msg("%s", err);
}

static void page_of_a_small_log(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("small");
    ad_store *st = NULL;
    char *db = new_log(dir, &st);
    add_minute(st, "2026-03-01 09:59", 100, 0, 0.20); /* before the period */
    add_minute(st, "2026-03-01 10:00", 100, 1, 0.21);
    add_minute(st, "2026-03-01 10:01", 100, 0, 0.22);
    add_minute(st, "2026-03-01 12:30", 50, 2, 0.30);
    add_minute(st, "2026-03-01 13:00", 100, 0, 0.20); /* the period's end: not in it */
    add_reject(st, "2026-03-01 09:59:59.999", 0.99, "aaaa");
    add_reject(st, "2026-03-01 10:00:30.000", 0.61, "aaaa");
    add_reject(st, "2026-03-01 12:30:10.000", 0.75, "bbbb");
    add_reject(st, "2026-03-01 12:30:20.000", 0.55, "bbbb");
    add_reject(st, "2026-03-01 13:00:00.000", 0.99, "bbbb");
    ad_store_close(st);

    ad_report_options o;
    options_for(&o, db, "2026-03-01 10:00", "2026-03-01 13:00");
    o.limit = 2;
    ad_report_counts c;
    char err[AD_ERRLEN] = "", *t = NULL;
    int rc;
    CAPTURE(t, rc = ad_report_render(out, &o, &c, err, sizeof err));
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(c.rejects, 3);
    assert_int_equal(c.inspected, 250);
    assert_int_equal(c.shown, 2);
    assert_int_equal(c.not_saved, 4);
    assert_non_null(strstr(t, "Showing 2 of 3 rejects (newest first)"));
    /* newest first: row 4 (12:30:20) before row 3 (12:30:10) */
    char *a = strstr(t, "id=\"reject-4\""), *b = strstr(t, "id=\"reject-3\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_int_equal(ts_count(t, "<tr class=\"reject\""), 2);
    /* header: 250 inspected, 3 rejects = 1.2% by the counters */
    assert_non_null(strstr(t, "250 <small>of 256 frames captured</small>"));
    assert_non_null(strstr(t, "1.2% of parts"));
    assert_non_null(strstr(t, "30.0 / 45.0 ms"));
    /* both models, with their counts */
    assert_non_null(strstr(t, "<code>aaaa</code></td><td class=\"num\">1<"));
    assert_non_null(strstr(t, "<code>bbbb</code></td><td class=\"num\">2<"));
    /* three hourly slots: 10:00 and 12:00 have a rate, 11:00 is a gap */
    assert_non_null(strstr(t, "03-01 10:00: 0.5%</title>"));
    assert_non_null(strstr(t, "03-01 12:00: 4%</title>"));
    assert_null(strstr(t, "03-01 11:00: "));
    free(t);

    /* highest score first */
    o.by_score = true;
    CAPTURE(t, rc = ad_report_render(out, &o, &c, err, sizeof err));
    assert_int_equal(rc, 0);
    a = strstr(t, "id=\"reject-3\""), b = strstr(t, "id=\"reject-2\""); /* 0.75, 0.61 */
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_non_null(strstr(t, "(highest score first)"));
    free(t);
    free(db);
    ts_rmtree(dir);
    free(dir);
}

static void reader_refuses_what_is_not_a_reject_log(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("refuse");
    char err[AD_ERRLEN], werr[AD_ERRLEN], path[1100];
    ad_store_reader *r = NULL;

    snprintf(path, sizeof path, "%s/missing.db", dir);
    assert_int_equal(ad_store_reader_open(&r, path, err, sizeof err), -1);
    assert_null(r);
    assert_non_null(strstr(err, "no reject log there"));
    assert_int_equal(ad_store_reader_open(&r, dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a file"));

    char *text = ts_write_text(dir, "notes.db", "these are my notes, not a database\n");
    assert_int_equal(ad_store_reader_open(&r, text, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a database"));
    assert_non_null(strstr(err, "must name an anomalyd reject log"));

    /* someone else's SQLite database */
    snprintf(path, sizeof path, "%s/other.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE parts (id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ad_store_reader_open(&r, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an anomalyd reject log"));

    /* a log from a newer anomalyd: the same sentence as the daemon's */
    char *log = new_log(dir, NULL);
    assert_int_equal(sqlite3_open(log, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ad_store_reader_open(&r, log, err, sizeof err), -1);
    ad_store *st = NULL;
    ad_store_options opt = {.save_images = false};
    snprintf(opt.database, sizeof opt.database, "%s", log);
    assert_int_equal(ad_store_open(&st, &opt, werr, sizeof werr), -1);
    assert_string_equal(err, werr);
    assert_non_null(strstr(err, "schema version 99, written by a newer anomalyd"));

    /* a version-1 log whose table lacks a column */
    snprintf(path, sizeof path, "%s/partial.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE rejects (id INTEGER, ts TEXT);"
                                      "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ad_store_reader_open(&r, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a complete anomalyd reject log"));
    free(text);
    free(log);
    ts_rmtree(dir);
    free(dir);
}

static int count_brief(const ad_reject_brief *b, void *ctx)
{
    (void)b;
    (*(int *)ctx)++;
    return 0;
}

static void reader_reads_one_snapshot_beside_a_writer(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("snap");
    ad_store *st = NULL;
    char *db = new_log(dir, &st);
    add_reject(st, "2026-03-01 10:00:00.000", 0.6, "aaaa");
    char err[AD_ERRLEN];

    /* another writer holds the write lock with a row not yet committed */
    sqlite3 *w = NULL;
    assert_int_equal(sqlite3_open(db, &w), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE; DELETE FROM rejects", NULL, NULL, NULL),
                     SQLITE_OK);
    ad_store_reader *r = NULL;
    double t0 = ad_now_sec();
    if (ad_store_reader_open(&r, db, err, sizeof err) != 0) fail_msg("%s", err);
    int n = 0;
    assert_int_equal(ad_store_read_briefs(r, "2026-01-01", "2027-01-01", count_brief, &n, err,
                                          sizeof err), 0);
    assert_int_equal(n, 1);
    assert_true(ad_now_sec() - t0 < 1.0); /* never waited for the lock */
    assert_int_equal(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(w);

    /* rows the daemon commits after the reader's first read stay out of it */
    add_reject(st, "2026-03-01 10:00:01.000", 0.7, "aaaa");
    n = 0;
    assert_int_equal(ad_store_read_briefs(r, "2026-01-01", "2027-01-01", count_brief, &n, err,
                                          sizeof err), 0);
    assert_int_equal(n, 1);
    ad_store_reader_close(r);
    if (ad_store_reader_open(&r, db, err, sizeof err) != 0) fail_msg("%s", err);
    n = 0;
    assert_int_equal(ad_store_read_briefs(r, "2026-01-01", "2027-01-01", count_brief, &n, err,
                                          sizeof err), 0);
    assert_int_equal(n, 2);
    ad_store_reader_close(r);
    ad_store_reader_close(NULL);
    ad_store_close(st);
    free(db);
    ts_rmtree(dir);
    free(dir);
}

static void utc_text_parses_and_formats(void **state)
{
    (void)state;
    int64_t t;
    char out[32];
    assert_int_equal(ad_utc_parse("2026-11-25", &t), 0);
    ad_utc_format(t, 0, out);
    assert_string_equal(out, "2026-11-25 00:00:00.000");
    assert_int_equal(ad_utc_parse("2026-11-25 14:05", &t), 0);
    ad_utc_format(t, 7, out);
    assert_string_equal(out, "2026-11-25 14:05:00.007");
    assert_int_equal(ad_utc_parse("2026-11-25T14:05:09Z", &t), 0);
    ad_utc_format(t, 0, out);
    assert_string_equal(out, "2026-11-25 14:05:09.000");
    assert_int_equal(ad_utc_parse("2026-11-25 14:05:09.123", &t), 0);
    ad_utc_format(t, 0, out);
    assert_string_equal(out, "2026-11-25 14:05:09.000");
    const char *bad[] = {"", "yesterday", "2026-02-30", "2026-13-01", "2026-1-05",
                         "2026-11-25 25:00", "2026-11-25 14:5", "2026-11-25 14:05:09x",
                         " 2026-11-25", "2026-11-25 14:05:60"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ad_utc_parse(bad[i], &t) == 0) fail_msg("'%s' parsed", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escape_markup_quotes_and_bad_bytes),
        cmocka_unit_test(data_uri_is_base64),
        cmocka_unit_test(chart_draws_series_reference_and_escapes),
        cmocka_unit_test(chart_with_no_values_says_so),
        cmocka_unit_test(thumbnail_shrinks_and_never_enlarges),
        cmocka_unit_test(reject_row_embeds_images_with_the_box),
        cmocka_unit_test(reject_row_shows_removed_unsaved_and_unreadable_images),
        cmocka_unit_test(empty_period_makes_a_page_that_says_so),
        cmocka_unit_test(page_of_a_small_log),
        cmocka_unit_test(reader_refuses_what_is_not_a_reject_log),
        cmocka_unit_test(reader_reads_one_snapshot_beside_a_writer),
        cmocka_unit_test(utc_text_parses_and_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

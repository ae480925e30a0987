/* The report page: the period's totals, three charts and the rejects table,
 * from one snapshot of the reject log. See report.h. */
#include "anomalyd/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

#define MAX_BUCKETS 400
#define HIST_BINS 30
#define SHOW_SIDE 128 /* smallest longest side of an image on the page, CSS pixels */
#define MAX_MODELS 16
#define COLOR_A "#1f77b4"
#define COLOR_B "#ff7f0e"
#define COLOR_RATE "#4c72b0"

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static void dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->v = ad_xrealloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n++] = x;
}

/* Median of the values (sorted in place); NaN when there are none. */
static double dvec_median(dvec *d)
{
    if (d->n == 0) return NAN;
    ad_sort_doubles(d->v, d->n);
    return ad_quantile_sorted(d->v, d->n, 0.5);
}

/* One slot of the trend charts: an hour, or a day or more on long periods. */
typedef struct bucket {
    long inspected, rejects;
    dvec score_p50;           /* each minute's median score */
    double score_p99;         /* the worst minute's p99 */
} bucket;

typedef struct model_use {
    char sha256[65];
    long long rejects;
    char first[32], last[32];
    double tmin, tmax;        /* thresholds the rejects were judged by */
} model_use;

/* What the counters and the reject rows say about the period. */
typedef struct period {
    int64_t start, step;      /* first bucket's start, bucket length (s) */
    int nb;
    bucket *b;
    long captured, inspected, dropped, counted_rejects, images_skipped;
    dvec latency_p50, score_p50;
    double latency_p99;       /* the worst minute's p99 */
    dvec reject_scores;
    model_use models[MAX_MODELS];
    int nmodels;
    long long other_model_rejects; /* beyond MAX_MODELS distinct models */
} period;

static void period_init(period *p, const ad_report_options *o)
{
    memset(p, 0, sizeof *p);
    int64_t span = o->to - o->from;
    p->step = 3600;
    if (span > (int64_t)MAX_BUCKETS * 3600) {
        int64_t days = (span + (int64_t)MAX_BUCKETS * 86400 - 1) / ((int64_t)MAX_BUCKETS * 86400);
        p->step = days * 86400;
    }
    p->start = o->from - ((o->from % p->step) + p->step) % p->step;
    p->nb = (int)((o->to - p->start + p->step - 1) / p->step);
    if (p->nb < 1) p->nb = 1;
    p->b = ad_xcalloc((size_t)p->nb, sizeof *p->b);
    for (int i = 0; i < p->nb; i++) p->b[i].score_p99 = NAN;
    p->latency_p99 = NAN;
}

static void period_free(period *p)
{
    for (int i = 0; i < p->nb; i++) free(p->b[i].score_p50.v);
    free(p->b);
    free(p->latency_p50.v);
    free(p->score_p50.v);
    free(p->reject_scores.v);
}

static double fmax_nan(double a, double b)
{
    return isnan(a) ? b : isnan(b) ? a : fmax(a, b);
}

static int add_minute(const ad_minute_counts *c, void *ctx)
{
    period *p = ctx;
    p->captured += c->captured;
    p->inspected += c->inspected;
    p->dropped += c->dropped;
    p->counted_rejects += c->rejects;
    p->images_skipped += c->images_skipped;
    if (c->inspected > 0) {
        if (isfinite(c->latency_ms_p50)) dvec_push(&p->latency_p50, c->latency_ms_p50);
        if (isfinite(c->score_p50)) dvec_push(&p->score_p50, c->score_p50);
        p->latency_p99 = fmax_nan(p->latency_p99, c->latency_ms_p99);
    }
    int64_t t;
    if (ad_utc_parse(c->minute, &t) != 0) return 0; /* not a minute: counted, not charted */
    int64_t i = (t - p->start) / p->step;
    if (i < 0 || i >= p->nb) return 0;
    bucket *b = &p->b[i];
    b->inspected += c->inspected;
    b->rejects += c->rejects;
    if (c->inspected > 0) {
        if (isfinite(c->score_p50)) dvec_push(&b->score_p50, c->score_p50);
        b->score_p99 = fmax_nan(b->score_p99, c->score_p99);
    }
    return 0;
}

static int add_brief(const ad_reject_brief *r, void *ctx)
{
    period *p = ctx;
    dvec_push(&p->reject_scores, r->score);
    model_use *m = NULL;
    for (int i = 0; i < p->nmodels && !m; i++)
        if (!strcmp(p->models[i].sha256, r->model_sha256)) m = &p->models[i];
    if (!m) {
        if (p->nmodels == MAX_MODELS) {
            p->other_model_rejects++;
            return 0;
        }
        m = &p->models[p->nmodels++];
        snprintf(m->sha256, sizeof m->sha256, "%s", r->model_sha256);
        snprintf(m->first, sizeof m->first, "%s", r->ts);
        m->tmin = m->tmax = r->threshold;
    }
    m->rejects++;
    snprintf(m->last, sizeof m->last, "%s", r->ts);
    m->tmin = fmin(m->tmin, r->threshold);
    m->tmax = fmax(m->tmax, r->threshold);
    return 0;
}

/* ---- page parts ---- */

static const char STYLE[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#222;margin:0 auto;padding:16px 24px;max-width:1180px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}"
    ".sub{color:#555;margin:0 0 12px}"
    "dl.summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:8px;"
    "margin:0}"
    "dl.summary div{background:#f4f6f8;border-radius:6px;padding:8px 10px}"
    "dt{color:#555;font-size:12px}dd{margin:0;font-size:18px;font-weight:600}"
    "dd small{font-size:12px;font-weight:400;color:#555}"
    ".note{background:#fff6e0;border-left:4px solid #e0a000;padding:6px 10px}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}"
    "svg.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;border-radius:6px}"
    ".ctitle{font-size:14px;font-weight:600;fill:#222}.legend{font-size:12px;fill:#333}"
    ".ytick{font-size:11px;fill:#555;text-anchor:end}.xtick{font-size:11px;fill:#555;"
    "text-anchor:middle}.grid{stroke:#e6e6e6}.axis{stroke:#888}"
    ".empty{font-size:14px;fill:#888;text-anchor:middle}"
    "table{border-collapse:collapse;width:100%}th,td{padding:6px 8px;border-bottom:1px solid #e3e3e3;"
    "vertical-align:top;text-align:left}th{background:#f4f6f8;font-size:12px;color:#444}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}small{color:#666}"
    "td.images{white-space:nowrap}figure{display:inline-block;margin:0 8px 0 0}"
    ".pic{position:relative;display:inline-block;line-height:0;background:#eee}"
    ".pic img.up{image-rendering:pixelated}"
    ".box{position:absolute;border:2px solid #e0201b;box-sizing:border-box;"
    "box-shadow:0 0 0 1px #fff}"
    "figcaption{font-size:11px;color:#666;text-align:center}"
    ".noimg{display:flex;flex-direction:column;justify-content:center;align-items:center;"
    "box-sizing:border-box;border:2px dashed #bbb;color:#666;background:#fafafa;padding:6px;"
    "line-height:1.3;white-space:normal;overflow:hidden;word-break:break-all;text-align:center}"
    "code{font-size:12px}footer{margin-top:24px;color:#777;font-size:12px}";

static void format_span(char *out, size_t cap, int64_t s)
{
    if (s % 86400 == 0)
        snprintf(out, cap, "%lld day%s", (long long)(s / 86400), s == 86400 ? "" : "s");
    else if (s % 3600 == 0)
        snprintf(out, cap, "%lld h", (long long)(s / 3600));
    else
        snprintf(out, cap, "%.1f h", s / 3600.0);
}

/* 'YYYY-MM-DD HH:MM' of a time: the period's ends and the slot labels. */
static void format_minute(char *out, size_t cap, int64_t t)
{
    char ts[32];
    ad_utc_format(t, 0, ts);
    snprintf(out, cap, "%.16s", ts);
}

static void summary_item(FILE *out, const char *term)
{
    fputs("<div><dt>", out);
    ad_html_escape(out, term);
    fputs("</dt><dd>", out);
}

static void write_summary(FILE *out, const ad_report_options *o, period *p)
{
    fputs("<dl class=\"summary\">", out);
    summary_item(out, "parts inspected");
    fprintf(out, "%ld <small>of %ld frames captured</small></dd></div>", p->inspected, p->captured);
    summary_item(out, "rejects");
    fprintf(out, "%zu", p->reject_scores.n);
    if (p->inspected > 0)
        fprintf(out, " <small>%.3g%% of parts</small>", 100.0 * p->counted_rejects / p->inspected);
    fputs("</dd></div>", out);
    summary_item(out, "dropped frames");
    fprintf(out, "%ld", p->dropped);
    if (p->captured > 0) fprintf(out, " <small>%.3g%% of captured</small>", 100.0 * p->dropped / p->captured);
    fputs("</dd></div>", out);
    summary_item(out, "inspection latency p50 / p99");
    if (p->latency_p50.n > 0)
        fprintf(out, "%.1f / %.1f ms", dvec_median(&p->latency_p50), p->latency_p99);
    else
        fputs("&ndash;", out);
    fputs("</dd></div>", out);
    if (p->images_skipped > 0) {
        summary_item(out, "rejects without images");
        fprintf(out, "%ld <small>skipped while the writer was behind</small></dd></div>",
                p->images_skipped);
    }
    summary_item(out, "threshold (config)");
    fprintf(out, "%.6g</dd></div>", o->threshold);
    fputs("</dl>\n", out);

    fputs("<h2>Models</h2>\n", out);
    if (p->nmodels == 0) {
        fputs("<p>No rejects in this period, so no model is named by one.</p>\n", out);
        return;
    }
    fputs("<table class=\"models\"><tr><th>model (SHA-256)</th><th>rejects</th>"
          "<th>first</th><th>last</th><th>threshold</th></tr>\n", out);
    for (int i = 0; i < p->nmodels; i++) {
        const model_use *m = &p->models[i];
        fputs("<tr><td><code>", out);
        ad_html_escape(out, m->sha256);
        fprintf(out, "</code></td><td class=\"num\">%lld</td><td>", m->rejects);
        ad_html_escape(out, m->first);
        fputs("</td><td>", out);
        ad_html_escape(out, m->last);
        if (m->tmin == m->tmax)
            fprintf(out, "</td><td class=\"num\">%.6g</td></tr>\n", m->tmin);
        else
            fprintf(out, "</td><td class=\"num\">%.6g .. %.6g</td></tr>\n", m->tmin, m->tmax);
    }
    if (p->other_model_rejects > 0)
        fprintf(out, "<tr><td>other models</td><td class=\"num\">%lld</td><td></td><td></td>"
                     "<td></td></tr>\n", p->other_model_rejects);
    fputs("</table>\n", out);
}

static void write_trends(FILE *out, const ad_report_options *o, period *p)
{
    char unit[32], title[128];
    if (p->step == 3600)
        snprintf(unit, sizeof unit, "hour");
    else if (p->step == 86400)
        snprintf(unit, sizeof unit, "day");
    else
        snprintf(unit, sizeof unit, "%lld days", (long long)(p->step / 86400));

    char (*names)[20] = ad_xmalloc((size_t)p->nb * sizeof *names);
    const char **labels = ad_xmalloc((size_t)p->nb * sizeof *labels);
    double *rate = ad_xmalloc((size_t)p->nb * sizeof *rate);
    double *p50 = ad_xmalloc((size_t)p->nb * sizeof *p50);
    double *p99 = ad_xmalloc((size_t)p->nb * sizeof *p99);
    for (int i = 0; i < p->nb; i++) {
        char m[32];
        format_minute(m, sizeof m, p->start + (int64_t)i * p->step);
        /* hours: 'MM-DD HH:00'; days: 'YYYY-MM-DD' */
        if (p->step == 3600)
            snprintf(names[i], sizeof names[i], "%.5s %.2s:00", m + 5, m + 11);
        else
            snprintf(names[i], sizeof names[i], "%.10s", m);
        labels[i] = names[i];
        bucket *b = &p->b[i];
        rate[i] = b->inspected > 0 ? 100.0 * b->rejects / b->inspected : NAN;
        p50[i] = dvec_median(&b->score_p50);
        p99[i] = b->score_p99;
    }
    fputs("<h2>Trends</h2>\n<div class=\"charts\">\n", out);

    snprintf(title, sizeof title, "Reject rate per %s", unit);
    ad_chart_series rate_s = {"rejects / parts inspected", COLOR_RATE, rate, true};
    ad_chart c = {title, "%", p->nb, labels, &rate_s, 1, NAN, NAN, NULL,
                  "nothing inspected in this period"};
    ad_svg_chart(out, &c);

    snprintf(title, sizeof title, "Score per %s: median and p99 (drift)", unit);
    ad_chart_series drift[2] = {{"median", COLOR_A, p50, false}, {"p99", COLOR_B, p99, false}};
    ad_chart d = {title, NULL, p->nb, labels, drift, 2, o->threshold, NAN, "threshold",
                  "nothing inspected in this period"};
    ad_svg_chart(out, &d);

    /* The log keeps each minute's score quantiles, not every part's score:
     * typical parts are each minute's median, beside every reject's score. */
    double lo, hi;
    ad_score_range(p->score_p50.v, p->score_p50.n, p->reject_scores.v, p->reject_scores.n,
                   o->threshold, &lo, &hi);
    double ha[HIST_BINS] = {0}, hb[HIST_BINS] = {0};
    char bin_names[HIST_BINS][16];
    const char *bin_labels[HIST_BINS];
    for (size_t i = 0; i < p->score_p50.n; i++) ha[ad_score_bin(p->score_p50.v[i], lo, hi, HIST_BINS)]++;
    for (size_t i = 0; i < p->reject_scores.n; i++)
        hb[ad_score_bin(p->reject_scores.v[i], lo, hi, HIST_BINS)]++;
    for (int i = 0; i < HIST_BINS; i++) {
        ha[i] = p->score_p50.n ? 100.0 * ha[i] / p->score_p50.n : NAN;
        hb[i] = p->reject_scores.n ? 100.0 * hb[i] / p->reject_scores.n : NAN;
        snprintf(bin_names[i], sizeof bin_names[i], "%.3g", lo + (hi - lo) * i / HIST_BINS);
        bin_labels[i] = bin_names[i];
    }
    ad_chart_series hist[2] = {{"typical part (each minute's median)", COLOR_A, ha, true},
                               {"rejects", COLOR_B, hb, true}};
    ad_chart h = {"Scores of the period (% of each series)", "%", HIST_BINS, bin_labels, hist, 2,
                  NAN, (o->threshold - lo) / (hi - lo) * HIST_BINS, "threshold",
                  "no scores in this period"};
    ad_svg_chart(out, &h);
    fputs("</div>\n", out);
    fprintf(out, "<p><small>Per %s from the per-minute counters: reject rate = rejects / "
                 "parts inspected; median = the median of the minutes' median scores, p99 = the "
                 "worst minute's 99th percentile. Gaps: nothing inspected.</small></p>\n", unit);
    free(names);
    free(labels);
    free(rate);
    free(p50);
    free(p99);
}

/* One image cell: the thumbnail with the box, or what became of the file. */
static void write_figure(FILE *out, const ad_thumb *t, const char *path, const char *caption,
                         const ad_reject *r, int roi_x, int roi_y, int side,
                         ad_report_counts *counts)
{
    int show = side > SHOW_SIDE ? side : SHOW_SIDE;
    fputs("<figure>", out);
    if (t->state == AD_THUMB_EMBEDDED) {
        /* longest side shown at `show` CSS pixels; small ROIs enlarged, crisp
         * when by a whole factor */
        double scale = (double)show / (t->w > t->h ? t->w : t->h);
        int dw = (int)lround(t->w * scale), dh = (int)lround(t->h * scale);
        bool crisp = dw % t->tw == 0 && dw / t->tw >= 2;
        fprintf(out, "<div class=\"pic\"><img%s width=\"%d\" height=\"%d\" alt=\"",
                crisp ? " class=\"up\"" : "", dw, dh);
        ad_html_escape(out, caption);
        fputs("\" src=\"", out);
        ad_html_data_uri(out, "image/png", t->png, t->len);
        fputs("\">", out);
        int bx = r->box_x - roi_x, by = r->box_y - roi_y;
        if (r->box_w > 0 && r->box_h > 0 && bx >= 0 && by >= 0 && bx + r->box_w <= t->w &&
            by + r->box_h <= t->h)
            fprintf(out, "<span class=\"box\" style=\"left:%.3f%%;top:%.3f%%;width:%.3f%%;"
                         "height:%.3f%%\"></span>",
                    100.0 * bx / t->w, 100.0 * by / t->h, 100.0 * r->box_w / t->w,
                    100.0 * r->box_h / t->h);
        fputs("</div>", out);
        counts->images++;
    } else {
        fprintf(out, "<div class=\"noimg\" style=\"width:%dpx;height:%dpx\">", show, show);
        if (t->state == AD_THUMB_NOT_SAVED) {
            fputs("no image saved<small>images off, skipped, or removed by the size cap</small>",
                  out);
            counts->not_saved++;
        } else if (t->state == AD_THUMB_REMOVED) {
            fputs("removed by retention<small>", out);
            ad_html_escape(out, path);
            fputs("</small>", out);
            counts->removed++;
        } else {
            fputs("unreadable<small>", out);
            ad_html_escape(out, t->why);
            fputs("</small>", out);
            counts->unreadable++;
        }
        fputs("</div>", out);
    }
    fputs("<figcaption>", out);
    ad_html_escape(out, caption);
    fputs("</figcaption></figure>", out);
}

/* The row with its two thumbnails already loaded (thumbs[0] ROI, [1] heat map). */
static void write_row(FILE *out, const ad_reject *r, const ad_thumb thumbs[2], int roi_x,
                      int roi_y, int side, ad_report_counts *counts)
{
    fprintf(out, "<tr class=\"reject\" id=\"reject-%lld\"><td>", r->id);
    ad_html_escape(out, r->ts);
    fprintf(out, "<br><small>row %lld</small></td><td>frame %llu<br><small>", r->id,
            (unsigned long long)r->frame_seq);
    ad_html_escape(out, r->camera);
    fprintf(out, "</small></td><td class=\"num\">%.4f</td><td class=\"num\">%.4g</td><td>",
            r->score, r->threshold);
    if (r->box_w > 0 && r->box_h > 0)
        fprintf(out, "%d,%d %d&times;%d", r->box_x, r->box_y, r->box_w, r->box_h);
    else
        fputs("no box", out);
    fprintf(out, "<br><small>area %ld px</small></td><td class=\"images\">", r->area);
    write_figure(out, &thumbs[0], r->image_path, "ROI", r, roi_x, roi_y, side, counts);
    write_figure(out, &thumbs[1], r->heatmap_path, "heat map", r, roi_x, roi_y, side, counts);
    fputs("</td><td><code title=\"", out);
    ad_html_escape(out, r->model_sha256);
    fputs("\">", out);
    char sha12[13];
    snprintf(sha12, sizeof sha12, "%.12s", r->model_sha256);
    ad_html_escape(out, sha12);
    fputs("</code></td></tr>\n", out);
    counts->shown++;
}

void ad_report_reject_row(FILE *out, const ad_reject *r, int roi_x, int roi_y, int side,
                          ad_report_counts *counts)
{
    ad_thumb thumbs[2];
    ad_thumb_load(&thumbs[0], r->image_path, side);
    ad_thumb_load(&thumbs[1], r->heatmap_path, side);
    write_row(out, r, thumbs, roi_x, roi_y, side, counts);
    ad_thumb_free(&thumbs[0]);
    ad_thumb_free(&thumbs[1]);
}

static void write_rejects(FILE *out, const ad_report_options *o, const ad_reject *rows, size_t n,
                          long long total, ad_report_counts *counts)
{
    fputs("<h2>Rejects</h2>\n", out);
    if (total == 0) {
        fputs("<p>No rejects in this period.</p>\n", out);
        return;
    }
    const char *order = o->by_score ? "highest score first" : "newest first";
    if ((long long)n < total)
        fprintf(out, "<p class=\"note\">Showing %zu of %lld rejects (%s). Narrow the period or "
                     "raise <code>--limit</code> to see the others.</p>\n", n, total, order);
    else
        fprintf(out, "<p>All %lld rejects of the period, %s. The box (red) is where the part "
                     "differs most; heat map: the anomaly map over the ROI.</p>\n", total, order);
    fputs("<table class=\"rejects\"><tr><th>time (UTC)</th><th>frame</th><th>score</th>"
          "<th>threshold</th><th>box (frame px)</th><th>ROI and heat map</th><th>model</th>"
          "</tr>\n", out);
    /* Reading and shrinking the images is nearly all of a report's time: on
     * every core, then written in order. */
    ad_thumb *thumbs = ad_xcalloc(2 * n, sizeof *thumbs);
    long nthumbs = (long)(2 * n);
#pragma omp parallel for schedule(dynamic, 4)
    for (long i = 0; i < nthumbs; i++)
        ad_thumb_load(&thumbs[i], i % 2 ? rows[i / 2].heatmap_path : rows[i / 2].image_path,
                      o->thumb_side);
    for (size_t i = 0; i < n; i++) {
        write_row(out, &rows[i], &thumbs[2 * i], o->roi_x, o->roi_y, o->thumb_side, counts);
        ad_thumb_free(&thumbs[2 * i]);
        ad_thumb_free(&thumbs[2 * i + 1]);
    }
    free(thumbs);
    fputs("</table>\n", out);
}

int ad_report_render(FILE *out, const ad_report_options *o, ad_report_counts *counts,
                     char *err, size_t errlen)
{
    ad_report_counts local;
    if (!counts) counts = &local;
    memset(counts, 0, sizeof *counts);
    if (o->to <= o->from) return ad_err(err, errlen, "the period is empty: it must end after it starts");

    char from[32], to[32];
    ad_utc_format(o->from, 0, from);
    ad_utc_format(o->to, 0, to);
    period p;
    period_init(&p, o);
    ad_reject *rows = NULL;
    size_t n = 0;
    ad_store_reader *r = NULL;
    int rc = ad_store_reader_open(&r, o->db_path, err, errlen);
    if (rc == 0) rc = ad_store_read_minutes(r, from, to, add_minute, &p, err, errlen);
    if (rc == 0) rc = ad_store_read_briefs(r, from, to, add_brief, &p, err, errlen);
    if (rc == 0) rc = ad_store_read_rejects(r, from, to, o->by_score, o->limit, &rows, &n, err, errlen);
    /* Done with the log: reading the images may take a while, and an open
     * snapshot would keep the daemon's checkpoints from finishing. */
    ad_store_reader_close(r);
    if (rc != 0) {
        period_free(&p);
        free(rows);
        return -1;
    }
    counts->rejects = (long long)p.reject_scores.n;
    counts->inspected = p.inspected;

    char a[32], b[32], span[32], now[32];
    format_minute(a, sizeof a, o->from);
    format_minute(b, sizeof b, o->to);
    format_span(span, sizeof span, o->to - o->from);
    ad_utc_timestamp(now);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
          "<title>Rejects of line ", out);
    ad_html_escape(out, o->line);
    fprintf(out, ", %s to %s UTC</title>\n<style>%s</style></head>\n<body>\n<header><h1>"
                 "Rejects of line ", a, b, STYLE);
    ad_html_escape(out, o->line);
    fprintf(out, "</h1><p class=\"sub\">%s to %s UTC (%s)</p></header>\n", a, b, span);
    if (p.inspected == 0 && p.reject_scores.n == 0)
        fputs("<p class=\"note\">Nothing was inspected and nothing rejected in this period. Was "
              "the daemon running, and is the period the one you meant "
              "(<code>--since</code>, <code>--from</code>/<code>--to</code>, UTC)?</p>\n", out);
    write_summary(out, o, &p);
    write_trends(out, o, &p);
    write_rejects(out, o, rows, n, counts->rejects, counts);
    fprintf(out, "<footer>Written %.19s UTC by anomalyctl report %s from ", now, ANOMALYD_VERSION);
    ad_html_escape(out, o->db_path);
    fputs(". Times are UTC. Images are downscaled copies of the saved PNGs.</footer>\n"
          "</body></html>\n", out);
    period_free(&p);
    free(rows);
    return 0;
}

int ad_report_write(const char *out_path, const ad_report_options *o, ad_report_counts *counts,
                    char *err, size_t errlen)
{
    char *page = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&page, &len);
    if (!mem) return ad_err(err, errlen, "cannot allocate the page in memory");
    int rc = ad_report_render(mem, o, counts, err, errlen);
    if (fclose(mem) != 0 && rc == 0) rc = ad_err(err, errlen, "cannot build the page in memory");
    if (rc == 0) rc = ad_write_file_durable(out_path, page, len, err, errlen);
    free(page);
    return rc;
}

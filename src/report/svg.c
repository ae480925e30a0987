/* Inline SVG charts for the report: bars or lines over slots, a y axis from
 * 0 with the plot's tick rule (ad_axis_step), a reference line. See report.h. */
#include "anomalyd/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "anomalyd/calib.h"

#define W 720
#define H 250
#define LEFT 64
#define RIGHT (W - 16)
#define TOP 46
#define BOTTOM (H - 30)
#define MAX_X_LABELS 8
#define REF_COLOR "#d62728"

static double finite_max(const ad_chart *c, bool *any)
{
    double m = 0;
    *any = false;
    for (int s = 0; s < c->nseries; s++)
        for (int i = 0; i < c->n; i++) {
            double v = c->series[s].v[i];
            if (!isfinite(v)) continue;
            *any = true;
            if (v > m) m = v;
        }
    if (isfinite(c->hline) && c->hline > m) m = c->hline;
    return m;
}

static double ypix(double v, double top)
{
    return BOTTOM - (BOTTOM - TOP) * (v / top);
}

static void value_title(FILE *out, const ad_chart *c, int i, const ad_chart_series *s, double v)
{
    fputs("<title>", out);
    if (c->x_labels && c->x_labels[i]) {
        ad_html_escape(out, c->x_labels[i]);
        fputs(": ", out);
    }
    if (c->nseries > 1) {
        ad_html_escape(out, s->name);
        fputc(' ', out);
    }
    fprintf(out, "%.4g", v);
    ad_html_escape(out, c->y_unit);
    fputs("</title>", out);
}

static void legend(FILE *out, const ad_chart *c)
{
    double x = LEFT;
    for (int s = 0; s < c->nseries; s++) {
        fprintf(out, "<rect x=\"%.1f\" y=\"26\" width=\"12\" height=\"10\" fill=\"", x);
        ad_html_escape(out, c->series[s].color);
        fprintf(out, "\"/><text x=\"%.1f\" y=\"35\" class=\"legend\">", x + 16);
        ad_html_escape(out, c->series[s].name);
        fputs("</text>", out);
        x += 16 + 6.5 * (c->series[s].name ? (double)strlen(c->series[s].name) : 0) + 18;
    }
    if ((isfinite(c->hline) || isfinite(c->vline)) && c->ref_name) {
        fprintf(out, "<line x1=\"%.1f\" y1=\"31\" x2=\"%.1f\" y2=\"31\" stroke=\"" REF_COLOR
                "\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>"
                "<text x=\"%.1f\" y=\"35\" class=\"legend\">", x, x + 16, x + 20);
        ad_html_escape(out, c->ref_name);
        fputs("</text>", out);
    }
}

static void bars(FILE *out, const ad_chart *c, int s, int nbars, int k, double sw, double top)
{
    const ad_chart_series *se = &c->series[s];
    double bw = sw * 0.8 / nbars;
    for (int i = 0; i < c->n; i++) {
        double v = se->v[i];
        if (!isfinite(v)) continue;
        double x = LEFT + i * sw + sw * 0.1 + k * bw, y = ypix(v, top);
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"", x, y,
                bw > 0.6 ? bw : 0.6, BOTTOM - y);
        ad_html_escape(out, se->color);
        fputs("\">", out);
        value_title(out, c, i, se, v);
        fputs("</rect>", out);
    }
}

static void line(FILE *out, const ad_chart *c, int s, double sw, double top)
{
    const ad_chart_series *se = &c->series[s];
    /* one polyline per run of finite values: a gap where nothing was inspected */
    int open = 0;
    for (int i = 0; i <= c->n; i++) {
        bool ok = i < c->n && isfinite(se->v[i]);
        if (ok && !open) {
            fputs("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"", out);
            ad_html_escape(out, se->color);
            fputs("\" points=\"", out);
            open = 1;
        }
        if (ok) fprintf(out, "%.2f,%.2f ", LEFT + (i + 0.5) * sw, ypix(se->v[i], top));
        if (!ok && open) {
            fputs("\"/>", out);
            open = 0;
        }
    }
    double r = c->n <= 100 ? 2.8 : 1.6;
    for (int i = 0; i < c->n; i++) {
        if (!isfinite(se->v[i])) continue;
        fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.1f\" fill=\"", LEFT + (i + 0.5) * sw,
                ypix(se->v[i], top), r);
        ad_html_escape(out, se->color);
        fputs("\">", out);
        value_title(out, c, i, se, se->v[i]);
        fputs("</circle>", out);
    }
}

void ad_svg_chart(FILE *out, const ad_chart *c)
{
    bool any;
    double vmax = finite_max(c, &any);
    if (!(vmax > 0)) vmax = 1;
    double step = ad_axis_step(vmax, 4), top = ceil(vmax / step - 1e-9) * step;
    int dec = ad_axis_decimals(step);
    int n = c->n > 0 ? c->n : 1;
    double sw = (double)(RIGHT - LEFT) / n;

    fprintf(out, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
                 "xmlns=\"http://www.w3.org/2000/svg\"><title>", W, H);
    ad_html_escape(out, c->title);
    fprintf(out, "</title><text x=\"%d\" y=\"16\" class=\"ctitle\">", LEFT);
    ad_html_escape(out, c->title);
    fputs("</text>", out);
    if (any) legend(out, c);

    /* grid and y ticks */
    for (int t = 0; t * step <= top + step * 1e-9; t++) {
        double y = ypix(t * step, top);
        fprintf(out, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" class=\"grid\"/>"
                     "<text x=\"%d\" y=\"%.2f\" class=\"ytick\">%.*f",
                LEFT, y, RIGHT, y, LEFT - 6, y + 4, dec, t * step);
        ad_html_escape(out, c->y_unit);
        fputs("</text>", out);
    }
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", LEFT, BOTTOM,
            RIGHT, BOTTOM);

    /* slot labels, thinned to fit */
    if (c->x_labels) {
        int every = (n + MAX_X_LABELS - 1) / MAX_X_LABELS;
        for (int i = 0; i < c->n; i += every) {
            if (!c->x_labels[i]) continue;
            /* a label near the right edge ends there instead of being cut */
            double x = LEFT + (i + 0.5) * sw;
            bool at_end = x > W - 6.5 * (double)strlen(c->x_labels[i]) / 2 - 2;
            fprintf(out, "<text x=\"%.2f\" y=\"%d\" class=\"xtick\"%s>", at_end ? W - 2 : x,
                    BOTTOM + 16, at_end ? " style=\"text-anchor:end\"" : "");
            ad_html_escape(out, c->x_labels[i]);
            fputs("</text>", out);
        }
    }

    if (!any) {
        fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"empty\">", (LEFT + RIGHT) / 2,
                (TOP + BOTTOM) / 2);
        ad_html_escape(out, c->empty_text ? c->empty_text : "no data");
        fputs("</text></svg>\n", out);
        return;
    }

    int nbars = 0;
    for (int s = 0; s < c->nseries; s++) nbars += c->series[s].bars;
    for (int s = 0, k = 0; s < c->nseries; s++)
        if (c->series[s].bars) bars(out, c, s, nbars, k++, sw, top);
    for (int s = 0; s < c->nseries; s++)
        if (!c->series[s].bars) line(out, c, s, sw, top);

    if (isfinite(c->hline)) {
        double y = ypix(c->hline, top);
        fprintf(out, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"" REF_COLOR
                     "\" stroke-width=\"2\" stroke-dasharray=\"5 3\"><title>",
                LEFT, y, RIGHT, y);
        ad_html_escape(out, c->ref_name);
        fprintf(out, " %.4g</title></line>", c->hline);
    }
    if (isfinite(c->vline)) {
        double v = c->vline < 0 ? 0 : c->vline > n ? n : c->vline;
        double x = LEFT + v * sw;
        fprintf(out, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"" REF_COLOR
                     "\" stroke-width=\"2\" stroke-dasharray=\"5 3\"><title>",
                x, TOP, x, BOTTOM);
        ad_html_escape(out, c->ref_name);
        fputs("</title></line>", out);
    }
    fputs("</svg>\n", out);
}

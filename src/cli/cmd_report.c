/* anomalyctl report: one self-contained HTML page of a line's rejects and
 * trends from its reject log, for people who review rejects without SQL.
 * The page is built in src/report/; this file reads the options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/config.h"
#include "anomalyd/report.h"
#include "anomalyd/util.h"
#include "commands.h"

#define DEFAULT_SINCE (24 * 3600)
#define MAX_THUMB 1024
#define MAX_LIMIT 10000

static void usage(FILE *out)
{
    fprintf(out,
        "usage: anomalyctl report --config FILE [--since AGE | --from TIME [--to TIME]]\n"
        "                         [--limit N] [--sort time|score] [--thumb PX]\n"
        "                         [--database FILE] --out FILE.html\n"
        "\n"
        "Writes one self-contained HTML page (no network, no script; opens from a USB\n"
        "stick) of the line's rejects in a period: parts inspected, rejects and reject\n"
        "rate, dropped frames, latency, the models; charts of the reject rate and of\n"
        "the score median and p99 per hour against the threshold, and the period's\n"
        "score histogram; then the rejects with their ROI and heat map side by side,\n"
        "the defect box drawn. Reads the reject log read-only: safe while the daemon\n"
        "runs.\n"
        "\n"
        "  --config FILE     the line's YAML config (line name, threshold, ROI,\n"
        "                    reject_log.database)\n"
        "  --since AGE       the period ending now: a number with s, m, h or d\n"
        "                    (30m, 24h, 7d); default 24h\n"
        "  --from TIME       the period's start, UTC: 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM'\n"
        "                    or 'YYYY-MM-DD HH:MM:SS' ('T' for the space is fine)\n"
        "  --to TIME         the period's end (not included), UTC; default now\n"
        "  --limit N         most rejects listed with images; default %d\n"
        "  --sort time|score newest first (default) or highest score first\n"
        "  --thumb PX        longest side of the embedded images, pixels (shown at\n"
        "                    least 128 wide); default %d: 500 rejects of noisy\n"
        "                    256x256 ROIs make about 6 MB\n"
        "  --database FILE   read this reject log instead of reject_log.database\n"
        "                    (e.g. a copy)\n"
        "  --out FILE.html   the page to write (replaced whole, never half-written)\n"
        "\n"
        "exit codes: 0 ok, 1 the log cannot be read (missing, not a reject log, from a\n"
        "            newer anomalyd) or the page cannot be written,\n"
        "            2 usage or config error\n",
        AD_REPORT_DEFAULT_LIMIT, AD_REPORT_DEFAULT_THUMB);
}

/* '24h', '30m', '7d', '90s' -> seconds; -1 for anything else. */
static int64_t parse_age(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0 || end[0] == 0 || end[1] != 0) return -1;
    int64_t unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600
                 : end[0] == 'd' ? 86400 : 0;
    if (unit == 0 || v > (int64_t)100 * 365 * 86400 / unit) return -1;
    return v * unit;
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("anomalyctl report: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    usage(stderr);
    return 2;
}

int ad_cmd_report(int argc, char **argv)
{
    const char *config_path = NULL, *since = NULL, *from = NULL, *to = NULL, *db = NULL;
    const char *out_path = NULL, *sort = "time";
    long limit = AD_REPORT_DEFAULT_LIMIT, thumb = AD_REPORT_DEFAULT_THUMB;
    for (int i = 1; i < argc; i += 2) { /* every option but --help takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) return usage_error("unknown or incomplete option '%s'", a);
        if (!strcmp(a, "--config")) config_path = v;
        else if (!strcmp(a, "--since")) since = v;
        else if (!strcmp(a, "--from")) from = v;
        else if (!strcmp(a, "--to")) to = v;
        else if (!strcmp(a, "--database")) db = v;
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--sort")) sort = v;
        else if (!strcmp(a, "--limit")) {
            if (ad_parse_long(v, 1, MAX_LIMIT, &limit) != 0)
                return usage_error("--limit takes a whole number from 1 to 10000, got '%s'", v);
        } else if (!strcmp(a, "--thumb")) {
            if (ad_parse_long(v, 16, MAX_THUMB, &thumb) != 0)
                return usage_error("--thumb takes pixels from 16 to 1024, got '%s'", v);
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (!config_path) return usage_error("%s", "--config FILE is required");
    if (!out_path) return usage_error("%s", "--out FILE.html is required");
    if (strcmp(sort, "time") && strcmp(sort, "score"))
        return usage_error("--sort takes time or score, got '%s'", sort);
    if (since && (from || to))
        return usage_error("%s", "give either --since or --from/--to, not both");
    if (to && !from) return usage_error("%s", "--to needs --from");

    ad_report_options o = {0};
    /* up to now, this second included */
    int64_t now = (int64_t)time(NULL) + 1;
    o.to = now;
    if (from) {
        if (ad_utc_parse(from, &o.from) != 0)
            return usage_error("--from: '%s' is not a UTC time like 2026-11-25 or "
                               "'2026-11-25 14:00'", from);
        if (to && ad_utc_parse(to, &o.to) != 0)
            return usage_error("--to: '%s' is not a UTC time like 2026-11-25 or "
                               "'2026-11-25 14:00'", to);
        if (o.to <= o.from) return usage_error("%s", "--to must be after --from");
    } else {
        int64_t age = since ? parse_age(since) : DEFAULT_SINCE;
        if (age < 0)
            return usage_error("--since takes a number with s, m, h or d (30m, 24h, 7d), "
                               "got '%s'", since);
        o.from = now - age;
    }

    char err[AD_ERRLEN];
    ad_config cfg;
    if (ad_config_load(config_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl report: %s\n", err);
        return 2;
    }
    bool roi_set = cfg.camera.roi_width > 0 && cfg.camera.roi_height > 0;
    o.db_path = db ? db : cfg.reject_log.database;
    o.line = cfg.line.name;
    o.threshold = cfg.threshold;
    o.roi_x = roi_set ? cfg.camera.roi_x : 0;
    o.roi_y = roi_set ? cfg.camera.roi_y : 0;
    o.limit = (size_t)limit;
    o.by_score = !strcmp(sort, "score");
    o.thumb_side = (int)thumb;

    ad_report_counts c;
    if (ad_report_write(out_path, &o, &c, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyctl report: %s\n", err);
        return 1;
    }
    printf("%s: %lld rejects of %lld parts inspected; %zu listed, %zu images embedded",
           out_path, c.rejects, c.inspected, c.shown, c.images);
    if (c.removed) printf(", %zu removed by retention", c.removed);
    if (c.not_saved) printf(", %zu not saved", c.not_saved);
    if (c.unreadable) printf(", %zu unreadable", c.unreadable);
    printf("\n");
    return 0;
}

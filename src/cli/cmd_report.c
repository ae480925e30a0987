/* anomalyctl report: one self-contained HTML page of a line's rejects and
 * trends from its reject log, for people who review rejects without SQL.
 * The page is built in src/report/; this file reads the options (parse),
 * writes the page (run) and prints what it holds (report). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/config.h"
#include "anomalyd/report.h"
#include "anomalyd/util.h"
#include "cli.h"
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

/* What the command line asks for. */
typedef struct report_args {
    const char *config_path, *since, *from, *to, *db, *out_path, *sort;
    long limit, thumb;
} report_args;

static const ad_cli cli = {"report", usage};

static int parse_args(report_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"since", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
        {"database", required_argument, NULL, 'd'}, {"out", required_argument, NULL, 'o'},
        {"sort", required_argument, NULL, 'S'},   {"limit", required_argument, NULL, 'l'},
        {"thumb", required_argument, NULL, 'T'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->sort = "time";
    a->limit = AD_REPORT_DEFAULT_LIMIT;
    a->thumb = AD_REPORT_DEFAULT_THUMB;
    int opt;
    ad_cli_begin();
    while ((opt = ad_cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'c': a->config_path = optarg; break;
        case 's': a->since = optarg; break;
        case 'f': a->from = optarg; break;
        case 't': a->to = optarg; break;
        case 'd': a->db = optarg; break;
        case 'o': a->out_path = optarg; break;
        case 'S': a->sort = optarg; break;
        case 'l':
            if (ad_parse_long(optarg, 1, MAX_LIMIT, &a->limit) != 0)
                return ad_cli_usage_error(&cli, "--limit takes a whole number from 1 to 10000, "
                                          "got '%s'", optarg);
            break;
        case 'T':
            if (ad_parse_long(optarg, 16, MAX_THUMB, &a->thumb) != 0)
                return ad_cli_usage_error(&cli, "--thumb takes pixels from 16 to 1024, got '%s'",
                                          optarg);
            break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (optind < argc) return ad_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!a->config_path) return ad_cli_usage_error(&cli, "--config FILE is required");
    if (!a->out_path) return ad_cli_usage_error(&cli, "--out FILE.html is required");
    if (strcmp(a->sort, "time") && strcmp(a->sort, "score"))
        return ad_cli_usage_error(&cli, "--sort takes time or score, got '%s'", a->sort);
    if (a->since && (a->from || a->to))
        return ad_cli_usage_error(&cli, "give either --since or --from/--to, not both");
    if (a->to && !a->from) return ad_cli_usage_error(&cli, "--to needs --from");
    return AD_CLI_RUN;
}

/* The period of --since or --from/--to into o->from, o->to: 0, or
 * AD_EXIT_USAGE with the reason printed. */
static int parse_period(const report_args *a, ad_report_options *o)
{
    /* up to now, this second included */
    int64_t now = (int64_t)time(NULL) + 1;
    o->to = now;
    if (a->from) {
        if (ad_utc_parse(a->from, &o->from) != 0)
            return ad_cli_usage_error(&cli, "--from: '%s' is not a UTC time like 2026-11-25 or "
                                      "'2026-11-25 14:00'", a->from);
        if (a->to && ad_utc_parse(a->to, &o->to) != 0)
            return ad_cli_usage_error(&cli, "--to: '%s' is not a UTC time like 2026-11-25 or "
                                      "'2026-11-25 14:00'", a->to);
        if (o->to <= o->from) return ad_cli_usage_error(&cli, "--to must be after --from");
    } else {
        int64_t age = a->since ? parse_age(a->since) : DEFAULT_SINCE;
        if (age < 0)
            return ad_cli_usage_error(&cli, "--since takes a number with s, m, h or d (30m, 24h, "
                                      "7d), got '%s'", a->since);
        o->from = now - age;
    }
    return 0;
}

/* The line's settings from the config, then the page: the exit code (2 for
 * the config, 1 for the log or the page), counts in c. */
static int run(const report_args *a, ad_report_options *o, ad_report_counts *c)
{
    char err[AD_ERRLEN];
    ad_config cfg;
    if (ad_config_load(a->config_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "anomalyctl report: %s\n", err);
        return AD_EXIT_USAGE;
    }
    bool roi_set = cfg.camera.roi_width > 0 && cfg.camera.roi_height > 0;
    o->db_path = a->db ? a->db : cfg.reject_log.database;
    o->line = cfg.line.name;
    o->threshold = cfg.threshold;
    o->roi_x = roi_set ? cfg.camera.roi_x : 0;
    o->roi_y = roi_set ? cfg.camera.roi_y : 0;
    o->limit = (size_t)a->limit;
    o->by_score = !strcmp(a->sort, "score");
    o->thumb_side = (int)a->thumb;
    if (ad_report_write(a->out_path, o, c, err, sizeof err) != 0) {
        fprintf(stderr, "anomalyctl report: %s\n", err);
        return AD_EXIT_FAILURE;
    }
    return AD_EXIT_OK;
}

static void report(const report_args *a, const ad_report_counts *c)
{
    printf("%s: %lld rejects of %lld parts inspected; %zu listed, %zu images embedded",
           a->out_path, c->rejects, c->inspected, c->shown, c->images);
    if (c->removed) printf(", %zu removed by retention", c->removed);
    if (c->not_saved) printf(", %zu not saved", c->not_saved);
    if (c->unreadable) printf(", %zu unreadable", c->unreadable);
    printf("\n");
}

int ad_cmd_report(int argc, char **argv)
{
    report_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    ad_report_options o = {0};
    rc = parse_period(&a, &o);
    if (rc) return rc;
    ad_report_counts c;
    rc = run(&a, &o, &c);
    if (rc == AD_EXIT_OK) report(&a, &c);
    return rc;
}

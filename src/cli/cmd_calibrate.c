/* anomalyctl calibrate: score good (and known-bad) images through the same
 * detector path as the daemon, print the score distribution and a suggested
 * threshold, draw a plot, and optionally write the threshold back into the
 * YAML config keeping every other byte. The rules live in src/calib/. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/calib.h"
#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"
#include "cli.h"
#include "commands.h"

#define MAX_BAD_DIRS 64
#define DEFAULT_TARGET_FRR 0.01
#define SHOW_EXTREMES 3

static void usage(FILE *out)
{
    fprintf(out,
        "usage: anomalyctl calibrate --config FILE --good DIR [--bad DIR...]\n"
        "                            [--target-frr RATE] [--confidence LEVEL]\n"
        "                            [--pick frr|youden]\n"
        "                            [--plot OUT.png] [--write]\n"
        "\n"
        "Scores every PNG in the folders exactly as the daemon scores a frame,\n"
        "prints the score distribution and suggests a threshold (an image is\n"
        "rejected when its score is above it).\n"
        "\n"
        "  --config FILE      the line's YAML config (model, detector, threshold)\n"
        "  --good DIR         folder of PNGs of good parts NOT used for training\n"
        "  --bad DIR...       folders of PNGs of known defects (repeatable; several\n"
        "                     folders may follow one --bad)\n"
        "  --target-frr RATE  false-reject rate to aim for, as a fraction (0.01 = 1%%)\n"
        "                     or with %% (1%%); default 0.01\n"
        "  --confidence LEVEL hold the rate with this probability over calibration\n"
        "                     sets (0.9 or 90%%) instead of on average; needs more\n"
        "                     images (5%% at 90%%: 45, 1%% at 90%%: 230)\n"
        "  --pick frr|youden  which threshold to choose: the one for the target\n"
        "                     false-reject rate, or the best separation of good and\n"
        "                     bad (Youden's J); default youden when --bad is given\n"
        "                     without --target-frr, else frr\n"
        "  --plot OUT.png     draw both score histograms and the threshold\n"
        "  --write            replace the top-level 'threshold:' value in FILE (other\n"
        "                     bytes unchanged, backup FILE.bak); then reload a running\n"
        "                     daemon with SIGHUP (systemctl reload anomalyd@LINE)\n"
        "\n"
        "Threshold for a target false-reject rate: the larger of the order\n"
        "statistic X_(r), r = ceil((n+1)(1-rate)) of the good scores (a new good part\n"
        "scores above it with probability <= rate) and an exponential fit of the top\n"
        "10%% of the good scores (at least 5), with the fitted spread taken at its\n"
        "upper one-sigma bound as margin; the fit extrapolates when n is too small.\n"
        "Demonstrating a rate needs about 3/rate good images (rule of three).\n"
        "\n"
        "exit codes: 0 ok, 1 runtime failure (model, images, plot or write-back),\n"
        "            2 usage or config error\n");
}

/* A folder's PNGs, sorted by name. */
typedef struct image_set {
    char **paths;
    size_t n, cap;
    double *scores;
} image_set;

static void set_add(image_set *s, const char *path)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->paths = ad_xrealloc(s->paths, s->cap * sizeof *s->paths);
    }
    s->paths[s->n++] = ad_xstrdup(path);
}

static void set_free(image_set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    free(s->scores);
    memset(s, 0, sizeof *s);
}

/* Adds the folder's PNGs (ad_png_list: other entries skipped with a warning
 * that names them). */
static int list_pngs(image_set *s, const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) return ad_err(err, errlen, "%s: no such folder", dir);
    if (!S_ISDIR(st.st_mode)) return ad_err(err, errlen, "%s: not a folder (expected a folder of PNG images)", dir);
    char **names = NULL;
    int n = 0;
    if (ad_png_list(dir, &names, &n, err, errlen) != 0) return -1;
    for (int i = 0; i < n; i++) {
        char path[AD_PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        set_add(s, path);
    }
    ad_png_list_free(names, n);
    return 0;
}

/* Scores every image of the set; progress on stderr when it is a terminal. */
static int score_set(ad_detector *d, const ad_config *cfg, image_set *s, const char *what,
                     char *err, size_t errlen)
{
    s->scores = ad_xmalloc(s->n * sizeof *s->scores);
    int tty = isatty(2);
    for (size_t i = 0; i < s->n; i++) {
        ad_image roi = {0};
        ad_result r;
        if (ad_load_frame_file(cfg, s->paths[i], &roi, err, errlen) < 0) return -1;
        int rc = ad_detector_inspect(d, &roi, &r, err, errlen);
        ad_image_free(&roi);
        if (rc < 0) return -1;
        if (!isfinite(r.score))
            return ad_err(err, errlen, "%s: the detector gave a non-finite score", s->paths[i]);
        s->scores[i] = r.score;
        if (tty) fprintf(stderr, "\rscoring %s images: %zu/%zu", what, i + 1, s->n);
    }
    if (tty) fprintf(stderr, "\r%*s\r", 60, "");
    return 0;
}

static void print_quantiles(const char *what, const double *v, size_t n)
{
    double *s = ad_xmalloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    ad_sort_doubles(s, n);
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) mean += s[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) var += (s[i] - mean) * (s[i] - mean);
    double sd = n > 1 ? sqrt(var / (double)(n - 1)) : 0;
    printf("%s scores (n=%zu): min %.5g  p50 %.5g  p90 %.5g  p95 %.5g  p99 %.5g  max %.5g  "
           "mean %.5g  sd %.5g\n", what, n, s[0], ad_quantile_sorted(s, n, 0.5),
           ad_quantile_sorted(s, n, 0.9), ad_quantile_sorted(s, n, 0.95),
           ad_quantile_sorted(s, n, 0.99), s[n - 1], mean, sd);
    free(s);
}

/* Names of the `k` highest (or lowest) scoring images. */
static void print_extremes(const char *title, const image_set *s, int highest, int k)
{
    size_t *idx = ad_xmalloc(s->n * sizeof *idx);
    for (size_t i = 0; i < s->n; i++) idx[i] = i;
    for (size_t i = 0; i < s->n && i < (size_t)k; i++) /* partial selection sort */
        for (size_t j = i + 1; j < s->n; j++) {
            double a = s->scores[idx[j]], b = s->scores[idx[i]];
            if (highest ? a > b : a < b) {
                size_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
        }
    printf("%s\n", title);
    for (size_t i = 0; i < s->n && i < (size_t)k; i++)
        printf("  %.6g  %s\n", s->scores[idx[i]], s->paths[idx[i]]);
    free(idx);
}

static double rate_above(const double *v, size_t n, double t)
{
    return n ? (double)ad_count_above(v, n, t) / (double)n : 0;
}

/* "0.01" or "1%" -> 0.01, strictly between lo and hi */
static int parse_fraction(const char *text, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text) return -1;
    if (*end == '%') {
        v /= 100;
        end++;
    }
    if (*end || !(v > lo && v < hi)) return -1;
    *out = v;
    return 0;
}

/* What the command line asks for. */
typedef struct calib_args {
    const char *config_path, *good_dir, *plot_path, *pick;
    const char *bad_dirs[MAX_BAD_DIRS];
    int nbad_dirs;
    bool write, rate_given;
    double rate, confidence;
} calib_args;

static int parse_args(calib_args *a, int argc, char **argv)
{
    static const ad_cli cli = {"calibrate", usage};
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},     {"good", required_argument, NULL, 'g'},
        {"bad", required_argument, NULL, 'b'},        {"target-frr", required_argument, NULL, 'r'},
        {"confidence", required_argument, NULL, 'C'}, {"pick", required_argument, NULL, 'p'},
        {"plot", required_argument, NULL, 'P'},       {"write", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->rate = DEFAULT_TARGET_FRR;
    int opt, after_bad = 0;
    ad_cli_begin();
    /* '-': operands come back in order (1), so "--bad A B C" takes all three */
    while ((opt = ad_cli_getopt(argc, argv, "-h", longopts)) != -1) {
        if (opt == 'b' || (opt == 1 && after_bad)) {
            if (a->nbad_dirs == MAX_BAD_DIRS)
                return ad_cli_usage_error(&cli, "at most %d --bad folders", MAX_BAD_DIRS);
            a->bad_dirs[a->nbad_dirs++] = optarg;
            after_bad = 1;
            continue;
        }
        after_bad = 0;
        switch (opt) {
        case 'c': a->config_path = optarg; break;
        case 'g':
            if (a->good_dir)
                return ad_cli_usage_error(&cli, "--good given twice; pass one folder of good images");
            a->good_dir = optarg;
            break;
        case 'r':
            if (parse_fraction(optarg, 0, 0.5, &a->rate) < 0)
                return ad_cli_usage_error(&cli, "--target-frr '%s': expected a rate above 0 and "
                                          "below 0.5, as a fraction (0.01) or a percentage (1%%)",
                                          optarg);
            a->rate_given = true;
            break;
        case 'C':
            if (parse_fraction(optarg, 0.4999, 1, &a->confidence) < 0)
                return ad_cli_usage_error(&cli, "--confidence '%s': expected a level from 0.5 up "
                                          "to (not including) 1, as a fraction (0.9) or a "
                                          "percentage (90%%)", optarg);
            break;
        case 'p':
            a->pick = optarg;
            if (strcmp(a->pick, "frr") && strcmp(a->pick, "youden"))
                return ad_cli_usage_error(&cli, "--pick '%s': expected frr or youden", a->pick);
            break;
        case 'P': a->plot_path = optarg; break;
        case 'w': a->write = true; break;
        case 'h': return ad_cli_help(&cli);
        default: return ad_cli_bad_option(&cli, opt, argv);
        }
    }
    if (!a->config_path || !a->good_dir)
        return ad_cli_usage_error(&cli, "%s is required",
                                  !a->config_path ? "--config FILE" : "--good DIR");
    if (!a->pick) a->pick = a->nbad_dirs > 0 && !a->rate_given ? "youden" : "frr";
    if (!strcmp(a->pick, "youden") && a->nbad_dirs == 0)
        return ad_cli_usage_error(&cli, "--pick youden needs --bad folders of known defects");
    return AD_CLI_RUN;
}

/* What the run found: the config as read (its bytes are what --write
 * edits), both score sets, the thresholds and the one chosen. */
typedef struct calib_result {
    uint8_t *config_bytes;
    size_t config_len;
    ad_config cfg;
    char model_sha256[65];
    image_set good, bad;
    ad_frr_threshold ft;
    double auroc;            /* NaN without bad images */
    ad_separation sep;       /* with bad images */
    bool youden;             /* the choice is the best separation */
    double chosen;           /* rounded: the fewest digits that change no verdict */
    char text[64];           /* chosen as written */
} calib_result;

static void result_free(calib_result *r)
{
    set_free(&r->good);
    set_free(&r->bad);
    free(r->config_bytes);
    r->config_bytes = NULL;
}

/* Reads the config, lists and scores the images, computes the thresholds.
 * Returns 0, AD_EXIT_USAGE (the config) or AD_EXIT_FAILURE, with err. */
static int run(const calib_args *a, calib_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->auroc = NAN;
    /* The bytes read now are the ones --write will edit; any change to the
     * file during the run makes the write-back refuse. */
    if (ad_read_file(a->config_path, 16u << 20, &r->config_bytes, &r->config_len, err, errlen) < 0)
        return AD_EXIT_USAGE;
    char name[AD_PATH_MAX + 2];
    snprintf(name, sizeof name, "%s%s", strchr(a->config_path, '/') ? "" : "./", a->config_path);
    if (ad_config_parse(name, (const char *)r->config_bytes, r->config_len, &r->cfg, err,
                        errlen) < 0)
        return AD_EXIT_USAGE;
    if (list_pngs(&r->good, a->good_dir, err, errlen) < 0) return AD_EXIT_FAILURE;
    for (int i = 0; i < a->nbad_dirs; i++)
        if (list_pngs(&r->bad, a->bad_dirs[i], err, errlen) < 0) return AD_EXIT_FAILURE;
    if (r->good.n < 2) {
        ad_err(err, errlen, "%s: only %zu good image; calibration needs at least 2 (and "
               "about 3/rate for the rate asked)", a->good_dir, r->good.n);
        return AD_EXIT_FAILURE;
    }
    ad_detector *det = NULL;
    if (ad_detector_open(&det, &r->cfg, err, errlen) < 0) return AD_EXIT_FAILURE;
    int rc = AD_EXIT_FAILURE;
    if (ad_detector_needs_stats(det)) {
        ad_err(err, errlen, "%s: this detector setting needs per-pixel statistics that "
               "calibrate does not fit", a->config_path);
        goto out;
    }
    if (score_set(det, &r->cfg, &r->good, "good", err, errlen) < 0) goto out;
    if (r->bad.n && score_set(det, &r->cfg, &r->bad, "bad", err, errlen) < 0) goto out;
    snprintf(r->model_sha256, sizeof r->model_sha256, "%s", ad_detector_model_sha256(det));

    const image_set *good = &r->good, *bad = &r->bad;
    AD_ASSERT(ad_threshold_for_frr_conf(good->scores, good->n, a->rate, a->confidence,
                                        &r->ft) == 0);
    if (bad->n) {
        r->auroc = ad_auroc_sets(good->scores, good->n, bad->scores, bad->n);
        AD_ASSERT(ad_threshold_youden(good->scores, good->n, bad->scores, bad->n, &r->sep) == 0);
    }
    r->youden = !strcmp(a->pick, "youden");
    r->chosen = ad_threshold_round(r->youden ? r->sep.threshold : r->ft.threshold, good->scores,
                                   good->n, bad->scores, bad->n, r->text, sizeof r->text);
    rc = 0;
out:
    ad_detector_close(det);
    return rc;
}

/* The threshold for the target false-reject rate, from the good images. */
static void report_frr(const calib_args *a, const calib_result *r)
{
    const ad_frr_threshold *ft = &r->ft;
    const image_set *good = &r->good;
    double rate = a->rate, confidence = a->confidence;
    if (confidence > 0)
        printf("\ntarget false-reject rate %.4g%% at %.4g%% confidence (the rate holds for at "
               "least\n%.4g%% of calibration sets like this one, not just on average):\n",
               rate * 100, confidence * 100, confidence * 100);
    else
        printf("\ntarget false-reject rate %.4g%% (expected; --confidence asks for more):\n",
               rate * 100);
    if (isnan(ft->order_stat))
        printf("  order statistic: none (needs at least %.0f good images for this rate)\n",
               confidence > 0 ? ceil(log(1 - confidence) / log1p(-rate) - 1e-9)
                              : ceil(1 / rate - 1));
    else
        printf("  order statistic X_(%zu) of %zu: %.6g\n", ft->order_rank, good->n,
               ft->order_stat);
    if (isnan(ft->tail))
        printf("  exponential tail: not needed (rate above the fitted tail's %.3g)\n",
               ft->tail_k / ((double)good->n + 1));
    else
        printf("  exponential tail over the top %d scores (from %.6g, mean excess %.4g): %.6g\n",
               ft->tail_k, ft->tail_u, ft->tail_beta, ft->tail);
    printf("  threshold %.6g: expected false-reject rate", ft->threshold);
    if (!isnan(ft->order_frr))
        printf(" <= %.3g%% (order statistic, any distribution),", ft->order_frr * 100);
    printf(" %.3g%% (tail model)\n  on this set: %zu of %zu good images above it\n",
           ft->model_frr * 100, ad_count_above(good->scores, good->n, ft->threshold), good->n);
    if (ft->undersized)
        printf("  WARNING: %zu good images cannot demonstrate a %.4g%% false-reject rate.\n"
               "    With no rejects among n parts the 95%% upper bound of the rate is 3/n, so\n"
               "    %.4g%% takes about %zu good images; this set supports rates down to\n"
               "    about %.3g%%. The rate promised above is an estimate, not yet backed by\n"
               "    observed parts: record more good parts (anomalyctl capture), or ask for\n"
               "    --target-frr %.3g%%.\n",
               good->n, rate * 100, rate * 100, ft->min_images, ft->supported_rate * 100,
               ft->supported_rate * 100);
}

/* With known defects: how well good and bad separate, and the thresholds
 * side by side. */
static void report_separation(const calib_result *r)
{
    const image_set *good = &r->good, *bad = &r->bad;
    const ad_separation *sep = &r->sep;
    printf("\nimage AUROC: %.4f\n", r->auroc);
    printf("best separation (Youden's J = 1 - false-reject rate - escape rate): "
           "threshold %.6g, J %.3f\n", sep->threshold, sep->j);
    if (sep->j <= 0)
        printf("  WARNING: the bad images do not score above the good ones; the model "
               "cannot tell these defects apart at any threshold\n");
    else if (r->auroc < 0.9)
        printf("  WARNING: good and bad scores overlap (AUROC %.3f): no threshold gives both\n"
               "    few false rejects and few escapes (see the table below). A threshold\n"
               "    cannot fix that; the model or the detector settings need work first.\n",
               r->auroc);
    printf("  %-18s %10s %13s %8s\n", "threshold", "", "false-reject", "escape");
    printf("  %-18s %10.6g %12.2f%% %7.2f%%\n", "target rate", r->ft.threshold,
           100 * rate_above(good->scores, good->n, r->ft.threshold),
           100 * (1 - rate_above(bad->scores, bad->n, r->ft.threshold)));
    printf("  %-18s %10.6g %12.2f%% %7.2f%%\n", "youden", sep->threshold, 100 * sep->frr,
           100 * sep->escape);
    printf("  %-18s %10.6g %12.2f%% %7.2f%%\n", "now in the config", r->cfg.threshold,
           100 * rate_above(good->scores, good->n, r->cfg.threshold),
           100 * (1 - rate_above(bad->scores, bad->n, r->cfg.threshold)));
}

/* The chosen threshold: histogram, the images nearest to it, its rates on
 * these sets, and one RESULT line for scripts and tests. */
static void report_choice(const calib_args *a, const calib_result *r)
{
    const image_set *good = &r->good, *bad = &r->bad;
    double chosen = r->chosen;
    printf("\nhistogram:\n");
    ad_histogram_print(stdout, good->scores, good->n, bad->scores, bad->n, chosen, 16, 48);
    printf("\n");
    print_extremes("highest-scoring good images (closest to a false reject):", good, 1,
                   SHOW_EXTREMES);
    if (bad->n)
        print_extremes("lowest-scoring bad images (closest to an escape):", bad, 0, SHOW_EXTREMES);

    printf("\nchosen threshold: %s (%s)\n", r->text,
           r->youden ? "best separation, Youden's J" : "target false-reject rate");
    printf("  false-reject rate on these good images: %.2f%% (%zu of %zu)\n",
           100 * rate_above(good->scores, good->n, chosen),
           ad_count_above(good->scores, good->n, chosen), good->n);
    double chosen_frr = rate_above(good->scores, good->n, chosen);
    double chosen_escape = bad->n ? 1 - rate_above(bad->scores, bad->n, chosen) : NAN;
    if (bad->n)
        printf("  escape rate on these bad images: %.2f%% (%zu of %zu)\n", 100 * chosen_escape,
               bad->n - ad_count_above(bad->scores, bad->n, chosen), bad->n);
    if (r->youden && chosen_frr > a->rate)
        printf("  NOTE: this threshold rejects %.1f%% of the good parts, more than the %.3g%%\n"
               "  target; --pick frr keeps false rejects at the target and lets more defects\n"
               "  escape (see the table above)\n", 100 * chosen_frr, 100 * a->rate);
    printf("RESULT threshold=%s pick=%s good=%zu bad=%zu frr=%.6f escape=%.6f image_auroc=%.4f "
           "target_frr=%g confidence=%g\n", r->text, a->pick, good->n, bad->n, chosen_frr,
           chosen_escape, r->auroc, a->rate, a->confidence);
}

static void report(const calib_args *a, const calib_result *r)
{
    printf("config: %s (threshold now %.6g)\nmodel:  %s (sha256 %.12s)\n", a->config_path,
           r->cfg.threshold, r->cfg.model.path, r->model_sha256);
    printf("good:   %zu images from %s\n", r->good.n, a->good_dir);
    if (r->bad.n) {
        printf("bad:    %zu images from", r->bad.n);
        for (int i = 0; i < a->nbad_dirs; i++) printf(" %s", a->bad_dirs[i]);
        printf("\n");
    }
    printf("\n");
    print_quantiles("good", r->good.scores, r->good.n);
    if (r->bad.n) print_quantiles("bad ", r->bad.scores, r->bad.n);
    report_frr(a, r);
    if (r->bad.n) report_separation(r);
    report_choice(a, r);
}

/* --plot and --write, each saying what it wrote; without --write, how to
 * use the threshold. 0 or -1 with err. */
static int write_outputs(const calib_args *a, const calib_result *r, char *err, size_t errlen)
{
    if (a->plot_path) {
        char title[160];
        const char *base = strrchr(a->config_path, '/');
        base = base ? base + 1 : a->config_path;
        if (r->bad.n)
            snprintf(title, sizeof title, "%s  AUROC %.3f  THRESHOLD %s", base, r->auroc, r->text);
        else
            snprintf(title, sizeof title, "%s  TARGET FRR %.3g%%  THRESHOLD %s", base,
                     a->rate * 100, r->text);
        ad_image plot = {0};
        int rc = ad_calib_plot(&plot, 800, 480, r->good.scores, r->good.n, r->bad.scores,
                               r->bad.n, r->chosen, title, err, errlen);
        if (rc == 0) rc = ad_png_write(a->plot_path, &plot, err, errlen);
        ad_image_free(&plot);
        if (rc < 0) return -1;
        printf("plot: %s\n", a->plot_path);
    }
    if (a->write) {
        if (ad_config_write_threshold(a->config_path, r->chosen, (const char *)r->config_bytes,
                                      r->config_len, err, errlen) < 0)
            return -1;
        printf("wrote threshold: %s to %s (was %.6g; previous file kept as %s.bak)\n"
               "a running daemon picks it up on reload: systemctl reload anomalyd@%s "
               "(SIGHUP)\n", r->text, a->config_path, r->cfg.threshold, a->config_path,
               r->cfg.line.name);
    } else {
        printf("to use it: set 'threshold: %s' in %s, or run again with --write\n", r->text,
               a->config_path);
    }
    return 0;
}

int ad_cmd_calibrate(int argc, char **argv)
{
    calib_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != AD_CLI_RUN) return rc;
    calib_result r;
    char err[AD_ERRLEN];
    rc = run(&a, &r, err, sizeof err);
    if (rc == 0) {
        report(&a, &r);
        if (write_outputs(&a, &r, err, sizeof err) < 0) rc = AD_EXIT_FAILURE;
    }
    if (rc != 0) fprintf(stderr, "anomalyctl calibrate: %s\n", err);
    result_free(&r);
    return rc;
}

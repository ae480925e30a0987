/* The map statistics file beside the model (detector.normalize) with the
 * tiny fixture model on fixtures/parts: fit, save and load give the same
 * scores as fitting in place; damaged, hostile and mismatched files are
 * refused naming the file and the refit command; `anomalyctl train
 * --stats-only` writes it, and `score`, `eval` and `anomalyd --check-config`
 * read it (or fail clearly without it). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/detect.h"
#include "anomalyd/head.h"
#include "anomalyd/image.h"
#include "anomalyd/model.h"
#include "anomalyd/util.h"

#define TRAIN FIXTURES_DIR "/parts/train/good"
#define GOOD FIXTURES_DIR "/parts/test/good/000.png"
#define SPOT FIXTURES_DIR "/parts/test/spot/000.png"

/* A station in a fresh folder: a copy of the fixture model (so the
 * statistics are written beside the copy) and a config like
 * detect_parts.yaml with detector.normalize as asked, loaded into cfg. */
typedef struct station {
    char *dir, *config;
    char model[1024], stats[1100];
} station;

static void load_config(const station *s, ad_config *cfg, bool normalize)
{
    char err[AD_ERRLEN];
    if (ad_config_load(s->config, cfg, err, sizeof err) < 0) fail_msg("%s", err);
    cfg->detector.normalize = normalize;
}

static void station_make(station *s, const char *tag, bool normalize, ad_config *cfg)
{
    s->dir = ts_tmpdir(tag);
    snprintf(s->model, sizeof s->model, "%s/line.safetensors", s->dir);
    ad_stats_path(s->stats, sizeof s->stats, s->model);
    uint8_t *bytes;
    size_t len;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(FIXTURES_DIR "/model/parts.safetensors", 1 << 26, &bytes, &len,
                                  err, sizeof err), 0);
    assert_int_equal(ad_write_file_durable(s->model, bytes, len, err, sizeof err), 0);
    free(bytes);
    char text[4096];
    snprintf(text, sizeof text,
             "line: {name: t}\n"
             "camera: {source: replay, replay_dir: %s, width: 64, height: 64}\n"
             "model: {path: line.safetensors, color: gray, input_width: 64, input_height: 64}\n"
             "detector: {map: diff, noise_level: 0.01, steps: 1, sigma: 1, score: topk,\n"
             "           topk_percent: 0.5, threads: 1, normalize: %s}\n"
             "threshold: 3\n",
             FIXTURES_DIR "/parts/test/good", normalize ? "true" : "false");
    s->config = ts_write_text(s->dir, "line.yaml", text);
    load_config(s, cfg, normalize);
}

static void station_free(station *s)
{
    ts_rmtree(s->dir);
    free(s->dir);
    free(s->config);
}

/* Fits over fixtures/parts/train/good in place and writes the file. */
static ad_detector *fit_and_save(const station *s, const ad_config *cfg)
{
    char err[AD_ERRLEN];
    ad_detector_tuning fit_here = {.normalize = 1};
    ad_detector *d = NULL;
    int n = 0;
    if (ad_detector_open_tuned(&d, cfg, &fit_here, err, sizeof err) < 0 ||
        ad_detector_fit_stats_dir(d, TRAIN, &n, err, sizeof err) < 0 ||
        ad_detector_save_stats(d, s->stats, TRAIN, n, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(n, 60);
    return d;
}

static double score_of(ad_detector *d, const ad_config *cfg, const char *path)
{
    char err[AD_ERRLEN];
    ad_image roi = {0};
    ad_result r;
    if (ad_load_frame_file(cfg, path, &roi, err, sizeof err) < 0 ||
        ad_detector_inspect(d, &roi, &r, err, sizeof err) < 0)
        fail_msg("%s", err);
    ad_image_free(&roi);
    return r.score;
}

static void path_beside_the_model(void **state)
{
    (void)state;
    char out[256];
    ad_stats_path(out, sizeof out, "/var/lib/anomalyd/line3.safetensors");
    assert_string_equal(out, "/var/lib/anomalyd/line3.stats.safetensors");
    ad_stats_path(out, sizeof out, "model.bin");
    assert_string_equal(out, "model.bin.stats.safetensors");
}

static void round_trip_gives_the_same_scores(void **state)
{
    (void)state;
    station s;
    ad_config cfg;
    station_make(&s, "stats-rt", false, &cfg);
    ad_detector *fitted = fit_and_save(&s, &cfg);

    /* the file: format, shape, provenance */
    ad_safetensors st;
    char err[AD_ERRLEN];
    assert_int_equal(ad_safetensors_read(s.stats, &st, err, sizeof err), 0);
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.format"), "anomalyd-map-stats-1");
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.images"), "60");
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.model_sha256"),
                        ad_detector_model_sha256(fitted));
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.detector.noise_level"), "0.01");
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.source"), TRAIN);
    assert_null(ad_safetensors_meta(&st, "anomalyd.head_sha256")); /* map: diff */
    const ad_st_tensor *t = ad_safetensors_find(&st, "std");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 64);
    assert_int_equal(t->shape[1], 64);
    ad_safetensors_free(&st);

    /* detector.normalize reads it: the same scores as the fitted detector,
     * and not the plain ones */
    ad_config ncfg, pcfg;
    load_config(&s, &ncfg, true);
    load_config(&s, &pcfg, false);
    ad_detector *loaded = NULL, *plain = NULL;
    if (ad_detector_open(&loaded, &ncfg, err, sizeof err) < 0) fail_msg("%s", err);
    assert_int_equal(ad_detector_open(&plain, &pcfg, err, sizeof err), 0);
    assert_false(ad_detector_needs_stats(loaded));
    const char *paths[] = {GOOD, SPOT, FIXTURES_DIR "/parts/test/scratch/001.png"};
    for (int i = 0; i < 3; i++) {
        double a = score_of(fitted, &cfg, paths[i]), b = score_of(loaded, &ncfg, paths[i]);
        assert_true(a == b);
        assert_true(fabs(a - score_of(plain, &pcfg, paths[i])) > 1e-3);
    }
    /* normalized scores are in spreads: a spot stands out from a good part */
    assert_true(score_of(loaded, &ncfg, SPOT) > score_of(loaded, &ncfg, GOOD));
    ad_detector_close(plain);
    ad_detector_close(loaded);
    ad_detector_close(fitted);
    station_free(&s);
}

/* Writes the tensors with the good file's metadata, key set to value
 * (added if absent, dropped when value is NULL). */
static void write_variant(const char *path, const ad_safetensors *good, const char *key,
                          const char *value, const ad_st_out *ts, int nt)
{
    const char *mk[64], *mv[64];
    int nm = 0;
    bool seen = false;
    for (int i = 0; i < good->num_meta && nm < 63; i++) {
        bool hit = key && !strcmp(good->meta_keys[i], key);
        seen |= hit;
        if (hit && !value) continue;
        mk[nm] = good->meta_keys[i];
        mv[nm++] = hit ? value : good->meta_values[i];
    }
    if (key && value && !seen) {
        mk[nm] = key;
        mv[nm++] = value;
    }
    char err[AD_ERRLEN];
    if (ad_safetensors_write(path, ts, nt, mk, mv, nm, err, sizeof err) < 0) fail_msg("%s", err);
}

/* Opening with detector.normalize fails; the message names the file, holds
 * `expect` and says how to refit. */
static void open_refused(const station *s, const ad_config *cfg, const char *expect)
{
    char err[AD_ERRLEN];
    ad_detector *d = (ad_detector *)1;
    assert_int_equal(ad_detector_open(&d, cfg, err, sizeof err), -1);
    assert_null(d);
    if (!strstr(err, s->stats) || !strstr(err, expect) || !strstr(err, "--stats-only"))
        fail_msg("expected '%s' naming %s and --stats-only, got: %s", expect, s->stats, err);
}

static void damaged_and_mismatched_files_are_refused(void **state)
{
    (void)state;
    station s;
    ad_config cfg;
    station_make(&s, "stats-bad", true, &cfg);
    open_refused(&s, &cfg, "is missing; fit it with 'anomalyctl train --config");
    ad_detector_close(fit_and_save(&s, &cfg));

    char err[AD_ERRLEN];
    uint8_t *bytes;
    size_t len;
    assert_int_equal(ad_read_file(s.stats, 1 << 20, &bytes, &len, err, sizeof err), 0);
    ad_safetensors good;
    assert_int_equal(ad_safetensors_read(s.stats, &good, err, sizeof err), 0);
    enum { N = 64 * 64 };
    static float mean[N], sd[N], small[32 * 32];
    memcpy(mean, good.data + ad_safetensors_find(&good, "mean")->offset, sizeof mean);
    memcpy(sd, good.data + ad_safetensors_find(&good, "std")->offset, sizeof sd);
    ad_st_out ts[3] = {{.name = "mean", .ndim = 2, .shape = {64, 64}, .data = mean},
                       {.name = "std", .ndim = 2, .shape = {64, 64}, .data = sd},
                       {.name = "extra", .ndim = 2, .shape = {32, 32}, .data = small}};

    /* metadata: another format, model, setting */
    write_variant(s.stats, &good, "anomalyd.format", "anomaly-head-1", ts, 2);
    open_refused(&s, &cfg, "not an anomalyd map statistics file");
    write_variant(s.stats, &good, "anomalyd.model_sha256", "0123456789abcdef", ts, 2);
    open_refused(&s, &cfg, "fitted for the model with sha256 0123456789ab, but");
    write_variant(s.stats, &good, "anomalyd.model_sha256", NULL, ts, 2);
    open_refused(&s, &cfg, "fitted for the model with sha256 (missing)");
    write_variant(s.stats, &good, NULL, NULL, ts, 2);
    cfg.detector.noise_level = 0.25; /* the settings changed since the fit */
    open_refused(&s, &cfg, "fitted with detector.noise_level 0.01, but it is 0.25 now");
    cfg.detector.noise_level = 0.01;
    /* the refit hint offers the folder the statistics came from */
    write_variant(s.stats, &good, "anomalyd.detector.draws", "2", ts, 2);
    open_refused(&s, &cfg, "detector.draws 2, but it is 1 now; refit it with 'anomalyctl train "
                           "--config");
    open_refused(&s, &cfg, "--images " TRAIN " --stats-only");

    /* tensors: shape, missing, extra, values */
    ad_st_out shrunk[2] = {{.name = "mean", .ndim = 2, .shape = {32, 32}, .data = small},
                           {.name = "std", .ndim = 2, .shape = {32, 32}, .data = small}};
    write_variant(s.stats, &good, NULL, NULL, shrunk, 2);
    open_refused(&s, &cfg, "tensor 'mean' is not (H, W) = (64, 64)");
    write_variant(s.stats, &good, NULL, NULL, ts, 1);
    open_refused(&s, &cfg, "holds 1 tensors, expected two: mean and std");
    write_variant(s.stats, &good, NULL, NULL, ts, 3);
    open_refused(&s, &cfg, "holds 3 tensors");
    ad_st_out renamed[2] = {ts[0], ts[1]};
    renamed[1].name = "sd";
    write_variant(s.stats, &good, NULL, NULL, renamed, 2);
    open_refused(&s, &cfg, "tensor 'std' is missing");
    mean[64 + 5] = NAN;
    write_variant(s.stats, &good, NULL, NULL, ts, 2);
    open_refused(&s, &cfg, "tensor 'mean' holds a NaN or infinite value at row 1, column 5");
    mean[64 + 5] = 0;
    sd[2] = INFINITY;
    write_variant(s.stats, &good, NULL, NULL, ts, 2);
    open_refused(&s, &cfg, "tensor 'std' holds a NaN or infinite value at row 0, column 2");
    sd[2] = 0;
    write_variant(s.stats, &good, NULL, NULL, ts, 2);
    open_refused(&s, &cfg, "tensor 'std' is 0 at row 0, column 2; a spread must be above 0");
    sd[2] = -1;
    write_variant(s.stats, &good, NULL, NULL, ts, 2);
    open_refused(&s, &cfg, "tensor 'std' is -1 at row 0, column 2");

    /* bytes: truncated, hostile header length */
    assert_int_equal(ad_write_file_durable(s.stats, bytes, len - 100, err, sizeof err), 0);
    open_refused(&s, &cfg, "data buffer");
    uint8_t hostile[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    assert_int_equal(ad_write_file_durable(s.stats, hostile, sizeof hostile, err, sizeof err), 0);
    open_refused(&s, &cfg, "header length");

    /* the good bytes back: accepted */
    assert_int_equal(ad_write_file_durable(s.stats, bytes, len, err, sizeof err), 0);
    ad_detector *d = NULL;
    if (ad_detector_open(&d, &cfg, err, sizeof err) < 0) fail_msg("%s", err);
    ad_detector_close(d);
    free(bytes);
    ad_safetensors_free(&good);
    station_free(&s);
}

/* The fixture head in other bytes (one more metadata key): what a retrained
 * head is to the statistics. */
static void write_other_head(const char *path)
{
    char err[AD_ERRLEN];
    ad_safetensors fixture;
    assert_int_equal(ad_safetensors_read(FIXTURES_DIR "/model/parts.head.safetensors", &fixture,
                                         err, sizeof err), 0);
    ad_st_out *ts = ad_xcalloc((size_t)fixture.num_tensors, sizeof *ts);
    for (int i = 0; i < fixture.num_tensors; i++) {
        const ad_st_tensor *t = &fixture.tensors[i];
        ts[i] = (ad_st_out){.name = t->name, .ndim = t->ndim,
                            .data = (const float *)(fixture.data + t->offset)};
        memcpy(ts[i].shape, t->shape, sizeof t->shape);
    }
    write_variant(path, &fixture, "anomalyd.note", "retrained", ts, fixture.num_tensors);
    free(ts);
    ad_safetensors_free(&fixture);
}

/* With detector.map head the head is part of what the statistics were
 * fitted for: its sha256 and the map are in the file; another head, map or
 * eval tuning is refused. */
static void the_head_is_part_of_the_fit(void **state)
{
    (void)state;
    station s;
    ad_config cfg;
    station_make(&s, "stats-head", true, &cfg);
    char err[AD_ERRLEN], head[1100], head_sha[65];
    ad_head_path(head, sizeof head, s.model);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(ad_read_file(FIXTURES_DIR "/model/parts.head.safetensors", 1 << 24, &bytes,
                                  &len, err, sizeof err), 0);
    assert_int_equal(ad_write_file_durable(head, bytes, len, err, sizeof err), 0);
    free(bytes);
    assert_int_equal(ad_sha256_file(head, head_sha, err, sizeof err), 0);

    cfg.detector.map = AD_MAP_HEAD;
    ad_detector_close(fit_and_save(&s, &cfg));
    ad_safetensors st;
    assert_int_equal(ad_safetensors_read(s.stats, &st, err, sizeof err), 0);
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.head_sha256"), head_sha);
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.detector.map"), "head");
    ad_safetensors_free(&st);
    ad_detector *d = NULL;
    if (ad_detector_open(&d, &cfg, err, sizeof err) < 0) fail_msg("%s", err);
    ad_detector_close(d);

    cfg.detector.map = AD_MAP_BOTH;
    open_refused(&s, &cfg, "fitted with detector.map head, but it is both now");
    cfg.detector.map = AD_MAP_HEAD;
    ad_detector_tuning ssim = {.ssim_weight = 1};
    assert_int_equal(ad_detector_open_tuned(&d, &cfg, &ssim, err, sizeof err), -1);
    assert_non_null(strstr(err, "fitted with eval --tune ssim 0, but it is 1 now"));
    write_other_head(head);
    open_refused(&s, &cfg, "fitted for another head, but the map uses the head with sha256");
    station_free(&s);
}

static double field(const char *out, const char *key)
{
    const char *k = strstr(out, key);
    if (!k) fail_msg("no '%s' in: %s", key, out);
    return strtod(k + strlen(key), NULL);
}

static void every_tool_reads_the_file(void **state)
{
    (void)state;
    station s;
    ad_config cfg;
    station_make(&s, "stats-cli", true, &cfg);
    char args[4096];
    int rc;

    /* without the file: score, eval and the daemon's check fail naming it */
    snprintf(args, sizeof args, "score --config %s " GOOD, s.config);
    char *out = ts_run_bin("anomalyctl", args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, s.stats));
    assert_non_null(strstr(out, "--stats-only"));
    free(out);
    snprintf(args, sizeof args, "--config %s --check-config", s.config);
    out = ts_run_bin("anomalyd", args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, s.stats));
    free(out);

    /* train --stats-only writes it; other training options are refused */
    snprintf(args, sizeof args, "train --config %s --images " TRAIN " --stats-only --steps 5",
             s.config);
    out = ts_run_bin("anomalyctl", args, &rc);
    assert_int_equal(rc, 2);
    free(out);
    snprintf(args, sizeof args, "train --config %s --images " TRAIN " --stats-only", s.config);
    out = ts_run_bin("anomalyctl", args, &rc);
    if (rc != 0) fail_msg("%s", out);
    assert_non_null(strstr(out, "statistics of 60 images written to"));
    free(out);

    /* score gives what the library gives with the file */
    ad_detector *d = NULL;
    char err[AD_ERRLEN];
    if (ad_detector_open(&d, &cfg, err, sizeof err) < 0) fail_msg("%s", err);
    snprintf(args, sizeof args, "score --config %s " SPOT, s.config);
    out = ts_run_bin("anomalyctl", args, &rc);
    assert_true(rc == 0 || rc == 3);
    assert_float_equal(field(out, " score="), score_of(d, &cfg, SPOT), 1e-5);
    free(out);
    ad_detector_close(d);
    snprintf(args, sizeof args, "--config %s --check-config", s.config);
    out = ts_run_bin("anomalyd", args, &rc);
    assert_int_equal(rc, 0);
    free(out);

    /* eval from the file = eval fitting the same images itself */
    snprintf(args, sizeof args, "eval --config %s --dataset " FIXTURES_DIR "/parts --limit 2",
             s.config);
    char *from_file = ts_run_bin("anomalyctl", args, &rc);
    assert_int_equal(rc, 0);
    snprintf(args, sizeof args,
             "eval --config %s --dataset " FIXTURES_DIR "/parts --limit 2 --tune normalize=1",
             s.config);
    char *fitted = ts_run_bin("anomalyctl", args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(fitted, "per-pixel statistics from 60 good images"));
    const char *a = strstr(from_file, "RESULT image_auroc="), *b = strstr(fitted, "RESULT image_auroc=");
    assert_non_null(a);
    assert_non_null(b);
    assert_memory_equal(a, b, strlen("RESULT image_auroc=0.0000 pixel_auroc=0.0000"));
    free(from_file);
    free(fitted);
    station_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_beside_the_model),
        cmocka_unit_test(round_trip_gives_the_same_scores),
        cmocka_unit_test(damaged_and_mismatched_files_are_refused),
        cmocka_unit_test(the_head_is_part_of_the_fit),
        cmocka_unit_test(every_tool_reads_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

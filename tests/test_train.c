/* Training on the fixture parts: falling loss, a loadable model, bit-for-bit
 * repeatability, exact resume (from the end of a run and from a stop), and
 * the errors for bad training data and bad checkpoints. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/diffusion.h"
#include "anomalyd/image.h"
#include "anomalyd/model.h"
#include "anomalyd/util.h"

#define GOOD FIXTURES_DIR "/parts/train/good"
#define GOOD_RGB FIXTURES_DIR "/parts_rgb/train/good"

/* A config for a tiny, fast run writing into dir. One compute thread keeps
 * the tests quick on a busy machine; same_seed_same_model uses two. */
static int threads = 1;
/* train.defect_share of the configs made next */
static double defect_share = 0;

static void make_config(ad_config *cfg, const char *dir, const char *model_name,
                        const char *color, int crop, int steps, int ckpt_every)
{
    char text[2048];
    snprintf(text, sizeof text,
             "model:\n"
             "  path: %s/%s\n"
             "  color: %s\n"
             "  input_width: 64\n"
             "  input_height: 64\n"
             "  base_channels: 8\n"
             "  channel_mult: [1, 2]\n"
             "  res_blocks: 1\n"
             "  groups: 4\n"
             "detector:\n"
             "  threads: %d\n"
             "threshold: 0.5\n"
             "train:\n"
             "  steps: %d\n"
             "  batch: 4\n"
             "  crop: %d\n"
             "  lr: 0.002\n"
             "  warmup: 5\n"
             "  ema: 0.99\n"
             "  weight_decay: 0.01\n"
             "  flip_h: true\n"
             "  flip_v: true\n"
             "  seed: 7\n"
             "  checkpoint_every: %d\n"
             "  defect_share: %g\n",
             dir, model_name, color, threads, steps, crop, ckpt_every, defect_share);
    char name[64];
    snprintf(name, sizeof name, "%s.yaml", model_name);
    char *path = ts_write_text(dir, name, text);
    char err[AD_ERRLEN];
    if (ad_config_load(path, cfg, err, sizeof err) != 0) fail_msg("config: %s", err);
    free(path);
}

typedef struct loss_log {
    double loss[512];
    long n;
    long stop_at;
    volatile int *flag;
} loss_log;

static void record(const ad_train_progress *p, void *user)
{
    loss_log *l = user;
    if (l->n < 512) l->loss[l->n] = p->loss;
    l->n++;
    if (l->flag && p->step == l->stop_at) *l->flag = 1;
}

static int train(const ad_config *cfg, const char *images, const char *resume, long steps,
                 loss_log *log, char *err, size_t errlen)
{
    ad_train_opts o = {.cfg = cfg, .images_dir = images, .resume_path = resume, .steps = steps,
                       .progress = log ? record : NULL, .user = log,
                       .stop_flag = log ? log->flag : NULL};
    return ad_train_run(&o, err, errlen);
}

/* Every tensor of two safetensors files holds the same bytes. */
static void assert_same_tensors(const char *a, const char *b)
{
    ad_safetensors x = {0}, y = {0};
    char err[AD_ERRLEN];
    if (ad_safetensors_read(a, &x, err, sizeof err) != 0) fail_msg("%s", err);
    if (ad_safetensors_read(b, &y, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(x.num_tensors, y.num_tensors);
    for (int i = 0; i < x.num_tensors; i++) {
        const ad_st_tensor *tx = &x.tensors[i];
        const ad_st_tensor *ty = ad_safetensors_find(&y, tx->name);
        assert_non_null(ty);
        assert_int_equal(tx->nbytes, ty->nbytes);
        if (memcmp(x.data + tx->offset, y.data + ty->offset, tx->nbytes) != 0)
            fail_msg("tensor %s differs between %s and %s", tx->name, a, b);
    }
    ad_safetensors_free(&x);
    ad_safetensors_free(&y);
}

static char *join(const char *dir, const char *name)
{
    char *p = ad_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void loss_falls_and_model_loads(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config cfg;
    make_config(&cfg, dir, "m.safetensors", "gray", 32, 60, 0);
    loss_log log = {0};
    char err[AD_ERRLEN];
    if (train(&cfg, GOOD, NULL, 0, &log, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(log.n, 60);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) {
        first += log.loss[i];
        last += log.loss[50 + i];
    }
    /* eps-prediction MSE starts near 1 (or above) and must drop clearly */
    assert_true(first / 10 > 0.5);
    assert_true(last < 0.6 * first);

    ad_model *m = NULL;
    if (ad_model_load(cfg.model.path, &m, err, sizeof err) != 0) fail_msg("%s", err);
    assert_non_null(strstr(m->provenance, "trained 60 steps"));
    const ad_unet_hparams *hp = ad_unet_hp(m->unet);
    assert_int_equal(hp->in_channels, 1);
    assert_int_equal(hp->base_channels, 8);
    assert_int_equal(hp->num_levels, 2);
    assert_int_equal(m->T, AD_DIFFUSION_T);
    assert_int_equal(m->schedule, AD_SCHEDULE_LINEAR);
    ad_model_free(m);

    ad_safetensors st = {0};
    if (ad_safetensors_read(cfg.model.path, &st, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.train.steps"), "60");
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.train.seed"), "7");
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.train.dataset_size"), "60");
    assert_non_null(ad_safetensors_meta(&st, "anomalyd.train.final_loss"));
    assert_non_null(ad_safetensors_meta(&st, "anomalyd.train.date"));
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.version"), ANOMALYD_VERSION);
    const char *prov = ad_safetensors_meta(&st, AD_META_PROVENANCE);
    assert_non_null(prov);
    assert_non_null(strstr(prov, "trained 60 steps"));
    assert_non_null(strstr(prov, "on 60 images, seed 7"));
    ad_safetensors_free(&st);

    /* the checkpoint sits beside the model */
    char *ckpt = join(dir, "m.safetensors.ckpt");
    struct stat sb;
    assert_int_equal(stat(ckpt, &sb), 0);
    free(ckpt);
    ts_rmtree(dir);
    free(dir);
}

static void same_seed_same_model(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config a, b;
    char err[AD_ERRLEN];
    /* two threads: the kernels' reductions must not depend on timing */
    threads = 2;
    make_config(&a, dir, "a.safetensors", "gray", 32, 12, 0);
    make_config(&b, dir, "b.safetensors", "gray", 32, 12, 0);
    threads = 1;
    if (train(&a, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    if (train(&b, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_same_tensors(a.model.path, b.model.path);
    char *ca = join(dir, "a.safetensors.ckpt"), *cb = join(dir, "b.safetensors.ckpt");
    assert_same_tensors(ca, cb);
    /* another seed gives another model */
    b.train.seed = 8;
    if (train(&b, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    ad_safetensors x = {0}, y = {0};
    assert_int_equal(ad_safetensors_read(a.model.path, &x, err, sizeof err), 0);
    assert_int_equal(ad_safetensors_read(b.model.path, &y, err, sizeof err), 0);
    assert_int_equal(x.data_len, y.data_len);
    assert_true(memcmp(x.data, y.data, x.data_len) != 0);
    ad_safetensors_free(&x);
    ad_safetensors_free(&y);
    free(ca);
    free(cb);
    ts_rmtree(dir);
    free(dir);
}

static void resume_continues_exactly(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config straight, split, stopped;
    char err[AD_ERRLEN];
    const int N = 24, K = 9;
    make_config(&straight, dir, "straight.safetensors", "gray", 32, N, 0);
    make_config(&split, dir, "split.safetensors", "gray", 32, N, 0);
    make_config(&stopped, dir, "stopped.safetensors", "gray", 32, N, 5);
    if (train(&straight, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);

    /* K steps as a finished run, then resume its final checkpoint to N */
    if (train(&split, GOOD, NULL, K, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    char *ck_split = join(dir, "split.safetensors.ckpt");
    loss_log rest = {0};
    if (train(&split, GOOD, ck_split, 0, &rest, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(rest.n, N - K);
    assert_same_tensors(straight.model.path, split.model.path);
    char *ck_straight = join(dir, "straight.safetensors.ckpt");
    assert_same_tensors(ck_straight, ck_split);

    /* stopped by the flag after step 13 (periodic checkpoints at 5 and 10
     * overwritten by the stop checkpoint), then resumed */
    volatile int flag = 0;
    loss_log stop = {.stop_at = 13, .flag = &flag};
    assert_int_equal(train(&stopped, GOOD, NULL, 0, &stop, err, sizeof err), 1);
    assert_int_equal(stop.n, 13);
    struct stat sb;
    assert_int_not_equal(stat(stopped.model.path, &sb), 0); /* no model yet */
    char *ck_stopped = join(dir, "stopped.safetensors.ckpt");
    ad_safetensors st = {0};
    assert_int_equal(ad_safetensors_read(ck_stopped, &st, err, sizeof err), 0);
    assert_string_equal(ad_safetensors_meta(&st, "step"), "13");
    ad_safetensors_free(&st);
    if (train(&stopped, GOOD, ck_stopped, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_same_tensors(straight.model.path, stopped.model.path);

    /* resuming a finished checkpoint just writes the model again */
    if (train(&split, GOOD, ck_split, 0, &rest, err, sizeof err) != 0) fail_msg("%s", err);
    assert_same_tensors(straight.model.path, split.model.path);

    free(ck_split);
    free(ck_straight);
    free(ck_stopped);
    ts_rmtree(dir);
    free(dir);
}

/* Defect removal: every crop gets a synthetic defect to remove; the run
 * learns something else than plain denoising, keeps finite losses, and
 * resumes exactly (the defect draws come from the same stream). */
static void defect_removal_trains_and_resumes(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config plain, straight, split;
    char err[AD_ERRLEN];
    const int N = 12, K = 5;
    make_config(&plain, dir, "plain.safetensors", "gray", 32, N, 0);
    defect_share = 1;
    make_config(&straight, dir, "straight.safetensors", "gray", 32, N, 0);
    make_config(&split, dir, "split.safetensors", "gray", 32, N, 0);
    defect_share = 0;
    assert_true(straight.train.defect_share == 1.0);
    loss_log losses = {0};
    if (train(&plain, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    if (train(&straight, GOOD, NULL, 0, &losses, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(losses.n, N);
    for (long i = 0; i < losses.n; i++) assert_true(isfinite(losses.loss[i]));
    if (train(&split, GOOD, NULL, K, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    char *ck = join(dir, "split.safetensors.ckpt");
    if (train(&split, GOOD, ck, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_same_tensors(straight.model.path, split.model.path);

    /* not the plain model: the defects changed what it learned */
    ad_safetensors a = {0}, b = {0};
    assert_int_equal(ad_safetensors_read(plain.model.path, &a, err, sizeof err), 0);
    assert_int_equal(ad_safetensors_read(straight.model.path, &b, err, sizeof err), 0);
    assert_int_equal(a.data_len, b.data_len);
    assert_true(memcmp(a.data, b.data, a.data_len) != 0);
    ad_safetensors_free(&a);
    ad_safetensors_free(&b);
    free(ck);
    ts_rmtree(dir);
    free(dir);
}

static void rgb_model_trains(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config cfg;
    char err[AD_ERRLEN];
    make_config(&cfg, dir, "rgb.safetensors", "rgb", 32, 4, 0);
    if (train(&cfg, GOOD_RGB, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    ad_model *m = NULL;
    if (ad_model_load(cfg.model.path, &m, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(ad_unet_hp(m->unet)->in_channels, 3);
    ad_model_free(m);
    /* a gray model accepts colour images (converted to luma) */
    make_config(&cfg, dir, "gray.safetensors", "gray", 32, 2, 0);
    if (train(&cfg, GOOD_RGB, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    ts_rmtree(dir);
    free(dir);
}

static void write_png(const char *dir, const char *name, int w, int h, int c)
{
    ad_image im = {0};
    assert_int_equal(ad_image_alloc(&im, w, h, c), 0);
    for (size_t i = 0; i < (size_t)w * h * c; i++) im.px[i] = (uint8_t)(i * 37);
    char *p = join(dir, name);
    char err[AD_ERRLEN];
    if (ad_png_write(p, &im, err, sizeof err) != 0) fail_msg("%s", err);
    free(p);
    ad_image_free(&im);
}

static void expect_error(const ad_config *cfg, const char *images, const char *resume,
                         const char *needle)
{
    char err[AD_ERRLEN] = "";
    int rc = train(cfg, images, resume, 0, NULL, err, sizeof err);
    if (rc != -1) fail_msg("expected an error containing '%s', got rc %d", needle, rc);
    if (!strstr(err, needle)) fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void bad_training_data_is_refused(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config cfg;
    make_config(&cfg, dir, "m.safetensors", "gray", 32, 2, 0);
    char *imgs = join(dir, "imgs");
    char err[AD_ERRLEN];
    assert_int_equal(ad_mkdirs(imgs, 0755, err, sizeof err), 0);

    expect_error(&cfg, "/nonexistent/folder", NULL, "folder: cannot open the folder");
    expect_error(&cfg, imgs, NULL, "imgs: no PNG images (*.png) in the folder");
    free(ts_write_text(imgs, "notes.txt", "not an image\n"));
    expect_error(&cfg, imgs, NULL, "in the folder; it holds only notes.txt");
    expect_error(&cfg, FIXTURES_DIR "/parts", NULL, "e.g. DATASET/train/good");

    /* a non-PNG file beside good ones is skipped, training goes on */
    write_png(imgs, "a.png", 64, 64, 1);
    write_png(imgs, "b.png", 80, 48, 1); /* resized to 64x64 */
    if (train(&cfg, imgs, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);

    /* a damaged .png is an error naming it */
    free(ts_write_text(imgs, "c.png", "\x89PNG\r\n\x1a\n truncated"));
    expect_error(&cfg, imgs, NULL, "c.png");
    char *c = join(imgs, "c.png");
    unlink(c);
    free(c);

    /* smaller than the crop */
    write_png(imgs, "d.png", 16, 16, 1);
    expect_error(&cfg, imgs, NULL, "smaller than the 32-pixel training crop");
    char *d = join(imgs, "d.png");
    unlink(d);
    free(d);

    /* an RGB model cannot learn colour from gray images */
    static ad_config rgb;
    make_config(&rgb, dir, "rgb.safetensors", "rgb", 32, 2, 0);
    expect_error(&rgb, imgs, NULL, "grayscale but model.color is rgb");

    /* crop larger than the model input, crop not a multiple of the levels */
    cfg.train.crop = 128;
    expect_error(&cfg, imgs, NULL, "larger than the model input");
    cfg.train.crop = 33;
    expect_error(&cfg, imgs, NULL, "multiple of 2");
    cfg.train.crop = 32;

    /* checkpoints: a model file is not one, another architecture is refused,
     * a missing file is named */
    expect_error(&cfg, imgs, cfg.model.path, "not a training checkpoint");
    char *ck = join(dir, "m.safetensors.ckpt");
    cfg.model.base_channels = 16;
    expect_error(&cfg, imgs, ck, "base_channels 8 but the config asks for 16");
    cfg.model.base_channels = 8;
    cfg.train.schedule = AD_SCHEDULE_COSINE;
    expect_error(&cfg, imgs, ck, "linear schedule");
    cfg.train.schedule = AD_SCHEDULE_LINEAR;
    expect_error(&cfg, imgs, "/nonexistent/x.ckpt", "/nonexistent/x.ckpt");
    free(ck);

    /* an unwritable model folder is found before training starts */
    snprintf(cfg.model.path, sizeof cfg.model.path, "/proc/anomalyd-test/m.safetensors");
    cfg.train.checkpoint[0] = 0;
    char err2[AD_ERRLEN];
    assert_int_equal(train(&cfg, imgs, NULL, 0, NULL, err2, sizeof err2), -1);
    assert_non_null(strstr(err2, "/proc/anomalyd-test"));

    free(imgs);
    ts_rmtree(dir);
    free(dir);
}

/* Rewrites checkpoint src into dst with metadata `key` set to `value`
 * (removed when value is NULL), tensor `drop` left out, and tensor
 * `shorten` one value shorter. */
static void rewrite_checkpoint(const char *src, const char *dst, const char *key,
                               const char *value, const char *drop, const char *shorten)
{
    ad_safetensors st = {0};
    char err[AD_ERRLEN];
    if (ad_safetensors_read(src, &st, err, sizeof err) != 0) fail_msg("%s", err);
    ad_st_out t[16];
    int nt = 0;
    for (int i = 0; i < st.num_tensors && nt < 16; i++) {
        const ad_st_tensor *x = &st.tensors[i];
        if (drop && !strcmp(x->name, drop)) continue;
        t[nt] = (ad_st_out){.name = x->name, .ndim = x->ndim,
                            .data = (const float *)(st.data + x->offset)};
        for (int d = 0; d < x->ndim; d++) t[nt].shape[d] = x->shape[d];
        if (shorten && !strcmp(x->name, shorten)) t[nt].shape[0]--;
        nt++;
    }
    const char *keys[64], *vals[64];
    int nm = 0, found = 0;
    for (int i = 0; i < st.num_meta && nm < 63; i++) {
        if (key && !strcmp(st.meta_keys[i], key)) {
            found = 1;
            if (!value) continue;
            keys[nm] = key;
            vals[nm++] = value;
            continue;
        }
        keys[nm] = st.meta_keys[i];
        vals[nm++] = st.meta_values[i];
    }
    if (key && !found) fail_msg("checkpoint has no metadata '%s'", key);
    if (ad_safetensors_write(dst, t, nt, keys, vals, nm, err, sizeof err) != 0)
        fail_msg("%s", err);
    ad_safetensors_free(&st);
}

static void hostile_checkpoints_are_refused(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config cfg;
    char err[AD_ERRLEN];
    make_config(&cfg, dir, "m.safetensors", "gray", 32, 3, 0);
    if (train(&cfg, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    char *ck = join(dir, "m.safetensors.ckpt"), *bad = join(dir, "bad.ckpt");
    struct {
        const char *key, *value, *drop, *shorten, *want;
    } cases[] = {
        {"format", "something-else", NULL, NULL, "not a training checkpoint"},
        {"format_version", "2", NULL, NULL, "format version 2"},
        {"rng", "zz", NULL, NULL, "RNG state 'zz' is malformed"},
        {"step", "-3", NULL, NULL, "metadata 'step' must be an integer >= 0, got '-3'"},
        {"adam_step", "many", NULL, NULL, "'adam_step' must be an integer >= 0, got 'many'"},
        {"loss_smoothed", NULL, NULL, NULL,
         "metadata 'loss_smoothed' is missing (not a training checkpoint?)"},
        {"train_seconds", "0x1p", NULL, NULL, "'train_seconds' is not a number"},
        {"channel_mult", "1,2,2", NULL, NULL, "channel_mult [1,2,2]"},
        {"groups", "eight", NULL, NULL, "metadata 'groups' must be an integer, got 'eight'"},
        {NULL, NULL, "adam_v", NULL, "has no tensor 'adam_v'"},
        {NULL, NULL, NULL, "ema", "tensor 'ema' holds"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite_checkpoint(ck, bad, cases[i].key, cases[i].value, cases[i].drop,
                           cases[i].shorten);
        expect_error(&cfg, GOOD, bad, cases[i].want);
    }
    /* a truncated file: the safetensors reader refuses it, naming the file */
    uint8_t *data;
    size_t len;
    assert_int_equal(ad_read_file(ck, 1 << 26, &data, &len, err, sizeof err), 0);
    assert_int_equal(ad_write_file_durable(bad, data, len / 2, err, sizeof err), 0);
    free(data);
    expect_error(&cfg, GOOD, bad, "bad.ckpt");
    /* a different batch is allowed (with a warning) */
    rewrite_checkpoint(ck, bad, "batch", "16", NULL, NULL);
    if (train(&cfg, GOOD, bad, 5, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    free(ck);
    free(bad);
    ts_rmtree(dir);
    free(dir);
}

/* A periodic checkpoint (what a crash leaves) also continues exactly. */
typedef struct copy_at {
    long step;
    const char *from, *to;
} copy_at;

static void copy_checkpoint(const ad_train_progress *p, void *user)
{
    copy_at *c = user;
    if (p->step != c->step) return;
    uint8_t *data;
    size_t len;
    char err[AD_ERRLEN];
    if (ad_read_file(c->from, 1 << 26, &data, &len, err, sizeof err) != 0) fail_msg("%s", err);
    if (ad_write_file_durable(c->to, data, len, err, sizeof err) != 0) fail_msg("%s", err);
    free(data);
}

static void periodic_checkpoint_resumes_exactly(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("train");
    static ad_config straight, periodic;
    char err[AD_ERRLEN];
    make_config(&straight, dir, "straight.safetensors", "gray", 32, 16, 0);
    make_config(&periodic, dir, "periodic.safetensors", "gray", 32, 16, 5);
    if (train(&straight, GOOD, NULL, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    char *ck = join(dir, "periodic.safetensors.ckpt"), *saved = join(dir, "at10.ckpt");
    /* progress for step 11 runs after the step-10 checkpoint was written */
    copy_at c = {.step = 11, .from = ck, .to = saved};
    ad_train_opts o = {.cfg = &periodic, .images_dir = GOOD, .progress = copy_checkpoint,
                       .user = &c};
    if (ad_train_run(&o, err, sizeof err) != 0) fail_msg("%s", err);
    ad_safetensors st = {0};
    assert_int_equal(ad_safetensors_read(saved, &st, err, sizeof err), 0);
    assert_string_equal(ad_safetensors_meta(&st, "step"), "10");
    ad_safetensors_free(&st);
    unlink(periodic.model.path);
    if (train(&periodic, GOOD, saved, 0, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_same_tensors(straight.model.path, periodic.model.path);
    free(ck);
    free(saved);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_falls_and_model_loads),
        cmocka_unit_test(same_seed_same_model),
        cmocka_unit_test(resume_continues_exactly),
        cmocka_unit_test(defect_removal_trains_and_resumes),
        cmocka_unit_test(rgb_model_trains),
        cmocka_unit_test(bad_training_data_is_refused),
        cmocka_unit_test(hostile_checkpoints_are_refused),
        cmocka_unit_test(periodic_checkpoint_resumes_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

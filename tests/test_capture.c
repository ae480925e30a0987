/* Replay source, `anomalyctl capture`, and a smoke test against a real
 * /dev/video0 where one exists (skipped otherwise). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#include "anomalyd/capture.h"
#include "anomalyd/config.h"
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#define FRAMES_DIR FIXTURES_DIR "/replay/frames"
#define CAPTURE_CONFIG FIXTURES_DIR "/configs/capture_replay.yaml"
#define NFRAMES 24

static ad_capture_options replay_options(const char *dir, int channels, double fps, bool loop)
{
    ad_capture_options o;
    memset(&o, 0, sizeof o);
    o.source = AD_SOURCE_REPLAY;
    snprintf(o.replay_dir, sizeof o.replay_dir, "%s", dir);
    o.replay_loop = loop;
    o.channels = channels;
    o.fps = fps;
    return o;
}

static int count_pngs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".png")) n++;
    closedir(d);
    return n;
}

static void test_replay_order_and_end(void **state)
{
    (void)state;
    assert_int_equal(count_pngs(FRAMES_DIR), NFRAMES);
    ad_capture_options o = replay_options(FRAMES_DIR, 1, 1000, false);
    ad_source *src = NULL;
    char err[AD_ERRLEN], granted[512];
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, granted, sizeof granted, err, sizeof err), 0);
    assert_non_null(strstr(granted, "replay of 24 PNG frames"));
    ad_image frame = {0};
    for (int i = 0; i < NFRAMES; i++) {
        uint64_t seq = 99, dropped = 99;
        assert_int_equal(ad_source_grab(src, &frame, &seq, &dropped, err, sizeof err),
                         AD_CAPTURE_OK);
        assert_int_equal(seq, (uint64_t)i);
        assert_int_equal(dropped, 0);
        char path[512];
        snprintf(path, sizeof path, "%s/frame_%04d.png", FRAMES_DIR, i);
        ad_image want = {0};
        assert_int_equal(ad_png_read(path, 1, &want, err, sizeof err), 0);
        assert_int_equal(frame.w, want.w);
        assert_int_equal(frame.h, want.h);
        assert_int_equal(frame.c, 1);
        assert_memory_equal(frame.px, want.px, (size_t)want.w * want.h);
        ad_image_free(&want);
    }
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_END);
    assert_non_null(strstr(err, "finished after 24 frames"));
    ad_source_info info;
    ad_source_get_info(src, &info);
    assert_int_equal(info.frames, NFRAMES);
    assert_int_equal(info.width, 80);
    ad_source_close(src);
    ad_source_close(src);
    /* reopening starts from the first frame again */
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    uint64_t seq = 0;
    assert_int_equal(ad_source_grab(src, &frame, &seq, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(seq, NFRAMES); /* numbering continues */
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_replay_loop_and_rgb(void **state)
{
    (void)state;
    ad_capture_options o = replay_options(FRAMES_DIR, 3, 1000, true);
    ad_source *src = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    ad_image frame = {0}, first = {0};
    for (int i = 0; i <= NFRAMES; i++) {
        assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
        assert_int_equal(frame.c, 3);
        if (i == 0) assert_int_equal(ad_image_copy(&first, &frame), 0);
    }
    /* frame 25 is frame 1 again */
    assert_memory_equal(frame.px, first.px, (size_t)first.w * first.h * 3);
    /* gray PNGs expanded to RGB: channels equal */
    assert_int_equal(frame.px[0], frame.px[1]);
    assert_int_equal(frame.px[1], frame.px[2]);
    ad_image_free(&frame);
    ad_image_free(&first);
    ad_source_destroy(src);
}

static void test_replay_keeps_the_rate(void **state)
{
    (void)state;
    /* 11 frames at 50 fps cannot arrive in less than 10 periods (0.2 s):
     * a lower bound only, which a slow machine cannot break. */
    ad_capture_options o = replay_options(FRAMES_DIR, 1, 50, false);
    ad_source *src = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    ad_image frame = {0};
    double t0 = ad_now_sec();
    for (int i = 0; i < 11; i++)
        assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_true(ad_now_sec() - t0 >= 0.2 - 0.02 - 1e-3); /* first frame is due at once */
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_replay_no_burst_after_stall(void **state)
{
    (void)state;
    /* 10 fps; the consumer stalls 1.3 s: the overdue frame comes at once,
     * but the schedule restarts there instead of firing 12 frames in a burst,
     * so the next one waits a period (a lower bound: cannot fail by slowness). */
    ad_capture_options o = replay_options(FRAMES_DIR, 1, 10, false);
    ad_source *src = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    ad_image frame = {0};
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    struct timespec stall = {1, 300000000L};
    nanosleep(&stall, NULL);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    double t = ad_now_sec();
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_true(ad_now_sec() - t >= 0.1 - 0.01);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

static void test_replay_bad_files(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("capture-replay");
    char err[AD_ERRLEN];
    ad_source *src = NULL;
    ad_capture_options o = replay_options(dir, 1, 1000, false);
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, ": no PNG images (*.png) in the folder"));

    /* a corrupt PNG between two good ones: skipped with its name, then go on */
    ad_image im = {0};
    assert_int_equal(ad_image_alloc(&im, 16, 16, 1), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/a.png", dir);
    assert_int_equal(ad_png_write(path, &im, err, sizeof err), 0);
    free(ts_write_text(dir, "b.png", "this is not a PNG"));
    snprintf(path, sizeof path, "%s/c.PNG", dir);
    assert_int_equal(ad_png_write(path, &im, err, sizeof err), 0);
    free(ts_write_text(dir, "notes.txt", "ignored"));
    ad_image_free(&im);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    ad_image frame = {0};
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_AGAIN);
    assert_non_null(strstr(err, "b.png"));
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_END);
    ad_image_free(&frame);
    ad_source_destroy(src);

    o = replay_options("/nonexistent/anomalyd-frames", 1, 10, false);
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), AD_CAPTURE_ERROR);
    assert_non_null(strstr(err, "/nonexistent/anomalyd-frames"));
    ad_source_destroy(src);
    ts_rmtree(dir);
    free(dir);
}

static void test_source_from_config(void **state)
{
    (void)state;
    ad_config cfg;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_load(CAPTURE_CONFIG, &cfg, err, sizeof err), 0);
    ad_source *src = NULL;
    assert_int_equal(ad_source_init(&src, &cfg, err, sizeof err), 0);
    assert_int_equal(ad_source_open(src, NULL, 0, err, sizeof err), 0);
    ad_image frame = {0};
    assert_int_equal(ad_source_grab(src, &frame, NULL, NULL, err, sizeof err), AD_CAPTURE_OK);
    assert_int_equal(frame.c, 1); /* auto -> model.color gray */
    ad_image_free(&frame);
    ad_source_destroy(src);
}

/* The reload's "did the camera change?" compares options field by field:
 * padding and bytes after a string's end do not count, every field does,
 * the ROI (applied by inspection) does not, model.color does when the pixel
 * format is auto (it sets the channels). */
static void test_capture_options_equal(void **state)
{
    (void)state;
    ad_config cfg;
    char err[AD_ERRLEN];
    assert_int_equal(ad_config_load(CAPTURE_CONFIG, &cfg, err, sizeof err), 0);
    ad_capture_options a, b;
    cfg.camera.ncontrols = 2; /* camera.controls: {gain: 40, auto_exposure: manual_mode} */
    cfg.camera.controls[0] = (ad_camera_control){.name = "gain", .kind = AD_CONTROL_INT, .value = 40};
    cfg.camera.controls[1] = (ad_camera_control){.name = "auto_exposure", .kind = AD_CONTROL_ITEM, .item = "manual_mode"};
    ad_capture_options_from_config(&a, &cfg);
    memset(&b, 0xA5, sizeof b); /* padding and string tails differ from a's zeros */
    b.source = a.source;
    strcpy(b.device, a.device);
    strcpy(b.replay_dir, a.replay_dir);
    b.replay_loop = a.replay_loop;
    b.width = a.width;
    b.height = a.height;
    b.pixel_format = a.pixel_format;
    b.channels = a.channels;
    b.fps = a.fps;
    b.buffers = a.buffers;
    b.timeout_ms = a.timeout_ms;
    b.ncontrols = a.ncontrols;
    for (int i = 0; i < a.ncontrols; i++) {
        strcpy(b.controls[i].name, a.controls[i].name);
        b.controls[i].kind = a.controls[i].kind;
        b.controls[i].value = a.controls[i].value;
        strcpy(b.controls[i].item, a.controls[i].item);
    }
    assert_true(memcmp(&a, &b, sizeof a) != 0);
    assert_true(ad_capture_options_equal(&a, &b));

    for (int field = 0; field < 16; field++) {
        ad_capture_options c = a;
        switch (field) {
        case 0: c.source = c.source == AD_SOURCE_V4L2 ? AD_SOURCE_REPLAY : AD_SOURCE_V4L2; break;
        case 1: strcat(c.device, "1"); break;
        case 2: strcat(c.replay_dir, "/x"); break;
        case 3: c.replay_loop = !c.replay_loop; break;
        case 4: c.width++; break;
        case 5: c.height++; break;
        case 6: c.pixel_format = c.pixel_format == AD_PIXFMT_AUTO ? AD_PIXFMT_GREY : AD_PIXFMT_AUTO; break;
        case 7: c.channels = 4 - c.channels; break;
        case 8: c.fps += 1; break;
        case 9: c.buffers++; break;
        case 10: c.timeout_ms++; break;
        case 11: c.ncontrols--; break; /* a SIGHUP that drops a control reopens too */
        case 12: strcat(c.controls[0].name, "_x"); break;
        case 13: c.controls[0].kind = AD_CONTROL_BOOL; break;
        case 14: c.controls[0].value++; break;
        case 15: strcpy(c.controls[1].item, "auto_mode"); break;
        }
        if (ad_capture_options_equal(&a, &c)) fail_msg("field %d changed but compares equal", field);
    }

    ad_config roi = cfg, color = cfg;
    roi.camera.roi_x += 4;
    roi.camera.roi_width = 16;
    color.camera.pixel_format = AD_PIXFMT_AUTO;
    color.model.color = cfg.model.color == AD_COLOR_RGB ? AD_COLOR_GRAY : AD_COLOR_RGB;
    ad_capture_options_from_config(&b, &roi);
    assert_true(ad_capture_options_equal(&a, &b));
    ad_config auto_cfg = cfg;
    auto_cfg.camera.pixel_format = AD_PIXFMT_AUTO;
    ad_capture_options_from_config(&a, &auto_cfg);
    ad_capture_options_from_config(&b, &color);
    assert_false(ad_capture_options_equal(&a, &b));
}

static char *capture_cmd(const char *config, const char *args)
{
    char *bin = ts_bin("anomalyctl");
    size_t n = strlen(bin) + strlen(config) + strlen(args) + 64;
    char *cmd = malloc(n);
    snprintf(cmd, n, "%s capture --config %s %s", bin, config, args);
    free(bin);
    return cmd;
}

static void test_anomalyctl_capture(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("capture-cli");
    char args[1024], *out = NULL, err[AD_ERRLEN];
    snprintf(args, sizeof args, "--count 5 --out %s/set", dir);
    char *cmd = capture_cmd(CAPTURE_CONFIG, args);
    int rc = ts_run(cmd, &out);
    if (rc != 0) fail_msg("anomalyctl capture exited %d: %s", rc, out);
    assert_non_null(strstr(out, "5 frames written"));
    free(out);
    char setdir[1024];
    snprintf(setdir, sizeof setdir, "%s/set", dir);
    assert_int_equal(count_pngs(setdir), 5);
    /* frame_000003.png is the ROI (8,8 64x64) of the fourth replay frame */
    char path[1100];
    snprintf(path, sizeof path, "%s/frame_000003.png", setdir);
    ad_image got = {0}, full = {0}, want = {0};
    assert_int_equal(ad_png_read(path, 0, &got, err, sizeof err), 0);
    assert_int_equal(ad_png_read(FRAMES_DIR "/frame_0003.png", 1, &full, err, sizeof err), 0);
    assert_int_equal(ad_image_crop(&want, &full, 8, 8, 64, 64, err, sizeof err), 0);
    assert_int_equal(got.w, 64);
    assert_int_equal(got.h, 64);
    assert_int_equal(got.c, 1);
    assert_memory_equal(got.px, want.px, 64 * 64);
    ad_image_free(&got);
    ad_image_free(&full);
    ad_image_free(&want);

    /* a second run appends after the existing frames */
    rc = ts_run(cmd, &out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "appending"));
    free(out);
    assert_int_equal(count_pngs(setdir), 10);
    free(cmd);

    /* the replay runs out before --count: runtime failure, says why */
    snprintf(args, sizeof args, "--count 30 --out %s/short", dir);
    cmd = capture_cmd(CAPTURE_CONFIG, args);
    assert_int_equal(ts_run(cmd, &out), 1);
    assert_non_null(strstr(out, "ran out after 24 of 30"));
    free(out);
    free(cmd);

    /* --every passes over frames in between (replay at 200 fps: the second
     * save is due 60 ms = 12 frames after the first) */
    snprintf(args, sizeof args, "--count 2 --every 60 --quiet --out %s/every", dir);
    cmd = capture_cmd(CAPTURE_CONFIG, args);
    assert_int_equal(ts_run(cmd, &out), 0);
    free(out);
    free(cmd);
    snprintf(path, sizeof path, "%s/every/frame_000001.png", dir);
    assert_int_equal(ad_png_read(path, 0, &got, err, sizeof err), 0);
    assert_int_equal(ad_png_read(FRAMES_DIR "/frame_0001.png", 1, &full, err, sizeof err), 0);
    assert_int_equal(ad_image_crop(&want, &full, 8, 8, 64, 64, err, sizeof err), 0);
    assert_true(memcmp(got.px, want.px, 64 * 64) != 0); /* not simply the next frame */
    ad_image_free(&got);
    ad_image_free(&full);
    ad_image_free(&want);

    ts_rmtree(dir);
    free(dir);
}

static void test_anomalyctl_capture_errors(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("capture-cli-err");
    char *out = NULL, args[1024];
    char *bin = ts_bin("anomalyctl");
    char cmd[2048];

    snprintf(cmd, sizeof cmd, "%s capture --count 3", bin);
    assert_int_equal(ts_run(cmd, &out), 2);
    assert_non_null(strstr(out, "--config, --count and --out are required"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s capture --config x.yaml --count many --out %s", bin, dir);
    assert_int_equal(ts_run(cmd, &out), 2);
    assert_non_null(strstr(out, "--count must be a whole number"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s capture --help", bin);
    assert_int_equal(ts_run(cmd, &out), 0);
    assert_non_null(strstr(out, "usage: anomalyctl capture"));
    free(out);

    /* config errors exit 2 and name the file */
    char *bad = ts_write_text(dir, "bad.yaml", "threshold: [\n");
    snprintf(args, sizeof args, "--count 1 --out %s/o", dir);
    char *c = capture_cmd(bad, args);
    assert_int_equal(ts_run(c, &out), 2);
    assert_non_null(strstr(out, "bad.yaml"));
    free(out);
    free(c);
    free(bad);

    /* an ROI larger than the frames is a config error, found on the first frame */
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "camera:\n  source: replay\n  replay_dir: %s\n  fps: 500\n"
             "  roi: {x: 40, y: 40, width: 64, height: 64}\n"
             "model:\n  path: m.safetensors\nthreshold: 1\n", FRAMES_DIR);
    char *roi = ts_write_text(dir, "roi.yaml", yaml);
    c = capture_cmd(roi, args);
    assert_int_equal(ts_run(c, &out), 2);
    assert_non_null(strstr(out, "does not fit"));
    free(out);
    free(c);
    free(roi);

    /* a camera that does not exist: runtime failure with the device named */
    snprintf(yaml, sizeof yaml,
             "camera:\n  source: v4l2\n  device: /nonexistent/video7\n"
             "model:\n  path: m.safetensors\nthreshold: 1\n");
    char *cam = ts_write_text(dir, "cam.yaml", yaml);
    c = capture_cmd(cam, args);
    assert_int_equal(ts_run(c, &out), 1);
    assert_non_null(strstr(out, "camera /nonexistent/video7 not found"));
    free(out);
    free(c);
    c = capture_cmd(cam, "--list-formats");
    assert_int_equal(ts_run(c, &out), 1);
    assert_non_null(strstr(out, "cannot open camera /nonexistent/video7"));
    free(out);
    free(c);
    c = capture_cmd(CAPTURE_CONFIG, "--list-formats");
    assert_int_equal(ts_run(c, &out), 2);
    assert_non_null(strstr(out, "needs a V4L2 camera"));
    free(out);
    free(c);
    free(cam);
    free(bin);
    ts_rmtree(dir);
    free(dir);
}

/* Runs only where a real camera is attached. */
static void test_real_device_smoke(void **state)
{
    (void)state;
    const char *dev = getenv("ANOMALYD_TEST_VIDEO");
    if (!dev) dev = "/dev/video0";
    if (access(dev, R_OK | W_OK) != 0) {
        print_message("[  SKIP    ] no camera at %s (set ANOMALYD_TEST_VIDEO to choose one)\n",
                      dev);
        skip();
    }
    ad_capture_options o;
    memset(&o, 0, sizeof o);
    o.source = AD_SOURCE_V4L2;
    snprintf(o.device, sizeof o.device, "%s", dev);
    o.width = 640;
    o.height = 480;
    o.channels = 1;
    o.fps = 30;
    o.buffers = 4;
    o.timeout_ms = 5000;
    ad_source *src = NULL;
    char err[AD_ERRLEN], granted[256];
    assert_int_equal(ad_source_init_options(&src, &o, err, sizeof err), 0);
    int rc = ad_source_open(src, granted, sizeof granted, err, sizeof err);
    if (rc != 0) fail_msg("cannot open %s: %s", dev, err);
    print_message("camera %s: %s\n", dev, granted);
    ad_image frame = {0};
    int ok = 0;
    for (int i = 0; i < 20 && ok < 3; i++) {
        rc = ad_source_grab(src, &frame, NULL, NULL, err, sizeof err);
        if (rc == AD_CAPTURE_OK) ok++;
        else if (rc != AD_CAPTURE_AGAIN) fail_msg("grab: %s", err);
    }
    assert_int_equal(ok, 3);
    assert_int_equal(frame.c, 1);
    assert_true(frame.w > 0 && frame.h > 0);
    ad_image_free(&frame);
    ad_source_destroy(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_order_and_end),
        cmocka_unit_test(test_replay_loop_and_rgb),
        cmocka_unit_test(test_replay_keeps_the_rate),
        cmocka_unit_test(test_replay_no_burst_after_stall),
        cmocka_unit_test(test_replay_bad_files),
        cmocka_unit_test(test_source_from_config),
        cmocka_unit_test(test_capture_options_equal),
        cmocka_unit_test(test_anomalyctl_capture),
        cmocka_unit_test(test_anomalyctl_capture_errors),
        cmocka_unit_test(test_real_device_smoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

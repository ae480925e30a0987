/* The systemd sandbox of anomalyd@.service: exposure score and what the
 * sandbox must still allow. systemd-analyze scores the unit file offline
 * (no running manager needed); the checks below that read the unit and the
 * shipped example config need nothing but the source tree. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "anomalyd/config.h"
#include "anomalyd/util.h"

#define UNIT_PATH SOURCE_DIR "/systemd/anomalyd@.service"
#define MAX_EXPOSURE 2.0

static char *read_unit(void)
{
    FILE *f = fopen(UNIT_PATH, "r");
    assert_non_null(f);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    fclose(f);
    assert_true(n > 0);
    return text;
}

/* One "Key=value" line of the unit, exactly (a line starting with key=). */
static int unit_has_line(const char *unit, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = unit; p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) return 1;
    }
    return 0;
}

static int have_systemd_analyze_offline(void)
{
    return ts_run("systemd-analyze security --help 2>/dev/null | grep -q -- --offline", NULL) == 0;
}

/* systemd-analyze's overall exposure of the unit as installed for line3,
 * with dropin (a file, or NULL) as anomalyd@line3.service.d/dropin.conf;
 * --threshold (MAX_EXPOSURE times ten) gives *rc, so the score parsed from
 * the last line and the command's verdict cannot disagree. */
static double exposure(const char *dropin, int *rc)
{
    char *dir = ts_tmpdir("sandbox");
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cp %s %s/anomalyd@line3.service && mkdir %s/anomalyd@line3.service.d && "
             "{ [ -z '%s' ] || cp '%s' %s/anomalyd@line3.service.d/dropin.conf; } && cd %s && "
             "SYSTEMD_COLORS=0 systemd-analyze security --offline=true --threshold=%d "
             "anomalyd@line3.service 2>&1",
             UNIT_PATH, dir, dir, dropin ? dropin : "", dropin ? dropin : "", dir, dir,
             (int)(MAX_EXPOSURE * 10));
    *rc = ts_run(cmd, &out);
    fprintf(stderr, "%s", out ? out : "");
    const char *overall = out ? strstr(out, "Overall exposure level for anomalyd@line3.service: ") : NULL;
    if (!overall) fail_msg("no overall exposure line in systemd-analyze output");
    double score = atof(strchr(overall, ':') + 1);
    free(out);
    ts_rmtree(dir);
    free(dir);
    return score;
}

/* Exposure of the unit as installed for line3, at most MAX_EXPOSURE. */
static void test_exposure_at_most_2(void **state)
{
    (void)state;
    if (!have_systemd_analyze_offline()) skip(); /* systemd < 250 or not installed */
    int rc;
    double score = exposure(NULL, &rc);
    fprintf(stderr, "exposure %.1f (limit %.1f)\n", score, MAX_EXPOSURE);
    assert_true(score > 0.0);
    assert_true(score <= MAX_EXPOSURE);
    assert_int_equal(rc, 0);
}

/* The shipped drop-in for a station with an MQTT broker opens the network
 * (the score rises) and only that: it sets nothing but the network keys,
 * and the unit with it stays within MAX_EXPOSURE. docs/line.md quotes the
 * two scores. */
static void test_mqtt_dropin_opens_only_the_network(void **state)
{
    (void)state;
    const char *dropin = SOURCE_DIR "/systemd/anomalyd-mqtt.conf";
    FILE *f = fopen(dropin, "r");
    assert_non_null(f);
    char line[512];
    const char *allowed[] = {"[Service]", "PrivateNetwork=no", "RestrictAddressFamilies=", "IPAddressAllow="};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok = ok || strncmp(line, allowed[i], strlen(allowed[i])) == 0;
        if (!ok) fail_msg("%s sets more than the network: %s", dropin, line);
    }
    fclose(f);
    if (!have_systemd_analyze_offline()) skip();
    int rc_base, rc_mqtt;
    double base = exposure(NULL, &rc_base), mqtt = exposure(dropin, &rc_mqtt);
    fprintf(stderr, "exposure %.1f, with the MQTT drop-in %.1f (limit %.1f)\n", base, mqtt, MAX_EXPOSURE);
    assert_true(mqtt > base);
    assert_true(mqtt <= MAX_EXPOSURE);
    assert_int_equal(rc_mqtt, 0);
}

/* The sandbox still lets the service do its job: read/write the camera
 * (video group, video4linux devices), write its state folder, run as the
 * unprivileged user, and tell systemd it is ready. */
static void test_sandbox_keeps_camera_and_state(void **state)
{
    (void)state;
    char *unit = read_unit();
    const char *required[] = {
        "User=anomalyd",           "SupplementaryGroups=video",
        "DeviceAllow=char-video4linux rw", "StateDirectory=anomalyd",
        "ReadWritePaths=/var/lib/anomalyd", "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_UNIX", "Type=notify",
        "Environment=OMP_WAIT_POLICY=PASSIVE", "RestartPreventExitStatus=2",
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!unit_has_line(unit, required[i])) fail_msg("unit lacks %s", required[i]);
    /* A device policy that would hide the camera: private /dev, or no ACL. */
    assert_false(unit_has_line(unit, "PrivateDevices=yes"));
    assert_true(unit_has_line(unit, "DevicePolicy=closed"));
    free(unit);
}

/* The shipped example config, as installed: every path the daemon writes
 * (database, images) resolves under the one writable folder. */
static void test_default_paths_are_writable_in_sandbox(void **state)
{
    (void)state;
    ad_config cfg;
    char err[AD_ERRLEN];
    if (ad_config_load(SOURCE_DIR "/etc/line3.yaml", &cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    const char *state_dir = "/var/lib/anomalyd/";
    assert_memory_equal(cfg.reject_log.database, state_dir, strlen(state_dir));
    assert_memory_equal(cfg.reject_log.image_dir, state_dir, strlen(state_dir));
    assert_memory_equal(cfg.model.path, state_dir, strlen(state_dir));
    assert_memory_equal(cfg.camera.device, "/dev/video", strlen("/dev/video"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposure_at_most_2),
        cmocka_unit_test(test_mqtt_dropin_opens_only_the_network),
        cmocka_unit_test(test_sandbox_keeps_camera_and_state),
        cmocka_unit_test(test_default_paths_are_writable_in_sandbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

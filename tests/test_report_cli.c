/* anomalyctl report end to end: scripts/demo.sh (with the programs of this
 * build) ends by writing the demo's report; the page holds the 4 rejects
 * with their 8 images and fetches nothing; Debian's headless Chromium loads
 * it, its DOM holds the same, and a screenshot is written (the README's
 * picture of a report, docs/report-demo.png, is a copy of it). The option
 * and log errors exit with the documented codes and words. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

#define SCREENSHOT_W 1200
#define SCREENSHOT_H 1600

static char *read_text(const char *path)
{
    uint8_t *data;
    size_t len;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 26, &data, &len, err, sizeof err) != 0) fail_msg("%s", err);
    char *text = ad_xrealloc(data, len + 1);
    text[len] = 0;
    return text;
}

/* Runs the demo once for the whole program; its report's path. */
static char report_path[2048];

static int run_demo(void **state)
{
    (void)state;
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd %s && SKIP_DEPS=1 SKIP_BUILD=1 BUILD=%s sh scripts/demo.sh",
             SOURCE_DIR, BIN_DIR);
    int rc = ts_run(cmd, &out);
    if (rc != 0) {
        print_error("scripts/demo.sh exited %d:\n%s\n", rc, out);
        free(out);
        return -1;
    }
    const char *line = strstr(out, "\nReport: ");
    if (!line || sscanf(line + 9, "%2047s", report_path) != 1) {
        print_error("scripts/demo.sh did not print 'Report: PATH':\n%s\n", out);
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

/* The demo's 4 rejects, each with its ROI and heat map embedded and the box
 * drawn on both, and the 3 charts: in the file and in Chromium's DOM. */
static void holds_the_demo_rejects(const char *html)
{
    assert_int_equal(ts_count(html, "<tr class=\"reject\""), 4);
    assert_int_equal(ts_count(html, "<img"), 8);
    assert_int_equal(ts_count(html, "src=\"data:image/png;base64,"), 8);
    assert_int_equal(ts_count(html, "class=\"box\""), 8);
    assert_int_equal(ts_count(html, "<svg class=\"chart\""), 3);
}

static void demo_ends_with_a_self_contained_report(void **state)
{
    (void)state;
    char *page = read_text(report_path);
    holds_the_demo_rejects(page);
    assert_non_null(strstr(page, "Rejects of line demo"));
    assert_non_null(strstr(page, "All 4 rejects of the period"));
    /* no script, nothing fetched: the one URL is the SVG namespace */
    assert_null(strstr(page, "<script"));
    assert_int_equal(ts_count(page, "http"), ts_count(page, "\"http://www.w3.org/2000/svg\""));
    assert_int_equal(ts_count(page, "src=\""), ts_count(page, "src=\"data:"));
    free(page);
}

static char *chromium_path(void)
{
    const char *env = getenv("CHROMIUM");
    if (env && *env) return ad_xstrdup(env);
    const char *names[] = {"chromium", "chromium-browser"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char cmd[128], *out = NULL;
        snprintf(cmd, sizeof cmd, "command -v %s", names[i]);
        if (ts_run(cmd, &out) == 0) {
            out[strcspn(out, "\n")] = 0;
            return out;
        }
        free(out);
    }
    return NULL;
}

/* Headless Chromium on a file, as root too (the sandbox needs a user
 * namespace root does not get: --no-sandbox; the page is our own), with a
 * profile of its own and nothing fetched from the network. */
static int chromium(const char *bin, const char *profile, const char *what, const char *file,
                    char **out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
             "--no-first-run --no-default-browser-check --disable-background-networking "
             "--disable-component-update --disable-sync --hide-scrollbars "
             "--user-data-dir='%s' %s 'file://%s' 2>/dev/null",
             bin, profile, what, file);
    return ts_run(cmd, out);
}

static void chromium_renders_the_report(void **state)
{
    (void)state;
    char *bin = chromium_path();
    if (!bin) {
        print_message("chromium not found (scripts/install-deps.sh installs it): the report "
                      "is not rendered\n");
        skip();
    }
    char *dir = ts_tmpdir("chromium");
    char profile[1100], probe_page[1100], *out = NULL;
    snprintf(profile, sizeof profile, "%s/profile", dir);
    snprintf(probe_page, sizeof probe_page, "%s/probe.html", dir);
    free(ts_write_text(dir, "probe.html", "<!DOCTYPE html><p id=probe>ok</p>"));
    /* Can Chromium run here at all? If not, say why and skip; if it can,
     * everything below must pass. */
    int rc = chromium(bin, profile, "--dump-dom", probe_page, &out);
    if (rc != 0 || !strstr(out, "id=\"probe\"")) {
        print_message("%s cannot run here (exit %d), the report is not rendered:\n%.2000s\n",
                      bin, rc, out);
        free(out);
        free(bin);
        ts_rmtree(dir);
        free(dir);
        skip();
    }
    free(out);

    rc = chromium(bin, profile, "--dump-dom", report_path, &out);
    if (rc != 0) fail_msg("chromium --dump-dom exited %d:\n%s", rc, out);
    holds_the_demo_rejects(out);
    free(out);

    char shot[2048], what[2200];
    snprintf(shot, sizeof shot, "%s/report-demo.png", BIN_DIR);
    unlink(shot);
    snprintf(what, sizeof what, "--window-size=%d,%d --screenshot='%s'", SCREENSHOT_W,
             SCREENSHOT_H, shot);
    rc = chromium(bin, profile, what, report_path, &out);
    if (rc != 0) fail_msg("chromium --screenshot exited %d:\n%s", rc, out);
    free(out);
    ad_image im = {0};
    char err[AD_ERRLEN];
    if (ad_png_read(shot, 3, &im, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(im.w, SCREENSHOT_W);
    assert_int_equal(im.h, SCREENSHOT_H);
    /* not a blank page: the heat maps' colours are on it */
    size_t coloured = 0;
    for (size_t i = 0; i < (size_t)im.w * im.h; i++) {
        const uint8_t *p = im.px + 3 * i;
        int hi = p[0] > p[1] ? p[0] : p[1], lo = p[0] < p[1] ? p[0] : p[1];
        hi = hi > p[2] ? hi : p[2];
        lo = lo < p[2] ? lo : p[2];
        coloured += hi - lo > 60;
    }
    assert_true(coloured > 5000);
    print_message("screenshot: %s\n", shot);
    ad_image_free(&im);
    free(bin);
    ts_rmtree(dir);
    free(dir);
}

static void errors_have_their_exit_codes(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("reportcli"), args[4096], *out;
    free(ts_write_text(dir, "notes.db", "not a database at all, just text\n"));
    /* %1$s: the demo config, %2$s: a fresh folder */
    const struct {
        const char *args;
        int rc;
        const char *says;
    } cases[] = {
        {"--config %1$s --out %2$s/r.html --since 3x", 2, "--since takes a number with s, m, h or d"},
        {"--config %1$s --out %2$s/r.html --to 2026-01-01", 2, "--to needs --from"},
        {"--config %1$s --out %2$s/r.html --from 2026-02-30", 2, "is not a UTC time"},
        {"--config %1$s --out %2$s/r.html --since 1h --from 2026-01-01", 2, "not both"},
        {"--config %1$s --out %2$s/r.html --sort size", 2, "--sort takes time or score"},
        {"--config %1$s --out %2$s/r.html --limit 0", 2, "--limit takes a whole number"},
        {"--config %1$s", 2, "--out FILE.html is required"},
        {"--config %2$s/none.yaml --out %2$s/r.html", 2, "none.yaml"},
        {"--config %1$s --out %2$s/r.html --database %2$s/none.db", 1, "no reject log there"},
        {"--config %1$s --out %2$s/r.html --database %2$s/notes.db", 1,
         "must name an anomalyd reject log"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[1024];
        snprintf(line, sizeof line, cases[i].args, FIXTURES_DIR "/configs/demo.yaml", dir);
        snprintf(args, sizeof args, "report %s", line);
        int rc;
        out = ts_run_bin("anomalyctl", args, &rc);
        if (rc != cases[i].rc || !strstr(out, cases[i].says))
            fail_msg("anomalyctl %s: exit %d (want %d), said:\n%s(want '%s')", args, rc,
                     cases[i].rc, out, cases[i].says);
        free(out);
    }
    snprintf(args, sizeof args, "%s/r.html", dir);
    assert_int_equal(access(args, F_OK), -1); /* no page from any of them */
    int rc;
    out = ts_run_bin("anomalyctl", "report --help", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "usage: anomalyctl report"));
    free(out);
    ts_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demo_ends_with_a_self_contained_report),
        cmocka_unit_test(chromium_renders_the_report),
        cmocka_unit_test(errors_have_their_exit_codes),
    };
    return cmocka_run_group_tests(tests, run_demo, NULL);
}

/* sd_notify by hand (path and abstract sockets), watchdog interval from the
 * environment. (The per-minute quantiles are ad_quantile_sorted, tested in
 * test_calib.) */
#include "test_support.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "anomalyd/daemon.h"
#include "anomalyd/util.h"

static int bind_dgram(const char *name, bool abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    assert_true(n + 1 < sizeof sa.sun_path);
    socklen_t len;
    if (abstract) {
        memcpy(sa.sun_path + 1, name, n); /* leading NUL */
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    } else {
        memcpy(sa.sun_path, name, n + 1);
        len = (socklen_t)sizeof sa;
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = 0;
    assert_string_equal(buf, want);
}

static void test_notify_path_socket(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("notify");
    char path[512];
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = bind_dgram(path, false);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(ad_sd_notify("READY=1"), 0);
    expect_datagram(fd, "READY=1");
    assert_int_equal(ad_sd_notify("STATUS=line3: 30.0 fps\nWATCHDOG=1"), 0);
    expect_datagram(fd, "STATUS=line3: 30.0 fps\nWATCHDOG=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
    ts_rmtree(dir);
    free(dir);
}

static void test_notify_abstract_socket(void **state)
{
    (void)state;
    char name[64], env[80];
    snprintf(name, sizeof name, "anomalyd-test-%d", (int)getpid());
    int fd = bind_dgram(name, true);
    snprintf(env, sizeof env, "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    assert_int_equal(ad_sd_notify("STOPPING=1"), 0);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

/* A receiver that never reads: the datagram queue fills and ad_sd_notify
 * fails at once instead of blocking the daemon's main thread. */
static void test_notify_never_blocks(void **state)
{
    (void)state;
    char *dir = ts_tmpdir("notify");
    char path[512];
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = bind_dgram(path, false);
    setenv("NOTIFY_SOCKET", path, 1);
    int failures = 0;
    for (int i = 0; i < 2000 && failures == 0; i++)
        if (ad_sd_notify("STATUS=filling the queue") != 0) failures++;
    assert_int_equal(failures, 1); /* reached only because sendto did not block */
    close(fd);
    unsetenv("NOTIFY_SOCKET");
    ts_rmtree(dir);
    free(dir);
}

static void test_notify_unset_or_bad(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(ad_sd_notify("READY=1"), 1);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(ad_sd_notify("READY=1"), 1);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(ad_sd_notify("READY=1"), -1);
    setenv("NOTIFY_SOCKET", "/nonexistent/anomalyd/notify", 1);
    assert_int_equal(ad_sd_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval(void **state)
{
    (void)state;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_true(ad_sd_watchdog_interval() == 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_float_equal(ad_sd_watchdog_interval(), 15.0, 1e-9);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_float_equal(ad_sd_watchdog_interval(), 15.0, 1e-9);
    snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
    assert_true(ad_sd_watchdog_interval() == 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_true(ad_sd_watchdog_interval() == 0);
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path_socket),
        cmocka_unit_test(test_notify_abstract_socket),
        cmocka_unit_test(test_notify_never_blocks),
        cmocka_unit_test(test_notify_unset_or_bad),
        cmocka_unit_test(test_watchdog_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

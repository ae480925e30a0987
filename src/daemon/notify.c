/* sd_notify protocol by hand: one AF_UNIX datagram per message. */
#include "anomalyd/daemon.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ad_sd_notify(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 1;
    size_t n = strlen(path);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path) return -1;
    memcpy(sa.sun_path, path, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace: no terminating NUL counted */
    else
        len++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* Never block: a receiver that stops reading must not stall the daemon. */
    ssize_t sent = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
                          (struct sockaddr *)&sa, len);
    close(fd);
    return sent == (ssize_t)strlen(msg) ? 0 : -1;
}

double ad_sd_watchdog_interval(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !*usec) return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid()) return 0;
    char *end = NULL;
    double us = strtod(usec, &end);
    if (end == usec || *end || us <= 0) return 0;
    return us / 2e6;
}

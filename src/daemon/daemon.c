/* TEMPORARY placeholder, replaced by the daemon implementation. */
#include <stdio.h>
#include "anomalyd/daemon.h"
int ad_daemon_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anomalyd: not built yet\n");
    return 1;
}

/* TEMPORARY placeholder, replaced by the calibrate implementation. */
#include <stdio.h>
#include "commands.h"
int ad_cmd_calibrate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anomalyctl calibrate: not built yet\n");
    return 1;
}

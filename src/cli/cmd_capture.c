/* TEMPORARY placeholder, replaced by the capture implementation. */
#include <stdio.h>
#include "commands.h"
int ad_cmd_capture(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anomalyctl capture: not built yet\n");
    return 1;
}

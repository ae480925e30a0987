/* TEMPORARY placeholder, replaced by the eval implementation. */
#include <stdio.h>
#include "commands.h"
int ad_cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anomalyctl eval: not built yet\n");
    return 1;
}

/* TEMPORARY placeholder, replaced by the score implementation. */
#include <stdio.h>
#include "commands.h"
int ad_cmd_score(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anomalyctl score: not built yet\n");
    return 1;
}

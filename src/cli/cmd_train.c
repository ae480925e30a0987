/* TEMPORARY placeholder, replaced by the train implementation. */
#include <stdio.h>
#include "commands.h"
int ad_cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "anomalyctl train: not built yet\n");
    return 1;
}

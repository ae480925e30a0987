/* anomalyctl: the tool for people. Thin: dispatches to src/cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "anomalyd/util.h"
#include "commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"init", ad_cmd_init, "write a starter config for a new camera station"},
    {"capture", ad_cmd_capture, "record frames from the configured camera into PNGs"},
    {"train", ad_cmd_train, "train the diffusion model on a folder of good images"},
    {"calibrate", ad_cmd_calibrate, "score good (and bad) images and suggest a threshold"},
    {"score", ad_cmd_score, "score images: score, verdict, defect box, heat maps"},
    {"eval", ad_cmd_eval, "evaluate on an MVTec AD layout dataset (AUROC, speed)"},
    {"synth", ad_cmd_synth, "write examples of the synthetic defects the learned head trains on"},
    {"report", ad_cmd_report, "write one HTML page of a line's rejects and trends from its log"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: anomalyctl <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'anomalyctl <command> --help' describes a command's options.\n"
                 "exit codes: 0 ok, 1 runtime failure, 2 usage or config error\n");
}

int main(int argc, char **argv)
{
    ad_reexec_with_passive_openmp(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("anomalyctl %s\n", ANOMALYD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "anomalyctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

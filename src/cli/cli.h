/* The one argument convention of every anomalyctl command, on getopt_long:
 *
 *   --help (-h)     the usage on stdout, exit 0;
 *   a usage error   "anomalyctl CMD: WHAT" and the usage on stderr, exit 2
 *                   (an unknown option, an option without its value, a bad
 *                   value, a missing required option, a stray argument);
 *   otherwise       0 ok, 1 runtime failure, 2 config error (commands.h);
 *                   `score` adds 3 for "an image was rejected".
 *
 * A long command reads as parse, run, report: parse_args fills the
 * command's args struct from argv and returns AD_CLI_RUN, or the exit code
 * to stop with (help, usage error); run does the work into a result struct
 * and returns an exit code; report prints the result. Parsing declares an
 * ad_cli and loops:
 *
 *     static const ad_cli cli = {"train", usage};
 *     int opt;
 *     ad_cli_begin();
 *     while ((opt = ad_cli_getopt(argc, argv, "h", longopts)) != -1) {
 *         switch (opt) {
 *         case 'c': ...; break;
 *         case 'h': return ad_cli_help(&cli);
 *         default: return ad_cli_bad_option(&cli, opt, argv);
 *         }
 *     }
 *     return AD_CLI_RUN;
 *
 * Options and operands may come in any order (GNU getopt_long); a value that
 * starts with "--" counts as missing ("--bad --write" is a forgotten folder,
 * not a folder named --write). */
#ifndef ANOMALYD_CLI_H
#define ANOMALYD_CLI_H

#include <getopt.h>
#include <stdio.h>

enum { AD_EXIT_OK = 0, AD_EXIT_FAILURE = 1, AD_EXIT_USAGE = 2 };
/* What a parse_args returns when the command should go on and run. */
enum { AD_CLI_RUN = -1 };

typedef struct ad_cli {
    const char *name;            /* "train" */
    void (*usage)(FILE *out);    /* the command's usage text */
} ad_cli;

/* Resets getopt for a fresh parse (optind 1, no messages of its own). */
void ad_cli_begin(void);
/* getopt_long over shortopts (without a leading ':'; a leading '-' returns
 * operands as 1, in order) and longopts; returns ':' for an option whose
 * value is missing or starts with "--". */
int ad_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* The usage on stdout; returns AD_EXIT_OK. */
int ad_cli_help(const ad_cli *cli);
/* "anomalyctl NAME: MESSAGE" and the usage on stderr; returns AD_EXIT_USAGE. */
int ad_cli_usage_error(const ad_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* For what getopt_long returned and the loop does not take: ':' (an option
 * without its value), '?' (unknown), 1 (a stray argument with a leading '-'
 * in the option string) or an option the command does not handle. */
int ad_cli_bad_option(const ad_cli *cli, int opt, char **argv);

#endif

/* anomalyctl's argument convention (see cli.h). */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

static const char *missing_value_of; /* the option ad_cli_getopt refused a value for */

void ad_cli_begin(void)
{
    optind = 1;
    opterr = 0;
    missing_value_of = NULL;
}

int ad_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    /* ':' after any leading '+' or '-': a missing value returns ':' */
    char spec[64];
    size_t lead = shortopts[0] == '+' || shortopts[0] == '-';
    snprintf(spec, sizeof spec, "%.*s:%s", (int)lead, shortopts, shortopts + lead);
    missing_value_of = NULL;
    int opt = getopt_long(argc, argv, spec, longopts, NULL);
    if (opt == ':') {
        missing_value_of = argv[optind - 1];
    } else if (opt != 1 && opt != '?' && optarg && strncmp(optarg, "--", 2) == 0) {
        /* "--bad --write": getopt took the next option as the value */
        missing_value_of = optarg == argv[optind - 1] && optind >= 2 ? argv[optind - 2] : argv[optind - 1];
        opt = ':';
    }
    return opt;
}

int ad_cli_help(const ad_cli *cli)
{
    cli->usage(stdout);
    return AD_EXIT_OK;
}

int ad_cli_usage_error(const ad_cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "anomalyctl %s: ", cli->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cli->usage(stderr);
    return AD_EXIT_USAGE;
}

int ad_cli_bad_option(const ad_cli *cli, int opt, char **argv)
{
    /* getopt_long has moved optind past what it refused */
    const char *what = optind > 0 ? argv[optind - 1] : "?";
    if (opt == 1) return ad_cli_usage_error(cli, "unexpected argument '%s'", optarg);
    if (opt == ':')
        return ad_cli_usage_error(cli, "option '%s' needs a value",
                                  missing_value_of ? missing_value_of : what);
    if (opt == '?' && optopt && strncmp(what, "--", 2) != 0)
        return ad_cli_usage_error(cli, "unknown option '-%c'", optopt);
    return ad_cli_usage_error(cli, "unknown option '%s'", what);
}

/* Writes the anomalyd.yaml(5) man page and docs/configuration.md from the
 * parser's own key table, so neither can drift from what the parser accepts.
 *   gen_yaml_man [OUT.5]                 the man page
 *   gen_yaml_man --markdown [OUT.md]     docs/configuration.md (the CMake
 *                                        target configuration-md writes it) */
#include <stdio.h>
#include <string.h>

#include "anomalyd/config.h"

/* roff-escapes text: backslashes, and leading dots or quotes on a line. */
static void roff(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'') fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

int main(int argc, char **argv)
{
    FILE *out = stdout;
    if (argc > 3 || (argc == 3 && strcmp(argv[1], "--markdown"))) {
        fputs("usage: gen_yaml_man [OUT.5] | gen_yaml_man --markdown [OUT.md]\n", stderr);
        return 2;
    }
    if (argc >= 2 && !strcmp(argv[1], "--markdown")) {
        if (argc == 3 && !(out = fopen(argv[2], "w"))) {
            perror(argv[2]);
            return 1;
        }
        ad_config_write_markdown_page(out);
        if (fflush(out) != 0 || ferror(out) || (out != stdout && fclose(out) != 0)) {
            perror(argc == 3 ? argv[2] : "stdout");
            return 1;
        }
        return 0;
    }
    if (argc == 2 && !(out = fopen(argv[1], "w"))) {
        perror(argv[1]);
        return 1;
    }
    fprintf(out, ".TH ANOMALYD.YAML 5 \"\" \"anomalyd %s\" \"File Formats\"\n", ANOMALYD_VERSION);
    fputs(".SH NAME\nanomalyd.yaml \\- configuration of one anomalyd inspection station\n"
          ".SH SYNOPSIS\n/etc/anomalyd/\\fINAME\\fP.yaml\n"
          ".SH DESCRIPTION\n"
          "One YAML file per line or camera station configures the camera, the model, the\n"
          "detector, the threshold, the reject log and training. The file is validated\n"
          "strictly: unknown keys, wrong types, values out of range, duplicate keys and tabs\n"
          "are errors reported as \\fIFILE\\fP:\\fILINE\\fP:\\fICOL\\fP: what is wrong, what\n"
          "was expected, and the programs exit with status 2.\n"
          "Absent keys take the defaults below. Relative paths are resolved against the\n"
          "folder of the config file.\n"
          "\\fBanomalyd \\-\\-check\\-config \\-\\-config\\fP \\fIFILE\\fP prints the effective\n"
          "configuration.\n"
          ".SH KEYS\n", out);
    size_t n;
    const ad_config_key *keys = ad_config_keys(&n);
    const char *section = "";
    size_t section_len = 0;
    for (size_t i = 0; i < n; i++) {
        const ad_config_key *k = &keys[i];
        const char *dot = strchr(k->name, '.');
        size_t sl = dot ? (size_t)(dot - k->name) : strlen(k->name);
        if (section_len != sl || strncmp(section, k->name, sl)) {
            fprintf(out, ".SS %.*s\n", (int)sl, k->name);
            section = k->name;
            section_len = sl;
        }
        char expect[256];
        ad_config_key_expect(k, expect, sizeof expect);
        fputs(".TP\n.B ", out);
        roff(out, k->name);
        fputs("\n", out);
        roff(out, k->doc ? k->doc : "");
        fputs("\n.br\nValue: ", out);
        roff(out, expect);
        fputs(". Default: ", out);
        roff(out, k->def ? k->def : "none (required or derived)");
        fputs(".\n", out);
    }
    fputs(".SH EXAMPLE\nA fully commented example is installed as\n"
          ".IR /etc/anomalyd/line3.yaml.example .\n"
          ".SH SEE ALSO\n.BR anomalyd (8),\n.BR anomalyctl (1)\n", out);
    if (out != stdout && fclose(out) != 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}

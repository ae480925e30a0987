/* anomalyctl subcommands: each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit code:
 * 0 ok, 1 runtime failure, 2 usage or config error. */
#ifndef ANOMALYD_CLI_COMMANDS_H
#define ANOMALYD_CLI_COMMANDS_H

int ad_cmd_capture(int argc, char **argv);
int ad_cmd_train(int argc, char **argv);
int ad_cmd_calibrate(int argc, char **argv);
int ad_cmd_score(int argc, char **argv);
int ad_cmd_eval(int argc, char **argv);
int ad_cmd_synth(int argc, char **argv);
int ad_cmd_init(int argc, char **argv);
int ad_cmd_report(int argc, char **argv);

#endif

/* The sub-commands of rcc-dist. Each parses its own flags (getopt_long) and returns the
 * process exit status: 0 success, 1 failure, 2 usage error. */
#pragma once

int rcc_cmd_eval(int argc, char **argv);
int rcc_cmd_embed(int argc, char **argv);
int rcc_cmd_inspect(int argc, char **argv);
int rcc_cmd_validate(int argc, char **argv);
/* `rcc-dist slurm JOB.yaml [flags]`: writes (and with --submit submits) a batch script. */
int rcc_cmd_slurm(int argc, char **argv);
/* Sweeps (docs/SWEEPS.md): submit or run the trials of a sweep file, run one trial,
 * gather a sweep directory's results. */
int rcc_cmd_sweep(int argc, char **argv);
int rcc_cmd_trial(int argc, char **argv);
int rcc_cmd_report(int argc, char **argv);
/* `rcc-dist JOB.yaml [flags]`: the full command line, the job file among the arguments. */
int rcc_cmd_run(int argc, char **argv);

/* Prints "rcc-dist: error: <message>" for the last recorded error and returns 1. */
int rcc_cmd_report_error(void);
/* Parses a positive integer flag value; prints a usage error and returns -1 when invalid. */
int rcc_cmd_parse_positive(const char *flag, const char *value);

/* `rcc-dist report SWEEP_DIR`: the table, plot and best job of a sweep
 * (runner/sweep_report.h). */
#include <getopt.h>
#include <stdio.h>

#include "runner/commands.h"
#include "runner/sweep_report.h"

static const char report_usage[] =
    "usage: rcc-dist report SWEEP_DIR\n"
    "\n"
    "Prints every trial of a sweep (parameters, compression, retention, score, seconds,\n"
    "state) with the Pareto front marked `pareto`, mean ± std and 95% CI of configurations\n"
    "run with several seeds; writes SWEEP_DIR/pareto.png (with gnuplot) and\n"
    "SWEEP_DIR/best.yaml, the job of the trial with the best objective score.\n";

int rcc_cmd_report(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'h') {
      fputs(report_usage, stdout);
      return 0;
    }
    fputs(report_usage, stderr);
    return 2;
  }
  if (argc - optind != 1) {
    fprintf(stderr, "rcc-dist: error: expected exactly one sweep directory\n%s", report_usage);
    return 2;
  }
  if (rcc_sweep_report(argv[optind], stdout) != RCC_OK) return rcc_cmd_report_error();
  return 0;
}

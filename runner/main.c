/* rcc-dist entry point: dispatches to the sub-commands in runner/. */
#include <stdlib.h>
#include <unistd.h>

#include "runner/cli.h"

int main(int argc, char **argv) {
  /* libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main runs. Its default
   * (spin for a while before sleeping) collapses on a shared or oversubscribed machine:
   * with another 2-thread job on 2 cores, `eval --limit 1000` on the default model took
   * 44 s with the default and 1.0 s with PASSIVE, and on an idle machine PASSIVE costs
   * nothing measurable (bench/forward). So unless the user chose a policy, set PASSIVE and
   * re-execute once; if the exec fails we simply run with the default. */
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
  }
  return rcc_cli_main(argc, argv);
}

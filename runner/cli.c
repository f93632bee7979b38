/* Command-line front end: global flags and dispatch to the sub-commands. */
#include "runner/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "rcc_version.h"
#include "runner/commands.h"

static const char usage[] =
    "usage: rcc-dist COMMAND [options]\n"
    "\n"
    "Compress and evaluate Hugging Face CLIP models on CPUs, GPUs and MPI clusters.\n"
    "\n"
    "commands:\n"
    "  eval     --model DIR --data SPEC [--limit N] [--json]   zero-shot / retrieval metrics\n"
    "  embed    --model DIR (--images FILE... | --texts FILE) --out OUT.safetensors\n"
    "  inspect  MODEL_DIR                                    layers, shapes, parameter counts\n"
    "  JOB.yaml [--backend NAME] [--threads N]               run a compression job\n"
    "  validate JOB.yaml                                     check a job file without running\n"
    "  slurm    JOB.yaml [--nodes N] [--submit]              Slurm batch script (sbatch) for a job\n"
    "  sweep    SWEEP.yaml [--submit | --local P]            search over job settings (Slurm array)\n"
    "  trial    SWEEP.yaml --task K                          one trial of a sweep\n"
    "  report   SWEEP_DIR                                    sweep table, Pareto front, best job\n"
    "\n"
    "  rcc-dist COMMAND --help   options of one command\n"
    "  rcc-dist --version        version and compiled-in optional parts\n";

int rcc_cmd_report_error(void) {
  fprintf(stderr, "rcc-dist: error: %s\n", rcc_last_error());
  return 1;
}

int rcc_cmd_parse_positive(const char *flag, const char *value) {
  char *end = NULL;
  long v = strtol(value, &end, 10);
  if (!*value || *end || v <= 0 || v > 1000000000L) {
    fprintf(stderr, "rcc-dist: error: %s expects a positive integer, got '%s'\n", flag, value);
    return -1;
  }
  return (int)v;
}

static void print_version(void) {
  printf("rcc-dist %s\n", RCC_VERSION);
  printf("compiled in: cpu (OpenBLAS), mpi, hdf5%s%s\n", RCC_HAVE_CUDA ? ", cuda" : "",
         RCC_HAVE_NCCL ? ", nccl" : "");
  if (!RCC_HAVE_CUDA) printf("not compiled in: cuda, nccl\n");
}

int rcc_cli_main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
    print_version();
    return 0;
  }
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } commands[] = {{"eval", rcc_cmd_eval},
                  {"embed", rcc_cmd_embed},
                  {"inspect", rcc_cmd_inspect},
                  {"validate", rcc_cmd_validate},
                  {"sweep", rcc_cmd_sweep},
                  {"trial", rcc_cmd_trial},
                  {"report", rcc_cmd_report},
                  {"slurm", rcc_cmd_slurm}};
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  size_t n = strlen(cmd);
  if ((n > 5 && !strcmp(cmd + n - 5, ".yaml")) || (n > 4 && !strcmp(cmd + n - 4, ".yml")))
    return rcc_cmd_run(argc, argv);
  fprintf(stderr, "rcc-dist: error: unknown command '%s'\n\n%s", cmd, usage);
  return 2;
}

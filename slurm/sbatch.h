/* Slurm batch scripts for rcc-dist jobs: what `rcc-dist slurm` writes and submits.
 * A script asks for N nodes and either one task per GPU (--gpus-per-task=1, NCCL between
 * them) or a number of CPU tasks per node (--cpus-per-task threads each), sets the
 * environment each task needs, and starts every task with
 * `srun --mpi=pmix RCC_DIST JOB.yaml --backend ...`. The text is meant to be read and
 * edited by people: each environment line says why it is there. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/status.h"

typedef struct {
  const char *binary;             /* absolute path of rcc-dist */
  const char *job_path;           /* absolute path of the job file */
  const char *job_name;           /* --job-name: one word */
  const char *workdir;            /* absolute --chdir: where relative paths in the job start */
  const char *log_dir;            /* absolute folder of the %x-%j.out / .err files */
  int nodes;                      /* >= 1 */
  int gpus_per_node;              /* >= 0; 0: a CPU job */
  int ntasks_per_node;            /* >= 1; CPU jobs only (a GPU job runs one task per GPU) */
  int cpus_per_task;              /* >= 0; 0: Slurm's default (one) */
  const char *partition;          /* NULL: the cluster's default; the same for the next four */
  const char *time;               /* --time */
  const char *account;            /* --account */
  const char *constraint;         /* --constraint */
  const char *mem;                /* --mem, per node */
  const char *const *sbatch_args; /* extra #SBATCH options, each one line */
  int num_sbatch_args;
  bool requeue; /* --requeue: Slurm may restart the job, which resumes from its checkpoints */
} rcc_sbatch_options_t;

/* Checks every value; RCC_ERR_ARG names the first bad one as its flag (`--time`). */
rcc_status_t rcc_sbatch_check(const rcc_sbatch_options_t *o);

/* The script text (checked first); *out is the caller's to free. */
rcc_status_t rcc_sbatch_script(const rcc_sbatch_options_t *o, char **out);

/* Runs `sbatch --parsable SCRIPT` and puts the job id it prints into id. Fails with
 * RCC_ERR_UNSUPPORTED when no sbatch is on PATH, RCC_ERR_IO when sbatch fails (its own
 * message went to stderr). */
rcc_status_t rcc_sbatch_submit(const char *script, char *id, size_t id_size);

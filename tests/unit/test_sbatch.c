/* Slurm batch scripts (slurm/sbatch.h): the whole text of a GPU job and of a CPU job
 * against golden strings; shell quoting of odd paths; every bad value refused with its
 * flag named; submission's handling of sbatch's answer (a stand-in `sbatch` on PATH; the
 * real one runs in tests/slurm/); and the job file's `slurm:` section (defaults, values,
 * file:line:col errors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/job.h"
#include "slurm/sbatch.h"
#include "tests/harness.h"

static rcc_sbatch_options_t base_options(void) {
  return (rcc_sbatch_options_t){.binary = "/opt/rcc/bin/rcc-dist",
                                .job_path = "/home/u/jobs/clip.yaml",
                                .job_name = "clip",
                                .workdir = "/home/u",
                                .log_dir = "/home/u/runs/clip/slurm",
                                .nodes = 1,
                                .ntasks_per_node = 1};
}

static char *script_of(const rcc_sbatch_options_t *o) {
  char *text = NULL;
  rcc_status_t st = rcc_sbatch_script(o, &text);
  if (st != RCC_OK) fail_msg("rcc_sbatch_script: %s", rcc_last_error());
  return text;
}

static void assert_text(const char *got, const char *want) {
  if (strcmp(got, want) != 0) {
    size_t i = 0;
    while (got[i] && got[i] == want[i])
      i++;
    fail_msg("script differs at byte %zu:\n--- got:\n%s\n--- want:\n%s", i, got, want);
  }
}

static void test_gpu_script(void **state) {
  const char *extra[] = {"--qos=high", "--exclusive"};
  rcc_sbatch_options_t o = base_options();
  o.nodes = 2;
  o.gpus_per_node = 4;
  o.cpus_per_task = 8;
  o.partition = "gpu";
  o.time = "1-12:00:00";
  o.account = "proj42";
  o.constraint = "a100&ib";
  o.mem = "256G";
  o.sbatch_args = extra;
  o.num_sbatch_args = 2;
  o.requeue = true;
  char *text = script_of(&o);
  assert_text(
      text,
      "#!/bin/bash\n"
      "# Slurm batch script for the rcc-dist job /home/u/jobs/clip.yaml,\n"
      "# written by `rcc-dist slurm` (edit freely). Submit it with `sbatch` and this\n"
      "# file's path; each run's output goes to /home/u/runs/clip/slurm/clip-JOBID.out and .err.\n"
      "#SBATCH --job-name=clip\n"
      "#SBATCH --nodes=2\n"
      "#SBATCH --ntasks-per-node=4\n"
      "#SBATCH --gpus-per-task=1\n"
      "#SBATCH --cpus-per-task=8\n"
      "#SBATCH --partition=gpu\n"
      "#SBATCH --time=1-12:00:00\n"
      "#SBATCH --account=proj42\n"
      "#SBATCH --constraint=a100&ib\n"
      "#SBATCH --mem=256G\n"
      "#SBATCH --chdir=/home/u\n"
      "#SBATCH --output=/home/u/runs/clip/slurm/%x-%j.out\n"
      "#SBATCH --error=/home/u/runs/clip/slurm/%x-%j.err\n"
      "#SBATCH --requeue\n"
      "#SBATCH --open-mode=append\n"
      "#SBATCH --qos=high\n"
      "#SBATCH --exclusive\n"
      "\n"
      "# The CPU backend's OpenMP pool: as many threads as CPUs Slurm gave each task.\n"
      "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n"
      "# NCCL prints warnings only; INFO shows the network and GPUs it picked\n"
      "# (set NCCL_SOCKET_IFNAME here when it picks the wrong interface).\n"
      "export NCCL_DEBUG=WARN\n"
      "\n"
      "# Which run of the job this is: Slurm counts restarts when it requeues a job.\n"
      "echo \"rcc-dist: Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart "
      "${SLURM_RESTART_COUNT:-0}\"\n"
      "\n"
      "# One task per GPU, each seeing only its own GPU; the tasks find each other\n"
      "# through PMIx (MPI, then NCCL).\n"
      "# Re-running the same job resumes after its newest checkpoint, so a requeued\n"
      "# or re-submitted job goes on where the last run stopped.\n"
      "srun --mpi=pmix /opt/rcc/bin/rcc-dist /home/u/jobs/clip.yaml --backend cuda\n");
  free(text);
}

static void test_cpu_script(void **state) {
  rcc_sbatch_options_t o = base_options();
  o.ntasks_per_node = 2;
  char *text = script_of(&o);
  assert_text(
      text,
      "#!/bin/bash\n"
      "# Slurm batch script for the rcc-dist job /home/u/jobs/clip.yaml,\n"
      "# written by `rcc-dist slurm` (edit freely). Submit it with `sbatch` and this\n"
      "# file's path; each run's output goes to /home/u/runs/clip/slurm/clip-JOBID.out and .err.\n"
      "#SBATCH --job-name=clip\n"
      "#SBATCH --nodes=1\n"
      "#SBATCH --ntasks-per-node=2\n"
      "#SBATCH --chdir=/home/u\n"
      "#SBATCH --output=/home/u/runs/clip/slurm/%x-%j.out\n"
      "#SBATCH --error=/home/u/runs/clip/slurm/%x-%j.err\n"
      "\n"
      "# The CPU backend's OpenMP pool: as many threads as CPUs Slurm gave each task.\n"
      "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n"
      "\n"
      "# Which run of the job this is: Slurm counts restarts when it requeues a job.\n"
      "echo \"rcc-dist: Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart "
      "${SLURM_RESTART_COUNT:-0}\"\n"
      "\n"
      "# 2 tasks per node, each bound to its own cores; the tasks find each other\n"
      "# through PMIx (MPI).\n"
      "# Re-running the same job resumes after its newest checkpoint, so a requeued\n"
      "# or re-submitted job goes on where the last run stopped.\n"
      "srun --mpi=pmix --cpu-bind=cores /opt/rcc/bin/rcc-dist /home/u/jobs/clip.yaml --backend "
      "cpu\n");
  free(text);
}

/* Paths with spaces and quotes reach srun as single words. */
static void test_quoting(void **state) {
  rcc_sbatch_options_t o = base_options();
  o.binary = "/opt/my tools/rcc-dist";
  o.job_path = "/home/u/bob's job.yaml";
  char *text = script_of(&o);
  const char *want = "srun --mpi=pmix --cpu-bind=cores '/opt/my tools/rcc-dist' "
                     "'/home/u/bob'\\''s job.yaml' --backend cpu\n";
  if (!strstr(text, want)) fail_msg("no line %s in:\n%s", want, text);
  free(text);
}

/* Each bad value fails with RCC_ERR_ARG and a message naming it. */
static void test_bad_values(void **state) {
  const char *not_option[] = {"qos=high"};
  struct {
    rcc_sbatch_options_t o;
    const char *needle;
  } cases[8];
  for (int i = 0; i < 8; i++)
    cases[i].o = base_options();
  cases[0].o.time = "1:2:3:4", cases[0].needle = "--time '1:2:3:4': must be a Slurm time limit";
  cases[1].o.mem = "64 GB", cases[1].needle = "--mem '64 GB': must be a memory size";
  cases[2].o.partition = "gpu debug", cases[2].needle = "--partition 'gpu debug': must be one word";
  cases[3].o.nodes = 0, cases[3].needle = "--nodes 0: must be between 1 and";
  cases[4].o.gpus_per_node = -1, cases[4].needle = "--gpus-per-node -1";
  cases[5].o.log_dir = "runs/slurm", cases[5].needle = "--output-dir 'runs/slurm': must be an "
                                                       "absolute path";
  cases[6].o.log_dir = "/tmp/my runs", cases[6].needle = "cannot hold a path with spaces";
  cases[7].o.sbatch_args = not_option, cases[7].o.num_sbatch_args = 1,
  cases[7].needle = "sbatch_args 'qos=high': must be an sbatch option starting with '-'";
  for (int i = 0; i < 8; i++) {
    char *text = NULL;
    rcc_status_t st = rcc_sbatch_script(&cases[i].o, &text);
    if (st != RCC_ERR_ARG || text || !strstr(rcc_last_error(), cases[i].needle))
      fail_msg("case %d: status %s, message '%s', want '%s'", i, rcc_status_str(st),
               rcc_last_error(), cases[i].needle);
  }
  /* The time forms sbatch reads. */
  const char *good[] = {"30", "30:00", "2:00:00", "1-0", "1-2:30", "1-2:30:00", "UNLIMITED"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    rcc_sbatch_options_t o = base_options();
    o.time = good[i];
    if (rcc_sbatch_check(&o) != RCC_OK)
      fail_msg("time '%s' refused: %s", good[i], rcc_last_error());
  }
}

/* A stand-in sbatch in a scratch folder put first on PATH, printing `answer`, exiting rc. */
static void fake_sbatch(const char *dir, const char *answer, int rc) {
  char path[4200]; /* dir is at most PATH_MAX (4096) */
  snprintf(path, sizeof path, "%s/sbatch", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "#!/bin/sh\n[ \"$1\" = --parsable ] || exit 9\nprintf '%s'\nexit %d\n", answer, rc);
  fclose(f);
  assert_int_equal(chmod(path, 0755), 0);
}

static void test_submit(void **state) {
  char bin[4096], id[32];
  snprintf(bin, sizeof bin, "%s/bin", rcc_scratch_dir());
  mkdir(bin, 0755);
  const char *old = getenv("PATH");
  char *saved = strdup(old ? old : "");
  assert_int_equal(setenv("PATH", bin, 1), 0);
  assert_int_equal(rcc_sbatch_submit("/x/job.sbatch", id, sizeof id), RCC_ERR_UNSUPPORTED);
  assert_non_null(strstr(rcc_last_error(), "no sbatch on PATH"));
  fake_sbatch(bin, "4242;rcctest\\n", 0);
  assert_int_equal(rcc_sbatch_submit("/x/job.sbatch", id, sizeof id), RCC_OK);
  assert_string_equal(id, "4242");
  fake_sbatch(bin, "", 1);
  assert_int_equal(rcc_sbatch_submit("/x/job.sbatch", id, sizeof id), RCC_ERR_IO);
  assert_non_null(strstr(rcc_last_error(), "exit status 1"));
  fake_sbatch(bin, "Submitted batch job 7\\n", 0);
  assert_int_equal(rcc_sbatch_submit("/x/job.sbatch", id, sizeof id), RCC_ERR_FORMAT);
  setenv("PATH", saved, 1);
  free(saved);
}

static const char job_head[] = "model: m\noutput: o\n";

static rcc_job_t *parse(const char *slurm_part, rcc_status_t want) {
  char text[2048];
  snprintf(text, sizeof text, "%s%s", job_head, slurm_part);
  rcc_job_t *job = NULL;
  rcc_status_t st = rcc_job_parse("job.yaml", text, strlen(text), &job);
  if (st != want)
    fail_msg("parse of\n%s\ngave %s, want %s: %s", text, rcc_status_str(st), rcc_status_str(want),
             rcc_job_errors());
  return job;
}

static void test_job_section(void **state) {
  rcc_job_t *job = parse("", RCC_OK);
  assert_int_equal(job->slurm.nodes, 1);
  assert_int_equal(job->slurm.gpus_per_node, 0);
  assert_int_equal(job->slurm.ntasks_per_node, 1);
  assert_int_equal(job->slurm.cpus_per_task, 0);
  assert_string_equal(job->slurm.time, "");
  assert_false(job->slurm.requeue);
  rcc_job_free(job);

  job = parse("slurm:\n  nodes: 2\n  gpus_per_node: 4\n  cpus_per_task: 8\n  partition: gpu\n"
              "  time: 2:00:00\n  account: proj\n  constraint: a100\n  mem: 64G\n"
              "  sbatch_args: [\"--qos=high\", --exclusive]\n  requeue: yes\n",
              RCC_OK);
  assert_int_equal(job->slurm.nodes, 2);
  assert_int_equal(job->slurm.gpus_per_node, 4);
  assert_int_equal(job->slurm.cpus_per_task, 8);
  assert_string_equal(job->slurm.partition, "gpu");
  assert_string_equal(job->slurm.time, "2:00:00");
  assert_string_equal(job->slurm.account, "proj");
  assert_string_equal(job->slurm.constraint, "a100");
  assert_string_equal(job->slurm.mem, "64G");
  assert_int_equal(job->slurm.num_sbatch_args, 2);
  assert_string_equal(job->slurm.sbatch_args[0], "--qos=high");
  assert_string_equal(job->slurm.sbatch_args[1], "--exclusive");
  assert_true(job->slurm.requeue);
  rcc_job_free(job);

  /* Every error at its place (the job's two lines come first). */
  static const struct {
    const char *yaml, *want;
  } bad[] = {
      {"slurm:\n  time: soon\n", "job.yaml:4:9: error: 'time' must be a Slurm time limit"},
      {"slurm:\n  mem: lots\n", "job.yaml:4:8: error: 'mem' must be a memory size"},
      {"slurm:\n  nodes: 0\n", "job.yaml:4:10: error: 'nodes' must be an integer >= 1, got 0"},
      {"slurm:\n  gpus_per_node: -1\n", "job.yaml:4:18: error: 'gpus_per_node' must be an "
                                        "integer >= 0"},
      {"slurm:\n  partition: \"a b\"\n", "job.yaml:4:14: error: 'partition' must be one word"},
      {"slurm:\n  sbatch_args: [--qos=high, exclusive]\n",
       "job.yaml:4:29: error: 'sbatch_args' items must be an sbatch option starting with '-'"},
      {"slurm:\n  requeue: maybe\n", "job.yaml:4:12: error: 'requeue' must be true or false"},
      {"slurm:\n  gpus_per_nod: 4\n",
       "job.yaml:4:3: error: unknown key 'gpus_per_nod' (did you mean 'gpus_per_node'?)"},
      {"slurm: 4\n", "job.yaml:3:8: error: 'slurm' must be a mapping of Slurm settings"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_null(parse(bad[i].yaml, RCC_ERR_ARG));
    if (!strstr(rcc_job_errors(), bad[i].want))
      fail_msg("for\n%swant '%s' in:\n%s", bad[i].yaml, bad[i].want, rcc_job_errors());
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gpu_script), cmocka_unit_test(test_cpu_script),
      cmocka_unit_test(test_quoting),    cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_submit),     cmocka_unit_test(test_job_section),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

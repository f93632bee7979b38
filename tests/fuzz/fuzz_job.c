/* Fuzz target: the job file parser (jobs/job_parse.c, libyaml underneath) on arbitrary
 * text, handed over without a terminating NUL so that reads past the end are caught.
 * A job that loads is written back with rcc_job_to_yaml, which promises YAML that loads
 * again: a round trip that fails is reported as a bug like a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "jobs/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rcc_job_t *job = NULL;
  if (rcc_job_parse("fuzz.yaml", (const char *)data, size, &job) != RCC_OK) return 0;
  char *yaml = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&yaml, &len);
  if (!out) fuzz_die("fuzz_job: open_memstream");
  rcc_status_t st = rcc_job_to_yaml(job, out);
  fclose(out);
  rcc_job_t *again = NULL;
  if (st == RCC_OK && rcc_job_parse("roundtrip.yaml", yaml, len, &again) != RCC_OK) {
    fprintf(stderr, "fuzz_job: rcc_job_to_yaml wrote YAML that does not load:\n%s\n---\n%s\n", yaml,
            rcc_job_errors());
    abort();
  }
  rcc_job_free(again);
  free(yaml);
  rcc_job_free(job);
  return 0;
}

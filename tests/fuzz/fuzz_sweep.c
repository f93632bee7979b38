/* Fuzz target: the sweep file parser (jobs/sweep_parse.c) on arbitrary text. The sweep
 * names its base job relative to its own folder, so the target puts a valid job
 * (tests/fixtures/jobs/good_full.yaml) as base.yaml in its scratch folder and parses the
 * input as sweep.yaml there; every parameter is then tried on that job by the parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "jobs/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *name;
  if (!name) {
    size_t n = 0;
    uint8_t *base = fuzz_read(RCC_SOURCE_DIR "/tests/fixtures/jobs/good_full.yaml", &n);
    fuzz_write(fuzz_path("base.yaml"), base, n);
    free(base);
    name = fuzz_path("sweep.yaml");
  }
  rcc_sweep_t *s = NULL;
  if (rcc_sweep_parse(name, (const char *)data, size, NULL, &s) != RCC_OK) return 0;
  /* Every parameter's first value must print (the text trials get). */
  for (int i = 0; i < s->num_params; i++) {
    const rcc_sweep_param_t *p = &s->params[i];
    rcc_param_value_t v = {.x = p->low, .choice = 0};
    char buf[256];
    rcc_param_value_text(p, &v, buf, sizeof buf);
  }
  rcc_sweep_free(s);
  return 0;
}

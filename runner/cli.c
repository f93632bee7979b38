/* Placeholder dispatcher, replaced as the sub-commands land. */
#include "runner/cli.h"

#include <stdio.h>

int rcc_cli_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "rcc-dist: no sub-commands yet\n");
  return 2;
}

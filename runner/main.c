/* rcc-dist entry point: dispatches to the sub-commands in runner/. */
#include "runner/cli.h"

int main(int argc, char **argv) { return rcc_cli_main(argc, argv); }

/* Command-line front end: `rcc-dist [JOB.yaml | eval | embed | inspect | --help | --version]`. */
#pragma once

int rcc_cli_main(int argc, char **argv);

#!/usr/bin/env bash
# alphaedit distill training biases and LayerNorms end to end (label mpi): test_distill.sh in
# its `bias` mode (see there).
# usage: test_distill_bias.sh RCC_DIST SOURCE_DIR COMPARE_RUNS MPIEXEC
exec bash "$(dirname "$0")/test_distill.sh" "$@" bias

#!/usr/bin/env bash
# Job arrays on a private single-node Slurm: `sbatch --array=0-2 --wait` of a script whose
# tasks each write their SLURM_ARRAY_TASK_ID into a file of their own; all three files must
# be there with the right contents once sbatch returns (what `rcc-dist sweep` relies on).
# usage: test_slurm_array.sh RCC_DIST SOURCE_DIR (neither is used)
set -u
. "$(dirname "$0")/slurm_lib.sh"
slurm_start
cd "$SLURM_TMP" || exit 1

mkdir tasks
cat >array.sbatch <<SCRIPT
#!/bin/bash
#SBATCH --ntasks=1
echo "\$SLURM_ARRAY_TASK_ID" >$SLURM_TMP/tasks/task_\$SLURM_ARRAY_TASK_ID
SCRIPT
slurm_sbatch_wait array --array=0-2 array.sbatch || slurm_fail "the array job failed"

for id in 0 1 2; do
  f=tasks/task_$id
  [ -f "$f" ] || slurm_fail "array task $id wrote no $f (files: $(ls tasks))"
  [ "$(cat "$f")" = "$id" ] || fail "$f holds '$(cat "$f")', not $id"
done
n=$(find tasks -type f | wc -l)
[ "$n" = 3 ] || fail "want 3 task files, found $n: $(ls tasks)"
echo "ok: sbatch --array=0-2 --wait ran tasks 0, 1 and 2"

#!/usr/bin/env bash
# One shard of a fleet sweep, run by every task of a Slurm array (examples/slurm-array.sh) or every pod of a
# Kubernetes Indexed Job (examples/k8s-indexed-job.yaml). `--shard auto` reads the scheduler's index; each shard
# writes $RESULTS/shard-<index>.csv and, requeued, continues it (--resume). Afterwards, once:
#   allocsim merge "$RESULTS"/shard-*.csv --out results.csv
# Settings (environment):
#   SNAPSHOTS   directory (searched recursively) or quoted glob of snapshots        (required)
#   RESULTS     directory every shard can write, e.g. on shared storage              (required)
#   GRID        the --grid options                (default: max_split_size_mb x expandable_segments, 8 configs)
#   SWEEP_ARGS  more sweep options, e.g. "--fraction 0.9 --no-fit"
#   ALLOCSIM    how to run allocsim               (default: allocsim on PATH)
#   WORKERS     threads per shard                 (default 1: one core per task; scale with tasks instead)
set -euo pipefail
set -f # grid values such as [256:1,>:8] are not globs
: "${SNAPSHOTS:?set SNAPSHOTS to the directory of snapshots}"
: "${RESULTS:?set RESULTS to a directory every shard can write}"
mkdir -p "$RESULTS"
# shellcheck disable=SC2086 # ALLOCSIM, GRID and SWEEP_ARGS are word lists
exec ${ALLOCSIM:-allocsim} sweep "$SNAPSHOTS" \
  ${GRID:---grid max_split_size_mb=none,64,128,512 --grid expandable_segments=False,True} ${SWEEP_ARGS:-} \
  --shard auto --out "$RESULTS/shard-{shard}.csv" --resume --workers "${WORKERS:-1}"

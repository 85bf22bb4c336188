#!/usr/bin/env bash
# A fleet sweep as a Slurm job array: 16 tasks, one core each, each one shard (examples/fleet-shard.sh).
# Submit from the allocsim checkout (or set ALLOCSIM to an installed allocsim):
#   SNAPSHOTS=/shared/snapshots RESULTS=/shared/results ALLOCSIM="node $PWD/bin/allocsim.js" \
#     sbatch --export=ALL examples/slurm-array.sh
# --shard auto reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT. When every task is done:
#   allocsim merge /shared/results/shard-*.csv --out results.csv
# Sizing (docs/scale.md): the memory one replay of the largest snapshot needs, plus Node's ~100 MB.
#SBATCH --job-name=allocsim-sweep
#SBATCH --array=0-15
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --requeue
set -euo pipefail
# sbatch runs a copy of this script from its spool directory: find fleet-shard.sh from where the job was submitted.
exec "${SLURM_SUBMIT_DIR:-.}/examples/fleet-shard.sh"

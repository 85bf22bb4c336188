#!/bin/bash
# Captures ground truth on a CUDA machine with PyTorch: runs each line of a matrix file
# (workload|name|PYTORCH_CUDA_ALLOC_CONF|fraction|seed) through WORKLOADS_PY (the capture script of
# ../shared/capture/workloads.py), 4 processes at a time, and packs each workload into OUT/<workload>.tar.xz
# laid out as <workload>/<name>/{snapshot.pickle,stats.json} — the layout `npm run fidelity -- DIR` reads.
# usage: WORKLOADS_PY=path/to/workloads.py capture/run-matrix.sh MATRIX OUT
set -u
MATRIX=$1; OUT=$2; mkdir -p "$OUT"
WORKLOADS_PY=${WORKLOADS_PY:?set WORKLOADS_PY to the capture script}
WORK=$(mktemp -d)
run_one() {
  IFS='|' read -r w name conf frac seed <<< "$1"
  d=$WORK/$w/$name; mkdir -p "$d"
  PYTORCH_CUDA_ALLOC_CONF="$conf" timeout 300 python3 "$WORKLOADS_PY" "$w" "$conf" "$frac" "$seed" "$d" > "$d/stdout.txt" 2> "$d/stderr.txt"
  echo "rc=$? $w $name $(tail -c 200 "$d/stdout.txt")"
}
export -f run_one; export WORK WORKLOADS_PY
grep -v '^#' "$MATRIX" | grep . | xargs -P 4 -I{} bash -c 'run_one "$@"' _ {}
cd "$WORK" && for w in *; do tar -cf - "$w" | xz -T8 -6 > "$OUT/$w.tar.xz"; done
ls -la "$OUT"

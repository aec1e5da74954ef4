#!/usr/bin/env bash
# read_vs_numpy.sh [ROWS] [BUILD] — gmm's CSV reader against NumPy's loadtxt on the same file: generates ROWS
# (default 1e6) two-column points with `gmm sample` from data/assignment_model.json, times bench_read (best
# of 3, peak memory) and numpy.loadtxt (best of 3) in the same run, and prints both with their ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000000}
build=${2:-$root/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --build "$build" --target gmm bench_read >/dev/null
"$build/gmm" sample "$root/data/assignment_model.json" -n "$rows" --seed 1 -o "$work/points.csv"
echo "== gmm (bench_read)"
"$build/bench_read" "$work/points.csv" 3 | tee "$work/gmm.txt"
if python3 -c "import numpy" >/dev/null 2>&1; then
  echo "== numpy.loadtxt"
  python3 - "$work/points.csv" <<'PY' | tee "$work/np.txt"
import sys, time, os, numpy as np
best = min((lambda t0: (np.loadtxt(sys.argv[1], delimiter=","), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
mb = os.path.getsize(sys.argv[1]) / 1e6
print(f"numpy {np.__version__} loadtxt best of 3: {best:.3f} s, {mb / best:.1f} MB/s")
PY
  g=$(sed -n 's/^best of [0-9]*: \([0-9.]*\) s.*/\1/p' "$work/gmm.txt")
  p=$(sed -n 's/.*best of 3: \([0-9.]*\) s.*/\1/p' "$work/np.txt")
  python3 -c "print(f'gmm reads {($p)/($g):.1f}x faster than numpy.loadtxt')"
else
  echo "numpy is not importable: loadtxt not timed"
fi

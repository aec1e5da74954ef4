#!/usr/bin/env bash
# assignment.sh — one command for the assignment: installs what is missing, builds gmm (Release), and fits
# the 4-component model to the bundled data with an initialization study, writing model, labels,
# log-likelihood trace, plots and report.md into OUT (default out/assignment). --tol 2e-6 is the
# assignment's own stopping rule: a change of the total log-likelihood below 0.01 over its 5000 points.
# Usage: scripts/assignment.sh [OUT] [extra gmm fit options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-out/assignment}
shift || true
"$root/scripts/deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" --parallel --target gmm
"$root/build/gmm" fit "$root/data/TrainingData_GMM.csv" -k 4 --init-study 20 --seed 0 --tol 2e-6 --out "$out" "$@"
echo "report: $out/report.md"

#!/usr/bin/env bash
# test.sh — one command for the tests: installs what is missing, builds everything with warnings as errors
# (CUDA code too when nvcc is present), runs the ctest suite, then builds the CPU tests with the address and
# undefined-behaviour sanitizers and runs them again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
"$root/scripts/deps.sh"
cmake -S "$root" -B "$root/build-test" -DCMAKE_BUILD_TYPE=Release -DGMM_WERROR=ON >/dev/null
cmake --build "$root/build-test" --parallel "$jobs"
ctest --test-dir "$root/build-test" --output-on-failure --parallel "$jobs"
echo "== sanitizer build (address, undefined) of the CPU tests =="
cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DGMM_WERROR=ON -DGMM_SANITIZE=ON -DGMM_CUDA=OFF >/dev/null
cmake --build "$root/build-asan" --parallel "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure --parallel "$jobs"

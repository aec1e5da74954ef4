#!/usr/bin/env bash
# test.sh — one command for the tests: installs what is missing, builds everything with warnings as errors
# (CUDA code too when nvcc is present), runs the ctest suite, then builds the CPU tests with the address and
# undefined-behaviour sanitizers and runs them again, and fuzzes the readers briefly (scripts/fuzz.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
"$root/scripts/deps.sh"
# The scikit-learn oracle test needs numpy and scikit-learn in the python3 on PATH: install them with pip
# when Python is there and they are not (the test is skipped, with the reason, only where Python is absent).
py_args=()
if command -v python3 >/dev/null 2>&1; then
  py_args=(-DPython3_EXECUTABLE="$(command -v python3)")
  if ! python3 -c "import numpy, sklearn" >/dev/null 2>&1; then
    echo "test.sh: installing numpy and scikit-learn for the oracle test" >&2
    python3 -m pip install --quiet numpy scikit-learn ||
      echo "test.sh: pip could not install scikit-learn; the oracle test will report itself skipped" >&2
  fi
fi
cmake -S "$root" -B "$root/build-test" -DCMAKE_BUILD_TYPE=Release -DGMM_WERROR=ON "${py_args[@]}" >/dev/null
cmake --build "$root/build-test" --parallel "$jobs"
ctest --test-dir "$root/build-test" --output-on-failure --parallel "$jobs"
echo "== sanitizer build (address, undefined) of the CPU tests, without OpenBLAS (the backend's own loops) =="
cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DGMM_WERROR=ON -DGMM_SANITIZE=ON -DGMM_CUDA=OFF \
  -DGMM_BLAS=OFF "${py_args[@]}" >/dev/null
cmake --build "$root/build-asan" --parallel "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure --parallel "$jobs"
echo "== fuzz the readers briefly (skipped, with the reason, where clang's libFuzzer is missing) =="
"$root/scripts/fuzz.sh" 15
echo "== the CUDA kernels emulated on the CPU, full sizes (kernels/emu: indexing, layouts, barriers, numerics vs the CPU) =="
if command -v g++ >/dev/null 2>&1; then
  "$root/kernels/emu/run.sh" 0
  echo "== again with the tile kernel's smallest block (64 threads: components spread over fewer threads) =="
  GMM_CUDA_TILE_THREADS=64 GMM_TEST_CUDA_QUICK=1 "$root/build-emu/test_cuda_emu"
  echo "== and on a device of 3 multiprocessors, 1 block each (odd grids: partial sums of 3 blocks) =="
  GMM_EMU_SMS=3 GMM_EMU_OCC=1 GMM_TEST_CUDA_QUICK=1 "$root/build-emu/test_cuda_emu"
else
  echo "test.sh: g++ is missing: the CUDA kernel emulation is skipped"
fi

#!/usr/bin/env bash
# test.sh — one command for the tests (what CI runs through .ci/run): installs what is missing, builds
# everything with warnings as errors (CUDA code too when nvcc is present), runs the ctest suite (with the
# scikit-learn oracle), then builds the CPU tests with the address and undefined-behaviour sanitizers and runs
# them again, fuzzes the readers briefly (scripts/fuzz.sh) and runs the CUDA kernels under the CPU emulation
# (kernels/emu/run.sh), then installs the Python package into a virtual environment and runs its pytest suite.
#
# Nothing may be skipped: a test that does not run (ctest's "Skipped" or "Not Run", exit 77) or that says in
# its output that it skipped a part fails this script, and so does a fuzz run or an emulation run that cannot
# start. The one exception is test_cuda, the real-GPU test, on a machine without an NVIDIA device.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

fail() {
  echo "test.sh: FAILED: $*" >&2
  exit 1
}

"$root/scripts/deps.sh"

# ------------------------------------------------------------------------------------------------ python
# The scikit-learn oracle (and test_npy's NumPy part) need a python3 that imports numpy and scikit-learn:
# the one on PATH, else after pip installs them there, else Debian's (python3-sklearn, by deps.sh --oracle).
python_with_sklearn() {
  local py
  for py in "$(command -v python3 || true)" /usr/bin/python3; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c "import numpy, sklearn" >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}
if ! py=$(python_with_sklearn); then
  if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    echo "test.sh: installing numpy and scikit-learn with pip for the oracle test" >&2
    python3 -m pip install --quiet numpy scikit-learn || echo "test.sh: pip could not install them" >&2
  fi
  py=$(python_with_sklearn) || { "$root/scripts/deps.sh" --oracle && py=$(python_with_sklearn); } ||
    fail "no python3 imports numpy and scikit-learn (pip and apt both failed): the oracle cannot run"
fi
export PATH="$(dirname "$py"):$PATH"
echo "test.sh: python for the oracle: $py (scikit-learn $("$py" -c 'import sklearn; print(sklearn.__version__)'))"
# deps.sh installs gnuplot: test_report then requires the pictures to be rendered, not skipped.
export GMM_REQUIRE_GNUPLOT=1

# -------------------------------------------------------------------------------------------- skip check
# has_device: 0 when nvidia-smi lists a GPU.
has_device() { nvidia-smi -L 2>/dev/null | grep -q '^GPU'; }
# no_skips JUNIT: fails (returns 1) when a test in ctest's JUnit file did not run or printed a line saying
# that it skipped something (SKIP:, "skipped", "skipping"), except test_cuda without a device.
no_skips() {
  local junit=$1 allowed='^$'
  has_device || allowed='^test_cuda$'
  [ -s "$junit" ] || { echo "test.sh: ctest wrote no JUnit report at $junit" >&2; return 1; }
  local bad
  bad=$(awk -v allowed="$allowed" '
    /<testcase / {
      match($0, /name="[^"]*"/); name = substr($0, RSTART + 6, RLENGTH - 7)
      if ($0 ~ /status="(notrun|disabled)"/ && name !~ allowed) print name ": did not run"
    }
    tolower($0) ~ /(^|[^a-z])(skip:|skipped|skipping)([^a-z]|$)/ && name !~ allowed && $0 !~ /<testsuite|skipped="/ {
      print name ": " $0
    }' "$junit")
  if [ -n "$bad" ]; then
    echo "test.sh: skipped in $junit (a skip fails CI; only test_cuda may skip, and only without a GPU):" >&2
    echo "$bad" >&2
    return 1
  fi
}
# run_ctest BUILD [ctest args]: the suite, then the skip check on its JUnit report.
run_ctest() {
  local build=$1
  shift
  ctest --test-dir "$build" --output-on-failure --parallel "$jobs" --output-junit "$build/ctest-junit.xml" "$@"
  no_skips "$build/ctest-junit.xml" || fail "a test was skipped in $build"
}

# ----------------------------------------------------------------------------------------------- suites
echo "== formatting: every tracked C, CUDA and C++ source follows .clang-format =="
mapfile -t sources < <(cd "$root" && git ls-files '*.c' '*.h' '*.cu' '*.cuh' '*.cpp' | grep -v '^tests/fuzz/corpus/')
[ ${#sources[@]} -gt 0 ] || fail "no tracked sources found for the format check (not a git checkout?)"
(cd "$root" && clang-format --dry-run --Werror "${sources[@]}") ||
  fail "sources above differ from .clang-format (run: clang-format -i FILE)"

echo "== release build (warnings are errors) and the ctest suite =="
cmake -S "$root" -B "$root/build-test" -DCMAKE_BUILD_TYPE=Release -DGMM_WERROR=ON -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build "$root/build-test" --parallel "$jobs"
run_ctest "$root/build-test"

echo "== sanitizer build (address, undefined) of the CPU tests, without OpenBLAS (the backend's own loops) =="
# Built without CUDA, test_cuda has nothing to run there (the kernels run under the emulation below).
cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DGMM_WERROR=ON -DGMM_SANITIZE=ON -DGMM_CUDA=OFF \
  -DGMM_BLAS=OFF -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build "$root/build-asan" --parallel "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest "$root/build-asan" -E '^test_cuda$'

echo "== fuzz the readers briefly (scripts/fuzz.sh installs clang's libFuzzer when missing) =="
"$root/scripts/fuzz.sh" 15 || fail "the fuzzers failed or could not run (scripts/fuzz.sh exit $?)"

echo "== the CUDA kernels emulated on the CPU, full sizes (kernels/emu: indexing, layouts, barriers, numerics vs the CPU) =="
"$root/kernels/emu/run.sh" 0 || fail "the kernel emulation failed or did not run (exit $?)"
echo "== again with the tile kernel's smallest block (64 threads: components spread over fewer threads) =="
GMM_CUDA_TILE_THREADS=64 GMM_TEST_CUDA_QUICK=1 "$root/build-emu/test_cuda_emu" ||
  fail "the emulation with 64-thread tiles failed or did not run (exit $?)"
echo "== and on a device of 3 multiprocessors, 1 block each (odd grids: partial sums of 3 blocks) =="
GMM_EMU_SMS=3 GMM_EMU_OCC=1 GMM_TEST_CUDA_QUICK=1 "$root/build-emu/test_cuda_emu" ||
  fail "the emulation on 3 multiprocessors failed or did not run (exit $?)"
# >>> the Python package (pyproject.toml, python/gmm, tests/python) >>>
# Builds and installs the package with pip (scikit-build-core, CUDA kernels too where nvcc is present) into a
# virtual environment in build-pyvenv/, with pytest, and runs its suite: scikit-learn's estimator checks,
# bit parity with the CLI, agreement with scikit-learn, zero copies, Ctrl-C, pickling, bad input.
echo "== the Python package: pip install . into build-pyvenv/, then pytest tests/python =="
command -v python3 >/dev/null 2>&1 || fail "python3 is missing: cannot test the Python package"
venv="$root/build-pyvenv"
if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
  echo "test.sh: installing python3-venv (Debian's python3 has no venv module without it)" >&2
  rm -rf "$venv"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$root[test]"
(cd "$root" && OMP_NUM_THREADS="$jobs" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python) ||
  fail "the Python package's tests failed"
# <<< the Python package <<<

echo "test.sh: all passed, nothing skipped$(has_device || echo ' (test_cuda: no GPU here; the kernels ran under the emulation)')"

#!/usr/bin/env bash
# fuzz.sh [SECONDS] — builds the libFuzzer targets of the readers (fuzz_csv, fuzz_npy, fuzz_model_json;
# CMake option GMM_FUZZ) with clang into build-fuzz/ and runs each one for SECONDS (default 20) on a copy
# of its seed corpus (tests/fuzz/corpus/KIND/) plus the regression inputs (tests/fuzz/regress/KIND/).
# Fails (exit 1) when a target crashes, leaks, runs out of memory or times out on an input; the input is
# left in build-fuzz/fuzz-run/KIND/artifacts/ (minimize it into tests/fuzz/regress/KIND/ once understood).
# Where clang, its libFuzzer and sanitizer runtimes or LLVM's OpenMP are missing it installs them from Debian
# (scripts/deps.sh --fuzz: clang, libclang-rt-dev, libomp-dev); when they still cannot be used it says why
# and exits 77, which scripts/test.sh (CI) counts as a failure: the fuzzers are never skipped silently.
# Environment: CLANG (default clang), FUZZ_JOBS (parallel build jobs, default nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]   (SECONDS: a positive whole number of seconds per target, default 20)" >&2
  exit 2
fi
clang_bin=${CLANG:-clang}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
build="$root/build-fuzz"

cannot_run() {
  echo "fuzz.sh: the fuzzers cannot run: $*" >&2
  exit 77
}

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { (void)data; (void)size; return 0; }
EOF
# The library needs OpenMP, which clang takes from LLVM's libomp (Debian: libomp-dev).
cat >"$probe/omp.c" <<'EOF'
#include <omp.h>
int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
EOF
# toolchain_problem: prints what is missing (nothing when clang, its libFuzzer runtime with the sanitizers,
# LLVM's OpenMP and cmake all work). Debian ships the runtime apart from clang at times (libclang-rt-dev).
toolchain_problem() {
  if ! command -v "$clang_bin" >/dev/null 2>&1; then
    echo "'$clang_bin' not found (install clang, or set CLANG=/path/to/clang)"
  elif ! command -v cmake >/dev/null 2>&1; then
    echo "cmake not found"
  elif ! "$clang_bin" -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" >"$probe/log" 2>&1; then
    echo "'$clang_bin' cannot link a program with -fsanitize=fuzzer,address,undefined: $(head -n 3 "$probe/log" | tr '\n' ' ')"
  elif ! "$clang_bin" -fopenmp "$probe/omp.c" -o "$probe/omp" >"$probe/log" 2>&1; then
    echo "'$clang_bin' cannot build OpenMP code (install libomp-dev): $(head -n 3 "$probe/log" | tr '\n' ' ')"
  fi
}
problem=$(toolchain_problem)
if [ -n "$problem" ]; then
  echo "fuzz.sh: $problem; installing clang's fuzzing toolchain (scripts/deps.sh --fuzz)" >&2
  "$root/scripts/deps.sh" --fuzz || cannot_run "$problem, and scripts/deps.sh --fuzz could not install it"
  problem=$(toolchain_problem)
  [ -z "$problem" ] || cannot_run "$problem (after scripts/deps.sh --fuzz)"
fi

echo "== fuzz.sh: building the fuzz targets with $clang_bin into $build =="
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$clang_bin" -DCMAKE_BUILD_TYPE=Debug \
  -DGMM_FUZZ=ON -DGMM_CUDA=OFF >/dev/null
cmake --build "$build" --parallel "$jobs" --target fuzz_csv fuzz_npy fuzz_model_json

# kind, target, -max_len: CSV and JSON inputs up to 4 KiB, .npy up to 64 KiB (room for data after headers).
targets=("csv fuzz_csv 4096" "npy fuzz_npy 65536" "json fuzz_model_json 4096")
failed=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "${targets[@]}"; do
  read -r kind target max_len <<<"$t"
  run="$build/fuzz-run/$kind"
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  # Seeds and regression inputs; the fuzzer adds what it finds to this copy, never to tests/.
  for dir in "$root/tests/fuzz/corpus/$kind" "$root/tests/fuzz/regress/$kind"; do
    if [ -d "$dir" ]; then
      find "$dir" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$run/corpus/" \;
    fi
  done
  echo "== fuzz.sh: $target for ${seconds}s on $(find "$run/corpus" -type f | wc -l) inputs =="
  set +e
  "$build/$target" -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
    -dict="$root/tests/fuzz/$kind.dict" -artifact_prefix="$run/artifacts/" -print_final_stats=1 \
    "$run/corpus" >"$run/log.txt" 2>&1
  rc=$?
  set -e
  grep -a -E '^#[0-9]+[[:space:]]+DONE' "$run/log.txt" | tail -n 1 || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz.sh: $target FAILED (exit $rc); the end of its log ($run/log.txt):" >&2
    tail -n 40 "$run/log.txt" >&2
    echo "fuzz.sh: failing inputs: $(find "$run/artifacts" -type f | tr '\n' ' ')" >&2
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all fuzz targets ran ${seconds}s without a failure"

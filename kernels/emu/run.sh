#!/usr/bin/env bash
# run.sh — runs tests/test_cuda.c without a GPU: the CUDA kernels (kernels/gmm_cuda.cu, unchanged) compiled as
# host C++ with emu.h and fibers.cpp (the threads of a block as fibers on the launching thread, blocks in turn,
# __syncthreads as a barrier, warp shuffles through a per-warp exchange; a barrier not every thread reaches
# aborts naming the kernel), the CUDA runtime replaced by fake_cudart.cpp (device memory is host
# memory, filled with NaN bytes when allocated, like the kernels' dynamic shared memory), and the real
# src/backend_cuda.c and library. It checks the kernels' indexing, layouts, reductions and numerics against
# the CPU reference; it cannot check races, timing, the inline PTX (ex2.approx falls back to exp2f) or
# anything about the real hardware.
#
# Usage: kernels/emu/run.sh [QUICK]     QUICK = GMM_TEST_CUDA_QUICK: 1 (default, reduced sizes), 2, or 0
#                                       (the full test with n = 1e7; what CI runs)
#        kernels/emu/run.sh --bench-gpu [ARGS...]
#                                       instead builds bench/bench_gpu.c the same way (build-emu/bench_gpu_emu)
#                                       and runs it with ARGS: a check of its code paths (sklearn, whole fit,
#                                       CSV) at tiny sizes, e.g. --cases 2x4:5e3 --repeats 2; its times are
#                                       the emulation's, meaningless. The copy floor still copies 1 GiB.
# Environment: GMM_EMU_SMS, GMM_EMU_OCC (multiprocessors and blocks per multiprocessor the fake device
# reports: the grid is their product; default 2 and 2), GMM_EMU_NO_DEVICE=1 (no device: the test skips),
# GMM_EMU_VERBOSE=1 (each launch on stderr: its number, shape and the kernel as gmm_cuda.cu names it).
# GMM_EMU_HOST_MAX_BYTES (pinned host allocations above it fail; tests set it themselves).
# Builds into <repo>/build-emu. Needs g++ with C++20, OpenMP and cJSON.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E=$ROOT/kernels/emu
O=$ROOT/build-emu
mkdir -p "$O"
CF=(-std=c11 -O2 -g -fopenmp -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/kernels")
read -r -a CJ <<< "$(pkg-config --cflags libcjson)"
objs=()
for f in "$ROOT"/src/*.c; do
    b=$(basename "$f" .c)
    [ "$b" = cli ] && continue
    if [ "$b" = backend_cuda ]; then
        gcc "${CF[@]}" "${CJ[@]}" -DGMM_HAVE_CUDA=1 -I"$E/include" -I"$ROOT/kernels" -c "$f" -o "$O/$b.o"
    else
        gcc "${CF[@]}" "${CJ[@]}" -c "$f" -o "$O/$b.o"
    fi
    objs+=("$O/$b.o")
done
CXF=(-std=c++20 -O2 -g -Wall -Wextra -Wno-unknown-pragmas -I"$E/include")
g++ "${CXF[@]}" -DGMM_CUDA_EMULATE -include "$E/emu.h" -I"$ROOT/kernels" -x c++ -c "$ROOT/kernels/gmm_cuda.cu" \
    -o "$O/gmm_cuda_emu.o"
g++ "${CXF[@]}" -c "$E/fake_cudart.cpp" -o "$O/fake_cudart.o"
g++ "${CXF[@]}" -c "$E/fibers.cpp" -o "$O/fibers.o"
gcc "${CF[@]}" -DGMM_HAVE_CUDA=1 -I"$E/include" -I"$ROOT/tests" -DGMM_SOURCE_DIR="\"$ROOT\"" \
    -DGMM_TEST_TMP="\"$O/test-tmp\"" -c "$ROOT/tests/test_cuda.c" -o "$O/test_cuda.o"
read -r -a CJL <<< "$(pkg-config --libs libcjson)"
if [ "${1:-}" = --bench-gpu ]; then
    shift
    gcc "${CF[@]}" -DGMM_HAVE_CUDA=1 -I"$E/include" -c "$ROOT/bench/bench_gpu.c" -o "$O/bench_gpu.o"
    g++ -fopenmp -o "$O/bench_gpu_emu" "$O/bench_gpu.o" "${objs[@]}" "$O/gmm_cuda_emu.o" "$O/fake_cudart.o" \
        "$O/fibers.o" "${CJL[@]}" -lm
    echo "== $O/bench_gpu_emu $*"
    exec "$O/bench_gpu_emu" "$@"
fi
g++ -fopenmp -o "$O/test_cuda_emu" "$O/test_cuda.o" "${objs[@]}" "$O/gmm_cuda_emu.o" "$O/fake_cudart.o" "$O/fibers.o" \
    "${CJL[@]}" -lm
echo "== $O/test_cuda_emu (GMM_TEST_CUDA_QUICK=${1:-1})"
GMM_TEST_CUDA_QUICK=${1:-1} "$O/test_cuda_emu"
# The program itself on the emulated device: test_cli's GPU branches (gmm fit --device cuda on the bundled
# data gives the CPU's clusters; predict, score and select on the device) run where a device is found. The
# program's writers (src/app/, not part of the library) are compiled for it and for test_cli.
app_objs=()
for f in "$ROOT"/src/app/*.c; do
    b=$(basename "$f" .c)
    gcc "${CF[@]}" "${CJ[@]}" -I"$ROOT/src/app" -c "$f" -o "$O/app_$b.o"
    app_objs+=("$O/app_$b.o")
done
gcc "${CF[@]}" "${CJ[@]}" -I"$ROOT/src/app" -c "$ROOT/src/cli.c" -o "$O/cli.o"
g++ -fopenmp -o "$O/gmm_emu" "$O/cli.o" "${app_objs[@]}" "${objs[@]}" "$O/gmm_cuda_emu.o" "$O/fake_cudart.o" \
    "$O/fibers.o" "${CJL[@]}" -lm
gcc "${CF[@]}" -I"$ROOT/src/app" -I"$ROOT/tests" -DGMM_SOURCE_DIR="\"$ROOT\"" -DGMM_TEST_TMP="\"$O/test-tmp\"" \
    -c "$ROOT/tests/test_cli.c" -o "$O/test_cli.o"
g++ -fopenmp -o "$O/test_cli_emu" "$O/test_cli.o" "${app_objs[@]}" "${objs[@]}" "$O/gmm_cuda_emu.o" \
    "$O/fake_cudart.o" "$O/fibers.o" "${CJL[@]}" -lm
echo "== $O/test_cli_emu $O/gmm_emu"
"$O/test_cli_emu" "$O/gmm_emu"

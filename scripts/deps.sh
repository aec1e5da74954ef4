#!/usr/bin/env bash
# deps.sh [--oracle] [--fuzz] — installs the Debian packages gmm needs, only those missing.
#   (always)  to build, test and draw the plots: a C and C++ compiler (g++ builds the CUDA emulation),
#             CMake, make, pkg-config, cJSON (libcjson-dev), OpenBLAS (libopenblas-dev: the CPU backend's
#             full and tied products), gnuplot (pngcairo, in gnuplot-nox) and clang-format (the style
#             check of scripts/test.sh)
#   --oracle  Debian's python3 with numpy and scikit-learn, for the scikit-learn oracle test (scripts/test.sh
#             asks for it only when no python3 on PATH imports them and pip cannot install them)
#   --fuzz    clang with its libFuzzer and sanitizer runtimes (libclang-rt-dev) and LLVM's OpenMP
#             (libomp-dev), for scripts/fuzz.sh
# The CUDA toolkit is not installed here: it is optional (without nvcc only the CPU backend is built; the
# kernels are still tested under kernels/emu).
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have_cmd cc || need+=(gcc)
have_cmd g++ || need+=(g++)
have_cmd cmake || need+=(cmake)
have_cmd make || need+=(make)
have_cmd pkg-config || need+=(pkg-config)
have_pkg libcjson-dev || need+=(libcjson-dev)
have_pkg libopenblas-dev || need+=(libopenblas-dev)
have_cmd gnuplot || need+=(gnuplot-nox)
have_cmd clang-format || need+=(clang-format)
for opt in "$@"; do
  case $opt in
    --oracle)
      for p in python3 python3-numpy python3-sklearn; do have_pkg "$p" || need+=("$p"); done
      ;;
    --fuzz)
      for p in clang libclang-rt-dev libomp-dev; do have_pkg "$p" || need+=("$p"); done
      ;;
    *)
      echo "usage: $0 [--oracle] [--fuzz]" >&2
      exit 2
      ;;
  esac
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps.sh: installing ${need[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if have_cmd sudo; then sudo_cmd=(sudo); else
    echo "deps.sh: need root (or sudo) to install: ${need[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null

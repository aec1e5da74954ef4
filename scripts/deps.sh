#!/usr/bin/env bash
# deps.sh — installs the Debian packages gmm needs to build, test and draw its plots, only those missing:
# a C compiler, CMake, pkg-config, cJSON (libcjson-dev), OpenBLAS (libopenblas-dev: the CPU backend's full
# and tied products) and gnuplot (pngcairo). The CUDA toolkit is not installed here: it is optional (without
# nvcc only the CPU backend is built).
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have_cmd cc || need+=(gcc)
have_cmd cmake || need+=(cmake)
have_cmd make || need+=(make)
have_cmd pkg-config || need+=(pkg-config)
have_pkg libcjson-dev || need+=(libcjson-dev)
have_pkg libopenblas-dev || need+=(libopenblas-dev)
have_cmd gnuplot || need+=(gnuplot-nox)
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

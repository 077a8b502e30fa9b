#!/usr/bin/env bash
# Installs the Debian packages Tailor's CPU build and tests need, only when some are missing.
# Idempotent: a machine that has everything returns at once without touching apt.
# Usage: launch/setup.sh [--with-torch]   (--with-torch adds the PyTorch CPU reference for benchmarks)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev
  libopenblas-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev unicode-data
  nlohmann-json3-dev libcli11-dev libfmt-dev libssl-dev
  python3 git                     # tests/skip_summary.py, tests/docs/ (standard library only)
  clang libclang-rt-dev           # the fuzzers: Clang with libFuzzer, ASan and UBSan (tests/fuzz)
)
if [[ "${1:-}" == "--with-torch" ]]; then
  packages+=(python3-torch libopenblas0-openmp)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "tailor setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    echo "tailor setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "tailor setup: done" >&2

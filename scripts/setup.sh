#!/usr/bin/env bash
# Installs qforge's dependencies from Debian 12 packages (only what is missing), then configures
# and builds. Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/setup.sh                 install + configure + build the `release` preset
#   scripts/setup.sh --install-only  install the packages and stop
#   QFORGE_PRESET=asan scripts/setup.sh  build another preset
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git clang-format
  libhwy-dev nlohmann-json3-dev libcli11-dev libfmt-dev libcpp-httplib-dev libtomlplusplus-dev
  libopenblas-dev libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev
  libsentencepiece-dev libicu-dev libpcre2-dev python3-pybind11 clang libclang-rt-14-dev
  python3-dev python3-numpy python3-pytest
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: not root and no sudo; install as root: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} Debian packages present"
fi

cd "$(dirname "$0")/.."
# The built-in default model's held-out and calibration text, cut from ../shared (not committed).
[[ -d ../shared/data ]] && scripts/default_model_data.sh
# The official `openai` Node client for the server test (tests/serve/test_openai_node_client.cpp),
# into the git-ignored build/node; never at test time. Without node/npm that test is skipped.
if command -v npm >/dev/null && [[ ! -f build/node/node_modules/openai/package.json ]]; then
  echo "setup: npm install --prefix build/node openai@4"
  npm install --prefix build/node --no-audit --no-fund openai@4 >/dev/null ||
    echo "setup: npm install of openai failed (the Node client test will be skipped)" >&2
fi

[[ "${1:-}" == "--install-only" ]] && exit 0

preset="${QFORGE_PRESET:-release}"
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
echo "setup: built build/$preset (CLI: build/$preset/bin/qforge)"

#!/usr/bin/env bash
# Run HERE (not on the device): downloads the Debian 12 packages that qforge builds against into
# .device-deps/ (git-ignored), because the GPU machine has CUDA and CMake but none of our
# libraries and cannot reach a package registry. scripts/device/test.sh unpacks them there.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device-deps
cd .device-deps
rm -f ./*.deb
apt-get download libhwy-dev libhwy1 libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev \
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32 libpcre2-dev libpcre2-8-0 \
  libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libicu-dev libicu72 libopenblas-dev libopenblas0 \
  libopenblas0-pthread libopenblas-pthread-dev libgfortran5 \
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian >/dev/null
ls -1 ./*.deb | wc -l | xargs echo "fetch_deps: packages in .device-deps:"
du -sh . | cut -f1 | xargs echo "fetch_deps: size"

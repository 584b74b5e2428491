#!/usr/bin/env bash
# Runs ON the GPU machine from the repo root (device tool; carry .device-deps, fetched here by
# scripts/device/fetch_deps.sh): builds with the CUDA backend for sm_90a, runs the `gpu` tests,
# the CPU suite (a portability check on another CPU), the GPU and CPU quantize benchmarks, and
# prints a short summary table last. Logs go to $OUT when set.
set -uo pipefail
out="${OUT:-/tmp/qforge-device-out}"
mkdir -p "$out"
deps=/tmp/qforge-deps
mkdir -p "$deps"
for f in .device-deps/*.deb; do dpkg -x "$f" "$deps"; done
libdir="$deps/usr/lib/x86_64-linux-gnu"
# Debian reaches OpenBLAS and cblas.h through update-alternatives links that dpkg -x does not
# create, so they are named directly; pkg-config reads only the unpacked .pc files, re-rooted.
export LD_LIBRARY_PATH="$libdir:$libdir/openblas-pthread:${LD_LIBRARY_PATH:-}"
export PKG_CONFIG_LIBDIR="$libdir/pkgconfig:$deps/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$deps"
blas="$libdir/openblas-pthread/libopenblas.so"
nvcc_path="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"

lscpu | grep -E "Model name|Flags" > "$out/cpu.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
cmake -S . -B build/device -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc_path" -DCMAKE_PREFIX_PATH="$deps/usr" \
  -DBLAS_LIBRARIES="$blas" -DLAPACK_LIBRARIES="$blas" \
  -DCMAKE_CXX_FLAGS="-isystem $deps/usr/include/x86_64-linux-gnu/openblas-pthread" >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build/device -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -60; exit 1; }

ctest --test-dir build/device -L gpu --output-on-failure -V >"$out/gpu_tests.log" 2>&1
gpu_rc=$?
ctest --test-dir build/device -LE "gpu|lint" -j "$(nproc)" --output-on-failure >"$out/cpu_tests.log" 2>&1
cpu_rc=$?
build/device/bin/bench_quantize_cuda >"$out/bench_cuda.txt" 2>&1
bench_rc=$?
build/device/bin/bench_quantize --benchmark_min_time=0.2 >"$out/bench_cpu.txt" 2>&1

echo "== gpu tests (rc=$gpu_rc)"; grep -E "^\[  (PASSED|FAILED) |FAILED|device:" "$out/gpu_tests.log" | head -20
echo "== cpu suite on the device host (rc=$cpu_rc)"; tail -3 "$out/cpu_tests.log"
echo "== cpu quantize bench"; grep -E "ratio|BM_" "$out/bench_cpu.txt" | head -20
echo "== gpu quantize bench (rc=$bench_rc)"; cat "$out/bench_cuda.txt"
exit $((gpu_rc || cpu_rc || bench_rc))

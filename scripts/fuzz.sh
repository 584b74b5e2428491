#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/fuzz_<target>.cpp) for a fixed time each, starting from the
# committed seeds in fuzz/corpus/<target>/; new inputs go to <build>/fuzz-work/<target>/, crashes
# to <build>/fuzz-artifacts/. Prints executions and exits non-zero if any target crashed.
#   scripts/fuzz.sh [-t SECONDS] [-b BUILD_DIR] [-j JOBS] [TARGET...]
# Build first (see fuzz/CMakeLists.txt): targets default to every fuzz_* binary in BUILD_DIR/bin.
set -euo pipefail

seconds=60
build_dir=build/fuzz
jobs=1
while getopts "t:b:j:h" opt; do
  case "$opt" in
    t) seconds=$OPTARG ;;
    b) build_dir=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) sed -n '2,7p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

source_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$(cd "$build_dir" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$build_dir"/bin/fuzz_*; do
    [ -x "$bin" ] && targets+=("$(basename "$bin" | sed 's/^fuzz_//')")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz_* binaries in $build_dir/bin (build the qforge_fuzzers target first)" >&2
  exit 2
fi

status=0
mkdir -p "$build_dir/fuzz-artifacts"
for target in "${targets[@]}"; do
  bin="$build_dir/bin/fuzz_$target"
  if [ ! -x "$bin" ]; then
    echo "fuzz.sh: $bin not found" >&2
    status=1
    continue
  fi
  work="$build_dir/fuzz-work/$target"
  seeds="$source_dir/fuzz/corpus/$target"
  mkdir -p "$work" "$seeds"
  log="$build_dir/fuzz-work/$target.log"
  # -malloc_limit_mb: any single allocation above 512 MiB from inputs of a few KiB is a bug
  # (allocation not justified by the file), reported as a crash.
  extra=()
  if [ "$jobs" -gt 1 ]; then extra=(-jobs="$jobs" -workers="$jobs"); fi
  rm -f "$build_dir"/fuzz-work/fuzz-*.log
  set +e
  # Run from fuzz-work/ so that -jobs puts its per-worker fuzz-N.log files there.
  (cd "$build_dir/fuzz-work" &&
    "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$build_dir/fuzz-artifacts/$target-" "${extra[@]}" \
      "$work" "$seeds") >"$log" 2>&1
  rc=$?
  set -e
  for worker_log in "$build_dir"/fuzz-work/fuzz-*.log; do
    [ -f "$worker_log" ] && cat "$worker_log" >>"$log" && rm -f "$worker_log"
  done
  execs=$(grep -h "stat::number_of_executed_units" "$log" | awk '{s += $2} END {print s + 0}')
  cov=$(grep -o "cov: [0-9]*" "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    echo "fuzz_$target: FAILED (exit $rc) after ${seconds}s, see $log and $build_dir/fuzz-artifacts/"
    grep -m3 -E "ERROR|SUMMARY" "$log" || true
    status=1
  else
    echo "fuzz_$target: ok, ${execs} executions in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) files"
  fi
done
exit $status

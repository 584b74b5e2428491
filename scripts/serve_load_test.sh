#!/usr/bin/env bash
# Bounded load test of `qforge serve` with wrk (Debian: wrk) over loopback: starts the server on
# a model, runs wrk RUNS times (CONNS connections, SECONDS each) posting greedy completions,
# prints throughput, p50/p99 latency, non-2xx/socket errors and the server's RSS after each run
# (memory growth across runs), then stops the server with SIGTERM and checks it exits 0.
#   scripts/serve_load_test.sh [-b BUILD_DIR] [-m MODEL] [-c CONNS] [-d SECONDS] [-r RUNS] [-n MAX_TOKENS]
set -euo pipefail

build_dir=build/release
model=../shared/models/stories260K/stories260K.bin
conns=8
seconds=10
runs=3
max_tokens=32
while getopts "b:m:c:d:r:n:h" opt; do
  case "$opt" in
    b) build_dir=$OPTARG ;;
    m) model=$OPTARG ;;
    c) conns=$OPTARG ;;
    d) seconds=$OPTARG ;;
    r) runs=$OPTARG ;;
    n) max_tokens=$OPTARG ;;
    *) sed -n '2,6p' "$0"; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "serve_load_test: wrk not found (apt-get install wrk)" >&2; exit 2; }
cli="$build_dir/bin/qforge"
[[ -x "$cli" ]] || { echo "serve_load_test: $cli not built" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"; [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null || true' EXIT
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt": "Once upon a time", "max_tokens": $max_tokens, "temperature": 0, "ignore_eos": true}'
LUA

"$cli" serve --model "$model" --port 0 --max-queue 64 --max-batch-size "$conns" \
  >"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/server.out" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/server.out")
[[ -n "$port" ]] || { echo "serve_load_test: server did not start:"; cat "$work/server.err"; exit 1; }

echo "| run | requests/s | tokens/s | p50 ms | p99 ms | non-2xx | socket errors | server RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for run in $(seq "$runs"); do
  wrk -t"$((conns < 2 ? 1 : 2))" -c"$conns" -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/completions" \
    >"$work/wrk.out"
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  sock=$(awk '/Socket errors/ {print $0}' "$work/wrk.out" | sed 's/.*Socket errors: //')
  rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0; else if (v ~ /s$/) printf "%.2f", v * 1000; else print v }'; }
  tps=$(awk -v r="$rps" -v n="$max_tokens" 'BEGIN { printf "%.0f", r * n }')
  echo "| $run | $rps | $tps | $(to_ms "$p50") | $(to_ms "$p99") | ${non2xx:-0} | ${sock:-none} | $rss |"
done
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
pid=
echo "server exit status after SIGTERM: $status"
[[ $status -eq 0 ]]

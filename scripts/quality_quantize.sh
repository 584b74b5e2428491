#!/usr/bin/env bash
# Quality of every --qformat on llama-mix-16m (docs/QUALITY.md "Quantization" table): quantize
# with WikiText-2 valid as calibration text, then score TinyStories (first 100 stories, document
# protocol) against the float model's saved log-probs: PPL, ΔPPL %, mean KLD, top-1 agreement.
# Usage: scripts/quality_quantize.sh [BUILD_DIR] [WORK_DIR]   (prints a Markdown table)
set -euo pipefail
BIN=${1:-build/release}/bin/qforge
WORK=${2:-/tmp/qforge-quality}
SHARED=$(cd "$(dirname "$0")/../../shared" && pwd)
MODEL=$SHARED/models/llama-mix-16m
CALIB=$SHARED/data/wikitext-2/wiki.valid.tokens
DATA=$SHARED/data/tinystories/tinystories_valid_first1000.txt
EVAL=(eval ppl --dataset "$DATA" --doc-separator '<|endoftext|>' --max-chunks 100)
CAL=(--calib "$CALIB" --calib-size 32 --calib-max-seq-len 256 --quiet --overwrite)
export QFORGE_NO_PROGRESS=1
mkdir -p "$WORK"
"$BIN" "${EVAL[@]}" --model "$MODEL" --save-logits "$WORK/base.bin" --kld-top-k 0 > "$WORK/base.txt"
base_ppl=$(sed -n 's/^PPL = \([0-9.]*\).*/\1/p' "$WORK/base.txt")
echo "| qformat | KV cache | weights (MiB) | PPL | ΔPPL % | mean KLD | top-1 agreement | quantize s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
size_mib() { du -m --apparent-size -c "$1"/*.safetensors | tail -1 | cut -f1; }
row() {  # qformat kv-label dir extra-eval-args...
  local q=$1 kv=$2 dir=$3; shift 3
  "$BIN" "${EVAL[@]}" --model "$dir" --kl-divergence-base "$WORK/base.bin" "$@" > "$WORK/eval.txt"
  local ppl kld top1
  ppl=$(sed -n 's/^PPL = \([0-9.]*\).*/\1/p' "$WORK/eval.txt")
  kld=$(sed -n 's/^ *Mean *KLD: *\([0-9.]*\).*/\1/p' "$WORK/eval.txt")
  top1=$(sed -n 's/^ *Same top token: *\([0-9.]*\)%.*/\1/p' "$WORK/eval.txt")
  local d
  d=$(awk -v a="$ppl" -v b="$base_ppl" 'BEGIN { printf "%+.2f", (a / b - 1) * 100 }')
  echo "| $q | $kv | $(size_mib "$dir") | $ppl | $d | $kld | $top1 | ${QSEC:-} |"
}
echo "| bf16 (baseline) | f32 | $(size_mib "$MODEL") | $base_ppl | 0 | 0 | 100 | - |"
for q in fp8 fp8_pc_pt fp8_pb_wo int8_wo int8_gptq int8_sq int8_sq_pt int4_wo int4_awq int4_gptq \
         w4a8_awq nvfp4 mxfp4 w4a8_mxfp4_fp8; do
  s=$(date +%s.%N)
  "$BIN" quantize --model "$MODEL" --qformat "$q" "${CAL[@]}" --output "$WORK/$q" > /dev/null
  QSEC=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  row "$q" f32 "$WORK/$q"
done
# KV cache: calibrated scales vs unit scales, on the FP8 model.
for kv in fp8 int8; do
  s=$(date +%s.%N)
  "$BIN" quantize --model "$MODEL" --qformat fp8 --kv-cache "$kv" "${CAL[@]}" --output "$WORK/fp8-kv$kv" > /dev/null
  QSEC=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  row fp8 "$kv (calibrated)" "$WORK/fp8-kv$kv"
  QSEC=-
  row fp8 "$kv (unit scales)" "$WORK/fp8-kv$kv" --kv-cache "$kv-unit"
done
s=$(date +%s.%N)
"$BIN" quantize --model "$MODEL" --qformat auto --auto-quantize-bits 5.5 "${CAL[@]}" --output "$WORK/auto" > /dev/null
QSEC=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
row "auto 5.5 bits (int4_awq/fp8)" f32 "$WORK/auto"

#!/usr/bin/env bash
# Quality of every --qformat (docs/QUALITY.md "Quantization" tables): quantize, then score held-out
# text against the float model's saved log-probs (PPL, ΔPPL %, mean KLD, top-1 agreement).
#   llama-mix-16m: calibrated on WikiText-2 valid; scored on TinyStories stories 1-100 (document
#                  protocol) and on the first 40 chunks of WikiText-2 raw test (ctx 512).
#   stories260K:   converted to HF (qforge convert); calibrated on TinyStories stories 101-1000;
#                  scored on stories 1-10 (document protocol). Its widths (64, 172) are not
#                  multiples of 128: INT4 uses group 32 with a padded last group, exported as
#                  compressed-tensors; NVFP4/MXFP4 leave down_proj (172 inputs) in F32.
#   qforge-tiny-shakespeare (models/, the built-in default): calibrated on its calib.txt (train
#                  split); scored on its heldout.txt (ctx 256, the whole held-out split).
# Usage: scripts/quality_quantize.sh [BUILD_DIR] [WORK_DIR] [llama-mix|stories260K|tiny-shakespeare|all]
# QFORGE_SHARED=DIR overrides where models/ and data/ are found (default: ../shared).
set -euo pipefail
BIN=$(realpath "${1:-build/release}")/bin/qforge
WORK=${2:-/tmp/qforge-quality}
WHICH=${3:-all}
SHARED=${QFORGE_SHARED:-$(cd "$(dirname "$0")/../../shared" && pwd)}
TS=$SHARED/data/tinystories/tinystories_valid_first1000.txt
export QFORGE_NO_PROGRESS=1
mkdir -p "$WORK"

size_mib() { du -k --apparent-size -c "$1"/*.safetensors | tail -1 | awk '{ printf "%.2f", $1 / 1024 }'; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# eval_cols MODEL_DIR BASE_BIN EVAL_ARGS... -> "PPL | ΔPPL % | KLD | top-1"
eval_cols() {
  local dir=$1 base=$2; shift 2
  "$BIN" eval ppl --model "$dir" --kl-divergence-base "$base" "$@" > "$WORK/eval.txt"
  local ppl kld top1 bppl
  ppl=$(sed -n 's/^PPL = \([0-9.]*\).*/\1/p' "$WORK/eval.txt")
  bppl=$(sed -n 's/^ *PPL(base): *\([0-9.]*\).*/\1/p' "$WORK/eval.txt")
  kld=$(sed -n 's/^ *Mean *KLD: *\([0-9.]*\).*/\1/p' "$WORK/eval.txt")
  top1=$(sed -n 's/^ *Same top token: *\([0-9.]*\)%.*/\1/p' "$WORK/eval.txt")
  awk -v a="$ppl" -v b="$bppl" -v k="$kld" -v t="$top1" \
    'BEGIN { printf "%.4f | %+.2f | %.5f | %.2f", a, (a / b - 1) * 100, k, t }'
}

# table MODEL_NAME MODEL_DIR CALIB EVAL1_NAME "EVAL1_ARGS" EVAL2_NAME "EVAL2_ARGS" ROWS...
# A row is "qformat|label|extra quantize args|extra eval args".
table() {
  local name=$1 model=$2 calib=$3 e1name=$4 e1=$5 e2name=$6 e2=$7; shift 7
  local -a E1 E2
  read -r -a E1 <<< "$e1"
  read -r -a E2 <<< "$e2"
  "$BIN" eval ppl --model "$model" "${E1[@]}" --save-logits "$WORK/$name-base1.bin" --kld-top-k 0 > /dev/null
  [ -n "$e2name" ] && "$BIN" eval ppl --model "$model" "${E2[@]}" --save-logits "$WORK/$name-base2.bin" --kld-top-k 0 > /dev/null
  echo
  echo "#### $name — $e1name${e2name:+ / $e2name}"
  echo
  if [ -n "$e2name" ]; then
    echo "| qformat | weights MiB | quantize s | PPL | ΔPPL % | mean KLD | top-1 % | PPL | ΔPPL % | mean KLD | top-1 % |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  else
    echo "| qformat | weights MiB | quantize s | PPL | ΔPPL % | mean KLD | top-1 % |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  fi
  echo "| float (source) | $(size_mib "$model") | - | $(eval_cols "$model" "$WORK/$name-base1.bin" "${E1[@]}")${e2name:+ | $(eval_cols "$model" "$WORK/$name-base2.bin" "${E2[@]}")} |"
  local row q label qargs eargs s dir
  for row in "$@"; do
    IFS='|' read -r q label qargs eargs <<< "$row"
    local -a QA EA
    read -r -a QA <<< "$qargs"
    read -r -a EA <<< "$eargs"
    dir=$WORK/$name-${label// /_}
    s=$(date +%s.%N)
    if [ ! -f "$dir/config.json" ] || [ "${#EA[@]}" -eq 0 ]; then
      "$BIN" quantize --model "$model" --qformat "$q" --calib "$calib" --calib-size 32 \
        --calib-max-seq-len 256 --quiet --overwrite --output "$dir" "${QA[@]}" > /dev/null
    fi
    local secs
    secs=$(secs_since "$s")
    [ "${#EA[@]}" -gt 0 ] && secs=-
    local shown=$label
    [ "${#EA[@]}" -gt 0 ] && shown="$label, eval \`$eargs\`"
    echo "| $shown | $(size_mib "$dir") | $secs | $(eval_cols "$dir" "$WORK/$name-base1.bin" "${E1[@]}" "${EA[@]}")${e2name:+ | $(eval_cols "$dir" "$WORK/$name-base2.bin" "${E2[@]}" "${EA[@]}")} |"
  done
}

ROWS=(
  "fp8|fp8||" "fp8_pc_pt|fp8_pc_pt||" "fp8_pb_wo|fp8_pb_wo||"
  "int8_wo|int8_wo||" "int8_gptq|int8_gptq||"
  "int8_sq|int8_sq||" "int8_sq_pt|int8_sq_pt||" "int8_sq_tensor|int8_sq_tensor||"
)
if [ "$WHICH" = all ] || [ "$WHICH" = llama-mix ]; then
  table llama-mix-16m "$SHARED/models/llama-mix-16m" "$SHARED/data/wikitext-2/wiki.valid.tokens" \
    "TinyStories 1-100 (docs)" "--dataset $TS --doc-separator <|endoftext|> --max-chunks 100" \
    "WikiText-2 raw test, 40 x 512" "--dataset $SHARED/data/wikitext-2-raw/wiki.test.raw --ctx 512 --max-chunks 40" \
    "${ROWS[@]}" \
    "int4_wo|int4_wo g128||" "int4_awq|int4_awq g128||" "int4_gptq|int4_gptq g128||" \
    "int4_awq_gptq|int4_awq_gptq g128||" \
    "int4_wo|int4_wo g64|--group-size 64|" "int4_awq|int4_awq g64|--group-size 64|" \
    "int4_gptq|int4_gptq g64|--group-size 64|" "int4_awq_gptq|int4_awq_gptq g64|--group-size 64|" \
    "w4a8_awq|w4a8_awq||" "nvfp4|nvfp4||" "mxfp4|mxfp4||" "w4a8_mxfp4_fp8|w4a8_mxfp4_fp8||" \
    "fp8|fp8 + kv fp8|--kv-cache fp8|" "fp8|fp8 + kv fp8|--kv-cache fp8|--kv-cache fp8-unit" \
    "fp8|fp8 + kv int8|--kv-cache int8|" "fp8|fp8 + kv int8|--kv-cache int8|--kv-cache int8-unit" \
    "auto|auto 5.5 bits|--auto-quantize-bits 5.5|"
fi
if [ "$WHICH" = all ] || [ "$WHICH" = stories260K ]; then
  HF=$WORK/stories260K-hf
  [ -f "$HF/config.json" ] || "$BIN" convert --model "$SHARED/models/stories260K/stories260K.bin" --output "$HF" > /dev/null
  # Calibration text: stories 101-1000, one per line group, without the delimiter lines.
  awk 'BEGIN { n = 0 } /^<\|endoftext\|>$/ { n++; print ""; next } n >= 100 { print }' "$TS" > "$WORK/ts-calib.txt"
  CT="--export-format compressed-tensors"
  table stories260K "$HF" "$WORK/ts-calib.txt" \
    "TinyStories 1-10 (docs)" "--dataset $TS --doc-separator <|endoftext|> --max-chunks 10" "" "" \
    "${ROWS[@]}" \
    "int4_wo|int4_wo g32|--group-size 32 $CT|" "int4_awq|int4_awq g32|--group-size 32 $CT|" \
    "int4_gptq|int4_gptq g32|--group-size 32 $CT|" "int4_awq_gptq|int4_awq_gptq g32|--group-size 32 $CT|" \
    "int4_wo|int4_wo g16|--group-size 16 $CT|" "int4_awq|int4_awq g16|--group-size 16 $CT|" \
    "int4_gptq|int4_gptq g16|--group-size 16 $CT|" "int4_awq_gptq|int4_awq_gptq g16|--group-size 16 $CT|" \
    "nvfp4|nvfp4 (down_proj f32)|--exclude *.down_proj|" "mxfp4|mxfp4 (down_proj f32)|--exclude *.down_proj|" \
    "fp8|fp8 + kv fp8|--kv-cache fp8|" "fp8|fp8 + kv fp8|--kv-cache fp8|--kv-cache fp8-unit" \
    "fp8|fp8 + kv int8|--kv-cache int8|" "fp8|fp8 + kv int8|--kv-cache int8|--kv-cache int8-unit"
fi
if [ "$WHICH" = all ] || [ "$WHICH" = tiny-shakespeare ]; then
  TINY=$(cd "$(dirname "$0")/.." && pwd)/models/qforge-tiny-shakespeare
  table qforge-tiny-shakespeare "$TINY" "$TINY/calib.txt" \
    "held-out split, 197 x 256" "--dataset $TINY/heldout.txt --ctx 256" "" "" \
    "fp8|fp8||" "int8_wo|int8_wo||" \
    "int4_wo|int4_wo g128||" "int4_awq|int4_awq g128||" "int4_gptq|int4_gptq g128||" \
    "int4_wo|int4_wo g64|--group-size 64|" "int4_awq|int4_awq g64|--group-size 64|" \
    "fp8|fp8 + kv fp8|--kv-cache fp8|"
fi

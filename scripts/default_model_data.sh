#!/usr/bin/env bash
# Writes the text files of the built-in default model, models/qforge-tiny-shakespeare/, from
# ../shared/data/tinyshakespeare/input.txt: heldout.txt (bytes [1003856, end), the split the model
# never saw) and calib.txt (bytes [0, 65536) cut at the last line end, calibration text). They are
# derived from third-party text, so they are not committed (.gitignore); scripts/setup.sh runs this.
# Idempotent; refuses a source whose bytes differ from the one the model was trained on.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${QFORGE_SHARED:-../shared}/data/tinyshakespeare/input.txt
OUT=models/qforge-tiny-shakespeare
WANT=86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed
[ -f "$OUT/heldout.txt" ] && [ -f "$OUT/calib.txt" ] && exit 0
if [ ! -f "$SRC" ]; then
  echo "default_model_data: $SRC not found (set QFORGE_SHARED to the shared data folder)" >&2
  exit 1
fi
GOT=$(sha256sum "$SRC" | cut -d' ' -f1)
if [ "$GOT" != "$WANT" ]; then
  echo "default_model_data: $SRC has sha256 $GOT, expected $WANT (another tinyshakespeare?)" >&2
  exit 1
fi
tmp=$(mktemp -d "$OUT/.data.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 - "$SRC" "$tmp" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
open(sys.argv[2] + "/heldout.txt", "wb").write(raw[1003856:])
open(sys.argv[2] + "/calib.txt", "wb").write(raw[: raw.rindex(b"\n", 0, 65536) + 1])
PY
mv "$tmp/heldout.txt" "$OUT/heldout.txt"
mv "$tmp/calib.txt" "$OUT/calib.txt"
echo "default_model_data: wrote $OUT/heldout.txt and $OUT/calib.txt"

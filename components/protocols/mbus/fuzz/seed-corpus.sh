#!/bin/sh
# Seeds corpus/decode with every frame of tests/vectors/mbus/mbus-wired.jsonl and
# tests/vectors/wmbus/wmbus.jsonl, one file per vector and key provider (the target's first
# byte: 0 no keys, 1 identity "decryption", 2 scrambling). Run from anywhere; needs python3.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode
python3 - <<'PY'
import json
for path in ("../../../../tests/vectors/mbus/mbus-wired.jsonl", "../../../../tests/vectors/wmbus/wmbus.jsonl"):
    with open(path) as f:
        for line in f:
            v = json.loads(line)
            h = v["frame_hex"]
            frame = bytes.fromhex(h[: len(h) // 2 * 2])
            for mode in (0, 1, 2):
                with open(f"corpus/decode/{v['id']}-{mode}", "wb") as out:
                    out.write(bytes([mode]) + frame)
PY
echo "seeded $(ls corpus/decode | wc -l) files into $(pwd)/corpus/decode"

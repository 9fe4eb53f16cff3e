#!/bin/sh
# Seeds corpus/decode with every frame of tests/vectors/dsmr/dsmr.jsonl (and the plaintext of
# the encrypted one), one file per vector, plus a copy of each with the CRC digits removed
# (a telegram without CRC is accepted, so mutations of it reach the data-line parser instead
# of stopping at the CRC check). Run from anywhere; needs python3.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode
python3 - <<'PY'
import json
with open("../../../../tests/vectors/dsmr/dsmr.jsonl") as f:
    for line in f:
        v = json.loads(line)
        frame = bytes.fromhex(v["frame_hex"]) if v.get("frame_hex") else v["frame_text"].encode()
        with open(f"corpus/decode/{v['id']}", "wb") as out:
            out.write(frame)
        if v.get("expected_plaintext"):
            frame = v["expected_plaintext"].encode()
            with open(f"corpus/decode/{v['id']}-plaintext", "wb") as out:
                out.write(frame)
        bang = frame.rfind(b"\n!")
        if bang >= 0 and frame[bang + 2 : bang + 3].isalnum():
            end = bang + 2
            while frame[end : end + 1].isalnum():
                end += 1
            with open(f"corpus/decode/{v['id']}-nocrc", "wb") as out:
                out.write(frame[: bang + 2] + frame[end:])
PY
echo "seeded $(ls corpus/decode | wc -l) files into $(pwd)/corpus/decode"

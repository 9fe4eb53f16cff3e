#!/bin/sh
# Seeds corpus/decode with every frame of tests/vectors/ansi-c12/ansi-c12.jsonl (each
# vector's preceding frames and frame as one capture, ACK bytes between), once per key
# provider (the target's first byte: 0 no keys, 1 identity "decryption"), plus the table
# frames the crate's tests build (written by `cargo test -p ami-ansi-c12 --test robust` when
# AMI_FUZZ_SEEDS names a directory). Run from anywhere; needs python3.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode
python3 - <<'PY'
import json
with open("../../../../tests/vectors/ansi-c12/ansi-c12.jsonl") as f:
    for line in f:
        v = json.loads(line)
        frame = b"".join(bytes.fromhex(h) + b"\x06" for h in v.get("preceding_frames_hex", []))
        frame += bytes.fromhex(v["frame_hex"])
        for mode in (0, 1):
            with open(f"corpus/decode/{v['id']}-{mode}", "wb") as out:
                out.write(bytes([mode]) + frame)
PY
seeds="$(pwd)/corpus/decode"
(cd ../../../.. && AMI_FUZZ_SEEDS="$seeds" cargo test -q -p ami-ansi-c12 --test robust seeds_decode >/dev/null)
echo "seeded $(ls corpus/decode | wc -l) files into $(pwd)/corpus/decode"

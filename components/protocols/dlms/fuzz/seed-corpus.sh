#!/bin/sh
# Seeds corpus/decode with every frame of tests/vectors/dlms/dlms.jsonl, one file per vector,
# plus the decrypted APDUs of the ciphered ones (what the fuzz target's identity "decryption"
# passes on) and the encrypted DSMR frame of tests/vectors/dsmr/dsmr.jsonl.
# Run from anywhere; needs python3.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/decode
python3 - <<'PY'
import json
for path in ("../../../../tests/vectors/dlms/dlms.jsonl", "../../../../tests/vectors/dsmr/dsmr.jsonl"):
    with open(path) as f:
        for line in f:
            v = json.loads(line)
            if not v.get("frame_hex"):
                continue
            frame = bytes.fromhex(v["frame_hex"])
            if "dsmr" in path and frame[:1] != b"\xdb":
                continue
            with open(f"corpus/decode/{v['id']}", "wb") as out:
                out.write(frame)
            plain = (v.get("expected", {}).get("dlms_cosem") or {}).get("plain_apdu_hex")
            if plain:
                # general-glo-ciphering around the plaintext, SC 0x00 (no protection).
                p = bytes.fromhex(plain)
                st = bytes.fromhex(v["expected"]["dlms_cosem"]["apdu"]["system_title"]["octets"])
                content = b"\x00\x00\x00\x00\x01" + p
                if len(content) < 128:
                    with open(f"corpus/decode/{v['id']}-plain", "wb") as out:
                        out.write(b"\xdb\x08" + st + bytes([len(content)]) + content)
PY
echo "seeded $(ls corpus/decode | wc -l) files into $(pwd)/corpus/decode"

"""Reference decoders for `ami bench plugins --python`: independent Python implementations
timed on the same frames as ami's decoders, in the same run.

Reads one JSON object on stdin: {"protocol": str, "frames": [{"hex": str, "spec": str|null}],
"seconds": float}. Prints one JSON object: {"library": str, "frames_per_s": float, "indices": [int]} (the frames
it decoded, which alone are timed, so ami is timed on the same ones) or {"error": str}.
"""

import json
import sys
import time


def dsmr(frames):
    import dsmr_parser
    from dsmr_parser import telegram_specifications as specs
    from dsmr_parser.parsers import TelegramParser

    from importlib.metadata import version

    jobs = []
    for f in frames:
        spec = getattr(specs, f.get("spec") or "V5", specs.V5)
        parser = TelegramParser(spec, apply_checksum_validation=True)
        text = bytes.fromhex(f["hex"]).decode("ascii", "replace")
        jobs.append((parser, text))
    return "dsmr-parser " + version("dsmr-parser"), lambda p, t: p.parse(t), jobs


def iec62056_21(frames):
    from han import dlde
    from importlib.metadata import version

    jobs = [(None, bytes.fromhex(f["hex"])) for f in frames]
    return (
        "amshan " + version("amshan") + " (mode D readouts)",
        lambda _, b: dlde.decode_p1_readout(dlde.DataReadout(b)),
        jobs,
    )


def dlms(frames):
    from han.autodecoder import AutoDecoder
    from importlib.metadata import version

    decoder = AutoDecoder()

    def run(_, payload):
        # amshan's decoders take the HDLC information field (LLC header and APDU).
        if decoder.decode_message_payload(payload) is None:
            raise ValueError("not decoded")

    jobs = [(None, bytes.fromhex(f["hex"])) for f in frames]
    return "amshan " + version("amshan") + " (HAN pushes)", run, jobs


def mbus(frames):
    import meterbus
    from importlib.metadata import version

    jobs = [(None, bytes.fromhex(f["hex"])) for f in frames]
    return "pyMeterBus " + version("pyMeterBus"), lambda _, b: meterbus.load(b), jobs


def wmbus(frames):
    import pymbusparser
    from importlib.metadata import version

    def run(_, h):
        out = pymbusparser.m_bus_parse(h, "json")
        if not out or "rror" in out[:40]:
            raise ValueError(out[:80] if out else "empty")

    jobs = [(None, f["hex"]) for f in frames]
    return "pymbusparser " + version("pymbusparser") + " (Rust m-bus-parser)", run, jobs


def main():
    req = json.load(sys.stdin)
    pick = {
        "dlms": dlms,
        "dsmr": dsmr,
        "iec62056-21": iec62056_21,
        "mbus": mbus,
        "wmbus": wmbus,
    }.get(req["protocol"])
    if pick is None:
        print(json.dumps({"error": "no Python reference for " + req["protocol"]}))
        return
    try:
        library, run, jobs = pick(req["frames"])
    except ImportError as e:
        print(json.dumps({"error": "reference library not installed: %s" % e}))
        return
    good, indices = [], []
    for i, (p, x) in enumerate(jobs):
        try:
            run(p, x)
            good.append((p, x))
            indices.append(i)
        except Exception:
            pass
    if not good:
        print(json.dumps({"error": library + " decoded none of the frames"}))
        return
    deadline = time.perf_counter() + float(req["seconds"])
    n = 0
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for p, x in good:
            run(p, x)
        n += len(good)
    rate = n / (time.perf_counter() - start)
    print(json.dumps({"library": library, "frames_per_s": rate, "indices": indices}))


main()

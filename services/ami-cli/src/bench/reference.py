"""Reference decoders for `ami bench plugins --python`: independent Python implementations
timed on the same frames as ami's decoders, in the same run.

Reads one JSON object on stdin: {"protocol": str, "frames": [{"hex": str, "spec": str|null}],
"seconds": float}. Prints one JSON object: {"library": str, "frames_per_s": float, "decoded": int}
or {"error": str}. Frames the library rejects are left out of the timing and counted.
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


def main():
    req = json.load(sys.stdin)
    pick = {"dsmr": dsmr, "iec62056-21": iec62056_21}.get(req["protocol"])
    if pick is None:
        print(json.dumps({"error": "no Python reference for " + req["protocol"]}))
        return
    try:
        library, run, jobs = pick(req["frames"])
    except ImportError as e:
        print(json.dumps({"error": "reference library not installed: %s" % e}))
        return
    good = []
    for p, x in jobs:
        try:
            run(p, x)
            good.append((p, x))
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
    print(json.dumps({"library": library, "frames_per_s": rate, "decoded": len(good)}))


main()

"""Run every benchmark: `python -m benchmarks [--quick] [part ...]` (parts: accuracy cases detectors encoders tracking throughput window scale longfile yunet_onnx fuzz)."""

from __future__ import annotations

import argparse
import os
import time
import traceback

from . import accuracy, cases, detectors, encoders, fuzz, longfile, scale, throughput, tracking, window, yunet_onnx

PARTS = {
    "accuracy": accuracy,
    "cases": cases,
    "detectors": detectors,
    "encoders": encoders,
    "tracking": tracking,
    "throughput": throughput,
    "window": window,
    "scale": scale,
    "longfile": longfile,
    "yunet_onnx": yunet_onnx,
    "fuzz": fuzz,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller inputs: a few minutes in all")
    parser.add_argument("parts", nargs="*", help=f"parts to run (default: all of {', '.join(PARTS)})")
    args = parser.parse_args()
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r} (choose from {', '.join(PARTS)})")
    print(f"os.cpu_count() = {os.cpu_count()}, mode = {'quick' if args.quick else 'full'}", flush=True)
    t0 = time.monotonic()
    for name in args.parts or list(PARTS):
        start = time.monotonic()
        try:
            PARTS[name].main(args.quick)
        except Exception:  # one broken part must not hide the others
            traceback.print_exc()
        print(f"[{name}: {time.monotonic() - start:.0f} s]\n", flush=True)
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()

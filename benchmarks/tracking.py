"""What tracking saves: descriptors computed vs faces detected, with and without encode-on-demand.

Runs vidcluster twice on each data set in one process, side by side: as configured (tracks
ask for a few descriptors each) and with every detected face encoded (encode_every=1, no
cap). Prints faces, descriptors, wall time, identities and, on cctv-asl, BCubed F per face
against truth.csv (every face of a clip belongs to that clip's person).

    python -m benchmarks.tracking
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from vidcluster.config import load_config
from vidcluster.metrics import bcubed
from vidcluster.pipeline import analyse

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODES = {
    "tracks (default)": {},
    "encode every face": {"tracks": {"encode_every": 1, "max_encodings": 1000}},
}


def _bcubed_cctv(out: Path) -> float | None:
    truth_csv = DATA / "cctv-asl" / "truth.csv"
    if not truth_csv.exists():
        return None
    with open(truth_csv, newline="") as fh:
        person = {Path(r["file"]).name: r["person"] for r in csv.DictReader(fh)}
    with open(out / "report" / "faces.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return bcubed([person[Path(r["file"]).name] for r in rows], [int(r["identity"]) for r in rows])[2]


def measure(name: str, inputs: list[Path], overrides: dict, config_tz: str) -> dict:
    cfg = load_config(None, {"sources": {"timezone": config_tz}, **overrides})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        started = time.perf_counter()
        summary = analyse(inputs, out, cfg)
        wall = time.perf_counter() - started
        with sqlite3.connect(out / "vidcluster.db") as db:
            faces, encoded = db.execute("SELECT COUNT(*), SUM(embedding IS NOT NULL) FROM faces").fetchone()
        return {
            "data": name, "faces": faces, "descriptors": encoded or 0, "wall_s": round(wall, 2),
            "identities": len(summary.identities),
            "bcubed_f": _bcubed_cctv(out) if name == "cctv-asl" else None,
        }


def main(quick: bool = False) -> int:
    """Both data sets are small; `quick` changes nothing."""
    sets = {"cctv-asl": ([DATA / "cctv-asl"], "Europe/Berlin"), "crowd 1080p": ([DATA / "crowd"], "UTC")}
    rows = []
    for name, (inputs, tz) in sets.items():
        if not inputs[0].exists():
            print(f"skipping {name}: {inputs[0]} not found", file=sys.stderr)
            continue
        for mode, overrides in MODES.items():
            rows.append({"mode": mode, **measure(name, inputs, overrides, tz)})
    header = ["data", "mode", "faces", "descriptors", "wall_s", "identities", "bcubed_f"]
    print(" | ".join(header))
    for r in rows:
        print(" | ".join("-" if r[h] is None else f"{r[h]:.3f}" if isinstance(r[h], float) and h == "bcubed_f" else str(r[h]) for h in header))
    for name in sets:
        pair = [r for r in rows if r["data"] == name]
        if len(pair) == 2 and pair[0]["descriptors"]:
            print(f"{name}: {pair[1]['descriptors'] / pair[0]['descriptors']:.1f}x fewer descriptors, "
                  f"{pair[1]['wall_s'] / pair[0]['wall_s']:.2f}x wall time")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "tracking.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main("--quick" in sys.argv))

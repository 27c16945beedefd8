"""Tracking: does every sighting hold one person, and how many descriptors does that cost?

Runs vidcluster on each data set in one process, side by side in three modes:

- before: links by position alone where unambiguous, cuts from colour only
  (`tracks.confirm_links: false`, `tracks.structure_cuts: false`, the tracker as it was);
- after: every link confirmed by appearance, structural cuts (the defaults);
- every face encoded (`encode_every: 1`, no cap): what tracking saves (not with --quick).

Data sets: the scripted synthetic tracking cases of `benchmarks.synth` (a person replaced in
place with and without a cut and after a gap, two people crossing; every face attributed to
the person drawn there), cctv-asl (every face of a clip is that clip's person, truth.csv),
and the 1080p crowd clip (no truth; not with --quick).

Prints per run: faces, descriptors and descriptors per face, tracks, mixed tracks (tracks
holding faces of more than one true person: must be 0), identities, BCubed F per face, wall
and CPU seconds; and the mixed tracks per synthetic case.

    python -m benchmarks tracking [--quick]
"""

from __future__ import annotations

import csv
import os
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from vidcluster.analysis.metrics import bcubed
from vidcluster.config import load_config
from vidcluster.run.pipeline import analyse

from . import synth
from .common import DATA, save, table

BEFORE = {"tracks": {"confirm_links": False, "structure_cuts": False}}
MODES = {
    "before": BEFORE,
    "after": {},
    "every face": {"tracks": {"encode_every": 1, "max_encodings": 1000}},
}
CASE_SIZE = (640, 360)
PersonOf = Callable[[dict], "str | None"]  # faces.csv row -> true person (None: unknown)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def mixed_tracks(rows: list[dict], person_of: PersonOf) -> tuple[int, int, dict[str, int]]:
    """(tracks, tracks holding more than one true person, mixed tracks per camera)."""
    people: dict[str, set[str]] = defaultdict(set)
    camera: dict[str, str] = {}
    for r in rows:
        p = person_of(r)
        camera[r["track_id"]] = r["camera"]
        if p is not None:
            people[r["track_id"]].add(p)
    mixed = [t for t, ps in people.items() if len(ps) > 1]
    per_camera: dict[str, int] = defaultdict(int)
    for t in mixed:
        per_camera[camera[t]] += 1
    return len(camera), len(mixed), dict(per_camera)


def measure(name: str, mode: str, inputs: list[Path], tz: str, person_of: PersonOf | None) -> dict:
    cfg = load_config(None, {"sources": {"timezone": tz}, "faces": {"detector": "hog"}, **MODES[mode]})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        wall0, cpu0 = time.perf_counter(), _cpu_s()
        summary = analyse(inputs, out, cfg)
        wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
        with sqlite3.connect(out / "vidcluster.db") as db:
            faces, encoded = db.execute("SELECT COUNT(*), SUM(embedding IS NOT NULL) FROM faces").fetchone()
        with open(out / "report" / "faces.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    row = {
        "data": name,
        "mode": mode,
        "faces": faces,
        "descriptors": encoded or 0,
        "desc_per_face": (encoded or 0) / max(1, faces),
        "identities": len(summary.identities),
        "tracks": len({r["track_id"] for r in rows}),
        "mixed": None,
        "bcubed_f": None,
        "wall_s": wall,
        "cpu_s": cpu,
        "mixed_by_case": {},
    }
    if person_of is not None:
        row["tracks"], row["mixed"], row["mixed_by_case"] = mixed_tracks(rows, person_of)
        known = [(person_of(r), int(r["identity"])) for r in rows if person_of(r) is not None]
        row["bcubed_f"] = bcubed([k[0] for k in known], [k[1] for k in known])[2] if known else None
    return row


def _cctv_person() -> PersonOf | None:
    truth_csv = DATA / "cctv-asl" / "truth.csv"
    if not truth_csv.exists():
        return None
    with open(truth_csv, newline="") as fh:
        person = {Path(r["file"]).name: r["person"] for r in csv.DictReader(fh)}
    return lambda r: person.get(Path(r["file"]).name)


def _case_person(cases: dict[str, synth.Case]) -> PersonOf:
    by_name = {Path(rel).name: case for rel, case in cases.items()}

    def person_of(r: dict) -> str | None:
        case = by_name.get(Path(r["file"]).name)
        box = [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
        return None if case is None else synth.true_person(case, float(r["pts_s"]), box, CASE_SIZE)

    return person_of


def main(quick: bool = False) -> int:
    """`quick`: before/after only, on the synthetic cases and cctv-asl."""
    photos = DATA / "photos-deepface" / "images"
    modes = ["before", "after"] if quick else list(MODES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets: dict[str, tuple[list[Path], str, PersonOf | None]] = {}
        if photos.exists():
            cases = synth.generate_cases(Path(tmp) / "cases", photos, size=CASE_SIZE)
            sets["synthetic cases"] = ([Path(tmp) / "cases"], "UTC", _case_person(cases))
        else:
            print(f"skipping the synthetic cases: {photos} not found", file=sys.stderr)
        sets["cctv-asl"] = ([DATA / "cctv-asl"], "Europe/Berlin", _cctv_person())
        if not quick:
            sets["crowd 1080p"] = ([DATA / "crowd"], "UTC", None)
        for name, (inputs, tz, person_of) in sets.items():
            if not inputs[0].exists():
                print(f"skipping {name}: {inputs[0]} not found", file=sys.stderr)
                continue
            for mode in modes:
                rows.append(measure(name, mode, inputs, tz, person_of))
    columns = [
        "data",
        "mode",
        "faces",
        "descriptors",
        "desc_per_face",
        "tracks",
        "mixed",
        "identities",
        "bcubed_f",
        "wall_s",
        "cpu_s",
    ]
    print(
        table(
            "tracking: mixed = tracks holding more than one true person (must be 0)",
            [{c: "-" if r[c] is None else r[c] for c in columns} for r in rows],
            columns,
        )
    )
    by_case = [
        {"case": case, **{r["mode"]: r["mixed_by_case"].get(case, 0) for r in rows if r["data"] == "synthetic cases"}}
        for case in synth.CASE_NAMES
    ]
    if any(r["data"] == "synthetic cases" for r in rows):
        print(table("mixed tracks per synthetic case", by_case))
    for name in {r["data"] for r in rows}:
        pair = {r["mode"]: r for r in rows if r["data"] == name}
        if "before" in pair and "after" in pair and pair["before"]["descriptors"]:
            b, a = pair["before"], pair["after"]
            print(
                f"{name}: after/before descriptors {a['descriptors'] / b['descriptors']:.2f}x, "
                f"wall {a['wall_s'] / b['wall_s']:.2f}x, CPU {a['cpu_s'] / max(b['cpu_s'], 1e-9):.2f}x"
            )
    save("tracking", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main("--quick" in sys.argv))

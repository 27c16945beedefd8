"""The cases that decide the default encoder: each run end to end under default settings.

For every encoder compared, vidcluster analyses (with `configs/cctv-asl.yaml` for cctv-asl
footage, the report's clips off): each cctv-asl camera alone, each pair of cameras, all three,
the whole set copied 3 and 10 times under other camera names, photos-johns and
photos-deepface. Each case is scored against the people present: identities found, BCubed
P/R/F (cctv-asl per detected face, each face belonging to its clip's person as truth.csv says;
photos by the largest face of each labelled photo, as `accuracy` scores them), false merges
(identities holding faces of more than one person) and splits (people whose faces land in more
than one identity). Identities found are those holding a scored face (photos-deepface's three
unlabelled photos, a couple and a crowd, add people of their own: ids_total counts them). A case
passes when it finds exactly the people present at BCubed F >= 0.99.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from vidcluster.analysis.metrics import UNMATCHED, bcubed

from .accuracy import _key, largest_face_labels, per_face_labels, photo_truth
from .common import ROOT, MissingData, data, run_child, save, table

ENCODERS_COMPARED = ("dlib", "sface")
CAMERAS = ("entrance", "hallway", "office")
CCTV_CONFIG = str(ROOT / "configs" / "cctv-asl.yaml")
PASS_F = 0.99
TIMEOUT_S = 1800


def cctv_truth(root: Path) -> dict[str, str]:
    """{camera-folder/file name: person} of cctv-asl, from truth.csv."""
    with open(root / "truth.csv", newline="") as fh:
        return {_key(r["file"]): r["person"] for r in csv.DictReader(fh)}


def copy_cameras(src: Path, dst: Path, sets: int, truth: dict[str, str]) -> dict[str, str]:
    """`sets` copies of every camera folder of `src` under `dst`: the first keeps its names, copy k
    is camera `NAME_ck` (folder and the camera part of each file name). Each copy after the first
    has 16 bytes appended that say which copy it is: the same frames in a file of other bytes (a
    re-export), since files of equal bytes are analysed once. Returns the truth of the copies,
    keyed like `cctv_truth`."""
    copied = {}
    for k in range(1, sets + 1):
        for cam in CAMERAS:
            name = cam if k == 1 else f"{cam}_c{k}"
            (dst / name).mkdir(parents=True)
            for f in sorted((src / cam).glob("*.mkv")):
                target = dst / name / f.name.replace(cam, name, 1)
                shutil.copyfile(f, target)
                if k > 1:
                    with open(target, "ab") as fh:
                        fh.write(k.to_bytes(16, "big"))  # other bytes for every copy
                copied[f"{name}/{target.name}"] = truth[f"{cam}/{f.name}"]
    return copied


def case_inputs(root: Path, copies_dir: Path, quick: bool) -> list[tuple[str, list[str], str]]:
    """(case name, input folders, kind) of every cctv-asl case; kind 'cctv' or 'copies-N'."""
    cases = [(cam, [str(root / cam)], "cctv") for cam in CAMERAS]
    cases += [(f"{a}+{b}", [str(root / a), str(root / b)], "cctv") for a, b in combinations(CAMERAS, 2)]
    cases.append(("all three", [str(root / c) for c in CAMERAS], "cctv"))
    for sets in (3,) if quick else (3, 10):
        cases.append((f"copies x{sets}", [str(copies_dir / f"x{sets}")], f"copies-{sets}"))
    return cases


def score_case(truth: list, pred: list) -> dict:
    """People present, BCubed P/R/F, false merges and splits of one case (unmatched = -1)."""
    bp, br, bf = bcubed(truth, pred)
    people_of: dict[int, set] = defaultdict(set)
    ids_of: dict[str, set] = defaultdict(set)
    for t, p in zip(truth, pred, strict=True):
        if p != UNMATCHED:
            people_of[p].add(t)
            ids_of[t].add(p)
    return {
        "people": len(set(truth)),
        "ids_found": len(people_of),
        "B3_P": bp,
        "B3_R": br,
        "B3_F": bf,
        "false_merges": sum(len(s) > 1 for s in people_of.values()),
        "splits": sum(len(s) > 1 for s in ids_of.values()),
        "unmatched": sum(p == UNMATCHED for p in pred),
        "faces": len(truth),
    }


def run(quick: bool = False) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="vccases-") as tmp:
        tmp_path = Path(tmp)
        jobs: list[tuple[str, list[str], str | None, dict[str, str], str]] = []  # name, inputs, config, truth, scoring
        try:
            root = data("cctv-asl")
            truth = cctv_truth(root)
            copies_truth = {}
            for sets in (3,) if quick else (3, 10):
                copies_truth[sets] = copy_cameras(root, tmp_path / "copies" / f"x{sets}", sets, truth)
            for name, inputs, kind in case_inputs(root, tmp_path / "copies", quick):
                t = truth if kind == "cctv" else copies_truth[int(kind.split("-")[1])]
                jobs.append((name, inputs, CCTV_CONFIG, t, "faces"))
        except MissingData as exc:
            rows.append({"case": "cctv-asl", "status": str(exc)})
        for photos in ("photos-johns", "photos-deepface"):
            try:
                folder = data(photos, "images") if photos == "photos-deepface" else data(photos)
                jobs.append((photos, [str(folder)], None, photo_truth(photos), "photos"))
            except MissingData as exc:
                rows.append({"case": photos, "status": str(exc)})
        for name, inputs, config, truth, scoring in jobs:
            for encoder in ENCODERS_COMPARED:
                out = str(tmp_path / "out" / f"{encoder}-{len(rows)}")
                overrides = {"faces": {"encoder": encoder}, "report": {"clips": False}}
                result = run_child(
                    "benchmarks.common:run_vidcluster",
                    {"inputs": inputs, "out": out, "overrides": overrides, "config": config},
                    TIMEOUT_S,
                )
                shutil.rmtree(out, ignore_errors=True)
                row = {"case": name, "encoder": encoder}
                if result.get("status") != "ok":
                    rows.append({**row, "status": f"{result.get('status')} {result.get('error', '')}".strip()})
                    print(f"  {name} {encoder}: {rows[-1]['status']}", flush=True)
                    continue
                pick = per_face_labels if scoring == "faces" else largest_face_labels
                t, p = pick(result, truth)
                row.update(score_case(t, p))
                row["ids_total"] = result["identities"]
                row["pass"] = "yes" if row["ids_found"] == row["people"] and row["B3_F"] >= PASS_F else "NO"
                row.update({"wall_s": result["wall_s"], "status": "ok"})
                rows.append(row)
                print(
                    f"  {name} {encoder}: {row['ids_found']} of {row['people']}, F {row['B3_F']:.3f}, "
                    f"{row['wall_s']:.0f} s",
                    flush=True,
                )
    return rows


COLUMNS = [
    "case",
    "encoder",
    "people",
    "ids_found",
    "ids_total",
    "B3_P",
    "B3_R",
    "B3_F",
    "false_merges",
    "splits",
    "unmatched",
    "faces",
    "pass",
    "wall_s",
    "status",
]


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(table(f"Cases (default settings; pass = identities == people and BCubed F >= {PASS_F})", rows, COLUMNS))
    save("cases", rows)
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)

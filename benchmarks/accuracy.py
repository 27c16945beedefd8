"""Clustering accuracy of vidcluster and the classic baseline against known identities.

photos-johns (person = folder), photos-deepface (labels.csv; labelled photos only, the
largest face of each photo; photos without a face count as unmatched) and cctv-asl (every
face of a clip belongs to that clip's person; scored per detected face).
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from vidcluster.metrics import bcubed, nmi, pairwise_prf

from .common import MissingData, data, run_child, save, table

TIMEOUT_S = 900


def score(truth: list, pred: list) -> dict:
    p, r, f = pairwise_prf(truth, pred)
    bp, br, bf = bcubed(truth, pred)
    return {
        "items": len(truth), "pair_P": p, "pair_R": r, "pair_F": f, "B3_P": bp, "B3_R": br, "B3_F": bf,
        "NMI": nmi(truth, pred), "ids_found": len({x for x in pred if x >= 0}), "ids_true": len(set(truth)),
    }


def _key(path: str) -> str:
    """Match files by their last two path parts (folder/name): both sides write paths differently."""
    parts = Path(path).parts
    return "/".join(parts[-2:])


def photo_truth(name: str) -> dict[str, str]:
    """{folder/name: person} for a photo set."""
    if name == "photos-johns":
        root = data("photos-johns")
        return {f"{d.name}/{p.name}": d.name for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.iterdir())}
    root = data("photos-deepface")
    with open(root / "labels.csv", newline="") as fh:
        return {_key(str(root / r["file"])): r["identity_group"] for r in csv.DictReader(fh)}


def largest_face_labels(result: dict, truth: dict[str, str]) -> tuple[list, list]:
    best: dict[str, tuple[int, int]] = {}
    for (src, _t, x1, y1, x2, y2), label in zip(result["faces_list"], result["labels"]):
        area = (x2 - x1) * (y2 - y1)
        k = _key(src)
        if k in truth and (k not in best or area > best[k][0]):
            best[k] = (area, label)
    keys = sorted(truth)
    return [truth[k] for k in keys], [best[k][1] if k in best else -1 for k in keys]


def clip_truth() -> dict[str, str]:
    root = data("cctv-asl")
    with open(root / "truth.csv", newline="") as fh:
        return {_key(str(root / r["file"])): r["person"] for r in csv.DictReader(fh)}


def per_face_labels(result: dict, truth: dict[str, str]) -> tuple[list, list]:
    t, p = [], []
    for face, label in zip(result["faces_list"], result["labels"]):
        k = _key(face[0])
        if k in truth:
            t.append(truth[k])
            p.append(label)
    return t, p


def run(quick: bool = False) -> list[dict]:
    rows: list[dict] = []
    # the classic recipe runs HOG on deepface's multi-megapixel photos at full size: slow, so not in --quick
    sets = ["photos-johns", "cctv-asl"] if quick else ["photos-johns", "photos-deepface", "cctv-asl"]
    for name in sets:
        try:
            root = data(name)
            truth = clip_truth() if name == "cctv-asl" else photo_truth(name)
        except MissingData as exc:
            rows.append({"dataset": name, "method": "-", "status": str(exc)})
            continue
        inputs = [str(root / "images")] if name == "photos-deepface" else [str(root)]
        if name == "cctv-asl":
            files = sorted(str(p) for p in root.rglob("*.mkv"))
            base = run_child("benchmarks.baseline:run_videos", {"paths": files}, TIMEOUT_S)
        else:
            files = sorted(str(p) for p in Path(inputs[0]).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            base = run_child("benchmarks.baseline:run_photos", {"paths": files}, TIMEOUT_S)
        with tempfile.TemporaryDirectory(prefix="vcbench-") as tmp:
            vc = run_child("benchmarks.common:run_vidcluster", {"inputs": inputs, "out": str(Path(tmp) / "out")}, TIMEOUT_S)
        for method, result in (("vidcluster", vc), ("baseline", base)):
            if result.get("status") != "ok":
                rows.append({"dataset": name, "method": method, "status": result.get("status") + " " + result.get("error", "")})
                continue
            pick = per_face_labels if name == "cctv-asl" else largest_face_labels
            t, p = pick(result, truth)
            rows.append({"dataset": name, "method": method, **score(t, p), "wall_s": result["wall_s"], "status": "ok"})
    return rows


COLUMNS = ["dataset", "method", "items", "pair_P", "pair_R", "pair_F", "B3_P", "B3_R", "B3_F", "NMI", "ids_found",
           "ids_true", "wall_s", "status"]


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(table("Accuracy (pairwise / BCubed P,R,F; NMI; identities found vs true)", rows, COLUMNS))
    save("accuracy", rows)
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)

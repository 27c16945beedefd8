"""Clustering accuracy of vidcluster's algorithms and the classic baseline against known identities.

photos-johns (person = folder), photos-deepface (labels.csv; labelled photos only, the
largest face of each photo; photos without a face count as unmatched) and cctv-asl (every
face of a clip belongs to that clip's person; scored per detected face). Each set is analysed
once; its store is then regrouped with every algorithm (graph-average, the default; dbscan;
chinese-whispers), so they all see the same tracks. Then synthetic descriptor sets, clustered
directly: the hard cases of real footage (look-alikes, brothers, one person's varied photos,
lone faces) and 10k faces of the scale benchmark with look-alike pairs.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

from vidcluster.analysis.metrics import bcubed, nmi, pairwise_prf
from vidcluster.catalog import ALGORITHMS

from .common import MissingData, data, run_child, save, table

TIMEOUT_S = 900


def score(truth: list, pred: list) -> dict:
    p, r, f = pairwise_prf(truth, pred)
    bp, br, bf = bcubed(truth, pred)
    return {
        "items": len(truth),
        "pair_P": p,
        "pair_R": r,
        "pair_F": f,
        "B3_P": bp,
        "B3_R": br,
        "B3_F": bf,
        "NMI": nmi(truth, pred),
        "ids_found": len({x for x in pred if x >= 0}),
        "ids_true": len(set(truth)),
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
    for (src, _t, x1, y1, x2, y2), label in zip(result["faces_list"], result["labels"], strict=True):
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
    for face, label in zip(result["faces_list"], result["labels"], strict=True):
        k = _key(face[0])
        if k in truth:
            t.append(truth[k])
            p.append(label)
    return t, p


ENCODERS_COMPARED = ("dlib", "sface")  # dlib-reference gives dlib's vectors: the same result, slower


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
        results = [("baseline", base)]
        for encoder in ENCODERS_COMPARED:
            with tempfile.TemporaryDirectory(prefix="vcbench-") as tmp:
                out = str(Path(tmp) / "out")
                overrides = {"faces": {"encoder": encoder}}
                vc = run_child(
                    "benchmarks.common:run_vidcluster",
                    {"inputs": inputs, "out": out, "overrides": overrides},
                    TIMEOUT_S,
                )
                regrouped = (
                    run_child("benchmarks.accuracy:regroup_all", {"out": out, "encoder": encoder}, TIMEOUT_S)
                    if vc.get("status") == "ok"
                    else vc
                )
            for algorithm in ALGORITHMS:
                method = f"vidcluster {encoder} {algorithm}"
                if regrouped.get("status") != "ok":
                    results.append((method, regrouped))
                else:
                    results.append((method, {**regrouped[algorithm], "status": "ok", "wall_s": vc["wall_s"]}))
        for method, result in results:
            if result.get("status") != "ok":
                rows.append(
                    {"dataset": name, "method": method, "status": result.get("status") + " " + result.get("error", "")}
                )
                continue
            pick = per_face_labels if name == "cctv-asl" else largest_face_labels
            t, p = pick(result, truth)
            rows.append({"dataset": name, "method": method, **score(t, p), "wall_s": result["wall_s"], "status": "ok"})
    rows += synthetic_rows()
    return rows


def regroup_all(out: str, encoder: str = "dlib") -> dict:
    """Child: regroup the analysed store in `out` (made with `encoder`) with each algorithm, at the
    encoder's thresholds; faces and labels per algorithm."""
    from vidcluster.analysis.grouping import assign_identities
    from vidcluster.case.store import Store
    from vidcluster.config import load_config

    store = Store.open(Path(out) / "vidcluster.db")
    result = {}
    try:
        for algorithm in ALGORITHMS:
            assign_identities(
                store, load_config(None, {"faces": {"encoder": encoder}, "identities": {"algorithm": algorithm}})
            )
            faces = store.faces()
            paths = {f.id: f.path for f in store.footage()}
            result[algorithm] = {
                "faces_list": [[paths[f.footage_id], f.pts_s, *f.box_xyxy] for f in faces],
                "labels": [f.identity for f in faces],
            }
    finally:
        store.close()
    return result


def hard_cases(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Synthetic versions of what real footage does to a single threshold: name -> (x, truth, counts).

    Distances follow the DESIGN facts for dlib: one person within a clip ~0.23 apart, one
    person's varied photos ~0.46 (tail to 0.55+), different people 0.6-0.8, look-alike men
    ~0.46 between track means, brothers 0.36-0.41 at their closest track pairs.
    """
    rng = np.random.default_rng(seed)

    def group(centres, per, spread, counts=1.0):
        sd = spread / np.sqrt(2 * 128)
        x = np.repeat(centres, per, axis=0) + rng.normal(0, sd, (len(centres) * per, 128))
        return x.astype(np.float32), np.repeat(np.arange(len(centres)), per), np.full(len(centres) * per, counts)

    def apart(n, gap):
        c = rng.normal(size=(n, 128))
        return c / np.linalg.norm(c, axis=1, keepdims=True) * gap / np.sqrt(2)

    def near(c, gap):
        step = rng.normal(size=128)
        return c + step / np.linalg.norm(step) * gap

    sets = {}
    # 17 talking heads, 3 track means each (8 faces averaged); two men with glasses 0.40 apart at the centre
    c = apart(17, 0.72)
    c[1] = near(c[0], 0.40)
    sets["synthetic look-alikes (17 people)"] = group(c, 3, 0.22, 8.0)
    # a family dinner: 10 people, 4 tracks each; two brothers 0.32 apart at the centre
    c = apart(10, 0.72)
    c[1] = near(c[0], 0.32)
    sets["synthetic brothers (10 people)"] = group(c, 4, 0.22, 8.0)
    # varied photos: 5 people x 11 photos, one person's photos ~0.48 apart
    sets["synthetic varied photos (5 people)"] = group(apart(5, 0.8), 11, 0.48)
    # a crowd: 6 people x 6 photos plus 12 bystanders seen once each
    x, t, _n = group(apart(6, 0.75), 6, 0.3)
    lone = apart(12, 0.75).astype(np.float32)
    sets["synthetic crowd + 12 lone faces"] = (
        np.concatenate([x, lone]),
        np.concatenate([t, 6 + np.arange(12)]),
        np.ones(len(x) + 12),
    )
    return sets


def synthetic_rows() -> list[dict]:
    from vidcluster.analysis.identities import cluster
    from vidcluster.config import load_config

    from .scale import descriptors

    # the sets are shaped like dlib's descriptors: dlib's thresholds, whatever the default encoder
    def dlib(algorithm: str):
        return load_config(None, {"faces": {"encoder": "dlib"}, "identities": {"algorithm": algorithm}}).identities

    sets = hard_cases()
    x, t = descriptors(10_000)
    sets["synthetic scale 10k (5 % look-alike pairs)"] = (x, t, np.ones(len(x)))
    rows = []
    for name, (x, truth, counts) in sets.items():
        for algorithm in ALGORITHMS:
            labels = cluster(x, dlib(algorithm), counts=counts, weights=counts)
            # lone faces in the truth are people seen once: "unmatched" is the right answer for them
            rows.append(
                {
                    "dataset": name,
                    "method": f"vidcluster {algorithm}",
                    **score(truth.tolist(), labels.tolist()),
                    "status": "ok",
                }
            )
    return rows


COLUMNS = [
    "dataset",
    "method",
    "items",
    "pair_P",
    "pair_R",
    "pair_F",
    "B3_P",
    "B3_R",
    "B3_F",
    "NMI",
    "ids_found",
    "ids_true",
    "wall_s",
    "status",
]


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(table("Accuracy (pairwise / BCubed P,R,F; NMI; identities found vs true)", rows, COLUMNS))
    save("accuracy", rows)
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)

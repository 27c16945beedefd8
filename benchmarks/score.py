"""Score an analysed OUT folder against the known people of a sample set: `python -m benchmarks.score OUT`.

The same scoring as the accuracy benchmark (cctv-asl: every face of a clip belongs to that clip's person,
truth.csv; photo sets: the largest face of each photo), on whatever grouping OUT holds now, e.g. after
`vidcluster recluster OUT --algorithm chinese-whispers`. Prints faces scored, BCubed F, identities
found / true. Read-only: the store is opened and closed without a write. `--synthetic` prints the
accuracy benchmark's synthetic rows instead (dlib-shaped descriptors clustered at dlib's thresholds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .accuracy import clip_truth, largest_face_labels, per_face_labels, photo_truth, score, synthetic_rows


def score_out(out: Path, dataset: str = "cctv-asl") -> dict:
    from vidcluster.case.store import Store

    store = Store.open(out / "vidcluster.db")
    try:
        paths = {f.id: str(f.path) for f in store.footage()}
        faces = store.faces()
    finally:
        store.close()
    result = {
        "faces_list": [[paths[f.footage_id], f.pts_s, *f.box_xyxy] for f in faces],
        "labels": [f.identity for f in faces],
    }
    if dataset == "cctv-asl":
        truth, pred = per_face_labels(result, clip_truth())
    else:
        truth, pred = largest_face_labels(result, photo_truth(dataset))
    return score(truth, pred)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.score", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", help="an OUT folder of vidcluster run")
    parser.add_argument("--dataset", default="cctv-asl", choices=["cctv-asl", "photos-johns", "photos-deepface"])
    parser.add_argument(
        "--synthetic", action="store_true", help="instead: the accuracy benchmark's synthetic sets, clustered directly"
    )
    args = parser.parse_args()
    if args.synthetic:
        for row in synthetic_rows():
            print(
                f"{row['dataset']}, {row['method']}: BCubed F {row['B3_F']:.3f} ({row['ids_found']} / {row['ids_true']})"
            )
        return
    if args.out is None:
        parser.error("give OUT (or --synthetic)")
    s = score_out(args.out, args.dataset)
    print(
        f"{args.dataset}: {s['items']} faces, BCubed F {s['B3_F']:.3f}, "
        f"identities {s['ids_found']} / {s['ids_true']} (pair F {s['pair_F']:.3f})"
    )


if __name__ == "__main__":
    main()

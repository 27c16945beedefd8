"""The classic recipe ("face clustering with Python"), as small functions, to compare against.

Photos: HOG (upsample 1) on the image as it is, 5-point alignment, dlib 128-d descriptors,
DBSCAN(eps=0.5, min_samples=5, euclidean). Video, the naive way: cv2.VideoCapture reads every
frame, every Nth frame (N = source fps / 2, i.e. 2 samples per second) goes through HOG at
full resolution, every face gets a descriptor, then the same DBSCAN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.cluster import DBSCAN

from vidcluster.models import dlib_models

EPS = 0.5
MIN_SAMPLES = 5


@dataclass
class FaceRow:
    source: str  # photo or video path
    pts_s: float  # 0 for photos
    box: tuple[int, int, int, int]  # xyxy
    embedding: np.ndarray  # (128,) float32


def faces_of_image(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every face of one RGB image at full resolution: boxes (N, 4) xyxy, descriptors (N, 128)."""
    boxes, _ = dlib_models.detect_hog(rgb, detect_width=rgb.shape[1], upsample=1)
    chips = dlib_models.face_chips(rgb, dlib_models.landmarks(rgb, boxes))
    return boxes, dlib_models.reference_descriptors(chips)


def faces_of_photos(paths: Iterable[Path]) -> list[FaceRow]:
    rows = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        boxes, emb = faces_of_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        rows += [FaceRow(str(path), 0.0, tuple(int(v) for v in b), e) for b, e in zip(boxes, emb, strict=True)]
    return rows


def faces_of_video(path: Path, stats: dict | None = None) -> list[FaceRow]:
    """Read every frame with OpenCV; HOG + descriptors on every Nth frame (about 2 per second)."""
    stats = stats if stats is not None else {}
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    every = max(1, round(fps / 2))
    rows: list[FaceRow] = []
    index = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            stats["decoded"] = stats.get("decoded", 0) + 1
            if index % every == 0:
                stats["sampled"] = stats.get("sampled", 0) + 1
                boxes, emb = faces_of_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                t = index / fps
                rows += [FaceRow(str(path), t, tuple(int(v) for v in b), e) for b, e in zip(boxes, emb, strict=True)]
            index += 1
    finally:
        cap.release()
    return rows


def cluster(embeddings: np.ndarray) -> np.ndarray:
    """DBSCAN(0.5, 5) labels, -1 = noise."""
    if len(embeddings) == 0:
        return np.zeros(0, np.int64)
    return DBSCAN(eps=EPS, min_samples=MIN_SAMPLES, metric="euclidean").fit_predict(embeddings).astype(np.int64)


def run_videos(paths: list[str]) -> dict:
    """Whole baseline over video files: faces, descriptors, clustering; counts for the throughput table."""
    stats: dict = {}
    rows: list[FaceRow] = []
    for p in paths:
        rows += faces_of_video(Path(p), stats)
    labels = cluster(np.stack([r.embedding for r in rows]) if rows else np.zeros((0, 128), np.float32))
    return {
        "frames_decoded": stats.get("decoded", 0),
        "frames_sampled": stats.get("sampled", 0),
        "faces": len(rows),
        "descriptors": len(rows),
        "identities": len(set(labels.tolist()) - {-1}),
        "faces_list": [[r.source, r.pts_s, *r.box] for r in rows],
        "labels": labels.tolist(),
    }


def run_photos(paths: list[str]) -> dict:
    rows = faces_of_photos([Path(p) for p in paths])
    labels = cluster(np.stack([r.embedding for r in rows]) if rows else np.zeros((0, 128), np.float32))
    return {"faces_list": [[r.source, r.pts_s, *r.box] for r in rows], "labels": labels.tolist()}

"""Face encoders side by side on the real faces of ../shared/data: CPU ms per face at batch 1 and
16 for every registered encoder (one thread, process time), and how far dlib's ONNX graph is from
dlib's own descriptor on the same chips. Ends with one line a script can read:
`dlib-onnx vs dlib: faces=N max_abs_diff=X max_distance=Y speedup=Z` (speedup: dlib's CPU ms per
face over the graph's at batch 16). Run: `python -m benchmarks encoders`.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from vidcluster.catalog import ENCODERS
from vidcluster.config import PORTRAIT_DETECT_WIDTH_PX, FacesConfig
from vidcluster.models import dlib_models
from vidcluster.models.detectors import YunetDetector
from vidcluster.models.registry import make_encoder

from .common import data, save, table


def _photos(quick: bool) -> list[np.ndarray]:
    paths = sorted(data("photos-johns").rglob("*.jpg")) + sorted(data("photos-deepface").rglob("*.jpg"))
    paths = paths[:: 4 if quick else 1]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths if cv2.imread(str(p)) is not None]


def _faces(images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image, dlib landmarks, YuNet key points) of YuNet's most confident face per photo."""
    detector = YunetDetector(PORTRAIT_DETECT_WIDTH_PX, confirm_score=0.0)
    out = []
    for image in images:
        found = detector.detect(image)
        if len(found):
            best = int(np.argmax(found.scores))
            out.append(
                (image, dlib_models.landmarks(image, found.boxes[best : best + 1]), found.keypoints[best : best + 1])
            )
    return out


def _cpu_ms_per_face(encoder, chips: np.ndarray, batch: int) -> float:
    encoder.encode_chips(chips[:batch])  # warm: the session, its shapes
    start = time.process_time()
    for i in range(0, len(chips), batch):
        encoder.encode_chips(chips[i : i + batch])
    return (time.process_time() - start) * 1000.0 / len(chips)


def main(quick: bool = False) -> None:
    cv2.setNumThreads(1)
    faces = _faces(_photos(quick))
    rows, result, descriptors = [], {"faces": len(faces), "encoders": {}}, {}
    for name in ENCODERS:
        encoder = make_encoder(FacesConfig(encoder=name, device="cpu"))
        encoder.load()
        points = [(img, dl if encoder.landmarks == "dlib" else kp) for img, dl, kp in faces]
        chips = np.concatenate([encoder.chips(img, pts) for img, pts in points])
        ms = {b: _cpu_ms_per_face(encoder, chips, b) for b in (1, 16)}
        descriptors[name] = encoder.encode_chips(chips)
        result["encoders"][name] = {"cpu_ms_batch1": round(ms[1], 2), "cpu_ms_batch16": round(ms[16], 2)}
        rows.append({"encoder": name, "space": ENCODERS[name].space, "CPU ms/face, batch 1": ms[1], "batch 16": ms[16]})
    print(table(f"encoders on {len(faces)} real faces (one thread)", rows))
    graph, reference = descriptors["dlib"], descriptors["dlib-reference"]
    max_abs = float(np.abs(graph - reference).max())
    max_dist = float(np.linalg.norm(graph - reference, axis=1).max())
    speedup = result["encoders"]["dlib-reference"]["cpu_ms_batch16"] / result["encoders"]["dlib"]["cpu_ms_batch16"]
    result.update(max_abs_diff=max_abs, max_distance=max_dist, speedup=round(speedup, 1))
    save("encoders", result)
    print(
        f"dlib-onnx vs dlib: faces={len(faces)} max_abs_diff={max_abs:.2e} max_distance={max_dist:.2e} speedup={speedup:.1f}"
    )

"""Face detection, landmarks and 128-d descriptors with dlib (face_recognition's models).

Detection runs on a downscaled copy; landmarks and descriptors use the full-resolution frame,
so descriptors stay compatible with face_recognition's (same ResNet, 5-point alignment,
distance threshold 0.6). dlib types never leave this module; models load lazily, once per
process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

from .config import FacesConfig
from .errors import ConfigError
from .types import EMBEDDING_DIM, Detections


@lru_cache(maxsize=None)
def _dlib():
    import dlib

    return dlib


@lru_cache(maxsize=None)
def _hog_detector():
    return _dlib().get_frontal_face_detector()


@lru_cache(maxsize=None)
def _cnn_detector():
    import face_recognition_models as models

    return _dlib().cnn_face_detection_model_v1(models.cnn_face_detector_model_location())


@lru_cache(maxsize=None)
def _shape_predictor():
    import face_recognition_models as models

    return _dlib().shape_predictor(models.pose_predictor_five_point_model_location())


@lru_cache(maxsize=None)
def _encoder():
    import face_recognition_models as models

    return _dlib().face_recognition_model_v1(models.face_recognition_model_location())


def cuda_available() -> bool:
    """True when this dlib was built with CUDA and sees a device."""
    dlib = _dlib()
    return bool(getattr(dlib, "DLIB_USE_CUDA", False)) and dlib.cuda.get_num_devices() > 0


def resolve_detector(name: str) -> str:
    """'auto' becomes 'cnn' when dlib has CUDA, else 'hog'."""
    if name == "auto":
        return "cnn" if cuda_available() else "hog"
    if name not in ("hog", "cnn"):
        raise ConfigError(f"faces.detector: {name!r} is not one of auto, hog, cnn")
    return name


def detection_scale(width: int, detect_width: int) -> float:
    """Factor that maps a frame of `width` pixels to the detection copy (<= 1).

    >>> detection_scale(1920, 640), detection_scale(320, 640)
    (0.3333333333333333, 1.0)
    """
    return min(1.0, detect_width / float(width))


def downscale(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _rects_to_xyxy(rects, scale: float, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float64).reshape(-1, 4)
    boxes = np.round(boxes / scale)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h - 1)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep].astype(np.int32), keep


def detect_hog(image: np.ndarray, detect_width: int = 640, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """HOG faces of one RGB frame: (boxes (N,4) int32 xyxy full-res, scores (N,) float32)."""
    scale = detection_scale(image.shape[1], detect_width)
    small = np.ascontiguousarray(downscale(image, scale))
    rects, scores, _ = _hog_detector().run(small, upsample, 0.0)
    boxes, keep = _rects_to_xyxy(rects, scale, image.shape)
    return boxes, np.asarray(scores, dtype=np.float32).reshape(-1)[keep]


def letterbox(images: Sequence[np.ndarray], detect_width: int) -> tuple[np.ndarray, list[float]]:
    """Pad/scale frames of any sizes onto one canvas size, as the CNN batch requires.

    Returns (batch (B, H, W, 3) uint8, per-image scale). Each image is scaled by its own factor
    and placed at the top-left corner, so boxes map back by dividing by that factor.
    """
    scales = [detection_scale(im.shape[1], detect_width) for im in images]
    smalls = [downscale(im, s) for im, s in zip(images, scales)]
    height = max(s.shape[0] for s in smalls)
    width = max(s.shape[1] for s in smalls)
    batch = np.zeros((len(smalls), height, width, 3), np.uint8)
    for i, s in enumerate(smalls):
        batch[i, : s.shape[0], : s.shape[1]] = s
    return batch, scales


def detect_cnn_batch(
    images: Sequence[np.ndarray], detect_width: int = 640, upsample: int = 0, batch_size: int = 16
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CNN (MMOD) faces of many RGB frames at once, frames of any sizes and sources.

    Returns one (boxes (N,4) int32 xyxy full-res, scores (N,) float32) per input frame, in order.
    """
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch, scales = letterbox(chunk, detect_width)
        results = _cnn_detector()(list(batch), upsample, batch_size=len(chunk))
        for image, scale, dets in zip(chunk, scales, results):
            boxes, keep = _rects_to_xyxy([d.rect for d in dets], scale, image.shape)
            out.append((boxes, np.array([d.confidence for d in dets], np.float32)[keep]))
    return out


class Detector:
    """Finds faces in RGB frames (H, W, 3) uint8. Batch-first: `detect_batch` takes frames of any
    sizes and sources and returns one `Detections` per frame, in order; `detect` is its single twin.

    `name` is the detector actually used (it goes into the resume key); `batch_size` is how many
    frames one call wants at best (1 for CPU detectors, more for the GPU). Detectors hold settings
    only, so they pickle to worker processes and Ray actors; models load lazily once per process.
    """

    name = ""
    batch_size = 1

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]


class HogDetector(Detector):
    """dlib's HOG + linear SVM on the CPU, on a copy at most `detect_width` wide."""

    name = "hog"

    def __init__(self, detect_width: int = 1280, upsample: int = 1):
        self.detect_width = detect_width
        self.upsample = upsample

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [Detections(*detect_hog(im, self.detect_width, self.upsample)) for im in images]


class CnnDetector(Detector):
    """dlib's CNN (MMOD) detector; on a CUDA build frames from several feeds go to the GPU together."""

    name = "cnn"

    def __init__(self, detect_width: int = 1280, upsample: int = 1, batch_size: int = 16):
        self.detect_width = detect_width
        self.upsample = upsample
        self.batch_size = batch_size

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        found = detect_cnn_batch(images, self.detect_width, self.upsample, self.batch_size)
        return [Detections(boxes, scores) for boxes, scores in found]


def make_detector(cfg: FacesConfig) -> Detector:
    """The detector `cfg.detector` names, with 'auto' resolved for this machine."""
    name = resolve_detector(cfg.detector)
    if name == "cnn":
        return CnnDetector(cfg.detect_width, cfg.upsample, cfg.cnn_batch_size)
    return HogDetector(cfg.detect_width, cfg.upsample)


def _rect(box: np.ndarray):
    x1, y1, x2, y2 = (int(v) for v in box)
    return _dlib().rectangle(x1, y1, x2, y2)


def landmarks(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """5-point landmarks of each box: (N, 5, 2) float32 full-res pixels."""
    predictor = _shape_predictor()
    out = np.zeros((len(boxes), 5, 2), np.float32)
    for i, box in enumerate(boxes):
        shape = predictor(image, _rect(box))
        out[i] = [(p.x, p.y) for p in shape.parts()]
    return out


def _full_object_detection(box: np.ndarray, points: np.ndarray):
    dlib = _dlib()
    parts = dlib.points()
    for x, y in points:
        parts.append(dlib.point(int(round(float(x))), int(round(float(y)))))
    return dlib.full_object_detection(_rect(box), parts)


def encode(image: np.ndarray, boxes: np.ndarray, points: np.ndarray, jitters: int = 0) -> np.ndarray:
    """128-d descriptors of the faces at `boxes` with their 5-point `points`: (N, 128) float32."""
    if len(boxes) == 0:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    shapes = _dlib().full_object_detections()
    for box, pts in zip(boxes, points):
        shapes.append(_full_object_detection(box, pts))
    descriptors = _encoder().compute_face_descriptor(np.ascontiguousarray(image), shapes, max(0, jitters))
    return np.array([np.array(d) for d in descriptors], dtype=np.float32).reshape(-1, EMBEDDING_DIM)


def encode_photo(image: np.ndarray, detect_width: int = 1024, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every face of a still photo: (boxes (N,4), descriptors (N,128)). For probe photos and baselines."""
    boxes, _ = detect_hog(image, detect_width, upsample)
    points = landmarks(image, boxes)
    return boxes, encode(image, boxes, points)


def appearance(image: np.ndarray, boxes: np.ndarray, points: np.ndarray, size: int = 32) -> np.ndarray:
    """A cheap appearance signal per face: the grey face chip aligned on its 5 landmarks
    (dlib's `get_face_chips`, `size` x `size` pixels), zero mean and unit norm, flattened.

    Returns (N, size*size) float32; the dot product of two rows is their normalised
    correlation (1 = the same picture). Costs well under a millisecond per face, against
    30-100 ms for a 128-d descriptor, so it can run on every face.
    """
    if len(boxes) == 0:
        return np.zeros((0, size * size), np.float32)
    shapes = _dlib().full_object_detections()
    for box, pts in zip(boxes, points):
        shapes.append(_full_object_detection(box, pts))
    chips = _dlib().get_face_chips(np.ascontiguousarray(image), shapes, size=size, padding=0.0)
    out = np.zeros((len(boxes), size * size), np.float32)
    for i, chip in enumerate(chips):
        grey = cv2.cvtColor(np.asarray(chip), cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
        grey -= grey.mean()
        norm = float(np.linalg.norm(grey))
        out[i] = grey / norm if norm > 1e-6 else 0.0
    return out

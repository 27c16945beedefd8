"""Everything that runs in dlib (face_recognition's models): the HOG and CNN detectors, the 5-point
landmarks, aligned face chips, and dlib's own 128-d descriptor (the reference for the ONNX graph).

dlib types never leave this module; each model loads lazily, once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import dlib
import face_recognition_models as weights
import numpy as np

from ..catalog import ENCODERS
from ..config import DETECT_WIDTH_PX
from .imaging import clip_boxes, detection_scale, downscale, letterbox, non_empty

DESCRIPTOR_CHIP_PX = 150  # dlib's ResNet reads 150 x 150 chips ...
DESCRIPTOR_CHIP_PADDING = 0.25  # ... with this much context around the aligned face


@cache
def hog_detector():
    return dlib.get_frontal_face_detector()


@cache
def cnn_detector():
    return dlib.cnn_face_detection_model_v1(weights.cnn_face_detector_model_location())


@cache
def shape_predictor():
    return dlib.shape_predictor(weights.pose_predictor_five_point_model_location())


@cache
def resnet():
    return dlib.face_recognition_model_v1(weights.face_recognition_model_location())


def resnet_weights_path() -> str:
    """The installed file of dlib's face ResNet (face_recognition_models)."""
    return weights.face_recognition_model_location()


def cnn_weights_path() -> str:
    """The installed file of dlib's CNN (MMOD) face detector."""
    return weights.cnn_face_detector_model_location()


def landmarks_weights_path() -> str:
    """The installed file of dlib's 5-point shape predictor."""
    return weights.pose_predictor_five_point_model_location()


WEIGHTS_PACKAGE = "face_recognition_models"  # the package that ships dlib's weight files ...
WEIGHTS_VERSION: str | None = getattr(weights, "__version__", None)  # ... under one of several distribution names


def cuda_available() -> bool:
    """True when this dlib was built with CUDA and sees a device."""
    return bool(getattr(dlib, "DLIB_USE_CUDA", False)) and dlib.cuda.get_num_devices() > 0


def _rects_to_xyxy(rects, scale: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float64).reshape(-1, 4)
    boxes = clip_boxes(boxes / scale, shape)
    keep = non_empty(boxes)
    return boxes[keep].astype(np.int32), keep


def detect_hog(
    image: np.ndarray, detect_width: int = DETECT_WIDTH_PX, upsample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """HOG faces of one RGB frame: (boxes (N,4) int32 xyxy full-res, scores (N,) float32)."""
    scale = detection_scale(image.shape[1], detect_width)
    small = np.ascontiguousarray(downscale(image, scale))
    rects, scores, _ = hog_detector().run(small, upsample, 0.0)
    boxes, keep = _rects_to_xyxy(rects, scale, image.shape)
    return boxes, np.asarray(scores, dtype=np.float32).reshape(-1)[keep]


def hog_boxes(image: np.ndarray, upsample: int = 1) -> np.ndarray:
    """(N, 4) float64 xyxy boxes HOG finds in `image` as given (no scaling, no scores)."""
    rects = hog_detector()(np.ascontiguousarray(image), upsample)
    return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float64).reshape(-1, 4)


def detect_cnn_batch(
    images: Sequence[np.ndarray], detect_width: int = DETECT_WIDTH_PX, upsample: int = 0, batch_size: int = 16
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CNN (MMOD) faces of many RGB frames at once, frames of any sizes and sources.

    Returns one (boxes (N,4) int32 xyxy full-res, scores (N,) float32) per input frame, in order.
    """
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch, scales = letterbox(chunk, detect_width)
        results = cnn_detector()(list(batch), upsample, batch_size=len(chunk))
        for image, scale, dets in zip(chunk, scales, results, strict=True):
            boxes, keep = _rects_to_xyxy([d.rect for d in dets], scale, image.shape)
            out.append((boxes, np.array([d.confidence for d in dets], np.float32)[keep]))
    return out


def _rect(box: np.ndarray):
    x1, y1, x2, y2 = (int(v) for v in box)
    return dlib.rectangle(x1, y1, x2, y2)


def landmarks(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """5-point landmarks of each box: (N, 5, 2) float32 full-res pixels."""
    predictor = shape_predictor()
    out = np.zeros((len(boxes), 5, 2), np.float32)
    for i, box in enumerate(boxes):
        shape = predictor(image, _rect(box))
        out[i] = [(p.x, p.y) for p in shape.parts()]
    return out


def _shapes(points: np.ndarray):
    """dlib's full_object_detections of (N, 5, 2) landmarks (the chip depends on the points only)."""
    shapes = dlib.full_object_detections()
    for pts in np.asarray(points, np.float64).reshape(-1, 5, 2):
        parts = dlib.points()
        for x, y in pts:
            parts.append(dlib.point(round(float(x)), round(float(y))))
        x1, y1 = pts.min(axis=0)
        x2, y2 = pts.max(axis=0)
        shapes.append(dlib.full_object_detection(dlib.rectangle(int(x1), int(y1), int(x2), int(y2)), parts))
    return shapes


def face_chips(
    image: np.ndarray, points: np.ndarray, size: int = DESCRIPTOR_CHIP_PX, padding: float = DESCRIPTOR_CHIP_PADDING
) -> np.ndarray:
    """Faces aligned on their 5 landmarks as dlib aligns them for its descriptor:
    (N, size, size, 3) uint8 RGB."""
    if len(points) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    chips = dlib.get_face_chips(np.ascontiguousarray(image), _shapes(points), size=size, padding=padding)
    return np.stack([np.asarray(c, np.uint8) for c in chips])


def reference_descriptors(chips: np.ndarray, jitters: int = 0) -> np.ndarray:
    """dlib's own 128-d descriptors of aligned chips ((N, 150, 150, 3) uint8 RGB, from
    `face_chips`): (N, 128) float32. The same as dlib's descriptor from the frame and landmarks;
    with `jitters` > 0 the mean over that many randomly jittered copies of each chip."""
    out = np.zeros((len(chips), ENCODERS["dlib"].dim), np.float32)
    for i, chip in enumerate(chips):
        out[i] = np.asarray(resnet().compute_face_descriptor(np.ascontiguousarray(chip), max(0, jitters)), np.float32)
    return out


def appearance(image: np.ndarray, points: np.ndarray, size: int = 32) -> np.ndarray:
    """A cheap appearance signal per face: the grey face chip aligned on its 5 landmarks
    (`size` x `size` pixels, no padding), zero mean and unit norm, flattened.

    Returns (N, size*size) float32; the dot product of two rows is their normalised
    correlation (1 = the same picture). Costs well under a millisecond per face, so it can run
    on every face, where a descriptor is spent only when the tracker needs one.
    """
    out = np.zeros((len(points), size * size), np.float32)
    for i, chip in enumerate(face_chips(image, points, size, 0.0)):
        grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
        grey -= grey.mean()
        norm = float(np.linalg.norm(grey))
        out[i] = grey / norm if norm > 1e-6 else 0.0
    return out

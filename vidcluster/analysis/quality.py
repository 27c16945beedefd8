"""How useful a detected face is for recognition: one score in [0, 1] per face.

The score is a weighted geometric mean of four terms, each in (0, 1]:

- size: full-resolution box height, ``1 - exp(-h / SIZE_SCALE_PX)`` (about 0.94 at 100 px);
- sharpness: variance of the Laplacian of the grey crop resized to 64x64,
  ``1 - exp(-v / SHARPNESS_SCALE)`` (sharp photos reach 300-1000, CCTV faces 60-250,
  a blurred crop stays below ~20);
- pose: how far the nose tip sits from the eye midpoint along the eye axis, as a fraction
  of the eye distance, ``exp(-(r / POSE_SCALE)^2)`` (frontal faces measure r < 0.15,
  a strongly turned face 0.4 or more);
- detector score: logistic squash ``1 / (1 + exp(-s / SCORE_SCALE))`` (HOG scores run
  about 0..3, CNN confidences about 0..1.5; 0 maps to 0.5).

A geometric mean lets one very poor term pull the score down without one slightly weak
term wiping it out, as a plain product would. Pure numpy + OpenCV; no dlib here.

Landmarks follow dlib's 5-point model, measured on a real photo: 0 and 1 are the outer
and inner corner of the eye on the image's right side, 2 and 3 the outer and inner corner
of the eye on the image's left side, 4 the tip of the nose.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE_SCALE_PX = 35.0
SHARPNESS_SCALE = 120.0
SHARPNESS_CROP_PX = 64
POSE_SCALE = 0.3
SCORE_SCALE = 0.5
# weights of (size, sharpness, pose, score) in the geometric mean
WEIGHTS = np.array([1.0, 1.0, 1.0, 0.5])
_FLOOR = 1e-3  # keeps log() finite; a term this low already sinks the score


def laplacian_sharpness(gray_crop: np.ndarray) -> float:
    """Variance of the Laplacian of a grey (H, W) uint8 crop after resizing it to 64x64.

    Resizing first makes faces of different sizes comparable. An empty crop gives 0.

    >>> flat = np.full((40, 40), 128, np.uint8)
    >>> laplacian_sharpness(flat)
    0.0
    """
    if gray_crop.size == 0:
        return 0.0
    side = SHARPNESS_CROP_PX
    shrinking = gray_crop.shape[0] > side or gray_crop.shape[1] > side
    resized = cv2.resize(gray_crop, (side, side), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(resized, cv2.CV_64F).var())


def size_term(heights_px: np.ndarray) -> np.ndarray:
    """(N,) box heights in pixels -> (N,) in [0, 1), saturating near 100 px."""
    return 1.0 - np.exp(-np.maximum(heights_px, 0.0) / SIZE_SCALE_PX)


def sharpness_term(variances: np.ndarray) -> np.ndarray:
    """(N,) Laplacian variances -> (N,) in [0, 1)."""
    return 1.0 - np.exp(-np.maximum(variances, 0.0) / SHARPNESS_SCALE)


def nose_offset(landmarks: np.ndarray) -> np.ndarray:
    """(N, 5, 2) dlib 5-point landmarks -> (N,) signed nose offset from the eye midpoint.

    The offset is measured along the eye axis in units of the eye distance: about 0 for a
    frontal face, growing towards +-0.5 and beyond as the head turns. NaN where the eyes
    are less than a pixel apart (no usable landmarks).
    """
    lm = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    eye_a = lm[:, 0:2].mean(axis=1)
    eye_b = lm[:, 2:4].mean(axis=1)
    axis = eye_a - eye_b
    dist = np.linalg.norm(axis, axis=1)
    mid = (eye_a + eye_b) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        along = np.einsum("ij,ij->i", lm[:, 4] - mid, axis) / dist
        offset = along / dist
    return np.where(dist >= 1.0, offset, np.nan)


def pose_term(landmarks: np.ndarray) -> np.ndarray:
    """(N, 5, 2) landmarks -> (N,) frontalness in (0, 1]; 0.5 where landmarks are unusable."""
    r = nose_offset(landmarks)
    return np.where(np.isnan(r), 0.5, np.exp(-np.square(np.nan_to_num(r) / POSE_SCALE)))


def score_term(scores: np.ndarray) -> np.ndarray:
    """(N,) detector scores (HOG or CNN) -> (N,) in (0, 1), 0.5 at score 0."""
    return 1.0 / (1.0 + np.exp(-np.asarray(scores, np.float64) / SCORE_SCALE))


def crop_sharpness(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N,) Laplacian variance of each box's grey crop; boxes are clipped to the image."""
    h, w = image.shape[:2]
    out = np.zeros(len(boxes), np.float64)
    if len(boxes) == 0:
        return out
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    clipped = np.asarray(boxes, np.int64).copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, w)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, h)
    for i, (x1, y1, x2, y2) in enumerate(clipped):
        out[i] = laplacian_sharpness(gray[y1:y2, x1:x2])
    return out


def face_quality(image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Quality of each face in one frame: (N,) float32 in [0, 1], higher is better.

    image: (H, W, 3) uint8 RGB; boxes: (N, 4) int xyxy full-resolution pixels (may extend
    past the image); landmarks: (N, 5, 2) float32 dlib 5-point order; scores: (N,) float32.

    >>> img = np.zeros((100, 100, 3), np.uint8)
    >>> face_quality(img, np.zeros((0, 4), int), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.float32)).shape
    (0,)
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    n = len(boxes)
    if n == 0:
        return np.zeros(0, np.float32)
    heights = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    terms = np.stack(
        [
            size_term(heights),
            sharpness_term(crop_sharpness(image, boxes)),
            pose_term(landmarks),
            score_term(np.asarray(scores).reshape(n)),
        ],
        axis=1,
    )
    logs = np.log(np.clip(terms, _FLOOR, 1.0))
    quality = np.exp(logs @ WEIGHTS / WEIGHTS.sum())
    return np.clip(quality, 0.0, 1.0).astype(np.float32)

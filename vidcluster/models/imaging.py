"""Image geometry the detectors share: the detection copy's scale, downscaling, box clipping and
letterboxing frames of several sizes into one batch. numpy and OpenCV only."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def detection_scale(width: int, detect_width: int) -> float:
    """Factor that maps a frame of `width` pixels to the detection copy (<= 1).

    >>> detection_scale(1920, 640), detection_scale(320, 640)
    (0.3333333333333333, 1.0)
    """
    return min(1.0, detect_width / float(width))


def downscale(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` scaled by `scale` (< 1) with area averaging; the image itself when scale >= 1."""
    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N, 4) float xyxy boxes rounded to whole pixels and clipped into a frame of `shape`.

    >>> clip_boxes(np.array([[-3.2, 1.6, 50.0, 7.0]]), (10, 20)).tolist()
    [[0.0, 2.0, 19.0, 7.0]]
    """
    h, w = shape[:2]
    boxes = np.round(boxes)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h - 1)
    return boxes


def non_empty(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: the xyxy boxes with a positive width and height."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def letterbox(images: Sequence[np.ndarray], detect_width: int) -> tuple[np.ndarray, list[float]]:
    """Pad/scale frames of any sizes onto one canvas size, as a batched detector requires.

    Returns (batch (B, H, W, 3) uint8, per-image scale). Each image is scaled by its own factor
    and placed at the top-left corner, so boxes map back by dividing by that factor.
    """
    scales = [detection_scale(im.shape[1], detect_width) for im in images]
    smalls = [downscale(im, s) for im, s in zip(images, scales, strict=True)]
    height = max(s.shape[0] for s in smalls)
    width = max(s.shape[1] for s in smalls)
    batch = np.zeros((len(smalls), height, width, 3), np.uint8)
    for i, s in enumerate(smalls):
        batch[i, : s.shape[0], : s.shape[1]] = s
    return batch, scales

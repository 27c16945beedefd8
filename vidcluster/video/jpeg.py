"""JPEG bytes to and from (H, W, 3) uint8 BGR images (OpenCV): the one encoder the stages that
store or show a picture share (face thumbnails, snapshots, montages, probe crops)."""

from __future__ import annotations

import cv2
import numpy as np


def encode_jpeg(image_bgr: np.ndarray, quality: int) -> bytes:
    """(H, W, 3) uint8 BGR -> JPEG bytes at `quality` (0-100); ValueError when OpenCV cannot encode it.

    >>> encode_jpeg(np.zeros((8, 8, 3), np.uint8), 90)[:2]
    b'\\xff\\xd8'
    """
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("cv2 could not encode the image as JPEG")
    return buf.tobytes()


def decode_jpeg(blob: bytes | None) -> np.ndarray | None:
    """JPEG/PNG bytes -> (H, W, 3) uint8 BGR, or None when the bytes are not an image."""
    if not blob:
        return None
    img = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None
    return img

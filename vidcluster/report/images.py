"""Raster images for the report: square face tiles and montages (numpy + cv2, BGR uint8)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..video.jpeg import decode_jpeg, encode_jpeg

BACKGROUND_BGR = (235, 235, 235)
JPEG_QUALITY = 90


def square_tile(img: np.ndarray | None, size_px: int) -> np.ndarray:
    """Fit an image into a (size_px, size_px, 3) uint8 square, keeping its aspect ratio.

    >>> square_tile(np.zeros((20, 10, 3), np.uint8), 32).shape
    (32, 32, 3)
    """
    tile = np.empty((size_px, size_px, 3), np.uint8)
    tile[:] = BACKGROUND_BGR
    if img is None or img.size == 0:
        return tile
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    scale = size_px / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(img[:, :, :3], (nw, nh), interpolation=interp)
    y0, x0 = (size_px - nh) // 2, (size_px - nw) // 2
    tile[y0 : y0 + nh, x0 : x0 + nw] = small
    return tile


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for n tiles, wider than tall.

    >>> grid_shape(5), grid_shape(9), grid_shape(0)
    ((2, 3), (3, 3), (1, 1))
    """
    if n <= 0:
        return 1, 1
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def montage(images: list[np.ndarray | None], tile_px: int, gap_px: int = 2) -> np.ndarray:
    """Square tiles laid out row by row: (rows*(tile+gap)+gap, cols*(tile+gap)+gap, 3) uint8 BGR."""
    rows, cols = grid_shape(len(images))
    step = tile_px + gap_px
    out = np.empty((rows * step + gap_px, cols * step + gap_px, 3), np.uint8)
    out[:] = (255, 255, 255)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        y, x = gap_px + r * step, gap_px + c * step
        out[y : y + tile_px, x : x + tile_px] = square_tile(img, tile_px)
    return out


def montage_jpeg(blobs: list[bytes | None], tile_px: int) -> bytes:
    """Montage of JPEG face crops (undecodable ones become blank tiles) as JPEG bytes."""
    return encode_jpeg(montage([decode_jpeg(b) for b in blobs], tile_px), JPEG_QUALITY)


def as_jpeg(blob: bytes | None) -> bytes | None:
    """JPEG bytes as they are; any other decodable image re-encoded as JPEG; None otherwise."""
    if blob and blob[:3] == b"\xff\xd8\xff":
        return bytes(blob)
    img = decode_jpeg(blob)
    return encode_jpeg(img, JPEG_QUALITY) if img is not None else None

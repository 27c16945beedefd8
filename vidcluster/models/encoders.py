"""The face encoders behind the `Encoder` interface.

- `DlibEncoder`: dlib's 128-d ResNet (face_recognition's descriptor) as an ONNX graph built from
  the installed weights (`dlib_graph`, cached by `graphs`), on ONNX Runtime; equal to dlib's own
  descriptor to ~1e-6.
- `DlibReferenceEncoder`: the same network run by dlib itself, the reference (~20x slower).
- `SFaceEncoder`: OpenCV Zoo's SFace, aligned on the detector's (YuNet's) five key points.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from ..catalog import ENCODERS
from . import dlib_models, sface
from .base import Encoder, WeightFile, dlib_weight
from .graphs import cached_graph, file_digest, packaged_path
from .runtime import make_session, run_batched


def dlib_graph_bytes(dat_path: str, cache_dir: str | None = None) -> bytes:
    """dlib's ResNet as a serialised ONNX graph, built from the `.dat` at `dat_path` once and cached."""
    return cached_graph("dlib_face_resnet", file_digest(dat_path), lambda: _build_dlib_graph(dat_path), cache_dir)


def _build_dlib_graph(dat_path: str) -> bytes:
    from . import dlib_graph  # the builder imports onnx (~0.5 CPU s): only on a cache miss

    return dlib_graph.build_bytes(dat_path)


@cache
def _dlib_session(providers: tuple[str, ...]):
    return make_session(dlib_graph_bytes(dlib_models.resnet_weights_path()), 1, providers)


class DlibEncoder(Encoder):
    """dlib's ResNet on ONNX Runtime: dlib's chips (150 x 150, padding 0.25, from its 5 landmarks)
    through the graph `dlib_graph` builds from the installed `.dat`."""

    spec = ENCODERS["dlib"]
    landmarks = "dlib"

    def __init__(self, providers: Sequence[str] = ()):
        self.providers = tuple(providers)

    def chips(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        return dlib_models.face_chips(image, points)

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        return run_batched(_dlib_session(self.providers), np.asarray(chips, np.uint8)).astype(np.float32)

    def load(self) -> None:
        _dlib_session(self.providers)

    def weights(self) -> tuple[WeightFile, ...]:  # the graph ONNX Runtime runs is built from this file
        return (dlib_weight("dlib face ResNet (128-d)", dlib_models.resnet_weights_path()),)


class DlibReferenceEncoder(Encoder):
    """dlib's ResNet run by dlib on the same chips: the reference the graph is checked against."""

    spec = ENCODERS["dlib-reference"]
    landmarks = "dlib"

    def __init__(self, jitters: int = 0):
        self.jitters = jitters  # dlib's num_jitters: the mean over that many randomly shifted copies

    def chips(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        return dlib_models.face_chips(image, points)

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        return dlib_models.reference_descriptors(chips, self.jitters)

    def load(self) -> None:
        dlib_models.resnet()

    def weights(self) -> tuple[WeightFile, ...]:
        return (dlib_weight("dlib face ResNet (128-d)", dlib_models.resnet_weights_path()),)


class SFaceEncoder(Encoder):
    """SFace on ONNX Runtime: 112 x 112 chips aligned on YuNet's five key points, unit-length vectors."""

    spec = ENCODERS["sface"]
    landmarks = "detector"

    def __init__(self, providers: Sequence[str] = ()):
        self.providers = tuple(providers)

    def chips(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        return sface.align(image, points)

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        return sface.encode_chips(chips, sess=sface.session(1, self.providers))

    def load(self) -> None:
        sface.session(1, self.providers)

    def weights(self) -> tuple[WeightFile, ...]:
        path = packaged_path(sface.SFACE_PACKAGE, sface.SFACE_WEIGHTS)
        return (WeightFile("SFace face encoder", str(path), sface.SFACE_PACKAGE),)

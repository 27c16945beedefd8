"""The two model interfaces, `Detector` and `Encoder`, and `FaceModels`, the set a run uses.

Both are batch-first with a single twin, hold settings only (so they pickle to worker processes
and Ray actors) and load their weights lazily, once per process; `load()` loads them now, before
workers fork, so that the workers share one copy.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..catalog import DistanceProfile, EncoderSpec
from ..types import Detections
from . import dlib_models
from .graphs import file_digest
from .runtime import CUDA


@dataclass(frozen=True)
class WeightFile:
    """A file of weights a model loads: what it is, where it lies, the package that installed it."""

    model: str
    path: str
    package: str
    package_version: str | None = None  # None: asked of the installed distribution named `package`

    def record(self) -> dict[str, str | None]:
        """{model, file, path, package, package_version, sha256} as the manifest keeps it (None: unreadable)."""
        try:
            digest: str | None = file_digest(self.path)
        except OSError:
            digest = None
        version = self.package_version
        if version is None:
            try:
                version = importlib.metadata.version(self.package)
            except importlib.metadata.PackageNotFoundError:
                version = None
        return {
            "model": self.model,
            "file": Path(self.path).name,
            "path": str(self.path),
            "package": self.package,
            "package_version": version,
            "sha256": digest,
        }


def dlib_weight(model: str, path: str) -> WeightFile:
    return WeightFile(model, path, dlib_models.WEIGHTS_PACKAGE, dlib_models.WEIGHTS_VERSION)


class Detector:
    """Finds faces in RGB frames (H, W, 3) uint8. `detect_batch` takes frames of any sizes and
    sources and returns one `Detections` per frame, in order; `detect` is its single twin.

    `name` is the detector actually used (it goes into the resume key); `batch_size` is how many
    frames one call wants at best (1 for CPU detectors, more for a GPU).
    """

    name = ""
    batch_size = 1

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]

    def load(self) -> None:
        """Load this detector's models now."""

    def weights(self) -> tuple[WeightFile, ...]:
        """The weight files this detector loads (none for one built into a library)."""
        return ()


class Encoder:
    """Turns faces into descriptors: `encode_batch(images, landmarks)` takes RGB frames and, per
    frame, the (n_i, 5, 2) landmarks of its faces, and returns (sum n_i, dim) float32 descriptors
    in that order; `encode` is its single twin for one frame.

    Each encoder aligns faces its own way (`chips`) and reads either dlib's 5 landmarks
    (`landmarks = "dlib"`) or the detector's own 5 key points (`"detector"`: eyes, nose tip, mouth
    corners, as YuNet gives them). Its `spec` gives its name, version, vector size and distance
    profile: every distance threshold applied to its vectors.
    """

    spec: EncoderSpec  # every encoder names its own (a forgotten spec must not pass for dlib's)
    landmarks = "dlib"
    providers: tuple[str, ...] = ()  # ONNX Runtime's execution providers (encoders that run there)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "spec", None), EncoderSpec):
            raise TypeError(f"{cls.__name__} must name its catalog.EncoderSpec as `spec`")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def profile(self) -> DistanceProfile:
        return self.spec.profile

    def chips(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 aligned faces of one frame."""
        raise NotImplementedError

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 chips -> (N, dim) float32 descriptors, all in one batch."""
        raise NotImplementedError

    def encode_batch(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        parts = [self.chips(im, pts) for im, pts in zip(images, landmarks, strict=True) if len(pts)]
        if not parts:
            return np.zeros((0, self.dim), np.float32)
        return self.encode_chips(np.concatenate(parts))

    def encode(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        return self.encode_batch([image], [points])

    def load(self) -> None:
        """Load this encoder's models now."""

    def weights(self) -> tuple[WeightFile, ...]:
        """The weight files this encoder loads."""
        return ()


@dataclass(frozen=True)
class FaceModels:
    """The detector and encoder a run uses (landmarks and appearance chips are dlib's, whatever
    the detector)."""

    detector: Detector
    encoder: Encoder

    @property
    def on_gpu(self) -> bool:
        """Whether a model of the set runs on the GPU (its process must not fork workers: CUDA
        does not survive a fork)."""
        return any(CUDA in getattr(m, "providers", ()) for m in (self.detector, self.encoder))

    def load(self) -> None:
        self.detector.load()
        dlib_models.shape_predictor()
        self.encoder.load()

    def weights(self) -> tuple[WeightFile, ...]:
        """Every weight file the set loads: the detector's, dlib's landmarks (every face gets them), the encoder's."""
        landmarks = dlib_weight("dlib shape predictor (5 landmarks)", dlib_models.landmarks_weights_path())
        return (*self.detector.weights(), landmarks, *self.encoder.weights())

    def encode_photo(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every face of a still photo: (boxes (N, 4) int32 xyxy, descriptors (N, dim) float32)."""
        found = self.detector.detect(image)
        points = dlib_models.landmarks(image, found.boxes) if self.encoder.landmarks == "dlib" else found.keypoints
        if points is None:
            raise ValueError(f"{self.encoder.name} aligns on the detector's key points; {self.detector.name} has none")
        return found.boxes, self.encoder.encode(image, points)

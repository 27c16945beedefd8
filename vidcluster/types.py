"""Typed values passed between stages: frozen dataclasses of parallel numpy arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from functools import cached_property
from pathlib import Path

import numpy as np

# The identity of a face or sighting that no identity holds (the clustering's noise), and its name in words.
UNMATCHED = -1
UNMATCHED_TEXT = "unmatched"

# Where a file's start time came from, most to least trustworthy.
START_SOURCES = ("config", "filename", "metadata", "mtime", "none")
RELIABLE_START_SOURCES = ("config", "filename", "metadata")


def utc_at(start_utc: datetime | None, offset_s: float) -> datetime | None:
    """Wall-clock time of `offset_s` seconds into a file that starts at `start_utc` (None: unknown).
    The one place where an offset into a file becomes a time.

    >>> from datetime import timezone
    >>> utc_at(datetime(2026, 3, 14, 8, 0, tzinfo=timezone.utc), 90.5).isoformat()
    '2026-03-14T08:01:30.500000+00:00'
    """
    if start_utc is None:
        return None
    return start_utc + timedelta(seconds=float(offset_s))


@dataclass(frozen=True)
class Footage:
    """One input file. `start_utc` is None when no start time could be found."""

    path: Path
    camera: str
    kind: str  # "video" | "image"
    size_bytes: int
    sha256: str
    start_utc: datetime | None = None
    start_source: str = "none"
    duration_s: float | None = None
    timezone: str = "UTC"  # IANA zone of the camera's clock (for showing local times)
    shown: str = ""  # the path as the report shows it, from the folder holding the INPUT ('' = the full path)
    rotation_deg: int = 0  # display rotation the frames are turned by (counter-clockwise, quarter turns)
    video_streams: int = 1  # video streams in the file; the first is analysed
    # From the packet scan (video/timeline.py): positions (s) where the timestamps reset, whether
    # the file can be seeked, and what a person should know about its times ('' when nothing).
    resets_s: tuple[float, ...] = ()
    seekable: bool = True
    timing_note: str = ""

    def time_at(self, offset_s: float) -> datetime | None:
        """Wall-clock time (UTC) of an offset into the file, or None without a start time."""
        return utc_at(self.start_utc, offset_s)

    @property
    def end_utc(self) -> datetime | None:
        if self.start_utc is None:
            return None
        return self.start_utc + timedelta(seconds=self.duration_s or 0.0)


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame and its exact time within the file.

    `pixels` is the RGB uint8 (H, W, 3) array, or a function without arguments that makes it
    (the sampler passes the conversion, so a frame that is never searched is never converted);
    `image` is that array, made once on first use. `luma`, when given, returns a grey uint8
    (H, W) view of the decoded picture at no conversion cost (the Y plane), for the change gate.
    """

    pixels: np.ndarray | Callable[[], np.ndarray]
    pts: int
    time_base: Fraction
    index: int  # 0-based number of this sample within its feed
    luma: Callable[[], np.ndarray] | None = None

    @cached_property
    def image(self) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        return self.pixels() if callable(self.pixels) else self.pixels

    @property
    def pts_s(self) -> float:
        return float(self.pts * self.time_base)


def _check_len(obj: object, n: int) -> None:
    """Every array field of the dataclass instance `obj` has `n` rows."""
    if not is_dataclass(obj):
        raise TypeError(f"{type(obj).__name__} is not a dataclass")
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray) and len(value) != n:
            raise ValueError(f"{type(obj).__name__}.{f.name} has {len(value)} rows, expected {n}")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, 4) x (N, 4) xyxy boxes -> (M, N) intersection over union.

    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]])).round(3)
    array([[0.333, 0.   ]])
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True)
class Detections:
    """What a detector found in one frame, parallel arrays of length N.

    boxes: (N, 4) int32 xyxy in full-resolution pixels
    scores: (N,) float32 detector confidence (the scale depends on the detector)
    keypoints: (N, 5, 2) float32 full-resolution pixels of the detector's own five points (eyes,
        nose tip, mouth corners, as YuNet gives them), or None for a detector without them

    >>> d = Detections.empty(); len(d), d.boxes.shape, d.keypoints
    (0, (0, 4), None)
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must be (N, 4), got {self.boxes.shape}")
        if self.keypoints is not None and self.keypoints.shape != (n, 5, 2):
            raise ValueError(f"keypoints must be (N, 5, 2), got {self.keypoints.shape}")
        _check_len(self, n)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        keypoints = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.boxes[index], self.scores[index], keypoints)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.int32), np.zeros(0, np.float32))


@dataclass(frozen=True)
class Faces:
    """Faces of one feed, parallel arrays of length N.

    boxes: (N, 4) int32 xyxy in full-resolution pixels
    scores: (N,) float32 detector confidence
    landmarks: (N, 5, 2) float32 full-resolution pixels (dlib 5-point order)
    quality: (N,) float32 in [0, 1]
    frame: (N,) int64 sample index within the feed
    pts_s: (N,) float64 seconds since the start of the file
    embeddings: (N, D) float32, D the encoder's vector size; rows of faces not encoded are NaN
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    quality: np.ndarray
    frame: np.ndarray
    pts_s: np.ndarray
    embeddings: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must be (N, 4), got {self.boxes.shape}")
        if self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must be (N, 5, 2), got {self.landmarks.shape}")
        if self.embeddings.ndim != 2 or len(self.embeddings) != n:
            raise ValueError(f"embeddings must be (N, D), got {self.embeddings.shape}")
        _check_len(self, n)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: np.ndarray | slice) -> Faces:
        return Faces(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def encoded(self) -> np.ndarray:
        """(N,) bool: which faces carry a descriptor."""
        return ~np.isnan(self.embeddings[:, 0])

    @classmethod
    def empty(cls, dim: int) -> Faces:
        """No faces, for descriptors of `dim` values."""
        return cls(
            boxes=np.zeros((0, 4), np.int32),
            scores=np.zeros(0, np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
            quality=np.zeros(0, np.float32),
            frame=np.zeros(0, np.int64),
            pts_s=np.zeros(0, np.float64),
            embeddings=np.zeros((0, dim), np.float32),
        )

    @classmethod
    def concat(cls, parts: list[Faces], dim: int) -> Faces:
        """The parts one after another (no parts: `Faces.empty(dim)`)."""
        if not parts:
            return cls.empty(dim)
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

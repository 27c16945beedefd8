"""What a track is: `Track`, the frozen result (one person seen continuously by one camera), and
`LiveTrack`, its growing state while `tracks.Tracker` runs: faces, descriptors, appearance
vectors, the encode policy, and the cut at identity switches when it is frozen.

Pure numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..config import TracksConfig

EncodeFn = Callable[[np.ndarray], np.ndarray]
BETTER_QUALITY = 1.25  # re-encode a face this much better than the best encoded one


@dataclass(frozen=True)
class Track:
    """One person in one feed, parallel arrays of length K in time order.

    faces: (K,) int64 running face index of the tracker (order faces were given to step())
    times_s: (K,) float64 feed time of each face
    embeddings: (K, D) float32 (D: the encoder's size), NaN rows for faces that were not encoded
    quality: (K,) float32
    """

    faces: np.ndarray
    times_s: np.ndarray
    embeddings: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.faces)
        if k == 0:
            raise ValueError("a Track needs at least one face")
        if self.embeddings.ndim != 2 or len(self.embeddings) != k:
            raise ValueError(f"Track.embeddings must be ({k}, D), got {self.embeddings.shape}")
        for name in ("times_s", "quality"):
            if getattr(self, name).shape != (k,):
                raise ValueError(f"Track.{name} must be ({k},), got {getattr(self, name).shape}")

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        return float(self.times_s[-1])

    @property
    def encoded(self) -> np.ndarray:
        """(K,) bool: which faces carry a descriptor."""
        return ~np.isnan(self.embeddings[:, 0])

    @property
    def best(self) -> int:
        """Position (within the track) of its best-quality face; the earliest on ties."""
        return int(np.argmax(self.quality))

    def descriptor(self, max_encodings: int) -> np.ndarray | None:
        """(D,) float32 mean of the best-quality encoded descriptors (see `best_mean`)."""
        return best_mean(self.embeddings, self.quality, max_encodings)


def best_mean(embeddings: np.ndarray, quality: np.ndarray, max_encodings: int) -> np.ndarray | None:
    """(D,) float32 mean of the descriptors of the best-quality faces (at most `max_encodings`;
    the earlier face on ties) among faces that carry one; None when none does.

    embeddings: (K, 128) float32, NaN rows for faces that were not encoded; quality: (K,).

    >>> e = np.full((3, 128), np.nan, np.float32); e[0], e[2] = 0.0, 1.0
    >>> float(best_mean(e, np.array([0.2, 0.9, 0.5]), 1)[0]), best_mean(e[1:2], np.ones(1), 1)
    (1.0, None)
    """
    idx = np.flatnonzero(~np.isnan(embeddings[:, 0]))
    if len(idx) == 0:
        return None
    idx = idx[np.argsort(-quality[idx], kind="stable")][: max(1, max_encodings)]
    return embeddings[idx].mean(axis=0).astype(np.float32)


@dataclass
class LiveTrack:
    """Mutable state of a track while the tracker runs (only `Tracker` holds these)."""

    id: int
    dim: int  # the encoder's vector size
    faces: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    embeddings: dict[int, np.ndarray] = field(default_factory=dict)  # position in track -> descriptor
    correlations: list[float] = field(default_factory=list)  # chip correlation with the previous face (NaN: unknown)
    box: np.ndarray = field(default_factory=lambda: np.full(4, np.nan))  # latest face's xyxy (set by each add)
    chip: np.ndarray | None = None  # appearance vector of the latest face
    encoded_chips: list[np.ndarray] = field(default_factory=list)  # appearance vectors of the faces with a descriptor
    last_descriptor: np.ndarray | None = None
    descriptor_sum: np.ndarray | None = None
    best_encoded_quality: float = 0.0
    since_encode: int = 0  # faces added since the last encoded one
    pending: tuple[EncodeFn, int] | None = None  # how to encode the latest face later, if it has no descriptor

    def add(
        self,
        face: int,
        t_s: float,
        box: np.ndarray,
        quality: float,
        descriptor: np.ndarray | None,
        chip: np.ndarray | None = None,
    ) -> None:
        if descriptor is not None and np.all(np.isfinite(descriptor)):
            self._store_descriptor(len(self.faces), descriptor, chip)
            self.best_encoded_quality = max(self.best_encoded_quality, quality)
            self.since_encode = 0
        else:
            self.since_encode += 1
        corr = float(chip @ self.chip) if chip is not None and self.chip is not None else np.nan
        self.correlations.append(corr)
        self.faces.append(face)
        self.times.append(t_s)
        self.quality.append(quality)
        self.box = box
        self.chip = chip

    def _store_descriptor(self, position: int, descriptor: np.ndarray, chip: np.ndarray | None) -> None:
        self.embeddings[position] = descriptor
        if chip is not None:
            self.encoded_chips.append(chip)
        self.last_descriptor = descriptor
        self.descriptor_sum = descriptor.astype(np.float64) + (
            0.0 if self.descriptor_sum is None else self.descriptor_sum
        )

    def distance(self, descriptor: np.ndarray, to_all: bool) -> float:
        """Descriptor distance to the latest descriptor or, with `to_all`, to the nearest of the
        track's descriptors and their mean (a person may look like any earlier face of theirs;
        someone else is far from all of them)."""
        d = float(np.linalg.norm(descriptor - self.last_descriptor))
        if to_all and self.embeddings and self.descriptor_sum is not None:  # the sum is set with the first one
            d = min(d, float(np.linalg.norm(np.stack(list(self.embeddings.values())) - descriptor, axis=1).min()))
            d = min(d, float(np.linalg.norm(descriptor - self.descriptor_sum / len(self.embeddings))))
        return d

    def seal(self) -> None:
        """Encode the latest face if it is pending (it has no descriptor), so the track's
        descriptors reach its end."""
        if self.pending is None:
            return
        encode, row = self.pending
        self.pending = None
        position = len(self.faces) - 1
        if position in self.embeddings:
            return
        vec = np.asarray(encode(np.array([row], np.int64)), np.float32).reshape(-1)
        if len(vec) == self.dim and np.all(np.isfinite(vec)):
            self._store_descriptor(position, vec, self.chip)

    def looks_encoded(self, chips: np.ndarray, min_corr: float) -> np.ndarray:
        """(N,) bool: which of these appearance vectors (N, D) correlate at least `min_corr` with
        the vector of one of the track's encoded faces (they show what a descriptor already shows)."""
        if not self.encoded_chips:
            return np.zeros(len(chips), bool)
        return (np.asarray(chips, np.float32) @ np.stack(self.encoded_chips).T).max(axis=1) >= min_corr

    def wants_encoding(self, quality: float, cfg: TracksConfig) -> bool:
        """Encode policy for a clear match: periodic or clearly better, within the budget."""
        if len(self.embeddings) >= cfg.max_encodings:
            return False
        if self.last_descriptor is None or self.since_encode + 1 >= cfg.encode_every:
            return True
        return quality > BETTER_QUALITY * self.best_encoded_quality

    def to_tracks(self, max_distance: float, to_all: bool = False) -> list[Track]:
        """Freeze into one or more Tracks, cutting at identity switches: where a descriptor is
        farther than `max_distance` from the one before it or, with `to_all`, from every
        descriptor since the last cut and from their mean."""
        k = len(self.faces)
        emb = np.full((k, self.dim), np.nan, np.float32)
        for pos, vec in self.embeddings.items():
            emb[pos] = vec
        cuts = [0]
        enc = sorted(self.embeddings)
        since_cut = enc[:1]
        for a, b in itertools.pairwise(enc):
            earlier = emb[since_cut] if to_all else emb[[a]]
            d = float(np.linalg.norm(earlier - emb[b], axis=1).min())
            if to_all:
                d = min(d, float(np.linalg.norm(earlier.mean(axis=0) - emb[b])))
            if d > max_distance:
                cuts.append(switch_position(np.asarray(self.correlations, np.float64), a, b))
                since_cut = []
            since_cut.append(b)
        cuts.append(k)
        faces = np.asarray(self.faces, np.int64)
        times = np.asarray(self.times, np.float64)
        quality = np.asarray(self.quality, np.float32)
        return [
            Track(faces=faces[s:e], times_s=times[s:e], embeddings=emb[s:e], quality=quality[s:e])
            for s, e in itertools.pairwise(cuts)
        ]


def switch_position(correlations: np.ndarray, a: int, b: int) -> int:
    """Where, between encoded positions a < b of a track whose descriptors disagree, the new
    person starts: at the face least like the one before it (lowest chip correlation in
    (a, b]), or at b when no correlation is known.

    >>> switch_position(np.array([np.nan, 0.9, 0.3, 0.95, 0.9]), 0, 4)
    2
    >>> switch_position(np.full(5, np.nan), 0, 4)
    4
    """
    window = correlations[a + 1 : b + 1]
    if len(window) == 0 or np.all(np.isnan(window)):
        return b
    return a + 1 + int(np.nanargmin(window))

"""What one analysed file hands the store to write: its faces and its sightings (`FileResult`
with its `TrackRecord`s), checked to fit together before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schema import LEGACY_SPACE


@dataclass(frozen=True)
class TrackRecord:
    """One sighting to be written: local faces indexes refer to FileResult.faces."""

    start_s: float
    end_s: float
    face_rows: np.ndarray  # (K,) int64 indexes into the file's Faces
    steer: bool
    embedding: np.ndarray | None
    snapshot: bytes


@dataclass(frozen=True)
class FileResult:
    """Everything stored for one analysed file, written in one transaction by `Store.save_file_result`.

    Faces as parallel arrays of length N: pts_s (N,) seconds into the file, boxes (N, 4) xyxy
    full-resolution pixels, scores (N,) detector confidence, quality (N,) in [0, 1], embeddings
    (N, D) (NaN rows: not encoded), thumbs N JPEG crops. `tracks` index those rows. Then how far
    the file was read: status 'done' or 'partial' (with a reason), frames decoded and sampled,
    the last second reached and the duration found (None: unknown). `encoder` is the
    descriptor space of the embeddings (catalog.EncoderSpec.space).
    """

    pts_s: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    quality: np.ndarray
    embeddings: np.ndarray
    thumbs: list[bytes]
    tracks: tuple[TrackRecord, ...]
    status: str = "done"
    reason: str = ""
    frames_decoded: int = 0
    frames_sampled: int = 0
    reached_s: float | None = None
    duration_s: float | None = None
    encoder: str = LEGACY_SPACE

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", tuple(self.tracks))
        n = len(self.pts_s)
        sizes = {
            "boxes": len(self.boxes),
            "scores": len(self.scores),
            "quality": len(self.quality),
            "embeddings": len(self.embeddings),
            "thumbs": len(self.thumbs),
        }
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ValueError(f"face arrays must all have {n} rows (as pts_s), got {wrong}")

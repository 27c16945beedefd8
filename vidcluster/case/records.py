"""What the store gives back: typed, read-only values (never sqlite3 rows) for grouping, report and search.

Times are stored as ISO 8601 text and come back as aware UTC datetimes; a file's offsets become
wall-clock time in one place, `types.utc_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from ..types import RELIABLE_START_SOURCES, utc_at


def parse_utc(text: str | None) -> datetime | None:
    """ISO 8601 text from the store -> aware UTC datetime (naive text is read as UTC).

    >>> parse_utc("2026-03-14T09:00:00+01:00").isoformat()
    '2026-03-14T08:00:00+00:00'
    """
    if not text:
        return None
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def zone(name: str | None) -> tzinfo:
    """The IANA zone `name`, or UTC when it is empty or unknown to this machine.

    >>> zone("Europe/Berlin").key, zone("Nowhere/Atlantis")
    ('Europe/Berlin', datetime.timezone.utc)
    """
    if not name or name == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


@dataclass(frozen=True)
class FileInfo:
    """One input file as the store knows it."""

    id: int
    path: str
    camera: str
    kind: str
    size_bytes: int
    sha256: str
    start_utc: datetime | None
    start_source: str
    duration_s: float | None
    status: str  # pending | done | partial | skipped
    reason: str
    timezone: str = "UTC"  # IANA zone of the camera's clock

    @property
    def zone(self) -> tzinfo:
        return zone(self.timezone)

    @property
    def is_photo(self) -> bool:
        return self.kind == "image"

    @property
    def time_reliable(self) -> bool:
        """True when the start time came from config, file name or container metadata."""
        return self.start_utc is not None and self.start_source in RELIABLE_START_SOURCES

    def time_at(self, offset_s: float) -> datetime | None:
        """Wall-clock time (UTC) of an offset into the file, or None without a start time."""
        return utc_at(self.start_utc, offset_s)


@dataclass(frozen=True)
class StoredTrack:
    """One sighting: a track of one file. `identity` is -1 when unmatched or not grouped yet;
    `embedding` is its (128,) float32 descriptor, None when no face of it was encoded."""

    id: int
    footage_id: int
    start_s: float
    end_s: float
    n_faces: int
    steer: bool  # takes part in clustering
    embedding: np.ndarray | None
    identity: int


@dataclass(frozen=True)
class StoredFace:
    """One face: `box_xyxy` in full-resolution pixels, `pts_s` seconds into its file."""

    id: int
    track_id: int
    footage_id: int
    pts_s: float
    box_xyxy: tuple[int, int, int, int]
    score: float
    quality: float
    encoded: bool  # carries a descriptor
    identity: int  # of its track; -1 unmatched


@dataclass(frozen=True)
class EncodedFace:
    """A face that carries a descriptor: (128,) float32 `embedding`."""

    id: int
    track_id: int
    pts_s: float
    embedding: np.ndarray

"""What the store gives back: typed, read-only values (never sqlite3 rows) for grouping, report and search.

Times are stored as ISO 8601 text and come back as aware UTC datetimes; a file's offsets become
wall-clock time in one place, `types.utc_at`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from enum import Enum
from typing import Any
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


NOT_ANALYSED = ("skipped", "duplicate")  # statuses of files that have no results of their own


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
    status: str  # pending | done | partial | skipped | duplicate
    reason: str
    timezone: str = "UTC"  # IANA zone of the camera's clock
    resets_s: tuple[float, ...] = ()  # positions where the timestamps reset (video/timeline.py)
    seekable: bool = True  # a seek may enter the file (no resets, a demuxer that seeks)
    timing_note: str = ""  # what is uncertain about its times ('' when nothing)
    shown: str = ""  # the path as the report shows it, from the folder holding the INPUT given

    @property
    def name(self) -> str:
        """The path as pages, CSVs and identities.json show it (the full path where none was recorded)."""
        return self.shown or self.path

    @property
    def analysed(self) -> bool:
        """False for a file left out: skipped, or a duplicate of another file's content."""
        return self.status not in NOT_ANALYSED

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

    def time_certain_at(self, offset_s: float) -> bool:
        """False for an offset after the first timestamp reset: its time is counted from its
        position in the file, not from the recorder's clock."""
        return not self.resets_s or offset_s < self.resets_s[0] - 1e-6


@dataclass(frozen=True)
class StoredTrack:
    """One sighting: a track of one file. `identity` is -1 when unmatched or not grouped yet;
    `embedding` is its (D,) float32 descriptor (D: the encoder's size), None when no face of it was encoded."""

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
    """A face that carries a descriptor: (D,) float32 `embedding`."""

    id: int
    track_id: int
    pts_s: float
    embedding: np.ndarray


# -- the examiner's corrections ---------------------------------------------------------------
class Kind(str, Enum):
    """What a correction does; the value is the text stored in `corrections.kind`."""

    NAME = "name"
    MERGE = "merge"
    REJECT = "reject"
    NOTE = "note"
    CONFIRM = "confirm"
    MOVE = "move"  # one sighting to another identity, or to a new one of its own
    HIDE = "hide"  # an identity left out of the report and its exports (a bystander); still in the store
    COVER = "cover"  # the face shown first for an identity (`ref` 'face:<id>')
    APART = "apart"  # two identities are not the same person: kept apart by every later grouping


class Role(str, Enum):
    """How a correction covers a track; the value is the text stored in `correction_tracks.role`."""

    MEMBER = "member"  # a track of the identity named, merged, noted, confirmed, hidden or covered; apart: the first's
    REJECTED = "rejected"  # the track a rejection takes out
    OTHER = "other"  # the rejected (or moved) track's companions in its identity at the time
    MOVED = "moved"  # the track a move takes out of its identity
    TARGET = "target"  # the tracks of the identity a move puts it into (none: a new identity of its own)
    APART = "apart"  # apart: the second identity's tracks


@dataclass(frozen=True)
class KindInfo:
    """What the code needs to know about one kind of correction."""

    regroups: bool  # it steers the grouping: making or undoing it groups the faces again
    roles: tuple[Role, ...]  # the roles of the tracks it covers
    holder: Role = Role.MEMBER  # whose tracks say which identity the correction now belongs to


# The one registry of correction kinds.
KINDS: dict[Kind, KindInfo] = {
    Kind.NAME: KindInfo(regroups=False, roles=(Role.MEMBER,)),
    Kind.MERGE: KindInfo(regroups=True, roles=(Role.MEMBER,)),
    Kind.REJECT: KindInfo(regroups=True, roles=(Role.REJECTED, Role.OTHER), holder=Role.OTHER),
    Kind.NOTE: KindInfo(regroups=False, roles=(Role.MEMBER,)),
    Kind.CONFIRM: KindInfo(regroups=False, roles=(Role.MEMBER,)),
    Kind.MOVE: KindInfo(regroups=True, roles=(Role.MOVED, Role.OTHER, Role.TARGET), holder=Role.MOVED),
    Kind.HIDE: KindInfo(regroups=False, roles=(Role.MEMBER,)),
    Kind.COVER: KindInfo(regroups=False, roles=(Role.MEMBER,)),
    Kind.APART: KindInfo(regroups=True, roles=(Role.MEMBER, Role.APART)),
}


@dataclass(frozen=True)
class Correction:
    """One correction as stored: the identities it was made on (their ids at the time), the
    (track id, role) pairs it covers (by track id), the label (name, note text, or who
    confirmed), the face or sighting reference of a rejection, move or cover, and when it was
    made (ISO 8601 UTC).
    `id` is 0 until the store has recorded it.

    >>> c = Correction.of(Kind.REJECT, [3], {Role.REJECTED: [7], Role.OTHER: [5, 6]}, ref="sighting:7")
    >>> c.tracks_in(Role.OTHER), c.roles()
    ([5, 6], {'other': [5, 6], 'rejected': [7]})
    """

    kind: Kind
    identities: tuple[int, ...]
    tracks: tuple[tuple[int, Role], ...] = ()
    label: str | None = None
    ref: str | None = None
    created_utc: str = ""
    id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))
        object.__setattr__(self, "identities", tuple(int(i) for i in self.identities))
        pairs = sorted(((int(t), Role(r)) for t, r in self.tracks), key=lambda p: p[0])
        object.__setattr__(self, "tracks", tuple(pairs))

    @classmethod
    def of(
        cls, kind: Kind | str, identities: Iterable[int], tracks: Mapping[Role | str, Iterable[int]], **fields: Any
    ) -> Correction:
        """A correction from {role: track ids} (the form a command builds, and the tests)."""
        pairs = [(int(t), Role(r)) for r, ts in tracks.items() for t in ts]
        return cls(Kind(kind), tuple(identities), tuple(pairs), **fields)

    @property
    def info(self) -> KindInfo:
        return KINDS[self.kind]

    def tracks_in(self, role: Role) -> list[int]:
        """Track ids this correction covers in `role`, ascending."""
        return [t for t, r in self.tracks if r == role]

    def roles(self) -> dict[str, list[int]]:
        """{role text: track ids}, roles in the order their first track comes (as the manifest lists them)."""
        out: dict[str, list[int]] = {}
        for t, r in self.tracks:
            out.setdefault(r.value, []).append(t)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The manifest's form: kind, identities, label, ref, created_utc, tracks {role: ids}."""
        return {
            "kind": self.kind.value,
            "identities": list(self.identities),
            "label": self.label,
            "ref": self.ref,
            "created_utc": self.created_utc,
            "tracks": self.roles(),
        }

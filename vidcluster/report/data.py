"""Gather everything the report shows from the store once, into plain frozen dataclasses.

Every later step (exports, images, pages) works on `ReportData` and never queries the
store again, except to fetch JPEG blobs (face thumbnails, snapshots) by id.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

import numpy as np

from ..analysis.cohesion import Cohesion, identity_cohesion
from ..case.corrections import Note, load_annotations
from ..case.encoder import case_encoder
from ..case.records import FileInfo, StoredFace, StoredTrack
from ..case.store import Store
from ..catalog import profile_of
from ..errors import StoreError
from ..types import UNMATCHED


# -- time helpers ---------------------------------------------------------------------------
def iso_utc(t: datetime | None) -> str | None:
    """Aware datetime -> ISO 8601 UTC with milliseconds and a 'Z', or None.

    >>> iso_utc(datetime(2026, 3, 14, 9, 0, 1, 250000, tzinfo=timezone.utc))
    '2026-03-14T09:00:01.250Z'
    """
    if t is None:
        return None
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_local(t: datetime | None, tz: tzinfo) -> str | None:
    """Aware datetime -> ISO 8601 in zone `tz` with its UTC offset and milliseconds, or None.

    >>> from zoneinfo import ZoneInfo
    >>> iso_local(datetime(2026, 3, 14, 8, 15, 2, tzinfo=timezone.utc), ZoneInfo("Europe/Berlin"))
    '2026-03-14T09:15:02.000+01:00'
    """
    if t is None:
        return None
    return t.astimezone(tz).isoformat(timespec="milliseconds")


# -- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceInfo:
    """One detected face; `box_xyxy` in full-resolution pixels, `pts_s` seconds into its file."""

    id: int
    track_id: int
    file: FileInfo
    pts_s: float
    box_xyxy: tuple[int, int, int, int]
    score: float
    quality: float
    identity: int

    @property
    def time_utc(self) -> datetime | None:
        return self.file.time_at(self.pts_s)


@dataclass(frozen=True)
class Sighting:
    """One track: consecutive faces of one person in one file, `start_s`..`end_s` into it."""

    track_id: int
    file: FileInfo
    start_s: float
    end_s: float
    n_faces: int
    identity: int
    faces: tuple[FaceInfo, ...]  # best quality first

    @property
    def camera(self) -> str:
        return self.file.camera

    @property
    def start_utc(self) -> datetime | None:
        return self.file.time_at(self.start_s)

    @property
    def end_utc(self) -> datetime | None:
        return self.file.time_at(self.end_s)

    @property
    def span_utc(self) -> tuple[datetime, datetime] | None:
        """(start, end) on the wall clock; None when the file has no start time (then neither has one)."""
        start, end = self.start_utc, self.end_utc
        return None if start is None or end is None else (start, end)

    @property
    def best_face(self) -> FaceInfo | None:
        return self.faces[0] if self.faces else None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def _sighting_order(s: Sighting) -> tuple:
    """Timed sightings first, by wall-clock start; then the untimed ones by file and offset."""
    t = s.start_utc
    return (t is None, t or datetime.min.replace(tzinfo=timezone.utc), s.file.path, s.start_s, s.track_id)


def _file_order(f: FileInfo) -> tuple:
    t = f.start_utc
    return (f.camera, t is None, t or datetime.min.replace(tzinfo=timezone.utc), f.path)


def _face_order(f: FaceInfo) -> tuple:
    return (-f.quality, f.id)


@dataclass(frozen=True)
class Identity:
    """One person found by clustering, with all its sightings in time order."""

    id: int
    sightings: tuple[Sighting, ...]
    label: str | None = None  # given by the investigator (`vidcluster name`)
    notes: tuple[str, ...] = ()  # corrections that shaped it (merged, rejected sightings)
    rejected: tuple[int, ...] = ()  # track ids taken out of it by hand
    texts: tuple[Note, ...] = ()  # the examiner's notes (`vidcluster note`)
    confirmed: Note | None = None  # the examiner's confirmation (`vidcluster confirm`): who, when
    cohesion: Cohesion | None = None  # its spread and nearest other identities (None: no descriptor)
    cover: int | None = None  # the face id the examiner chose to show first (`vidcluster cover`)

    @property
    def title(self) -> str:
        """'Identity 3' or 'Identity 3 — label' (plain text; escape it for HTML)."""
        return f"Identity {int(self.id)}" + (f" \u2014 {self.label}" if self.label else "")

    @property
    def n_sightings(self) -> int:
        return len(self.sightings)

    @property
    def n_faces(self) -> int:
        return sum(len(s.faces) for s in self.sightings)

    @property
    def cameras(self) -> list[str]:
        return sorted({s.camera for s in self.sightings})

    @property
    def faces(self) -> list[FaceInfo]:
        """Every face of the identity: the chosen cover face first (when it is one of them), then best quality first."""
        return sorted((f for s in self.sightings for f in s.faces), key=lambda f: (f.id != self.cover, *_face_order(f)))

    @property
    def best_face(self) -> FaceInfo | None:
        """The face shown first: the chosen cover, else the best-quality one."""
        faces = self.faces
        return faces[0] if faces else None

    @property
    def cover_chosen(self) -> bool:
        """True when the face shown first was chosen by hand and is still one of this identity's."""
        best = self.best_face
        return best is not None and best.id == self.cover

    @property
    def first_sighting(self) -> Sighting | None:
        """The sighting with the earliest wall-clock start (None when no sighting has a time)."""
        timed = [(t, s) for s in self.sightings if (t := s.start_utc) is not None]
        return min(timed, key=lambda ts: ts[0])[1] if timed else None

    @property
    def last_sighting(self) -> Sighting | None:
        timed = [(t, s) for s in self.sightings if (t := s.end_utc) is not None]
        return max(timed, key=lambda ts: ts[0])[1] if timed else None

    @property
    def first_seen(self) -> datetime | None:
        s = self.first_sighting
        return s.start_utc if s else None

    @property
    def last_seen(self) -> datetime | None:
        s = self.last_sighting
        return s.end_utc if s else None

    @property
    def times_reliable(self) -> bool:
        return all(s.file.time_reliable for s in self.sightings)


@dataclass(frozen=True)
class HiddenIdentity:
    """An identity the examiner hid (`vidcluster hide`): left out of the pages and exports, listed by id."""

    id: int
    label: str | None
    n_sightings: int
    n_faces: int
    correction: int  # the hide correction; `vidcluster undo` with it shows the identity again


@dataclass(frozen=True)
class ReportData:
    files: tuple[FileInfo, ...]
    identities: tuple[Identity, ...]  # by sightings desc, then id
    unmatched: tuple[Sighting, ...]  # sightings with identity -1, in time order
    faces: tuple[FaceInfo, ...]  # every face, by id
    corrections: tuple[dict, ...] = ()  # the investigator's corrections, oldest first (for the manifest)
    undone: tuple[dict, ...] = ()  # corrections reverted by `vidcluster undo`: id, kind, created_utc, undone_utc
    hidden: tuple[HiddenIdentity, ...] = ()  # identities hidden by hand, by id (their faces are not in `faces`)

    @property
    def cameras(self) -> list[str]:
        return sorted({f.camera for f in self.files})

    @property
    def zones(self) -> list[str]:
        """The time zones of the analysed cameras (one entry when they all share a clock zone)."""
        return sorted({f.timezone for f in self.files if f.analysed}) or ["UTC"]

    @property
    def duplicates(self) -> list[tuple[FileInfo, FileInfo | None]]:
        """Each file left out as a copy of another's content, with the file analysed in its place
        (None when the store holds no analysed file of that content any more)."""
        analysed: dict[str, FileInfo] = {}
        for f in sorted(self.files, key=lambda f: (f.status not in ("done", "partial"), f.id)):
            if f.status != "duplicate":
                analysed.setdefault(f.sha256, f)
        return [(f, analysed.get(f.sha256)) for f in self.files if f.status == "duplicate"]

    @property
    def mixed_zones(self) -> bool:
        """True when cameras keep time in different zones: pages then show UTC beside local times."""
        return len(self.zones) > 1

    @property
    def chronological(self) -> list[Sighting]:
        """Every sighting of the case (unmatched included) in wall-clock order; untimed ones last."""
        return sorted(self.sightings, key=_sighting_order)

    @property
    def by_id(self) -> dict[int, Identity]:
        return {i.id: i for i in self.identities}

    @property
    def sightings(self) -> list[Sighting]:
        return [s for i in self.identities for s in i.sightings] + list(self.unmatched)

    @property
    def unmatched_faces(self) -> list[FaceInfo]:
        return [f for f in self.faces if f.identity == UNMATCHED]


# -- loading --------------------------------------------------------------------------------
def grouping_eps_mean(store: Store) -> float:
    """`identities.eps_mean` the case was grouped with: the last run's or regrouping's setting, else
    its encoder's profile."""
    params = (store.get_meta("last_run") or {}).get("parameters") or {}
    profile = profile_of(case_encoder(store))
    return float((params.get("identities") or {}).get("eps_mean", profile.eps_mean))


def cohesion_of(store: Store, tracks: list[StoredTrack]) -> dict[int, Cohesion]:
    """Cohesion of every identity, over the descriptors of its steering sightings."""
    used = [
        (t.identity, emb) for t in tracks if t.steer and (emb := t.embedding) is not None and t.identity != UNMATCHED
    ]
    if not used:
        return {}
    dims = {len(emb) for _, emb in used}
    if len(dims) != 1:
        raise StoreError(f"{store.path}: sighting descriptors of different sizes ({sorted(dims)})")
    return identity_cohesion(
        np.stack([emb for _, emb in used]), np.array([ident for ident, _ in used]), grouping_eps_mean(store)
    )


def _join_faces(
    face_rows: list[StoredFace], files: dict[int, FileInfo]
) -> tuple[list[FaceInfo], dict[int, list[FaceInfo]]]:
    """Every face with its file, in store order, and the same faces by track id."""
    faces_by_track: dict[int, list[FaceInfo]] = {}
    all_faces: list[FaceInfo] = []
    for r in face_rows:
        face = FaceInfo(
            id=r.id,
            track_id=r.track_id,
            file=files[r.footage_id],
            pts_s=r.pts_s,
            box_xyxy=r.box_xyxy,
            score=r.score,
            quality=r.quality,
            identity=r.identity,
        )
        all_faces.append(face)
        faces_by_track.setdefault(face.track_id, []).append(face)
    return all_faces, faces_by_track


def _sightings_by_identity(
    track_rows: list[StoredTrack], files: dict[int, FileInfo], faces_by_track: dict[int, list[FaceInfo]]
) -> dict[int, list[Sighting]]:
    """{identity id (-1: unmatched): its sightings, in store order}."""
    by_identity: dict[int, list[Sighting]] = {}
    for tr in track_rows:
        sighting = Sighting(
            track_id=tr.id,
            file=files[tr.footage_id],
            start_s=tr.start_s,
            end_s=tr.end_s,
            n_faces=tr.n_faces,
            identity=tr.identity,
            faces=tuple(sorted(faces_by_track.get(tr.id, []), key=_face_order)),
        )
        by_identity.setdefault(tr.identity, []).append(sighting)
    return by_identity


def _undone(store: Store) -> tuple[dict, ...]:
    """The corrections `undo` reverted, as the manifest lists them."""
    gone = store.undone_corrections()
    return tuple(
        {
            "id": c.id,
            "kind": c.kind.value,
            "identities": list(c.identities),
            "label": c.label,
            "ref": c.ref,
            "created_utc": c.created_utc,
            "undone_utc": gone[c.id],
        }
        for c in store.corrections()
        if c.id in gone
    )


def load_report_data(store: Store, keep_hidden: bool = False) -> ReportData:
    """Read footage, tracks and faces once and join them into `ReportData`.

    Hidden identities are left out of `identities` and `faces` (and listed in `hidden`), unless
    `keep_hidden` (the review app, which shows them on request)."""
    try:
        files = {f.id: f for f in store.footage()}
        track_rows = store.tracks()
        face_rows = store.faces()
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise StoreError(f"{store.path}: cannot read the store for the report ({exc})") from None
    all_faces, faces_by_track = _join_faces(face_rows, files)
    by_identity = _sightings_by_identity(track_rows, files, faces_by_track)
    try:
        ann = load_annotations(store)
        undone = _undone(store)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{store.path}: cannot read the corrections for the report ({exc})") from None
    unmatched = tuple(sorted(by_identity.pop(UNMATCHED, []), key=_sighting_order))
    shown_tracks = [t for t in track_rows if t.identity not in ann.hidden]  # none is near a hidden one
    cohesion = cohesion_of(store, shown_tracks)
    identities = [
        Identity(
            i,
            tuple(sorted(ss, key=_sighting_order)),
            label=ann.labels.get(i),
            notes=tuple(ann.notes.get(i, ())),
            rejected=tuple(ann.rejected.get(i, ())),
            texts=tuple(ann.texts.get(i, ())),
            confirmed=ann.confirmed.get(i),
            cohesion=cohesion.get(i),
            cover=ann.cover.get(i),
        )
        for i, ss in by_identity.items()
    ]
    hidden = [
        HiddenIdentity(i.id, i.label, i.n_sightings, i.n_faces, ann.hidden[i.id])
        for i in identities
        if i.id in ann.hidden
    ]
    identities = [i for i in identities if keep_hidden or i.id not in ann.hidden]
    identities.sort(key=lambda i: (-i.n_sightings, i.id))
    ordered_files = tuple(sorted(files.values(), key=_file_order))
    return ReportData(
        files=ordered_files,
        identities=tuple(identities),
        unmatched=unmatched,
        faces=tuple(f for f in all_faces if keep_hidden or f.identity not in ann.hidden),
        corrections=tuple(ann.corrections),
        undone=undone,
        hidden=tuple(sorted(hidden, key=lambda h: h.id)),
    )

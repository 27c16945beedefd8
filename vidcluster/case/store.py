"""SQLite store: footage, tracks (sightings), faces with embeddings, identities. No pickle.

One writer (the main process). Each file's results go in one transaction, so a run that is
killed resumes where it stopped: finished files are not decoded again. The tables are in
`schema`, how vectors are kept in them in `blobs`, what a file's results hold in `results`.

Nothing damaged is used: opening checks the tables (`schema.prepare`), every descriptor and picture
is checked as it is read (its stored CRC-32, and a descriptor's length and values), and SQLite's
own errors become one line (`store_errors`): DamagedStoreError (exit 5) or DiskFullError (exit 4).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import ENCODERS
from ..errors import DamagedStoreError, DiskFullError, StoreError
from ..types import Footage
from .blobs import blob_crc, blob_fault, blob_to_vector, descriptor_fault, embedding_to_blob, members_key
from .records import Correction, EncodedFace, FileInfo, Kind, Role, StoredFace, StoredTrack, parse_utc
from .results import FileResult, TrackRecord
from .schema import RESTORE_HINT, prepare


def _new_row_id(cur: sqlite3.Cursor) -> int:
    """The rowid SQLite gave the row that the INSERT on `cur` just added."""
    if cur.lastrowid is None:  # only for a statement that inserted nothing
        raise StoreError("the database did not report the id of a row just written")
    return cur.lastrowid


# Free space below which an unspecific write error ("disk I/O error") is put down to a full disk.
_NEARLY_FULL_BYTES = 1 << 20
# SQLite's result code for a full database or disk; the sqlite3 module names it only from Python 3.11 on.
_SQLITE_FULL = 13


def is_disk_full(error: BaseException, path: str | Path) -> bool:
    """True when `error` (or the error it was raised from) says the disk holding `path` is full."""
    exc: BaseException | None = error
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, sqlite3.OperationalError):
            if "full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
                return True
            if "disk I/O error" in str(exc):  # SQLite's word for a failed write, ENOSPC among others
                try:
                    folder = Path(path).parent if str(path) != ":memory:" else Path(".")
                    return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
                except OSError:
                    return False
        exc = exc.__cause__ or exc.__context__
    return False


def timing_json(footage: Footage) -> str:
    """The footage row's `timing`: '' for a file whose timestamps are plain, else JSON of its resets,
    whether it seeks, and the note."""
    if not footage.resets_s and footage.seekable and not footage.timing_note:
        return ""
    return json.dumps({"resets_s": list(footage.resets_s), "seekable": footage.seekable, "note": footage.timing_note})


def _timing_fields(text: str) -> dict[str, Any]:
    """FileInfo's timing fields from the `timing` column (a damaged value counts as none)."""
    try:
        data = json.loads(text) if text else {}
        return {
            "resets_s": tuple(float(t) for t in data.get("resets_s", ())),
            "seekable": bool(data.get("seekable", True)),
            "timing_note": str(data.get("note", "")),
        }
    except (ValueError, TypeError, AttributeError):
        return {}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def store_error(exc: sqlite3.DatabaseError, path: str | Path) -> StoreError:
    """One of SQLite's errors on the store at `path` as one line: a full disk is DiskFullError, any
    other failed operation StoreError, a database SQLite finds damaged ("malformed", "not a
    database") DamagedStoreError."""
    if is_disk_full(exc, path):
        return DiskFullError(f"disk full writing {path}")
    # SQLite's message may quote damaged text: printable ASCII on one line, cut short
    said = " ".join(str(exc).encode("ascii", "backslashreplace").decode("ascii").split())
    said = said if len(said) <= 100 else said[:99] + "\u2026"
    if isinstance(exc, sqlite3.OperationalError) and "decode" not in said:  # text not UTF-8: damage
        return StoreError(f"{path}: cannot use the store ({said})")
    return DamagedStoreError(f"{path}: the store is damaged ({said}); {RESTORE_HINT}")


@contextmanager
def store_errors(path: str | Path) -> Iterator[None]:
    """SQLite's errors in the block as `store_error`s."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise store_error(exc, path) from None
    except UnicodeDecodeError:  # text (or SQLite's own message about its schema) that is not UTF-8
        raise DamagedStoreError(f"{path}: the store is damaged (text that is not UTF-8); {RESTORE_HINT}") from None


# descriptor space -> the length of its vectors (a space no encoder makes: any length)
_DIMS = {spec.space: spec.dim for spec in ENCODERS.values()}


class Store:
    """The run's SQLite database. Use `Store.open(path)`; ':memory:' works for tests."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (or create) the store; StoreError when it cannot be used, DamagedStoreError when
        SQLite or `schema.prepare` finds it damaged, DiskFullError on a full disk."""
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not Path(path).exists()
        with store_errors(path):
            conn = sqlite3.connect(path, timeout=30.0)
            if path != ":memory:" and fresh:
                os.chmod(path, 0o600)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL" if path != ":memory:" else "PRAGMA journal_mode = MEMORY")
            prepare(conn, path)
        return cls(conn, path)

    def _damaged(self, what: str, fault: str) -> DamagedStoreError:
        return DamagedStoreError(f"{self.path}: the store is damaged: {what}: {fault}; {RESTORE_HINT}")

    def _descriptor(self, blob: bytes, crc: int | None, space: str, what: str) -> np.ndarray:
        """A stored descriptor as float32, checked (DamagedStoreError when it is not what was written)."""
        fault = blob_fault(blob, crc) or descriptor_fault(blob, _DIMS.get(space))
        if fault:
            raise self._damaged(f"the descriptor of {what}", fault)
        return blob_to_vector(blob)

    def _picture(self, blob: Any, crc: int | None, what: str) -> bytes:
        fault = blob_fault(blob, crc)
        if fault:
            raise self._damaged(what, fault)
        return bytes(blob)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction; a full disk becomes one DiskFullError line naming the store (what
        was committed before stays intact, so a re-run after freeing space resumes)."""
        try:
            with self.conn:
                yield
        except (sqlite3.OperationalError, OSError) as exc:
            if is_disk_full(exc, self.path):
                raise DiskFullError(f"disk full writing {self.path}") from None
            raise

    def close(self) -> None:
        self.conn.close()

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self._writing():
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- footage ----------------------------------------------------------------------------
    def upsert_footage(self, footage: Footage) -> int:
        """Register a file; a changed file (size or hash) goes back to pending. Returns its id."""
        row = self.conn.execute(
            "SELECT id, sha256, size_bytes FROM footage WHERE path = ?", (str(footage.path),)
        ).fetchone()
        values = (
            footage.camera,
            footage.kind,
            footage.size_bytes,
            footage.sha256,
            _iso(footage.start_utc),
            footage.start_source,
            footage.duration_s,
            timing_json(footage),
            footage.shown,
        )
        with self._writing():
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO footage (camera, kind, size_bytes, sha256, start_utc, start_source, duration_s, timing,"
                    " shown_path, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, str(footage.path)),
                )
                return _new_row_id(cur)
            changed = row["sha256"] != footage.sha256 or row["size_bytes"] != footage.size_bytes
            self.conn.execute(
                "UPDATE footage SET camera=?, kind=?, size_bytes=?, sha256=?, start_utc=?, start_source=?, duration_s=?,"
                " timing=?, shown_path=?" + (", status='pending', params_key=''" if changed else "") + " WHERE id = ?",
                (*values, row["id"]),
            )
            return int(row["id"])

    def is_finished(self, footage_id: int, params_key: str) -> bool:
        row = self.conn.execute("SELECT status, params_key FROM footage WHERE id = ?", (footage_id,)).fetchone()
        return row is not None and row["status"] in ("done", "partial", "skipped") and row["params_key"] == params_key

    def mark_skipped(self, footage_id: int, reason: str, params_key: str, status: str = "skipped") -> None:
        """The file is not analysed (`status` 'skipped', or 'duplicate' of another file): its results go."""
        with self._writing():
            self.conn.execute("DELETE FROM tracks WHERE footage_id = ?", (footage_id,))
            self.conn.execute("DELETE FROM segment_results WHERE footage_id = ?", (footage_id,))
            self.conn.execute(
                "UPDATE footage SET status=?, reason=?, params_key=? WHERE id=?",
                (status, reason, params_key, footage_id),
            )

    def save_file_result(self, footage_id: int, params_key: str, result: FileResult) -> None:
        """Replace everything stored for one file (and its staged segments) in a single transaction."""
        r = result
        with self._writing():
            self.conn.execute("DELETE FROM segment_results WHERE footage_id = ?", (footage_id,))
            self.conn.execute("DELETE FROM tracks WHERE footage_id = ?", (footage_id,))
            self.conn.execute("DELETE FROM faces WHERE footage_id = ?", (footage_id,))
            for tr in r.tracks:
                self._insert_track(footage_id, r, tr)
            self.conn.execute(
                "UPDATE footage SET status=?, reason=?, params_key=?, frames_decoded=?, frames_sampled=?, reached_s=?,"
                " duration_s=COALESCE(?, duration_s) WHERE id=?",
                (
                    r.status,
                    r.reason,
                    params_key,
                    r.frames_decoded,
                    r.frames_sampled,
                    r.reached_s,
                    r.duration_s,
                    footage_id,
                ),
            )

    def _insert_track(self, footage_id: int, r: FileResult, tr: TrackRecord) -> None:
        """One track of a file's result and its faces (inside `save_file_result`'s transaction)."""
        embedding = embedding_to_blob(tr.embedding)
        cur = self.conn.execute(
            "INSERT INTO tracks (footage_id, start_s, end_s, n_faces, steer, embedding, snapshot, encoder,"
            " embedding_crc, snapshot_crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                footage_id,
                tr.start_s,
                tr.end_s,
                len(tr.face_rows),
                int(tr.steer),
                embedding,
                tr.snapshot,
                r.encoder,
                blob_crc(embedding),
                blob_crc(tr.snapshot),
            ),
        )
        track_id = _new_row_id(cur)
        rows = []
        for i in tr.face_rows:
            embedding = embedding_to_blob(r.embeddings[i])
            rows.append(
                (
                    footage_id,
                    track_id,
                    float(r.pts_s[i]),
                    *map(int, r.boxes[i]),
                    float(r.scores[i]),
                    float(r.quality[i]),
                    embedding,
                    r.thumbs[i],
                    r.encoder,
                    blob_crc(embedding),
                    blob_crc(r.thumbs[i]),
                )
            )
        self.conn.executemany(
            "INSERT INTO faces (footage_id, track_id, pts_s, x1, y1, x2, y2, score, quality, embedding, thumb,"
            " encoder, embedding_crc, thumb_crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    # -- segments of long files ---------------------------------------------------------------
    def save_segment(self, footage_id: int, segment: int, segment_key: str, data: bytes, frames_decoded: int) -> None:
        """Stage one finished segment of a file (committed on its own, so a killed run keeps it)."""
        with self._writing():
            self.conn.execute(
                "INSERT OR REPLACE INTO segment_results (footage_id, segment, segment_key, frames_decoded, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (footage_id, segment, segment_key, frames_decoded, data),
            )

    def staged_segments(self, footage_id: int) -> dict[int, str]:
        """{segment index: its key} of the staged segments of one file."""
        rows = self.conn.execute("SELECT segment, segment_key FROM segment_results WHERE footage_id = ?", (footage_id,))
        return {int(i): str(k) for i, k in rows}

    def segment_data(self, footage_id: int, segment: int) -> bytes:
        row = self.conn.execute(
            "SELECT data FROM segment_results WHERE footage_id = ? AND segment = ?", (footage_id, segment)
        ).fetchone()
        if row is None:
            raise StoreError(f"no staged segment {segment} of footage {footage_id}")
        return bytes(row[0])

    def footage(self) -> list[FileInfo]:
        """Every file, by camera, start time and path."""
        rows = self.conn.execute(
            "SELECT id, path, camera, kind, size_bytes, sha256, start_utc, start_source, duration_s, status, reason,"
            " timezone, timing, shown_path FROM footage ORDER BY camera, start_utc, path"
        )
        return [
            FileInfo(
                id=int(i),
                path=str(path),
                camera=str(camera),
                kind=str(kind),
                size_bytes=int(size),
                sha256=str(sha),
                start_utc=parse_utc(start),
                start_source=str(source),
                duration_s=None if dur is None else float(dur),
                status=str(status),
                reason=str(reason or ""),
                timezone=str(tz or "UTC"),
                **_timing_fields(str(timing or "")),
                shown=str(shown or ""),
            )
            for i, path, camera, kind, size, sha, start, source, dur, status, reason, tz, timing, shown in rows
        ]

    # -- tracks and identities -------------------------------------------------------------
    def tracks(self) -> list[StoredTrack]:
        """Every track (sighting) by id, with its identity (-1 unmatched or before grouping)."""
        rows = self.conn.execute(
            "SELECT t.id, t.footage_id, t.start_s, t.end_s, t.n_faces, t.steer, t.embedding, t.embedding_crc,"
            " t.encoder, COALESCE(a.identity, -1) FROM tracks t LEFT JOIN assignment a ON a.track_id = t.id ORDER BY t.id"
        )
        return [
            StoredTrack(
                id=int(i),
                footage_id=int(fid),
                start_s=float(a),
                end_s=float(b),
                n_faces=int(n),
                steer=bool(steer),
                embedding=None if emb is None else self._descriptor(emb, crc, space, f"sighting {i}"),
                identity=int(ident),
            )
            for i, fid, a, b, n, steer, emb, crc, space, ident in rows
        ]

    def encoder_spaces(self) -> set[str]:
        """The descriptor spaces of every embedding in the store (one, or none before a first run)."""
        rows = self.conn.execute(
            "SELECT DISTINCT encoder FROM tracks WHERE embedding IS NOT NULL UNION"
            " SELECT DISTINCT encoder FROM faces WHERE embedding IS NOT NULL"
        )
        return {r[0] for r in rows}

    def encoded_counts(self) -> dict[int, int]:
        """{track id: number of its faces that carry a descriptor}."""
        rows = self.conn.execute("SELECT track_id, COUNT(*) FROM faces WHERE embedding IS NOT NULL GROUP BY track_id")
        return {int(t): int(n) for t, n in rows}

    def set_assignment(self, track_ids: Iterable[int], identities: Iterable[int]) -> None:
        """Replace the identity of every track; tracks not listed become unmatched (-1).

        Each identity's group of tracks is remembered with its id (`remembered_identities`).
        """
        track_ids, identities = [int(t) for t in track_ids], [int(i) for i in identities]
        with self._writing():
            self._remember_groups(track_ids, identities)
            self.conn.execute("DELETE FROM assignment")
            self.conn.execute("INSERT INTO assignment SELECT id, -1 FROM tracks")
            self.conn.executemany(
                "UPDATE assignment SET identity = ? WHERE track_id = ?",
                [(int(i), int(t)) for t, i in zip(track_ids, identities, strict=True)],
            )

    def remembered_identities(self) -> dict[str, int]:
        """{members_key of a group of tracks: the id it held most recently}."""
        rows = self.conn.execute("SELECT members, identity FROM identity_memory")
        return {str(k): int(i) for k, i in rows}

    def _remember_groups(self, track_ids: list[int], identities: list[int]) -> None:
        groups: dict[int, list[int]] = {}
        for t, i in zip(track_ids, identities, strict=True):
            if i >= 0:
                groups.setdefault(i, []).append(t)
        used = int(self.conn.execute("SELECT COALESCE(MAX(used), 0) FROM identity_memory").fetchone()[0]) + 1
        self.conn.executemany(
            "INSERT OR REPLACE INTO identity_memory VALUES (?, ?, ?)",
            [(members_key(tracks), i, used) for i, tracks in groups.items()],
        )

    def faces(self) -> list[StoredFace]:
        """Every face by id, with the identity of its track (-1 unmatched); no pictures."""
        rows = self.conn.execute(
            "SELECT fa.id, fa.track_id, fa.footage_id, fa.pts_s, fa.x1, fa.y1, fa.x2, fa.y2, fa.score, fa.quality,"
            " fa.embedding IS NOT NULL, COALESCE(a.identity, -1)"
            " FROM faces fa LEFT JOIN assignment a ON a.track_id = fa.track_id ORDER BY fa.id"
        )
        return [
            StoredFace(
                id=int(i),
                track_id=int(t),
                footage_id=int(f),
                pts_s=float(pts),
                box_xyxy=(int(x1), int(y1), int(x2), int(y2)),
                score=float(score),
                quality=float(q),
                encoded=bool(enc),
                identity=int(ident),
            )
            for i, t, f, pts, x1, y1, x2, y2, score, q, enc, ident in rows
        ]

    def thumb(self, face_id: int) -> bytes:
        row = self.conn.execute("SELECT thumb, thumb_crc FROM faces WHERE id = ?", (face_id,)).fetchone()
        if row is None:
            raise StoreError(f"no face {face_id} in the store")
        return self._picture(row[0], row[1], f"the picture of face {face_id}")

    def snapshot(self, track_id: int) -> bytes:
        row = self.conn.execute("SELECT snapshot, snapshot_crc FROM tracks WHERE id = ?", (track_id,)).fetchone()
        if row is None:
            raise StoreError(f"no track {track_id} in the store")
        return self._picture(row[0], row[1], f"the snapshot of sighting {track_id}")

    # -- corrections (workflow) -------------------------------------------------------------
    def assignment(self) -> dict[int, int]:
        """Current track id -> identity id (-1 unmatched); empty before the first grouping."""
        return {int(t): int(i) for t, i in self.conn.execute("SELECT track_id, identity FROM assignment")}

    def add_correction(self, correction: Correction) -> int:
        """Record one correction with the (track id, role) pairs it covers; returns its id (its own `id` is ignored)."""
        c = correction
        with self._writing():
            cur = self.conn.execute(
                "INSERT INTO corrections (kind, identities, label, ref, created_utc) VALUES (?, ?, ?, ?, ?)",
                (c.kind.value, json.dumps(list(c.identities)), c.label, c.ref, c.created_utc),
            )
            cid = _new_row_id(cur)
            self.conn.executemany(
                "INSERT OR IGNORE INTO correction_tracks (correction_id, track_id, role) VALUES (?, ?, ?)",
                [(cid, t, role.value) for t, role in c.tracks],
            )
        return cid

    def corrections(self) -> list[Correction]:
        """Every correction, oldest first, with the tracks it covers."""
        tracks: dict[int, list[tuple[int, str]]] = {}
        for cid, track, role in self.conn.execute(
            "SELECT correction_id, track_id, role FROM correction_tracks ORDER BY track_id"
        ):
            tracks.setdefault(int(cid), []).append((int(track), str(role)))
        out = []
        for r in self.conn.execute("SELECT * FROM corrections ORDER BY id"):
            try:
                out.append(
                    Correction(
                        kind=Kind(r["kind"]),
                        identities=tuple(json.loads(r["identities"])),
                        tracks=tuple((t, Role(role)) for t, role in tracks.get(int(r["id"]), [])),
                        label=r["label"],
                        ref=r["ref"],
                        created_utc=r["created_utc"],
                        id=int(r["id"]),
                    )
                )
            except ValueError as exc:
                raise StoreError(f"{self.path}: correction {r['id']} cannot be read ({exc})") from None
        return out

    def face_track(self, face_id: int) -> int | None:
        """Track id of a face, or None when there is no such face."""
        row = self.conn.execute("SELECT track_id FROM faces WHERE id = ?", (int(face_id),)).fetchone()
        return None if row is None else int(row[0])

    def best_face(self, track_id: int) -> tuple[int, float] | None:
        """(id, pts_s) of a track's best-quality face (the earliest on ties); None for no such track."""
        row = self.conn.execute(
            "SELECT id, pts_s FROM faces WHERE track_id = ? ORDER BY quality DESC, id LIMIT 1", (int(track_id),)
        ).fetchone()
        return None if row is None else (int(row[0]), float(row[1]))

    def encoded_faces(self) -> list[EncodedFace]:
        """Every face that carries a descriptor, by id (for search)."""
        rows = self.conn.execute(
            "SELECT id, track_id, pts_s, embedding, embedding_crc, encoder FROM faces WHERE embedding IS NOT NULL"
            " ORDER BY id"
        )
        return [
            EncodedFace(int(i), int(t), float(pts), self._descriptor(emb, crc, space, f"face {i}"))
            for i, t, pts, emb, crc, space in rows
        ]

    # -- time zones, undone corrections, evidence ---------------------------------------------
    def set_footage_timezone(self, footage_id: int, tz: str) -> None:
        """Record the IANA zone of the camera that recorded a file (the report shows local times in it)."""
        with self.conn:
            self.conn.execute("UPDATE footage SET timezone = ? WHERE id = ?", (str(tz), int(footage_id)))

    def undone_corrections(self) -> dict[int, str]:
        """{correction id: when it was undone (ISO 8601 UTC)} for the corrections `undo` reverted."""
        rows = self.conn.execute("SELECT id, undone_utc FROM corrections WHERE undone_utc IS NOT NULL")
        return {int(i): str(t) for i, t in rows}

    def set_correction_undone(self, correction_id: int, undone_utc: str | None) -> None:
        """Mark one correction undone (or, with None, in force again); the newest correction id at
        that moment is kept with it (`undo_order`)."""
        with self.conn:
            self.conn.execute(
                "UPDATE corrections SET undone_utc = ?, undone_after = "
                "CASE WHEN ? IS NULL THEN NULL ELSE (SELECT MAX(id) FROM corrections) END WHERE id = ?",
                (undone_utc, undone_utc, int(correction_id)),
            )

    def undo_order(self) -> dict[int, int]:
        """{undone correction id: the newest correction id when it was undone}: the corrections with a
        larger id were made after the undo. A store older than that record is read by the times."""
        rows = self.conn.execute("SELECT id, undone_utc, undone_after FROM corrections WHERE undone_utc IS NOT NULL")
        out = {}
        for cid, when, after in rows.fetchall():
            if after is None:
                row = self.conn.execute("SELECT MAX(id) FROM corrections WHERE created_utc <= ?", (when,)).fetchone()
                after = row[0] if row and row[0] is not None else cid
            out[int(cid)] = int(after)
        return out

    def checkpoint(self) -> None:
        """Write the WAL back into the database file, so its bytes are the whole store (for hashing)."""
        if self.path != ":memory:":
            with self._writing():  # it writes the database file: a full disk is DiskFullError too
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- audit log (its rows are made in `audit`) ----------------------------------------------
    def audit_head(self) -> tuple[int, str]:
        """(id, sha256) of the audit log's last row; (0, '') before the first."""
        row = self.conn.execute("SELECT id, sha256 FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        return (0, "") if row is None else (int(row[0]), str(row[1]))

    def add_audit(self, row: dict[str, Any]) -> None:
        """Append one audit row ({column: value}, every column of the table)."""
        names = list(row)
        with self._writing():
            self.conn.execute(
                f"INSERT INTO audit ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [row[n] for n in names],
            )

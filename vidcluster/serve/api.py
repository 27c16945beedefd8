"""The case behind `vidcluster serve`: what the JSON API answers, and corrections through `workflow`.

`Case` reads the store once per change (the report's own `load_report_data`) and answers from that
until the next correction. Every correction goes through the same `workflow` function the command
line calls, with `report=False`: the static report is refreshed once, when the server stops or on
request. Reads and writes are serialised by one lock; the server holds OUT's lock, and the
`workflow` functions run inside it (see `outdir.run_lock`).

Bodies of POST /api/corrections (`kind` and the fields it needs; ids are integers):

    {"kind": "merge",   "ids": [A, B, ...]}          the first id is kept
    {"kind": "reject",  "id": A, "sighting": N}      or "face": F: not this person
    {"kind": "name",    "id": A, "label": "..."}
    {"kind": "note",    "id": A, "text": "..."}
    {"kind": "confirm", "id": A}                     optional "examiner": "..."
    {"kind": "undo",    "n": K}                      correction K, as GET /api/corrections numbers it

Bad input raises `BadRequest` with one line that names the field, before anything is written.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..case.outdir import store_path
from ..case.store import Store
from ..commands import workflow
from ..errors import StoreError, VidclusterError
from ..report import REPORT_DIRNAME, ReportData, load_report_data
from ..report.data import Identity, Sighting
from ..report.exports import identity_dict
from ..report.images import as_jpeg

FACES_SHOWN = 8  # faces of another identity shown beside this one's in the comparison
_CLIP_NAME = re.compile(r"clip-(\d+)-[0-9a-f]+\.mp4")


class BadRequest(VidclusterError):
    """A request the API refuses (HTTP 400): one line naming the field."""


class NotFound(VidclusterError):
    """Nothing at that address (HTTP 404)."""


@dataclass
class _State:
    data: ReportData
    clips: dict[int, str]  # track id -> clip file name under OUT/report/clips
    by_id: dict[int, Identity]


def shared_store(path: Path) -> Store:
    """The store opened once for the server's threads (every use of it is under `Case`'s lock)."""
    Store.open(path).close()  # checks the schema and prepares the file, as every command does
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from None
    return Store(conn, str(path))


class Case:
    """One case (OUT) as the server sees it."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.lock = threading.RLock()
        self.store = shared_store(store_path(self.out))
        self._state: _State | None = None
        self.changes = 0  # corrections made since the static report was last written

    def close(self) -> None:
        with self.lock:
            self.store.close()

    # -- reading -----------------------------------------------------------------------------
    def _current(self) -> _State:
        if self._state is None:
            data = load_report_data(self.store)
            self._state = _State(data, self._clips(), data.by_id)
        return self._state

    def _clips(self) -> dict[int, str]:
        folder = self.out / REPORT_DIRNAME / "clips"
        found: dict[int, str] = {}
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                m = _CLIP_NAME.fullmatch(p.name)
                if m:
                    found[int(m.group(1))] = p.name
        return found

    def _identity_json(self, ident: Identity, st: _State) -> dict[str, Any]:
        d = identity_dict(ident, {t: f"/clips/{n}" for t, n in st.clips.items()})
        best = ident.best_face
        d["cover_face"] = best.id if best is not None else None
        d["hidden"] = False
        return d

    def identities(self) -> list[dict[str, Any]]:
        """GET /api/identities: the objects of identities.json (clips as server paths), with cover_face and hidden."""
        with self.lock:
            st = self._current()
            return [self._identity_json(i, st) for i in st.data.identities]

    def identity(self, ident_id: int) -> dict[str, Any]:
        """GET /api/identities/ID: its object with every sighting's faces and snapshot, and its nearest identities."""
        with self.lock:
            st = self._current()
            ident = st.by_id.get(ident_id)
            if ident is None:
                raise NotFound(f"no identity {ident_id}")
            d = self._identity_json(ident, st)
            for sd, s in zip(d["sightings"], ident.sightings, strict=True):
                sd.update(self._sighting_extra(s))
            d["faces"] = [f.id for f in ident.faces[:FACES_SHOWN]]
            d["nearest"] = [self._neighbour(n["id"], n["distance"], st) for n in d["nearest"] if n["id"] in st.by_id]
            d["others"] = [{"id": i.id, "label": i.label} for i in st.data.identities if i.id != ident_id]
            return d

    @staticmethod
    def _sighting_extra(s: Sighting) -> dict[str, Any]:
        return {
            "faces": [{"id": f.id, "quality": round(f.quality, 3)} for f in s.faces],
            "snapshot": f"/snap/{s.track_id}.jpg",
        }

    def _neighbour(self, other_id: int, distance: float, st: _State) -> dict[str, Any]:
        other = st.by_id[other_id]
        best = other.best_face
        return {
            "id": other.id,
            "distance": distance,
            "label": other.label,
            "n_sightings": other.n_sightings,
            "cameras": other.cameras,
            "cover_face": best.id if best is not None else None,
            "faces": [f.id for f in other.faces[:FACES_SHOWN]],
        }

    def corrections(self) -> list[dict[str, Any]]:
        """GET /api/corrections: every correction, oldest first: n, kind, text, created_utc, undone_utc."""
        with self.lock:
            undone = self.store.undone_corrections()
            return [
                {
                    "n": c.id,
                    "kind": c.kind.value,
                    "identities": list(c.identities),
                    "text": workflow.describe_correction(c),
                    "created_utc": c.created_utc,
                    "undone_utc": undone.get(c.id),
                }
                for c in self.store.corrections()
            ]

    def face_jpeg(self, face_id: int) -> bytes | None:
        with self.lock:
            try:
                return as_jpeg(self.store.thumb(face_id))
            except (StoreError, TypeError, sqlite3.DatabaseError):
                return None

    def snapshot_jpeg(self, track_id: int) -> bytes | None:
        with self.lock:
            try:
                return as_jpeg(self.store.snapshot(track_id))
            except (StoreError, TypeError, sqlite3.DatabaseError):
                return None

    def clip_file(self, name: str) -> Path | None:
        """The clip file `name` of the static report, when it is one of its clips."""
        with self.lock:
            if name not in set(self._current().clips.values()):
                return None
            path = self.out / REPORT_DIRNAME / "clips" / name
            return path if path.is_file() else None

    # -- writing -----------------------------------------------------------------------------
    def correct(self, body: Any) -> dict[str, Any]:
        """POST /api/corrections: apply one correction; the answer says what was done and the new state."""
        if not isinstance(body, dict):
            raise BadRequest("body: expected a JSON object with a 'kind'")
        kind = body.get("kind")
        if not isinstance(kind, str) or kind not in _APPLY:
            raise BadRequest(f"kind: expected one of {', '.join(sorted(_APPLY))}")
        with self.lock:
            st = self._current()
            line, focus = _APPLY[kind](self, body, st)
            self._state = None
            self.changes += 1
            return {"done": line, "identity": focus, "identities": self.identities()}

    def refresh_report(self) -> Path:
        """Rewrite OUT/report from the store; returns its index.html."""
        with self.lock:
            index = workflow.refresh_report(self.out)
            self.changes = 0
            self._state = None  # the clips may have been cut anew
            return index

    # -- the kinds -----------------------------------------------------------------------------
    def _known(self, st: _State, field: str, value: int) -> int:
        if value not in st.by_id:
            known = ", ".join(str(i) for i in sorted(st.by_id)) or "none"
            raise BadRequest(f"{field}: no identity {value} (known: {known})")
        return value

    def _merge(self, body: dict, st: _State) -> tuple[str, int | None]:
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(_is_int(i) for i in ids) or len(set(ids)) < 2:
            raise BadRequest("ids: expected a list of at least two different identity ids")
        for i in ids:
            self._known(st, "ids", i)
        r = workflow.merge(self.out, ids, report=False)
        return _said(r.line()), r.merged[0]

    def _reject(self, body: dict, st: _State) -> tuple[str, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        if "face" in body and "sighting" not in body:
            ref = f"face:{_int(body, 'face')}"
        else:
            ref = f"sighting:{_int(body, 'sighting')}"
        r = workflow.reject(self.out, ident, ref, report=False)
        return _said(r.line()), ident

    def _name(self, body: dict, st: _State) -> tuple[str, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        r = workflow.name(self.out, ident, _text(body, "label"), report=False)
        return _said(r.line()), ident

    def _note(self, body: dict, st: _State) -> tuple[str, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        r = workflow.note(self.out, ident, _text(body, "text"), report=False)
        return _said(r.line()), ident

    def _confirm(self, body: dict, st: _State) -> tuple[str, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        examiner = body.get("examiner")
        if examiner is not None and not isinstance(examiner, str):
            raise BadRequest("examiner: expected a string")
        r = workflow.confirm(self.out, ident, examiner, report=False)
        return _said(r.line()), ident

    def _undo(self, body: dict, st: _State) -> tuple[str, int | None]:
        r = workflow.undo(self.out, _int(body, "n"), report=False)
        return _said(r.line()), None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(body: dict, field: str) -> int:
    v = body.get(field)
    if not isinstance(v, int) or isinstance(v, bool):
        raise BadRequest(f"{field}: expected an integer")
    return v


def _text(body: dict, field: str) -> str:
    v = body.get(field)
    if not isinstance(v, str) or not v.strip():
        raise BadRequest(f"{field}: expected a non-empty string")
    return v


def _said(line: str) -> str:
    """A workflow line without its '-> report path' tail (the report is refreshed later)."""
    return line.rsplit(" -> ", 1)[0]


_APPLY: dict[str, Callable[[Case, dict, _State], tuple[str, int | None]]] = {
    "merge": Case._merge,
    "reject": Case._reject,
    "name": Case._name,
    "note": Case._note,
    "confirm": Case._confirm,
    "undo": Case._undo,
}

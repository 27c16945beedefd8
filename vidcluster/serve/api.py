"""The case behind `vidcluster serve`: what the JSON API answers, and corrections through `workflow`.

`Review` reads the store once per change (the report's own `load_report_data`, hidden identities
kept) and answers from that until the next correction. Every correction goes through the same
`workflow` function the command line calls, on a `workflow.Case` opened once under the lock the
server holds and with `report=False`: the static report is rewritten when the server stops or on
request, not at every click. Reads and writes are serialised by one lock.

Bodies of POST /api/corrections (`kind` and the fields it needs; ids are integers):

    {"kind": "merge",   "ids": [A, B, ...]}          the first id is kept
    {"kind": "reject",  "id": A, "sighting": N}      or "face": F: not this person
    {"kind": "move",    "sighting": N, "to": B}      "to": null: into a new identity
    {"kind": "apart",   "ids": [A, B]}               not the same person
    {"kind": "name",    "id": A, "label": "..."}
    {"kind": "hide",    "id": A}                     a bystander: out of the report, still in the store
    {"kind": "cover",   "id": A, "face": F}          the face shown first
    {"kind": "note",    "id": A, "text": "..."}
    {"kind": "confirm", "id": A}                     optional "examiner": "..."
    {"kind": "undo",    "n": K}                      correction K, as GET /api/corrections numbers it

Bad input raises `BadRequest` with one line that begins with the field's name, before anything
is written.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ..case.outdir import StaleMark, store_path
from ..case.store import Store
from ..commands import workflow
from ..commands.outcomes import Outcome, describe_correction
from ..errors import StoreError, VidclusterError, WorkflowError
from ..report import REPORT_DIRNAME, ReportData, load_report_data, write_report
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
    by_id: dict[int, Identity]  # hidden ones too
    hidden: dict[int, int]  # hidden identity -> the hide correction


def shared_store(path: Path) -> Store:
    """The store opened once for the server's threads (every use of it is under `Review.lock`)."""
    Store.open(path).close()  # checks the schema and prepares the file, as every command does
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from None
    return Store(conn, str(path))


class Review:
    """One case (OUT) as the server sees it; the caller holds OUT's lock while it is open."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.lock = threading.RLock()
        self.store = shared_store(store_path(self.out))
        self.case = workflow.Case(self.out, self.store, report=False)
        self._state: _State | None = None
        self.changes = 0  # corrections made since the static report was last written

    def close(self) -> None:
        with self.lock:
            self.store.close()

    # -- reading -----------------------------------------------------------------------------
    def _current(self) -> _State:
        if self._state is None:
            data = load_report_data(self.store, keep_hidden=True)
            self._state = _State(data, self._clips(), data.by_id, {h.id: h.correction for h in data.hidden})
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
        d = identity_dict(ident, {t: f"/clips/{n}" for t, n in st.clips.items()})  # cover_face among them
        d["hidden"] = ident.id in st.hidden
        d["hidden_by"] = st.hidden.get(ident.id)  # undo this correction to show it again
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
            d["others"] = [  # where a sighting can be moved (not into a hidden identity)
                {"id": i.id, "label": i.label} for i in st.data.identities if i.id != ident_id and i.id not in st.hidden
            ]
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
                    "text": describe_correction(c),
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
            apply, fields = _APPLY[kind]
            # the static report lacks this correction until it is written again (on stop): say so in
            # it, so that a server killed meanwhile leaves a report that says it is out of date
            mark = StaleMark(self.out, self.store, "a correction in `vidcluster serve`")
            try:
                outcome, focus = apply(self, body, st)
            except WorkflowError as exc:  # the command's refusal, in the API's own field names
                raise BadRequest(_api_fields(str(exc), fields)) from None
            finally:
                mark.close()  # taken away again when nothing was written
            self._state = None
            self.changes += 1
            return {
                "done": outcome.line(),
                "identity": focus,
                "outcome": outcome.as_dict(),
                "identities": self.identities(),
            }

    def refresh_report(self) -> Path:
        """Rewrite OUT/report from the store; returns its index.html."""
        with self.lock:
            cfg = workflow.stored_config(self.store)
            last_run = self.store.get_meta("last_run") or {}
            index = write_report(self.store, self.out, last_run, cfg.report, workers=cfg.run.n_workers)
            self.changes = 0
            self._state = None  # the clips may have been cut anew
            return index

    # -- the kinds: each checks the API's fields, calls the command, names the identity to show ----
    def _known(self, st: _State, field: str, value: int) -> int:
        if value not in st.by_id:
            known = ", ".join(str(i) for i in sorted(st.by_id)) or "none"
            raise BadRequest(f"{field}: no identity {value} (known: {known})")
        return value

    def _ids(self, body: dict, st: _State, exactly: int | None = None) -> list[int]:
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(_is_int(i) for i in ids) or len(set(ids)) < 2:
            raise BadRequest("ids: expected a list of at least two different identity ids")
        if exactly is not None and len(ids) != exactly:
            raise BadRequest(f"ids: expected exactly {exactly} identity ids")
        return [self._known(st, "ids", i) for i in ids]

    def _merge(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        r = workflow.merge(self.case, self._ids(body, st))
        return r, r.merged[0]

    def _apart(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        a, b = self._ids(body, st, exactly=2)
        return workflow.apart(self.case, a, b), a

    def _reject(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        ref = (
            f"face:{_int(body, 'face')}"
            if "face" in body and "sighting" not in body
            else f"sighting:{_int(body, 'sighting')}"
        )
        return workflow.reject(self.case, ident, ref), ident

    def _move(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        sighting = _int(body, "sighting")
        to = body.get("to")
        if to is not None:
            to = self._known(st, "to", _int(body, "to"))
        r = workflow.move(self.case, sighting, to)
        return r, r.source if r.source >= 0 else None

    def _name(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        return workflow.name(self.case, ident, _text(body, "label")), ident

    def _hide(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        return workflow.hide(self.case, ident), ident

    def _cover(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        return workflow.cover(self.case, ident, _int(body, "face")), ident

    def _note(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        return workflow.note(self.case, ident, _text(body, "text")), ident

    def _confirm(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        ident = self._known(st, "id", _int(body, "id"))
        examiner = body.get("examiner")
        if examiner is not None and not isinstance(examiner, str):
            raise BadRequest("examiner: expected a string")
        return workflow.confirm(self.case, ident, examiner), ident

    def _undo(self, body: dict, st: _State) -> tuple[Outcome, int | None]:
        return workflow.undo(self.case, _int(body, "n")), None


def _is_int(v: Any) -> TypeGuard[int]:
    """An integer SQLite can hold (64 bits); a wider one would fail in the store, not be refused."""
    return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63


def _int(body: dict, field: str) -> int:
    v = body.get(field)
    if not _is_int(v):
        raise BadRequest(f"{field}: expected an integer")
    return v


def _text(body: dict, field: str) -> str:
    v = body.get(field)
    if not isinstance(v, str) or not v.strip():
        raise BadRequest(f"{field}: expected a non-empty string")
    return v


def _api_fields(message: str, fields: dict[str, str]) -> str:
    """A command's 'field: ...' refusal with the field as the API names it.

    >>> _api_fields("identities: no identity 9 (known: 1, 2)", {"identities": "ids"})
    'ids: no identity 9 (known: 1, 2)'
    """
    name, sep, rest = message.partition(": ")
    return f"{fields[name]}: {rest}" if sep and name in fields else message


# kind -> (how it is applied, {the command's field name: the API's})
_IDENTITY = {"identity": "id"}
_APPLY: dict[str, tuple[Callable[[Review, dict, _State], tuple[Outcome, int | None]], dict[str, str]]] = {
    "merge": (Review._merge, {"identities": "ids"}),
    "apart": (Review._apart, {"a": "ids", "b": "ids"}),
    "reject": (Review._reject, {**_IDENTITY, "ref": "sighting"}),
    "move": (Review._move, {}),
    "name": (Review._name, _IDENTITY),
    "hide": (Review._hide, _IDENTITY),
    "cover": (Review._cover, _IDENTITY),
    "note": (Review._note, {**_IDENTITY, "note": "text"}),
    "confirm": (Review._confirm, _IDENTITY),
    "undo": (Review._undo, {}),
}

"""The investigator's corrections and regrouping: recluster, name, merge, reject.

Corrections are stored against the tracks (sightings) an identity covered when the user made
them, never against identity ids, because ids may move when faces are regrouped. After every
grouping they are resolved again: a label or a merge belongs to the identity that now holds
most of its tracks; a rejection belongs to the identity that holds most of the rejected
track's former companions.

How they steer the grouping (`Constraints`, used by `grouping.assign_identities`):
- merge: every track of the merged identities is must-linked to the others; the group always
  ends up as one identity.
- reject: the rejected track is cannot-linked to the identity's other tracks; afterwards it is
  also forced out of that identity if it landed there anyway (tracks that do not steer the
  clustering are attached to their nearest identity later).
Newer corrections win over older ones: a merge cancels older rejections between its tracks,
and a rejection takes the track out of older merges.

The library never prints: each command returns the one line the CLI shows.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .config import Config, IdentitiesConfig, ReportConfig, load_config
from .errors import ConfigError, WorkflowError
from .store import Store

STORE_NAME = "vidcluster.db"
NOISE = -1


# -- constraints from corrections -------------------------------------------------------------
@dataclass(frozen=True)
class Rejection:
    """Track `track` is not the person of the tracks in `others` (their identity at the time)."""

    correction_id: int
    track: int
    others: frozenset[int]


@dataclass(frozen=True)
class Constraints:
    """The user's corrections as track-level constraints (track ids, not row indexes)."""

    groups: tuple[frozenset[int], ...] = ()  # each group is one person (merges)
    rejections: tuple[Rejection, ...] = ()

    def cannot_pairs(self) -> list[tuple[int, int]]:
        return [(r.track, o) for r in self.rejections for o in sorted(r.others)]

    def group_of(self) -> dict[int, int]:
        return {t: k for k, g in enumerate(self.groups) for t in g}

    def __bool__(self) -> bool:
        return bool(self.groups or self.rejections)


def constraints_from(corrections: Iterable[dict[str, Any]]) -> Constraints:
    """Replay corrections oldest first into disjoint must-link groups and rejections.

    >>> c = constraints_from([
    ...     {"id": 1, "kind": "merge", "tracks": {"member": [1, 2, 3]}},
    ...     {"id": 2, "kind": "reject", "tracks": {"rejected": [3], "other": [1, 2]}},
    ... ])
    >>> sorted(map(sorted, c.groups)), c.cannot_pairs()
    ([[1, 2]], [(3, 1), (3, 2)])
    """
    groups: list[set[int]] = []
    rejections: list[tuple[int, int, set[int]]] = []
    for c in corrections:
        tracks = c.get("tracks", {})
        if c["kind"] == "merge":
            members = set(tracks.get("member", []))
            if not members:
                continue
            touching = [g for g in groups if g & members]
            joined = members.union(*touching)
            groups = [g for g in groups if not (g & members)] + [joined]
            for _, r, others in rejections:  # a newer merge overrides older rejections inside it
                if r in joined:
                    others -= joined
        elif c["kind"] == "reject":
            rejected = tracks.get("rejected", [])
            others = set(tracks.get("other", []))
            for r in rejected:
                for g in groups:  # a newer rejection takes the track out of older merges
                    g.discard(r)
                rejections.append((int(c["id"]), r, others - {r}))
    return Constraints(
        groups=tuple(frozenset(g) for g in groups if len(g) > 1),
        rejections=tuple(Rejection(cid, r, frozenset(o)) for cid, r, o in rejections if o),
    )


def load_constraints(store: Store) -> Constraints:
    return constraints_from(store.corrections())


def _majority(labels: Iterable[int]) -> int:
    """Most common non-noise label (ties: the lowest), or -1 when there is none."""
    counts = Counter(int(x) for x in labels if int(x) != NOISE)
    if not counts:
        return NOISE
    return min(counts, key=lambda lab: (-counts[lab], lab))


def enforce(cons: Constraints, track_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Apply the corrections to final cluster labels (M,) of tracks `track_ids` (M,); returns a copy.

    Every merge group gets one label (its members' majority; a new label when all were
    unmatched). A rejected track that shares the label of most of its former companions
    becomes unmatched.

    >>> cons = Constraints(groups=(frozenset({1, 2}),), rejections=(Rejection(9, 3, frozenset({4, 5})),))
    >>> enforce(cons, np.array([1, 2, 3, 4, 5]), np.array([0, 1, 2, 2, 2])).tolist()
    [0, 0, -1, 2, 2]
    """
    out = np.asarray(labels, np.int64).copy()
    row = {int(t): i for i, t in enumerate(np.asarray(track_ids).tolist())}
    next_label = int(out.max()) + 1 if len(out) else 0
    for g in cons.groups:
        rows = [row[t] for t in g if t in row]
        if len(rows) < 1:
            continue
        lab = _majority(out[rows])
        if lab == NOISE:
            lab, next_label = next_label, next_label + 1
        out[rows] = lab
    for r in cons.rejections:
        if r.track not in row:
            continue
        lab = _majority(out[[row[t] for t in r.others if t in row]])
        if lab != NOISE and out[row[r.track]] == lab:
            out[row[r.track]] = NOISE
    return out


# -- resolving corrections for the report ---------------------------------------------------
@dataclass
class Annotations:
    """What the report shows about corrections, keyed by current identity id."""

    labels: dict[int, str] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)
    rejected: dict[int, list[int]] = field(default_factory=dict)  # identity -> rejected track ids
    corrections: list[dict[str, Any]] = field(default_factory=list)  # for the manifest


def resolve(corrections: list[dict[str, Any]], assignment: dict[int, int]) -> Annotations:
    """Place every correction on the identity that now holds most of its tracks.

    >>> a = resolve([{"id": 1, "kind": "name", "identities": [4], "label": "Guard", "ref": None,
    ...               "created_utc": "t", "tracks": {"member": [10, 11]}}], {10: 2, 11: 2})
    >>> a.labels
    {2: 'Guard'}
    """
    ann = Annotations()
    for c in corrections:
        tracks = c.get("tracks", {})
        ann.corrections.append({
            "kind": c["kind"], "identities": c["identities"], "label": c.get("label"), "ref": c.get("ref"),
            "created_utc": c["created_utc"], "tracks": {k: list(v) for k, v in tracks.items()},
        })
        when = str(c["created_utc"])[:19].replace("T", " ")
        if c["kind"] == "name":
            ident = _majority(assignment.get(t, NOISE) for t in tracks.get("member", []))
            if ident != NOISE:
                ann.labels[ident] = str(c["label"])  # newer names replace older ones
        elif c["kind"] == "merge":
            ident = _majority(assignment.get(t, NOISE) for t in tracks.get("member", []))
            if ident != NOISE:
                ids = ", ".join(str(i) for i in c["identities"])
                ann.notes.setdefault(ident, []).append(f"Merged by hand from identities {ids} ({when} UTC).")
        elif c["kind"] == "reject":
            ident = _majority(assignment.get(t, NOISE) for t in tracks.get("other", []))
            if ident != NOISE:
                for t in tracks.get("rejected", []):
                    ann.rejected.setdefault(ident, []).append(int(t))
                    via = f" (via {c.get('ref')})" if str(c.get("ref") or "").startswith("face:") else ""
                    ann.notes.setdefault(ident, []).append(
                        f"Sighting {t}{via} rejected by hand as not this person ({when} UTC).")
    return ann


def annotations(store: Store) -> Annotations:
    return resolve(store.corrections(), store.assignment())


# -- commands -------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def open_output(out: str | Path) -> Iterator[tuple[Path, Store]]:
    """Lock OUT and open its store; WorkflowError when OUT holds no store."""
    from .pipeline import run_lock

    out = Path(out)
    db = out / STORE_NAME
    if not db.is_file():
        raise WorkflowError(f"{out}: no vidcluster store here (run `vidcluster run INPUT --out {out}` first)")
    with run_lock(out):
        store = Store.open(db)
        try:
            yield out, store
        finally:
            store.close()


def stored_config(store: Store, **identities: Any) -> Config:
    """The last run's grouping and report settings, with `identities` overrides (None = keep)."""
    params = (store.get_meta("last_run") or {}).get("parameters") or {}
    sections: dict[str, dict[str, Any]] = {}
    for name, cls in (("identities", IdentitiesConfig), ("report", ReportConfig)):
        known = {f.name for f in dataclasses.fields(cls)}
        sections[name] = {k: v for k, v in (params.get(name) or {}).items() if k in known}
    sections["identities"].update({k: v for k, v in identities.items() if v is not None})
    try:
        return load_config(None, sections)
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None


def _regroup_and_report(out: Path, store: Store, cfg: Config) -> Path:
    """Group again with `cfg` (corrections applied), record the parameters, rewrite the report."""
    from .grouping import assign_identities
    from .report import write_report

    assign_identities(store, cfg)
    run_info = dict(store.get_meta("last_run") or {})
    params = dict(run_info.get("parameters") or {})
    params["identities"] = dataclasses.asdict(cfg.identities)
    run_info["parameters"] = params
    history = list(run_info.get("regrouped") or [])
    history.append({"utc": _now(), "identities": params["identities"]})
    run_info["regrouped"] = history
    store.set_meta("last_run", run_info)
    return write_report(store, out, run_info, cfg.report)


def _rewrite_report(out: Path, store: Store, cfg: Config) -> Path:
    from .report import write_report

    return write_report(store, out, store.get_meta("last_run") or {}, cfg.report)


def _identity_tracks(store: Store, identity: int) -> list[int]:
    """Track ids of one current identity; WorkflowError when there is no such identity."""
    assignment = store.assignment()
    tracks = sorted(t for t, i in assignment.items() if i == identity)
    if identity < 0 or not tracks:
        known = sorted({i for i in assignment.values() if i >= 0})
        hint = f"known: {', '.join(map(str, known))}" if known else "there are no identities yet"
        raise WorkflowError(f"no identity {identity} ({hint})")
    return tracks


def _n_identities(store: Store) -> int:
    return len({i for i in store.assignment().values() if i >= 0})


def recluster(out: str | Path, *, eps: float | None = None, algorithm: str | None = None,
              min_samples: int | None = None) -> str:
    """Group the stored faces again (no decoding) with changed parameters; rewrite the report."""
    with open_output(out) as (out, store):
        cfg = stored_config(store, eps=eps, algorithm=algorithm, min_samples=min_samples)
        before = store.assignment()
        index = _regroup_and_report(out, store, cfg)
        after = store.assignment()
        n = len({i for i in after.values() if i >= 0})
        kept = len({i for i in after.values() if i >= 0} & {i for i in before.values() if i >= 0})
        p = cfg.identities
        return (f"regrouped with {p.algorithm}, eps {p.eps:g}, min_samples {p.min_samples}: {n} identities "
                f"({kept} kept their id) -> {index}")


def name(out: str | Path, identity: int, label: str) -> str:
    """Give an identity a label (shown in the report and identities.json)."""
    label = " ".join(str(label).split())
    if not label:
        raise WorkflowError("the label is empty")
    if len(label) > 200:
        raise WorkflowError("the label is longer than 200 characters")
    with open_output(out) as (out, store):
        tracks = _identity_tracks(store, identity)
        store.add_correction("name", [identity], [(t, "member") for t in tracks], label=label, created_utc=_now())
        index = _rewrite_report(out, store, stored_config(store))
        return f"identity {identity} is now labelled {label!r} ({len(tracks)} sightings) -> {index}"


def merge(out: str | Path, identities: Iterable[int]) -> str:
    """Declare identities one person; the first id is kept. Regroups and rewrites the report."""
    ids = list(dict.fromkeys(int(i) for i in identities))
    if len(ids) < 2:
        raise WorkflowError("merge needs at least two different identity ids")
    with open_output(out) as (out, store):
        tracks = [t for i in ids for t in _identity_tracks(store, i)]
        store.add_correction("merge", ids, [(t, "member") for t in tracks], created_utc=_now())
        cfg = stored_config(store)
        from .grouping import assign_identities

        assign_identities(store, cfg)
        _keep_id(store, tracks, ids[0])
        index = _rewrite_report(out, store, cfg)
        return (f"merged identities {', '.join(map(str, ids))} into identity {ids[0]} ({len(tracks)} sightings); "
                f"{_n_identities(store)} identities -> {index}")


def _keep_id(store: Store, tracks: list[int], wanted: int) -> None:
    """Give the identity that holds `tracks` the id `wanted`, when that id is free or already its own."""
    assignment = store.assignment()
    current = _majority(assignment.get(t, NOISE) for t in tracks)
    if current in (NOISE, wanted) or wanted in assignment.values():
        return
    ids = list(assignment)
    store.set_assignment(ids, [wanted if assignment[t] == current else assignment[t] for t in ids])


def parse_ref(ref: str) -> tuple[str, int]:
    """'face:123' or 'sighting:45' -> ('face', 123); WorkflowError otherwise.

    >>> parse_ref("sighting:45"), parse_ref(" Face:7 ")
    (('sighting', 45), ('face', 7))
    """
    kind, _, number = str(ref).strip().partition(":")
    kind = kind.strip().lower()
    if kind not in ("face", "sighting") or not number.strip().isdigit():
        raise WorkflowError(f"{ref!r} is not a face or sighting reference (use face:ID or sighting:ID)")
    return kind, int(number)


def reject(out: str | Path, identity: int, ref: str) -> str:
    """'Not this person': take a sighting (or the sighting of a face) out of an identity for good."""
    kind, number = parse_ref(ref)
    with open_output(out) as (out, store):
        if kind == "face":
            track = store.face_track(number)
            if track is None:
                raise WorkflowError(f"no face {number} in the store")
        else:
            track = number
        assignment = store.assignment()
        if track not in assignment:
            raise WorkflowError(f"no sighting {track} in the store")
        tracks = _identity_tracks(store, identity)
        if track not in tracks:
            where = assignment[track]
            now = "unmatched" if where == NOISE else f"in identity {where}"
            raise WorkflowError(f"{kind} {number} is not in identity {identity} (it is {now})")
        others = [t for t in tracks if t != track]
        if not others:
            raise WorkflowError(f"sighting {track} is the only sighting of identity {identity}; nothing would be left")
        ref_text = f"{kind}:{number}"
        store.add_correction("reject", [identity], [(track, "rejected")] + [(t, "other") for t in others],
                             ref=ref_text, created_utc=_now())
        cfg = stored_config(store)
        from .grouping import assign_identities

        assign_identities(store, cfg)
        index = _rewrite_report(out, store, cfg)
        now = store.assignment().get(track, NOISE)
        where = "unmatched" if now == NOISE else f"identity {now}"
        what = f"sighting {track}" if kind == "sighting" else f"face {number} (sighting {track})"
        return f"{what} rejected from identity {identity}; it is now {where} -> {index}"

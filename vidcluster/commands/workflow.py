"""The investigator's commands on a finished run: recluster, name, merge, reject, note, confirm,
corrections (the list) and undo.

Each command locks OUT, records its correction in the store (see corrections.py for how
corrections become constraints and annotations), regroups where needed and rewrites the
report. The library never prints: each command returns a small frozen value, and its `line()`
(or `lines()`) is the text the CLI shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..analysis.grouping import assign_identities
from ..case import audit
from ..case.corrections import Correction, Kind, Role, in_force, majority
from ..case.encoder import case_encoder
from ..case.outdir import open_output, report_stale
from ..case.records import KINDS
from ..case.store import Store
from ..config import Config, IdentitiesConfig, ReportConfig, load_config
from ..errors import ConfigError, WorkflowError
from ..report import write_report
from ..types import UNMATCHED, UNMATCHED_TEXT
from ..version import __version__


# -- what the commands return ----------------------------------------------------------------
@dataclass(frozen=True)
class Regrouped:
    """recluster: the parameters used, how many identities there are and how many kept their id."""

    algorithm: str
    eps: float
    min_samples: int
    identities: int
    kept: int
    report: Path

    def line(self) -> str:
        return (
            f"regrouped with {self.algorithm}, eps {self.eps:g}, min_samples {self.min_samples}: "
            f"{self.identities} identities ({self.kept} kept their id) -> {self.report}"
        )


@dataclass(frozen=True)
class Named:
    identity: int
    label: str
    sightings: int
    report: Path

    def line(self) -> str:
        return f"identity {self.identity} is now labelled {self.label!r} ({self.sightings} sightings) -> {self.report}"


@dataclass(frozen=True)
class Merged:
    merged: tuple[int, ...]  # the ids given; the first is kept
    sightings: int
    identities: int  # identities after the merge
    report: Path

    def line(self) -> str:
        return (
            f"merged identities {', '.join(map(str, self.merged))} into identity {self.merged[0]} "
            f"({self.sightings} sightings); {self.identities} identities -> {self.report}"
        )


@dataclass(frozen=True)
class Rejected:
    identity: int
    ref_kind: str  # 'face' | 'sighting': what the user pointed at
    ref_number: int
    track: int
    now: int  # where the sighting is after regrouping (UNMATCHED: nowhere)
    report: Path

    def line(self) -> str:
        where = UNMATCHED_TEXT if self.now == UNMATCHED else f"identity {self.now}"
        what = (
            f"sighting {self.track}"
            if self.ref_kind == "sighting"
            else f"face {self.ref_number} (sighting {self.track})"
        )
        return f"{what} rejected from identity {self.identity}; it is now {where} -> {self.report}"


@dataclass(frozen=True)
class Noted:
    correction: int
    identity: int
    report: Path

    def line(self) -> str:
        return f"note {self.correction} added to identity {self.identity} -> {self.report}"


@dataclass(frozen=True)
class Confirmed:
    correction: int
    identity: int
    examiner: str  # '' when nobody is named
    report: Path

    def line(self) -> str:
        by = f" by {self.examiner}" if self.examiner else ""
        return (
            f"identity {self.identity} confirmed{by} (correction {self.correction}; "
            f"`vidcluster undo` takes it back) -> {self.report}"
        )


@dataclass(frozen=True)
class Listing:
    """corrections: every correction, oldest first, with when each undone one was undone."""

    items: tuple[Correction, ...]
    undone: Mapping[int, str]  # correction id -> when it was undone (ISO 8601 UTC)
    stale: str | None = None  # why the report is out of date (a command killed before rewriting it)

    def lines(self) -> list[str]:
        if not self.items:
            return ["no corrections yet"]
        out = []
        for c in self.items:
            when = str(c.created_utc)[:19].replace("T", " ")
            gone = f"  [undone {self.undone[c.id][:19].replace('T', ' ')} UTC]" if c.id in self.undone else ""
            out.append(f"{c.id:>4}  {when} UTC  {describe_correction(c)}{gone}")
        return out


@dataclass(frozen=True)
class Undone:
    correction: Correction
    identities: int
    in_force: int  # corrections still in force
    report: Path

    def line(self) -> str:
        return (
            f"undone {self.correction.id}: {describe_correction(self.correction)}; {self.identities} identities, "
            f"{self.in_force} correction(s) in force -> {self.report}"
        )


# -- commands -------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stored_config(store: Store, **identities: Any) -> Config:
    """The last run's grouping and report settings, with `identities` overrides (None = keep)."""
    params = (store.get_meta("last_run") or {}).get("parameters") or {}
    sections: dict[str, dict[str, Any]] = {}
    for name, cls in (("identities", IdentitiesConfig), ("report", ReportConfig)):
        known = {f.name for f in dataclasses.fields(cls)}
        sections[name] = {k: v for k, v in (params.get(name) or {}).items() if k in known}
    sections["identities"].update({k: v for k, v in identities.items() if v is not None})
    # A threshold the stored run did not record comes from the profile of the encoder that made the
    # case's vectors (a store older than the choice of encoder holds dlib's), not the current default.
    sections["faces"] = {"encoder": case_encoder(store)}
    try:
        return load_config(None, sections)
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None


def _regroup_and_report(out: Path, store: Store, cfg: Config) -> Path:
    """Group again with `cfg` (corrections applied), record the parameters, rewrite the report."""
    _log_corrections(store, cfg)  # any left unlogged, with the count they left, before it changes
    assign_identities(store, cfg)
    run_info = dict(store.get_meta("last_run") or {})
    params = dict(run_info.get("parameters") or {})
    params["identities"] = dataclasses.asdict(cfg.identities)
    run_info["parameters"] = params
    history = list(run_info.get("regrouped") or [])
    history.append({"utc": _now(), "identities": params["identities"]})
    run_info["regrouped"] = history
    store.set_meta("last_run", run_info)
    p = cfg.identities
    return _rewrite_report(
        out, store, cfg, ("recluster", f"regrouped with {p.algorithm}, eps {p.eps:g}, min_samples {p.min_samples}")
    )


def _rewrite_report(out: Path, store: Store, cfg: Config, action: tuple[str, str] | None = None) -> Path:
    """Log in the audit log every correction and undo it does not hold yet, and `action` (name,
    what was done) if given; then rewrite the report (whose manifest carries the log)."""
    _log_corrections(store, cfg)
    if action is not None:
        _log(store, cfg, *action)
    return write_report(store, out, store.get_meta("last_run") or {}, cfg.report, workers=cfg.run.n_workers)


def _log(store: Store, cfg: Config, action: str, detail: str, **fields: Any) -> None:
    """One audit row with the stored run's key settings (the regrouping's as they are now)."""
    fields.setdefault("examiner", cfg.report.examiner)
    fields.setdefault("identities", _n_identities(store))
    params = (store.get_meta("last_run") or {}).get("parameters") or {}
    audit.append(
        store, action=action, detail=detail, version=__version__, parameters=audit.key_parameters(params), **fields
    )


def _log_corrections(store: Store, cfg: Config) -> None:
    """Log each correction (of any kind) and each undo the audit log lacks, at the time it was made.
    The newest gets the present identity count (its command has regrouped, or nothing has since);
    older ones (a command killed before its report, a store older than the log) were not counted
    when they happened and get none."""
    log = audit.entries(store)
    made = {e.correction for e in log if e.correction is not None and e.action != "undo"}
    undone_logged = {e.correction for e in log if e.action == "undo"}
    items = {c.id: c for c in store.corrections()}
    undone = store.undone_corrections()
    pending = [(c.created_utc, c.id, c, False) for c in items.values() if c.id not in made]
    pending += [
        (when, cid, items[cid], True) for cid, when in undone.items() if cid in items and cid not in undone_logged
    ]
    pending.sort(key=lambda p: (str(p[0]), p[1], p[3]))
    for n, (when, cid, c, is_undo) in enumerate(pending):
        who = c.label if c.kind == Kind.CONFIRM and c.label else cfg.report.examiner
        _log(
            store,
            cfg,
            "undo" if is_undo else c.kind.value,
            (f"undo {cid}: " if is_undo else "") + describe_correction(c),
            correction=cid,
            utc=str(when),
            examiner=who,
            identities=_n_identities(store) if n == len(pending) - 1 else None,
        )


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


def recluster(
    out: str | Path, *, eps: float | None = None, algorithm: str | None = None, min_samples: int | None = None
) -> Regrouped:
    """Group the stored faces again (no decoding) with changed parameters; rewrite the report."""
    with open_output(out) as (out, store):
        cfg = stored_config(store, eps=eps, algorithm=algorithm, min_samples=min_samples)
        before = store.assignment()
        index = _regroup_and_report(out, store, cfg)
        after = store.assignment()
        n = len({i for i in after.values() if i >= 0})
        kept = len({i for i in after.values() if i >= 0} & {i for i in before.values() if i >= 0})
        p = cfg.identities
        return Regrouped(p.algorithm, p.eps, p.min_samples, n, kept, index)


def _clean_text(text: str, what: str, limit: int) -> str:
    """`text` with its whitespace collapsed; WorkflowError when that is empty or longer than `limit`."""
    text = " ".join(str(text).split())
    if not text:
        raise WorkflowError(f"the {what} is empty")
    if len(text) > limit:
        raise WorkflowError(f"the {what} is longer than {limit} characters")
    return text


def _members(kind: Kind, identities: Iterable[int], tracks: Iterable[int], **fields: Any) -> Correction:
    """A correction made now that covers `tracks` as members."""
    return Correction.of(kind, identities, {Role.MEMBER: tracks}, created_utc=_now(), **fields)


def name(out: str | Path, identity: int, label: str) -> Named:
    """Give an identity a label (shown in the report and identities.json)."""
    label = _clean_text(label, "label", MAX_LABEL_CHARS)
    with open_output(out) as (out, store):
        tracks = _identity_tracks(store, identity)
        store.add_correction(_members(Kind.NAME, [identity], tracks, label=label))
        index = _rewrite_report(out, store, stored_config(store))
        return Named(identity, label, len(tracks), index)


def merge(out: str | Path, identities: Iterable[int]) -> Merged:
    """Declare identities one person; the first id is kept. Regroups and rewrites the report."""
    ids = list(dict.fromkeys(int(i) for i in identities))
    if len(ids) < 2:
        raise WorkflowError("merge needs at least two different identity ids")
    with open_output(out) as (out, store):
        tracks = [t for i in ids for t in _identity_tracks(store, i)]
        store.add_correction(_members(Kind.MERGE, ids, tracks))
        cfg = stored_config(store)
        assign_identities(store, cfg)
        _keep_id(store, tracks, ids[0])
        index = _rewrite_report(out, store, cfg)
        return Merged(tuple(ids), len(tracks), _n_identities(store), index)


def _keep_id(store: Store, tracks: list[int], wanted: int) -> None:
    """Give the identity that holds `tracks` the id `wanted`, when that id is free or already its own."""
    assignment = store.assignment()
    current = majority(assignment.get(t, UNMATCHED) for t in tracks)
    if current in (UNMATCHED, wanted) or wanted in assignment.values():
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


def reject(out: str | Path, identity: int, ref: str) -> Rejected:
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
            now = UNMATCHED_TEXT if where == UNMATCHED else f"in identity {where}"
            raise WorkflowError(f"{kind} {number} is not in identity {identity} (it is {now})")
        others = [t for t in tracks if t != track]
        if not others:
            raise WorkflowError(f"sighting {track} is the only sighting of identity {identity}; nothing would be left")
        store.add_correction(
            Correction.of(
                Kind.REJECT,
                [identity],
                {Role.REJECTED: [track], Role.OTHER: others},
                ref=f"{kind}:{number}",
                created_utc=_now(),
            )
        )
        cfg = stored_config(store)
        assign_identities(store, cfg)
        index = _rewrite_report(out, store, cfg)
        return Rejected(identity, kind, number, track, store.assignment().get(track, UNMATCHED), index)


# -- the examiner's marks, the list of corrections, undo -----------------------------------------
MAX_LABEL_CHARS = 200
MAX_NOTE_CHARS = 2000


def note(out: str | Path, identity: int, text: str) -> Noted:
    """Attach a note to an identity (shown on its card and page, and in identities.json)."""
    text = _clean_text(text, "note", MAX_NOTE_CHARS)
    with open_output(out) as (out, store):
        tracks = _identity_tracks(store, identity)
        cid = store.add_correction(_members(Kind.NOTE, [identity], tracks, label=text))
        index = _rewrite_report(out, store, stored_config(store))
        return Noted(cid, identity, index)


def confirm(out: str | Path, identity: int, examiner: str | None = None) -> Confirmed:
    """Mark an identity as confirmed by the examiner (by default the run's --examiner)."""
    with open_output(out) as (out, store):
        cfg = stored_config(store)
        who = " ".join(str(examiner if examiner is not None else cfg.report.examiner).split())[:200]
        tracks = _identity_tracks(store, identity)
        cid = store.add_correction(_members(Kind.CONFIRM, [identity], tracks, label=who))
        index = _rewrite_report(out, store, cfg)
        return Confirmed(cid, identity, who, index)


def describe_correction(c: Correction) -> str:
    """'merge 3 4 (12 sightings)', 'name 3 "guard"', 'reject 3 sighting:45' ... as the user typed it.

    >>> describe_correction(Correction.of(Kind.NAME, [3], {Role.MEMBER: [1, 2]}, label="guard"))
    'name 3 "guard" (2 sightings)'
    """
    ids = " ".join(str(i) for i in c.identities)
    kind = c.kind.value
    if c.kind == Kind.REJECT:
        return f"reject {ids} {c.ref}"
    n = len(c.tracks_in(Role.MEMBER))
    covered = f" ({n} sighting{'' if n == 1 else 's'})"
    if c.kind in (Kind.NAME, Kind.NOTE):
        return f'{kind} {ids} "{c.label or ""}"{covered}'
    if c.kind == Kind.CONFIRM:
        return f"confirm {ids}" + (f" by {c.label}" if c.label else "") + covered
    return f"{kind} {ids}{covered}"


def corrections(out: str | Path) -> Listing:
    """Every correction, oldest first: number, time (UTC), what was done, and whether it was undone."""
    with open_output(out, changes=None) as (out, store):
        return Listing(tuple(store.corrections()), store.undone_corrections(), report_stale(out))


def undo(out: str | Path, number: int) -> Undone:
    """Revert correction `number`: it stays listed (as undone) but no longer applies; regroup and rewrite."""
    with open_output(out) as (out, store):
        items = {c.id: c for c in store.corrections()}
        if number not in items:
            known = ", ".join(str(i) for i in items) or "none"
            raise WorkflowError(f"no correction {number} (known: {known}; see `vidcluster corrections OUT`)")
        if number in store.undone_corrections():
            raise WorkflowError(f"correction {number} was already undone")
        store.set_correction_undone(number, _now())
        c = items[number]
        cfg = stored_config(store)
        if KINDS[c.kind].regroups:  # the others only change the report
            assign_identities(store, cfg)
            if c.kind == Kind.REJECT:  # the identity the sighting was taken from keeps its number
                _keep_id(store, c.tracks_in(Role.OTHER), c.identities[0])
        index = _rewrite_report(out, store, cfg)
        left = len(in_force(store.corrections(), store.undone_corrections()))
        return Undone(c, _n_identities(store), left, index)

"""The investigator's commands on a finished run: recluster, name, merge, reject, move, apart,
hide, cover, note, confirm, corrections (the list) and undo.

Each command checks its input first (a `WorkflowError` of one line that names the field; nothing
is changed when it refuses), records its correction in the store (see corrections.py for how
corrections become constraints and annotations) in one place, `_apply`, regroups where the kind
says so and rewrites the report. The library never prints: each command returns a small frozen
value (outcomes.py) whose `line()` is what the CLI shows and whose `as_dict()` is its JSON form.

`out` is an output folder, or a `Case` that a long-lived caller (the web app) opened once with
`open_case`: then the commands work under the lock it holds, and with `report=False` they leave
OUT/report to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..analysis.grouping import assign_identities
from ..case import audit
from ..case.corrections import Correction, Kind, Role, in_force, load_annotations, majority
from ..case.encoder import case_encoder
from ..case.outdir import open_output, report_stale
from ..case.records import KINDS
from ..case.store import Store
from ..config import Config, IdentitiesConfig, ReportConfig, load_config
from ..errors import ConfigError, WorkflowError
from ..report import write_report
from ..types import UNMATCHED, UNMATCHED_TEXT
from ..version import __version__
from .outcomes import (
    Confirmed,
    Covered,
    Hidden,
    Listing,
    Merged,
    Moved,
    Named,
    Noted,
    Regrouped,
    Rejected,
    Separated,
    Setting,
    Undone,
    describe_correction,
)

MAX_LABEL_CHARS = 200
MAX_NOTE_CHARS = 2000
GROUPING_SETTINGS = ("algorithm", "eps", "min_samples")  # what `recluster` takes


# -- the case a command works on ----------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """An open OUT under its lock: the folder and its store. `report`: rewrite OUT/report after
    each change (False: the holder refreshes it itself)."""

    out: Path
    store: Store
    report: bool = True


@contextmanager
def open_case(out: str | Path | Case, *, report: bool = True, changes: str | None = "a correction") -> Iterator[Case]:
    """Lock OUT and open its store for the commands (a `Case` given is used as it is: its holder
    keeps the lock and says when its report is out of date). `changes`: what the command is (None
    for one that changes nothing); the report is marked out of date until it is written again."""
    if isinstance(out, Case):
        yield out
        return
    with open_output(out, changes=changes) as (path, store):
        yield Case(path, store, report)


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


def _write_report(case: Case, cfg: Config) -> Path | None:
    if not case.report:
        return None
    store = case.store
    return write_report(store, case.out, store.get_meta("last_run") or {}, cfg.report, workers=cfg.run.n_workers)


def _apply(case: Case, correction: Correction, *keep: tuple[list[int], int]) -> tuple[int, Path | None]:
    """Record one correction (the one place a correction enters the store), regroup when its kind
    steers the grouping, give the identities that hold each (tracks, id) of `keep` that id back,
    rewrite the report. Returns the correction's id and the report's index."""
    store = case.store
    cfg = stored_config(store)  # before the change: settings it refuses leave the case as it was
    cid = store.add_correction(correction)
    if KINDS[correction.kind].regroups:
        assign_identities(store, cfg)
        for tracks, wanted in keep:
            _keep_id(store, tracks, wanted)
    _log_corrections(store, cfg)
    return cid, _write_report(case, cfg)


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


def _keep_id(store: Store, tracks: list[int], wanted: int) -> None:
    """Give the identity that holds most of `tracks` the id `wanted`; an identity that holds `wanted`
    meanwhile takes the other's id in exchange (the ids the examiner worked with stay where they were)."""
    assignment = store.assignment()
    current = majority(assignment.get(t, UNMATCHED) for t in tracks)
    if wanted < 0 or current in (UNMATCHED, wanted):
        return
    swap = {current: wanted, wanted: current}
    ids = list(assignment)
    store.set_assignment(ids, [swap.get(assignment[t], assignment[t]) for t in ids])


# -- checking what the caller gave ----------------------------------------------------------------
def whole(value: Any, field: str) -> int:
    """`value` as a whole number >= 0, or a WorkflowError that names `field`.

    >>> whole(3, "id"), whole(" 4 ", "id")
    (3, 4)
    >>> whole(True, "id")
    Traceback (most recent call last):
    ...
    vidcluster.errors.WorkflowError: id: expected a whole number, got True
    """
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkflowError(f"{field}: expected a whole number, got {value!r}")
    if value < 0:
        raise WorkflowError(f"{field}: expected a whole number, got {value}")
    return int(value)


def _identity_tracks(store: Store, identity: int, field: str = "identity") -> list[int]:
    """Track ids of one current identity; WorkflowError (naming `field`) when there is no such identity."""
    assignment = store.assignment()
    tracks = sorted(t for t, i in assignment.items() if i == identity)
    if identity < 0 or not tracks:
        known = sorted({i for i in assignment.values() if i >= 0})
        hint = f"known: {', '.join(map(str, known))}" if known else "there are no identities yet"
        raise WorkflowError(f"{field}: no identity {identity} ({hint})")
    return tracks


def _not_hidden(store: Store, identity: int, field: str) -> None:
    hidden = load_annotations(store).hidden
    if identity in hidden:
        raise WorkflowError(
            f"{field}: identity {identity} is hidden (correction {hidden[identity]}; "
            f"`vidcluster undo {hidden[identity]}` shows it again)"
        )


def _clean_text(text: Any, what: str, limit: int) -> str:
    """`text` with its whitespace collapsed; WorkflowError when that is empty or longer than `limit`."""
    if not isinstance(text, str):
        raise WorkflowError(f"{what}: expected text, got {text!r}")
    text = " ".join(text.split())
    if not text:
        raise WorkflowError(f"{what}: the {what} is empty")
    if len(text) > limit:
        raise WorkflowError(f"{what}: the {what} is longer than {limit} characters")
    return text


def _n_identities(store: Store) -> int:
    return len({i for i in store.assignment().values() if i >= 0})


def _members(kind: Kind, identities: Iterable[int], tracks: Iterable[int], **fields: Any) -> Correction:
    """A correction made now that covers `tracks` as members."""
    return Correction.of(kind, identities, {Role.MEMBER: tracks}, created_utc=_now(), **fields)


# -- regrouping -----------------------------------------------------------------------------------
def _unusual(store: Store, cfg: Config, given: dict[str, Any]) -> tuple[Setting, ...]:
    """The grouping settings of `cfg` that differ from the defaults of the case's encoder."""
    default = load_config(None, {"faces": {"encoder": case_encoder(store)}}).identities
    return tuple(
        Setting(name, getattr(cfg.identities, name), getattr(default, name), given.get(name) is not None)
        for name in GROUPING_SETTINGS
        if getattr(cfg.identities, name) != getattr(default, name)
    )


def recluster(
    out: str | Path | Case,
    *,
    eps: float | None = None,
    algorithm: str | None = None,
    min_samples: int | None = None,
) -> Regrouped:
    """Group the stored faces again (no decoding); rewrite the report.

    Settings not given keep the case's: those of its last regrouping (or run). So a bare
    `recluster` after `recluster --eps 0.3` groups with 0.3 again, and says so (`Regrouped.unusual`).
    """
    given = {"eps": eps, "algorithm": algorithm, "min_samples": min_samples}
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))):
        raise WorkflowError(f"eps: expected a number, got {eps!r}")
    if min_samples is not None:
        whole(min_samples, "min_samples")
    if algorithm is not None and not isinstance(algorithm, str):
        raise WorkflowError(f"algorithm: expected a name, got {algorithm!r}")
    with open_case(out) as case:
        store = case.store
        cfg = stored_config(store, **given)
        before = store.assignment()
        _log_corrections(store, cfg)  # any left unlogged, with the count they left, before it changes
        assign_identities(store, cfg)
        run_info = dict(store.get_meta("last_run") or {})
        params = dict(run_info.get("parameters") or {})
        params["identities"] = dataclasses.asdict(cfg.identities)
        run_info["parameters"] = params
        run_info["regrouped"] = [
            *list(run_info.get("regrouped") or []),
            {"utc": _now(), "identities": params["identities"]},
        ]
        store.set_meta("last_run", run_info)
        p = cfg.identities
        _log(store, cfg, "recluster", f"regrouped with {p.algorithm}, eps {p.eps:g}, min_samples {p.min_samples}")
        index = _write_report(case, cfg)
        after = store.assignment()
        n = len({i for i in after.values() if i >= 0})
        kept = len({i for i in after.values() if i >= 0} & {i for i in before.values() if i >= 0})
        return Regrouped(p.algorithm, p.eps, p.min_samples, n, kept, index, _unusual(store, cfg, given))


# -- corrections ------------------------------------------------------------------------------------
def name(out: str | Path | Case, identity: int, label: str) -> Named:
    """Give an identity a label (shown in the report and identities.json)."""
    identity = whole(identity, "identity")
    label = _clean_text(label, "label", MAX_LABEL_CHARS)
    with open_case(out) as case:
        tracks = _identity_tracks(case.store, identity)
        cid, index = _apply(case, _members(Kind.NAME, [identity], tracks, label=label))
        return Named(identity, label, len(tracks), index, cid)


def merge(out: str | Path | Case, identities: Iterable[int]) -> Merged:
    """Declare identities one person; the first id is kept. Regroups and rewrites the report."""
    if isinstance(identities, (str, bytes)) or not isinstance(identities, Iterable):
        raise WorkflowError(f"identities: expected a list of identity ids, got {identities!r}")
    ids = list(dict.fromkeys(whole(i, "identities") for i in identities))
    if len(ids) < 2:
        raise WorkflowError("identities: merge needs at least two different identity ids")
    with open_case(out) as case:
        tracks = [t for i in ids for t in _identity_tracks(case.store, i, "identities")]
        for i in ids:
            _not_hidden(case.store, i, "identities")
        cid, index = _apply(case, _members(Kind.MERGE, ids, tracks), (tracks, ids[0]))
        return Merged(tuple(ids), len(tracks), _n_identities(case.store), index, cid)


def parse_ref(ref: Any, field: str = "ref") -> tuple[str, int]:
    """'face:123' or 'sighting:45' -> ('face', 123); WorkflowError otherwise.

    >>> parse_ref("sighting:45"), parse_ref(" Face:7 ")
    (('sighting', 45), ('face', 7))
    """
    kind, _, number = str(ref).strip().partition(":")
    kind = kind.strip().lower()
    if not isinstance(ref, str) or kind not in ("face", "sighting") or not number.strip().isdigit():
        raise WorkflowError(f"{field}: {ref!r} is not a face or sighting reference (use face:ID or sighting:ID)")
    return kind, int(number)


def _sighting(store: Store, value: Any, field: str) -> int:
    """A sighting (track) id that is in the store, or a WorkflowError naming `field`."""
    track = whole(value, field)
    if track not in store.assignment():
        raise WorkflowError(f"{field}: no sighting {track} in the store")
    return track


def reject(out: str | Path | Case, identity: int, ref: str) -> Rejected:
    """'Not this person': take a sighting (or the sighting of a face) out of an identity for good."""
    identity = whole(identity, "identity")
    kind, number = parse_ref(ref)
    with open_case(out) as case:
        store = case.store
        if kind == "face":
            track = store.face_track(number)
            if track is None:
                raise WorkflowError(f"ref: no face {number} in the store")
        else:
            track = _sighting(store, number, "ref")
        assignment = store.assignment()
        tracks = _identity_tracks(store, identity)
        if track not in tracks:
            raise WorkflowError(f"ref: {kind} {number} is not in identity {identity} (it is {_in(assignment[track])})")
        others = [t for t in tracks if t != track]
        if not others:
            raise WorkflowError(
                f"ref: sighting {track} is the only sighting of identity {identity}; nothing would be left"
            )
        correction = Correction.of(
            Kind.REJECT,
            [identity],
            {Role.REJECTED: [track], Role.OTHER: others},
            ref=f"{kind}:{number}",
            created_utc=_now(),
        )
        cid, index = _apply(case, correction, (others, identity))
        return Rejected(identity, kind, number, track, store.assignment().get(track, UNMATCHED), index, cid)


def _in(identity: int) -> str:
    return UNMATCHED_TEXT if identity == UNMATCHED else f"in identity {identity}"


def move(out: str | Path | Case, sighting: int, to: int | None) -> Moved:
    """Move one sighting out of its identity into identity `to`, or (None) into a new identity of its own.

    Later regroupings keep it there: it is kept apart from its former companions and, moved to
    an identity, grouped with that identity's sightings.
    """
    sighting = whole(sighting, "sighting")
    to = None if to is None else whole(to, "to")
    with open_case(out) as case:
        store = case.store
        track = _sighting(store, sighting, "sighting")
        source = store.assignment()[track]
        others = [] if source == UNMATCHED else [t for t in _identity_tracks(store, source) if t != track]
        if to is None:
            if source != UNMATCHED and not others:
                raise WorkflowError(f"sighting: sighting {track} is already the only sighting of identity {source}")
            target: list[int] = []
        else:
            if to == source:
                raise WorkflowError(f"to: sighting {track} is already in identity {to}")
            target = _identity_tracks(store, to, "to")
            _not_hidden(store, to, "to")
        ids = [source] + ([] if to is None else [to])
        correction = Correction.of(
            Kind.MOVE,
            ids,
            {Role.MOVED: [track], Role.OTHER: others, Role.TARGET: target},
            ref=f"sighting:{track}",
            created_utc=_now(),
        )
        keep = [(others, source)] + ([(target, to)] if to is not None else [])
        cid, index = _apply(case, correction, *keep)
        now = store.assignment().get(track, UNMATCHED)
        return Moved(track, source, to, now, _n_identities(store), index, cid)


def apart(out: str | Path | Case, a: int, b: int) -> Separated:
    """'Not the same person': identities `a` and `b` are kept apart by every later regrouping."""
    a, b = whole(a, "a"), whole(b, "b")
    if a == b:
        raise WorkflowError("b: apart needs two different identity ids")
    with open_case(out) as case:
        store = case.store
        first = _identity_tracks(store, a, "a")
        second = _identity_tracks(store, b, "b")
        correction = Correction.of(Kind.APART, [a, b], {Role.MEMBER: first, Role.APART: second}, created_utc=_now())
        cid, index = _apply(case, correction, (first, a), (second, b))
        return Separated(a, b, _n_identities(store), cid, index)


def hide(out: str | Path | Case, identity: int) -> Hidden:
    """Leave an identity (a bystander) out of the report and its exports; it stays in the store,
    is listed as hidden (index page, manifest, `corrections`), and `undo` shows it again."""
    identity = whole(identity, "identity")
    with open_case(out) as case:
        store = case.store
        tracks = _identity_tracks(store, identity)
        hidden = load_annotations(store).hidden
        if identity in hidden:
            raise WorkflowError(f"identity: identity {identity} is already hidden (correction {hidden[identity]})")
        cid, index = _apply(case, _members(Kind.HIDE, [identity], tracks))
        return Hidden(identity, len(tracks), cid, index)


def cover(out: str | Path | Case, identity: int, face: int) -> Covered:
    """Choose the face shown first for an identity (its card, its page, the static report)."""
    identity, face = whole(identity, "identity"), whole(face, "face")
    with open_case(out) as case:
        store = case.store
        tracks = _identity_tracks(store, identity)
        track = store.face_track(face)
        if track is None:
            raise WorkflowError(f"face: no face {face} in the store")
        if track not in tracks:
            raise WorkflowError(
                f"face: face {face} is not a face of identity {identity} (it is {_in(store.assignment()[track])})"
            )
        cid, index = _apply(case, _members(Kind.COVER, [identity], tracks, ref=f"face:{face}"))
        return Covered(identity, face, cid, index)


def note(out: str | Path | Case, identity: int, text: str) -> Noted:
    """Attach a note to an identity (shown on its card and page, and in identities.json)."""
    identity = whole(identity, "identity")
    text = _clean_text(text, "note", MAX_NOTE_CHARS)
    with open_case(out) as case:
        tracks = _identity_tracks(case.store, identity)
        cid, index = _apply(case, _members(Kind.NOTE, [identity], tracks, label=text))
        return Noted(cid, identity, index)


def confirm(out: str | Path | Case, identity: int, examiner: str | None = None) -> Confirmed:
    """Mark an identity as confirmed by the examiner (by default the run's --examiner)."""
    if examiner is not None and not isinstance(examiner, str):
        raise WorkflowError(f"examiner: expected text, got {examiner!r}")
    identity = whole(identity, "identity")
    with open_case(out) as case:
        cfg = stored_config(case.store)
        who = " ".join(str(examiner if examiner is not None else cfg.report.examiner).split())[:200]
        tracks = _identity_tracks(case.store, identity)
        cid, index = _apply(case, _members(Kind.CONFIRM, [identity], tracks, label=who))
        return Confirmed(cid, identity, who, index)


# -- the list of corrections, undo ------------------------------------------------------------------
def corrections(out: str | Path | Case) -> Listing:
    """Every correction, oldest first: number, time (UTC), what was done, and whether it was undone;
    then the hidden identities."""
    with open_case(out, changes=None) as case:
        store = case.store
        hidden = load_annotations(store).hidden
        return Listing(tuple(store.corrections()), store.undone_corrections(), hidden, report_stale(case.out))


def undo(out: str | Path | Case, number: int) -> Undone:
    """Revert correction `number`: it stays listed (as undone) but no longer applies; the case is
    grouped as if it had never been made, and the report rewritten."""
    number = whole(number, "n")
    with open_case(out) as case:
        store = case.store
        items = {c.id: c for c in store.corrections()}
        if number not in items:
            known = ", ".join(str(i) for i in items) or "none"
            raise WorkflowError(f"n: no correction {number} (known: {known}; see `vidcluster corrections OUT`)")
        if number in store.undone_corrections():
            raise WorkflowError(f"n: correction {number} was already undone")
        cfg = stored_config(store)  # before the change, as in `_apply`
        store.set_correction_undone(number, _now())
        c = items[number]
        if KINDS[c.kind].regroups:  # the others only change the report
            assign_identities(store, cfg)
            if c.kind == Kind.REJECT:  # the identity the sighting was taken from keeps its number
                _keep_id(store, c.tracks_in(Role.OTHER), c.identities[0])
            if c.kind == Kind.MOVE:  # ... and so does the one a moved sighting came from
                _keep_id(store, [*c.tracks_in(Role.OTHER), *c.tracks_in(Role.MOVED)], c.identities[0])
        _log_corrections(store, cfg)
        index = _write_report(case, cfg)
        left = len(in_force(store.corrections(), store.undone_corrections()))
        return Undone(c, _n_identities(store), left, index)

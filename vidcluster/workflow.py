"""The investigator's commands on a finished run: recluster, name, merge, reject.

Each command locks OUT, records its correction in the store (see corrections.py for how
corrections become constraints and annotations), regroups where needed and rewrites the
report. The library never prints: each command returns the one line the CLI shows.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .config import Config, IdentitiesConfig, ReportConfig, load_config
from .corrections import NOISE, majority
from .errors import ConfigError, WorkflowError
from .grouping import assign_identities
from .outdir import open_output
from .report import write_report
from .store import Store


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
    try:
        return load_config(None, sections)
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None


def _regroup_and_report(out: Path, store: Store, cfg: Config) -> Path:
    """Group again with `cfg` (corrections applied), record the parameters, rewrite the report."""
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
        assign_identities(store, cfg)
        _keep_id(store, tracks, ids[0])
        index = _rewrite_report(out, store, cfg)
        return (f"merged identities {', '.join(map(str, ids))} into identity {ids[0]} ({len(tracks)} sightings); "
                f"{_n_identities(store)} identities -> {index}")


def _keep_id(store: Store, tracks: list[int], wanted: int) -> None:
    """Give the identity that holds `tracks` the id `wanted`, when that id is free or already its own."""
    assignment = store.assignment()
    current = majority(assignment.get(t, NOISE) for t in tracks)
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
        assign_identities(store, cfg)
        index = _rewrite_report(out, store, cfg)
        now = store.assignment().get(track, NOISE)
        where = "unmatched" if now == NOISE else f"identity {now}"
        what = f"sighting {track}" if kind == "sighting" else f"face {number} (sighting {track})"
        return f"{what} rejected from identity {identity}; it is now {where} -> {index}"

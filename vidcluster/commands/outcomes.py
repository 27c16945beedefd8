"""What the investigator's commands return: small frozen values, one per command.

`line()` (or `lines()`) is the text the CLI shows; `as_dict()` is the same value as plain JSON
types (paths as text, kinds as their stored text), for a caller that answers over HTTP.
`report` is the rewritten OUT/report/index.html, or None when the caller keeps the report itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ..case.records import Correction, Kind, Role
from ..types import UNMATCHED, UNMATCHED_TEXT


def plain(value: Any) -> Any:
    """`value` as JSON types: paths and kinds as text, tuples as lists, corrections as their manifest form.

    >>> plain({"at": Path("/x"), "kind": Kind.MERGE, "ids": (1, 2)})
    {'at': '/x', 'kind': 'merge', 'ids': [1, 2]}
    """
    if isinstance(value, Correction):
        return {"id": value.id, **value.as_dict()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


class Outcome:
    """What every command's value shares: its text and its JSON form."""

    def lines(self) -> list[str]:
        return [self.line()]

    def line(self) -> str:
        return "\n".join(self.lines())

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON types, plus `command` (what it was) and `message` (what the CLI prints)."""
        fields = plain(self)
        assert isinstance(fields, dict)
        return {"command": type(self).__name__.lower(), **fields, "message": self.lines()}


def _to(report: Path | None) -> str:
    return f" -> {report}" if report is not None else ""


@dataclass(frozen=True)
class Setting:
    """One grouping setting of a recluster: its value, the default, and whether it was given this time."""

    name: str
    value: Any
    default: Any
    given: bool

    @property
    def text(self) -> str:
        """'eps 0.3 (default 1.12, given now)'."""
        origin = "given now" if self.given else "kept from before"
        return f"{self.name.replace('_', '-')} {_shown(self.value)} (default {_shown(self.default)}, {origin})"


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Regrouped(Outcome):
    """recluster: the parameters used, how many identities there are and how many kept their id."""

    algorithm: str
    eps: float
    min_samples: int
    identities: int
    kept: int
    report: Path | None
    unusual: tuple[Setting, ...] = ()  # the settings that are not the defaults of the case's encoder

    def settings_line(self) -> str | None:
        """One line naming the settings that are not the defaults, or None when all are."""
        if not self.unusual:
            return None
        return "using settings that are not the defaults: " + "; ".join(s.text for s in self.unusual)

    def lines(self) -> list[str]:
        note = self.settings_line()
        return ([note] if note else []) + [
            f"regrouped with {self.algorithm}, eps {self.eps:g}, min_samples {self.min_samples}: "
            f"{self.identities} identities ({self.kept} kept their id){_to(self.report)}"
        ]


@dataclass(frozen=True)
class Named(Outcome):
    identity: int
    label: str
    sightings: int
    report: Path | None
    correction: int = 0

    def line(self) -> str:
        return f"identity {self.identity} is now labelled {self.label!r} ({self.sightings} sightings){_to(self.report)}"


@dataclass(frozen=True)
class Merged(Outcome):
    merged: tuple[int, ...]  # the ids given; the first is kept
    sightings: int
    identities: int  # identities after the merge
    report: Path | None
    correction: int = 0

    def line(self) -> str:
        return (
            f"merged identities {', '.join(map(str, self.merged))} into identity {self.merged[0]} "
            f"({self.sightings} sightings); {self.identities} identities{_to(self.report)}"
        )


def _where(identity: int) -> str:
    return UNMATCHED_TEXT if identity == UNMATCHED else f"identity {identity}"


@dataclass(frozen=True)
class Rejected(Outcome):
    identity: int
    ref_kind: str  # 'face' | 'sighting': what the user pointed at
    ref_number: int
    track: int
    now: int  # where the sighting is after regrouping (UNMATCHED: nowhere)
    report: Path | None
    correction: int = 0

    def line(self) -> str:
        what = (
            f"sighting {self.track}"
            if self.ref_kind == "sighting"
            else f"face {self.ref_number} (sighting {self.track})"
        )
        return f"{what} rejected from identity {self.identity}; it is now {_where(self.now)}{_to(self.report)}"


@dataclass(frozen=True)
class Moved(Outcome):
    """move: sighting `sighting` went from identity `source` (UNMATCHED: none) to `to` (None: a new one)."""

    sighting: int
    source: int
    to: int | None
    now: int  # the identity that holds it after regrouping
    identities: int
    report: Path | None
    correction: int = 0

    def line(self) -> str:
        asked = "a new identity" if self.to is None else f"identity {self.to}"
        return (
            f"sighting {self.sighting} moved from {_where(self.source)} to {asked}; it is now in "
            f"{_where(self.now)}; {self.identities} identities{_to(self.report)}"
        )


@dataclass(frozen=True)
class Hidden(Outcome):
    identity: int
    sightings: int
    correction: int
    report: Path | None

    def line(self) -> str:
        return (
            f"identity {self.identity} ({self.sightings} sightings) is hidden from the report and its exports "
            f"(correction {self.correction}; `vidcluster undo {self.correction}` shows it again){_to(self.report)}"
        )


@dataclass(frozen=True)
class Covered(Outcome):
    identity: int
    face: int
    correction: int
    report: Path | None

    def line(self) -> str:
        return f"face {self.face} is now the cover of identity {self.identity}{_to(self.report)}"


@dataclass(frozen=True)
class Separated(Outcome):
    """apart: identities `first` and `second` are kept apart; where they are after regrouping."""

    first: int
    second: int
    identities: int
    correction: int
    report: Path | None

    def line(self) -> str:
        return (
            f"identities {self.first} and {self.second} are kept apart as two people; "
            f"{self.identities} identities{_to(self.report)}"
        )


@dataclass(frozen=True)
class Noted(Outcome):
    correction: int
    identity: int
    report: Path | None

    def line(self) -> str:
        return f"note {self.correction} added to identity {self.identity}{_to(self.report)}"


@dataclass(frozen=True)
class Confirmed(Outcome):
    correction: int
    identity: int
    examiner: str  # '' when nobody is named
    report: Path | None

    def line(self) -> str:
        by = f" by {self.examiner}" if self.examiner else ""
        return (
            f"identity {self.identity} confirmed{by} (correction {self.correction}; "
            f"`vidcluster undo` takes it back){_to(self.report)}"
        )


@dataclass(frozen=True)
class Listing(Outcome):
    """corrections: every correction, oldest first, with when each undone one was undone."""

    items: tuple[Correction, ...]
    undone: Mapping[int, str]  # correction id -> when it was undone (ISO 8601 UTC)
    hidden: Mapping[int, int] = dataclasses.field(default_factory=dict)  # hidden identity -> its hide correction
    stale: str | None = None  # why the report is out of date (a command killed before rewriting it)

    def lines(self) -> list[str]:
        if not self.items:
            return ["no corrections yet"]
        out = []
        for c in self.items:
            when = str(c.created_utc)[:19].replace("T", " ")
            gone = f"  [undone {self.undone[c.id][:19].replace('T', ' ')} UTC]" if c.id in self.undone else ""
            out.append(f"{c.id:>4}  {when} UTC  {describe_correction(c)}{gone}")
        if self.hidden:
            shown = ", ".join(f"{i} (undo {c})" for i, c in sorted(self.hidden.items()))
            out.append(f"hidden identities: {shown}")
        return out


@dataclass(frozen=True)
class Undone(Outcome):
    correction: Correction
    identities: int
    in_force: int  # corrections still in force
    report: Path | None

    def line(self) -> str:
        return (
            f"undone {self.correction.id}: {describe_correction(self.correction)}; {self.identities} identities, "
            f"{self.in_force} correction(s) in force{_to(self.report)}"
        )


def describe_correction(c: Correction) -> str:
    """'merge 3 4 (12 sightings)', 'name 3 "guard"', 'reject 3 sighting:45' ... as the user typed it.

    >>> describe_correction(Correction.of(Kind.NAME, [3], {Role.MEMBER: [1, 2]}, label="guard"))
    'name 3 "guard" (2 sightings)'
    >>> describe_correction(Correction.of(Kind.MOVE, [3], {Role.MOVED: [7], Role.OTHER: [1]}, ref="sighting:7"))
    'move 7 from 3 --to new'
    """
    ids = " ".join(str(i) for i in c.identities)
    kind = c.kind.value
    if c.kind == Kind.REJECT:
        return f"reject {ids} {c.ref}"
    if c.kind == Kind.MOVE:
        moved = " ".join(str(t) for t in c.tracks_in(Role.MOVED))
        to = str(c.identities[1]) if len(c.identities) > 1 else "new"
        return f"move {moved} from {c.identities[0]} --to {to}"
    if c.kind == Kind.COVER:
        return f"cover {ids} {str(c.ref or '').partition(':')[2]}"
    if c.kind == Kind.APART:
        return f"apart {ids}"
    n = len(c.tracks_in(Role.MEMBER))
    covered = f" ({n} sighting{'' if n == 1 else 's'})"
    if c.kind in (Kind.NAME, Kind.NOTE):
        return f'{kind} {ids} "{c.label or ""}"{covered}'
    if c.kind == Kind.CONFIRM:
        return f"confirm {ids}" + (f" by {c.label}" if c.label else "") + covered
    return f"{kind} {ids}{covered}"

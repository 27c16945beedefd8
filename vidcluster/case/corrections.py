"""The investigator's corrections as a pure model: constraints for grouping, annotations for the report.

Corrections (name, merge, reject, and the examiner's note and confirm marks) are stored against the tracks (sightings) an identity covered
when the user made them, never against identity ids, because ids may move when faces are
regrouped. After every grouping they are resolved again: a label or a merge belongs to the
identity that now holds most of its tracks; a rejection belongs to the identity that holds most
of the rejected track's former companions.

How they steer the grouping (`Constraints`, used by `grouping.assign_identities`):
- merge: every track of the merged identities is must-linked to the others; the group always
  ends up as one identity.
- reject: the rejected track is cannot-linked to the identity's other tracks; afterwards it is
  also forced out of that identity if it landed there anyway (tracks that do not steer the
  clustering are attached to their nearest identity later).
Newer corrections win over older ones: a merge cancels older rejections between its tracks,
and a rejection takes the track out of older merges. A correction that `vidcluster undo`
reverted is kept in the store (and listed) but steers nothing any more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import UNMATCHED
from .records import Correction, Kind, Role
from .store import Store


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


def constraints_from(corrections: Iterable[Correction]) -> Constraints:
    """Replay corrections oldest first into disjoint must-link groups and rejections.

    >>> c = constraints_from([
    ...     Correction.of(Kind.MERGE, [], {Role.MEMBER: [1, 2, 3]}, id=1),
    ...     Correction.of(Kind.REJECT, [], {Role.REJECTED: [3], Role.OTHER: [1, 2]}, id=2),
    ... ])
    >>> sorted(map(sorted, c.groups)), c.cannot_pairs()
    ([[1, 2]], [(3, 1), (3, 2)])
    """
    groups: list[set[int]] = []
    rejections: list[tuple[int, int, set[int]]] = []
    for c in corrections:
        if c.kind == Kind.MERGE:
            members = set(c.tracks_in(Role.MEMBER))
            if not members:
                continue
            touching = [g for g in groups if g & members]
            joined = members.union(*touching)
            groups = [g for g in groups if not (g & members)] + [joined]
            for _, r, others in rejections:  # a newer merge overrides older rejections inside it
                if r in joined:
                    others -= joined
        elif c.kind == Kind.REJECT:
            others = set(c.tracks_in(Role.OTHER))
            for r in c.tracks_in(Role.REJECTED):
                for g in groups:  # a newer rejection takes the track out of older merges
                    g.discard(r)
                rejections.append((c.id, r, others - {r}))
    return Constraints(
        groups=tuple(frozenset(g) for g in groups if len(g) > 1),
        rejections=tuple(Rejection(cid, r, frozenset(o)) for cid, r, o in rejections if o),
    )


def in_force(corrections: Iterable[Correction], undone: Iterable[int]) -> list[Correction]:
    """The corrections that were not undone, oldest first.

    >>> [c.id for c in in_force([Correction(Kind.NOTE, (), id=i) for i in (1, 2, 3)], {2})]
    [1, 3]
    """
    gone = set(undone)
    return [c for c in corrections if c.id not in gone]


def load_constraints(store: Store) -> Constraints:
    return constraints_from(in_force(store.corrections(), store.undone_corrections()))


def majority(labels: Iterable[int]) -> int:
    """Most common non-noise label (ties: the lowest), or -1 when there is none."""
    counts = Counter(int(x) for x in labels if int(x) != UNMATCHED)
    if not counts:
        return UNMATCHED
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
        lab = majority(out[rows])
        if lab == UNMATCHED:
            lab, next_label = next_label, next_label + 1
        out[rows] = lab
    for r in cons.rejections:
        if r.track not in row:
            continue
        lab = majority(out[[row[t] for t in r.others if t in row]])
        if lab != UNMATCHED and out[row[r.track]] == lab:
            out[row[r.track]] = UNMATCHED
    return out


# -- resolving corrections for the report ---------------------------------------------------
@dataclass(frozen=True)
class Note:
    """A line the examiner attached to an identity: `text` (a note, or who confirmed), `created_utc`."""

    text: str
    created_utc: str


@dataclass
class Annotations:
    """What the report shows about corrections, keyed by current identity id."""

    labels: dict[int, str] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)  # the corrections that shaped it, in words
    texts: dict[int, list[Note]] = field(default_factory=dict)  # the examiner's notes only
    confirmed: dict[int, Note] = field(default_factory=dict)  # identity -> who confirmed it, when
    rejected: dict[int, list[int]] = field(default_factory=dict)  # identity -> rejected track ids
    corrections: list[dict[str, Any]] = field(default_factory=list)  # for the manifest (Correction.as_dict)


def resolve(corrections: Iterable[Correction], assignment: dict[int, int]) -> Annotations:
    """Place every correction on the identity that now holds most of its tracks.

    >>> a = resolve([Correction.of(Kind.NAME, [4], {Role.MEMBER: [10, 11]}, label="Guard", created_utc="t")],
    ...             {10: 2, 11: 2})
    >>> a.labels
    {2: 'Guard'}
    """
    ann = Annotations()
    for c in corrections:
        ann.corrections.append(c.as_dict())
        holder = Role.OTHER if c.kind == Kind.REJECT else Role.MEMBER  # a rejection sits with the companions
        ident = majority(assignment.get(t, UNMATCHED) for t in c.tracks_in(holder))
        if ident != UNMATCHED:
            _PLACE[c.kind](ann, ident, c)
    return ann


def _when(c: Correction) -> str:
    return str(c.created_utc)[:19].replace("T", " ")


def _place_name(ann: Annotations, ident: int, c: Correction) -> None:
    ann.labels[ident] = str(c.label)  # newer names replace older ones


def _place_merge(ann: Annotations, ident: int, c: Correction) -> None:
    ids = ", ".join(str(i) for i in c.identities)
    ann.notes.setdefault(ident, []).append(f"Merged by hand from identities {ids} ({_when(c)} UTC).")


def _place_note(ann: Annotations, ident: int, c: Correction) -> None:
    ann.texts.setdefault(ident, []).append(Note(str(c.label or ""), str(c.created_utc)))


def _place_confirm(ann: Annotations, ident: int, c: Correction) -> None:
    ann.confirmed[ident] = Note(str(c.label or ""), str(c.created_utc))  # a newer confirmation replaces an older one


def _place_reject(ann: Annotations, ident: int, c: Correction) -> None:
    via = f" (via {c.ref})" if str(c.ref or "").startswith("face:") else ""
    for t in c.tracks_in(Role.REJECTED):
        ann.rejected.setdefault(ident, []).append(int(t))
        ann.notes.setdefault(ident, []).append(
            f"Sighting {t}{via} rejected by hand as not this person ({_when(c)} UTC)."
        )


# How each kind shows in the report, on the identity that now holds it.
_PLACE = {
    Kind.NAME: _place_name,
    Kind.MERGE: _place_merge,
    Kind.NOTE: _place_note,
    Kind.CONFIRM: _place_confirm,
    Kind.REJECT: _place_reject,
}


def load_annotations(store: Store) -> Annotations:
    """Annotations of the corrections in force (undone ones are left out)."""
    return resolve(in_force(store.corrections(), store.undone_corrections()), store.assignment())

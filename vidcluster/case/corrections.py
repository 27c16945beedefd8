"""The investigator's corrections as a pure model: constraints for grouping, annotations for the report.

Corrections (name, merge, reject, move, apart, hide, cover, and the examiner's note and confirm
marks; `records.KINDS` lists them) are stored against the tracks (sightings) an identity covered
when the user made them, never against identity ids, because ids may move when faces are
regrouped. After every grouping they are resolved again: a label, a mark or a merge belongs to
the identity that now holds most of its tracks; a rejection belongs to the identity that holds
most of the rejected track's former companions; a move to the identity that now holds the moved
track.

How they steer the grouping (`Constraints`, used by `grouping.assign_identities`):
- merge: every track of the merged identities is must-linked to the others; the group always
  ends up as one identity.
- reject: the rejected track is cannot-linked to the identity's other tracks; afterwards it is
  also forced out of that identity if it landed there anyway (tracks that do not steer the
  clustering are attached to their nearest identity later).
- move: a rejection of the moved track from its identity, plus a merge with the tracks of the
  identity it was moved to; moved to a new identity, it stays an identity of its own.
- apart: every track of one identity is cannot-linked to every track of the other, and when
  both still end up with one label, the second one's tracks are given a new one.
Newer corrections win over older ones: a merge cancels older rejections and separations between
its tracks, and a rejection (or move) takes the track out of older merges; an apart takes the
second identity's tracks out of older merges that joined the two. A correction that
`vidcluster undo` reverted is kept in the store (and listed) but steers nothing any more, and a
rejection or move made inside an identity that an undone merge (or move) had formed no longer
keeps its track apart from the tracks that merge had joined: had the merge never been made, the
rejection would not have been made on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import UNMATCHED
from .records import KINDS, Correction, Kind, Role
from .store import Store


# -- constraints from corrections -------------------------------------------------------------
@dataclass(frozen=True)
class Rejection:
    """Track `track` is not the person of the tracks in `others` (their identity at the time)."""

    correction_id: int
    track: int
    others: frozenset[int]


@dataclass(frozen=True)
class Separation:
    """The tracks in `first` and those in `second` are two people (an apart)."""

    correction_id: int
    first: frozenset[int]
    second: frozenset[int]


@dataclass(frozen=True)
class Constraints:
    """The user's corrections as track-level constraints (track ids, not row indexes)."""

    groups: tuple[frozenset[int], ...] = ()  # each group is one person (merges, moves)
    rejections: tuple[Rejection, ...] = ()
    separations: tuple[Separation, ...] = ()
    alone: frozenset[int] = frozenset()  # tracks moved to an identity of their own

    def cannot_pairs(self) -> list[tuple[int, int]]:
        taken = [(r.track, o) for r in self.rejections for o in sorted(r.others)]
        return taken + [(a, b) for s in self.separations for a in sorted(s.first) for b in sorted(s.second)]

    def group_of(self) -> dict[int, int]:
        return {t: k for k, g in enumerate(self.groups) for t in g}

    def __bool__(self) -> bool:
        return bool(self.groups or self.rejections or self.separations or self.alone)


def joined_by(c: Correction) -> set[int]:
    """The tracks a correction declares one person (a merge's members, a move's track and target)."""
    if c.kind == Kind.MERGE:
        return set(c.tracks_in(Role.MEMBER))
    if c.kind == Kind.MOVE and c.tracks_in(Role.TARGET):
        return set(c.tracks_in(Role.MOVED) + c.tracks_in(Role.TARGET))
    return set()


@dataclass
class _Replay:
    """The constraints while corrections are replayed, oldest first (mutable; `Constraints` is the result)."""

    groups: list[set[int]] = field(default_factory=list)
    rejections: list[tuple[int, int, set[int]]] = field(default_factory=list)
    separations: list[tuple[int, set[int], set[int]]] = field(default_factory=list)
    alone: set[int] = field(default_factory=set)

    def join(self, members: set[int]) -> None:
        touching = [g for g in self.groups if g & members]
        joined = members.union(*touching)
        self.groups = [g for g in self.groups if not (g & members)] + [joined]
        for _, r, others in self.rejections:  # a newer merge overrides older rejections inside it
            if r in joined:
                others -= joined
        for _, first, second in self.separations:  # ... and older separations across it
            if joined & first and joined & second:
                (first if len(joined & first) <= len(joined & second) else second).difference_update(joined)
        self.alone -= joined

    def take_out(self, cid: int, track: int, others: set[int]) -> None:
        for g in self.groups:  # a newer rejection takes the track out of older merges
            g.discard(track)
        self.alone.discard(track)
        self.rejections.append((cid, track, others - {track}))

    def separate(self, cid: int, first: set[int], second: set[int]) -> None:
        for g in self.groups:  # a newer apart takes the second identity out of older merges with the first
            if g & first and g & second:
                g -= second
        self.separations.append((cid, first - second, second - first))

    def result(self) -> Constraints:
        return Constraints(
            groups=tuple(frozenset(g) for g in self.groups if len(g) > 1),
            rejections=tuple(Rejection(cid, r, frozenset(o)) for cid, r, o in self.rejections if o),
            separations=tuple(Separation(cid, frozenset(a), frozenset(b)) for cid, a, b in self.separations if a and b),
            alone=frozenset(self.alone),
        )


def constraints_from(corrections: Iterable[Correction], undone: Mapping[int, int] | None = None) -> Constraints:
    """Replay corrections oldest first into disjoint must-link groups, rejections and separations.

    `undone`: {id: the newest correction id when it was undone} (`Store.undo_order`); those
    corrections steer nothing, and a rejection or move made while an undone merge applied, of a
    track that merge had joined, forgets the tracks the merge had joined.

    >>> c = constraints_from([
    ...     Correction.of(Kind.MERGE, [], {Role.MEMBER: [1, 2, 3]}, id=1),
    ...     Correction.of(Kind.REJECT, [], {Role.REJECTED: [3], Role.OTHER: [1, 2]}, id=2),
    ... ])
    >>> sorted(map(sorted, c.groups)), c.cannot_pairs()
    ([[1, 2]], [(3, 1), (3, 2)])
    >>> constraints_from([
    ...     Correction.of(Kind.MERGE, [], {Role.MEMBER: [1, 2, 3]}, id=1),
    ...     Correction.of(Kind.REJECT, [], {Role.REJECTED: [2], Role.OTHER: [1, 3]}, id=2),
    ... ], undone={1: 2})
    Constraints(groups=(), rejections=(), separations=(), alone=frozenset())
    """
    undone = dict(undone or {})
    items = list(corrections)
    withdrawn = [(c.id, undone[c.id], joined_by(c)) for c in items if c.id in undone]
    state = _Replay()
    for c in items:
        if c.id in undone:
            continue
        if c.kind == Kind.MERGE:
            members = set(c.tracks_in(Role.MEMBER))
            if members:
                state.join(members)
        elif c.kind in (Kind.REJECT, Kind.MOVE):
            out_role = Role.REJECTED if c.kind == Kind.REJECT else Role.MOVED
            for r in c.tracks_in(out_role):
                others = set(c.tracks_in(Role.OTHER))
                for wid, after, joined in withdrawn:  # made inside a merge that is undone now
                    if wid < c.id <= after and r in joined:
                        others -= joined
                state.take_out(c.id, r, others)
                if c.kind == Kind.MOVE:
                    target = set(c.tracks_in(Role.TARGET))
                    if target:
                        state.join({r} | target)
                    else:
                        state.alone.add(r)
        elif c.kind == Kind.APART:
            state.separate(c.id, set(c.tracks_in(Role.MEMBER)), set(c.tracks_in(Role.APART)))
    return state.result()


def in_force(corrections: Iterable[Correction], undone: Iterable[int]) -> list[Correction]:
    """The corrections that were not undone, oldest first.

    >>> [c.id for c in in_force([Correction(Kind.NOTE, (), id=i) for i in (1, 2, 3)], {2})]
    [1, 3]
    """
    gone = set(undone)
    return [c for c in corrections if c.id not in gone]


def load_constraints(store: Store) -> Constraints:
    """The constraints of every correction in the store (the undone ones as `constraints_from` says)."""
    return constraints_from(store.corrections(), store.undo_order())


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
    becomes unmatched. A track moved to an identity of its own gets a label nobody else has.
    A separation's second side gives up the first side's majority label: its tracks that hold it
    join the rest of the second side (a new label when there is none).

    >>> cons = Constraints(groups=(frozenset({1, 2}),), rejections=(Rejection(9, 3, frozenset({4, 5})),))
    >>> enforce(cons, np.array([1, 2, 3, 4, 5]), np.array([0, 1, 2, 2, 2])).tolist()
    [0, 0, -1, 2, 2]
    >>> cons = Constraints(separations=(Separation(9, frozenset({1, 2}), frozenset({3})),), alone=frozenset({4}))
    >>> enforce(cons, np.array([1, 2, 3, 4, 5]), np.array([0, 0, 0, 1, 1])).tolist()
    [0, 0, 3, 2, 1]
    """
    out = np.asarray(labels, np.int64).copy()
    row = {int(t): i for i, t in enumerate(np.asarray(track_ids).tolist())}
    fresh = iter(range(int(out.max()) + 1 if len(out) else 0, 1 << 62))
    for g in cons.groups:
        rows = [row[t] for t in g if t in row]
        if len(rows) < 1:
            continue
        lab = majority(out[rows])
        out[rows] = next(fresh) if lab == UNMATCHED else lab
    for r in cons.rejections:
        if r.track not in row:
            continue
        lab = majority(out[[row[t] for t in r.others if t in row]])
        if lab != UNMATCHED and out[row[r.track]] == lab:
            out[row[r.track]] = UNMATCHED
    counts = Counter(out.tolist())
    for t in sorted(cons.alone):
        if t in row and (out[row[t]] == UNMATCHED or counts[int(out[row[t]])] > 1):
            counts[int(out[row[t]])] -= 1
            out[row[t]] = next(fresh)
    for s in cons.separations:
        first = majority(out[[row[t] for t in s.first if t in row]])
        rows = [row[t] for t in s.second if t in row and out[row[t]] == first]
        if first == UNMATCHED or not rows:
            continue
        second = majority(out[[row[t] for t in s.second if t in row and out[row[t]] != first]])
        out[rows] = next(fresh) if second == UNMATCHED else second
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
    hidden: dict[int, int] = field(default_factory=dict)  # identity -> the hide correction's id
    cover: dict[int, int] = field(default_factory=dict)  # identity -> the face id chosen to show first
    corrections: list[dict[str, Any]] = field(default_factory=list)  # for the manifest (Correction.as_dict)


def resolve(corrections: Iterable[Correction], assignment: Mapping[int, int]) -> Annotations:
    """Place every correction on the identity that now holds most of its tracks (`KindInfo.holder`).

    >>> a = resolve([Correction.of(Kind.NAME, [4], {Role.MEMBER: [10, 11]}, label="Guard", created_utc="t")],
    ...             {10: 2, 11: 2})
    >>> a.labels
    {2: 'Guard'}
    """
    ann = Annotations()
    sizes = Counter(assignment.values())
    for c in corrections:
        ann.corrections.append(c.as_dict())
        ident = majority(assignment.get(t, UNMATCHED) for t in c.tracks_in(KINDS[c.kind].holder))
        if ident != UNMATCHED:
            _PLACE[c.kind](ann, ident, c, _Held(assignment, sizes))
    return ann


@dataclass(frozen=True)
class _Held:
    """The current assignment (track id -> identity) and the size of each identity, for placing a correction."""

    assignment: Mapping[int, int]
    sizes: Mapping[int, int]

    def share(self, tracks: Iterable[int], ident: int) -> float:
        """The part of identity `ident`'s tracks that are among `tracks`."""
        mine = sum(1 for t in tracks if self.assignment.get(t, UNMATCHED) == ident)
        return mine / max(1, self.sizes.get(ident, 0))


def _when(c: Correction) -> str:
    return str(c.created_utc)[:19].replace("T", " ")


def _place_name(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    ann.labels[ident] = str(c.label)  # newer names replace older ones


def _place_merge(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    ids = ", ".join(str(i) for i in c.identities)
    ann.notes.setdefault(ident, []).append(f"Merged by hand from identities {ids} ({_when(c)} UTC).")


def _place_note(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    ann.texts.setdefault(ident, []).append(Note(str(c.label or ""), str(c.created_utc)))


def _place_confirm(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    ann.confirmed[ident] = Note(str(c.label or ""), str(c.created_utc))  # a newer confirmation replaces an older one


def _place_reject(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    via = f" (via {c.ref})" if str(c.ref or "").startswith("face:") else ""
    for t in c.tracks_in(Role.REJECTED):
        ann.rejected.setdefault(ident, []).append(int(t))
        ann.notes.setdefault(ident, []).append(
            f"Sighting {t}{via} rejected by hand as not this person ({_when(c)} UTC)."
        )


def _place_move(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    where = f"identity {c.identities[1]}" if len(c.identities) > 1 else "a new identity"
    came = "the unmatched sightings" if c.identities[0] == UNMATCHED else f"identity {c.identities[0]}"
    for t in c.tracks_in(Role.MOVED):
        ann.notes.setdefault(ident, []).append(f"Sighting {t} moved by hand from {came} to {where} ({_when(c)} UTC).")


def _place_hide(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    # only while the hidden tracks are most of the identity: a bystander merged into a bigger one does not hide it
    if held.share(c.tracks_in(Role.MEMBER), ident) > 0.5:
        ann.hidden[ident] = c.id


def _place_cover(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    kind, _, number = str(c.ref or "").partition(":")
    if kind == "face" and number.isdigit():
        ann.cover[ident] = int(number)  # a newer choice replaces an older one; the report checks it is still here


def _place_apart(ann: Annotations, ident: int, c: Correction, held: _Held) -> None:
    other = majority(held.assignment.get(t, UNMATCHED) for t in c.tracks_in(Role.APART))
    for a, b in ((ident, other), (other, ident)):
        if a != UNMATCHED and b != UNMATCHED and a != b:
            ann.notes.setdefault(a, []).append(
                f"Kept apart by hand from identity {b}: not the same person ({_when(c)} UTC)."
            )


# How each kind shows in the report, on the identity that now holds it.
_PLACE = {
    Kind.NAME: _place_name,
    Kind.MERGE: _place_merge,
    Kind.NOTE: _place_note,
    Kind.CONFIRM: _place_confirm,
    Kind.REJECT: _place_reject,
    Kind.MOVE: _place_move,
    Kind.HIDE: _place_hide,
    Kind.COVER: _place_cover,
    Kind.APART: _place_apart,
}


def load_annotations(store: Store) -> Annotations:
    """Annotations of the corrections in force (undone ones are left out)."""
    return resolve(in_force(store.corrections(), store.undone_corrections()), store.assignment())

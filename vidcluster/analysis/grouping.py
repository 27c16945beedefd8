"""Identities over the store: cluster the tracks of a run, honour the user's corrections, keep ids.

Used after every `run` and by the workflow commands (recluster, name, merge, reject).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..case.blobs import members_key
from ..case.corrections import Constraints, enforce, load_constraints
from ..case.records import FileInfo, StoredTrack
from ..case.store import Store
from ..config import Config
from ..errors import StoreError
from .identities import cluster, mean_noise, stable_ids
from .neighbours import nearest
from .tracks import cannot_link_pairs


def assign_identities(store: Store, cfg: Config) -> None:
    """Cluster the steering tracks, attach the others to the nearest identity, keep old ids.

    The user's corrections (corrections.py) take part: merges are must-links, rejections are
    cannot-links, and both are enforced on the final labels. When the store already holds an
    assignment, identity ids carry over (`identities.stable_ids`, keyed by track id); a group
    of tracks that held an id before (`Store.remembered_identities`) gets that id back.
    """
    rows = store.tracks()
    if not rows:
        store.set_assignment([], [])
        return
    previous = store.assignment()
    cons = load_constraints(store)
    table = _TrackTable.of(rows)
    cannot, must = _constraint_rows(table, cons)
    labels = np.full(len(rows), -1, np.int64)
    n_faces = np.array([r.n_faces for r in rows], np.float64)
    encoded = store.encoded_counts()
    n_averaged = np.array(
        [min(max(encoded.get(int(t), 1), 1), cfg.tracks.max_encodings) for t in table.ids], np.float64
    )
    steer = table.steer
    noise = _track_noise(store, table, n_averaged)
    labels[steer] = cluster(
        table.emb[steer],
        cfg.identities,
        cannot,
        must,
        weights=n_faces[steer],
        counts=n_averaged[steer],
        noise=noise[steer],
    )
    _attach_to_nearest(table, labels, cfg.identities.eps)
    if cons:
        labels = enforce(cons, table.ids, labels)
    files = {f.id: f for f in store.footage()}
    labels = _stable_labels(table.ids, labels, table.spans, [files[r.footage_id] for r in rows])
    labels = _carry_ids(store, previous, table.ids, labels)
    store.set_assignment(table.ids.tolist(), labels.tolist())


@dataclass(frozen=True)
class _TrackTable:
    """The stored tracks as parallel arrays (M rows), and which of them steer the clustering.

    ids (M,) track ids; feed (M,) footage ids; spans (M, 2) start/end seconds; has_emb (M,);
    steer (M,) steering and encoded; emb (M, D) (NaN rows without a descriptor); index_of (M,)
    row among the steering tracks (-1: not steering); row_of {track id: row}.
    """

    ids: np.ndarray
    feed: np.ndarray
    spans: np.ndarray
    has_emb: np.ndarray
    steer: np.ndarray
    emb: np.ndarray
    index_of: np.ndarray
    row_of: dict[int, int]

    @classmethod
    def of(cls, rows: list[StoredTrack]) -> _TrackTable:
        ids = np.array([r.id for r in rows], np.int64)
        has_emb = np.array([r.embedding is not None for r in rows])
        steer = np.array([r.steer for r in rows]) & has_emb
        dims = {len(r.embedding) for r in rows if r.embedding is not None}
        if len(dims) > 1:
            raise StoreError(f"sighting descriptors of different sizes in one case ({sorted(dims)}): a damaged store")
        dim = dims.pop() if dims else 1
        emb = np.stack([r.embedding if r.embedding is not None else np.full(dim, np.nan, np.float32) for r in rows])
        index_of = -np.ones(len(rows), np.int64)
        index_of[steer] = np.arange(int(steer.sum()))
        return cls(
            ids=ids,
            feed=np.array([r.footage_id for r in rows], np.int64),
            spans=np.array([[r.start_s, r.end_s] for r in rows], np.float64),
            has_emb=has_emb,
            steer=steer,
            emb=emb,
            index_of=index_of,
            row_of={int(t): i for i, t in enumerate(ids.tolist())},
        )

    def steers(self, track: int) -> bool:
        return track in self.row_of and bool(self.steer[self.row_of[track]])

    def steering_row(self, track: int) -> int:
        return int(self.index_of[self.row_of[track]])

    def steering_pairs(self, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
        """(track id, track id) pairs -> (P, 2) int64 row pairs among the steering tracks."""
        out = [(self.steering_row(a), self.steering_row(b)) for a, b in pairs if self.steers(a) and self.steers(b)]
        return np.array(out, np.int64).reshape(-1, 2)


def _constraint_rows(table: _TrackTable, cons: Constraints) -> tuple[np.ndarray, np.ndarray]:
    """(cannot, must): (P, 2) row pairs among the steering tracks, from the automatic cannot-links
    (overlap in one feed) and the user's corrections."""
    group_of = cons.group_of()
    ids = table.ids
    overlapping = cannot_link_pairs(table.spans, table.feed)  # indexes into rows
    # a merge is the user's word: it overrides the automatic "overlap in one feed" cannot-links
    auto = [
        (int(ids[a]), int(ids[b]))
        for a, b in overlapping.tolist()
        if not (int(ids[a]) in group_of and group_of.get(int(ids[a])) == group_of.get(int(ids[b])))
    ]
    cannot = table.steering_pairs(auto + cons.cannot_pairs())
    must_rows = []
    # chain the steering members of each merge group (a non-steering member must not break the chain)
    for group in cons.groups:
        members = sorted(table.steering_row(t) for t in group if table.steers(t))
        must_rows += list(itertools.pairwise(members))
    return cannot, np.array(must_rows, np.int64).reshape(-1, 2)


def _track_noise(store: Store, table: _TrackTable, n_averaged: np.ndarray) -> np.ndarray:
    """(M,) the sampling variance of each track's mean descriptor, from its encoded faces (`mean_noise`)."""
    faces: dict[int, list[np.ndarray]] = {}
    for f in store.encoded_faces():
        faces.setdefault(f.track_id, []).append(f.embedding)
    noise = np.zeros(len(table.ids))
    for i, t in enumerate(table.ids.tolist()):
        if len(faces.get(t, ())) >= 2 and table.has_emb[i]:
            noise[i] = mean_noise(np.stack(faces[t]), int(n_averaged[i]))
    return noise


def _attach_to_nearest(table: _TrackTable, labels: np.ndarray, eps: float) -> None:
    """Tracks that do not steer join the identity of their nearest clustered track within `eps` (in place)."""
    others = np.flatnonzero(~table.steer & table.has_emb)
    clustered = np.flatnonzero(labels >= 0)
    if len(others) and len(clustered):
        dist, near = nearest(table.emb[others], table.emb[clustered])
        ok = dist < eps
        labels[others[ok]] = labels[clustered[near[ok]]]


def _carry_ids(store: Store, previous: dict[int, int], ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels renumbered so that identities keep the ids they had, and remembered groups get theirs back."""
    memory = store.remembered_identities()
    if not (previous or memory):
        return labels
    remembered = {
        lab: memory[key]
        for lab in np.unique(labels[labels >= 0]).tolist()
        if (key := members_key(ids[labels == lab])) in memory
    }
    return stable_ids(previous, ids, labels, remembered, reserved=memory.values())


def _stable_labels(ids: np.ndarray, labels: np.ndarray, spans: np.ndarray, files: list[FileInfo]) -> np.ndarray:
    """Number identities by first appearance (file start + offset, then track id) so re-runs agree.

    `files`: the file of each row (its start time and camera).

    Used on its own for the first grouping of a store; afterwards `stable_ids` maps this
    numbering onto the previous ids (new identities get fresh ids in this order).
    """
    first: dict[int, tuple] = {}
    for i, lab in enumerate(labels):
        if lab < 0:
            continue
        start = files[i].start_utc
        key = (start is None, start.isoformat() if start else "", files[i].camera, float(spans[i, 0]), int(ids[i]))
        if lab not in first or key < first[lab]:
            first[lab] = key
    order = sorted(first, key=lambda lab: first[lab])
    remap = {old: new for new, old in enumerate(order)}
    return np.array([remap.get(int(lab), -1) for lab in labels], np.int64)

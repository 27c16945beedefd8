"""grouping: identity ids over a store stay with their group of sightings across regroupings."""

from __future__ import annotations

import numpy as np
import pytest

from vidcluster.analysis.grouping import assign_identities
from vidcluster.case.blobs import embedding_to_blob
from vidcluster.case.store import Store
from vidcluster.config import Config, IdentitiesConfig

DIM = 128


def people_tracks(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five people, three track means each (~0.2 apart); people 0 and 1 are look-alikes (~0.58 apart).

    Returns (x (15, 128) float32, person (15,) int64), tracks of one person next to each other.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, DIM))
    centres *= 0.9 / np.sqrt(2) / np.linalg.norm(centres, axis=1, keepdims=True)  # people ~0.9 apart
    step = rng.normal(size=DIM)
    centres[1] = centres[0] + step / np.linalg.norm(step) * 0.55
    person = np.repeat(np.arange(5), 3)
    x = centres[person] + rng.normal(scale=0.2 / np.sqrt(2 * DIM), size=(15, DIM))
    return x.astype(np.float32), person


def store_with(x: np.ndarray) -> Store:
    """An in-memory store with one video and one 5-face track per row of x (none overlap in time)."""
    store = Store.open(":memory:")
    with store.conn:
        store.conn.execute(
            "INSERT INTO footage (id, path, camera, kind, size_bytes, sha256, start_utc, start_source)"
            " VALUES (1, 'cam/a.mp4', 'cam', 'video', 1, 'x', '2024-05-01T10:00:00+00:00', 'config')"
        )
        store.conn.executemany(
            "INSERT INTO tracks (id, footage_id, start_s, end_s, n_faces, steer, embedding) VALUES (?, 1, ?, ?, 5, 1, ?)",
            [(i + 1, 2.0 * i, 2.0 * i + 1, embedding_to_blob(v)) for i, v in enumerate(x)],
        )
    return store


def regroup(store: Store, **identities) -> dict[int, int]:
    assign_identities(store, Config(identities=IdentitiesConfig(**identities)))
    return store.assignment()


def groups_of(assignment: dict[int, int]) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for t, i in assignment.items():
        if i >= 0:
            out.setdefault(i, set()).add(t)
    return {frozenset(v) for v in out.values()}


@pytest.mark.parametrize("algorithm", ["dbscan", "chinese-whispers", "graph-average"])
def test_first_grouping_finds_the_five_people(algorithm):
    x, person = people_tracks()
    store = store_with(x)
    first = regroup(store, algorithm=algorithm, eps=0.5)
    assert groups_of(first) == {frozenset((np.flatnonzero(person == p) + 1).tolist()) for p in range(5)}


@pytest.mark.parametrize("algorithm", ["dbscan", "chinese-whispers"])
def test_trying_a_setting_and_reverting_it_restores_the_ids(algorithm):
    x, _ = people_tracks()
    store = store_with(x)
    first = regroup(store, algorithm=algorithm, eps=0.5)
    wide = regroup(store, algorithm=algorithm, eps=0.7, split_chains=False)
    assert len(groups_of(wide)) < len(groups_of(first))  # the look-alikes merged: the ids really moved
    assert regroup(store, algorithm=algorithm, eps=0.5) == first
    # and again, after switching algorithm back and forth
    regroup(store, algorithm="graph-average", eps=0.7, spread_ratio=10.0, eps_average=0.7)
    assert regroup(store, algorithm=algorithm, eps=0.5) == first


def test_new_groups_never_take_an_id_held_before():
    x, _ = people_tracks()
    store = store_with(x)
    first = regroup(store, algorithm="dbscan", eps=0.5)
    wide = regroup(store, algorithm="dbscan", eps=0.7, split_chains=False)
    # the merged look-alikes (half of one old identity, half of another) are a new group: a fresh id
    new_ids = set(wide.values()) - set(first.values())
    assert len(new_ids) == 1 and min(new_ids) > max(first.values())
    # groups never seen before get ids above every id ever used, including the merged group's
    tight = regroup(store, algorithm="dbscan", eps=0.05, min_samples=1)
    fresh = set(tight.values()) - set(first.values()) - set(wide.values())
    assert fresh and min(fresh) > max(*first.values(), *wide.values())

"""identities: clustering of synthetic dlib-like descriptors, constraints, labels, stable ids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors
from tests_support import dlib_identities

from vidcluster.analysis.dbscan import dbscan
from vidcluster.analysis.identities import cluster, mean_descriptor, mean_noise, relabel, stable_ids
from vidcluster.analysis.metrics import bcubed
from vidcluster.analysis.neighbours import pair_eps
from vidcluster.config import IdentitiesConfig

ALGORITHMS = ("graph-average", "dbscan", "chinese-whispers")
DIM = 128


def people(n_people: int, per_person: int, seed: int = 0, spread: float = 0.3, apart: float = 0.7):
    """Descriptors shaped like dlib's: one person's faces ~`spread` apart, people ~`apart` apart.

    Returns (x (N, 128) float32, truth (N,) int64), rows grouped by person.
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_people, DIM))
    centres = directions / np.linalg.norm(directions, axis=1, keepdims=True) * apart / np.sqrt(2)
    sigma = spread / np.sqrt(2 * DIM)  # two draws around one centre differ by ~spread
    x = np.repeat(centres, per_person, axis=0) + rng.normal(scale=sigma, size=(n_people * per_person, DIM))
    return x.astype(np.float32), np.repeat(np.arange(n_people), per_person).astype(np.int64)


def cfg(algorithm: str, eps: float = 0.5, min_samples: int = 2) -> IdentitiesConfig:
    return dlib_identities(algorithm=algorithm, eps=eps, min_samples=min_samples)  # dlib-shaped descriptors


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n_people, per_person, seed", [(2, 5, 0), (5, 8, 1), (12, 3, 2), (30, 20, 3)])
def test_tight_groups_are_recovered_exactly(algorithm, n_people, per_person, seed):
    x, truth = people(n_people, per_person, seed)
    labels = cluster(x, cfg(algorithm))
    assert labels.dtype == np.int64 and labels.shape == truth.shape
    assert bcubed(truth, labels) == (1.0, 1.0, 1.0)
    # rows are grouped by person, so first-appearance numbering equals the truth
    np.testing.assert_array_equal(labels, truth)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_lone_faces_are_unmatched(algorithm):
    x, truth = people(3, 6, seed=4)
    lone, _ = people(4, 1, seed=5)  # four strangers, each seen once
    labels = cluster(np.concatenate([x, lone]), cfg(algorithm, min_samples=2))
    np.testing.assert_array_equal(labels[:18], truth)
    np.testing.assert_array_equal(labels[18:], [-1] * 4)
    # with min_samples=1 every stranger is an identity of its own
    labels = cluster(np.concatenate([x, lone]), cfg(algorithm, min_samples=1))
    np.testing.assert_array_equal(labels[18:], [3, 4, 5, 6])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cannot_link_splits_two_close_faces(algorithm):
    x, _ = people(1, 2, seed=6, spread=0.2)
    assert np.linalg.norm(x[0] - x[1]) < 0.5
    np.testing.assert_array_equal(cluster(x, cfg(algorithm, min_samples=1)), [0, 0])
    np.testing.assert_array_equal(cluster(x, cfg(algorithm, min_samples=1), cannot_link=np.array([[0, 1]])), [0, 1])
    np.testing.assert_array_equal(cluster(x, cfg(algorithm, min_samples=2), cannot_link=np.array([[1, 0]])), [-1, -1])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cannot_links_separate_look_alikes(algorithm):
    """Two similar people (centres 0.25 apart) merge without constraints; seen together they split.

    graph-average tells them apart even without constraints (each is tighter than the gap).
    """
    x, truth = people(2, 10, seed=7, spread=0.25, apart=0.25)
    merged = len(set(cluster(x, cfg(algorithm, min_samples=1)).tolist())) == 1
    assert merged == (algorithm != "graph-average")
    # they stand side by side in five frames: face i of one with face i of the other
    pairs = np.array([[i, 10 + i] for i in range(5)])
    labels = cluster(x, cfg(algorithm, min_samples=1), cannot_link=pairs)
    assert not np.any(labels[pairs[:, 0]] == labels[pairs[:, 1]])
    assert bcubed(truth, labels)[2] > 0.9


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_must_link_gives_a_unit_one_label(algorithm):
    x, truth = people(2, 6, seed=8)
    stray, _ = people(1, 1, seed=9)  # a bad face of person 0's track, far from everyone
    x = np.concatenate([x, stray])
    must = np.array([[0, 12], [1, 12]])
    labels = cluster(x, cfg(algorithm, min_samples=2), must_link=must)
    np.testing.assert_array_equal(labels, [*truth, 0])


def test_contradicting_constraints_are_an_error():
    x, _ = people(1, 3)
    with pytest.raises(ValueError, match="contradict"):
        cluster(x, cfg("dbscan"), cannot_link=np.array([[0, 2]]), must_link=np.array([[0, 1], [1, 2]]))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("m, min_samples, expected", [(0, 1, []), (0, 2, []), (1, 1, [0]), (1, 2, [-1])])
def test_tiny_inputs(algorithm, m, min_samples, expected):
    x, _ = people(1, 1)
    labels = cluster(x[:m], cfg(algorithm, min_samples=min_samples))
    assert labels.dtype == np.int64
    assert labels.tolist() == expected


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_labels_are_deterministic_and_in_first_appearance_order(algorithm):
    x, truth = people(6, 5, seed=10)
    order = np.random.default_rng(11).permutation(len(x))
    a = cluster(x[order], cfg(algorithm))
    b = cluster(x[order], cfg(algorithm))
    np.testing.assert_array_equal(a, b)
    firsts = [int(np.flatnonzero(a == k)[0]) for k in range(a.max() + 1)]
    assert firsts == sorted(firsts) and firsts[0] == 0
    assert bcubed(truth[order], a)[2] == 1.0


def test_chinese_whispers_scales_without_a_distance_matrix():
    x, truth = people(400, 25, seed=12)  # 10k rows; a dense matrix would be 400 MB
    labels = cluster(x, cfg("chinese-whispers"))
    assert bcubed(truth, labels)[2] > 0.99


EMB = people(2, 2)[0]


@pytest.mark.parametrize(
    "embeddings, kwargs, config, match",
    [
        (EMB[0], {}, cfg("dbscan"), "shape"),
        (np.zeros((3, 0), np.float32), {}, cfg("dbscan"), "shape"),
        (np.full((2, DIM), np.nan, np.float32), {}, cfg("dbscan"), "NaN"),
        (np.array([["a"] * DIM]), {}, cfg("dbscan"), "numeric"),
        (EMB, {"cannot_link": np.array([0, 1])}, cfg("dbscan"), "cannot_link"),
        (EMB, {"cannot_link": np.array([[0.0, 1.0]])}, cfg("dbscan"), "cannot_link"),
        (EMB, {"cannot_link": np.array([[0, 4]])}, cfg("dbscan"), "outside"),
        (EMB, {"must_link": np.array([[-1, 2]])}, cfg("dbscan"), "outside"),
        (EMB, {"must_link": np.array([[2, 2]])}, cfg("dbscan"), "itself"),
        (EMB, {}, cfg("kmeans"), "algorithm"),
        (EMB, {}, cfg("dbscan", eps=0.0), "eps"),
        (EMB, {}, cfg("chinese-whispers", min_samples=0), "min_samples"),
    ],
)
def test_bad_input_raises(embeddings, kwargs, config, match):
    with pytest.raises(ValueError, match=match):
        cluster(embeddings, config, **kwargs)


@pytest.mark.parametrize(
    "labels, expected",
    [([], []), ([-1, -1], [-1, -1]), ([5, 5, 2, -1, 9, 2], [0, 0, 1, -1, 2, 1]), ([3], [0])],
)
def test_relabel(labels, expected):
    assert relabel(np.array(labels, np.int64)).tolist() == expected


@pytest.mark.parametrize(
    "prev, keys, labels, expected",
    [
        ({}, [1, 2, 3], [0, 0, -1], [0, 0, -1]),  # first run: fresh ids from 0
        ({1: 7, 2: 7, 3: 3}, [1, 2, 3], [1, 1, 0], [7, 7, 3]),  # same groups keep their ids
        ({1: 7, 2: 7}, [1, 2, 8, 9], [0, 0, 0, 0], [7, 7, 7, 7]),  # a group that grew keeps its id
        ({1: 7, 2: 7, 3: 7}, [1, 2, 3], [0, 0, 1], [7, 7, 8]),  # a split: the larger part keeps it
        ({1: 7, 2: 3}, [1, 2], [0, 0], [8, 8]),  # no majority: a fresh id
        ({1: 2, 2: -1, 3: -1}, [1, 2, 3], [0, 0, 0], [3, 3, 3]),  # old noise counts against
        ({1: 4}, [1, 2], [-1, 0], [-1, 5]),  # unmatched stays -1
    ],
)
def test_stable_ids(prev, keys, labels, expected):
    out = stable_ids(prev, np.array(keys, np.int64), np.array(labels, np.int64))
    assert out.tolist() == expected


def test_stable_ids_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        stable_ids({}, np.array([1, 2]), np.array([0]))


def test_mean_descriptor_ignores_unencoded_rows():
    x = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]], np.float32)
    np.testing.assert_allclose(mean_descriptor(x), [2.0, 3.0])
    assert mean_descriptor(x).dtype == np.float32
    with pytest.raises(ValueError):
        mean_descriptor(np.zeros((0, DIM)))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_three_look_alikes_in_one_frame_become_three_identities(algorithm):
    x, truth = people(3, 6, seed=13, spread=0.2, apart=0.3)
    # frames 0 and 1 show all three together
    pairs = np.array([p for f in (0, 1) for p in ([f, 6 + f], [f, 12 + f], [6 + f, 12 + f])])
    labels = cluster(x, cfg(algorithm, min_samples=2), cannot_link=pairs)
    assert len(set(labels[[0, 6, 12]].tolist())) == 3
    assert bcubed(truth, labels)[2] == 1.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_must_and_cannot_links_together(algorithm):
    """Two look-alike tracks (must-linked faces) overlap in time (cannot-link between tracks)."""
    x, truth = people(2, 4, seed=14, spread=0.2, apart=0.25)
    must = np.array([[0, 1], [1, 2], [2, 3], [4, 5], [5, 6], [6, 7]])
    labels = cluster(x, cfg(algorithm, min_samples=2), cannot_link=np.array([[3, 4]]), must_link=must)
    np.testing.assert_array_equal(labels, truth)


def test_means_of_many_faces_are_held_to_a_tighter_distance():
    """Two look-alikes 0.46 apart: two single photos may be one person (eps 0.5), two tracks that
    each average eight faces may not (their noise is gone; 0.46 is a real difference)."""
    x = np.zeros((2, 128), np.float32)
    x[1, 0] = 0.46
    cfg = dlib_identities(eps=0.5, eps_mean=0.42, min_samples=1)
    assert cluster(x, cfg).tolist() == [0, 0]
    assert cluster(x, cfg, counts=np.array([8, 8])).tolist() == [0, 1]
    assert cluster(x, cfg, counts=np.array([1, 1])).tolist() == [0, 0]


# -- the hard cases of real footage (distances from DESIGN.md's dlib facts) ---------------------
def family(n_people: int, per_person: int, close_gap: float, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """People ~0.72 apart except people 0 and 1, whose centres are `close_gap` apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, DIM))
    centres *= 0.72 / np.sqrt(2) / np.linalg.norm(centres, axis=1, keepdims=True)
    step = rng.normal(size=DIM)
    centres[1] = centres[0] + step / np.linalg.norm(step) * close_gap
    x = np.repeat(centres, per_person, axis=0) + rng.normal(
        scale=spread / np.sqrt(2 * DIM), size=(n_people * per_person, DIM)
    )
    return x.astype(np.float32), np.repeat(np.arange(n_people), per_person)


@pytest.mark.parametrize(
    "case, close_gap, seed",
    [
        ("brothers (closest tracks ~0.36-0.41)", 0.32, 0),
        ("look-alike men with glasses (~0.46)", 0.40, 1),
        ("brothers, another draw", 0.32, 2),
    ],
)
def test_graph_average_keeps_look_alike_track_groups_apart(case, close_gap, seed):
    x, truth = family(10, 4, close_gap, spread=0.22, seed=seed)
    counts = np.full(len(x), 8.0)  # track means of 8 faces each
    cross = np.linalg.norm(x[truth == 0][:, None] - x[truth == 1][None], axis=2)
    assert cross.min() < cfg("dbscan").eps_mean + 0.02  # close enough for a single-linkage cut to join them
    labels = cluster(x, cfg("graph-average"), weights=counts, counts=counts)
    np.testing.assert_array_equal(labels, truth)


def tracks_with_a_turned_head(centres: np.ndarray, per_person: int, seed: int):
    """Track means of people at `centres`: each person's tracks average 3 faces ~0.3 apart, except
    the last, of 2 faces, one of them 0.55 off the centre (a head turned away; a real SFace case).

    Returns (means (N, 128) float32, noise (N,) from `mean_noise`, counts (N,), truth (N,)).
    """
    rng = np.random.default_rng(seed)
    means, noise, counts, truth = [], [], [], []
    for person, centre in enumerate(centres):
        for t in range(per_person):
            faces = centre + rng.normal(scale=0.3 / np.sqrt(2 * DIM), size=(3 if t < per_person - 1 else 2, DIM))
            if t == per_person - 1:
                turn = rng.normal(size=DIM)
                faces[1] = centre + turn / np.linalg.norm(turn) * 0.55
            means.append(faces.mean(axis=0))
            noise.append(mean_noise(faces, len(faces)))
            counts.append(len(faces))
            truth.append(person)
    return np.array(means, np.float32), np.array(noise), np.array(counts, np.float64), np.array(truth)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_track_with_a_turned_head_joins_its_person(seed):
    """The mean of two faces, one turned away, sits far from its person's other tracks; its own
    faces' scatter says why, so the spread check discounts it and the person stays whole."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, DIM))
    centres *= 0.75 / np.sqrt(2) / np.linalg.norm(centres, axis=1, keepdims=True)
    x, noise, counts, truth = tracks_with_a_turned_head(centres, 3, seed)
    cfg1 = dlib_identities(min_samples=1)
    assert len(set(cluster(x, cfg1, counts=counts).tolist())) > 4  # the plain distances split them
    np.testing.assert_array_equal(cluster(x, cfg1, counts=counts, noise=noise), truth)


@pytest.mark.parametrize("close_gap, seed", [(0.32, 0), (0.40, 1)])
def test_noisy_tracks_of_look_alikes_stay_apart(close_gap, seed):
    """Brothers (0.32) and look-alikes (0.40), each with a turned-head track: the discount
    brings each brother's own tracks together, not the two brothers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, DIM))
    centres[0] *= 0.72 / np.sqrt(2) / np.linalg.norm(centres[0])
    centres[1] = centres[0] + centres[1] / np.linalg.norm(centres[1]) * close_gap
    x, noise, counts, truth = tracks_with_a_turned_head(centres, 4, seed)
    np.testing.assert_array_equal(cluster(x, dlib_identities(min_samples=1), counts=counts, noise=noise), truth)


def test_mean_noise_is_the_sampling_variance_of_a_mean():
    rng = np.random.default_rng(0)
    faces = rng.normal(scale=0.1, size=(4000, 8))
    assert mean_noise(faces, 4) == pytest.approx(8 * 0.01 / 4, rel=0.05)  # D sigma^2 / n
    assert mean_noise(faces[:1], 1) == 0.0


def test_graph_average_keeps_one_persons_varied_photos_together():
    """Photos of one person ~0.48 apart (years, light, pose): one identity each, nobody merged."""
    x, truth = family(5, 11, 0.8, spread=0.48, seed=3)
    labels = cluster(x, cfg("graph-average"))
    assert len(set(labels[labels >= 0].tolist())) == 5
    precision, recall, _ = bcubed(truth, labels)
    assert precision == 1.0 and recall > 0.9


def test_graph_average_on_a_sample_of_a_large_candidate_group(monkeypatch):
    """Above AVERAGE_SAMPLE rows the linkage sees a sample; the others join the nearest sub-group mean."""
    import vidcluster.analysis.average as average

    monkeypatch.setattr(average, "AVERAGE_SAMPLE", 50)
    x, truth = family(2, 100, 0.40, spread=0.25, seed=4)  # 200 rows, one candidate group
    labels = cluster(x, cfg("graph-average"))
    np.testing.assert_array_equal(labels, truth)


def _sklearn_dbscan(x, eps, min_samples, weights, counts, eps_mean):
    """The DBSCAN this package ran through scikit-learn before it had its own."""
    if np.all(counts == 1) or eps_mean >= eps:
        return DBSCAN(eps=eps, min_samples=min_samples, algorithm="brute").fit_predict(x, sample_weight=weights)
    dist, idx = NearestNeighbors(radius=eps).fit(x).radius_neighbors(x)
    rows = np.repeat(np.arange(len(x)), [len(a) for a in idx])
    cols, vals = np.concatenate(idx), np.concatenate(dist)
    keep = vals <= pair_eps(counts[rows], counts[cols], eps, eps_mean)
    graph = coo_matrix((vals[keep] + 1e-9, (rows[keep], cols[keep])), shape=(len(x), len(x))).tocsr()
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(graph, sample_weight=weights)


@pytest.mark.parametrize(
    "seed, weighted, averaged",
    [(s, w, a) for s in range(4) for w in (False, True) for a in (False, True)],
)
def test_dbscan_labels_as_scikit_learn_does(seed, weighted, averaged):
    # groups of varied tightness, some touching: core rows, border rows between two groups, noise
    rng = np.random.default_rng(seed)
    m, k = 90, 6
    centres = rng.normal(size=(k, 16)) * 0.4
    x = (centres[rng.integers(0, k, m)] + rng.normal(size=(m, 16)) * rng.uniform(0.03, 0.12, (m, 1))).astype(np.float32)
    weights = rng.integers(1, 6, m).astype(np.float64) if weighted else np.ones(m)
    counts = rng.integers(1, 9, m).astype(np.float64) if averaged else np.ones(m)
    for eps, min_samples in ((0.3, 2), (0.5, 4), (0.7, 7)):
        ours = dbscan(x, eps, min_samples, weights, counts, 0.84 * eps)
        theirs = _sklearn_dbscan(x, eps, min_samples, weights, counts, 0.84 * eps)
        assert ours.tolist() == theirs.tolist()
        assert len(set(ours.tolist())) > 1  # the case is not trivial

"""neighbours: the k-nearest-neighbour graph, exact and approximate."""

from __future__ import annotations

import numpy as np
import pytest

from vidcluster.analysis.neighbours import knn_graph, nearest, radius_pairs, recall


def face_like(n_people: int, per_person: int, seed: int = 0) -> np.ndarray:
    """Tight groups (~0.3 apart) of people ~0.7 apart, in 128-d, shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.7 / 16, (n_people, 128))
    x = np.repeat(centres, per_person, axis=0) + rng.normal(0, 0.3 / 16, (n_people * per_person, 128))
    return x[rng.permutation(len(x))].astype(np.float32)


def brute(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((x[:, None] - x[None]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def test_exact_graph_matches_brute_force():
    x = face_like(20, 10)
    g = knn_graph(x, 5, exact=True)
    _idx, d = brute(x.astype(np.float64), 5)
    assert g.exact and g.idx.shape == (200, 5) and not np.any(g.idx == np.arange(200)[:, None])
    np.testing.assert_allclose(g.dist_sq, d, rtol=1e-4, atol=1e-6)
    assert recall(g, g) == 1.0


def test_approximate_graph_finds_nearly_all_neighbours_on_face_like_data():
    x = face_like(200, 15, seed=1)  # 3000 rows: 6 cells
    approx = knn_graph(x, 10, radius=0.5, exact=False)
    exact = knn_graph(x, 10, radius=0.5, exact=True)
    assert not approx.exact and not np.any(approx.idx == np.arange(len(x))[:, None])
    assert recall(approx, exact) > 0.95
    ok = approx.idx >= 0
    assert np.all(np.sqrt(approx.dist_sq[ok]) <= 0.5)  # the radius holds
    # every distance reported is the true one
    a = np.repeat(np.arange(len(x)), 10)[ok.ravel()]
    b = approx.idx.ravel()[ok.ravel()]
    np.testing.assert_allclose(
        approx.dist_sq.ravel()[ok.ravel()], ((x[a] - x[b]) ** 2).sum(axis=1), rtol=1e-3, atol=1e-5
    )


@pytest.mark.parametrize("exact", [True, False])
def test_radius_and_small_inputs(exact):
    x = np.array([[0.0], [0.1], [5.0], [5.05]], np.float32)
    g = knn_graph(x, 3, radius=1.0, exact=exact)
    assert g.idx.tolist() == [[1, -1, -1], [0, -1, -1], [3, -1, -1], [2, -1, -1]]
    a, b, _d = g.edges()
    assert a.tolist() == [0, 2] and b.tolist() == [1, 3]
    assert knn_graph(x[:1], 5).idx.shape == (1, 0)


def test_identical_rows_never_list_themselves():
    x = np.zeros((6, 4), np.float32)
    g = knn_graph(x, 3)
    assert not np.any(g.idx == np.arange(6)[:, None]) and np.all(g.idx >= 0)


@pytest.mark.parametrize("x, k, message", [(np.zeros(5), 2, "must be"), (np.zeros((5, 2)), 0, "k must be")])
def test_bad_arguments(x, k, message):
    with pytest.raises(ValueError, match=message):
        knn_graph(x, k)


@pytest.mark.parametrize(
    "n, block_values",
    [
        (0, 1 << 22),
        (1, 1 << 22),
        (120, 1 << 22),  # one block
        (120, 49),  # 7 x 7 blocks: pairs across and inside blocks, a last block that is cut short
    ],
)
def test_radius_pairs_match_brute_force(n, block_values):
    x = face_like(max(1, n // 6), 6, seed=3)[:n]
    rows, cols, dist = radius_pairs(x, 0.3, block_values)
    d = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(axis=2))
    want_r, want_c = np.nonzero(d <= 0.3)
    assert rows.tolist() == want_r.tolist() and cols.tolist() == want_c.tolist()
    np.testing.assert_allclose(dist, d[want_r, want_c], atol=1e-5)
    assert n < 120 or 2 * n < len(rows) < n * n  # the radius keeps each group, not everything


def test_nearest_row():
    x = face_like(10, 4, seed=4)
    dist, idx = nearest(x[:5] + 1e-3, x)
    assert idx.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(dist, np.sqrt(128) * 1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="at least one row"):
        nearest(x, x[:0])

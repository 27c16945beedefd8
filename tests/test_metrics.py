"""metrics: hand-computed BCubed, pairwise and NMI scores; unmatched (-1) as singletons."""

from __future__ import annotations

import numpy as np
import pytest

from vidcluster.analysis.metrics import bcubed, nmi, pairwise_prf


def approx(values):
    return pytest.approx(values, abs=1e-12)


@pytest.mark.parametrize(
    "truth, pred, expected",
    [
        # perfect, whatever the label values
        ([0, 0, 1, 1], [9, 9, 4, 4], (1.0, 1.0, 1.0)),
        # everything in one cluster: P = (3 * 3/4 + 1 * 1/4) / 4, R = 1
        ([0, 0, 0, 1], [0, 0, 0, 0], (0.625, 1.0, 2 * 0.625 / 1.625)),
        # all singletons: P = 1, R = (3 * 1/3 + 1) / 4 = 0.5
        ([0, 0, 0, 1], [0, 1, 2, 3], (1.0, 0.5, 2 / 3)),
        # -1 are singletons, not one cluster: same as above
        ([0, 0, 0, 1], [-1, -1, -1, -1], (1.0, 0.5, 2 / 3)),
        # truth {a,a,a,b,b}, pred {0,0,-1,1,1}: P = 1; R = (2/3 + 2/3 + 1/3 + 1 + 1) / 5 = 11/15
        (["a", "a", "a", "b", "b"], [0, 0, -1, 1, 1], (1.0, 11 / 15, 2 * (11 / 15) / (1 + 11 / 15))),
        # one wrong member: pred {0: a,a,b}, {1: b}; P = (2/3*2 + 1/3 + 1)/4 = 2/3, R = (1+1+1/2+1/2)/4 = 3/4
        ([0, 0, 1, 1], [0, 0, 0, 1], (2 / 3, 0.75, 2 * (2 / 3 * 0.75) / (2 / 3 + 0.75))),
        ([], [], (1.0, 1.0, 1.0)),
    ],
)
def test_bcubed(truth, pred, expected):
    assert bcubed(truth, pred) == approx(expected)


@pytest.mark.parametrize(
    "truth, pred, expected",
    [
        ([0, 0, 1, 1], [1, 1, 0, 0], (1.0, 1.0, 1.0)),
        # 6 pairs claimed, 3 of them true; all 3 true pairs found
        ([0, 0, 0, 1], [0, 0, 0, 0], (0.5, 1.0, 2 / 3)),
        # no pair claimed: precision vacuously 1, recall 0
        ([0, 0, 0, 1], [-1, -1, -1, -1], (1.0, 0.0, 0.0)),
        # pred {0: 0,1,2}, {1: 3,4}; truth {0,1}, {2,3,4}: claimed 3 + 1 = 4, true 1 + 1 = 2;
        # truth pairs 1 + 3 = 4
        ([0, 0, 1, 1, 1], [0, 0, 0, 1, 1], (0.5, 0.5, 0.5)),
        # no true pairs, none claimed
        ([0, 1, 2], [0, 1, -1], (1.0, 1.0, 1.0)),
        ([], [], (1.0, 1.0, 1.0)),
    ],
)
def test_pairwise(truth, pred, expected):
    assert pairwise_prf(truth, pred) == approx(expected)


@pytest.mark.parametrize(
    "truth, pred, expected",
    [
        ([0, 0, 1, 1], [5, 5, 3, 3], 1.0),
        ([0, 0, 1, 1], [0, 1, 0, 1], 0.0),
        # one class vs all-unmatched: the singletons carry no information about one class
        ([0, 0, 0], [-1, -1, -1], 0.0),
        # all-unmatched items equal a partition into singletons
        ([0, 1, 2], [-1, -1, -1], 1.0),
        ([], [], 1.0),
    ],
)
def test_nmi(truth, pred, expected):
    assert nmi(truth, pred) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("fn", [bcubed, pairwise_prf, nmi])
@pytest.mark.parametrize("truth, pred", [([0, 1], [0]), ([[0, 1]], [[0, 1]])])
def test_shape_mismatch_raises(fn, truth, pred):
    with pytest.raises(ValueError):
        fn(truth, pred)


def test_matches_brute_force_on_random_labels():
    """The contingency-table formulas agree with the O(N^2) definitions."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, 200)
    pred = rng.integers(-1, 8, 200)
    singles = np.where(pred == -1, 100 + np.arange(200), pred)
    same_t = truth[:, None] == truth[None]
    same_p = singles[:, None] == singles[None]
    both = same_t & same_p
    p = np.mean(both.sum(1) / same_p.sum(1))
    r = np.mean(both.sum(1) / same_t.sum(1))
    assert bcubed(truth, pred)[:2] == approx((p, r))
    off = ~np.eye(200, dtype=bool)
    pp = (both & off).sum() / (same_p & off).sum()
    pr = (both & off).sum() / (same_t & off).sum()
    assert pairwise_prf(truth, pred)[:2] == approx((pp, pr))


def test_a_million_items_is_fast():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 1000, 1_000_000)
    pred = np.where(rng.random(1_000_000) < 0.1, -1, truth)
    p, r, _f = bcubed(truth, pred)
    assert p == 1.0 and 0.80 < r < 0.82  # 0.9 * 0.9 + 0.1 * (1 / 1000)
    assert pairwise_prf(truth, pred)[0] == 1.0


@pytest.mark.parametrize("seed", range(12))
def test_nmi_matches_scikit_learn_on_random_labelings(seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    truth = rng.integers(0, int(rng.integers(1, 12)), n)
    pred = rng.integers(-1, int(rng.integers(1, 15)), n)  # -1 = unmatched, scored as singletons
    # our scorer turns each -1 into a singleton first; give scikit-learn the same labeling
    singles = pred.copy()
    lone = np.flatnonzero(pred == -1)
    singles[lone] = pred.max(initial=0) + 1 + np.arange(len(lone))
    expected = sklearn_metrics.normalized_mutual_info_score(truth, singles)
    assert nmi(truth, pred) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(
    "truth, pred", [([0, 0, 0], [1, 1, 1]), ([0, 1, 2], [5, 5, 5]), ([3], [4]), ([0, 0, 1, 1], [0, 1, 2, 3])]
)
def test_nmi_matches_scikit_learn_at_the_edges(truth, pred):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert nmi(truth, pred) == pytest.approx(sklearn_metrics.normalized_mutual_info_score(truth, pred), abs=1e-12)

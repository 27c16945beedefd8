"""Clustering quality against known identities: BCubed, pairwise P/R/F, NMI.

All scores come from the contingency table (truth label x predicted label), built by
sorting, so they cost O(N log N) time and O(N) memory: fine for millions of faces.

Unmatched items: a predicted label of -1 means "not assigned to any identity". Every such
item is scored as its own singleton cluster (it claims no same-person pair, so it never
hurts precision, and it costs recall). Truth labels are taken as they are; they may be
any sortable values (ints, strings). Empty inputs score 1.0 (nothing was got wrong).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..types import UNMATCHED


def _codes(truth: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both labelings as dense int codes 0..K-1; each unmatched prediction gets a code of its own."""
    t = np.asarray(truth)
    p = np.asarray(pred)
    if t.ndim != 1 or p.ndim != 1 or len(t) != len(p):
        raise ValueError(f"truth and pred must be 1-D of one length, got shapes {t.shape} and {p.shape}")
    t_code = np.unique(t, return_inverse=True)[1].astype(np.int64)
    p_code = np.unique(p, return_inverse=True)[1].astype(np.int64)
    if np.issubdtype(p.dtype, np.number):
        lone = np.flatnonzero(p == UNMATCHED)
        p_code[lone] = p_code.max(initial=-1) + 1 + np.arange(len(lone))
    return t_code, p_code


def _table(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero contingency cells: (truth code, pred code, count) per cell."""
    width = int(p.max(initial=0)) + 1
    cells, counts = np.unique(t * width + p, return_counts=True)
    return cells // width, cells % width, counts.astype(np.float64)


def _f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def bcubed(truth: ArrayLike, pred: ArrayLike) -> tuple[float, float, float]:
    """BCubed precision, recall and F1 (item-averaged).

    precision = mean over items of |own cluster ∩ own class| / |own cluster|
    recall    = mean over items of |own cluster ∩ own class| / |own class|

    >>> bcubed([0, 0, 1, 1], [5, 5, 7, 7])
    (1.0, 1.0, 1.0)
    >>> p, r, f = bcubed([0, 0, 0, 1], [0, 0, 0, 0])   # one cluster holds everyone
    >>> round(p, 4), r
    (0.625, 1.0)
    >>> bcubed(["a", "a"], [-1, -1])                  # unmatched = singletons
    (1.0, 0.5, 0.6666666666666666)
    """
    t, p = _codes(truth, pred)
    n = len(t)
    if n == 0:
        return 1.0, 1.0, 1.0
    ti, pi, nij = _table(t, p)
    size_t = np.bincount(t).astype(np.float64)
    size_p = np.bincount(p).astype(np.float64)
    precision = float(np.sum(nij * nij / size_p[pi]) / n)
    recall = float(np.sum(nij * nij / size_t[ti]) / n)
    return precision, recall, _f(precision, recall)


def pairwise_prf(truth: ArrayLike, pred: ArrayLike) -> tuple[float, float, float]:
    """Precision, recall and F1 over unordered item pairs ("same person?" decisions).

    precision = same-cluster pairs that are same-class / same-cluster pairs (1.0 if none)
    recall    = same-class pairs that are same-cluster / same-class pairs (1.0 if none)

    >>> pairwise_prf([0, 0, 0, 1], [0, 0, 0, 0])       # 6 pairs claimed, 3 right
    (0.5, 1.0, 0.6666666666666666)
    >>> pairwise_prf([0, 0, 1], [0, -1, -1])           # nothing claimed
    (1.0, 0.0, 0.0)
    """
    t, p = _codes(truth, pred)
    if len(t) == 0:
        return 1.0, 1.0, 1.0
    _, _, nij = _table(t, p)

    def pairs(counts: np.ndarray) -> float:
        return float(np.sum(counts * (counts - 1) / 2))

    both = pairs(nij)
    claimed = pairs(np.bincount(p).astype(np.float64))
    real = pairs(np.bincount(t).astype(np.float64))
    precision = both / claimed if claimed else 1.0
    recall = both / real if real else 1.0
    return precision, recall, _f(precision, recall)


def _entropy(counts: np.ndarray, n: float) -> float:
    """Shannon entropy (nats) of a labeling given its cluster sizes (float64; empty codes are skipped)."""
    counts = counts[counts > 0]
    return float(-np.sum(counts / n * (np.log(counts) - np.log(n))))


def nmi(truth: ArrayLike, pred: ArrayLike) -> float:
    """Normalised mutual information (arithmetic mean normalisation), unmatched as singletons.

    NMI = I(T; P) / ((H(T) + H(P)) / 2), in nats; the same value as scikit-learn's
    `normalized_mutual_info_score` with its default `average_method="arithmetic"`. Two
    labelings that each put everything in one cluster score 1.0; no shared information scores 0.0.

    >>> nmi([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    >>> nmi([0, 0, 1, 1], [0, 1, 0, 1])
    0.0
    >>> round(nmi([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]), 4)
    0.5158
    """
    t, p = _codes(truth, pred)
    n = float(len(t))
    if n == 0:
        return 1.0
    size_t = np.bincount(t).astype(np.float64)
    size_p = np.bincount(p).astype(np.float64)
    if np.count_nonzero(size_t) == np.count_nonzero(size_p) == 1:  # neither labeling splits the data: a perfect match
        return 1.0
    ti, pi, nij = _table(t, p)
    # I(T; P) = sum_ij n_ij/n * log(n * n_ij / (n_i * n_j)), over the non-zero cells only
    share = nij / n
    log_outer = np.log(n) + np.log(n) - np.log(size_t[ti] * size_p[pi])
    cells = share * (np.log(nij) - np.log(n)) + share * log_outer
    cells[np.abs(cells) < np.finfo(np.float64).eps] = 0.0
    mi = max(float(cells.sum()), 0.0)  # rounding can leave it a hair below zero
    if mi == 0.0:
        return 0.0
    mean_entropy = (_entropy(size_t, n) + _entropy(size_p, n)) / 2
    return float(mi / max(mean_entropy, np.finfo(np.float64).eps))

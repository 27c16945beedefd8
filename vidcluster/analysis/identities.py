"""Group face descriptors into identities (unsupervised), honouring pairwise constraints.

Pure numpy and scipy, plus faiss for the nearest-neighbour graph (`neighbours`). Input rows are
descriptors (one per face, or one per track when the caller has aggregated tracks first).
Algorithms: graph-average (the default: candidate groups from the neighbour graph, then average
linkage with a spread check; `average`), dbscan (with a chain check; `dbscan`) and
chinese-whispers (`whispers`); the constraints are applied in `constraints`. This module checks
the input, runs one of them and numbers the result. Output is one integer label per row:
0..K-1 for identities, -1 for "unmatched" (noise).

Constraints:
- cannot-link (i, j): rows i and j are different people (two faces in one frame, two
  tracks that overlap in time in one feed). No output cluster ever holds both.
- must-link (i, j): rows i and j are the same person (faces of one track). Each connected
  group of must-linked rows gets one label: the majority label of its members.

Labels are deterministic: clusters are numbered 0..K-1 in order of their smallest row index.
`stable_ids` maps them onto identity ids of an earlier run.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..config import IdentitiesConfig
from ..types import UNMATCHED
from .average import graph_average
from .constraints import EMPTY_PAIRS, components, split_conflicts, vote_units
from .dbscan import dbscan, split_chains
from .neighbours import pair_eps
from .whispers import chinese_whispers

ALGORITHMS = ("graph-average", "dbscan", "chinese-whispers")


def cluster(
    embeddings: np.ndarray,
    cfg: IdentitiesConfig,
    cannot_link: np.ndarray | None = None,
    must_link: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster descriptors into identities.

    embeddings: (M, D) float descriptors (D = 128 for dlib), finite.
    cfg: algorithm ("graph-average" | "dbscan" | "chinese-whispers"), eps (descriptor distance),
        min_samples, and the graph-average settings (eps_average, spread_ratio, neighbours).
    cannot_link, must_link: (P, 2) int row-index pairs, or None.
    weights: (M,) how many faces each row stands for (a track's face count), or None for 1 each.
        `min_samples` counts faces: a track of 5 faces is an identity on its own with
        min_samples <= 5, while a lone single-face detection stays unmatched.
    counts: (M,) how many descriptors each row averages, or None for 1 each. A mean of many
        descriptors is less noisy than one face, so two means are held to a tighter distance:
        `pair_eps` slides from cfg.eps (single faces) towards cfg.eps_mean (not chinese-whispers).
    noise: (M,) the sampling variance of each row as a mean of faces (`mean_noise`), or None for
        0 each; graph-average's spread check discounts it (`average.graph_average`).
    Returns (M,) int64 labels, 0..K-1 numbered by first appearance, -1 = unmatched.

    A cluster that holds both ends of a cannot-link pair is split (constrained k-means
    seeded by the conflicting rows). Afterwards clusters with fewer than `min_samples`
    rows become -1 under both algorithms (so with min_samples=1 nothing is unmatched and
    a lone face is its own identity).

    >>> import numpy as np
    >>> from vidcluster.config import IdentitiesConfig
    >>> x = np.zeros((4, 128), np.float32); x[2:, 0] = 1.0
    >>> cluster(x, IdentitiesConfig(eps=0.5, min_samples=2)).tolist()
    [0, 0, 1, 1]
    >>> cluster(x, IdentitiesConfig(eps=0.5, min_samples=2), cannot_link=np.array([[2, 3]])).tolist()
    [0, 0, -1, -1]
    """
    # Long for its docstring (every parameter and its shape); the code itself is ~30 lines.
    x = _check_embeddings(embeddings)
    m = len(x)
    cannot = _check_pairs(cannot_link, m, "cannot_link")
    must = _check_pairs(must_link, m, "must_link")
    if cfg.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown clustering algorithm {cfg.algorithm!r} ({' | '.join(ALGORITHMS)})")
    if cfg.eps <= 0 or cfg.min_samples < 1:
        raise ValueError(f"eps must be > 0 and min_samples >= 1, got {cfg.eps}, {cfg.min_samples}")
    if m == 0:
        return np.zeros(0, np.int64)
    w = np.ones(m, np.float64) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if len(w) != m or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights must be {m} positive numbers")
    units = components(must, m)
    if len(cannot) and np.any(units[cannot[:, 0]] == units[cannot[:, 1]]):
        raise ValueError("constraints contradict: a cannot-link pair is joined by must-links")

    n = np.ones(m, np.float64) if counts is None else np.asarray(counts, np.float64).reshape(-1)
    if len(n) != m or not np.all(np.isfinite(n)) or np.any(n < 1):
        raise ValueError(f"counts must be {m} numbers >= 1")
    if cfg.algorithm == "graph-average":
        v = np.zeros(m) if noise is None else np.asarray(noise, np.float64).reshape(-1)
        if len(v) != m or not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"noise must be {m} numbers >= 0")
        raw = graph_average(x, cfg, n, cannot, must, v)
    elif cfg.algorithm == "dbscan":
        raw = dbscan(x, cfg.eps, cfg.min_samples, w, n, cfg.eps_mean)
        if cfg.split_chains:
            raw = split_chains(x, raw, float(pair_eps(n, n, cfg.eps, cfg.eps_mean).mean()))
    else:
        raw = chinese_whispers(x, cfg.eps, cannot, must)
    labels = vote_units(raw, units)
    labels = split_conflicts(x, labels, units, cannot)
    return relabel(_drop_small(labels, cfg.min_samples, w))


def mean_noise(faces: np.ndarray, averaged: int) -> float:
    """The sampling variance of a mean of `averaged` of these (K, D) descriptors of one track:
    their scatter sum |x_i - mean|^2 / (K - 1) (the unbiased estimate), over `averaged`; 0 for K < 2.

    >>> mean_noise(np.array([[0.0, 0.0], [0.6, 0.0]]), 2)
    0.09
    """
    x = np.asarray(faces, np.float64)
    if len(x) < 2:
        return 0.0
    scatter = float(((x - x.mean(axis=0)) ** 2).sum()) / (len(x) - 1)
    return round(scatter / max(1, averaged), 12)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..K-1 by their smallest index; -1 stays -1.

    >>> relabel(np.array([7, -1, 3, 7, 3])).tolist()
    [0, -1, 1, 0, 1]
    """
    labels = np.asarray(labels, np.int64)
    out = np.full(len(labels), UNMATCHED, np.int64)
    keep = labels != UNMATCHED
    if keep.any():
        _, first, inverse = np.unique(labels[keep], return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        out[keep] = rank[inverse]
    return out


def mean_descriptor(embeddings: np.ndarray) -> np.ndarray:
    """(K, D) descriptors of one person -> (D,) float32 mean (NaN rows ignored).

    >>> mean_descriptor(np.array([[0.0, 1.0], [1.0, 1.0]])).tolist()
    [0.5, 1.0]
    """
    x = np.asarray(embeddings, np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"expected a non-empty (K, D) array, got shape {x.shape}")
    ok = ~np.isnan(x).any(axis=1)
    if not ok.any():
        raise ValueError("every descriptor is NaN")
    return x[ok].mean(axis=0).astype(np.float32)


def stable_ids(
    prev: dict[int, int],
    keys: np.ndarray,
    labels: np.ndarray,
    remembered: dict[int, int] | None = None,
    reserved: Iterable[int] = (),
) -> np.ndarray:
    """Carry identity ids over from earlier runs.

    prev: key (face or track id) -> identity id of the earlier run (-1 = was unmatched).
    keys: (M,) int keys of this run's rows; labels: (M,) this run's cluster labels.
    remembered: cluster label -> the id an earlier run gave exactly this group of keys; such
        a cluster gets that id back first (so trying a setting and reverting it restores ids).
    reserved: ids held in earlier runs that a new cluster must not take.
    Then a cluster keeps old id `o` when more than half of its rows that the earlier run knew
    were `o`; each id goes to at most one cluster (the one sharing most rows with it).
    Other clusters get fresh ids above every old and reserved id, in label order. -1 stays -1.

    >>> stable_ids({10: 4, 11: 4, 12: 7}, np.array([10, 11, 12, 13]), np.array([0, 0, 1, -1])).tolist()
    [4, 4, 7, -1]
    >>> stable_ids({10: 4}, np.array([10, 20, 21]), np.array([1, 0, 0])).tolist()
    [4, 5, 5]
    >>> stable_ids({10: 4, 11: 4}, np.array([10, 11]), np.array([0, 1]), remembered={1: 6}, reserved=[6]).tolist()
    [4, 6]
    """
    # Long for its docstring (every rule of who keeps which id); the code itself is ~35 lines.
    keys = np.asarray(keys, np.int64)
    labels = np.asarray(labels, np.int64)
    if keys.shape != labels.shape or keys.ndim != 1:
        raise ValueError(f"keys and labels must be (M,) arrays of one length, got {keys.shape} and {labels.shape}")
    old = np.array([prev.get(int(k), UNMATCHED - 1) for k in keys], np.int64)  # -2 = not seen before
    clustered = labels != UNMATCHED
    known = clustered & (old != UNMATCHED - 1)
    n_known = {int(c): int(n) for c, n in zip(*np.unique(labels[known], return_counts=True), strict=True)}
    pairs = known & (old != UNMATCHED)
    candidates: list[tuple[int, int, int]] = []
    if pairs.any():
        both, counts = np.unique(np.stack([labels[pairs], old[pairs]], axis=1), axis=0, return_counts=True)
        candidates = sorted(((-int(n), int(c), int(o)) for (c, o), n in zip(both, counts, strict=True)))
    mapping: dict[int, int] = {}
    used: set[int] = set()
    for c, o in sorted((remembered or {}).items()):
        if c not in mapping and o not in used and o != UNMATCHED:
            mapping[c] = o
            used.add(o)
    for neg_n, c, o in candidates:
        if c not in mapping and o not in used and 2 * -neg_n > n_known[c]:
            mapping[c] = o
            used.add(o)
    next_id = max([UNMATCHED, *prev.values(), *reserved]) + 1
    for c in np.unique(labels[clustered]).tolist():
        if c not in mapping:
            mapping[c] = next_id
            next_id += 1
    out = np.full(len(labels), UNMATCHED, np.int64)
    if clustered.any():
        uniq, inverse = np.unique(labels[clustered], return_inverse=True)
        out[clustered] = np.array([mapping[c] for c in uniq.tolist()], np.int64)[inverse]
    return out


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"embeddings must be (M, D) with D > 0, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"embeddings must be numeric, got {x.dtype}")
    x = np.ascontiguousarray(x, np.float32)
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf (drop faces that were not encoded)")
    return x


def _check_pairs(pairs: np.ndarray | None, m: int, name: str) -> np.ndarray:
    if pairs is None:
        return EMPTY_PAIRS
    p = np.asarray(pairs)
    if p.size == 0:
        return EMPTY_PAIRS
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"{name} must be an integer (P, 2) array, got {p.dtype} {p.shape}")
    p = p.astype(np.int64)
    if p.min() < 0 or p.max() >= m:
        raise ValueError(f"{name} holds a row index outside [0, {m})")
    if np.any(p[:, 0] == p[:, 1]):
        raise ValueError(f"{name} pairs a row with itself")
    return p


def _drop_small(labels: np.ndarray, min_samples: int, weights: np.ndarray) -> np.ndarray:
    """Clusters whose rows stand for fewer than min_samples faces become noise."""
    if min_samples <= 1:
        return labels
    out = labels.copy()
    keep = labels != UNMATCHED
    if keep.any():
        _, inverse = np.unique(labels[keep], return_inverse=True)
        mass = np.bincount(inverse, weights=weights[keep])
        out[np.flatnonzero(keep)[mass[inverse] < min_samples]] = UNMATCHED
    return out

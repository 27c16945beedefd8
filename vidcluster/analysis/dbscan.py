"""The dbscan algorithm: DBSCAN over radius neighbourhoods (labelled as scikit-learn's would be),
and the chain check that splits what single linkage joined through look-alikes.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..types import UNMATCHED
from .neighbours import pair_eps, radius_pairs


def dbscan(
    x: np.ndarray, eps: float, min_samples: int, weights: np.ndarray, counts: np.ndarray, eps_mean: float
) -> np.ndarray:
    rows, cols, dist = radius_pairs(x, eps)
    if not (np.all(counts == 1) or eps_mean >= eps):  # each pair held to its own pair_eps
        keep = dist <= pair_eps(counts[rows], counts[cols], eps, eps_mean)
        rows, cols = rows[keep], cols[keep]
    return dbscan_labels(rows, cols, weights, min_samples)


def dbscan_labels(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, min_samples: float) -> np.ndarray:
    """DBSCAN over given neighbourhoods, labelled as scikit-learn's DBSCAN labels them.

    rows, cols: (P,) int64 ordered pairs (i, j): j is in i's neighbourhood (each row in its own,
    pairs symmetric). weights: (M,) faces each row stands for. A row is *core* when the weights
    of its neighbourhood add up to `min_samples`; core rows linked by neighbourhoods form a
    cluster, numbered by its smallest row; a non-core row next to core rows joins the
    lowest-numbered of their clusters; the rest is -1. Returns (M,) int64.

    >>> r = np.array([0, 0, 1, 1, 1, 2, 2, 3]); c = np.array([0, 1, 0, 1, 2, 1, 2, 3])
    >>> dbscan_labels(r, c, np.ones(4), 2).tolist(), dbscan_labels(r, c, np.ones(4), 3).tolist()
    ([0, 0, 0, -1], [0, 0, 0, -1])
    """
    m = len(weights)
    core = np.bincount(rows, weights=np.asarray(weights, np.float64)[cols], minlength=m) >= min_samples
    labels = np.full(m, -1, np.int64)
    core_rows = np.flatnonzero(core)
    if len(core_rows) == 0:
        return labels
    both = core[rows] & core[cols]
    graph = coo_matrix((np.ones(int(both.sum()), np.int8), (rows[both], cols[both])), shape=(m, m))
    _, component = connected_components(graph, directed=False)
    found, first = np.unique(component[core_rows], return_index=True)  # first: smallest core row of each
    number = np.empty(component.max() + 1, np.int64)
    number[found[np.argsort(first, kind="stable")]] = np.arange(len(found))
    labels[core_rows] = number[component[core_rows]]
    border = ~core[rows] & core[cols]
    lowest = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(lowest, rows[border], labels[cols[border]])
    joined = lowest < np.iinfo(np.int64).max
    labels[joined] = lowest[joined]
    return labels


CHAIN_SAMPLE = 2000  # members of one cluster that average linkage looks at (the rest follow their nearest)


def split_chains(x: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Split clusters that DBSCAN formed by chaining: average linkage within each, cut at `threshold`.

    DBSCAN joins two people when any pair of their faces comes within eps (single linkage),
    and look-alikes do (~0.45 between different people in real footage). Average linkage
    needs the groups to be close on average, which one close pair cannot fake. Clusters
    larger than CHAIN_SAMPLE are split on a deterministic sample; the other members join
    the sub-group with the nearest mean. Noise (-1) stays noise.

    >>> x = np.zeros((6, 2)); x[:, 0] = [0, 0.1, 0.45, 0.8, 0.9, 0.9]
    >>> split_chains(x, np.zeros(6, np.int64), 0.5).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    out = labels.copy()
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for c in np.unique(labels[labels != UNMATCHED]):
        rows = np.flatnonzero(labels == c)
        if len(rows) < 3:
            continue
        sample = rows if len(rows) <= CHAIN_SAMPLE else rows[np.linspace(0, len(rows) - 1, CHAIN_SAMPLE).astype(int)]
        sub = fcluster(linkage(x[sample], method="average", metric="euclidean"), t=threshold, criterion="distance")
        if sub.max() == 1:
            continue
        if len(sample) < len(rows):
            means = np.stack([x[sample[sub == k]].mean(axis=0) for k in range(1, sub.max() + 1)])
            sub = 1 + np.argmin(((x[rows, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
        # the sub-group holding the cluster's first row keeps the label; the others get new ones
        keep = sub[0]
        for k in np.unique(sub):
            if k != keep:
                out[rows[sub == k]] = next_label
                next_label += 1
    return out

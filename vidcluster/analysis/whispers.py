"""The chinese-whispers algorithm: label propagation on the k-nearest-neighbour graph, seeded and
vectorised in slices so the result does not depend on the machine.
"""

from __future__ import annotations

import numpy as np

from .neighbours import knn_graph

CW_NEIGHBORS = 30  # neighbours per row in the Chinese-whispers graph (edges kept only below eps)
CW_ITERATIONS = 50  # passes over all rows at most; stops earlier once no label changes
CW_BATCHES = 16  # rows updated together per pass are 1/CW_BATCHES of all rows (vectorised, yet stable)
CW_SEED = 0


def chinese_whispers(x: np.ndarray, eps: float, cannot: np.ndarray, must: np.ndarray) -> np.ndarray:
    """Chinese whispers on a k-nearest-neighbour graph whose edges are shorter than eps.

    Every row starts with a label of its own; in a seeded random order, slices of rows
    adopt the label with the largest total edge weight among their neighbours (ties: the
    lowest label). Edge weight is 1 - d / (2 eps), so nearer neighbours count more (0.5..1).
    Must-link pairs are extra edges of weight 1; cannot-link pairs lose their edge. A
    cannot-link pair may still end up in one cluster through others; `cluster` splits
    such clusters afterwards, the same way as for DBSCAN.
    """
    m = len(x)
    src, dst, w = _knn_edges(x, eps)
    if len(must):
        src = np.concatenate([src, must[:, 0], must[:, 1]])
        dst = np.concatenate([dst, must[:, 1], must[:, 0]])
        w = np.concatenate([w, np.ones(2 * len(must), np.float64)])
    if len(cannot):
        banned = np.concatenate([cannot[:, 0] * m + cannot[:, 1], cannot[:, 1] * m + cannot[:, 0]])
        keep = ~np.isin(src * m + dst, banned)
        src, dst, w = src[keep], dst[keep], w[keep]
    order = np.argsort(src, kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    start = np.searchsorted(src, np.arange(m + 1))

    labels = np.arange(m, dtype=np.int64)
    rng = np.random.default_rng(CW_SEED)
    n_slices = max(1, min(CW_BATCHES, m))
    for _ in range(CW_ITERATIONS):
        changed = 0
        for rows in np.array_split(rng.permutation(m), n_slices):
            changed += _cw_update(labels, rows, start, dst, w)
        if changed == 0:
            break
    return labels


def _knn_edges(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric edge list (src, dst, weight) of each row's nearest neighbours closer than eps."""
    a, b, d = knn_graph(x, CW_NEIGHBORS, radius=eps).edges()
    keep = d < eps
    a, b, d = a[keep], b[keep], d[keep]
    src = np.concatenate([a, b])  # each undirected edge once per direction
    dst = np.concatenate([b, a])
    d = np.concatenate([d, d])
    return src, dst, 1.0 - d / (2.0 * eps)


def _cw_update(labels: np.ndarray, rows: np.ndarray, start: np.ndarray, dst: np.ndarray, w: np.ndarray) -> int:
    """Update labels[rows] in place (one slice of a pass); return how many changed."""
    counts = start[rows + 1] - start[rows]
    if counts.sum() == 0:
        return 0
    owner = np.repeat(np.arange(len(rows)), counts)  # position in `rows` of each edge's source
    pos = np.arange(counts.sum()) + np.repeat(start[rows] - (np.cumsum(counts) - counts), counts)
    m = len(labels)
    uniq, inverse = np.unique(owner * m + labels[dst[pos]], return_inverse=True)
    score = np.bincount(inverse, weights=w[pos])
    u_owner, u_label = uniq // m, uniq % m
    best = np.lexsort((u_label, -score, u_owner))  # per row: highest score, then lowest label
    first = np.concatenate([[True], u_owner[best][1:] != u_owner[best][:-1]])
    winners = best[first]
    targets = rows[u_owner[winners]]
    changed = int(np.count_nonzero(labels[targets] != u_label[winners]))
    labels[targets] = u_label[winners]
    return changed

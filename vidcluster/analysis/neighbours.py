"""The k-nearest-neighbour graph of face descriptors: the only all-rows search clustering does.

Below `EXACT_BELOW` rows the graph is exact (faiss brute force: blocked matrix products).
Above it, rows are split into k-means cells of ~CELL_ROWS rows and each row is searched
exhaustively in the few cells nearest to it (an inverted-file search done one cell at a time
with matrix products), so the graph costs ~n * CELL_PROBES * CELL_ROWS distances instead of
n^2. On descriptors shaped like faces (tight groups per person) it finds nearly all true
neighbours (`python -m benchmarks scale` measures the recall); on uniformly random vectors
any such partition misses many, which is why the recall is measured on face-like data.

`pair_eps` is the distance under which two rows count as neighbours, by how many descriptors
each averages.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

EXACT_BELOW = 20_000  # rows: below this one exhaustive search is cheaper than partitioning
CELL_ROWS = 500  # mean rows per k-means cell of the approximate search
CELL_PROBES = 4  # cells searched per row: its own and the next nearest ones
KMEANS_ITERATIONS = 10
KMEANS_SAMPLE_PER_CELL = 64  # rows sampled per cell to train the k-means centroids
SEED = 1


@dataclass(frozen=True)
class NeighbourGraph:
    """Each row's k nearest other rows, nearest first.

    idx: (M, k) int64 row indexes, -1 where a row has fewer than k others.
    dist_sq: (M, k) float32 squared euclidean distances (inf where idx is -1).
    exact: whether the search was exhaustive.
    """

    idx: np.ndarray
    dist_sq: np.ndarray
    exact: bool

    def __post_init__(self) -> None:
        if self.idx.shape != self.dist_sq.shape or self.idx.ndim != 2:
            raise ValueError(f"idx and dist_sq must be (M, k) of one shape, got {self.idx.shape}, {self.dist_sq.shape}")

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def k(self) -> int:
        return self.idx.shape[1]

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Undirected edges once each as (a, b, distance) with a < b: (E,) int64, int64, float64.

        >>> g = knn_graph(np.array([[0.0], [1.0], [3.0]], np.float32), k=1)
        >>> [x.tolist() for x in g.edges()]
        [[0, 1], [1, 2], [1.0, 2.0]]
        """
        m, k = self.idx.shape
        a = np.repeat(np.arange(m, dtype=np.int64), k)
        b = self.idx.ravel()
        d = self.dist_sq.ravel()
        ok = b >= 0
        a, b, d = a[ok], b[ok], d[ok]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = lo * m + hi
        key, first = np.unique(key, return_index=True)
        return lo[first], hi[first], np.sqrt(np.maximum(d[first], 0.0)).astype(np.float64)


def knn_graph(x: np.ndarray, k: int, radius: float = np.inf, exact: bool | None = None) -> NeighbourGraph:
    """The k nearest neighbours (excluding the row itself) of every row of x, within `radius`.

    x: (M, D) float32 descriptors. k: neighbours per row (capped at M - 1).
    radius: neighbours farther than this (euclidean) are left out (idx -1); a finite radius
        also lets the approximate search skip cells that cannot hold such a neighbour.
    exact: force exhaustive (True) or cell (False) search; None picks by size (`EXACT_BELOW`).

    >>> g = knn_graph(np.array([[0.0], [1.0], [3.0]], np.float32), k=2)
    >>> g.idx.tolist(), g.dist_sq.tolist()
    ([[1, 2], [0, 2], [1, 0]], [[1.0, 9.0], [1.0, 4.0], [4.0, 9.0]])
    """
    x = np.ascontiguousarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"x must be (M, D), got shape {x.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    m = len(x)
    k = min(k, max(m - 1, 0))
    if k == 0:
        return NeighbourGraph(np.zeros((m, 0), np.int64), np.zeros((m, 0), np.float32), True)
    use_exact = m < EXACT_BELOW if exact is None else exact
    if use_exact:
        dist_sq, idx = faiss.knn(x, x, k + 1)
    else:
        dist_sq, idx = _cell_search(x, k + 1, radius)
    idx, dist_sq = _drop_self(idx.astype(np.int64), dist_sq, k)
    far = dist_sq > np.float32(radius) ** 2
    idx[far], dist_sq[far] = -1, np.inf
    return NeighbourGraph(idx, dist_sq, use_exact)


def nearest(queries: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest of `rows` (R, D) to each of `queries` (Q, D), exhaustively: ((Q,) float64
    euclidean distances, (Q,) int64 row indexes). R must be at least 1.

    >>> d, i = nearest(np.array([[0.9], [2.6]], np.float32), np.array([[0.0], [1.0], [3.0]], np.float32))
    >>> i.tolist(), d.round(2).tolist()
    ([1, 2], [0.1, 0.4])
    """
    base = np.ascontiguousarray(rows, np.float32)
    if len(base) == 0:
        raise ValueError("nearest needs at least one row to search")
    dist_sq, idx = faiss.knn(np.ascontiguousarray(queries, np.float32), base, 1)
    return np.sqrt(np.maximum(dist_sq[:, 0], 0.0)).astype(np.float64), idx[:, 0].astype(np.int64)


def radius_pairs(
    x: np.ndarray, radius: float, block_values: int = 1 << 22
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair of rows of x (M, D) at most `radius` apart (euclidean), each row with
    itself included, exhaustively: ((P,) int64 rows, (P,) int64 columns, (P,) float64 distances,
    float32-exact), sorted by row, then column. Square blocks of at most `block_values`
    distances, each unordered pair measured once (one matrix product per block).

    >>> r, c, d = radius_pairs(np.array([[0.0], [1.0], [3.0]]), 1.0)
    >>> r.tolist(), c.tolist(), d.tolist()
    ([0, 0, 1, 1, 2], [0, 1, 0, 1, 2], [0.0, 1.0, 1.0, 0.0, 0.0])
    """
    x = np.ascontiguousarray(x, np.float32)
    m = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    step = max(1, int(np.sqrt(block_values)))
    limit = np.float32(radius) ** 2
    rows, cols, dists = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float64)]
    for a in range(0, m, step):
        for b in range(a, m, step):
            d_sq = x[a : a + step] @ x[b : b + step].T
            d_sq *= -2.0
            d_sq += sq[b : b + step][None, :]
            d_sq += sq[a : a + step][:, None]
            if a == b:
                d_sq[np.tril_indices(len(d_sq))] = np.inf  # pairs above the diagonal; each row with itself below
            flat = np.flatnonzero(d_sq <= limit)
            r, c = np.divmod(flat, d_sq.shape[1])
            rows.append(r + a)
            cols.append(c + b)
            dists.append(np.sqrt(np.maximum(d_sq.ravel()[flat], 0.0)).astype(np.float64))
    r, c, d = (np.concatenate(p) for p in (rows, cols, dists))
    own = np.arange(m, dtype=np.int64)
    r, c, d = np.concatenate([r, c, own]), np.concatenate([c, r, own]), np.concatenate([d, d, np.zeros(m)])
    order = np.lexsort((c, r))
    return r[order], c[order], d[order]


def recall(approx: NeighbourGraph, truth: NeighbourGraph) -> float:
    """Share of the true k nearest neighbours that the approximate graph found (0..1).

    >>> g = knn_graph(np.arange(6, dtype=np.float32).reshape(-1, 1), k=2)
    >>> recall(g, g)
    1.0
    """
    if approx.idx.shape != truth.idx.shape:
        raise ValueError("the two graphs must have the same shape")
    m, k = truth.idx.shape
    if m * k == 0:
        return 1.0
    found = sum(len(np.intersect1d(a[a >= 0], t[t >= 0])) for a, t in zip(approx.idx, truth.idx, strict=True))
    return found / float(np.count_nonzero(truth.idx >= 0))


def _cell_search(x: np.ndarray, k: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest neighbours (self included) by exhaustive search inside k-means cells.

    Every row lives in the cell of its nearest centroid and searches the CELL_PROBES cells
    nearest to it, less those whose border with its own cell is farther than `radius` away
    (such a cell holds no row within radius of it). One person's faces are a tight group, so they share a cell or sit near
    the border of two; the search per cell is one matrix product (BLAS), which is what makes
    it fast: about n * CELL_PROBES * CELL_ROWS distances instead of n^2.
    Returns (M, k) float32 squared distances and (M, k) int64 indexes, nearest first.
    """
    m, dim = x.shape
    n_cells = max(2, m // CELL_ROWS)
    probes = min(CELL_PROBES, n_cells)
    kmeans = faiss.Kmeans(
        dim, n_cells, niter=KMEANS_ITERATIONS, seed=SEED, max_points_per_centroid=KMEANS_SAMPLE_PER_CELL
    )
    kmeans.train(x)
    centroids = kmeans.centroids
    if centroids is None:  # faiss fills them in train(); None only before it
        raise RuntimeError("faiss k-means left no centroids after training")
    centroid_sq, near = kmeans.index.search(x, probes)
    home = near[:, 0]
    if np.isfinite(radius) and probes > 1:
        gap = _centroid_gaps(centroids, home, near[:, 1:])
        border = (centroid_sq[:, 1:] - centroid_sq[:, :1]) / (2.0 * gap)  # distance to the bisector
        near[:, 1:][border > radius] = -1
    members = np.argsort(home, kind="stable")
    member_bounds = np.searchsorted(home[members], np.arange(n_cells + 1))
    query_cell = near.ravel()
    queries = np.argsort(query_cell, kind="stable")  # flat row * probes + slot; skipped (-1) sort first
    query_bounds = np.searchsorted(query_cell[queries], np.arange(n_cells + 1))
    dist_sq = np.full((m * probes, k), np.inf, np.float32)
    idx = np.full((m * probes, k), -1, np.int64)
    for c in range(n_cells):
        db = members[member_bounds[c] : member_bounds[c + 1]]
        flat = queries[query_bounds[c] : query_bounds[c + 1]]
        if len(db) == 0 or len(flat) == 0:
            continue
        kk = min(k, len(db))
        d, i = faiss.knn(x[flat // probes], x[db], kk)
        dist_sq[flat, :kk] = d
        idx[flat, :kk] = db[i]
    dist_sq = dist_sq.reshape(m, probes * k)  # rows of skipped probes stay inf / -1
    idx = idx.reshape(m, probes * k)
    best = np.argsort(dist_sq, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist_sq, best, axis=1), np.take_along_axis(idx, best, axis=1)


def _centroid_gaps(centroids: np.ndarray, home: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(M, P) distances between each row's home centroid and its other probed centroids."""
    sq = (centroids**2).sum(axis=1)
    between = np.maximum(sq[:, None] + sq[None, :] - 2.0 * centroids @ centroids.T, 1e-12)
    return np.sqrt(between[home[:, None], other])


def _drop_self(idx: np.ndarray, dist_sq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from its k+1 results (or the farthest one, when identical rows hide it)."""
    m = len(idx)
    own = idx == np.arange(m)[:, None]
    has_own = own.any(axis=1)
    own[~has_own, -1] = True  # the row itself is missing (ties): drop the farthest result instead
    keep = ~own
    # exactly one column is dropped per row; a duplicate own index (cannot happen) would keep k+1 - 2
    idx = idx[keep].reshape(m, k)
    dist_sq = dist_sq[keep].reshape(m, k).astype(np.float32)
    dist_sq[idx < 0] = np.inf
    return idx, dist_sq


def pair_eps(n_i: np.ndarray, n_j: np.ndarray, eps: float, eps_mean: float) -> np.ndarray:
    """Distance under which two rows averaging n_i and n_j descriptors are neighbours.

    eps for two single faces, approaching eps_mean as both average more faces (the noise of a
    mean falls with 1/sqrt(n); what stays is the real difference between two people).

    >>> pair_eps(np.array([1.0, 4.0]), np.array([1.0, 4.0]), 0.5, 0.42).round(3).tolist()
    [0.5, 0.46]
    """
    n_i, n_j = np.asarray(n_i, np.float64), np.asarray(n_j, np.float64)
    return eps_mean + (eps - eps_mean) * np.sqrt((1.0 / n_i + 1.0 / n_j) / 2.0)

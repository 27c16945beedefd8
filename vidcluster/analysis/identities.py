"""Group face descriptors into identities (unsupervised), honouring pairwise constraints.

Pure numpy and scipy, plus faiss for the nearest-neighbour graph (`neighbours.py`). Input rows are dlib 128-d descriptors (one per face, or one per track when
the caller has aggregated tracks first). Algorithms: graph-average (the default: candidate
groups from the neighbour graph, then average linkage with a spread check, see
`graph_average`), dbscan (with a chain check), chinese-whispers. Output is one integer label per row:
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

import itertools
from collections.abc import Iterable

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist

from ..config import IdentitiesConfig
from ..types import UNMATCHED
from .neighbours import NeighbourGraph, knn_graph, radius_pairs

CW_NEIGHBORS = 30  # neighbours per row in the Chinese-whispers graph (edges kept only below eps)
CW_ITERATIONS = 50  # passes over all rows at most; stops earlier once no label changes
CW_BATCHES = 16  # rows updated together per pass are 1/CW_BATCHES of all rows (vectorised, yet stable)
CW_SEED = 0

_EMPTY_PAIRS = np.zeros((0, 2), np.int64)
ALGORITHMS = ("graph-average", "dbscan", "chinese-whispers")
CANNOT_DISTANCE = 10.0  # stands in for a cannot-link pair's distance in average linkage (real ones are < 2)


def cluster(
    embeddings: np.ndarray,
    cfg: IdentitiesConfig,
    cannot_link: np.ndarray | None = None,
    must_link: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    counts: np.ndarray | None = None,
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
    # Over 50 lines on purpose: most of it is the docstring (shapes and every parameter); the code is ~40
    # lines of dispatch per algorithm.
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
    units = _components(must, m)
    if len(cannot) and np.any(units[cannot[:, 0]] == units[cannot[:, 1]]):
        raise ValueError("constraints contradict: a cannot-link pair is joined by must-links")

    n = np.ones(m, np.float64) if counts is None else np.asarray(counts, np.float64).reshape(-1)
    if len(n) != m or not np.all(np.isfinite(n)) or np.any(n < 1):
        raise ValueError(f"counts must be {m} numbers >= 1")
    if cfg.algorithm == "graph-average":
        raw = graph_average(x, cfg, n, cannot, must)
    elif cfg.algorithm == "dbscan":
        raw = _dbscan(x, cfg.eps, cfg.min_samples, w, n, cfg.eps_mean)
        if cfg.split_chains:
            raw = split_chains(x, raw, float(pair_eps(n, n, cfg.eps, cfg.eps_mean).mean()))
    else:
        raw = _chinese_whispers(x, cfg.eps, cannot, must)
    labels = _vote_units(raw, units)
    labels = _split_conflicts(x, labels, units, cannot)
    return relabel(_drop_small(labels, cfg.min_samples, w))


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
    # Over 50 lines on purpose: the docstring (every rule of who keeps which id) makes up the excess; the
    # code is under 40 lines.
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


# --- checks -------------------------------------------------------------------------------


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
        return _EMPTY_PAIRS
    p = np.asarray(pairs)
    if p.size == 0:
        return _EMPTY_PAIRS
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"{name} must be an integer (P, 2) array, got {p.dtype} {p.shape}")
    p = p.astype(np.int64)
    if p.min() < 0 or p.max() >= m:
        raise ValueError(f"{name} holds a row index outside [0, {m})")
    if np.any(p[:, 0] == p[:, 1]):
        raise ValueError(f"{name} pairs a row with itself")
    return p


# --- algorithms ---------------------------------------------------------------------------


def pair_eps(n_i: np.ndarray, n_j: np.ndarray, eps: float, eps_mean: float) -> np.ndarray:
    """Distance under which two rows averaging n_i and n_j descriptors are neighbours.

    eps for two single faces, approaching eps_mean as both average more faces (the noise of a
    mean falls with 1/sqrt(n); what stays is the real difference between two people).

    >>> pair_eps(np.array([1.0, 4.0]), np.array([1.0, 4.0]), 0.5, 0.42).round(3).tolist()
    [0.5, 0.46]
    """
    n_i, n_j = np.asarray(n_i, np.float64), np.asarray(n_j, np.float64)
    return eps_mean + (eps - eps_mean) * np.sqrt((1.0 / n_i + 1.0 / n_j) / 2.0)


def _dbscan(
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


def graph_average(
    x: np.ndarray,
    cfg: IdentitiesConfig,
    counts: np.ndarray,
    cannot: np.ndarray = _EMPTY_PAIRS,
    must: np.ndarray = _EMPTY_PAIRS,
) -> np.ndarray:
    """Candidate groups from the nearest-neighbour graph, then average linkage with a spread check.

    x: (M, D) float32; counts: (M,) descriptors each row averages; cannot, must: (P, 2) row pairs.
    0. Near-duplicates: rows closer than DUPLICATE_SHARE * min(eps, eps_mean) to each other (copies
       of one file, a person standing still day after day) become one node, which steps 1 and 2
       see once; every row gets its node's label (`_collapse_near_duplicates`). Otherwise such
       rows fill each other's neighbour lists and, in step 2, make their person's spread look
       tighter than it is, and the answer would change as the case grows.
    1. Graph: each row's cfg.neighbours nearest rows (`neighbours.knn_graph`); an edge counts
       when it is shorter than `pair_eps` (eps for single faces, towards eps_mean for track
       means). Cannot-link edges are removed, must-link edges added. Connected parts are the
       candidate groups: nothing outside one can join it, so the rest is local.
    2. Inside each candidate group, average linkage (cannot-link pairs at CANNOT_DISTANCE).
       Two sub-groups join only when (a) their average distance is within
       pair_eps(.., eps_average, eps_mean) (dlib's same-person limit 0.6 for single faces;
       an average, so one close pair between look-alikes cannot fake it), and (b) it is at
       most spread_ratio times the average distance inside the wider of the two, when both
       have two rows or more, or when one is a group and the other a single track (the mean of
       several faces is as steady as any of the group's rows; a spread never counts as less than
       cfg.min_spread, the encoder's floor: near-duplicates say little). A single photo joining a
       group is held to (a) alone, as one varied photo may sit far from the rest of its person.
       Two brothers' tracks may come within 0.36-0.41 of each other, yet
       each brother's own tracks are much closer together than that, while one person's
       varied photos are far apart among themselves too, so they still join.
    Returns (M,) int64 raw labels (not yet renumbered, no noise).

    >>> x = np.zeros((6, 2), np.float32); x[:, 0] = [0, 0.1, 0.2, 1.0, 1.1, 1.2]
    >>> graph_average(x, IdentitiesConfig(eps=0.5), np.ones(6)).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    node_of, nodes, counts, cannot, must, graph = _collapse_near_duplicates(x, counts, cannot, must, cfg)
    return _graph_average_nodes(nodes, cfg, counts, cannot, must, graph)[node_of]


def _graph_average_nodes(
    x: np.ndarray,
    cfg: IdentitiesConfig,
    counts: np.ndarray,
    cannot: np.ndarray,
    must: np.ndarray,
    graph: NeighbourGraph,
) -> np.ndarray:
    """Steps 1 and 2 of `graph_average` on rows that are no near-duplicates of each other."""
    m = len(x)
    a, b, d = graph.edges()
    keep = d <= pair_eps(counts[a], counts[b], cfg.eps, cfg.eps_mean)
    a, b = a[keep], b[keep]
    if len(cannot):
        banned = np.concatenate([cannot[:, 0] * m + cannot[:, 1], cannot[:, 1] * m + cannot[:, 0]])
        ok = ~np.isin(a * m + b, banned)
        a, b = a[ok], b[ok]
    if len(must):
        a, b = np.concatenate([a, must[:, 0]]), np.concatenate([b, must[:, 1]])
    groups = _bridge_full_groups(x, counts, _components(np.stack([a, b], axis=1), m), cfg)
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order], prepend=-1, append=-1))
    labels = groups.copy()
    partners = _partner_lists(cannot)
    next_label = m
    for lo, hi in itertools.pairwise(bounds):
        if hi - lo < 2:
            continue
        rows = order[lo:hi]
        sub = _average_split(x[rows], counts[rows], _local_pairs(rows, partners), cfg)
        if sub.max() > 0:
            labels[rows[sub > 0]] = next_label + sub[sub > 0]
            next_label += int(sub.max()) + 1
    return labels


def _bridge_full_groups(x: np.ndarray, counts: np.ndarray, groups: np.ndarray, cfg: IdentitiesConfig) -> np.ndarray:
    """Join candidate groups that a radius graph would join but the k-nearest lists missed.

    A group with more rows than cfg.neighbours can fill every member's list by itself (a person
    seen in hundreds of sightings, in two lighting conditions), so an edge to another group within
    pair_eps may be missing. Both ends of a missing edge need lists full of nearer rows, so both
    groups are that large: for each such pair of groups among the nearest by centre, the closest
    pair across is measured exactly (the triangle inequality skips pairs of groups that cannot
    come close enough); groups with a pair within pair_eps become one.
    Returns (M,) group ids.
    """
    sizes = np.bincount(groups)
    if not np.any(sizes > cfg.neighbours):
        return groups
    g = len(sizes)
    big = np.flatnonzero(sizes > cfg.neighbours)
    if len(big) < 2:
        return groups
    member = coo_matrix((np.ones(len(x)), (groups, np.arange(len(x)))), shape=(g, len(x))).tocsr()
    centres = (member[big] @ x.astype(np.float64) / sizes[big, None]).astype(np.float32)  # (B, D)
    slot = np.full(g, -1, np.int64)
    slot[big] = np.arange(len(big))
    in_big = slot[groups] >= 0
    reach = np.zeros(len(big))
    np.maximum.at(reach, slot[groups[in_big]], np.linalg.norm(x[in_big] - centres[slot[groups[in_big]]], axis=1))
    limit = max(cfg.eps, cfg.eps_mean)
    limit_sq = np.float32(limit) ** 2
    sq = np.einsum("ij,ij->i", x, x)
    near = knn_graph(centres, cfg.neighbours)
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(g + 1))
    joins = []
    for i, j, d in zip(*(e.tolist() for e in near.edges()), strict=True):
        if d - reach[i] - reach[j] > limit:
            continue
        p, q = int(big[i]), int(big[j])
        rp, rq = order[bounds[p] : bounds[p + 1]], order[bounds[q] : bounds[q + 1]]
        across_sq = sq[rp][:, None] + sq[rq][None, :] - 2.0 * (x[rp] @ x[rq].T)
        if across_sq.min() > limit_sq:
            continue
        across = np.sqrt(np.maximum(across_sq, 0.0))
        if np.any(across <= pair_eps(counts[rp][:, None], counts[rq][None, :], cfg.eps, cfg.eps_mean)):
            joins.append((p, q))
    if not joins:
        return groups
    return _components(np.array(joins, np.int64), g)[groups]


DUPLICATE_SHARE = 0.2  # graph-average: rows closer than this share of min(eps, eps_mean) count as one node
#   (0.084 for dlib's defaults: copies of one file are 0 apart, one person's faces in one clip ~0.23,
#   the closest different people ~0.36)
DUPLICATE_PASSES = 8  # collapse rounds at most (one round joins a node with the near-duplicates in its list)


def _collapse_near_duplicates(
    x: np.ndarray,
    counts: np.ndarray,
    cannot: np.ndarray,
    must: np.ndarray,
    cfg: IdentitiesConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, NeighbourGraph]:
    """Merge rows that are near-duplicates of each other into one node, for `graph_average`.

    A person seen many times alike (copies of one file, one guard at one desk every day) gives
    rows a hair apart. Left as rows, they fill each other's neighbour lists, so the person's
    other sightings drop out of the graph, and in average linkage they make the person's spread
    look tighter than it is, so his own groups refuse to join. A node stands for them once.

    Each round, rows in index order become the first row of a node and take in every row not
    yet placed that sits within the duplicate radius in the neighbour graph, unless a cannot-link
    forbids it (so two rows of one node are never more than twice the radius apart). A row with
    more near-duplicates than the list holds gets the rest in the next round, on the nodes.
    A node is represented by its first row (a mean would drift towards the person's centre
    round after round and swallow him whole); each later round halves the radius, so a node's
    rows stay within twice the first radius of its first row.
    Returns (node_of (M,) int64, node descriptors (N, D) float32: each node's first row, node
    counts (N,): the largest count among the members (copies bring no new faces), cannot and
    must as node pairs, the neighbour graph of the nodes).
    """
    radius = max(cfg.eps, cfg.eps_mean)
    dup = DUPLICATE_SHARE * min(cfg.eps, cfg.eps_mean)
    node_of = np.arange(len(x), dtype=np.int64)
    first = node_of  # (N,) the row that stands for each node: its first row, so nodes never drift
    graph = knn_graph(x, cfg.neighbours, radius=radius)
    for _ in range(DUPLICATE_PASSES):
        a, b, d = graph.edges()
        close = d <= dup
        if not close.any():
            break
        node_cannot = node_of[cannot] if len(cannot) else _EMPTY_PAIRS
        leader = _leaders(len(first), a[close], b[close], d[close], node_cannot)
        if np.all(leader == np.arange(len(first))):
            break  # every close pair is a cannot-link
        kept, dense = np.unique(leader, return_inverse=True)
        node_of = dense[node_of].astype(np.int64)
        first = first[kept]
        graph = knn_graph(x[first], cfg.neighbours, radius=radius)
        dup /= 2.0  # a node's rows stay within 2 x the first radius of its first row
    if len(first) == len(x):
        return node_of, x, counts, cannot, must, graph
    n = np.zeros(len(first), np.float64)
    np.maximum.at(n, node_of, counts)
    return node_of, x[first], n, _node_pairs(node_of, cannot), _node_pairs(node_of, must), graph


def _leaders(k: int, a: np.ndarray, b: np.ndarray, d: np.ndarray, cannot: np.ndarray) -> np.ndarray:
    """(k,) the node each of k rows joins, given close pairs (a, b, distance): see `_collapse_near_duplicates`."""
    src, dst, dist = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([d, d])
    order = np.lexsort((dst, dist, src))  # per row: nearest first, then by index
    close: dict[int, list[int]] = {}
    for u, v in zip(src[order].tolist(), dst[order].tolist(), strict=True):
        close.setdefault(u, []).append(v)
    partners: dict[int, set[int]] = {}
    for i, j in cannot.tolist():
        partners.setdefault(i, set()).add(j)
        partners.setdefault(j, set()).add(i)
    leader = np.arange(k, dtype=np.int64)
    placed = np.zeros(k, bool)
    for u in sorted(close):
        if placed[u]:
            continue
        placed[u] = True
        banned = set(partners.get(u, ()))
        for v in close[u]:
            if placed[v] or v in banned:
                continue
            leader[v] = u
            placed[v] = True
            banned |= partners.get(v, set())
    return leader


def _node_pairs(node_of: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Row pairs as distinct node pairs; pairs inside one node drop out."""
    if len(pairs) == 0:
        return _EMPTY_PAIRS
    p = node_of[pairs]
    p = p[p[:, 0] != p[:, 1]]
    return np.unique(np.sort(p, axis=1), axis=0).reshape(-1, 2)


AVERAGE_SAMPLE = 2000  # rows of one candidate group that average linkage looks at (the rest join the nearest mean)


def _average_split(xs: np.ndarray, ns: np.ndarray, cannot: np.ndarray, cfg: IdentitiesConfig) -> np.ndarray:
    """(G,) sub-group ids 0..S-1 of one candidate group (see `graph_average`); sub-group 0 holds row 0."""
    g = len(xs)
    sample = np.arange(g) if g <= AVERAGE_SAMPLE else np.linspace(0, g - 1, AVERAGE_SAMPLE).astype(np.int64)
    s = len(sample)
    dist = pdist(xs[sample].astype(np.float64))
    if len(cannot):
        pos = np.full(g, -1, np.int64)
        pos[sample] = np.arange(s)
        i, j = pos[cannot[:, 0]], pos[cannot[:, 1]]
        ok = (i >= 0) & (j >= 0)
        i, j = np.minimum(i[ok], j[ok]), np.maximum(i[ok], j[ok])
        dist[s * i - i * (i + 1) // 2 + (j - i - 1)] = CANNOT_DISTANCE  # condensed index of (i, j)
    tree = linkage(dist, method="average")
    top = _accepted_subtrees(tree, ns[sample], cfg)
    _, sub = np.unique(top[:s], return_inverse=True)  # ordered by subtree id, not by row: fixed below
    if s < g:
        means = np.stack([xs[sample[sub == k]].mean(axis=0) for k in range(sub.max() + 1)]).astype(np.float64)
        sq = (means**2).sum(axis=1)[None, :] - 2.0 * (xs.astype(np.float64) @ means.T)  # (G, S), no (G, S, D) copy
        sub = np.argmin(sq, axis=1)
    _, first, inverse = np.unique(sub, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def _accepted_subtrees(tree: np.ndarray, ns: np.ndarray, cfg: IdentitiesConfig) -> np.ndarray:
    """For each node of an average-linkage tree, the highest ancestor reached through accepted merges.

    tree: scipy linkage (S-1, 4); ns: (S,) descriptor counts of the leaves. A merge at height h
    of sub-groups A and B is accepted when both were accepted and h passes both checks of
    `graph_average`. The spread of a node is the mean distance between its leaves, kept as a
    running sum: within(A u B) = within(A) + within(B) + h |A| |B| (h is the mean across).
    Returns (2S-1,) node ids; leaves come first.
    """
    s = len(ns)
    size = np.ones(2 * s - 1)
    within = np.zeros(2 * s - 1)  # sum of distances between the leaves of a node
    count_sum = np.zeros(2 * s - 1)
    count_sum[:s] = ns
    accepted = np.ones(2 * s - 1, bool)
    parent = np.full(2 * s - 1, -1, np.int64)
    for t, (p, q, h, _) in enumerate(tree):
        p, q, node = int(p), int(q), s + t
        size[node] = size[p] + size[q]
        within[node] = within[p] + within[q] + h * size[p] * size[q]
        count_sum[node] = count_sum[p] + count_sum[q]
        limit = pair_eps(count_sum[p] / size[p], count_sum[q] / size[q], cfg.eps_average, cfg.eps_mean)
        ok = h <= limit
        groups = [c for c in (p, q) if size[c] >= 2]
        single_track = any(size[c] == 1 and count_sum[c] >= 2 for c in (p, q))
        if len(groups) == 2 or (groups and single_track):  # compare with the groups' own spread
            spread = max(within[c] / (size[c] * (size[c] - 1) / 2) for c in groups)
            ok = ok and h <= cfg.spread_ratio * max(cfg.min_spread, spread)
        accepted[node] = ok and accepted[p] and accepted[q]
        if accepted[node]:
            parent[p] = parent[q] = node
    top = np.arange(2 * s - 1)
    for node in range(2 * s - 2, -1, -1):
        if parent[node] >= 0:
            top[node] = top[parent[node]]
    return top


def _partner_lists(cannot: np.ndarray) -> dict[int, list[int]]:
    """{row: rows it cannot be grouped with} (each pair listed under its first row)."""
    partners: dict[int, list[int]] = {}
    for i, j in cannot.tolist():
        partners.setdefault(i, []).append(j)
    return partners


def _local_pairs(rows: np.ndarray, partners: dict[int, list[int]]) -> np.ndarray:
    """Cannot-link pairs among `rows`, as positions in `rows`."""
    if not partners:
        return _EMPTY_PAIRS
    pos = {int(r): k for k, r in enumerate(rows.tolist())}
    out = [(pos[i], pos[j]) for i in pos if i in partners for j in partners[i] if j in pos]
    return np.array(out, np.int64).reshape(-1, 2)


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


def _chinese_whispers(x: np.ndarray, eps: float, cannot: np.ndarray, must: np.ndarray) -> np.ndarray:
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


# --- constraints --------------------------------------------------------------------------


def _components(pairs: np.ndarray, m: int) -> np.ndarray:
    """(M,) connected-component id of each row under the given pairs."""
    if len(pairs) == 0:
        return np.arange(m, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _vote_units(labels: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Give every must-link unit the most common non-noise label of its rows (ties: lowest).

    Units whose rows are all noise stay noise.
    """
    keep = labels != UNMATCHED
    if not keep.any() or len(np.unique(units)) == len(units):
        return labels
    pairs, counts = np.unique(np.stack([units[keep], labels[keep]], axis=1), axis=0, return_counts=True)
    best = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))  # per unit: most rows, then lowest label
    first = np.concatenate([[True], pairs[best][1:, 0] != pairs[best][:-1, 0]])
    winner_unit, winner_label = pairs[best][first, 0], pairs[best][first, 1]
    out = labels.copy()
    pos = np.searchsorted(winner_unit, units)  # winner_unit is sorted (lexsort's last key)
    found = (pos < len(winner_unit)) & (winner_unit[np.minimum(pos, len(winner_unit) - 1)] == units)
    out[found] = winner_label[pos[found]]
    return out


def _split_conflicts(x: np.ndarray, labels: np.ndarray, units: np.ndarray, cannot: np.ndarray) -> np.ndarray:
    """Split every cluster that holds both ends of a cannot-link pair (see `_constrained_groups`).

    Clusters without conflicts are left as they are; the first sub-group keeps the label.
    """
    if len(cannot) == 0:
        return labels
    la, lb = labels[cannot[:, 0]], labels[cannot[:, 1]]
    bad = np.unique(la[(la == lb) & (la != UNMATCHED)])
    out = labels.copy()
    next_label = int(labels.max()) + 1
    for c in bad.tolist():
        rows = np.flatnonzero(labels == c)
        unit_ids, unit_of_row = np.unique(units[rows], return_inverse=True)
        sums = np.zeros((len(unit_ids), x.shape[1]), np.float64)
        np.add.at(sums, unit_of_row, x[rows])
        sizes = np.bincount(unit_of_row, minlength=len(unit_ids)).astype(np.float64)
        local = np.full(len(labels), -1, np.int64)
        local[rows] = unit_of_row
        ua, ub = local[cannot[:, 0]], local[cannot[:, 1]]
        inside = (ua >= 0) & (ub >= 0)
        group_of = _constrained_groups(sums, sizes, np.stack([ua[inside], ub[inside]], axis=1))
        n_groups = int(group_of.max()) + 1
        new_labels = np.array([c, *range(next_label, next_label + n_groups - 1)], np.int64)
        next_label += n_groups - 1
        out[rows] = new_labels[group_of[unit_of_row]]
    return out


def _constrained_groups(sums: np.ndarray, sizes: np.ndarray, conflicts: np.ndarray, passes: int = 10) -> np.ndarray:
    """Partition units (row sums (U, D), row counts (U,)) so no group holds a conflict pair.

    Greedy first: seed groups with mutually conflicting units, then each unit joins the
    group with the nearest centroid that holds none of its partners. Then a few passes
    move each unit to its nearest allowed group centroid (as constrained k-means does),
    until nothing moves. Returns (U,) group ids 0..G-1.
    """
    # Over 50 lines on purpose: one constrained k-means (greedy seeding, then the moving passes) over
    # shared partner lists, centroids and sums that it updates in place; parts would pass all of them
    # around.
    n = len(sizes)
    means = sums / sizes[:, None]
    partners: list[list[int]] = [[] for _ in range(n)]
    for a, b in conflicts.tolist():
        partners[a].append(b)
        partners[b].append(a)
    group_of = np.full(n, -1, np.int64)
    g_sum = np.zeros((0, sums.shape[1]), np.float64)
    g_size = np.zeros(0, np.float64)

    def nearest_allowed(u: int) -> int:
        allowed = g_size > 0
        allowed[[int(group_of[p]) for p in partners[u] if group_of[p] >= 0]] = False
        if not allowed.any():
            return -1
        d = np.linalg.norm(g_sum / np.maximum(g_size, 1)[:, None] - means[u], axis=1)
        return int(np.argmin(np.where(allowed, d, np.inf)))

    def join(u: int, g: int) -> None:
        nonlocal g_sum, g_size
        if g == len(g_size):
            g_sum = np.vstack([g_sum, np.zeros(sums.shape[1])])
            g_size = np.append(g_size, 0.0)
        group_of[u] = g
        g_sum[g] += sums[u]
        g_size[g] += sizes[u]

    # seeds: the conflicting pair farthest apart, grown into a clique of units that all
    # conflict with each other (faces sharing a frame); each seed opens a group. The rest
    # are placed nearest-to-a-seed first; a unit that fits nowhere opens a group.
    gap = np.linalg.norm(means[conflicts[:, 0]] - means[conflicts[:, 1]], axis=1)
    seeds = conflicts[int(np.argmax(gap))].tolist()
    common = set(partners[seeds[0]]) & set(partners[seeds[1]])
    while common:
        nxt = max(sorted(common), key=lambda u: min(np.linalg.norm(means[u] - means[s]) for s in seeds))
        seeds.append(nxt)
        common &= set(partners[nxt])
    for g, u in enumerate(seeds):
        join(u, g)
    to_seed = np.linalg.norm(means[:, None, :] - means[seeds][None, :, :], axis=2).min(axis=1)
    order = np.argsort(to_seed, kind="stable")
    for u in order.tolist():
        if group_of[u] < 0:
            g = nearest_allowed(u)
            join(u, len(g_size) if g < 0 else g)
    for _ in range(passes):
        moved = False
        for u in order.tolist():
            g = int(group_of[u])
            g_sum[g] -= sums[u]
            g_size[g] -= sizes[u]
            group_of[u] = -1
            h = nearest_allowed(u)
            h = g if h < 0 else h  # its own group is always allowed (it held no partner)
            moved |= h != g
            group_of[u] = h
            g_sum[h] += sums[u]
            g_size[h] += sizes[u]
        if not moved:
            break
    _, dense = np.unique(group_of, return_inverse=True)  # groups emptied by moves disappear
    return dense.astype(np.int64)


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

"""graph-average, the default clustering: candidate groups from the nearest-neighbour graph, then
average linkage inside each with a spread check (`graph_average` says how it decides).

Near-duplicate rows are collapsed into one node first, and candidate groups too large for the
neighbour lists to see each other are bridged by an exact check.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.sparse import coo_matrix
from scipy.spatial.distance import pdist, squareform

from ..config import IdentitiesConfig
from .constraints import EMPTY_PAIRS, components, local_pairs, partner_lists
from .neighbours import NeighbourGraph, knn_graph, pair_eps

CANNOT_DISTANCE = 10.0  # stands in for a cannot-link pair's distance in average linkage (real ones are < 2)


def graph_average(
    x: np.ndarray,
    cfg: IdentitiesConfig,
    counts: np.ndarray,
    cannot: np.ndarray = EMPTY_PAIRS,
    must: np.ndarray = EMPTY_PAIRS,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Candidate groups from the nearest-neighbour graph, then average linkage with a spread check.

    x: (M, D) float32; counts: (M,) descriptors each row averages; cannot, must: (P, 2) row pairs;
    noise: (M,) the measured variance of each row as a mean (`mean_noise`), or None for 0 each.
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
       pair_eps(.., eps_average, eps_mean) (the encoder's: dlib's same-person limit 0.6, SFace 1.21, for single faces;
       an average, so one close pair between look-alikes cannot fake it), and (b) it is at
       most spread_ratio times the average distance inside the wider of the two, when both
       have two rows or more, or when one is a group and the other a single track (the mean of
       several faces is as steady as any of the group's rows; a spread never counts as less than
       cfg.min_spread, the encoder's floor: near-duplicates say little). A single photo joining a
       group is held to (a) alone, as one varied photo may sit far from the rest of its person.
       Two brothers' tracks may come within 0.36-0.41 of each other (dlib's distances), yet
       each brother's own tracks are much closer together than that, while one person's
       varied photos are far apart among themselves too, so they still join.
       Check (b) compares where the tracks' people are, not where their few faces happened to
       fall: a track mean lies off its person's centre by its own faces' scatter (one turned
       head among two faces moves it far), and that offset adds in quadrature to every
       distance from it, to its own person's tracks as much as to anyone's. So in (b) each
       distance is taken as sqrt(max(0, d^2 - noise_i - noise_j)), the usual unbiased estimate
       of the squared distance between two means less their sampling variance.
    Returns (M,) int64 raw labels (not yet renumbered, no noise).

    >>> x = np.zeros((6, 2), np.float32); x[:, 0] = [0, 0.1, 0.2, 1.0, 1.1, 1.2]
    >>> graph_average(x, IdentitiesConfig(eps=0.5), np.ones(6)).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    node_of, first, counts, cannot, must, graph = _collapse_near_duplicates(x, counts, cannot, must, cfg)
    noise = np.zeros(len(first)) if noise is None else np.asarray(noise, np.float64)[first]
    return _graph_average_nodes(x[first], cfg, counts, cannot, must, graph, noise)[node_of]


def _graph_average_nodes(
    x: np.ndarray,
    cfg: IdentitiesConfig,
    counts: np.ndarray,
    cannot: np.ndarray,
    must: np.ndarray,
    graph: NeighbourGraph,
    noise: np.ndarray,
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
    groups = _bridge_full_groups(x, counts, components(np.stack([a, b], axis=1), m), cfg)
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order], prepend=-1, append=-1))
    labels = groups.copy()
    partners = partner_lists(cannot)
    next_label = m
    for lo, hi in itertools.pairwise(bounds):
        if hi - lo < 2:
            continue
        rows = order[lo:hi]
        sub = _average_split(x[rows], counts[rows], local_pairs(rows, partners), cfg, noise[rows])
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
    return components(np.array(joins, np.int64), g)[groups]


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
    Returns (node_of (M,) int64, first (N,) int64: the row that stands for each node, node
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
        node_cannot = node_of[cannot] if len(cannot) else EMPTY_PAIRS
        leader = _leaders(len(first), a[close], b[close], d[close], node_cannot)
        if np.all(leader == np.arange(len(first))):
            break  # every close pair is a cannot-link
        kept, dense = np.unique(leader, return_inverse=True)
        node_of = dense[node_of].astype(np.int64)
        first = first[kept]
        graph = knn_graph(x[first], cfg.neighbours, radius=radius)
        dup /= 2.0  # a node's rows stay within 2 x the first radius of its first row
    if len(first) == len(x):
        return node_of, first, counts, cannot, must, graph
    n = np.zeros(len(first), np.float64)
    np.maximum.at(n, node_of, counts)
    return node_of, first, n, _node_pairs(node_of, cannot), _node_pairs(node_of, must), graph


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
        return EMPTY_PAIRS
    p = node_of[pairs]
    p = p[p[:, 0] != p[:, 1]]
    return np.unique(np.sort(p, axis=1), axis=0).reshape(-1, 2)


AVERAGE_SAMPLE = 2000  # rows of one candidate group that average linkage looks at (the rest join the nearest mean)


def _average_split(
    xs: np.ndarray, ns: np.ndarray, cannot: np.ndarray, cfg: IdentitiesConfig, noise: np.ndarray
) -> np.ndarray:
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
    top = _accepted_subtrees(tree, ns[sample], cfg, _centre_distances(dist, noise[sample]))
    _, sub = np.unique(top[:s], return_inverse=True)  # ordered by subtree id, not by row: fixed below
    if s < g:
        means = np.stack([xs[sample[sub == k]].mean(axis=0) for k in range(sub.max() + 1)]).astype(np.float64)
        sq = (means**2).sum(axis=1)[None, :] - 2.0 * (xs.astype(np.float64) @ means.T)  # (G, S), no (G, S, D) copy
        sub = np.argmin(sq, axis=1)
    _, first, inverse = np.unique(sub, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def _centre_distances(dist: np.ndarray, noise: np.ndarray) -> np.ndarray | None:
    """Condensed distances less both rows' sampling variance: sqrt(max(0, d^2 - noise_i - noise_j)),
    for check (b) of `graph_average`; None when no row carries any (the plain distances serve).

    >>> _centre_distances(np.array([0.5, 1.0, 0.6]), np.array([0.0, 0.09, 0.0])).round(2).tolist()
    [0.4, 1.0, 0.52]
    """
    if not np.any(noise > 0):
        return None
    s = len(noise)
    i, j = np.triu_indices(s, 1)
    return np.sqrt(np.maximum(dist**2 - noise[i] - noise[j], 0.0))


def _accepted_subtrees(
    tree: np.ndarray, ns: np.ndarray, cfg: IdentitiesConfig, centre: np.ndarray | None = None
) -> np.ndarray:
    """For each node of an average-linkage tree, the highest ancestor reached through accepted merges.

    tree: scipy linkage (S-1, 4); ns: (S,) descriptor counts of the leaves; centre: condensed
    distances that check (b) reads (`_centre_distances`), or None to read the tree's own. A merge
    at height h of sub-groups A and B is accepted when both were accepted and h passes both checks
    of `graph_average`. The spread of a node is the mean distance between its leaves, kept as a
    running sum: within(A u B) = within(A) + within(B) + across(A, B) (with plain distances,
    across = h |A| |B|, as h is the mean across).
    Returns (2S-1,) node ids; leaves come first.
    """
    s = len(ns)
    size = np.ones(2 * s - 1)
    within = np.zeros(2 * s - 1)  # sum of (check (b)'s) distances between the leaves of a node
    count_sum = np.zeros(2 * s - 1)
    count_sum[:s] = ns
    accepted = np.ones(2 * s - 1, bool)
    parent = np.full(2 * s - 1, -1, np.int64)
    square = None if centre is None else squareform(centre)
    leaves: list[np.ndarray] = [np.array([k]) for k in range(s)]
    for t, (p, q, h, _) in enumerate(tree):
        p, q, node = int(p), int(q), s + t
        size[node] = size[p] + size[q]
        if square is None:
            across = h * size[p] * size[q]
        else:
            across = float(square[np.ix_(leaves[p], leaves[q])].sum())
            leaves.append(np.concatenate([leaves[p], leaves[q]]))
        within[node] = within[p] + within[q] + across
        count_sum[node] = count_sum[p] + count_sum[q]
        limit = pair_eps(count_sum[p] / size[p], count_sum[q] / size[q], cfg.eps_average, cfg.eps_mean)
        ok = h <= limit
        groups = [c for c in (p, q) if size[c] >= 2]
        single_track = any(size[c] == 1 and count_sum[c] >= 2 for c in (p, q))
        if len(groups) == 2 or (groups and single_track):  # compare with the groups' own spread
            spread = max(within[c] / (size[c] * (size[c] - 1) / 2) for c in groups)
            ok = ok and across / (size[p] * size[q]) <= cfg.spread_ratio * max(cfg.min_spread, spread)
        accepted[node] = ok and accepted[p] and accepted[q]
        if accepted[node]:
            parent[p] = parent[q] = node
    top = np.arange(2 * s - 1)
    for node in range(2 * s - 2, -1, -1):
        if parent[node] >= 0:
            top[node] = top[parent[node]]
    return top

"""Pairwise constraints on clustering: must-link units (rows that are one person) vote for one
label, and clusters holding a cannot-link pair are split by a constrained k-means.

Pairs are (P, 2) int64 arrays of row indexes; `EMPTY_PAIRS` is the empty one.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..types import UNMATCHED

EMPTY_PAIRS = np.zeros((0, 2), np.int64)


def partner_lists(cannot: np.ndarray) -> dict[int, list[int]]:
    """{row: rows it cannot be grouped with} (each pair listed under its first row)."""
    partners: dict[int, list[int]] = {}
    for i, j in cannot.tolist():
        partners.setdefault(i, []).append(j)
    return partners


def local_pairs(rows: np.ndarray, partners: dict[int, list[int]]) -> np.ndarray:
    """Cannot-link pairs among `rows`, as positions in `rows`."""
    if not partners:
        return EMPTY_PAIRS
    pos = {int(r): k for k, r in enumerate(rows.tolist())}
    out = [(pos[i], pos[j]) for i in pos if i in partners for j in partners[i] if j in pos]
    return np.array(out, np.int64).reshape(-1, 2)


def components(pairs: np.ndarray, m: int) -> np.ndarray:
    """(M,) connected-component id of each row under the given pairs."""
    if len(pairs) == 0:
        return np.arange(m, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def vote_units(labels: np.ndarray, units: np.ndarray) -> np.ndarray:
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


def split_conflicts(x: np.ndarray, labels: np.ndarray, units: np.ndarray, cannot: np.ndarray) -> np.ndarray:
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


class _Groups:
    """Groups of units being formed by `_constrained_groups`: which group holds each unit, and
    each group's sum of rows and row count (its centroid is sum / count)."""

    def __init__(self, sums: np.ndarray, sizes: np.ndarray, partners: list[list[int]]):
        self.sums, self.sizes, self.partners = sums, sizes, partners
        self.means = sums / sizes[:, None]
        self.group_of = np.full(len(sizes), -1, np.int64)
        self.g_sum = np.zeros((0, sums.shape[1]), np.float64)
        self.g_size = np.zeros(0, np.float64)

    def nearest_allowed(self, u: int) -> int:
        """The group with the nearest centroid that holds none of u's partners; -1 when none does."""
        allowed = self.g_size > 0
        allowed[[int(self.group_of[p]) for p in self.partners[u] if self.group_of[p] >= 0]] = False
        if not allowed.any():
            return -1
        d = np.linalg.norm(self.g_sum / np.maximum(self.g_size, 1)[:, None] - self.means[u], axis=1)
        return int(np.argmin(np.where(allowed, d, np.inf)))

    def join(self, u: int, g: int) -> None:
        """Put unit u into group g; g == the number of groups opens a new one."""
        if g == len(self.g_size):
            self.g_sum = np.vstack([self.g_sum, np.zeros(self.sums.shape[1])])
            self.g_size = np.append(self.g_size, 0.0)
        self.group_of[u] = g
        self.g_sum[g] += self.sums[u]
        self.g_size[g] += self.sizes[u]

    def leave(self, u: int) -> int:
        """Take unit u out of its group; returns that group."""
        g = int(self.group_of[u])
        self.g_sum[g] -= self.sums[u]
        self.g_size[g] -= self.sizes[u]
        self.group_of[u] = -1
        return g


def _seed_units(means: np.ndarray, partners: list[list[int]], conflicts: np.ndarray) -> list[int]:
    """The conflicting pair farthest apart, grown into a clique of units that all conflict with
    each other (faces sharing a frame); each seed opens a group."""
    gap = np.linalg.norm(means[conflicts[:, 0]] - means[conflicts[:, 1]], axis=1)
    seeds = conflicts[int(np.argmax(gap))].tolist()
    common = set(partners[seeds[0]]) & set(partners[seeds[1]])
    while common:
        nxt = max(sorted(common), key=lambda u: min(np.linalg.norm(means[u] - means[s]) for s in seeds))
        seeds.append(nxt)
        common &= set(partners[nxt])
    return seeds


def _constrained_groups(sums: np.ndarray, sizes: np.ndarray, conflicts: np.ndarray, passes: int = 10) -> np.ndarray:
    """Partition units (row sums (U, D), row counts (U,)) so no group holds a conflict pair.

    Greedy first: seed groups with mutually conflicting units, then each unit joins the
    group with the nearest centroid that holds none of its partners. Then a few passes
    move each unit to its nearest allowed group centroid (as constrained k-means does),
    until nothing moves. Returns (U,) group ids 0..G-1.
    """
    partners: list[list[int]] = [[] for _ in range(len(sizes))]
    for a, b in conflicts.tolist():
        partners[a].append(b)
        partners[b].append(a)
    groups = _Groups(sums, sizes, partners)
    seeds = _seed_units(groups.means, partners, conflicts)
    for g, u in enumerate(seeds):
        groups.join(u, g)
    # the rest are placed nearest-to-a-seed first; a unit that fits nowhere opens a group
    to_seed = np.linalg.norm(groups.means[:, None, :] - groups.means[seeds][None, :, :], axis=2).min(axis=1)
    order = np.argsort(to_seed, kind="stable").tolist()
    for u in order:
        if groups.group_of[u] < 0:
            g = groups.nearest_allowed(u)
            groups.join(u, len(groups.g_size) if g < 0 else g)
    for _ in range(passes):
        moved = False
        for u in order:
            g = groups.leave(u)
            h = groups.nearest_allowed(u)
            h = g if h < 0 else h  # its own group is always allowed (it held no partner)
            moved |= h != g
            groups.join(u, h)
        if not moved:
            break
    _, dense = np.unique(groups.group_of, return_inverse=True)  # groups emptied by moves disappear
    return dense.astype(np.int64)

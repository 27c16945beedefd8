"""How sure each identity is: its own spread against its nearest other identities.

An identity that holds two people is loose (its sightings lie far apart); two identities of one
person lie close together. Neither is visible in the grouping's output, so both are measured here
and shown to the examiner ("maybe the same person as 7") instead of being decided silently.

Distances are the encoder's (the thresholds come from the case's grouping settings):
- spread: the mean distance between the identity's sighting descriptors (0 with one sighting);
- nearest: other identities by average distance between their sightings and this one's;
- doubt: 'close' when the nearest other identity lies, on average, within `eps_mean` (the limit
  the means of one person's sightings approach: two identities that close could be one person),
  'loose' when the identity's own spread exceeds it (its sightings lie farther apart than one
  person's usually do: it may hold two people).
Numpy and scipy's distances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist, pdist

NEAREST_SHOWN = 3  # other identities listed per identity
CANDIDATES = 10  # identities, nearest by centre, whose average distance is measured exactly
MAX_ROWS = 200  # sightings per identity used for the averages (evenly spread over its rows)


@dataclass(frozen=True)
class Cohesion:
    """One identity's spread, its nearest other identities (id, average distance), nearest first,
    and the doubt ('', 'close' or 'loose')."""

    spread: float
    nearest: tuple[tuple[int, float], ...]
    doubt: str

    @property
    def closest(self) -> tuple[int, float] | None:
        return self.nearest[0] if self.nearest else None


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(cdist(a, b).mean())


def _spread(rows: np.ndarray) -> float:
    if len(rows) < 2:
        return 0.0
    return float(pdist(rows).mean())


def _sample(rows: np.ndarray) -> np.ndarray:
    return rows if len(rows) <= MAX_ROWS else rows[np.linspace(0, len(rows) - 1, MAX_ROWS).astype(int)]


def identity_cohesion(vectors: np.ndarray, labels: np.ndarray, eps_mean: float) -> dict[int, Cohesion]:
    """{identity: Cohesion} for every label >= 0 of (N,) `labels` over (N, D) descriptors.

    >>> x = np.array([[0.0, 0.0], [0.1, 0.0], [0.45, 0.0], [3.0, 0.0]])
    >>> c = identity_cohesion(x, np.array([0, 0, 1, 2]), eps_mean=0.4)
    >>> c[0].doubt, c[1].closest, c[2].doubt
    ('close', (0, 0.4), '')
    """
    x = np.asarray(vectors, np.float64)
    labels = np.asarray(labels)
    ids = sorted(int(i) for i in set(labels.tolist()) if i >= 0)
    rows = {i: _sample(x[labels == i]) for i in ids}
    centres = np.stack([rows[i].mean(axis=0) for i in ids]) if ids else np.zeros((0, x.shape[1] if x.ndim == 2 else 0))
    out: dict[int, Cohesion] = {}
    for k, i in enumerate(ids):
        order = np.argsort(np.linalg.norm(centres - centres[k], axis=1), kind="stable")
        others = [ids[j] for j in order if ids[j] != i][:CANDIDATES]
        nearest = sorted(((j, round(_mean_distance(rows[i], rows[j]), 4)) for j in others), key=lambda t: (t[1], t[0]))
        spread = _spread(rows[i])
        if nearest and nearest[0][1] <= eps_mean:
            doubt = "close"
        elif spread > eps_mean:
            doubt = "loose"
        else:
            doubt = ""
        out[i] = Cohesion(round(spread, 4), tuple(nearest[:NEAREST_SHOWN]), doubt)
    return out

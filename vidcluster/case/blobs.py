"""How values are kept in the store's columns: descriptors as little-endian float32 blobs (NULL
when not encoded), and a group of tracks as one short key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def members_key(track_ids: Iterable[int]) -> str:
    """A short fixed key for a set of track ids (order and repeats do not matter).

    >>> members_key([3, 1, 2]) == members_key([1, 2, 3, 3])
    True
    """
    text = ",".join(str(t) for t in sorted({int(t) for t in track_ids}))
    return hashlib.sha1(text.encode()).hexdigest()


def embedding_to_blob(vec: np.ndarray | None) -> bytes | None:
    if vec is None or np.isnan(vec).any():
        return None
    return np.asarray(vec, dtype="<f4").reshape(-1).tobytes()


def blob_to_embedding(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else blob_to_vector(blob)


def blob_to_vector(blob: bytes) -> np.ndarray:
    """A descriptor stored by `embedding_to_blob`, as float32 (for a column known to be non-NULL)."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)

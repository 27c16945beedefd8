"""How values are kept in the store's columns: descriptors as little-endian float32 blobs (NULL
when not encoded), the CRC-32 each blob is stored with, and a group of tracks as one short key.

A blob read back is checked before it is used (`blob_fault`, `descriptor_fault`): damage that
SQLite's own checks cannot see (bytes changed inside a row) must not become evidence.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

import numpy as np

# Every encoder here gives unit or near-unit vectors (SFace 1, dlib's about 1.4, a track's mean a
# little less); float32 values made of random bytes almost never stay below this length.
MAX_DESCRIPTOR_NORM = 4.0


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


def blob_to_vector(blob: bytes) -> np.ndarray:
    """A descriptor stored by `embedding_to_blob`, as float32 (for a column known to be non-NULL)."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def blob_crc(blob: bytes | None) -> int | None:
    """CRC-32 of a blob as stored next to it (None for NULL).

    >>> blob_crc(b"face"), blob_crc(None)
    (85228391, None)
    """
    return None if blob is None else zlib.crc32(blob)


def blob_fault(blob: bytes | None, crc: int | None) -> str | None:
    """Why a stored blob is not the one written (its CRC-32 differs), or None when it is (or when
    the row predates stored checksums, `crc` NULL).

    >>> blob_fault(b"face", blob_crc(b"face")), blob_fault(b"fade", blob_crc(b"face"))
    (None, 'its checksum does not match')
    """
    if crc is None or blob is None or zlib.crc32(blob) == int(crc):
        return None
    return "its checksum does not match"


def descriptor_fault(blob: bytes, dim: int | None) -> str | None:
    """Why a descriptor blob cannot be one an encoder made: a length that is not `dim` float32
    values (None: any whole number of them), values that are not finite, or a vector longer than
    any encoder's (MAX_DESCRIPTOR_NORM). None when it is sane.

    >>> ok = embedding_to_blob(np.full(128, 128**-0.5))
    >>> descriptor_fault(ok, 128), descriptor_fault(ok[:-4], 128), descriptor_fault(ok[:-4] + b"\\xff" * 4, 128)
    (None, 'it holds 508 bytes, not 128 float32 values', 'it holds values that are not finite')
    """
    if len(blob) % 4 or (dim is not None and len(blob) != 4 * dim):
        return f"it holds {len(blob)} bytes, not {dim if dim is not None else 'whole'} float32 values"
    vec = np.frombuffer(blob, dtype="<f4")
    if not np.isfinite(vec).all():
        return "it holds values that are not finite"
    norm = float(np.linalg.norm(vec.astype(np.float64)))
    if norm > MAX_DESCRIPTOR_NORM:
        return f"its length {norm:.3g} is beyond any encoder's ({MAX_DESCRIPTOR_NORM:g})"
    return None

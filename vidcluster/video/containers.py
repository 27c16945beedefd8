"""How long a file says it is: the top-level structure of Matroska/WebM, MP4/MOV and AVI.

A copy cut short (an interrupted export, a partial download) often still opens and decodes
without an error: FFmpeg simply meets the end of the file early. These containers declare
the size of their top-level elements, so a file shorter than its own declarations is
known to be cut, whatever the decoder made of it. Only headers are read (a few bytes per
top-level element), never the media data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MAX_ELEMENTS = 200_000  # top-level elements walked at most (a fragmented MP4 has two per fragment)
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MP4_TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"uuid"}


def shortfall_bytes(path: Path) -> int:
    """Bytes missing at the end of `path` by its container's own declarations; 0 when complete
    or when the format declares no sizes (MPEG-TS, raw streams, unknown formats)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(12)
            walker = _walker_for(head)
            if walker is None:
                return 0
            return max(0, walker(fh, size) - size)
    except OSError:
        return 0


def _walker_for(head: bytes) -> Callable[[BinaryIO, int], int] | None:
    if head.startswith(_EBML_MAGIC):
        return _matroska_end
    if head[4:8] in _MP4_TOP_BOXES:
        return _mp4_end
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return _riff_end
    return None


def _mp4_end(fh: BinaryIO, size: int) -> int:
    """End offset the top-level boxes declare (a box of size 0 runs to the end of the file)."""
    offset = 0
    for _ in range(MAX_ELEMENTS):
        if offset >= size:
            break
        fh.seek(offset)
        header = fh.read(16)
        if len(header) < 8:
            return size + 1  # a box header cut in two
        box = int.from_bytes(header[:4], "big")
        if box == 1:
            if len(header) < 16:
                return size + 1
            box = int.from_bytes(header[8:16], "big")
        elif box == 0:
            return size
        if box < 8:
            return size  # not a box structure after all: no claim
        offset += box
    return offset


def _riff_end(fh: BinaryIO, size: int) -> int:
    """End offset the RIFF chunks declare (AVI files over 1 GiB chain RIFF 'AVIX' chunks)."""
    offset = 0
    for _ in range(MAX_ELEMENTS):
        if offset >= size:
            break
        fh.seek(offset)
        header = fh.read(8)
        if len(header) < 8:
            return size + 1  # a chunk header cut in two
        offset += 8 + int.from_bytes(header[4:8], "little")
        offset += offset & 1  # chunks are padded to an even length
    return offset


class _CutShort(Exception):
    """The file ends inside an element header."""


def _read_vint(fh: BinaryIO, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer: (value, length in bytes), value -1 = 'unknown size';
    None when the bytes are no EBML integer at all; _CutShort when the file ends inside it."""
    first = fh.read(1)
    if not first:
        raise _CutShort
    length = 9 - first[0].bit_length() if first[0] else 0
    if not 1 <= length <= 8:
        return None
    rest = fh.read(length - 1)
    if len(rest) < length - 1:
        raise _CutShort
    raw = int.from_bytes(first + rest, "big")
    if keep_marker:
        return raw, length
    value = raw & ((1 << (7 * length)) - 1)
    return (-1 if value == (1 << (7 * length)) - 1 else value), length


def _matroska_end(fh: BinaryIO, size: int) -> int:
    """End offset the top-level EBML elements declare (the EBML header, then the Segment)."""
    offset = 0
    for _ in range(MAX_ELEMENTS):
        if offset >= size:
            break
        fh.seek(offset)
        try:
            ident = _read_vint(fh, keep_marker=True)
            length = _read_vint(fh, keep_marker=False) if ident else None
        except _CutShort:
            return size + 1
        if ident is None or length is None:
            return size  # trailing bytes that are no element: no claim
        value, n = length
        if value < 0:
            return size  # a live recording of unknown size: no claim
        offset += ident[1] + n + value
    return offset

"""Where each frame lies in its file: a position that only moves forward, whatever the timestamps do.

A DVR export is often several recordings glued together (`cat a.ts b.ts`): the timestamps start
again at the join, go back, or repeat the first part's. Read as they are, everything after the
join is "before" what came first. `Positions` turns the timestamps of the frames (or packets), in
the order they come, into positions: the timestamp itself while it moves forward, and after a reset
(a timestamp that goes back, repeats, or leaps forward by more than MAX_GAP_S) the next frame
right after the last one, one frame interval later (the interval just before the reset). Every offset into a file (sampled frames, faces,
sightings, clips, segments, the time window) is such a position; in a file without resets it is
simply the timestamp minus the stream's start.

`scan_timing` reads every packet's timestamp once (no decoding) before the file is planned: the
span the file really covers, where it resets, and whether it can be seeked at all.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from fractions import Fraction

import av

MAX_GAP_S = 3600.0  # a forward leap longer than this is no recording gap but a timestamp reset
SCAN_LIMIT_S = 120.0  # wall time a packet scan may take before its answer counts as unknown


def frame_step(stream) -> int:
    """One frame of `stream` in its time base ticks (from its average rate; 1 when unknown)."""
    time_base = stream.time_base or Fraction(1, 90000)
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return 1
    return max(1, round(1 / (Fraction(rate) * time_base)))


@dataclass
class Positions:
    """Timestamps in arrival order -> positions (ticks of `time_base`) that never go back.

    `origin`: the timestamp at position 0 (the stream's start), or None for the first one seen.
    `step`: ticks of one frame, between the last frame before a reset and the first after it while
    no interval between two frames has been seen (then the last such interval).

    >>> p = Positions(Fraction(1, 10), origin=None, step=1)
    >>> [p.place(t) for t in (5, 6, 7, 0, 1, 1, 2)], p.resets_s
    ([0, 1, 2, 3, 4, 5, 6], [0.3, 0.5])
    """

    time_base: Fraction
    origin: int | None
    step: int
    resets_s: list[float] = field(default_factory=list)  # positions (s) where a new run of timestamps began
    untimed: int = 0  # frames without a timestamp, placed one frame after the one before
    last_ts: int | None = None
    last_pos: int | None = None
    last_delta: int = 0  # ticks between the last two frames of a run

    def __post_init__(self) -> None:
        self.max_gap = int(MAX_GAP_S / self.time_base)  # in ticks: no Fraction arithmetic per frame

    def place(self, ts: int | None, duration: int = 0) -> int:
        """The position of the next frame, given its timestamp `ts` (None: it has none) and, for
        one without, its duration in ticks (0: unknown, one step)."""
        if ts is None:
            self.untimed += 1
            pos = 0 if self.last_pos is None else self.last_pos + (duration or self.step)
            if self.last_ts is not None:
                self.last_ts += duration or self.step
        elif self.last_pos is None:
            if self.origin is None:
                self.origin = ts
            pos = ts - self.origin
        elif self.last_ts is None or ts <= self.last_ts or ts - self.last_ts > self.max_gap:
            pos = self.last_pos + (self.last_delta or self.step)
            self.resets_s.append(float(pos * self.time_base))
        else:
            self.last_delta = ts - self.last_ts
            pos = self.last_pos + self.last_delta
        if ts is not None:
            self.last_ts = ts
        self.last_pos = pos
        return pos

    def seconds(self, pos: int) -> float:
        return float(pos * self.time_base)


@dataclass(frozen=True)
class Timing:
    """What the packets of a video stream say about its time, before anything is decoded.

    `span_s`: seconds the file covers in positions (its last packet plus one frame); None when the
    scan could not finish (then `resets_s` holds the resets seen before it broke off). `resets_s`: positions where the timestamps reset. `untimed`: the packets
    carry no timestamps (positions counted from frame durations). `seekable`: a seek into the
    middle works (raw H.264/HEVC streams refuse any seek).
    """

    span_s: float | None
    resets_s: tuple[float, ...] = ()
    untimed: bool = False
    seekable: bool = True


def scan_timing(container, stream, limit_s: float = SCAN_LIMIT_S) -> Timing:
    """Read every packet of `stream` (demuxing only) into its Timing; leaves the container anywhere.

    Packets come in decode order, so their decode timestamps (dts) are the ones that must move
    forward (B-frames' presentation times do not; Matroska leaves the first ones' dts out). Each
    run between resets then covers its presentation times (pts), first to last plus one frame, as
    the decoder's positions do; a stream without pts is measured by its dts or frame durations.
    """
    time_base: Fraction = stream.time_base or Fraction(1, 90000)
    positions = Positions(time_base, origin=None, step=frame_step(stream))
    deadline = time.monotonic() + limit_s
    frame = 0  # ticks of one frame, from the packets' durations
    runs: list[tuple[int, int] | None] = []  # (first pts, last pts) of each finished run; None: it had none
    lo: int | None = None  # first and last pts of the current run
    hi: int | None = None
    try:
        for n, packet in enumerate(container.demux(stream)):
            if packet.size == 0:  # the demuxer's closing empty packet
                continue
            pts, dts, duration = packet.pts, packet.dts, packet.duration
            frame = duration or frame
            if dts is not None or pts is None:
                n_resets = len(positions.resets_s)
                positions.place(dts, duration or 0)
                if len(positions.resets_s) > n_resets:
                    runs.append((lo, hi) if lo is not None and hi is not None else None)
                    lo = hi = None
            if pts is not None:
                lo = pts if lo is None or pts < lo else lo
                hi = pts if hi is None or pts > hi else hi
            if n % 4096 == 0 and time.monotonic() > deadline:
                return _cut_off(positions)
    except (av.FFmpegError, EOFError, ValueError):
        return _cut_off(positions)
    runs.append((lo, hi) if lo is not None and hi is not None else None)
    if positions.last_pos is None and runs == [None]:
        return Timing(None)
    frame = frame or positions.last_delta or positions.step
    resets = tuple(positions.resets_s)
    spans = [r[1] - r[0] + frame for r in runs if r is not None]
    if len(spans) == len(runs):  # every run has presentation times
        ends = list(itertools.accumulate(spans))
        resets = tuple(positions.seconds(t) for t in ends[:-1])
        span_s = positions.seconds(ends[-1])
    else:
        span_s = positions.seconds((positions.last_pos or 0) + frame)
    return Timing(span_s, resets, positions.untimed > 0, _can_seek(container, stream, span_s))


def _cut_off(positions: Positions) -> Timing:
    """The Timing of a scan that could not finish: its span unknown, the resets seen so far kept
    (by the packets' decode times), and a file seen to reset never entered by a seek."""
    resets = tuple(positions.resets_s)
    return Timing(None, resets, positions.untimed > 0, seekable=not resets)


def _can_seek(container, stream, span_s: float) -> bool:
    """Whether the demuxer accepts a seek to the middle of the stream (and back to its start)."""
    return seek_to(container, stream, span_s / 2) and seek_to(container, stream, 0.0)


def seek_to(container, stream, position_s: float) -> bool:
    """Seek to the keyframe at or before `position_s` (seconds after the stream's start, a position
    of a file without resets); False when the demuxer refuses (a raw H.264 stream refuses any)."""
    time_base: Fraction = stream.time_base or Fraction(1, 90000)
    target = (stream.start_time or 0) + int(position_s / time_base)
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        return False
    return True


def timing_note(timing: Timing, declared_s: float | None, first_s: float) -> str:
    """What a person should know about a file's times ('' when nothing): where its timestamps reset
    or are missing (the times after are counted from the position, less certain), and a stated
    duration its packets do not bear out.

    >>> timing_note(Timing(8.0, (4.0,)), 8.0, 0.0)
    'timestamps reset 1 time (at 4.00 s): times from 4.00 s on are counted from the position in the file, less certain'
    >>> timing_note(Timing(2.6), 315576002.6, 1.0)
    'the container states 315576002.60 s but its packets span 2.60 s: planned from the packets'
    """
    notes = []
    if timing.resets_s:
        n = len(timing.resets_s)
        at = ", ".join(f"{t:.2f} s" for t in timing.resets_s[:5]) + (", ..." if n > 5 else "")
        notes.append(
            f"timestamps reset {n} time{'s' if n > 1 else ''} (at {at}): times from {timing.resets_s[0]:.2f} s on"
            " are counted from the position in the file, less certain"
        )
    if timing.untimed:
        notes.append("frames without timestamps: times counted from frame durations, less certain")
    if timing.span_s is not None and declared_s is not None:
        stated = declared_span_s(declared_s, first_s)
        if stated > max(2 * timing.span_s, timing.span_s + 60.0):
            notes.append(
                f"the container states {declared_s:.2f} s but its packets span {timing.span_s:.2f} s:"
                " planned from the packets"
            )
    return "; ".join(notes)


def declared_span_s(declared_s: float, first_s: float) -> float:
    """The seconds a container's stated duration leaves for its video, read like positions.

    Containers disagree on what they state: MP4 the length from the first frame, Matroska the time
    of the end (from 0). A stream starting at `first_s` > 0 whose stated duration reaches past that
    start is read the Matroska way; the shorter reading never calls a whole file cut short.

    >>> declared_span_s(32.5, 30.0), declared_span_s(2.5, 30.0), declared_span_s(60.0, 0.0)
    (2.5, 2.5, 60.0)
    """
    if 0 < first_s < declared_s:
        return declared_s - first_s
    return declared_s

"""Short H.264 MP4 clips of each sighting, cut from the footage with PyAV, so the report travels.

A browser cannot play a .dav or .ts export, and a link to the original footage breaks as soon as
the report is copied elsewhere. So every video sighting gets its own clip in report/clips/: the
sighting with `context_s` of footage on each side, at most `max_s` long, scaled to at most
`CLIP_MAX_WIDTH_PX` wide. A clip's name carries a key of everything it is made from (the file's
SHA-256, the window, the size), so a rewritten report reuses the clips of the previous one.

Sightings of a crowded scene overlap, and cutting each clip on its own decoded the same footage
once per clip (measured on a 63-s 1080p crowd file: 357 of the run's 444 CPU seconds), and
encoding the same frames once per clip was the next cost. So the clips of one file whose
windows overlap or lie close together are cut in one *pass*: one seek, each frame decoded,
scaled and encoded once, and each clip copied out of that encoding. Passes are independent
and run on a pool of worker processes, one core each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import groupby
from pathlib import Path

import av
from av.video.frame import PictureType

from ..procs import one_core, process_pool
from ..video.sampler import quarter_turns, set_decoder_threads, upright
from ..video.timeline import Positions, frame_step, seek_to
from .data import Sighting

CLIPS_DIRNAME = "clips"
CLIP_MAX_WIDTH_PX = 640  # enough to recognise a person; keeps a clip near 100 kB a second
CLIP_CRF = 28  # x264 constant quality (lower is better and bigger)
# Frames per second kept at most. A clip is a preview beside the original footage (which stays
# the evidence); measured on the 1080p crowd clip, scaling and encoding every frame of 25 fps
# footage cost more CPU than analysing it.
CLIP_MAX_FPS = 12.5
CLIP_PRESET = "veryfast"  # ultrafast saved ~4 % CPU on a 1080p clip but made it 3x larger
_CLIP_TIME_BASE = Fraction(1, 1000)  # clip timestamps in milliseconds
# Windows of one file closer than this share a pass: decoding a few seconds between them costs
# less than a seek, which decodes from the keyframe before the window anyway.
PASS_GAP_S = 5.0


@dataclass(frozen=True)
class ClipWindow:
    """Where a clip starts and ends, in seconds into its source file."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def clip_window(
    start_s: float, end_s: float, *, context_s: float, max_s: float, file_duration_s: float | None
) -> ClipWindow:
    """The sighting `start_s`..`end_s` with `context_s` on each side, inside the file, at most `max_s` long.

    A sighting longer than the cap keeps its beginning (where the person appears).

    >>> clip_window(10.0, 12.0, context_s=1.5, max_s=20.0, file_duration_s=60.0)
    ClipWindow(start_s=8.5, end_s=13.5)
    >>> clip_window(0.5, 100.0, context_s=2.0, max_s=10.0, file_duration_s=None)
    ClipWindow(start_s=0.0, end_s=10.0)
    """
    a = max(0.0, start_s - context_s)
    b = end_s + context_s
    if file_duration_s:
        b = min(b, float(file_duration_s))
    b = min(b, a + max_s)
    return ClipWindow(a, max(b, a))


def clip_name(s: Sighting, window: ClipWindow) -> str:
    """'clips/clip-<track id>-<key>.mp4': the key changes whenever the clip would come out different
    ('upright': clips are turned by their source's display matrix, which earlier clips were not)."""
    key = (
        f"{s.file.sha256}|{window.start_s:.3f}|{window.end_s:.3f}|{CLIP_MAX_WIDTH_PX}|{CLIP_CRF}|{CLIP_MAX_FPS}|upright"
    )
    return f"{CLIPS_DIRNAME}/clip-{int(s.track_id)}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.mp4"


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


@dataclass(frozen=True)
class Clip:
    """One clip to cut: its window in the source file and where it goes."""

    track_id: int
    window: ClipWindow
    target: Path


@dataclass(frozen=True)
class ClipPass:
    """Clips of one source file cut from a single run of its decoder, windows in order of start.
    `seek`: False for a file whose timestamps reset or that cannot be seeked (decoded from its start)."""

    source: Path
    clips: tuple[Clip, ...]
    seek: bool = True

    @property
    def start_s(self) -> float:
        return self.clips[0].window.start_s

    @property
    def end_s(self) -> float:
        return max(c.window.end_s for c in self.clips)


def plan_passes(
    clips: Iterable[tuple[Path, Clip]], gap_s: float = PASS_GAP_S, no_seek: frozenset[Path] = frozenset()
) -> list[ClipPass]:
    """Group clips by source file, then into passes of windows that overlap or lie within `gap_s`
    (`no_seek`: the files a pass decodes from their start).

    >>> w = lambda a, b, tid: (Path("a.mp4"), Clip(tid, ClipWindow(a, b), Path(f"{tid}.mp4")))
    >>> [[c.track_id for c in p.clips] for p in plan_passes([w(30, 40, 3), w(0, 10, 1), w(12, 20, 2)])]
    [[1, 2], [3]]
    """
    passes: list[ClipPass] = []
    ordered = sorted(clips, key=lambda pc: (str(pc[0]), pc[1].window.start_s, pc[1].track_id))
    for source, group in groupby(ordered, key=lambda pc: pc[0]):
        current: list[Clip] = []
        reach_s = 0.0  # where the windows of the current pass end
        for _, clip in group:
            if current and clip.window.start_s > reach_s + gap_s:
                passes.append(ClipPass(source, tuple(current), source not in no_seek))
                current = []
            reach_s = max(reach_s, clip.window.end_s) if current else clip.window.end_s
            current.append(clip)
        passes.append(ClipPass(source, tuple(current), source not in no_seek))
    return passes


def spread(passes: list[ClipPass], workers: int) -> list[ClipPass]:
    """Split the passes holding most clips in two (by clip order) until every worker has one.

    A crowded file is a single pass; halves decode the footage where their windows overlap
    twice, but on two cores.

    >>> w = lambda a, tid: (Path("a.mp4"), Clip(tid, ClipWindow(a, a + 3), Path(f"{tid}.mp4")))
    >>> [[c.track_id for c in p.clips] for p in spread(plan_passes([w(t, t) for t in range(5)]), 3)]
    [[0, 1], [2], [3, 4]]
    """
    passes = list(passes)
    while len(passes) < workers:
        big = max(range(len(passes)), key=lambda i: len(passes[i].clips), default=None)
        if big is None or len(passes[big].clips) < 2:
            break
        job = passes[big]
        half = len(job.clips) // 2
        passes[big : big + 1] = [replace(job, clips=job.clips[:half]), replace(job, clips=job.clips[half:])]
    return passes


def cut_pass(job: ClipPass, max_width_px: int = CLIP_MAX_WIDTH_PX) -> dict[int, int]:
    """Cut every clip of `job` from one decode of its source; returns {track id: frames written}.

    The frames of the pass that lie in some clip's window are decoded, scaled and encoded once,
    into a scratch file beside the clips, with a keyframe at the first frame of every window;
    each clip is then copied out of it from that keyframe on, without encoding again. A clip
    with no frame is left out (no file). Raises av.error.FFmpegError or OSError when the file cannot be read or a
    clip written; the clips of the pass are removed first.
    """
    scratch = job.clips[0].target.with_name(f".pass-{job.clips[0].track_id}.mp4")
    try:
        if not _encode_pass(job, scratch, max_width_px):
            return {c.track_id: 0 for c in job.clips}
        return _copy_clips(scratch, job.clips)
    except BaseException:
        for clip in job.clips:
            clip.target.unlink(missing_ok=True)
        raise
    finally:
        scratch.unlink(missing_ok=True)


def _encode_pass(job: ClipPass, scratch: Path, max_width_px: int) -> int:
    """Encode the frames of `job.source` inside any of its windows into `scratch`; frames written."""
    starts = deque(c.window.start_s for c in job.clips)  # in order: the clips are
    spans = deque(_union([c.window for c in job.clips]))
    start_s, end_s = job.start_s, job.end_s
    frames = 0
    turns = 0  # quarter turns that show the source upright (its display matrix)
    with av.open(str(job.source)) as source:
        stream = source.streams.video[0]
        set_decoder_threads(stream, 1)  # passes run in parallel, a worker per core
        rate = min(stream.average_rate or stream.guessed_rate or Fraction(25), Fraction(CLIP_MAX_FPS))
        step_s = 1.0 / float(rate)
        # times are positions, as the sampler's (video/timeline.py): a refused seek decodes from here
        positions = Positions(stream.time_base or Fraction(1, 90000), stream.start_time, frame_step(stream))
        if start_s > 0 and job.seek:
            seek_to(source, stream, start_s)
        scratch.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(scratch), "w", format="mp4") as sink:
            out = None
            next_keep_s = start_s - 1e-3
            for frame in source.decode(stream):
                t = positions.seconds(positions.place(frame.pts, frame.duration or 0))
                if t > end_s + 1e-3:
                    break
                if t < next_keep_s:  # before the pass, or faster than CLIP_MAX_FPS: drop it
                    continue
                while spans and t > spans[0][1] + 1e-3:
                    spans.popleft()
                if not spans or t < spans[0][0] - 1e-3:  # between two windows
                    continue
                next_keep_s = t + step_s - 1e-3
                if out is None:
                    turns = quarter_turns(frame)
                    out = _h264_stream(sink, rate, frame, max_width_px, turns)
                image = frame
                if turns:
                    image = _turned(frame, turns, out)
                elif (frame.width, frame.height, frame.format.name) != (out.width, out.height, out.pix_fmt):
                    image = frame.reformat(
                        width=out.width, height=out.height, format=out.pix_fmt, interpolation="FAST_BILINEAR"
                    )
                image.pts, image.time_base = round(t * 1000), _CLIP_TIME_BASE
                # a clip's first frame is a keyframe; the encoder picks the other types (not the source)
                key = bool(starts) and starts[0] <= t + 1e-3
                while starts and starts[0] <= t + 1e-3:
                    starts.popleft()
                image.pict_type = PictureType.I if key else PictureType.NONE
                sink.mux(out.encode(image))
                frames += 1
            if out is not None:
                sink.mux(out.encode(None))
    return frames


def _union(windows: Sequence[ClipWindow]) -> list[tuple[float, float]]:
    """The time the windows cover, as ordered (start_s, end_s) spans that do not overlap.

    >>> _union([ClipWindow(0, 2), ClipWindow(1, 3), ClipWindow(5, 6)])
    [(0, 3), (5, 6)]
    """
    out: list[tuple[float, float]] = []
    for w in sorted(windows, key=lambda w: w.start_s):
        if out and w.start_s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], w.end_s))
        else:
            out.append((w.start_s, w.end_s))
    return out


def _turned(frame: av.VideoFrame, turns: int, out: av.VideoStream) -> av.VideoFrame:
    """`frame` scaled to the clip's size (before turning) and turned `turns` quarter turns upright."""
    width, height = (out.height, out.width) if turns % 2 else (out.width, out.height)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()
    return av.VideoFrame.from_ndarray(upright(rgb, turns), format="rgb24").reformat(format=out.pix_fmt)


def _h264_stream(
    sink: av.container.OutputContainer, rate: Fraction, first: av.VideoFrame, max_width_px: int, turns: int = 0
) -> av.VideoStream:
    """The H.264 stream of a pass: upright (`first` turned `turns` quarter turns), at most
    `max_width_px` wide, keyframes only where asked for.

    Full-range ('JPEG') 4:2:0 footage stays full range, so frames of the right size go to the
    encoder without any conversion.
    """
    width, height = (first.height, first.width) if turns % 2 else (first.width, first.height)
    scale = min(1.0, max_width_px / width)
    out = sink.add_stream("libx264", rate=rate)
    out.width, out.height = _even(width * scale), _even(height * scale)
    out.pix_fmt = "yuvj420p" if first.format.name == "yuvj420p" else "yuv420p"
    out.codec_context.time_base = _CLIP_TIME_BASE
    # one thread (passes run in parallel); no B-frames, so a clip may end after any frame; keyframes
    # only where a clip starts (g, sc_threshold: none of the encoder's own)
    out.options = {
        "crf": str(CLIP_CRF),
        "preset": CLIP_PRESET,
        "threads": "1",
        "bf": "0",
        "g": "100000",
        "sc_threshold": "0",
    }
    return out


def _copy_clips(scratch: Path, clips: Sequence[Clip]) -> dict[int, int]:
    """Copy each clip's packets out of the encoded pass (no decoding): {track id: frames}."""
    with av.open(str(scratch)) as src:
        stream = src.streams.video[0]
        index = [(float(p.pts * p.time_base), p.is_keyframe) for p in src.demux(stream) if p.pts is not None]
    times, keys = [t for t, _ in index], [key for _, key in index]
    spans = sorted((_packet_span(times, keys, c.window), k) for k, c in enumerate(clips))
    done = {c.track_id: 0 for c in clips}
    waiting = deque((first, last, clips[k]) for (first, last), k in spans if last >= first)
    open_: list[tuple] = []  # (last packet, clip, its container, its stream, its first pts)
    try:
        with av.open(str(scratch)) as src:
            stream = src.streams.video[0]
            packets = (p for p in src.demux(stream) if p.pts is not None)
            for i, packet in enumerate(packets):
                while waiting and waiting[0][0] == i:
                    _, last, clip = waiting.popleft()
                    sink = av.open(str(clip.target), "w", format="mp4", options={"movflags": "+faststart"})
                    open_.append((last, clip, sink, sink.add_stream_from_template(stream), packet.pts))
                for _last, clip, sink, out, base in open_:
                    copy = av.Packet(bytes(packet))
                    copy.pts = copy.dts = packet.pts - base
                    copy.time_base, copy.is_keyframe, copy.stream = packet.time_base, packet.is_keyframe, out
                    sink.mux(copy)
                    done[clip.track_id] += 1
                for item in [o for o in open_ if o[0] == i]:
                    open_.remove(item)
                    item[2].close()
    finally:
        for item in open_:
            item[2].close()
    return done


def _packet_span(times: list[float], keys: list[bool], window: ClipWindow) -> tuple[int, int]:
    """(first, last) packet of a clip: its window, from the keyframe at (or else before) its start.

    `times`, `keys`: each packet's time and whether it is a keyframe, in order of time.

    >>> t, k = [0.0, 0.5, 1.0, 1.5, 2.0], [True, False, True, False, False]
    >>> _packet_span(t, k, ClipWindow(1.0, 1.6)), _packet_span(t, k, ClipWindow(0.0, 9.0)), _packet_span(t, k, ClipWindow(1.2, 1.6))
    ((2, 3), (0, 4), (2, 3))
    """
    first = bisect_left(times, window.start_s - 1e-3)
    while 0 < first < len(times) and not keys[first]:
        first -= 1
    return first, bisect_right(times, window.end_s + 1e-3) - 1


def _cut_or_nothing(job: ClipPass) -> dict[int, int]:
    """`cut_pass`, with a file that cannot be read or a clip that cannot be written giving no clips."""
    try:
        return cut_pass(job)
    except (av.error.FFmpegError, OSError, ValueError):
        return {c.track_id: 0 for c in job.clips}


def _reuse(previous: Path | None, name: str, target: Path) -> bool:
    """Hard-link (or copy) the same clip from the previous report, when it has it."""
    if previous is None or not (previous / name).is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(previous / name, target)
    except OSError:
        shutil.copyfile(previous / name, target)
    return True


def _cut_all(passes: list[ClipPass], workers: int) -> Iterator[dict[int, int]]:
    """Each pass's result as it finishes: inline on one core, or on a pool of `workers` processes."""
    if workers <= 1 or len(passes) <= 1:
        for job in passes:
            with one_core():
                result = _cut_or_nothing(job)
            yield result
        return
    with process_pool(min(workers, len(passes))) as pool:
        for fut in as_completed([pool.submit(_cut_or_nothing, job) for job in passes]):
            yield fut.result()


def write_clips(
    sightings: Iterable[Sighting],
    folder: Path,
    *,
    context_s: float,
    max_s: float,
    previous: Path | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, str]:
    """Cut a clip for every video sighting whose file is readable; returns {track id: relative path}.

    `previous`: an earlier report folder whose identical clips are reused instead of cut again.
    `workers`: processes cutting passes at the same time. A file that cannot be decoded gets no
    clips (its sightings keep file and offset on the pages). `progress(done, total)` counts clips.
    """
    todo = [s for s in sightings if not s.file.is_photo and s.file.status != "skipped"]
    out: dict[int, str] = {}
    names: dict[int, str] = {}
    to_cut: list[tuple[Path, Clip]] = []
    for s in todo:
        window = clip_window(s.start_s, s.end_s, context_s=context_s, max_s=max_s, file_duration_s=s.file.duration_s)
        name = names[s.track_id] = clip_name(s, window)
        if _reuse(previous, name, folder / name):
            out[s.track_id] = name
        elif Path(s.file.path).is_file():
            to_cut.append((Path(s.file.path), Clip(s.track_id, window, folder / name)))
    done = len(todo) - len(to_cut)
    if progress and done:
        progress(done, len(todo))
    no_seek = frozenset(Path(s.file.path) for s in todo if s.file.resets_s or not s.file.seekable)
    for result in _cut_all(spread(plan_passes(to_cut, no_seek=no_seek), workers), workers):
        out.update({tid: names[tid] for tid, frames in result.items() if frames})
        done += len(result)
        if progress:
            progress(done, len(todo))
    return out

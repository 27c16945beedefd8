"""Sample frames from footage with PyAV: N per second of video time, each with its exact pts.

Times come from pts (never frame counts), so variable frame rates and recording gaps keep
their true times. A window (offsets within the file) is entered by a keyframe seek and left
by stopping the decoder: frames outside it cost at most one GOP.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import cv2
import numpy as np
from av.codec.hwaccel import HWAccel
from PIL import Image

from ..errors import VideoOpenError
from ..types import Frame
from .containers import shortfall_bytes
from .timeline import Positions, declared_span_s, frame_step, seek_to

# Largest image or video frame decoded (pixels): a 20000 x 20000 PNG of a few hundred KB would
# take 1.2 GB as RGB in every worker. 64 megapixels still admit any camera photo (8000 x 8000).
MAX_IMAGE_PIXELS = 64_000_000


def _too_large(width: int, height: int) -> str:
    """The skip reason for an image or frame above the pixel cap ('' when it fits)."""
    if width * height <= MAX_IMAGE_PIXELS:
        return ""
    return f"{width}x{height} pixels is above the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel cap"


def _open(path: Path, gpu: bool):
    """av.open of `path`; with `gpu`, decoding on the NVIDIA decoder where the codec allows (PyAV's
    CUDA hwaccel, falling back to software per stream), and a plain open where no CUDA device
    can be made (no GPU here): the same frames either way."""
    if gpu:
        try:
            return av.open(
                str(path), mode="r", timeout=30.0, hwaccel=HWAccel(device_type="cuda", allow_software_fallback=True)
            )
        except (av.FFmpegError, OSError):
            pass
    return av.open(str(path), mode="r", timeout=30.0)


@contextlib.contextmanager
def open_video(path: Path, gpu: bool = False):
    """Open a container that has a video stream (`gpu`: decode on the GPU where possible, see
    `_open`); raises VideoOpenError with a reason."""
    try:
        container = _open(path, gpu)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise VideoOpenError(f"not a readable video ({_reason(exc)})") from None
    try:
        if not container.streams.video:
            raise VideoOpenError("no video stream (audio-only or data file)")
        stream = container.streams.video[0]
        if stream.codec_context is None or stream.codec_context.name is None:
            raise VideoOpenError("unsupported video codec")
        if problem := _too_large(stream.codec_context.width or 0, stream.codec_context.height or 0):
            raise VideoOpenError(problem)
        yield container
    finally:
        container.close()


def set_decoder_threads(stream: av.video.stream.VideoStream, threads: int) -> None:
    """Decode `stream` on `threads` threads (0: as many as the decoder likes, frame and slice threads)."""
    if threads == 1:
        stream.thread_type = "NONE"
        stream.thread_count = 1
    else:
        stream.thread_type = "AUTO"
        stream.thread_count = threads


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.split(":")[-1].strip() if "Errno" in text else text


@dataclass
class SampleStats:
    """What sampling one file cost and reached."""

    decoded: int = 0  # frames decoded
    decoded_outside: int = 0  # frames decoded before the window (the GOP in front of a seek)
    sampled: int = 0
    reached_s: float | None = None  # position (s) of the last frame decoded
    duration_s: float | None = None
    error: str = ""  # set when decoding broke off mid-file
    resets_s: list[float] = field(default_factory=list)  # positions where the timestamps reset (timeline.py)
    untimed: int = 0  # frames decoded without a timestamp, placed after the frame before
    seek_failed: bool = False  # the demuxer refused the seek: decoded from the start instead


# planar 8-bit YUV layouts whose first plane is the luma (grey) picture
_LUMA_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"})


def quarter_turns(frame: av.VideoFrame) -> int:
    """How many quarter turns counter-clockwise show `frame` upright (0-3), from the display matrix
    its stream carries (a phone or body camera stores portrait video sideways and says so there);
    an angle between quarter turns counts as the nearest one."""
    degrees = frame.rotation
    return round(degrees / 90) % 4 if degrees and math.isfinite(degrees) else 0


def upright(image: np.ndarray, turns: int) -> np.ndarray:
    """`image` (H, W[, C]) turned `turns` quarter turns counter-clockwise, as a contiguous array.

    >>> upright(np.arange(6).reshape(2, 3), 1).tolist()
    [[2, 5], [1, 4], [0, 3]]
    """
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def rgb_of(frame: av.VideoFrame) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a decoded frame, upright as its display matrix says."""
    return upright(frame.to_ndarray(format="rgb24"), quarter_turns(frame))


_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: luma uses 0-255; otherwise video range 16-235


def luma_view(frame: av.VideoFrame):
    """A function returning the frame's grey picture (H, W) uint8, 0-255, from its Y plane without
    colour conversion (upright, as `rgb_of`); None when the pixel format has no 8-bit luma plane."""
    name = frame.format.name
    if name not in _LUMA_FORMATS:
        return None
    full_range = name.startswith("yuvj") or getattr(frame, "color_range", 0) == _JPEG_RANGE
    return partial(_luma, frame, full_range)


def _luma(frame: av.VideoFrame, full_range: bool) -> np.ndarray:
    plane = frame.planes[0]
    y = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    grey = y if full_range else cv2.convertScaleAbs(y, alpha=255 / 219, beta=-16 * 255 / 219)
    return upright(grey, quarter_turns(frame))


def next_target(target_s: float, step_s: float, t_s: float) -> float:
    """The first grid time after `t_s`, for a grid through `target_s` with spacing `step_s`.

    >>> next_target(0.0, 0.5, 1.26)
    1.5
    """
    k = int((t_s - target_s) // step_s) + 1
    return target_s + max(1, k) * step_s


def first_grid_point(origin_s: float, step_s: float, t_s: float) -> float:
    """The first time at or after `t_s` on a grid through `origin_s` with spacing `step_s`.

    >>> first_grid_point(0.0, 0.5, 1.26), first_grid_point(0.0, 0.5, 1.5)
    (1.5, 1.5)
    """
    k = math.ceil((t_s - origin_s) / step_s - 1e-9)
    return origin_s + max(0, k) * step_s


def sample_video(
    path: Path,
    fps: float,
    start_s: float | None = None,
    end_s: float | None = None,
    stats: SampleStats | None = None,
    time_limit_s: float | None = None,
    grid_origin_s: float | None = None,
    threads: int = 0,
    gpu: bool = False,
    span_s: float | None = None,
    seek: bool = True,
) -> Iterator[Frame]:
    """Yield RGB frames about every 1/fps seconds of position within [start_s, end_s].

    Times are positions (timeline.py): the pts minus the stream's start while it moves forward,
    counted on from the frame before where the timestamps reset. Frame.pts is that position.

    The sampling grid runs through the first frame decoded, or through `grid_origin_s` when
    given: then the frames picked inside [start_s, end_s] are the same whether decoding
    starts at start_s or earlier (a file cut into segments samples as the whole file does).

    `span_s`: the seconds the file covers by its packets (sources.probe_video), the measure of
    whether it was read to its end; without it, the duration the container states. `seek`: False
    for a file whose timestamps reset (a position is no timestamp there) or that cannot be
    seeked: it is decoded from its start. A seek the demuxer refuses does the same.

    Decode errors mid-file end the iteration and set `stats.error`; frames yielded before
    stay valid. So does running past `time_limit_s` seconds of wall time (a decoder that
    loops on corrupt data). Raises VideoOpenError when the file cannot be opened at all.

    `threads`: decoder threads; 0 lets the decoder use every core (one process feeding a GPU),
    1 keeps decoding on the calling core (a worker among as many as there are cores). `gpu`:
    decode on the NVIDIA decoder where there is one (the process feeding a GPU).
    """
    stats = stats if stats is not None else SampleStats()
    grid = _Grid(1.0 / fps, start_s, end_s, grid_origin_s)
    wants_seek = seek and start_s is not None and start_s > 0
    with open_video(path, gpu) as container:
        if not wants_seek or seek_to(container, container.streams.video[0], start_s or 0.0):
            yield from _sample(path, container, grid, stats, time_limit_s, threads, span_s)
            return
    stats.seek_failed = True  # a demuxer that refused the seek may have moved anywhere: open afresh
    with open_video(path, gpu) as container:
        yield from _sample(path, container, grid, stats, time_limit_s, threads, span_s)


def _sample(
    path: Path,
    container,
    grid: _Grid,
    stats: SampleStats,
    time_limit_s: float | None,
    threads: int,
    span_s: float | None,
) -> Iterator[Frame]:
    """Decode the open `container` from where it stands, yielding the frames `grid` takes."""
    stream = container.streams.video[0]
    set_decoder_threads(stream, threads)
    time_base: Fraction = stream.time_base or Fraction(1, 90000)
    declared_s = _declared_duration_s(container, stream, time_base)
    first_pts_s = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    if span_s is not None:
        stats.duration_s = span_s
    elif declared_s is not None:
        stats.duration_s = declared_span_s(declared_s, first_pts_s)
    positions = Positions(time_base, stream.start_time, frame_step(stream))
    left_window = yield from _decode_on_grid(container, stream, positions, grid, stats, time_limit_s)
    if span_s is None and stats.resets_s:  # a stated duration says nothing of a file glued together
        stats.duration_s = None
    if not stats.error and not left_window:
        frame_s = 1.0 / float(stream.average_rate) if stream.average_rate else 0.04
        stats.error = ending_problem(path, stats, grid.end_s, frame_s)


def _declared_duration_s(container, stream, time_base: Fraction) -> float | None:
    """The duration the stream (else the container) declares, in seconds; None when neither does."""
    if stream.duration is not None:
        return float(stream.duration * time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


@dataclass
class _Grid:
    """Which decoded frames to keep: the first at or after each point of a grid of `step_s`
    seconds, inside [lo_s, end_s]. The grid runs through `origin_s`, or through the first frame
    inside the window when that is None."""

    step_s: float
    lo_s: float | None
    end_s: float | None
    origin_s: float | None
    target_s: float | None = None  # the next grid point

    BEFORE, AFTER, SKIP, TAKE = "before", "after", "skip", "take"

    def verdict(self, t_s: float) -> str:
        """Where a frame at `t_s` falls: before or after the window, between grid points, or taken."""
        if self.lo_s is not None and t_s < self.lo_s:
            return self.BEFORE
        if self.end_s is not None and t_s > self.end_s:
            return self.AFTER
        if self.target_s is None:
            self.target_s = (
                t_s if self.origin_s is None else first_grid_point(self.origin_s, self.step_s, self.lo_s or 0.0)
            )
        if t_s + 1e-6 < self.target_s:
            return self.SKIP
        self.target_s = next_target(self.target_s, self.step_s, t_s)
        return self.TAKE


def _decode_on_grid(
    container, stream, positions: Positions, grid: _Grid, stats: SampleStats, time_limit_s: float | None
) -> Generator[Frame, None, bool]:
    """Decode `stream` and yield the frames `grid` takes, counting into `stats`; returns whether
    decoding stopped because it left the window. A decode error, or running past `time_limit_s`
    of wall time, ends it with `stats.error` set."""
    deadline = time.monotonic() + time_limit_s if time_limit_s else None
    time_base: Fraction = stream.time_base or Fraction(1, 90000)
    index = 0
    try:
        for frame in container.decode(stream):
            if deadline is not None and time.monotonic() > deadline:
                stats.error = (
                    f"stopped after {stats.reached_s or 0.0:.2f} s: decoding took longer than {time_limit_s:.0f} s"
                )
                break
            pos = positions.place(frame.pts, frame.duration or 0)
            stats.resets_s, stats.untimed = positions.resets_s, positions.untimed
            t = float(pos * time_base)
            stats.decoded += 1
            stats.reached_s = t
            verdict = grid.verdict(t)
            if verdict == grid.BEFORE:
                stats.decoded_outside += 1
            elif verdict == grid.AFTER:
                return True
            elif verdict == grid.TAKE:
                stats.sampled += 1
                yield Frame(
                    partial(rgb_of, frame),
                    pos,
                    time_base,
                    index,
                    luma_view(frame),
                )
                index += 1
    except (av.FFmpegError, EOFError, ValueError) as exc:
        stats.error = f"decode error after {stats.reached_s or 0.0:.2f} s ({_reason(exc)})"
    return False


def ending_problem(path: Path, stats: SampleStats, end_s: float | None, frame_s: float) -> str:
    """Why a file whose decoder ran out of frames was not read to its end ('' when it was).

    Three signs, any one enough: no frame at all; fewer bytes than the container declares
    (cut short, whatever the decoder made of it); the last frame well before the span the
    packets cover, or else the duration the container states (`stats.duration_s`, both as
    positions; a few frames, 0.5 s or 1 % of it, whichever is most, for the slack of real
    muxers).
    """
    if stats.decoded == 0:
        return "no frame could be decoded"
    reached = stats.reached_s or 0.0
    if missing := shortfall_bytes(path):
        return f"cut short: {missing} bytes missing at the end of the file; read up to {reached:.2f} s"
    duration = stats.duration_s
    if duration is None or duration <= 0:
        return ""
    expected = min(duration, end_s) if end_s is not None else duration
    if reached + max(4 * frame_s, 0.5, 0.01 * duration) < expected:
        return f"decoding ended at {reached:.2f} s of {expected:.2f} s"
    return ""


def read_still(path: Path) -> Frame:
    """A still image as a one-frame feed; raises VideoOpenError when it is not a readable image
    or larger than MAX_IMAGE_PIXELS (judged from its header, before any pixel is decoded)."""
    if problem := _too_large(*image_size(path)):
        raise VideoOpenError(problem)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise VideoOpenError("not a readable image")
    return Frame(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 0, Fraction(1, 1), 0)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image's header; (0, 0) when the header says nothing readable
    (the decoder then has the last word). VideoOpenError when even Pillow calls it a bomb."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except Image.DecompressionBombError as exc:  # Pillow's own limit lies above ours
        raise VideoOpenError(
            f"above the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel cap ({str(exc).split(',')[0]})"
        ) from None
    except (OSError, ValueError, SyntaxError):  # not an image Pillow knows: no claim
        return (0, 0)

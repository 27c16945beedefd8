"""Short H.264 MP4 clips of each sighting, cut from the footage with PyAV, so the report travels.

A browser cannot play a .dav or .ts export, and a link to the original footage breaks as soon as
the report is copied elsewhere. So every video sighting gets its own clip in report/clips/: the
sighting with `context_s` of footage on each side, at most `max_s` long, scaled to at most
`CLIP_MAX_WIDTH_PX` wide. A clip's name carries a key of everything it is made from (the file's
SHA-256, the window, the size), so a rewritten report reuses the clips of the previous one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import av

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


@dataclass(frozen=True)
class ClipWindow:
    """Where a clip starts and ends, in seconds into its source file."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def clip_window(start_s: float, end_s: float, *, context_s: float, max_s: float,
                file_duration_s: float | None) -> ClipWindow:
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
    """'clips/clip-<track id>-<key>.mp4': the key changes whenever the clip would come out different."""
    key = f"{s.file.sha256}|{window.start_s:.3f}|{window.end_s:.3f}|{CLIP_MAX_WIDTH_PX}|{CLIP_CRF}|{CLIP_MAX_FPS}"
    return f"{CLIPS_DIRNAME}/clip-{int(s.track_id)}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.mp4"


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def cut_clip(src: Path, dst: Path, window: ClipWindow, max_width_px: int = CLIP_MAX_WIDTH_PX) -> int:
    """Decode `src` from `window.start_s` to `window.end_s` and write it to `dst` as H.264 MP4.

    Returns the number of frames written (0: nothing decodable in the window, no file left).
    Raises av.error.FFmpegError or OSError when the file cannot be read or the clip written.
    """
    frames = 0
    with av.open(str(src)) as source:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        rate = min(stream.average_rate or stream.guessed_rate or Fraction(25), Fraction(CLIP_MAX_FPS))
        step_ms = 1000.0 / float(rate)
        if window.start_s > 0:
            source.seek(int(window.start_s * av.time_base), backward=True, any_frame=False)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"}) as sink:
            out = None
            last_ms = -1
            for frame in source.decode(stream):
                if frame.pts is None or frame.time is None:
                    continue
                t = float(frame.time)
                if t < window.start_s - 1e-3:
                    continue
                if t > window.end_s + 1e-3:
                    break
                if out is None:
                    scale = min(1.0, max_width_px / frame.width)
                    out = sink.add_stream("libx264", rate=rate)
                    out.width, out.height = _even(frame.width * scale), _even(frame.height * scale)
                    out.pix_fmt = "yuv420p"
                    out.codec_context.time_base = _CLIP_TIME_BASE
                    out.options = {"crf": str(CLIP_CRF), "preset": CLIP_PRESET}
                ms = int(round((t - window.start_s) * 1000))
                if last_ms >= 0 and ms < last_ms + step_ms - 1:  # faster than CLIP_MAX_FPS: drop it
                    continue
                image = frame.reformat(width=out.width, height=out.height, format="yuv420p",
                                       interpolation="FAST_BILINEAR")
                image.pts, image.time_base = ms, _CLIP_TIME_BASE
                sink.mux(out.encode(image))
                last_ms = ms
                frames += 1
            if out is not None:
                sink.mux(out.encode(None))
    if frames == 0:
        dst.unlink(missing_ok=True)
    return frames


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


def write_clips(sightings: Iterable[Sighting], folder: Path, *, context_s: float, max_s: float,
                previous: Path | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict[int, str]:
    """Cut a clip for every video sighting whose file is readable; returns {track id: relative path}.

    `previous`: an earlier report folder whose identical clips are reused instead of cut again.
    A file that cannot be decoded gets no clips (its sightings keep file and offset on the pages).
    """
    todo = [s for s in sightings if not s.file.is_photo and s.file.status != "skipped"]
    out: dict[int, str] = {}
    broken: set[str] = set()
    for k, s in enumerate(todo, 1):
        window = clip_window(s.start_s, s.end_s, context_s=context_s, max_s=max_s, file_duration_s=s.file.duration_s)
        name = clip_name(s, window)
        target = folder / name
        if _reuse(previous, name, target):
            out[s.track_id] = name
        elif s.file.path not in broken and Path(s.file.path).is_file():
            try:
                if cut_clip(Path(s.file.path), target, window):
                    out[s.track_id] = name
            except (av.error.FFmpegError, OSError, ValueError):
                target.unlink(missing_ok=True)
                broken.add(s.file.path)
        if progress:
            progress(k, len(todo))
    return out

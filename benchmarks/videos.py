"""Write real videos from numpy with PyAV, with chosen pts: the tests' footage and the fuzz's."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    times_s: Sequence[float] | None = None,
    fps: int = 10,
    gop: int = 10,
    metadata: dict | None = None,
    rotation_deg: int = 0,
) -> Path:
    """Encode RGB frames (H, W, 3) as H.264; frame i gets pts times_s[i] (default i / fps).

    `rotation_deg`: store the frames sideways as a phone does: each is turned clockwise by that
    many degrees and the stream's display matrix says to turn it back (counter-clockwise), so a
    player that honours the matrix shows the frames as given."""
    return write_streams(path, [list(frames)], times_s, fps, gop, metadata, rotation_deg)


def write_streams(
    path: Path,
    streams: Sequence[Sequence[np.ndarray]],
    times_s: Sequence[float] | None = None,
    fps: int = 10,
    gop: int = 10,
    metadata: dict | None = None,
    rotation_deg: int = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> Path:
    """One video stream per list of RGB frames, in one container (a multi-channel DVR export).

    H.264 by default, without B-frames; another `codec` and `pix_fmt` take `options` as given
    (none by default)."""
    if options is None:
        options = {"preset": "ultrafast", "bf": "0"} if codec == "libx264" else {}
    time_base = Fraction(1, 1000)
    turns = round(rotation_deg / 90) % 4
    streams = [[np.rot90(image, -turns) for image in frames] for frames in streams]
    with av.open(str(path), mode="w") as container:
        if metadata:
            container.metadata.update(metadata)
        outs = []
        for frames in streams:
            h, w = frames[0].shape[:2]
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            stream.codec_context.gop_size = gop
            stream.options = options
            if rotation_deg:
                stream.set_display_rotation(rotation_deg)
            outs.append(stream)
        for i in range(max(len(f) for f in streams)):
            for stream, frames in zip(outs, streams, strict=True):
                if i >= len(frames):
                    continue
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
                t = times_s[i] if times_s is not None else i / fps
                frame.pts = round(t / time_base)
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in outs:
            for packet in stream.encode():
                container.mux(packet)
    return path


def numbered_frames(n: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """Frames whose mean brightness encodes their number (to check which frames came back)."""
    w, h = size
    return [np.full((h, w, 3), (i * 7) % 250, np.uint8) for i in range(n)]


def write_audio_only(path: Path) -> Path:
    """A file with one MP2 audio stream and no video (a quarter second of silence)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mp2", rate=44100)
        stream.layout = "mono"
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16", layout="mono")
            frame.sample_rate = 44100
            frame.pts = i * 1152
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

"""Write real H.264 test videos from numpy with PyAV, with chosen pts."""

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
) -> Path:
    """Encode RGB frames (H, W, 3) as H.264; frame i gets pts times_s[i] (default i / fps)."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    time_base = Fraction(1, 1000)
    with av.open(str(path), mode="w") as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            t = times_s[i] if times_s is not None else i / fps
            frame.pts = round(t / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(n: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """Frames whose mean brightness encodes their number (to check which frames came back)."""
    w, h = size
    return [np.full((h, w, 3), (i * 7) % 250, np.uint8) for i in range(n)]

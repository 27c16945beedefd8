import struct
from pathlib import Path

import numpy as np
import pytest

from benchmarks.videos import numbered_frames, write_video
from vidcluster.errors import VideoOpenError
from vidcluster.video.containers import shortfall_bytes
from vidcluster.video.sampler import SampleStats, next_target, read_still, sample_video

# variable frame rate with a 4.7 s recording gap
VFR_TIMES = [0, 0.1, 0.2, 0.3, 5.0, 5.1, 5.2] + [5.3 + i * 0.25 for i in range(23)]


@pytest.fixture
def vfr_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "vfr.mp4", numbered_frames(len(VFR_TIMES)), VFR_TIMES, gop=10)


def test_times_come_from_pts_not_frame_counts(vfr_video):
    times = [f.pts_s for f in sample_video(vfr_video, fps=2.0)]
    assert times[:2] == pytest.approx([0.0, 5.0])  # the gap is kept, not squeezed into frame counts
    assert np.all(np.diff(times) >= 0.5 - 1e-6)
    assert all(any(abs(t - v) < 1e-6 for v in VFR_TIMES) for t in times)


@pytest.mark.parametrize("fps,expected", [(1.0, 7), (2.0, 13), (100.0, len(VFR_TIMES))])
def test_sampling_rate(vfr_video, fps, expected):
    assert len(list(sample_video(vfr_video, fps=fps))) == expected


def test_window_seeks_and_stops(vfr_video):
    stats = SampleStats()
    frames = list(sample_video(vfr_video, 2.0, start_s=6.0, end_s=8.0, stats=stats))
    times = [f.pts_s for f in frames]
    assert times[0] >= 6.0 and times[-1] <= 8.0
    assert times == pytest.approx([6.05, 6.55, 7.05, 7.55])
    # the content is that of the frames at those times (brightness encodes the frame number)
    idx = [VFR_TIMES.index(min(VFR_TIMES, key=lambda v: abs(v - t))) for t in times]
    assert [f.image.mean() for f in frames] == pytest.approx([(i * 7) % 250 for i in idx], abs=3)
    assert stats.decoded_outside <= 10  # at most one GOP before the window
    assert stats.decoded < len(VFR_TIMES)  # decoding stopped at the window's end


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100, bytes(range(256)) * 40])
def test_garbage_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoOpenError):
        list(sample_video(path, 2.0))


def test_truncated_video_keeps_frames_before_the_break(tmp_path):
    # Matroska is streamable: a file cut in half (a copy interrupted) still plays up to the cut
    full = write_video(tmp_path / "full.mkv", numbered_frames(60, (160, 120)), fps=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    stats = SampleStats()
    frames = list(sample_video(cut, 2.0, stats=stats))
    assert 3 <= len(frames) < 12
    assert stats.reached_s is not None and stats.reached_s < 5.9


def test_next_target_keeps_grid():
    assert next_target(0.0, 0.5, 0.0) == 0.5
    assert next_target(0.0, 0.5, 5.0) == 5.5


def test_read_still(tmp_path):
    import cv2

    path = tmp_path / "x.png"
    cv2.imwrite(str(path), np.full((10, 12, 3), (255, 0, 0), np.uint8))  # BGR blue
    frame = read_still(path)
    assert frame.image.shape == (10, 12, 3) and tuple(frame.image[0, 0]) == (0, 0, 255)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(VideoOpenError):
        read_still(bad)


def test_frames_convert_to_rgb_only_when_asked(vfr_video):
    """The luma plane is there without conversion; RGB is made on first use of `image`, once."""
    frames = list(sample_video(vfr_video, fps=2.0))
    assert all("image" not in f.__dict__ for f in frames)  # nothing converted yet
    first = frames[0]
    grey = first.luma()
    assert grey.shape == first.image.shape[:2] and grey.dtype == np.uint8
    assert first.image is first.image  # converted once
    # same picture: luma and the RGB's mean brightness agree to a few grey levels
    assert abs(float(grey.mean()) - float(first.image.mean())) < 4


def test_still_frames_have_no_luma_view(tmp_path):
    import cv2

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.full((20, 30, 3), 90, np.uint8))
    frame = read_still(path)
    assert frame.luma is None and frame.image.shape == (20, 30, 3)


# -- cut files: what the container declares against what the file holds (issue 13) -------------


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _riff(kind: bytes, body: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + kind + body


def _ebml(ident: bytes, body: bytes, unknown: bool = False) -> bytes:
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else b"\x01" + struct.pack(">Q", len(body))[1:]
    return ident + size + body


_MP4 = _box(b"ftyp", b"isom" * 3) + _box(b"moov", bytes(40)) + _box(b"mdat", bytes(500))
_MKV = _ebml(b"\x1a\x45\xdf\xa3", bytes(20)) + _ebml(b"\x18\x53\x80\x67", bytes(600))


@pytest.mark.parametrize(
    "blob,missing",
    [
        (_MP4, 0),
        (_MP4[:-100], 100),
        (_MP4[:-503], 1),  # the cut falls inside the last box's header: known to be short, not by how much
        (_MP4[:40], 28),  # inside moov (20 + 48 bytes declared); mdat's header is gone too
        (_box(b"ftyp", b"isom") + struct.pack(">I", 0) + b"mdat" + bytes(99), 0),  # size 0: runs to the end
        (_MKV, 0),
        (_MKV[:-250], 250),
        (_MKV + bytes(7), 0),  # zero padding after the segment: no claim
        (_ebml(b"\x1a\x45\xdf\xa3", bytes(20)) + _ebml(b"\x18\x53\x80\x67", bytes(600), unknown=True)[:300], 0),
        (_riff(b"AVI ", bytes(800)), 0),
        (_riff(b"AVI ", bytes(800))[:500], 312),
        (b"\x47" + bytes(187) * 3, 0),  # MPEG-TS declares no size
        (b"", 0),
    ],
    ids=lambda v: None if isinstance(v, int) else f"{len(v)}B",
)
def test_shortfall_bytes(tmp_path, blob, missing):
    path = tmp_path / "f.bin"
    path.write_bytes(blob)
    assert shortfall_bytes(path) == missing


def test_gpu_decoding_falls_back_to_the_same_frames_without_a_gpu(tmp_path):
    """The batched (GPU) path asks for NVIDIA decoding; where no CUDA device can be made the file
    is decoded on the CPU, frame for frame as without asking."""

    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(20)]
    path = write_video(tmp_path / "a.mp4", frames, fps=10)
    plain = [(f.pts, f.image.mean()) for f in sample_video(path, 2.0)]
    gpu = [(f.pts, f.image.mean()) for f in sample_video(path, 2.0, gpu=True)]
    assert len(plain) >= 3 and gpu == plain

"""Files whose timestamps reset, start late, lie about their length, or refuse to seek (video/timeline.py)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import data_path
from tests_support import face_crop, face_frames

from benchmarks.videos import numbered_frames, write_video
from vidcluster.config import Config, load_config
from vidcluster.report.clips import Clip, ClipPass, ClipWindow, cut_pass
from vidcluster.run.pipeline import analyse
from vidcluster.run.segments import plan_segments
from vidcluster.types import Footage
from vidcluster.video.sampler import SampleStats, sample_video
from vidcluster.video.sources import probe_video
from vidcluster.video.timeline import MAX_GAP_S, Positions, scan_timing


def _brightness(frame) -> int:
    return round(float(frame.image.mean()))


def _glued(tmp_path: Path, second_starts_s: float, first=None, second=None, name="glued.ts") -> Path:
    """`cat a.ts b.ts`: 4 s at 10 fps starting at 100 s, then 4 s starting at `second_starts_s`
    (`first`, `second`: their frames, 40 each unless given)."""
    frames = numbered_frames(80)
    first, second = first or frames[:40], second or frames[40:]
    a = write_video(tmp_path / "a.ts", first, times_s=[100 + i / 10 for i in range(len(first))])
    b = write_video(tmp_path / "b.ts", second, times_s=[second_starts_s + i / 10 for i in range(len(second))])
    out = tmp_path / name
    out.write_bytes(a.read_bytes() + b.read_bytes())
    return out


@pytest.mark.parametrize(
    "ts, expected, resets",
    [
        ((5, 6, 7, 8), [0, 1, 2, 3], []),
        ((5, 6, 2, 3), [0, 1, 2, 3], [0.2]),  # back
        ((5, 6, 6, 7), [0, 1, 2, 3], [0.2]),  # repeated
        ((5, 6, 9, 10), [0, 1, 4, 5], []),  # a recording gap keeps its time
        ((0, 1, 1 + int(MAX_GAP_S * 10) + 1, 2 + int(MAX_GAP_S * 10) + 1), [0, 1, 2, 3], [0.2]),  # a leap of years
        ((None, None, None), [0, 1, 2], []),  # no timestamps: counted on
    ],
)
def test_positions_only_move_forward(ts, expected, resets):
    p = Positions(Fraction(1, 10), origin=None, step=1)
    assert [p.place(t) for t in ts] == expected
    assert p.resets_s == pytest.approx(resets)


@pytest.mark.parametrize("second_starts_s", [0.0, 100.0], ids=["goes-back", "repeats"])
def test_glued_transport_streams_are_sampled_to_their_end(tmp_path, second_starts_s):
    path = _glued(tmp_path, second_starts_s)
    probe = probe_video(path)
    assert probe.duration_s == pytest.approx(8.0)
    assert probe.timing.resets_s == pytest.approx((4.0,))
    assert "timestamps reset 1 time (at 4.00 s)" in probe.note
    stats = SampleStats()
    frames = list(sample_video(path, 2.0, stats=stats, span_s=probe.duration_s, seek=False))
    times = [f.pts_s for f in frames]
    assert times == pytest.approx([i / 2 for i in range(16)])
    # every second half's frame is b's own picture (numbered_frames: brightness 7 per frame)
    assert [_brightness(f) for f in frames[8:]] == pytest.approx([((40 + 5 * i) * 7) % 250 for i in range(8)], abs=3)
    assert stats.error == "" and stats.resets_s == pytest.approx([4.0])


@pytest.fixture(scope="module")
def two_faces():
    return face_crop(data_path("hamilton", "obama.jpg")), face_crop(data_path("hamilton", "biden.jpg"))


def test_glued_file_is_done_with_both_people_and_says_its_later_times_are_less_certain(tmp_path, two_faces):
    obama, biden = two_faces
    cam = tmp_path / "in" / "dvr"
    cam.mkdir(parents=True)
    _glued(cam, 0.0, face_frames(obama, 20, step_px=6), face_frames(biden, 20, step_px=6), "dvr_20260314-100000.ts")
    for name in ("a.ts", "b.ts"):
        (cam / name).unlink()
    out = tmp_path / "out"
    summary = analyse([tmp_path / "in"], out, load_config(None, {"run": {"workers": 1}}))
    assert summary.partial == []
    assert len(summary.identities) == 2  # the person after the reset is there
    later = [s for i in summary.identities for s in i["sightings"] if s["start_offset_s"] >= 2.0]
    assert later and later[0]["start"].startswith("2026-03-14T10:00:02")  # its start time + its position
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    (entry,) = manifest["inputs"]
    assert entry["status"] == "done" and entry["timestamp_resets_s"] == pytest.approx([2.0])
    assert "counted from the position in the file, less certain" in entry["reason"] == entry["timing"]
    pages = "".join(p.read_text() for p in (out / "report").rglob("*.html"))
    assert "after a timestamp reset</span>" in pages


def test_clips_are_cut_at_positions_after_a_reset_and_after_a_late_start(tmp_path):
    glued = _glued(tmp_path, 0.0)
    target = tmp_path / "clip.mp4"
    frames = cut_pass(ClipPass(glued, (Clip(1, ClipWindow(5.0, 6.0), target),), seek=False))
    assert frames[1] >= 5
    with av.open(str(target)) as clip:
        first = next(clip.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(float(first.mean()) - (50 * 7) % 250) < 4  # b's frame at 1.0 s, position 5.0 s
    late = write_video(tmp_path / "late.mkv", numbered_frames(25), times_s=[30 + i / 10 for i in range(25)])
    assert cut_pass(ClipPass(late, (Clip(2, ClipWindow(0.5, 1.5), tmp_path / "late.mp4"),)))[2] >= 5


def _with_b_frame_delay(path: Path, n: int = 60) -> Path:
    """H.264 with B-frames allowed: Matroska then leaves the first packets' dts out."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "veryfast", "bf": "2", "g": "30"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_decode_order_delay_is_no_reset(tmp_path):
    path = _with_b_frame_delay(tmp_path / "bf.mkv")
    with av.open(str(path)) as container:
        assert [p.dts for p in container.demux(video=0)][:2] == [None, None]
    probe = probe_video(path)
    assert probe.timing.resets_s == () and probe.note == ""
    assert probe.duration_s == pytest.approx(2.0, abs=0.04)


def test_real_clips_have_no_resets_and_their_packet_span():
    path = data_path("cctv-asl", "entrance", "entrance_20260314-091502.mkv")
    probe = probe_video(path)
    assert probe.timing.resets_s == () and probe.timing.seekable
    stats = SampleStats()
    frames = list(sample_video(path, 2.0, stats=stats, span_s=probe.duration_s))
    assert stats.resets_s == [] and stats.error == "" and len(frames) == 6
    assert stats.reached_s == pytest.approx(probe.duration_s - 1 / 30, abs=1e-3)  # its last frame


@pytest.mark.parametrize("ext", ["mkv", "mp4", "ts"])
def test_a_late_first_timestamp_is_no_partial_file(tmp_path, ext):
    """`-output_ts_offset 30`: Matroska states the end time (32.5 s) as its duration."""
    path = write_video(tmp_path / f"late.{ext}", numbered_frames(25), times_s=[30 + i / 10 for i in range(25)])
    assert probe_video(path).duration_s == pytest.approx(2.5)
    for span in (None, 2.5):
        stats = SampleStats()
        assert len(list(sample_video(path, 2.0, stats=stats, span_s=span))) == 5
        assert stats.error == ""
    summary = analyse([path], tmp_path / f"out-{ext}", Config())
    assert summary.partial == []


def test_timestamps_ten_years_in_plan_one_unit(tmp_path):
    years_s = 10 * 365.25 * 86400
    path = write_video(tmp_path / "late.mkv", numbered_frames(26), times_s=[years_s + i / 10 for i in range(26)])
    probe = probe_video(path)
    assert probe.duration_s == pytest.approx(2.6)
    footage = Footage(path, "c", "video", path.stat().st_size, "x", duration_s=probe.duration_s)
    assert len(plan_segments(1, footage, None, None, Config())) == 1


def _raw_h264(path: Path, seconds: float, fps: int = 10) -> Path:
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 7) % 250, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_stream_that_refuses_to_seek_is_decoded_from_its_start(tmp_path):
    path = _raw_h264(tmp_path / "raw.h264", 65)
    stats = SampleStats()
    frames = list(sample_video(path, 2.0, 30.0, 40.0, stats))  # the demuxer refuses any seek
    assert [f.pts_s for f in frames][:2] == pytest.approx([30.0, 30.5]) and len(frames) == 21
    assert stats.seek_failed and stats.error == ""
    probe = probe_video(path)
    assert probe.duration_s == pytest.approx(65.0) and not probe.timing.seekable
    footage = Footage(path, "c", "video", 1, "x", duration_s=probe.duration_s, seekable=False)
    cfg = load_config(None, {"run": {"segment_s": 20.0}})
    assert len(plan_segments(1, footage, None, None, cfg)) == 1
    summary = analyse([path], tmp_path / "out", load_config(None, {"run": {"workers": 2}}))
    assert summary.partial == [] and summary.skipped == []


class _CutOff:
    """A container whose demuxer fails after `n` packets (a scan cut off by an error or the time limit)."""

    def __init__(self, container, n: int) -> None:
        self.container, self.n = container, n

    def demux(self, stream):
        for i, packet in enumerate(self.container.demux(stream)):
            if i == self.n:
                raise EOFError
            yield packet


def test_a_scan_cut_off_after_a_reset_keeps_the_reset_and_refuses_seeks(tmp_path):
    """What the packets said before the scan broke off still holds: a file seen to reset is never
    entered by a seek (a position there is no timestamp), whatever its end holds."""
    path = _glued(tmp_path, 0.0)
    with av.open(str(path)) as container:
        timing = scan_timing(_CutOff(container, 60), container.streams.video[0])
    assert timing.span_s is None
    assert timing.resets_s == pytest.approx((4.0,))
    assert not timing.seekable

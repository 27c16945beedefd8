from datetime import datetime, timezone

import pytest

from benchmarks.videos import numbered_frames, write_video
from vidcluster.config import CameraConfig, SourcesConfig
from vidcluster.errors import InputError
from vidcluster.video.sources import Probe, describe_all, discover, resolve_start, time_from_name

UTC = timezone.utc


@pytest.mark.parametrize(
    "name,tz,pattern,expected",
    [
        ("entrance_20260314-091502.mkv", "Europe/Berlin", "", datetime(2026, 3, 14, 8, 15, 2, tzinfo=UTC)),
        ("20260314_091502.mp4", "UTC", "", datetime(2026, 3, 14, 9, 15, 2, tzinfo=UTC)),
        ("cam 2026-03-14 09.15.02.avi", "UTC", "", datetime(2026, 3, 14, 9, 15, 2, tzinfo=UTC)),
        ("ch01_14032026_0915.dav", "UTC", "ch01_%d%m%Y_%H%M", datetime(2026, 3, 14, 9, 15, tzinfo=UTC)),
        ("clip.mp4", "UTC", "", None),
        ("cam_20261399_999999.mp4", "UTC", "", None),  # not a real date
    ],
)
def test_time_from_name(name, tz, pattern, expected):
    assert time_from_name(name, tz, pattern) == expected


def test_start_time_order_and_clock_offset(tmp_path):
    path = tmp_path / "x_20260314-100000.mp4"
    path.write_bytes(b"")
    probe = Probe(10.0, datetime(2020, 1, 1, tzinfo=UTC))
    fixed = CameraConfig(id="a", start_time="2026-01-01T00:00:00Z", clock_offset_s=-30)
    assert resolve_start(path, fixed, probe, True) == (datetime(2025, 12, 31, 23, 59, 30, tzinfo=UTC), "config")
    assert resolve_start(path, CameraConfig(id="a"), probe, True)[1] == "filename"
    plain = tmp_path / "clip.mp4"
    plain.write_bytes(b"")
    assert resolve_start(plain, CameraConfig(id="a"), probe, True) == (probe.creation_utc, "metadata")
    assert resolve_start(plain, CameraConfig(id="a"), Probe(1.0, None), True)[1] == "mtime"
    assert resolve_start(plain, CameraConfig(id="a"), Probe(1.0, None), False) == (None, "none")


def test_discover_cameras_from_folders_and_config(tmp_path):
    for rel in [
        "lobby/a.mp4",
        "lobby/b.txt",
        "yard/sub/c.mkv",
        "shared/door_1.mp4",
        "shared/gate_1.mp4",
        ".hidden/x.mp4",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    cfg = SourcesConfig(
        cameras=(
            CameraConfig(id="door", paths=("shared/*",), filename_pattern="door_*"),
            CameraConfig(id="gate", paths=("shared/*",), filename_pattern="gate_*"),
        )
    )
    found, skipped = discover([tmp_path], cfg)
    got = {c.path.relative_to(tmp_path).as_posix(): c.camera.id for c in found}
    assert got == {
        "lobby/a.mp4": "lobby",
        "yard/sub/c.mkv": "sub",
        "shared/door_1.mp4": "door",
        "shared/gate_1.mp4": "gate",
    }
    assert skipped == []


def test_discover_missing_input(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        discover([tmp_path / "nope"], SourcesConfig())


def test_broken_symlink_is_skipped(tmp_path):
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "gone.mp4").symlink_to(tmp_path / "missing.mp4")
    found, skipped = discover([tmp_path], SourcesConfig())
    assert found == [] and skipped[0].reason == "broken symbolic link"


def test_describe_probes_hashes_and_skips(tmp_path):
    cam = tmp_path / "cam"
    cam.mkdir()
    write_video(cam / "cam_20260314-120000.mp4", numbered_frames(20), fps=10)
    (cam / "junk.mp4").write_bytes(b"\x00" * 1000)
    (cam / "notes.weird").write_bytes(b"hello")
    found, _ = discover([tmp_path], SourcesConfig())
    footage, skipped = describe_all(found, SourcesConfig())
    assert [f.path.name for f in footage] == ["cam_20260314-120000.mp4"]
    f = footage[0]
    assert f.start_source == "filename" and f.start_utc == datetime(2026, 3, 14, 12, tzinfo=UTC)
    assert f.duration_s == pytest.approx(2.0, abs=0.15) and len(f.sha256) == 64
    assert sorted(s.path.name for s in skipped) == ["junk.mp4", "notes.weird"]
    assert all(s.reason for s in skipped)


def test_doctests_of_sources_and_config():
    import doctest

    import vidcluster.config
    import vidcluster.video.sources

    for module in (vidcluster.video.sources, vidcluster.config):
        assert doctest.testmod(module).failed == 0


def test_discover_skips_what_is_no_regular_file_and_keeps_odd_names(tmp_path):
    import os

    cam = tmp_path / "cam"
    cam.mkdir()
    odd = cam / os.fsdecode(b"caf\xe9.mkv")  # Latin-1 bytes: not UTF-8
    odd.write_bytes(b"x")
    os.mkfifo(cam / "pipe.mkv")
    (cam / "a.mp4").symlink_to(cam / "b.mp4")
    (cam / "b.mp4").symlink_to(cam / "a.mp4")
    (cam / "gone.mp4").symlink_to(cam / "missing.mp4")
    (cam / "sub").mkdir()
    found, skipped = discover([tmp_path], SourcesConfig())
    assert [c.path.name for c in found] == [odd.name]
    assert sorted((s.path.name, s.reason) for s in skipped) == [
        ("a.mp4", "symbolic link loop"),
        ("b.mp4", "symbolic link loop"),
        ("gone.mp4", "broken symbolic link"),
        ("pipe.mkv", "not a regular file (a named pipe)"),
    ]
    found, skipped = discover([cam / "pipe.mkv", cam / "a.mp4"], SourcesConfig())
    assert found == [] and [s.reason for s in skipped] == ["not a regular file (a named pipe)", "symbolic link loop"]

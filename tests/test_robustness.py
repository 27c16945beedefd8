"""Bad input, crashes and privacy: nothing lost, nobody let in (issue 7)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import alternating_clips, face_crop, face_frames, identity_summary

from benchmarks.videos import write_audio_only, write_video
from vidcluster.case.outdir import run_lock
from vidcluster.cli import main
from vidcluster.config import Config, load_config
from vidcluster.errors import StoreError, VideoOpenError
from vidcluster.run.pipeline import analyse
from vidcluster.video.sampler import SampleStats, read_still, sample_video


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    """One good clip with a face among every kind of bad file a CCTV export holds."""
    root = tmp_path_factory.mktemp("messy")
    cam = root / "cam"
    cam.mkdir()
    obama = face_crop(data_path("hamilton", "obama.jpg"))
    good = write_video(cam / "cam_20260314-100000.mkv", face_frames(obama, 40), fps=10)
    (cam / "zero.mp4").write_bytes(b"")
    (cam / "random.mp4").write_bytes(random.Random(1).randbytes(50_000))
    (cam / "notes.mov").write_text("this is a text file with a video extension\n" * 50)
    full = write_video(root / "long.mkv", face_frames(obama, 80), fps=10)
    (cam / "cam_20260314-110000.mkv").write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    full.unlink()
    write_audio_only(cam / "audio_only.mkv")
    (cam / "gone.mp4").symlink_to(root / "missing.mp4")
    (cam / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    (cam / "readme.txt").write_text("not footage")
    return root, good


def test_bad_files_never_stop_a_run(messy_folder, tmp_path):
    root, _good = messy_folder
    out = tmp_path / "out"
    summary = analyse([root], out, Config())
    reasons = {Path(s["path"]).name: s["reason"] for s in summary.skipped}
    assert set(reasons) == {"zero.mp4", "random.mp4", "notes.mov", "audio_only.mkv", "gone.mp4", "broken.jpg"}
    assert "no video stream" in reasons["audio_only.mkv"]
    assert reasons["gone.mp4"] == "broken symbolic link"
    assert all(reasons.values())
    assert [Path(p).name for p in summary.ignored] == ["readme.txt"]
    # the good clip and the readable part of the truncated one are intact: one person, two sightings
    assert len(summary.identities) == 1 and summary.identities[0]["n_sightings"] == 2
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert all(name in text for name in reasons)
    html = (out / "report" / "index.html").read_text()
    assert "random.mp4" in html and "audio_only.mkv" in html


def test_truncated_file_is_partial_with_offset(messy_folder, tmp_path):
    root, _ = messy_folder
    analyse([root], tmp_path / "out", Config())
    db = sqlite3.connect(tmp_path / "out" / "vidcluster.db")
    status, reached = db.execute(
        "SELECT status, reached_s FROM footage WHERE path LIKE '%cam_20260314-110000.mkv'"
    ).fetchone()
    # a cut Matroska file ends early, with or without a decode error: it is partial either way
    # (shorter than its container declares), the faces before the cut are kept, the offset recorded
    assert status == "partial" and 2.0 < reached < 8.0
    faces = db.execute(
        "SELECT COUNT(*) FROM faces fa JOIN footage f ON f.id = fa.footage_id WHERE f.path LIKE '%110000.mkv'"
    ).fetchone()[0]
    assert faces >= 4


def test_cli_exit_codes_and_strict(messy_folder, tmp_path):
    root, _ = messy_folder
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(root), "--out", str(tmp_path / "a"), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning(s)" in result.stderr and "skipped" in result.stderr
    strict = runner.invoke(main, ["run", str(root), "--out", str(tmp_path / "a"), "-q", "--strict"])
    assert strict.exit_code == 3


def test_decode_time_limit_cuts_a_file_short(tmp_path):
    path = write_video(tmp_path / "v.mkv", [np.full((48, 64, 3), i, np.uint8) for i in range(50)], fps=10)
    stats = SampleStats()
    frames = list(sample_video(path, 10.0, stats=stats, time_limit_s=1e-9))
    assert frames == [] and "longer than" in stats.error


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--config", "{cfg}"], "sampler.fsp"),
        (["--fps", "0"], "sampler.fps"),
        (["--since", "2026-03-14T11:00", "--until", "2026-03-14T10:00"], "since"),
        (["--since", "noon"], "sampler.since"),
    ],
)
def test_bad_flags_and_config_exit_2_and_write_nothing(tmp_path, args, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sampler: {fsp: 3}\n")
    out = tmp_path / "out"
    (tmp_path / "in").mkdir()
    args = [a.replace("{cfg}", str(cfg)) for a in args]
    result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--out", str(out), *args])
    assert result.exit_code == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_input_and_out_that_is_a_file(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no such file" in result.stderr
    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / "a.mkv", [np.zeros((48, 64, 3), np.uint8)] * 5)
    (tmp_path / "file").write_text("x")
    result = runner.invoke(main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "file")])
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_second_run_on_same_out_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / "a.mkv", [np.zeros((48, 64, 3), np.uint8)] * 5)
    with run_lock(tmp_path / "out"), pytest.raises(StoreError, match="another vidcluster run"):
        analyse([tmp_path / "in"], tmp_path / "out")
    analyse([tmp_path / "in"], tmp_path / "out")  # free again afterwards


def test_output_is_owner_only(tmp_path):
    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / "a.mkv", [np.zeros((48, 64, 3), np.uint8)] * 5)
    analyse([tmp_path / "in"], tmp_path / "out")
    assert (tmp_path / "out").stat().st_mode & 0o077 == 0
    assert (tmp_path / "out" / "vidcluster.db").stat().st_mode & 0o077 == 0


# -- crash safety ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def six_clips(tmp_path_factory):
    return alternating_clips(
        tmp_path_factory.mktemp("six"),
        data_path("hamilton", "obama.jpg"),
        data_path("hamilton", "biden.jpg"),
        cameras=3,
    )


def test_sigkill_mid_run_then_resume_matches_clean_run(six_clips, tmp_path):
    clean = tmp_path / "clean"
    analyse([six_clips], clean, load_config(None, {"run": {"workers": 1}}))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "vidcluster", "run", str(six_clips), "--out", str(out), "--workers", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(out / "vidcluster.db", timeout=1) as db:
                done = db.execute("SELECT COUNT(*) FROM footage WHERE status = 'done'").fetchone()[0]
        except sqlite3.Error:
            pass
        if done >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 6
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert identity_summary(out) == identity_summary(clean)
    with sqlite3.connect(out / "vidcluster.db") as db:
        n_faces = db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        dupes = db.execute(
            "SELECT COUNT(*) FROM (SELECT footage_id, pts_s, x1, y1 FROM faces GROUP BY 1, 2, 3, 4 HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    with sqlite3.connect(clean / "vidcluster.db") as db:
        assert n_faces == db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
    assert dupes == 0


# -- fuzzing -----------------------------------------------------------------------------------
FUZZ_CASES = int(os.environ.get("VIDCLUSTER_FUZZ_CASES", "24"))


def _mutations(data: bytes, rng: random.Random, n: int):
    for i in range(n):
        blob = bytearray(data)
        if i % 3 == 0:
            blob = blob[: rng.randrange(1, len(blob))]
        else:
            for _ in range(rng.randrange(1, 40)):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
        yield bytes(blob)


def test_fuzzed_real_videos_neither_crash_nor_hang(tmp_path):
    """Truncated and bit-flipped copies of real footage: a clean error or a (partial) result, in bounded time."""
    sources = [*sorted(data_path("cctv-asl").rglob("*.mkv"))[:4], data_path("hamilton", "short_hamilton_clip.mp4")]
    rng = random.Random(1234)
    per_source = max(1, FUZZ_CASES // len(sources))
    outcomes = {"error": 0, "frames": 0}
    for src in sources:
        for k, blob in enumerate(_mutations(src.read_bytes(), rng, per_source)):
            path = tmp_path / f"f{k}{src.suffix}"
            path.write_bytes(blob)
            started = time.monotonic()
            try:
                frames = list(sample_video(path, 2.0, stats=SampleStats(), time_limit_s=20))
                outcomes["frames"] += bool(frames)
            except VideoOpenError:
                outcomes["error"] += 1
            assert time.monotonic() - started < 30
    assert sum(outcomes.values()) > 0


def test_fuzzed_jpegs_are_read_or_refused(tmp_path):
    data = data_path("hamilton", "obama_small.jpg").read_bytes()
    for k, blob in enumerate(_mutations(data, random.Random(7), 12)):
        path = tmp_path / f"p{k}.jpg"
        path.write_bytes(blob)
        try:
            frame = read_still(path)
            assert frame.image.ndim == 3
        except VideoOpenError:
            pass


def test_unreadable_file_is_skipped_with_the_reason(tmp_path, monkeypatch):
    """A file the user may not read (tests run as root, where chmod 000 does not stop reads,
    so the refusal is simulated at the one place files are first read)."""
    import vidcluster.video.sources as sources

    (tmp_path / "cam").mkdir()
    write_video(tmp_path / "cam" / "ok.mkv", [np.zeros((48, 64, 3), np.uint8)] * 5)
    locked = write_video(tmp_path / "cam" / "locked.mkv", [np.zeros((48, 64, 3), np.uint8)] * 5)
    real = sources.sha256_of

    def refuse(path, *args, **kwargs):
        if Path(path).name == locked.name:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sources, "sha256_of", refuse)
    summary = analyse([tmp_path / "cam"], tmp_path / "out")
    assert summary.n_files == 1
    assert [(Path(s["path"]).name, s["reason"]) for s in summary.skipped] == [
        ("locked.mkv", "cannot read file (Permission denied)")
    ]

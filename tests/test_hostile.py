"""Kill it, feed it garbage, fill the disk: no hang, no traceback, nothing lost (issue 13).

One test (at least) per row of the issue's table; each of them failed on 7f8f907.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import alternating_clips, face_crop, face_frames, identity_summary

from benchmarks.videos import write_video
from vidcluster import analyse
from vidcluster.case.outdir import LOCK_NAME
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.config import load_config
from vidcluster.errors import DiskFullError, InputError

ROOT = Path(__file__).resolve().parents[1]
ODD = os.fsdecode(b"caf\xff")  # a name with a byte that is not UTF-8 (Python keeps it as '\udcff')


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """The command line in a child process (a hang or a crash shows as it would to a user)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "vidcluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        errors="backslashreplace",
    )


def _blank_clip(path: Path, n: int = 5) -> Path:
    return write_video(path, [np.full((48, 64, 3), 40 + i, np.uint8) for i in range(n)])


def _status(out: Path) -> dict[str, tuple[str, str, float | None]]:
    """{file name: (status, reason, reached_s)} from the store."""
    with sqlite3.connect(out / "vidcluster.db") as db:
        rows = db.execute("SELECT path, status, reason, reached_s FROM footage").fetchall()
    return {Path(p).name: (s, r, t) for p, s, r, t in rows}


def _one_error_line(result) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _big_png(path: Path, side: int = 20000) -> Path:
    """A side x side grey PNG written chunk by chunk (a few hundred KB; never held as pixels)."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" + bytes(side)
    data = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )
    return path


# -- killed main process ------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def face_clips(tmp_path_factory):
    return alternating_clips(
        tmp_path_factory.mktemp("faces"),
        data_path("hamilton", "obama.jpg"),
        data_path("hamilton", "biden.jpg"),
        cameras=2,
    )


@pytest.fixture(scope="module")
def clean_identities(face_clips, tmp_path_factory):
    clean = tmp_path_factory.mktemp("clean") / "o"
    analyse([face_clips], clean, load_config(None, {"run": {"workers": 1}, "sampler": {"fps": 2.0}}))
    return identity_summary(clean)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_killing_only_the_main_process_takes_its_workers_and_lock_along(face_clips, clean_identities, tmp_path, signum):
    out = tmp_path / "killed"
    args = ["run", str(face_clips), "--out", str(out), "--workers", "2", "--fps", "2", "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidcluster", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.02)
    assert proc.poll() is None and len(workers) >= 2, "the run ended before two workers ran"
    os.kill(proc.pid, signum)  # the main process only, as `kill -KILL PID` or `kill PID` does
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(map(_alive, workers)):
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # never leave them behind, whatever the assertion says
        os.kill(pid, signal.SIGKILL)
    assert left == [], "workers outlived the killed run"
    with open(out / LOCK_NAME, "a+") as handle:  # the lock is free at once
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(handle, fcntl.LOCK_UN)
    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    assert identity_summary(out) == clean_identities


# -- files that are not files -------------------------------------------------------------------
def test_named_pipe_socket_and_device_are_skipped_without_waiting(tmp_path):
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    _blank_clip(cam / "ok.mkv")
    os.mkfifo(cam / "x.mkv")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(cam / "s.mp4"))
    (cam / "null.mp4").symlink_to("/dev/null")
    try:
        result = _cli("run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "-q", timeout=120)
    finally:
        sock.close()
    assert result.returncode == 0, result.stderr
    assert f"{cam / 'x.mkv'}: not a regular file (a named pipe)" in result.stderr
    assert f"{cam / 's.mp4'}: not a regular file (a socket)" in result.stderr
    assert f"{cam / 'null.mp4'}: not a regular file (a character device)" in result.stderr
    assert "1 files" in result.stdout


def test_named_pipe_given_as_the_input_itself(tmp_path):
    os.mkfifo(tmp_path / "x.mkv")
    result = _cli("run", str(tmp_path / "x.mkv"), "--out", str(tmp_path / "o"), "-q", timeout=60)
    assert result.returncode == 2 and "no video or image files" in _one_error_line(result)


@pytest.mark.parametrize("as_input", [False, True])
def test_symlink_loop_is_skipped_with_a_reason(tmp_path, as_input):
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    _blank_clip(cam / "ok.mkv")
    (cam / "a.mkv").symlink_to(cam / "b.mkv")
    (cam / "b.mkv").symlink_to(cam / "a.mkv")
    inputs = [str(tmp_path / "in"), str(cam / "a.mkv")] if as_input else [str(tmp_path / "in")]
    result = CliRunner().invoke(main, ["run", *inputs, "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 0, result.output
    assert f"{cam / 'a.mkv'}: symbolic link loop" in result.stderr
    assert f"{cam / 'b.mkv'}: symbolic link loop" in result.stderr


# -- cut and damaged files ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cut_clips(tmp_path_factory):
    """A whole clip, a copy cut to 60 % and one cut so early that no frame decodes."""
    root = tmp_path_factory.mktemp("cut")
    cam = root / "cam"
    cam.mkdir()
    whole = write_video(cam / "whole.mkv", [np.full((96, 128, 3), (i * 9) % 250, np.uint8) for i in range(60)])
    data = whole.read_bytes()
    (cam / "half.mkv").write_bytes(data[: len(data) * 6 // 10])
    header_only = 0
    for n in range(200, len(data), 50):  # the shortest cut that still opens
        (cam / "head.mkv").write_bytes(data[:n])
        try:
            with av.open(str(cam / "head.mkv")) as c:
                if c.streams.video:
                    header_only = n
                    break
        except av.FFmpegError:
            continue
    assert header_only, "no cut of the clip opens"
    return root


def test_cut_files_are_partial_with_the_offset_reached_and_strict_exits_3(cut_clips, tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", str(cut_clips), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    status = _status(out)
    assert status["whole.mkv"][0] == "done"
    state, reason, reached = status["half.mkv"]
    assert state == "partial" and "cut short" in reason and 2.0 < reached < 5.0
    assert status["head.mkv"][0] in ("partial", "skipped") and status["head.mkv"][0] != "done"
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    listed = {Path(f["path"]).name: (f["status"], f["reason"]) for f in manifest["inputs"]}
    assert listed["half.mkv"] == ("partial", reason)
    assert "partly read" in result.stderr
    strict = CliRunner().invoke(main, ["run", str(cut_clips), "--out", str(tmp_path / "s"), "-q", "--strict"])
    assert strict.exit_code == 3


CLI_FUZZ_CASES = int(os.environ.get("VIDCLUSTER_CLI_FUZZ_CASES", "12"))


def _mutate(data: bytes, rng: random.Random, k: int) -> tuple[str, bytes]:
    """Every other case a cut at a random offset, else 1-40 random bytes overwritten."""
    if k % 2 == 0:
        return "cut", data[: rng.randrange(1, len(data))]
    blob = bytearray(data)
    for _ in range(rng.randrange(1, 40)):
        blob[rng.randrange(len(blob))] = rng.randrange(256)
    return "flip", bytes(blob)


def test_fuzzed_clips_through_the_command_line(tmp_path):
    """Cut and bit-flipped copies of real clips in one run: every cut copy is partial or skipped
    (never complete), no traceback, bounded time. VIDCLUSTER_CLI_FUZZ_CASES sets the count."""
    sources = [*sorted(data_path("cctv-asl").rglob("*.mkv"))[:4], data_path("hamilton", "short_hamilton_clip.mp4")]
    rng = random.Random(13)
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    kinds = {}
    for k in range(CLI_FUZZ_CASES):
        src = sources[k % len(sources)]
        kind, blob = _mutate(src.read_bytes(), rng, k)
        name = f"{kind}{k:03d}{src.suffix}"
        (cam / name).write_bytes(blob)
        kinds[name] = kind
    config = tmp_path / "c.yaml"
    config.write_text("run: {file_time_limit_s: 30}\nsampler: {fps: 1}\n")
    started = time.monotonic()
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "-c", str(config), "-q", "--workers", "2"]
    )
    wall_s = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    status = _status(tmp_path / "o") if (tmp_path / "o" / "vidcluster.db").exists() else {}
    outcome = {name: status.get(name, ("skipped", "", None))[0] for name in kinds}
    counts = {f"{kinds[n]} {s}": 0 for n, s in outcome.items()}
    for name, state in outcome.items():
        counts[f"{kinds[name]} {state}"] += 1
    print(f"\n{CLI_FUZZ_CASES} fuzzed clips in {wall_s:.1f} s: {dict(sorted(counts.items()))}")
    assert [n for n, s in outcome.items() if kinds[n] == "cut" and s == "done"] == []
    assert wall_s < 30 + 10 * CLI_FUZZ_CASES


# -- names that are not UTF-8 --------------------------------------------------------------------
def test_file_name_with_a_non_utf8_byte_is_kept_and_shown_escaped(tmp_path):
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    obama = face_crop(data_path("hamilton", "obama.jpg"))
    write_video(cam / f"{ODD}_20260314-100000.mkv", face_frames(obama, 30), fps=10)
    (cam / f"{ODD}-noise.mp4").write_bytes(random.Random(3).randbytes(20_000))  # skipped, name shown too
    out = tmp_path / "o"
    for _attempt in range(2):  # the folder stays usable for every later run
        result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
    escaped = "caf\\xff"
    assert f"{escaped}-noise.mp4: not a readable video" in result.stderr
    assert "0 analysed now" in result.stdout  # the second run resumed: the file was found again
    report = out / "report"
    texts = {
        name: (report / name).read_bytes().decode("utf-8")
        for name in ("identities.json", "faces.csv", "manifest.json", "index.html")
    }
    (identity,) = json.loads(texts["identities.json"])
    assert Path(identity["sightings"][0]["file"]).name == f"{escaped}_20260314-100000.mkv"
    assert f"{escaped}_20260314-100000.mkv" in texts["faces.csv"]
    assert json.loads(texts["manifest.json"])["skipped"][0]["path"].endswith(f"{escaped}-noise.mp4")
    assert f"{escaped}-noise.mp4" in texts["index.html"]


# -- full disk -----------------------------------------------------------------------------------
def test_store_on_a_full_disk_raises_one_clear_error(tmp_path):
    store = Store.open(tmp_path / "vidcluster.db")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {int(pages)}")
    with pytest.raises(DiskFullError, match=r"^disk full writing .*vidcluster\.db$"):
        store.set_meta("big", "x" * 100_000)
    store.close()
    assert DiskFullError.exit_code == 4


def test_disk_full_mid_run_is_one_line_and_the_rerun_resumes(face_clips, tmp_path, monkeypatch):
    out = tmp_path / "o"
    real_open = Store.open.__func__

    def nearly_full(cls, path):  # the store may grow by a few pages only: SQLite's own SQLITE_FULL
        store = real_open(cls, path)
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 8}")
        return store

    monkeypatch.setattr(Store, "open", classmethod(nearly_full))
    args = ["run", str(face_clips), "--out", str(out), "-q", "--workers", "1", "--fps", "1"]
    full = CliRunner().invoke(main, args)
    assert full.exit_code == 4
    line = _one_error_line(full)
    assert line == f"vidcluster: error: disk full writing {out / 'vidcluster.db'}"
    monkeypatch.undo()  # space freed
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "6 files" in again.stdout


def test_disk_full_on_a_real_tiny_file_system(face_clips, tmp_path):
    """OUT on an 8 MiB tmpfs (room for the report and its clips once freed), nearly filled beforehand (needs the right to mount; skipped elsewhere)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = mnt / "filler"
        filler.write_bytes(bytes(shutil.disk_usage(mnt).free - 128 * 1024))
        args = ["run", str(face_clips), "--out", str(mnt / "o"), "-q", "--workers", "1", "--fps", "1"]
        full = _cli(*args)
        assert full.returncode == 4, full.stderr
        assert _one_error_line(full).startswith(f"vidcluster: error: disk full writing {mnt / 'o'}")
        filler.unlink()  # space freed
        again = _cli(*args)
        assert again.returncode == 0, again.stderr
        assert "6 files" in again.stdout
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# -- huge image ----------------------------------------------------------------------------------
def test_huge_png_is_refused_from_its_header(tmp_path):
    big = _big_png(tmp_path / "big.png")
    probe = (
        "import sys\nfrom pathlib import Path\nfrom vidcluster.video.sampler import read_still\n"
        "from vidcluster.errors import VideoOpenError\n"
        "try:\n    read_still(Path(sys.argv[1])); print('read')\n"
        "except VideoOpenError as exc:\n    print(exc)\n"
        # VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's (pytest's) peak across exec
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(big)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reason, maxrss_kib = done.stdout.strip().splitlines()
    assert "megapixel cap" in reason
    assert int(maxrss_kib) < 400 * 1024  # the 20000 x 20000 pixels (1.2 GB as RGB) were never allocated
    (tmp_path / "in").mkdir()
    big.rename(tmp_path / "in" / "big.png")
    _blank_clip(tmp_path / "in" / "ok.mkv")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 0 and "big.png: above the 64-megapixel cap" in result.stderr


# -- the Python API, the window, OUT ------------------------------------------------------------
def test_one_path_string_is_one_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    _blank_clip(Path("in") / "a.mkv")
    _blank_clip(Path("in") / "b.mkv", 6)
    assert analyse("in", "o").n_files == 2  # not the folders 'i' and 'n'
    assert analyse(Path("in"), "o").n_files == 2
    with pytest.raises(InputError, match="nope"):
        analyse("nope", "o")


@pytest.fixture
def timed_clips(tmp_path):
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    for hour in (9, 10, 11):
        _blank_clip(cam / f"cam_20260314-{hour:02d}0000.mkv")
    return tmp_path / "in"


def test_strict_with_a_window_counts_no_outside_file_as_a_warning(timed_clips, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(timed_clips),
            "--out",
            str(tmp_path / "o"),
            "-q",
            "--strict",
            "--since",
            "2026-03-14T09:59Z",
            "--until",
            "2026-03-14T10:01Z",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "3 files" in result.stdout and "2 outside the window" in result.stdout


def test_window_matching_nothing_writes_nothing(timed_clips, tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", str(timed_clips), "--out", str(out), "-q", "--since", "2027-01-01T00:00"])
    assert result.exit_code == 2 and "matches none" in _one_error_line(result)
    assert not out.exists()


def test_existing_out_folder_and_everything_in_it_become_owner_only(timed_clips, tmp_path):
    out = tmp_path / "o"
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    result = CliRunner().invoke(main, ["run", str(timed_clips), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    loose = [str(p) for p in [out, *out.rglob("*")] if p.stat().st_mode & 0o077]
    assert loose == []
    assert (out / "report" / "index.html").exists()


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--since", "14/03/2026 10:00"], "--since (sampler.since)"),
        (["--until", "0001-01-01T00:00+05:00"], "--until (sampler.until)"),
        (["--eps", "nan"], "--eps (identities.eps)"),
        (["--fps", "nan"], "--fps (sampler.fps)"),
        (["--fps", "inf"], "--fps (sampler.fps)"),
        (["--eps", "-inf"], "--eps (identities.eps)"),
        (["--workers", "100000"], "--workers (run.workers)"),
    ],
)
def test_a_bad_flag_is_named_and_nothing_runs(timed_clips, tmp_path, flags, needle):
    config = tmp_path / "c.yaml"
    config.write_text("sampler: {fps: 2}\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", str(timed_clips), "--out", str(out), "-c", str(config), *flags])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith(f"vidcluster: error: {needle}") and str(config) not in line
    assert not out.exists()

"""Hostile footage through the command line: `python -m benchmarks fuzz` (200 clips; --quick 40).

Builds clips of many shapes from a real face photo (several codecs and containers, odd sizes and
pixel formats, timestamps that start late, jump back or repeat, sideways display matrices, two
video streams, concatenated transport streams), damages some of them (cut short, bytes
overwritten, zeroed, garbage appended) and adds files that only pretend to be footage (empty,
text, audio only, cut images). They are analysed in batches by the real CLI in a subprocess,
each batch under a time limit; then `recluster`, `corrections` and `verify` run on each batch's output.

A batch fails when a command exits with a status the README does not list for it, prints a
Python traceback, or runs past its limit. The table gives, per kind of clip, how many ended
done, partial or skipped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from .common import data, save, table
from .videos import write_audio_only, write_streams

CASES = 200
QUICK_CASES = 40
BATCH = 25
BATCH_LIMIT_S = 300
RUN_STATUSES = {0, 3}  # 3: --strict with a partial or skipped file (never asked here; listed for safety)
FACE_PHOTO = ("photos-johns", "John_Salley")

Writer = Callable[[Path, random.Random, np.ndarray], Path]


def _face(rng: random.Random) -> np.ndarray:
    """An RGB face photo from photos-johns (a different one each time)."""
    photos = sorted(p for p in data(*FACE_PHOTO[:1]).rglob("*.jpg"))
    path = rng.choice(photos)
    image = cv2.imread(str(path))
    if image is None:
        raise RuntimeError(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _frames(face: np.ndarray, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """n frames of `size` (w, h): the face drifting across a grey background."""
    w, h = size
    side = max(8, min(w, h) // 2)
    chip = cv2.resize(face, (side, side))
    out = []
    for i in range(n):
        frame = np.full((h, w, 3), 90, np.uint8)
        x = min(w - side, (i * 3) % max(1, w - side + 1))
        y = (h - side) // 2
        frame[y : y + side, x : x + side] = chip
        out.append(frame)
    return out


def _encode(
    path: Path,
    frames: list[np.ndarray],
    codec: str,
    times_s: list[float],
    pix_fmt: str = "yuv420p",
    streams: int = 1,
    rotation_deg: int = 0,
) -> Path:
    """`benchmarks.videos.write_streams` with B-frames left on for H.264 and HEVC, as cameras write them."""
    options = {"preset": "ultrafast"} if codec in ("libx264", "libx265") else {}
    return write_streams(
        path, [frames] * streams, times_s, rotation_deg=rotation_deg, codec=codec, pix_fmt=pix_fmt, options=options
    )


_CODECS = [  # (suffix, codec, pixel format)
    (".mp4", "libx264", "yuv420p"),
    (".mkv", "libx264", "yuv444p"),
    (".mkv", "libx265", "yuv420p10le"),
    (".mov", "mjpeg", "yuvj420p"),
    (".avi", "mpeg4", "yuv420p"),
    (".webm", "libvpx-vp9", "yuv420p"),
    (".ts", "libx264", "yuv420p"),
    (".mkv", "ffv1", "yuv420p"),
    (".mkv", "libsvtav1", "yuv420p"),
]


def _plain(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    suffix, codec, pix = rng.choice(_CODECS)
    w, h = rng.choice([(64, 48), (160, 120), (320, 240), (426, 240), (640, 360)])
    if codec == "libsvtav1":
        w, h = max(w, 64), max(h, 64)
    n = rng.randrange(1, 30)
    return _encode(path.with_suffix(suffix), _frames(face, n, (w, h)), codec, [i / 10 for i in range(n)], pix)


def _late_start(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    start = rng.choice([30.0, 3600.0, 86400.0 * 365 * 10])
    n = 20
    return _encode(
        path.with_suffix(".mkv"), _frames(face, n, (160, 120)), "libx264", [start + i / 10 for i in range(n)]
    )


def _gappy(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    n = 30
    times, t = [], 0.0
    for _ in range(n):
        t += rng.choice([0.1, 0.1, 0.1, 5.0, 60.0])
        times.append(t)
    return _encode(path.with_suffix(".mkv"), _frames(face, n, (160, 120)), "libx264", times)


def _concatenated(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    """Two transport streams byte for byte one after the other, as `cat a.ts b.ts` makes."""
    parts = []
    for k in range(rng.choice([2, 3])):
        part = path.with_name(f"{path.stem}.part{k}.ts")
        n = rng.randrange(10, 25)
        parts.append(_encode(part, _frames(face, n, (160, 120)), "libx264", [i / 10 for i in range(n)]))
    target = path.with_suffix(".ts")
    target.write_bytes(b"".join(p.read_bytes() for p in parts))
    for p in parts:
        p.unlink()
    return target


def _sideways(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    angle = rng.choice([90, 180, 270])
    times = [i / 10 for i in range(15)]  # write_streams stores the frames turned, the matrix turns them back
    return _encode(path.with_suffix(".mp4"), _frames(face, 15, (240, 160)), "libx264", times, rotation_deg=angle)


def _two_streams(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    return _encode(
        path.with_suffix(".mkv"), _frames(face, 15, (160, 120)), "libx264", [i / 10 for i in range(15)], streams=2
    )


def _audio_only(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    return write_audio_only(path.with_suffix(".mp4"))


def _pretender(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    suffix = rng.choice([".mp4", ".mkv", ".avi", ".dav", ".jpg", ".png"])
    body = rng.choice([b"", b"\x00", b"not a video\n" * rng.randrange(1, 500), os.urandom(rng.randrange(1, 20000))])
    target = path.with_suffix(suffix)
    target.write_bytes(body)
    return target


def _image(path: Path, rng: random.Random, face: np.ndarray) -> Path:
    suffix = rng.choice([".jpg", ".png"])
    target = path.with_suffix(suffix)
    cv2.imwrite(str(target), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    return target


KINDS: dict[str, Writer] = {
    "plain": _plain,
    "late-start": _late_start,
    "gappy": _gappy,
    "concatenated": _concatenated,
    "sideways": _sideways,
    "two-streams": _two_streams,
    "audio-only": _audio_only,
    "pretender": _pretender,
    "image": _image,
}
DAMAGE = ("none", "none", "cut", "flip", "zeroed", "garbage-tail")
NAMES = ("clip", "Kamera ä", "cam\u202eevil", "-dash", "spaces  in  name", "日本")


def _damage(target: Path, how: str, rng: random.Random) -> None:
    blob = bytearray(target.read_bytes())
    if how == "none" or len(blob) < 2:
        return
    if how == "cut":
        blob = blob[: rng.randrange(1, len(blob))]
    elif how == "flip":
        for _ in range(rng.randrange(1, 40)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
    elif how == "zeroed":
        start = rng.randrange(len(blob))
        end = min(len(blob), start + rng.randrange(1, 4096))
        blob[start:end] = bytes(end - start)
    elif how == "garbage-tail":
        blob += os.urandom(rng.randrange(1, 8192))
    target.write_bytes(bytes(blob))


def build(folder: Path, n: int, seed: int = 7) -> dict[str, tuple[str, str]]:
    """n hostile files under folder/<batch>/<camera>/; {relative path: (kind, damage)}."""
    rng = random.Random(seed)
    made: dict[str, tuple[str, str]] = {}
    kinds = list(KINDS)
    for k in range(n):
        batch = folder / f"batch{k // BATCH:02d}" / f"cam{k % 4}"
        batch.mkdir(parents=True, exist_ok=True)
        kind = kinds[k % len(kinds)]
        stem = f"{rng.choice(NAMES)}_{k:03d}"
        face = _face(rng)
        try:
            target = KINDS[kind](batch / stem, rng, face)
        except (av.error.FFmpegError, ValueError) as exc:  # a codec this PyAV build lacks: say so, go on
            print(f"  could not make {kind} #{k}: {exc}", flush=True)
            continue
        how = rng.choice(DAMAGE) if kind not in ("pretender",) else "none"
        _damage(target, how, rng)
        made[str(target.relative_to(folder))] = (kind, how)
    return made


def _bytes(text: str | bytes | None) -> bytes:
    return text.encode() if isinstance(text, str) else text or b""


def _cli(args: list[str], limit_s: float) -> tuple[int | None, str, float, float]:
    """(exit status or None on timeout, output, wall s, CPU s of the children)."""
    before = os.times()
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vidcluster", *args],
            capture_output=True,
            text=True,
            timeout=limit_s,
            errors="replace",
        )
        status, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status, output = None, b"".join(_bytes(x) for x in (exc.stdout, exc.stderr)).decode(errors="replace")
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return status, output, time.monotonic() - started, cpu


def _outcomes(out: Path) -> dict[str, str]:
    """{file name: status} from the report's manifest (inputs and skipped files); empty without one."""
    manifest = out / "report" / "manifest.json"
    if not manifest.exists():
        return {}
    record = json.loads(manifest.read_text())
    states = {Path(f["path"]).name: f["status"] for f in record.get("inputs", [])}
    states.update({Path(f["path"]).name: "skipped" for f in record.get("skipped", [])})
    return states


def run(quick: bool = False) -> list[dict]:
    n = QUICK_CASES if quick else CASES
    rows: list[dict] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vcfuzz-") as tmp:
        root = Path(tmp) / "in"
        made = build(root, n)
        config = Path(tmp) / "fuzz.yaml"
        config.write_text("run: {file_time_limit_s: 60}\nsampler: {fps: 2}\nreport: {clips: true}\n")
        outcome: Counter[tuple[str, str, str]] = Counter()
        wall = cpu = 0.0
        for batch in sorted(p for p in root.iterdir() if p.is_dir()):
            out = Path(tmp) / "out" / batch.name
            steps = [
                (["run", str(batch), "--out", str(out), "-c", str(config), "-q", "--workers", "2"], RUN_STATUSES),
                (["recluster", str(out)], {0}),
                (["corrections", str(out)], {0}),
                (["verify", str(out)], {0}),  # the output just written agrees with its manifest
            ]
            for args, allowed in steps:
                status, output, w, c = _cli(args, BATCH_LIMIT_S)
                wall, cpu = wall + w, cpu + c
                problem = None
                if status is None:
                    problem = f"ran past {BATCH_LIMIT_S} s"
                elif "Traceback" in output:
                    problem = "printed a traceback"
                elif status not in allowed:
                    problem = f"exit {status}"
                if problem:
                    last = output.strip().splitlines()[-1:] or [""]
                    failures.append(f"{batch.name} {args[0]}: {problem}: {last[0][:300]}")
                    print(f"  FAIL {failures[-1]}", flush=True)
                    break
            states = _outcomes(out)
            for rel, (kind, how) in made.items():
                if rel.startswith(batch.name + os.sep):
                    outcome[(kind, how, states.get(Path(rel).name, "not listed"))] += 1
            shutil.rmtree(out, ignore_errors=True)
            print(f"  {batch.name}: done ({wall:.0f} s wall, {cpu:.0f} CPU s so far)", flush=True)
    for (kind, how, state), count in sorted(outcome.items()):
        rows.append({"kind": kind, "damage": how, "status": state, "files": count})
    rows.append(
        {"kind": "ALL", "damage": f"{len(made)} files", "status": f"{len(failures)} failures", "files": len(made)}
    )
    print(f"fuzz: {len(made)} files, {wall:.1f} s wall, {cpu:.1f} CPU s; failures: {len(failures)}")
    for f in failures:
        print(f"  {f}")
    return rows


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(table("Hostile clips through the CLI (files per kind, damage and outcome)", rows))
    save("fuzz", rows)
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)

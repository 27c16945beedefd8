"""Find the footage: walk the inputs, name each file's camera, resolve its start time.

Start time order: camera config (fixed start), file-name pattern, container creation_time,
file modification time (flagged unreliable), unknown. The camera's clock correction is
added to whichever was found. Every file keeps the name of the source its time came from.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import av

from ..config import CameraConfig, SourcesConfig, parse_instant
from ..errors import ConfigError, InputError, VideoOpenError
from ..types import Footage
from .sampler import open_video, quarter_turns
from .timeline import Timing, declared_span_s, scan_timing, timing_note

VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".mkv",
        ".avi",
        ".mov",
        ".ts",
        ".m4v",
        ".dav",
        ".mts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".webm",
        ".3gp",
        ".h264",
        ".264",
        ".asf",
        ".vob",
    ]
)
IMAGE_EXTENSIONS = frozenset([".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"])
# Files that are certainly not footage: never probed, never reported.
IGNORED_EXTENSIONS = frozenset(
    [
        ".txt",
        ".csv",
        ".json",
        ".md",
        ".yaml",
        ".yml",
        ".xml",
        ".html",
        ".htm",
        ".log",
        ".ini",
        ".db",
        ".sqlite",
        ".pdf",
        ".py",
        ".sh",
        ".zip",
        ".gz",
        ".tar",
        ".exe",
    ]
)

_STRFTIME_FIELDS = {
    "%Y": r"(?P<Y>\d{4})",
    "%m": r"(?P<m>\d{2})",
    "%d": r"(?P<d>\d{2})",
    "%H": r"(?P<H>\d{2})",
    "%M": r"(?P<M>\d{2})",
    "%S": r"(?P<S>\d{2})",
    "%f": r"(?P<f>\d{1,6})",
    "%y": r"(?P<y>\d{2})",
    "%%": "%",
}
# Built-in patterns tried when the camera has none: NAME_YYYYMMDD-HHMMSS, YYYYMMDD_HHMMSS, ISO-ish.
_BUILTIN_PATTERNS = [
    re.compile(r"(?<!\d)(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})[-_T ]?(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})(?!\d)"),
    re.compile(
        r"(?<!\d)(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[-_T ](?P<H>\d{2})[-:.](?P<M>\d{2})[-:.](?P<S>\d{2})(?!\d)"
    ),
]


# The store file of a case's OUT folder (case.outdir.STORE_NAME): a folder holding one is a case's
# output (its face crops, snapshots and clips), never footage.
CASE_STORE_NAME = "vidcluster.db"


@dataclass(frozen=True)
class Candidate:
    """A file found under an input, before probing. `shown`: its path as the report shows it, from
    the folder that holds the INPUT given ('footage/siteA/CH01/a.mp4'); '' = the full path."""

    path: Path
    camera: CameraConfig
    kind: str  # video | image | unknown
    shown: str = ""


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str
    shown: str = ""  # the path as the report shows it ('' = the full path)


def pattern_to_regex(pattern: str) -> re.Pattern[str]:
    """Turn a strftime-style file-name pattern into a regex searched in the file name.

    >>> bool(pattern_to_regex("cam_%Y%m%d-%H%M%S").search("cam_20260314-091502.mkv"))
    True
    """
    out, i = [], 0
    while i < len(pattern):
        token = pattern[i : i + 2]
        if token in _STRFTIME_FIELDS:
            out.append(_STRFTIME_FIELDS[token])
            i += 2
        elif pattern[i] == "*":
            out.append(".*?")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def time_from_name(name: str, tz: str, pattern: str = "") -> datetime | None:
    """Start time (UTC) read from a file name in zone `tz`, or None when it carries none.

    >>> time_from_name("entrance_20260314-091502.mkv", "Europe/Berlin").isoformat()
    '2026-03-14T08:15:02+00:00'
    """
    regexes = [pattern_to_regex(pattern)] if pattern else _BUILTIN_PATTERNS
    for regex in regexes:
        match = regex.search(name)
        if not match:
            continue
        g = match.groupdict()
        year = int(g["Y"]) if g.get("Y") else 2000 + int(g.get("y") or 0)
        try:
            local = datetime(
                year,
                int(g.get("m") or 1),
                int(g.get("d") or 1),
                int(g.get("H") or 0),
                int(g.get("M") or 0),
                int(g.get("S") or 0),
                int((g.get("f") or "0").ljust(6, "0")),
            )
        except ValueError:
            continue
        return local.replace(tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)
    return None


def _matches(path: Path, root: Path, globs: Iterable[str]) -> bool:
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
    return any(
        fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.as_posix(), g) or fnmatch.fnmatch(path.name, g) for g in globs
    )


def camera_for(path: Path, root: Path, cfg: SourcesConfig, names: Mapping[Path, str] | None = None) -> CameraConfig:
    """The configured camera whose globs (and name pattern) match, else one named after the folder.

    `names`: the camera name of each folder (absolute) where folder names repeat (see `folder_names`);
    a folder not in it is named by its last name.
    """
    for cam in cfg.cameras:
        if cam.paths and _matches(path, root, cam.paths):
            if cam.filename_pattern and not pattern_to_regex(cam.filename_pattern).search(path.name):
                continue  # cameras sharing a folder are told apart by their pattern
            return cam
    folder = Path(os.path.abspath(path)).parent
    for cam in cfg.cameras:  # a camera listed by id only claims the folder of that name (or path ending)
        if not cam.paths and _ends_with(folder, cam.id):
            return cam
    name = (names or {}).get(folder) or folder.name
    return CameraConfig(id=name or "camera", timezone=cfg.timezone)


def _ends_with(folder: Path, camera_id: str) -> bool:
    """True when the folder's path ends with the folders of `camera_id` ('CH01', 'siteA/CH01')."""
    want = PurePosixPath(camera_id).parts
    return bool(want) and folder.parts[-len(want) :] == want


def folder_names(folders: Iterable[Path]) -> dict[Path, str]:
    """A camera name for each folder: its last name, or where two folders share it, as many of its
    parent folders as it takes to tell them apart (posix, '/' between).

    >>> names = folder_names([Path("/in/siteA/CH01"), Path("/in/siteB/CH01"), Path("/in/lobby")])
    >>> [names[Path(p)] for p in ("/in/siteA/CH01", "/in/siteB/CH01", "/in/lobby")]
    ['siteA/CH01', 'siteB/CH01', 'lobby']
    """
    parts = {f: f.parts[1:] if f.is_absolute() else f.parts for f in set(folders)}
    depth = dict.fromkeys(parts, 1)
    while True:
        by_name: dict[tuple[str, ...], list[Path]] = {}
        for f, p in parts.items():
            by_name.setdefault(p[-depth[f] :], []).append(f)
        clashes = [fs for fs in by_name.values() if len(fs) > 1]
        grow = [f for fs in clashes for f in fs if depth[f] < len(parts[f])]
        if not grow:
            break
        for f in grow:
            depth[f] += 1
    return {f: display_path("/".join(p[-depth[f] :])) for f, p in parts.items()}


def display_path(path: str | os.PathLike) -> str:
    """A path as text that any UTF-8 writer accepts: unchanged when it is valid UTF-8, else each
    byte that is not written as \\xNN (file names on Linux are bytes; Python keeps the odd ones
    as lone surrogates, which SQLite, JSON and HTML writers refuse).

    >>> display_path(os.fsdecode(b"/in/cam/caf\\xe9.mkv"))
    '/in/cam/caf\\\\xe9.mkv'
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


_FILE_TYPES = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(mode: int) -> str:
    """Why a file of this st_mode cannot be footage ('' for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    kind = next((name for test, name in _FILE_TYPES if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _stat_problem(path: Path, exc: OSError) -> str:
    """The skip reason for a file that cannot even be stat'ed (following links)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink():
        return "broken symbolic link"
    return f"cannot read file ({exc.strerror or exc})"


def _kind(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return "unknown"


def _case_output(folder: Path, names: Iterable[str], out: str | None) -> str:
    """Why `folder` is a case's output and never footage ('' when it is not)."""
    if out is not None and os.path.realpath(folder) == out:
        return "the output folder of this run (--out)"
    if CASE_STORE_NAME in names:
        return f"holds a {CASE_STORE_NAME}: another case's output folder"
    return ""


def _walk(root: Path, out: str | None, left_out: list[Skipped]) -> list[Path]:
    """Every entry under `root` that is not a folder, in a stable order; hidden entries and case
    output folders (OUT, or any folder holding a store) are not entered; the latter go to `left_out`."""
    found: list[Path] = []
    for here, dirs, files in os.walk(root):  # symbolic links to folders are not followed
        folder = Path(here)
        if why := _case_output(folder, files, out):
            left_out.append(Skipped(Path(os.path.abspath(folder)), why, shown_path(folder, root)))
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [folder / f for f in files if not f.startswith(".")]
    return sorted(found)


def shown_path(path: Path, root: Path) -> str:
    """How the report shows `path`, found under the input `root` (a folder, or the file itself): from
    the folder that holds the input, so that no folder of the examiner's machine above it shows.

    >>> shown_path(Path("/home/ex/case/footage/siteA/CH01/a.mp4"), Path("/home/ex/case/footage"))
    'footage/siteA/CH01/a.mp4'
    >>> shown_path(Path("/home/ex/clip.mp4"), Path("/home/ex/clip.mp4"))
    'clip.mp4'
    """
    top = Path(os.path.abspath(root))
    full = Path(os.path.abspath(path))
    if full == top or not full.is_relative_to(top):
        return display_path(full.name)
    return display_path(PurePosixPath(top.name, *full.relative_to(top).parts).as_posix())


def discover(
    inputs: Iterable[str | Path],
    cfg: SourcesConfig,
    ignored: list[Path] | None = None,
    *,
    out: str | Path | None = None,
    left_out: list[Skipped] | None = None,
) -> tuple[list[Candidate], list[Skipped]]:
    """Walk the inputs (files or folders, recursively) in a stable order.

    Files that are plainly not footage (by extension: .txt, .csv, ...) go to `ignored`;
    files that should be footage but cannot be used go to the skipped list with a reason.
    The folder `out` (this run's OUT) and any folder holding a store (another case's OUT) are not
    walked: a case's own crops and clips are never footage; they go to `left_out` with the reason.
    Cameras are named after their folder, with its parents where folder names repeat
    (`folder_names`); ConfigError when a camera the config lists by id alone matches two folders.
    """
    skipped: list[Skipped] = []
    ignored = ignored if ignored is not None else []
    left_out = left_out if left_out is not None else []
    out_real = os.path.realpath(out) if out is not None else None
    seen: set[Path] = set()
    usable: list[tuple[Path, Path, str]] = []  # (path, the folder its camera globs are matched from, shown)
    for raw in inputs:
        root = Path(raw)
        if not root.exists() and not root.is_symlink():
            raise InputError(f"{raw}: no such file or folder")
        if root.is_dir():
            paths = _walk(root, out_real, left_out)
            base = root
        else:  # a file, a link, or something that is no file at all (a named pipe): judged below
            paths = [root]
            base = root.parent
        for path in paths:
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                problem = _stat_problem(path, exc)
            else:
                if stat.S_ISDIR(mode):
                    continue
                problem = _not_regular(mode)  # never opened: reading a named pipe would wait forever
            if path.suffix.lower() in IGNORED_EXTENSIONS:
                ignored.append(Path(os.path.abspath(path)))
                continue
            shown = shown_path(path, root)
            if problem:
                skipped.append(Skipped(Path(os.path.abspath(path)), problem, shown))
                continue
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            usable.append((path, base, shown))
    names = folder_names(Path(os.path.abspath(p)).parent for p, _, _ in usable)
    found = [
        Candidate(Path(os.path.abspath(p)), camera_for(p, base, cfg, names), _kind(p), shown)
        for p, base, shown in usable
    ]
    _check_claims(found, cfg, names)
    return found, skipped


def _check_claims(found: list[Candidate], cfg: SourcesConfig, names: Mapping[Path, str]) -> None:
    """ConfigError when a camera listed by id alone claimed files of more than one folder."""
    for i, cam in enumerate(cfg.cameras):
        if cam.paths:
            continue
        folders = sorted({c.path.parent for c in found if c.camera is cam})
        if len(folders) > 1:
            shown = ", ".join(names.get(f, f.name) for f in folders)
            raise ConfigError(
                f"sources.cameras[{i}].id: camera {cam.id!r} matches {len(folders)} folders ({shown}); "
                f"give it paths, or an id with its parent folders (e.g. {names.get(folders[0], cam.id)!r})"
            )


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a regular file; VideoOpenError for anything else (never blocks on a named pipe)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if problem := _not_regular(os.fstat(fd).st_mode):
            raise VideoOpenError(problem)
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Probe:
    """What the container and its packets say before any decoding, and the first frame's display
    rotation. `duration_s`: the span the packets cover (the stated duration only where they could
    not be read to the end)."""

    duration_s: float | None
    creation_utc: datetime | None
    rotation_deg: int = 0  # counter-clockwise turn that shows the video upright: 0, 90, 180 or 270
    video_streams: int = 1  # video streams that are footage (cover pictures not counted)
    timing: Timing = field(default_factory=lambda: Timing(None))
    note: str = ""  # timeline.timing_note


PROBE_PACKETS = 300  # packets decoded at most to find the first frame's rotation


def _first_frame_rotation(container, stream) -> int:
    """The display rotation of the stream's first decodable frame, in degrees (0 when none decodes
    within PROBE_PACKETS packets: the sampler still turns every frame by its own matrix)."""
    try:
        for n, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return 90 * quarter_turns(frame)
            if n >= PROBE_PACKETS:
                break
    except (av.FFmpegError, EOFError, ValueError):
        pass
    return 0


def _footage_streams(container) -> int:
    return sum(1 for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic)


def probe_video(path: Path) -> Probe:
    """Open the container and read the stated duration, creation_time, the number of video streams
    and the display rotation, then scan the packets' timestamps from the start in a second opening
    (timeline.scan_timing); raises VideoOpenError."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        declared = None
        if stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            declared = container.duration / 1_000_000
        first_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        created = None
        text = (container.metadata or {}).get("creation_time") or (stream.metadata or {}).get("creation_time")
        if text:
            try:
                created = parse_instant(text, "UTC", "creation_time")
            except Exception:  # a malformed tag is as good as none
                created = None
        n_streams = _footage_streams(container)
        rotation = _first_frame_rotation(container, stream)
    with open_video(path) as container:  # the rotation read a few packets: scan from the start
        timing = scan_timing(container, container.streams.video[0])
    duration = timing.span_s
    if duration is None and declared is not None:
        duration = declared_span_s(declared, first_s)
    return Probe(duration, created, rotation, max(1, n_streams), timing, timing_note(timing, declared, first_s))


def resolve_start(path: Path, camera: CameraConfig, probe: Probe, use_mtime: bool) -> tuple[datetime | None, str]:
    """(start time UTC or None, its source) in the documented order, clock correction applied."""
    start: datetime | None = None
    source = "none"
    if camera.start_time:
        start, source = parse_instant(camera.start_time, camera.timezone, f"camera {camera.id}: start_time"), "config"
    elif (named := time_from_name(path.name, camera.timezone, camera.filename_pattern)) is not None:
        start, source = named, "filename"
    elif probe.creation_utc is not None:
        start, source = probe.creation_utc, "metadata"
    elif use_mtime:
        start, source = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc), "mtime"
    if start is not None and camera.clock_offset_s:
        start += timedelta(seconds=camera.clock_offset_s)
    return start, source


def describe(candidate: Candidate, cfg: SourcesConfig) -> Footage:
    """Hash and probe one file into a Footage row; raises VideoOpenError for unreadable media."""
    path = candidate.path
    try:
        size = path.stat().st_size
        digest = sha256_of(path)
    except OSError as exc:
        raise VideoOpenError(f"cannot read file ({exc.strerror or exc})") from None
    kind = candidate.kind
    if kind == "image":
        probe = Probe(0.0, None)
    else:
        probe = probe_video(path)  # unknown extensions become video if FFmpeg opens them
        kind = "video"
    start, source = resolve_start(path, candidate.camera, probe, cfg.use_mtime)
    return Footage(
        path=path,
        camera=candidate.camera.id,
        kind=kind,
        size_bytes=size,
        sha256=digest,
        start_utc=start,
        start_source=source,
        duration_s=probe.duration_s,
        timezone=candidate.camera.timezone,
        shown=candidate.shown,
        rotation_deg=probe.rotation_deg,
        video_streams=probe.video_streams,
        resets_s=probe.timing.resets_s,
        seekable=probe.timing.seekable,
        timing_note=probe.note,
    )


def describe_all(
    candidates: list[Candidate], cfg: SourcesConfig, workers: int = 4, progress: Callable[[int], None] | None = None
) -> tuple[list[Footage], list[Skipped]]:
    """Describe many files in threads (hashing and probing release the GIL)."""

    def one(c: Candidate) -> Footage | Skipped:
        try:
            return describe(c, cfg)
        except VideoOpenError as exc:
            return Skipped(c.path, str(exc), c.shown)

    footage: list[Footage] = []
    skipped: list[Skipped] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result in pool.map(one, candidates):
            if isinstance(result, Footage):
                footage.append(result)
            else:
                skipped.append(result)
            if progress:
                progress(1)
    return footage, skipped

"""Planning a run before anything is decoded: which files lie in the time window, the resume key
that says whether a file is finished (`params_key`), and each file's work units.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..case.records import FileInfo
from ..case.store import Store
from ..config import Config, parse_instant
from ..errors import WindowError
from ..models.base import FaceModels
from ..types import Footage
from ..video.sources import Candidate, Skipped, display_path
from .segments import Segment, plan_segments, segment_key


@dataclass(frozen=True)
class Job:
    """One file to analyse, with the part of it inside the window (offsets in seconds)."""

    footage_id: int
    footage: Footage
    start_s: float | None = None
    end_s: float | None = None


# -- window ---------------------------------------------------------------------------------
def window_offsets(footage: Footage, since: str, until: str, tz: str) -> tuple[float | None, float | None] | None:
    """Offsets (start_s, end_s) of the window inside one file; None when the file lies outside it.

    `since`/`until` without an offset are read in the camera's zone `tz`.
    """
    if not since and not until:
        return (None, None)
    if footage.start_utc is None:
        return None
    lo = (parse_instant(since, tz, "since") - footage.start_utc).total_seconds() if since else None
    hi = (parse_instant(until, tz, "until") - footage.start_utc).total_seconds() if until else None
    duration = footage.duration_s or 0.0
    if hi is not None and hi < 0:
        return None
    if lo is not None and lo > duration:
        return None
    return (lo if lo is not None and lo > 0 else None, hi if hi is not None and hi < duration else None)


def params_key(cfg: Config, job: Job, models: FaceModels) -> str:
    """Changes whenever a setting that shapes one file's faces changes (then it is redone).

    The detector is the one actually used ('hog', 'cnn', ...), never 'auto': the same config on
    a machine with a GPU finds other faces; the encoder counts with its version. Where the models
    run (CPU or GPU, batch sizes) does not change what they find.
    """
    faces = {k: v for k, v in cfg.faces.__dict__.items() if k not in ("device", "gpu_batch_size")}
    data = {
        "fps": cfg.sampler.fps,
        "tracks": cfg.tracks.__dict__,
        "thumb": cfg.report.thumb_px,
        "faces": {
            **faces,
            "detector": models.detector.name,
            "encoder": f"{models.encoder.name}@{models.encoder.spec.version}",
        },
        "window": [job.start_s, job.end_s],
    }
    if job.footage.rotation_deg:  # frames turned upright: other faces (only rotated files change key)
        data["rotation"] = job.footage.rotation_deg
    if job.footage.video_streams > 1:  # said to be partly read: an older store redoes such a file
        data["video_streams"] = job.footage.video_streams
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- units ----------------------------------------------------------------------------------
@dataclass
class FilePlan:
    """One file's units: those still to run, and those a killed run already staged in the store."""

    job: Job
    key: str  # the file's resume key (params_key)
    segments: list[Segment]
    todo: list[Segment]

    def unit_key(self, segment: Segment) -> str:
        return segment_key(self.key, self.job.footage, segment)


def plan_file(store: Store, job: Job, key: str, cfg: Config) -> FilePlan:
    segments = plan_segments(job.footage_id, job.footage, job.start_s, job.end_s, cfg)
    plan = FilePlan(job, key, segments, [])
    staged = store.staged_segments(job.footage_id) if len(segments) > 1 else {}
    plan.todo = [s for s in segments if staged.get(s.index) != plan.unit_key(s)]
    return plan


MIN_SPLIT_S = 20.0  # a file is cut finer than run.segment_s to feed idle workers, never below this


def job_span_s(job: Job) -> float:
    """Seconds of video one job covers (a still or a file of unknown length: 0)."""
    hi = job.end_s if job.end_s is not None else (job.footage.duration_s or 0.0)
    return max(0.0, hi - (job.start_s or 0.0))


def unit_length_s(cfg: Config, jobs: Sequence[Job], workers: int) -> float:
    """Segment length for this run: `run.segment_s`, or shorter when the run's video split that
    way would leave workers idle (one 2-minute file on 8 cores), down to MIN_SPLIT_S.

    Taken over every job of the run, finished or not, so that a resumed run cuts as the first did.

    >>> cfg = Config()
    >>> jobs = lambda *d: [Job(i, Footage(Path("f"), "c", "video", 0, "", duration_s=s)) for i, s in enumerate(d)]
    >>> unit_length_s(cfg, jobs(63.0), 2), unit_length_s(cfg, jobs(63.0), 8), unit_length_s(cfg, jobs(600.0, 30.0), 4)
    (31.5, 20.0, 60.0)
    """
    total = sum(job_span_s(j) for j in jobs)
    shortest = min(cfg.run.segment_s, MIN_SPLIT_S)
    return max(shortest, min(cfg.run.segment_s, total / max(1, workers)))


# -- which files to analyse -----------------------------------------------------------------
OUTSIDE_WINDOW = "outside the time window"
Plan = list[tuple[Footage, "tuple[float | None, float | None] | str"]]


def window_plan(footage: list[Footage], cams: dict[Path, Candidate], cfg: Config) -> Plan:
    """Each file with its offsets inside the window, or the reason it is not analysed.

    Raises WindowError when a window is set and no file lies in it (before anything is written).
    """
    since, until = cfg.sampler.since, cfg.sampler.until
    plan: Plan = []
    for f in footage:
        offsets: tuple[float | None, float | None] | str | None = window_offsets(
            f, since, until, cams[f.path].camera.timezone
        )
        if offsets is None:
            offsets = (
                "start time unknown: cannot place it in the time window" if f.start_utc is None else OUTSIDE_WINDOW
            )
        plan.append((f, offsets))
    if (since or until) and all(isinstance(o, str) for _, o in plan):
        raise WindowError(f"the window {since or '...'} – {until or '...'} matches none of the {len(footage)} files")
    return plan


def stored_footage(f: Footage) -> Footage:
    """The row the store keeps: the path as text any UTF-8 writer takes (see sources.display_path)."""
    text = display_path(f.path)
    return f if text == str(f.path) else replace(f, path=Path(text))


def content_key(f: Footage | FileInfo) -> str:
    """What makes two files the same footage: their content (SHA-256)."""
    return f.sha256


@dataclass(frozen=True)
class Original:
    """The file whose analysis stands for every file of its content: full path and as shown."""

    path: str
    shown: str


def originals(plan: Plan, analysed: Mapping[str, Original] | None = None) -> dict[Path, Original]:
    """{path of a duplicate: the file of the same content analysed in its place}.

    `analysed`: {content key: file} of files the store already holds results of; such a file stays
    the one analysed (its sightings, and the corrections made on them, are kept), also when it is
    not among this run's inputs. Otherwise, of the files with one content, the first in the walk's
    order that lies in the window is analysed (the first of all when none does).
    """
    analysed = analysed or {}
    groups: dict[str, list[tuple[Footage, bool]]] = {}
    for f, offsets in plan:
        groups.setdefault(content_key(f), []).append((f, not isinstance(offsets, str)))
    out: dict[Path, Original] = {}
    for key, members in groups.items():
        done = analysed.get(key)
        if done is not None:
            keep = next((f for f, _ in members if display_path(f.path) == done.path), None)
            first = done
        elif len(members) > 1:
            keep = next((f for f, in_window in members if in_window), members[0][0])
            first = Original(display_path(keep.path), keep.shown or display_path(keep.path))
        else:
            continue
        out.update({f.path: first for f, _ in members if f is not keep})
    return out


def analysed_files(store: Store) -> dict[str, Original]:
    """{content key: the file} of each content the store holds results of (the first such file)."""
    out: dict[str, Original] = {}
    for f in sorted(store.footage(), key=lambda f: f.id):
        if f.status in ("done", "partial"):
            out.setdefault(content_key(f), Original(f.path, f.name))
    return out


def duplicate_reason(original: Original) -> str:
    return f"same content (SHA-256) as {original.shown}: analysed once, there"


def jobs_for(
    store: Store,
    plan: Plan,
    cfg: Config,
    skipped: list[Skipped],
    outside: list[str],
    models: FaceModels,
    duplicates: list[dict[str, str]] | None = None,
) -> list[Job]:
    """The files to analyse; the others are marked in the store: outside the window, skipped, or
    (appended to `duplicates`: path, shown, of, of_shown) a copy of another file's content."""
    duplicates = duplicates if duplicates is not None else []
    ids = []
    for f, _ in plan:
        ids.append(store.upsert_footage(stored_footage(f)))
        store.set_footage_timezone(ids[-1], f.timezone)
    # after registering: a stored file whose content changed is pending, so it stands for no content
    copies = originals(plan, analysed_files(store))
    jobs = []
    for (f, offsets), fid in zip(plan, ids, strict=True):
        if (first := copies.get(f.path)) is not None:
            store.mark_skipped(fid, duplicate_reason(first), params_key(cfg, Job(fid, f), models), "duplicate")
            duplicates.append(
                {
                    "path": display_path(f.path),
                    "shown": f.shown or display_path(f.path),
                    "of": first.path,
                    "of_shown": first.shown,
                }
            )
            continue
        if isinstance(offsets, str):
            if offsets == OUTSIDE_WINDOW:  # asked for by the window: no warning
                outside.append(display_path(f.path))
            else:
                skipped.append(Skipped(f.path, offsets, f.shown))
            store.mark_skipped(fid, offsets, params_key(cfg, Job(fid, f), models))
            continue
        jobs.append(Job(fid, f, *offsets))
    return jobs

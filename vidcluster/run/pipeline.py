"""`analyse`: sources -> sampler -> faces -> tracks -> identities -> report, resumable.

The unit of work is a (file, time segment) (segments.py); an executor (executors.py) runs
the units in worker processes, batched in this process for the GPU, or on a Ray cluster.
The main process is the only writer of the store: it commits each finished unit, and joins
a long file's units into the file's result when the last one is in.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..analysis.feed import FeedResult
from ..analysis.grouping import assign_identities
from ..case.outdir import run_lock, store_path
from ..case.records import FileInfo
from ..case.results import FileResult
from ..case.store import Store, is_disk_full
from ..config import Config, parse_instant
from ..errors import DiskFullError, InputError, WindowError
from ..models.base import FaceModels
from ..models.registry import make_models
from ..report import ReportError, write_report
from ..types import Footage
from ..version import __version__
from ..video.sources import Candidate, Skipped, describe_all, discover, display_path
from .executors import BatchedExecutor, Executor, InlineExecutor, LocalExecutor, RayEngine
from .segments import Segment, UnitResult, join_segments, pack_result, plan_segments, segment_key, unpack_result

# progress(stage, done, total): the CLI draws it; the library never prints.
Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class Job:
    """One file to analyse, with the part of it inside the window (offsets in seconds)."""

    footage_id: int
    footage: Footage
    start_s: float | None = None
    end_s: float | None = None


@dataclass
class Summary:
    """What a run found; `identities` is the content of identities.json."""

    identities: list[dict]
    n_faces: int
    n_files: int
    n_cameras: int
    n_analysed: int  # files decoded in this run (the others were finished by an earlier run)
    wall_s: float
    report: Path
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}: unusable files
    partial: list[dict] = field(default_factory=list)  # {"path", "reason"}: files cut short by a decode error
    ignored: list[str] = field(default_factory=list)  # files that are not footage (.txt, .csv, ...)
    n_units: int = 0  # work units (file segments) run now; a resumed long file runs only its unfinished ones
    frames_decoded: int = 0  # frames decoded in this run
    outside_window: list[str] = field(default_factory=list)  # files wholly outside --since/--until: not warnings

    @property
    def n_warnings(self) -> int:
        return len(self.skipped) + len(self.partial)

    def line(self) -> str:
        return (
            f"{len(self.identities)} identities, {self.n_faces} faces, {self.n_files} files, "
            f"{self.n_cameras} camera{'' if self.n_cameras == 1 else 's'} ({self.n_analysed} analysed now, {len(self.skipped)} skipped, "
            f"{len(self.partial)} partial"
            + (f", {len(self.outside_window)} outside the window" if self.outside_window else "")
            + f"), {self.wall_s:.1f} s -> {self.report}"
        )


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
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- units and progress -------------------------------------------------------------------------
class VideoClock:
    """Seconds of video analysed so far, across units running in parallel, for the progress bar."""

    def __init__(self, units: Sequence[Segment], progress: Progress):
        self.progress = progress
        self.total = sum(u.span_s for u in units)
        self.done = 0.0

    def finished(self, unit: Segment) -> None:
        self.done += unit.span_s
        self.progress("video", round(self.done), round(self.total))


@dataclass
class FilePlan:
    """One file's units: those still to run, and those a killed run already staged in the store."""

    job: Job
    key: str  # the file's resume key (params_key)
    segments: list[Segment]
    todo: list[Segment]

    def unit_key(self, segment: Segment) -> str:
        return segment_key(self.key, self.job.footage, segment)


def _plan(store: Store, job: Job, key: str, cfg: Config) -> FilePlan:
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


def make_executor(cfg: Config, models: FaceModels, workers: int, engine: RayEngine | None) -> Executor:
    """The executor for this run: Ray when an engine is given, else batched (GPU), else processes."""
    if engine is not None:
        return engine.executor(cfg, models)
    if models.detector.batch_size > 1:
        return BatchedExecutor(cfg, models)
    if workers <= 1:
        return InlineExecutor(cfg, models)
    return LocalExecutor(cfg, models, workers)


def check_encoder(store: Store, models: FaceModels) -> None:
    """Refuse to add one encoder's vectors to a case whose descriptors another encoder made."""
    theirs = store.encoder_spaces() - {models.encoder.spec.space}
    if theirs:
        raise InputError(
            f"--encoder: this OUT holds descriptors of {', '.join(sorted(theirs))}, not "
            f"{models.encoder.spec.space} ({models.encoder.name}); they cannot be compared: use a new --out"
        )


# -- the run --------------------------------------------------------------------------------
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


def _stored(f: Footage) -> Footage:
    """The row the store keeps: the path as text any UTF-8 writer takes (see sources.display_path)."""
    text = display_path(f.path)
    return f if text == str(f.path) else replace(f, path=Path(text))


def _jobs_for(
    store: Store,
    plan: Plan,
    cfg: Config,
    skipped: list[Skipped],
    outside: list[str],
    models: FaceModels,
) -> list[Job]:
    jobs = []
    for f, offsets in plan:
        fid = store.upsert_footage(_stored(f))
        store.set_footage_timezone(fid, f.timezone)
        if isinstance(offsets, str):
            if offsets == OUTSIDE_WINDOW:  # asked for by the window: no warning
                outside.append(display_path(f.path))
            else:
                skipped.append(Skipped(f.path, offsets))
            store.mark_skipped(fid, offsets, params_key(cfg, Job(fid, f), models))
            continue
        jobs.append(Job(fid, f, *offsets))
    return jobs


def analyse(
    inputs: Iterable[str | Path], out: str | Path, cfg: Config | None = None, progress: Progress | None = None
) -> Summary:
    """Analyse footage under `inputs` into `out` (store + report); resumes an earlier run there."""
    cfg = cfg or Config()
    progress = progress or _quiet
    if isinstance(inputs, (str, os.PathLike)):  # one path, not a sequence of characters
        inputs = [inputs]
    paths = [os.fspath(p) for p in inputs]
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    out = Path(out)
    ignored: list[Path] = []
    candidates, skipped = discover(paths, cfg.sources, ignored)  # before the lock: bad input writes nothing
    if not candidates:
        raise InputError(f"no video or image files under {', '.join(map(display_path, paths))}")
    workers = cfg.run.n_workers
    progress("probe", 0, len(candidates))
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress("probe", done, len(candidates))

    # probing reads the inputs only: a window that matches nothing is refused before OUT is touched
    footage, unreadable = describe_all(candidates, cfg.sources, workers=max(2, workers), progress=tick)
    skipped += unreadable
    plan = window_plan(footage, {c.path: c for c in candidates}, cfg)
    found = (plan, skipped, ignored)
    if cfg.run.engine == "ray":
        # RayEngine enters first: a cluster that cannot be reached is an error before the lock is taken
        with RayEngine(cfg.run.address, cfg.run.workers) as engine, run_lock(out):
            return _analyse_locked(paths, out, cfg, progress, found, started, t0, engine)
    with run_lock(out):
        return _analyse_locked(paths, out, cfg, progress, found, started, t0)


def _analyse_locked(
    inputs: list[str],
    out: Path,
    cfg: Config,
    progress: Progress,
    found: tuple[Plan, list[Skipped], list[Path]],
    started: datetime,
    t0: float,
    engine: RayEngine | None = None,
) -> Summary:
    plan, skipped, ignored = found
    footage = [f for f, _ in plan]
    outside: list[str] = []
    store = Store.open(store_path(out))
    try:
        models = engine.models(cfg) if engine is not None else make_models(cfg.faces)
        check_encoder(store, models)
        plans, run, n_units = _analyse_files(store, plan, cfg, models, skipped, outside, progress, engine)
        in_run = {display_path(f.path) for f in footage}
        reported = {display_path(s.path) for s in skipped} | set(outside)
        files = [f for f in store.footage() if f.path in in_run]
        skipped += [Skipped(Path(f.path), f.reason) for f in files if f.status == "skipped" and f.path not in reported]
        progress("identities", 0, 1)
        assign_identities(store, cfg)
        progress("identities", 1, 1)
        run_info = _run_record(inputs, cfg, models, started, skipped, files, ignored, outside)
        store.set_meta("last_run", run_info)
        index = _report(store, out, run_info, cfg, progress)
        identities = json.loads((index.parent / "identities.json").read_text())
        return Summary(
            identities=identities,
            n_faces=len(store.faces()),
            n_files=len(footage),
            n_cameras=len({f.camera for f in footage}),
            n_analysed=len(plans),
            wall_s=time.monotonic() - t0,
            report=index,
            skipped=run_info["skipped"],
            partial=run_info["partial"],
            ignored=run_info["ignored"],
            n_units=n_units,
            frames_decoded=run.frames_decoded,
            outside_window=outside,
        )
    finally:
        store.close()


def _analyse_files(
    store: Store,
    plan: Plan,
    cfg: Config,
    models: FaceModels,
    skipped: list[Skipped],
    outside: list[str],
    progress: Progress,
    engine: RayEngine | None,
) -> tuple[list[FilePlan], _UnitRun, int]:
    """Analyse every file not finished with these parameters, unit by unit, committing as results
    come; returns the files' plans, the store writer (its counters) and the number of units run."""
    workers = cfg.run.n_workers
    jobs = _jobs_for(store, plan, cfg, skipped, outside, models)
    keys = {j.footage_id: params_key(cfg, j, models) for j in jobs}
    cut = replace(cfg, run=replace(cfg.run, segment_s=unit_length_s(cfg, jobs, workers)))
    plans = [
        _plan(store, j, keys[j.footage_id], cut)
        for j in jobs
        if not store.is_finished(j.footage_id, keys[j.footage_id])
    ]
    run = _UnitRun(store, cfg, plans, skipped, progress, models.encoder.spec.space)
    run.finish_whole_files()  # files whose every segment a killed run had staged
    units = [u for p in plans for u in p.todo]
    for result in make_executor(cfg, models, workers, engine).run(units):
        run.add(result)
    return plans, run, len(units)


def _run_record(
    inputs: list[str],
    cfg: Config,
    models: FaceModels,
    started: datetime,
    skipped: list[Skipped],
    files: list[FileInfo],
    ignored: list[Path],
    outside: list[str],
) -> dict[str, Any]:
    """The store's `last_run` record (the manifest's run section)."""
    return {
        "version": __version__,
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": {**cfg.to_dict(), "detector_used": models.detector.name, "encoder_used": models.encoder.name},
        "models": model_record(models),
        "inputs": [display_path(p) for p in inputs],
        "window": {"since": cfg.sampler.since or None, "until": cfg.sampler.until or None},
        "skipped": [{"path": display_path(s.path), "reason": s.reason} for s in skipped],
        "partial": [{"path": f.path, "reason": f.reason} for f in files if f.status == "partial"],
        "ignored": [display_path(p) for p in ignored],
        "outside_window": outside,
    }


def _report(store: Store, out: Path, run_info: dict, cfg: Config, progress: Progress) -> Path:
    """Write the report; a full disk becomes DiskFullError. Returns the index page."""
    progress("report", 0, 1)
    try:
        index = write_report(
            store,
            out,
            run_info,
            cfg.report,
            clip_progress=lambda d, t: progress("clips", d, t),
            workers=cfg.run.n_workers,
        )
    except ReportError as exc:
        if is_disk_full(exc, out / "report"):
            raise DiskFullError(f"disk full writing {out / 'report'}") from None
        raise
    progress("report", 1, 1)
    return index


def model_record(models: FaceModels) -> dict[str, object]:
    """What the manifest says of the models a run used."""
    spec = models.encoder.spec
    return {
        "detector": models.detector.name,
        "encoder": {"name": spec.name, "space": spec.space, "version": spec.version, "dim": spec.dim},
    }


def _save(store: Store, footage_id: int, key: str, result: FeedResult, encoder: str) -> None:
    stats = result.stats
    f = result.faces
    store.save_file_result(
        footage_id,
        key,
        FileResult(
            pts_s=f.pts_s,
            boxes=f.boxes,
            scores=f.scores,
            quality=f.quality,
            embeddings=f.embeddings,
            thumbs=result.thumbs,
            tracks=tuple(result.tracks),
            status="partial" if stats.error else "done",
            reason=stats.error,
            frames_decoded=stats.decoded,
            frames_sampled=stats.sampled,
            reached_s=stats.reached_s,
            duration_s=stats.duration_s,
            encoder=encoder,
        ),
    )


class _UnitRun:
    """The store writer's side of a run: takes unit results as they come, commits each one.

    A file of one unit is saved at once; a longer file's units are staged one by one and the
    file is joined and saved when its last unit is in. A unit that cannot read its file skips
    the whole file.
    """

    def __init__(
        self, store: Store, cfg: Config, plans: list[FilePlan], skipped: list[Skipped], progress: Progress, space: str
    ):
        self.store = store
        self.space = space  # the descriptor space of the run's encoder
        self.cfg = cfg
        self.plans = {p.job.footage_id: p for p in plans}
        self.waiting = {p.job.footage_id: {u.index for u in p.todo} for p in plans}
        self.skipped = skipped
        self.progress = progress
        self.clock = VideoClock([u for p in plans for u in p.todo], progress)
        self.n_units = sum(len(p.todo) for p in plans)
        self.units_done = 0
        self.files_done = 0
        self.frames_decoded = 0
        progress("analyse", 0, len(plans))

    def finish_whole_files(self) -> None:
        for fid, waiting in self.waiting.items():
            if not waiting:
                self._save_file(self.plans[fid])

    def add(self, result: UnitResult) -> None:
        seg = result.segment
        if seg.index in self.waiting[seg.footage_id]:  # else an earlier unit found the file unreadable
            self._commit(result)
        self.clock.finished(seg)
        self.units_done += 1
        self.progress("units", self.units_done, self.n_units)

    def _commit(self, result: UnitResult) -> None:
        seg = result.segment
        plan = self.plans[seg.footage_id]
        waiting = self.waiting[seg.footage_id]
        if result.feed is None:
            waiting.clear()
            self.skipped.append(Skipped(plan.job.footage.path, result.skip_reason))
            self.store.mark_skipped(seg.footage_id, result.skip_reason, plan.key)
            self._file_done()
            return
        waiting.discard(seg.index)
        self.frames_decoded += result.feed.stats.decoded
        if len(plan.segments) == 1:
            _save(self.store, seg.footage_id, plan.key, result.feed, self.space)
            self._file_done()
            return
        self.store.save_segment(
            seg.footage_id, seg.index, plan.unit_key(seg), pack_result(result.feed), result.feed.stats.decoded
        )
        if not waiting:
            self._save_file(plan)

    def _save_file(self, plan: FilePlan) -> None:
        fid = plan.job.footage_id
        parts = [UnitResult(s, unpack_result(self.store.segment_data(fid, s.index))) for s in plan.segments]
        _save(self.store, fid, plan.key, join_segments(parts, self.cfg), self.space)
        self._file_done()

    def _file_done(self) -> None:
        self.files_done += 1
        self.progress("analyse", self.files_done, len(self.plans))

"""`analyse`: sources -> sampler -> faces -> tracks -> identities -> report, resumable.

The unit of work is a (file, time segment) (segments.py); an executor (executors.py) runs
the units in worker processes, batched in this process for the GPU, or on a Ray cluster.
The main process is the only writer of the store: it commits each finished unit, and joins
a long file's units into the file's result when the last one is in (`writer`). What to run is
worked out first, in `planning`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..analysis.grouping import assign_identities
from ..case import audit
from ..case.outdir import StaleMark, run_lock, store_path
from ..case.records import FileInfo
from ..case.store import Store, is_disk_full, store_error
from ..config import Config
from ..errors import DiskFullError, InputError
from ..models.base import FaceModels
from ..models.registry import make_models
from ..report import ReportError, write_report
from ..version import __version__
from ..video.sources import Skipped, describe_all, discover, display_path
from .executors import BatchedExecutor, Executor, InlineExecutor, LocalExecutor, RayEngine
from .planning import FilePlan, Plan, jobs_for, params_key, plan_file, unit_length_s, window_plan
from .writer import Progress, UnitRun


def _quiet(stage: str, done: int, total: int) -> None:
    pass


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
    # folders not walked: this run's OUT, or another case's output (holds a store): {"path", "reason", "shown"}; not warnings
    left_out: list[dict] = field(default_factory=list)
    # files whose content another file of the run has: {"path", "shown", "of", "of_shown"}; analysed once, not warnings
    duplicates: list[dict] = field(default_factory=list)

    @property
    def n_warnings(self) -> int:
        return len(self.skipped) + len(self.partial)

    def line(self) -> str:
        return (
            f"{len(self.identities)} identities, {self.n_faces} faces, {self.n_files} files, "
            f"{self.n_cameras} camera{'' if self.n_cameras == 1 else 's'} ({self.n_analysed} analysed now, {len(self.skipped)} skipped, "
            f"{len(self.partial)} partial"
            + (f", {len(self.outside_window)} outside the window" if self.outside_window else "")
            + (
                f", {len(self.duplicates)} duplicate{'' if len(self.duplicates) == 1 else 's'}"
                if self.duplicates
                else ""
            )
            + f"), {self.wall_s:.1f} s -> {self.report}"
        )


@dataclass(frozen=True)
class Found:
    """What the walk and the probes found, before the lock: each file's window plan, the files
    skipped, those that are not footage, and the case output folders left out of the walk."""

    plan: Plan
    skipped: list[Skipped]
    ignored: list[Path]
    left_out: list[Skipped]


def make_executor(cfg: Config, models: FaceModels, workers: int, engine: RayEngine | None) -> Executor:
    """The executor for this run: Ray when an engine is given, else batched in this process (a GPU:
    batched detection, and no fork after CUDA is up), else processes."""
    if engine is not None:
        return engine.executor(cfg, models)
    if models.detector.batch_size > 1 or models.on_gpu:
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
    left_out: list[Skipped] = []
    # before the lock: bad input writes nothing
    candidates, skipped = discover(paths, cfg.sources, ignored, out=out, left_out=left_out)
    if not candidates:
        why = f" ({'; '.join(f'{display_path(s.path)}: {s.reason}' for s in left_out)})" if left_out else ""
        raise InputError(f"no video or image files under {', '.join(map(display_path, paths))}{why}")
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
    found = Found(plan, skipped, ignored, left_out)
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
    found: Found,
    started: datetime,
    t0: float,
    engine: RayEngine | None = None,
) -> Summary:
    plan, skipped, ignored = found.plan, found.skipped, found.ignored
    footage = [f for f, _ in plan]
    outside: list[str] = []
    duplicates: list[dict] = []
    store = Store.open(store_path(out))
    mark = StaleMark(out, store, "a run")
    try:
        models = engine.models(cfg) if engine is not None else make_models(cfg.faces)
        check_encoder(store, models)
        plans, run, n_units = _analyse_files(store, plan, cfg, models, skipped, outside, duplicates, progress, engine)
        in_run = {display_path(f.path) for f in footage}
        reported = {display_path(s.path) for s in skipped} | set(outside)
        files = [f for f in store.footage() if f.path in in_run]
        skipped += [
            Skipped(Path(f.path), f.reason, f.shown) for f in files if f.status == "skipped" and f.path not in reported
        ]
        progress("identities", 0, 1)
        assign_identities(store, cfg)
        progress("identities", 1, 1)
        run_info = _run_record(inputs, cfg, models, started, skipped, files, ignored, outside)
        run_info["left_out"] = [
            {"path": display_path(s.path), "reason": s.reason, "shown": s.shown} for s in found.left_out
        ]
        run_info["duplicates"] = duplicates
        store.set_meta("last_run", run_info)
        _log_run(store, cfg, run_info, n_now=len(plans), n_files=len(footage))
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
            left_out=run_info["left_out"],
            duplicates=duplicates,
        )
    except sqlite3.DatabaseError as exc:
        raise store_error(exc, store.path) from None
    finally:
        mark.close()
        store.close()


def _analyse_files(
    store: Store,
    plan: Plan,
    cfg: Config,
    models: FaceModels,
    skipped: list[Skipped],
    outside: list[str],
    duplicates: list[dict],
    progress: Progress,
    engine: RayEngine | None,
) -> tuple[list[FilePlan], UnitRun, int]:
    """Analyse every file not finished with these parameters, unit by unit, committing as results
    come; returns the files' plans, the store writer (its counters) and the number of units run."""
    workers = cfg.run.n_workers
    jobs = jobs_for(store, plan, cfg, skipped, outside, models, duplicates)
    keys = {j.footage_id: params_key(cfg, j, models) for j in jobs}
    cut = replace(cfg, run=replace(cfg.run, segment_s=unit_length_s(cfg, jobs, workers)))
    plans = [
        plan_file(store, j, keys[j.footage_id], cut)
        for j in jobs
        if not store.is_finished(j.footage_id, keys[j.footage_id])
    ]
    run = UnitRun(store, cfg, plans, skipped, progress, models.encoder.spec.space)
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
        "skipped": [
            {"path": display_path(s.path), "reason": s.reason, "shown": s.shown or display_path(s.path)}
            for s in skipped
        ],
        "partial": [{"path": f.path, "reason": f.reason, "shown": f.name} for f in files if f.status == "partial"],
        "ignored": [display_path(p) for p in ignored],
        "outside_window": outside,
    }


def _log_run(store: Store, cfg: Config, run_info: dict[str, Any], n_now: int, n_files: int) -> None:
    """The run's row in the audit log (before the report, whose manifest carries the log)."""
    n_identities = len({i for i in store.assignment().values() if i >= 0})
    detail = (
        f"{n_now} of {n_files} file(s) analysed now, "
        f"{len(run_info['skipped'])} skipped, {len(run_info['partial'])} partial"
    )
    audit.append(
        store,
        action="run",
        detail=detail,
        version=__version__,
        parameters=audit.key_parameters(run_info["parameters"]),
        examiner=cfg.report.examiner,
        identities=n_identities,
        utc=run_info["finished_utc"],
    )


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
        "weights": [w.record() for w in models.weights()],  # each file loaded, with its SHA-256
    }

"""`analyse`: sources -> sampler -> faces -> tracks -> identities -> report, resumable.

Independent files run in worker processes (HOG on CPU) or interleaved in one process so the
CNN detector sees batches drawn from several feeds at once (GPU). The main process is the
only writer of the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence


from .version import __version__
from . import faces as facelib
from .config import Config, parse_instant
from .errors import InputError, VideoOpenError, WindowError
from .feed import FeedProcessor, FeedResult
from .grouping import assign_identities
from .outdir import close_inherited_locks, run_lock, store_path
from .procs import die_with_parent
from .report import write_report
from .sampler import SampleStats, read_still, sample_video
from .sources import Candidate, Skipped, describe_all, discover
from .store import Store
from .types import Footage, Frame

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

    @property
    def n_warnings(self) -> int:
        return len(self.skipped) + len(self.partial)

    def line(self) -> str:
        return (
            f"{len(self.identities)} identities, {self.n_faces} faces, {self.n_files} files, "
            f"{self.n_cameras} camera{'' if self.n_cameras == 1 else 's'} ({self.n_analysed} analysed now, {len(self.skipped)} skipped, "
            f"{len(self.partial)} partial), {self.wall_s:.1f} s -> {self.report}"
        )


# -- window ---------------------------------------------------------------------------------
def window_offsets(
    footage: Footage, since: str, until: str, tz: str
) -> tuple[float | None, float | None] | None:
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


def params_key(cfg: Config, job: Job, detector: str) -> str:
    """Changes whenever a setting that shapes one file's faces changes (then it is redone).

    `detector` is the detector actually used ('hog', 'cnn', ...), never 'auto': the same config
    on a machine with a GPU finds other faces.
    """
    data = {
        "fps": cfg.sampler.fps, "faces": {**cfg.faces.__dict__, "detector": detector}, "tracks": cfg.tracks.__dict__,
        "thumb": cfg.report.thumb_px, "window": [job.start_s, job.end_s],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- per file -------------------------------------------------------------------------------
def time_limit_s(cfg: Config, footage: Footage) -> float:
    """Wall time allowed for decoding one file before it is cut off as partial."""
    return cfg.run.file_time_limit_s or 60.0 + 20.0 * (footage.duration_s or 0.0)


def frames_of(job: Job, cfg: Config, stats: SampleStats) -> Iterator[Frame]:
    if job.footage.kind == "image":
        frame = read_still(job.footage.path)
        stats.decoded = stats.sampled = 1
        stats.reached_s = stats.duration_s = 0.0
        yield frame
    else:
        limit = time_limit_s(cfg, job.footage)
        yield from sample_video(job.footage.path, cfg.sampler.fps, job.start_s, job.end_s, stats, limit)


# Where a worker reports how far into its file it got: (footage id, pts seconds). Set per
# process: a queue's put in pool workers, a direct callback when running in-process.
_position_sink: Callable[[tuple[int, float]], None] | None = None
POSITION_EVERY_S = 5.0  # report at most every this many seconds of video


def _init_worker(queue) -> None:
    global _position_sink
    die_with_parent()
    close_inherited_locks()
    _position_sink = queue.put


def process_file(job: Job, cfg: Config, detector: facelib.Detector) -> tuple[int, FeedResult | str]:
    """Worker: one whole file, frame by frame. Returns (footage id, result or skip reason)."""
    stats = SampleStats()
    feed = FeedProcessor(cfg)
    reported = -POSITION_EVERY_S
    try:
        for frame in frames_of(job, cfg, stats):
            if feed.needs_detection(frame):
                found = detector.detect(frame.image)
                feed.add(frame, found.boxes, found.scores)
            else:
                feed.add_unchanged(frame)
            if _position_sink is not None and frame.pts_s - reported >= POSITION_EVERY_S:
                _position_sink((job.footage_id, frame.pts_s))
                reported = frame.pts_s
    except VideoOpenError as exc:
        return job.footage_id, str(exc)
    return job.footage_id, feed.finish(stats)


def process_batched(
    jobs: Sequence[Job], cfg: Config, detector: facelib.Detector,
    on_position: Callable[[tuple[int, float]], None] | None = None,
) -> Iterator[tuple[int, FeedResult | str]]:
    """All files in this process: detector batches gathered round-robin from up to batch-size feeds.

    A feed whose frames run out is finished only after the batch holding its last frames
    has been detected.
    """
    batch_size = detector.batch_size
    pending = deque(jobs)
    active: deque[tuple[Job, Iterator[Frame], FeedProcessor, SampleStats]] = deque()
    while pending or active:
        while pending and len(active) < batch_size:
            job = pending.popleft()
            stats = SampleStats()
            active.append((job, frames_of(job, cfg, stats), FeedProcessor(cfg), stats))
        batch: list[tuple[int, FeedProcessor, Frame]] = []
        finished: list[tuple[int, FeedProcessor | str, SampleStats | None]] = []
        # one frame per feed per round, rounds until the batch is full or the feeds run dry
        while active and len(batch) < batch_size:
            job, frames, feed, stats = active.popleft()
            try:
                frame = next(frames)
                active.append((job, frames, feed, stats))
                if feed.needs_detection(frame):
                    batch.append((job.footage_id, feed, frame))
                else:
                    feed.add_unchanged(frame)
                    continue
            except StopIteration:
                finished.append((job.footage_id, feed, stats))
            except VideoOpenError as exc:
                finished.append((job.footage_id, str(exc), None))
        if batch:
            results = detector.detect_batch([f.image for _, _, f in batch])
            for (footage_id, feed, frame), found in zip(batch, results):
                feed.add(frame, found.boxes, found.scores)
                if on_position is not None:
                    on_position((footage_id, frame.pts_s))
        for footage_id, done, stats in finished:
            yield footage_id, done if isinstance(done, str) else done.finish(stats)


def _run_pool(
    jobs: list[Job], cfg: Config, detector: facelib.Detector, workers: int,
    on_position: Callable[[tuple[int, float]], None],
) -> Iterator[tuple[int, FeedResult | str]]:
    global _position_sink
    if workers <= 1 or len(jobs) <= 1:
        _position_sink = on_position
        try:
            for job in jobs:
                yield process_file(job, cfg, detector)
        finally:
            _position_sink = None
        return
    # fork: workers start at once and need no importable __main__ (scripts on stdin, notebooks)
    ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    positions = ctx.Queue()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(positions,)) as pool:
        # keep at most 2 jobs per worker in flight, so results stream back in order of completion
        queue = deque(jobs)
        running = set()
        while queue or running:
            while queue and len(running) < 2 * workers:
                running.add(pool.submit(process_file, queue.popleft(), cfg, detector))
            done, running = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
            while not positions.empty():
                on_position(positions.get())
            for fut in done:
                yield fut.result()


class VideoClock:
    """Seconds of video analysed so far, across files running in parallel, for the progress bar."""

    def __init__(self, jobs: Sequence[Job], progress: Progress):
        self.progress = progress
        self.span = {j.footage_id: _span_s(j) for j in jobs}
        self.start = {j.footage_id: j.start_s or 0.0 for j in jobs}
        self.done: dict[int, float] = {}
        self.total = sum(self.span.values())

    def __call__(self, position: tuple[int, float]) -> None:
        fid, pts_s = position
        self.done[fid] = min(max(pts_s - self.start[fid], 0.0), self.span[fid])
        self.progress("video", int(sum(self.done.values())), int(self.total))

    def finished(self, fid: int) -> None:
        self((fid, self.start[fid] + self.span[fid]))


def _span_s(job: Job) -> float:
    """Seconds of video this job covers (the part inside the window)."""
    duration = job.footage.duration_s or 0.0
    end = job.end_s if job.end_s is not None else duration
    return max(0.0, end - (job.start_s or 0.0))


# -- the run --------------------------------------------------------------------------------
def _jobs_for(
    store: Store, footage: list[Footage], cams: dict[Path, Candidate], cfg: Config, skipped: list[Skipped],
    detector: str,
) -> list[Job]:
    jobs = []
    since, until = cfg.sampler.since, cfg.sampler.until
    for f in footage:
        fid = store.upsert_footage(f)
        store.set_footage_timezone(fid, f.timezone)
        offsets = window_offsets(f, since, until, cams[f.path].camera.timezone)
        if offsets is None:
            reason = "start time unknown: cannot place it in the time window" if f.start_utc is None else "outside the time window"
            skipped.append(Skipped(f.path, reason))
            job = Job(fid, f)
            store.mark_skipped(fid, reason, params_key(cfg, job, detector))
            continue
        jobs.append(Job(fid, f, *offsets))
    return jobs


def analyse(
    inputs: Iterable[str | Path], out: str | Path, cfg: Config | None = None, progress: Progress | None = None
) -> Summary:
    """Analyse footage under `inputs` into `out` (store + report); resumes an earlier run there."""
    cfg = cfg or Config()
    progress = progress or _quiet
    inputs = [str(p) for p in inputs]
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    out = Path(out)
    ignored: list[Path] = []
    candidates, skipped = discover(inputs, cfg.sources, ignored)  # before the lock: bad input writes nothing
    if not candidates:
        raise InputError(f"no video or image files under {', '.join(inputs)}")
    with run_lock(out):
        return _analyse_locked(inputs, out, cfg, progress, (candidates, skipped, ignored), started, t0)


def _analyse_locked(
    inputs: list[str], out: Path, cfg: Config, progress: Progress,
    found: tuple[list[Candidate], list[Skipped], list[Path]], started: datetime, t0: float,
) -> Summary:
    candidates, skipped, ignored = found
    workers = cfg.run.workers or os.cpu_count() or 1
    store = Store.open(store_path(out))
    try:
        progress("probe", 0, len(candidates))
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress("probe", done, len(candidates))

        footage, unreadable = describe_all(candidates, cfg.sources, workers=max(2, workers), progress=tick)
        skipped += unreadable
        cams = {c.path: c for c in candidates}
        detector = facelib.make_detector(cfg.faces)
        jobs = _jobs_for(store, footage, cams, cfg, skipped, detector.name)
        if (cfg.sampler.since or cfg.sampler.until) and not jobs:
            raise WindowError(
                f"the window {cfg.sampler.since or '...'} – {cfg.sampler.until or '...'} matches none of the "
                f"{len(footage)} files"
            )
        todo = [j for j in jobs if not store.is_finished(j.footage_id, params_key(cfg, j, detector.name))]
        clock = VideoClock(todo, progress)
        results = (process_batched(todo, cfg, detector, clock) if detector.batch_size > 1
                   else _run_pool(todo, cfg, detector, workers, clock))
        by_id = {j.footage_id: j for j in todo}
        progress("analyse", 0, len(todo))
        for n, (fid, result) in enumerate(results, 1):
            clock.finished(fid)
            key = params_key(cfg, by_id[fid], detector.name)
            if isinstance(result, str):
                skipped.append(Skipped(by_id[fid].footage.path, result))
                store.mark_skipped(fid, result, key)
            else:
                _save(store, fid, key, result)
            progress("analyse", n, len(todo))
        in_run = {str(f.path) for f in footage}
        reported = {str(s.path) for s in skipped}
        rows = [r for r in store.footage() if r["path"] in in_run]
        skipped += [
            Skipped(Path(r["path"]), r["reason"])
            for r in rows
            if r["status"] == "skipped" and r["path"] not in reported
        ]
        progress("identities", 0, 1)
        assign_identities(store, cfg)
        progress("identities", 1, 1)
        run_info = {
            "version": __version__,
            "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "parameters": {**cfg.to_dict(), "detector_used": detector.name},
            "inputs": inputs,
            "window": {"since": cfg.sampler.since or None, "until": cfg.sampler.until or None},
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
            "partial": [{"path": r["path"], "reason": r["reason"]} for r in rows if r["status"] == "partial"],
            "ignored": [str(p) for p in ignored],
        }
        store.set_meta("last_run", run_info)
        progress("report", 0, 1)
        index = write_report(store, out, run_info, cfg.report, clip_progress=lambda d, t: progress("clips", d, t))
        progress("report", 1, 1)
        identities = json.loads((index.parent / "identities.json").read_text())
        n_faces = sum(1 for _ in store.faces())
        cameras = {f.camera for f in footage}
        return Summary(
            identities=identities, n_faces=n_faces, n_files=len(footage), n_cameras=len(cameras),
            n_analysed=len(todo), wall_s=time.monotonic() - t0, report=index,
            skipped=run_info["skipped"], partial=run_info["partial"], ignored=run_info["ignored"],
        )
    finally:
        store.close()


def _save(store: Store, footage_id: int, key: str, result: FeedResult) -> None:
    stats = result.stats
    f = result.faces
    store.save_file_result(
        footage_id, key, faces_pts_s=f.pts_s, faces_boxes=f.boxes, faces_scores=f.scores, faces_quality=f.quality,
        faces_embeddings=f.embeddings, thumbs=result.thumbs, tracks=result.tracks,
        status="partial" if stats.error else "done", reason=stats.error, frames_decoded=stats.decoded,
        frames_sampled=stats.sampled, reached_s=stats.reached_s, duration_s=stats.duration_s,
    )

"""The store writer's side of a run: unit results are committed as they come in, a long file's
units are staged and joined when the last is in, and progress is reported per unit and file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..analysis.feed import FeedResult
from ..case.results import FileResult
from ..case.store import Store
from ..config import Config
from ..types import Footage
from ..video.sampler import SampleStats
from ..video.sources import Skipped
from ..video.timeline import Timing, timing_note
from .planning import FilePlan
from .segments import Segment, UnitResult, join_segments, pack_result, unpack_result

# progress(stage, done, total): the CLI draws it; the library never prints.
Progress = Callable[[str, int, int], None]


class VideoClock:
    """Seconds of video analysed so far, across units running in parallel, for the progress bar."""

    def __init__(self, units: Sequence[Segment], progress: Progress):
        self.progress = progress
        self.total = sum(u.span_s for u in units)
        self.done = 0.0

    def finished(self, unit: Segment) -> None:
        self.done += unit.span_s
        self.progress("video", round(self.done), round(self.total))


def timing_reason(stats: SampleStats, footage: Footage) -> str:
    """What is uncertain about a file's times ('' when nothing): from the packet scan, else from
    what the decoder met. It goes into the reason without making the file partial."""
    if footage.timing_note:
        return footage.timing_note
    if stats.resets_s or stats.untimed:
        return timing_note(Timing(stats.duration_s, tuple(stats.resets_s), stats.untimed > 0), None, 0.0)
    return ""


def streams_left_out(footage: Footage) -> str:
    """Why a file with more than one video stream is only partly analysed ('' for one stream):
    the first stream is the file's feed, the others are not read.

    >>> from pathlib import Path
    >>> streams_left_out(Footage(Path("dvr.mp4"), "dvr", "video", 0, "", video_streams=3))
    'only video stream 1 of 3 analysed: streams 2-3 are not read (split the channels into files of their own)'
    """
    n = footage.video_streams
    if n <= 1:
        return ""
    rest = "stream 2 is" if n == 2 else f"streams 2-{n} are"
    return f"only video stream 1 of {n} analysed: {rest} not read (split the channels into files of their own)"


def save_feed(store: Store, footage: Footage, footage_id: int, key: str, result: FeedResult, encoder: str) -> None:
    """Commit one file's result: partial when decoding broke off or streams were left out, and its
    reason says so, then what is uncertain about its times."""
    stats = result.stats
    left_out = "; ".join(r for r in (stats.error, streams_left_out(footage)) if r)
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
            status="partial" if left_out else "done",
            reason="; ".join(r for r in (left_out, timing_reason(stats, footage)) if r),
            frames_decoded=stats.decoded,
            frames_sampled=stats.sampled,
            reached_s=stats.reached_s,
            duration_s=stats.duration_s,
            encoder=encoder,
        ),
    )


class UnitRun:
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
            self.skipped.append(Skipped(plan.job.footage.path, result.skip_reason, plan.job.footage.shown))
            self.store.mark_skipped(seg.footage_id, result.skip_reason, plan.key)
            self._file_done()
            return
        waiting.discard(seg.index)
        self.frames_decoded += result.feed.stats.decoded
        if len(plan.segments) == 1:
            save_feed(self.store, seg.footage, seg.footage_id, plan.key, result.feed, self.space)
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
        save_feed(self.store, plan.job.footage, fid, plan.key, join_segments(parts, self.cfg), self.space)
        self._file_done()

    def _file_done(self) -> None:
        self.files_done += 1
        self.progress("analyse", self.files_done, len(self.plans))

"""Work units: one file cut into time segments, each analysed on its own, joined again.

A long file is split into segments of about `run.segment_s` seconds, their borders on the
sampling grid, so each segment samples exactly the frames the whole file would. A segment
also decodes a short lead-in (`run.segment_overlap_s`) before its start, owned by the
segment before it: the tracker warms up there, and the faces both segments found in the
lead-in tell which track of one continues which track of the other. The joined result keeps
each face once (from the segment that owns its time) and one track per person crossing the
border. Short files stay one segment, analysed as before.

Each finished segment is staged in the store as bytes (`pack_result`, numpy's npz format,
no pickle), so a run killed in the middle of a long file resumes from its finished segments.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..analysis.feed import FeedProcessor, FeedResult, track_record
from ..analysis.track_state import best_mean
from ..case.results import TrackRecord
from ..config import Config
from ..errors import VideoOpenError
from ..models.base import FaceModels
from ..types import Faces, Footage, Frame, box_iou
from ..video.sampler import SampleStats, read_still, sample_video

SAME_FACE_IOU = 0.5  # a face both segments found in the lead-in: same frame, boxes overlapping this much


@dataclass(frozen=True)
class Segment:
    """One work unit: the part of one file from `start_s` to `end_s` (seconds into the file).

    `start_s`/`end_s` None mean the file's (or window's) own start/end. The unit decodes from
    `read_from_s` (<= start_s: the lead-in) and samples on a grid through `origin_s`. It owns
    faces at start_s <= t < end_s (the last segment also t == end_s).
    """

    footage_id: int
    footage: Footage
    index: int
    count: int
    start_s: float | None
    end_s: float | None
    read_from_s: float | None
    origin_s: float

    @property
    def is_last(self) -> bool:
        return self.index == self.count - 1

    @property
    def span_s(self) -> float:
        """Seconds of video this unit owns (for progress)."""
        end = self.end_s if self.end_s is not None else (self.footage.duration_s or 0.0)
        return max(0.0, end - (self.start_s or 0.0))

    def owns(self, pts_s: np.ndarray) -> np.ndarray:
        """(N,) bool: which of these times belong to this segment (not to its neighbours)."""
        pts_s = np.asarray(pts_s, np.float64)
        keep = np.ones(len(pts_s), bool)
        if self.index > 0 and self.start_s is not None:
            keep &= pts_s >= self.start_s - 1e-6
        if not self.is_last and self.end_s is not None:
            keep &= pts_s < self.end_s - 1e-6
        return keep


@dataclass(frozen=True)
class UnitResult:
    """What one work unit gave back: its faces and tracks, or why the file could not be read."""

    segment: Segment
    feed: FeedResult | None
    skip_reason: str = ""


# -- planning -----------------------------------------------------------------------------------
def plan_segments(
    footage_id: int, footage: Footage, start_s: float | None, end_s: float | None, cfg: Config
) -> list[Segment]:
    """Cut the part [start_s, end_s] of a file (None = its start/end) into work units.

    About `cfg.run.segment_s` seconds each (a part shorter than 1.5x that stays whole; stills,
    files of unknown duration, and files that cannot be entered by a seek too: those whose
    timestamps reset, where a position is no timestamp, and those the demuxer cannot seek in).
    Borders lie on the sampling grid through the part's start. The lead-in is
    `cfg.run.segment_overlap_s`, at least two sampling steps.
    """
    lo = start_s or 0.0
    origin = lo
    hi = end_s if end_s is not None else footage.duration_s
    step = 1.0 / cfg.sampler.fps
    whole = [Segment(footage_id, footage, 0, 1, start_s, end_s, start_s, origin)]
    if footage.kind == "image" or not can_seek(footage) or hi is None or hi - lo < 1.5 * cfg.run.segment_s:
        return whole
    n = max(1, round((hi - lo) / cfg.run.segment_s))
    borders = [lo + round(i * (hi - lo) / n / step) * step for i in range(1, n)]
    overlap = max(cfg.run.segment_overlap_s, 2 * step)
    out = []
    for i in range(n):
        seg_start: float | None
        if i == 0:  # the first segment starts (and reads) where the part does
            seg_start = read_from = start_s
        else:
            seg_start = borders[i - 1]
            read_from = max(lo, lo + math.floor((seg_start - overlap - lo) / step + 1e-9) * step)
        seg_end = end_s if i == n - 1 else borders[i]
        out.append(Segment(footage_id, footage, i, n, seg_start, seg_end, read_from, origin))
    return out


def can_seek(footage: Footage) -> bool:
    """Whether a unit may enter this file by a seek (else it decodes it from the start)."""
    return footage.seekable and not footage.resets_s


def segment_key(file_key: str, footage: Footage, segment: Segment) -> str:
    """Resume key of one staged segment: the file's settings key, its content, and the cut."""
    data = [file_key, footage.sha256, segment.index, segment.count, segment.start_s, segment.end_s, segment.read_from_s]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


# -- one unit -----------------------------------------------------------------------------------
def unit_time_limit_s(cfg: Config, segment: Segment) -> float:
    """Wall time allowed for decoding one unit before it is cut off as partial (a unit that cannot
    seek decodes from the file's start)."""
    read_from = (segment.read_from_s or 0.0) if can_seek(segment.footage) else 0.0
    return cfg.run.file_time_limit_s or 60.0 + 20.0 * (segment.span_s + (segment.start_s or 0.0) - read_from)


def unit_frames(segment: Segment, cfg: Config, stats: SampleStats, threads: int, gpu: bool = False) -> Iterator[Frame]:
    """The sampled frames of one unit, lead-in included (a still is one frame); `threads`: decoder
    threads; `gpu`: decode on the NVIDIA decoder where there is one."""
    if segment.footage.kind == "image":
        frame = read_still(segment.footage.path)
        stats.decoded = stats.sampled = 1
        stats.reached_s = stats.duration_s = 0.0
        yield frame
        return
    yield from sample_video(
        segment.footage.path,
        cfg.sampler.fps,
        segment.read_from_s,
        segment.end_s,
        stats,
        unit_time_limit_s(cfg, segment),
        grid_origin_s=segment.origin_s,
        threads=threads,
        gpu=gpu,
        span_s=segment.footage.duration_s,
        seek=can_seek(segment.footage),
    )


def process_segment(segment: Segment, cfg: Config, models: FaceModels) -> UnitResult:
    """Analyse one unit frame by frame in this process (a worker, an actor, or inline), decoding on
    this core only: there is a worker per core."""
    stats = SampleStats()
    feed = FeedProcessor(cfg, models)
    try:
        for frame in unit_frames(segment, cfg, stats, threads=1):
            if feed.needs_detection(frame):
                feed.add(frame, models.detector.detect(frame.image))
            else:
                feed.add_unchanged(frame)
    except VideoOpenError as exc:
        return UnitResult(segment, None, str(exc))
    return UnitResult(segment, feed.finish(stats))


def process_batched(segments: Sequence[Segment], cfg: Config, models: FaceModels) -> Iterator[UnitResult]:
    """Many units in this process, detector batches gathered round-robin from up to batch-size of them.

    For a detector on a GPU: one call sees frames of several feeds. A unit whose frames run out
    is finished only after the batch holding its last frames has been detected. The one process
    decodes on every core it can get.
    """
    batch_size = models.detector.batch_size
    pending = list(reversed(segments))
    active: list[tuple[Segment, Iterator[Frame], FeedProcessor, SampleStats]] = []
    while pending or active:
        while pending and len(active) < batch_size:
            seg = pending.pop()
            stats = SampleStats()
            frames = unit_frames(seg, cfg, stats, threads=0, gpu=True)  # the batched path feeds a GPU
            active.append((seg, frames, FeedProcessor(cfg, models), stats))
        batch: list[tuple[FeedProcessor, Frame]] = []
        finished: list[UnitResult | tuple[Segment, FeedProcessor, SampleStats]] = []
        cursor = 0
        # one frame per unit per round, rounds until the batch is full or the units run dry
        while active and len(batch) < batch_size:
            cursor %= len(active)
            seg, frames, feed, stats = active[cursor]
            try:
                frame = next(frames)
            except StopIteration:
                finished.append((*active.pop(cursor)[:1], feed, stats))
                continue
            except VideoOpenError as exc:
                active.pop(cursor)
                finished.append(UnitResult(seg, None, str(exc)))
                continue
            cursor += 1
            if feed.needs_detection(frame):
                batch.append((feed, frame))
            else:
                feed.add_unchanged(frame)
        if batch:
            for (feed, frame), found in zip(
                batch, models.detector.detect_batch([f.image for _, f in batch]), strict=True
            ):
                feed.add(frame, found)
        for item in finished:
            yield item if isinstance(item, UnitResult) else UnitResult(item[0], item[1].finish(item[2]))


# -- joining ------------------------------------------------------------------------------------
def join_segments(parts: Sequence[UnitResult], cfg: Config) -> FeedResult:
    """One file's result from the results of all its segments (in any order).

    Each face is kept once, from the segment owning its time; a track of one segment whose
    lead-in faces are faces of a track of the segment before continues that track.
    """
    parts = sorted(parts, key=lambda p: p.segment.index)
    feeds: list[FeedResult] = []
    for p in parts:
        if p.feed is None:
            raise ValueError(f"segment {p.segment.index} of {p.segment.footage.path} has no result to join")
        feeds.append(p.feed)
    if len(feeds) == 1:
        return feeds[0]
    join = _Join()
    for part, feed in zip(parts, feeds, strict=True):
        join.add(part.segment, feed)
    return join.result(cfg, _joined_stats([f.stats for f in feeds]))


class _Join:
    """What `join_segments` grows segment by segment, in time order: the owned faces and their
    thumbnails, and per joined track its rows, snapshots and lead-ins."""

    def __init__(self) -> None:
        self.faces: list[Faces] = []
        self.thumbs: list[bytes] = []
        self.members: list[list[int]] = []  # joined track -> rows into the joined faces
        self.snaps: list[list[tuple[float, bytes]]] = []  # joined track -> (best quality of a part, its snapshot)
        self.edited: set[int] = set()  # joined tracks whose faces are not one segment's track as it was
        # joined track -> (descriptors, quality) of its lead-ins
        self.lead_ins: list[list[tuple[np.ndarray, np.ndarray]]] = []
        self.records: list[TrackRecord] = []  # joined track -> the record of its first part
        # the segment before: feed, owned rows, local track -> joined
        self.previous: tuple[FeedResult, np.ndarray, dict[int, int]] | None = None
        self.offset = 0  # joined faces so far

    def add(self, segment: Segment, feed: FeedResult) -> None:
        """The next segment's result: its owned faces, its tracks continued or new."""
        owned = segment.owns(feed.faces.pts_s)
        new_row = np.cumsum(owned) - 1 + self.offset  # joined row of each owned local face
        track_of_face = _track_of_face(feed)
        continues = _continuations(self.previous, feed, owned, track_of_face) if self.previous is not None else {}
        local_to_joined: dict[int, int] = {}
        for t, track in enumerate(feed.tracks):
            rows = [int(new_row[r]) for r in track.face_rows if owned[r]]
            if not rows:
                continue
            lead_in = track.face_rows[~owned[track.face_rows]]
            trimmed = len(rows) != len(track.face_rows)
            quality = float(feed.faces.quality[track.face_rows].max())
            j = continues.get(t)
            if j is None:
                j = len(self.members)
                self.members.append([])
                self.snaps.append([])
                self.lead_ins.append([])
                self.records.append(track)
                if trimmed:
                    self.edited.add(j)
            else:
                self.edited.add(j)
            self.members[j] += rows
            self.snaps[j].append((quality, track.snapshot))
            self.lead_ins[j].append((feed.faces.embeddings[lead_in], feed.faces.quality[lead_in]))
            local_to_joined[t] = j
        self.faces.append(feed.faces[owned])
        self.thumbs += [th for th, keep in zip(feed.thumbs, owned, strict=True) if keep]
        self.previous = (feed, owned, local_to_joined)
        self.offset += int(owned.sum())

    def result(self, cfg: Config, stats: SampleStats) -> FeedResult:
        """The joined faces and tracks; a track made of more than one part, or cut, gets a new descriptor."""
        joined = Faces.concat(self.faces, self.faces[0].embeddings.shape[1])  # every part holds one encoder's vectors
        tracks = []
        for j, rows in enumerate(self.members):
            if j in self.edited:
                rows_j = np.asarray(rows, np.int64)
                descriptor = best_mean(joined.embeddings[rows_j], joined.quality[rows_j], cfg.tracks.max_encodings)
                if descriptor is None:  # its only encoded faces were in a lead-in: the same person
                    lead_embeddings, lead_quality = (np.concatenate(a) for a in zip(*self.lead_ins[j], strict=True))
                    descriptor = best_mean(lead_embeddings, lead_quality, cfg.tracks.max_encodings)
                snapshot = max(self.snaps[j], key=lambda s: s[0])[1]
                tracks.append(track_record(joined, rows_j, descriptor, snapshot, cfg))
            else:
                tracks.append(replace(self.records[j], face_rows=np.asarray(rows, np.int64)))
        return FeedResult(joined, self.thumbs, tracks, stats)


def _track_of_face(feed: FeedResult) -> np.ndarray:
    out = np.full(len(feed.faces), -1, np.int64)
    for t, track in enumerate(feed.tracks):
        out[track.face_rows] = t
    return out


def _continuations(
    previous: tuple[FeedResult, np.ndarray, dict[int, int]],
    feed: FeedResult,
    owned: np.ndarray,
    track_of_face: np.ndarray,
) -> dict[int, int]:
    """{local track: joined track it continues}, from faces found in the lead-in by both segments.

    One joined track is continued by at most one local track (the one sharing most faces).
    """
    before, before_owned, before_joined = previous
    before_track = _track_of_face(before)
    votes: Counter[tuple[int, int]] = Counter()
    for r in np.flatnonzero(~owned):
        same_time = np.flatnonzero(before_owned & (np.abs(before.faces.pts_s - feed.faces.pts_s[r]) < 1e-6))
        if not len(same_time):
            continue
        iou = box_iou(feed.faces.boxes[r : r + 1].astype(np.float64), before.faces.boxes[same_time].astype(np.float64))[
            0
        ]
        best = int(np.argmax(iou))
        if iou[best] >= SAME_FACE_IOU and track_of_face[r] >= 0:
            joined = before_joined.get(int(before_track[same_time[best]]))
            if joined is not None:
                votes[(int(track_of_face[r]), joined)] += 1
    out: dict[int, int] = {}
    taken: set[int] = set()
    for (local, joined), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if local not in out and joined not in taken:
            out[local] = joined
            taken.add(joined)
    return out


def _joined_stats(parts: Sequence[SampleStats]) -> SampleStats:
    errors = [s.error for s in parts if s.error]
    durations = [s.duration_s for s in parts if s.duration_s is not None]
    return SampleStats(
        decoded=sum(s.decoded for s in parts),
        decoded_outside=sum(s.decoded_outside for s in parts),
        sampled=sum(s.sampled for s in parts),
        reached_s=parts[-1].reached_s,
        duration_s=max(durations) if durations else None,
        error=errors[0] if errors else "",
        resets_s=sorted({t for s in parts for t in s.resets_s}),
        untimed=sum(s.untimed for s in parts),
        seek_failed=any(s.seek_failed for s in parts),
    )


# -- staging in the store -----------------------------------------------------------------------
_FACE_FIELDS = ("boxes", "scores", "landmarks", "quality", "frame", "pts_s", "embeddings")


def pack_result(feed: FeedResult) -> bytes:
    """A unit's result as bytes (npz, no pickle), to stage it in the store until its file is whole."""
    arrays: dict[str, np.ndarray] = {f"faces_{name}": getattr(feed.faces, name) for name in _FACE_FIELDS}
    arrays.update(_pack_blobs("thumbs", feed.thumbs))
    arrays.update(_pack_blobs("snapshots", [t.snapshot for t in feed.tracks]))
    arrays["track_rows"], arrays["track_rows_at"] = _pack_rows([t.face_rows for t in feed.tracks])
    arrays["track_times"] = np.array([[t.start_s, t.end_s] for t in feed.tracks], np.float64).reshape(-1, 2)
    arrays["track_steer"] = np.array([t.steer for t in feed.tracks], bool)
    dim = feed.faces.embeddings.shape[1]
    arrays["track_embedding"] = np.array(
        [t.embedding if t.embedding is not None else np.full(dim, np.nan, np.float32) for t in feed.tracks],
        np.float32,
    ).reshape(-1, dim)
    arrays["stats"] = np.array(json.dumps(feed.stats.__dict__))
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def unpack_result(data: bytes) -> FeedResult:
    """The inverse of pack_result."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        faces = Faces(**{name: z[f"faces_{name}"] for name in _FACE_FIELDS})
        thumbs = _unpack_blobs(z, "thumbs")
        snapshots = _unpack_blobs(z, "snapshots")
        rows = np.split(z["track_rows"], z["track_rows_at"][1:-1]) if len(z["track_rows_at"]) > 1 else []
        tracks = [
            TrackRecord(
                start_s=float(times[0]),
                end_s=float(times[1]),
                face_rows=r.astype(np.int64),
                steer=bool(steer),
                embedding=None if np.isnan(emb).any() else emb.copy(),
                snapshot=snap,
            )
            for times, r, steer, emb, snap in zip(
                z["track_times"], rows, z["track_steer"], z["track_embedding"], snapshots, strict=True
            )
        ]
        stats = SampleStats(**json.loads(str(z["stats"])))
    return FeedResult(faces, thumbs, tracks, stats)


def _pack_blobs(name: str, blobs: Sequence[bytes]) -> dict[str, np.ndarray]:
    at = np.concatenate([[0], np.cumsum([len(b) for b in blobs], dtype=np.int64)]).astype(np.int64)
    return {f"{name}_data": np.frombuffer(b"".join(blobs), np.uint8), f"{name}_at": at}


def _unpack_blobs(z: Mapping[str, np.ndarray], name: str) -> list[bytes]:
    data, at = z[f"{name}_data"].tobytes(), z[f"{name}_at"]
    return [data[int(a) : int(b)] for a, b in itertools.pairwise(at)]


def _pack_rows(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    at = np.concatenate([[0], np.cumsum([len(r) for r in rows], dtype=np.int64)]).astype(np.int64)
    flat = np.concatenate([np.asarray(r, np.int64) for r in rows]) if rows else np.zeros(0, np.int64)
    return flat, at

"""Per-feed online face tracking: link each sampled frame's faces to the faces seen just before.

A track is one person seen continuously by one camera (a *sighting*). Linking is geometric
(IoU and centre distance, stepping by time, not by frame count) and falls back on
128-d descriptors only where geometry is unsure, because a descriptor costs 30-100 ms.

How one `Tracker.step` decides:

1. Tracks whose last face is older than `max_gap_s` end.
2. Gated geometric cost between every live track and every detection:
   ``(1 - IoU) + 0.5 * centre distance / mean box width``; a pair is feasible when
   (IoU >= min_iou or centre distance < gate) and the box heights differ by at most
   `MAX_SIZE_RATIO`. The gate is one box width per 0.5 s elapsed, between 1 and 2 widths.
3. A provisional greedy matching on that cost. A match is *clear* when every other
   feasible pair that shares its track or its detection costs at least `AMBIGUITY_MARGIN`
   more, or when the appearance vectors settle those rivals (the face looks like its own
   track and like none of the rival tracks, and no rival face looks like its track), and
   *strong* when its IoU reaches `min_iou`. The face *looks like* the track when
   its appearance vector (aligned grey chip, computed for every face) correlates at least
   `min_appearance_corr` with that of the track's last face or of one of its encoded faces
   (a descriptor of that look is already there). A pair *needs confirming* (`confirm_links`)
   when the face does not look like the track, or when the track was unseen for more than
   `confirm_gap_s`.
4. Exactly one `encode` call, for: detections left without a track (they start tracks),
   detections in unclear matches (ambiguity checks), weak matches that the chip does not
   confirm (it does when the face looks like the track and no gap asks for more), clear
   matches that need confirming, and clear matches the encode policy picks (every
   `encode_every` faces, or a face > `BETTER_QUALITY` times the best encoded so far, while
   the track has fewer than `max_encodings` descriptors). So where the chip is decisive, a
   link costs no descriptor.
5. Final greedy matching where a pair with descriptors on both sides costs
   ``geometric + DESCRIPTOR_WEIGHT * distance`` (the distance read on dlib's scale whatever the
   encoder: times 0.6 / max_distance) and is forbidden above `max_distance`, or
   above `confirm_distance` for a pair that needs confirming (with `confirm_links`, the
   distance to the nearest of the track's descriptors or to their mean, else to its latest),
   over the tracks and detections left once the clear matches without a descriptor are kept;
   every detection left over is encoded and starts a new track, and a track whose face by
   position was refused and that nothing else continues ends (someone took its place).

A track that ends (gap, cut, refused, or at `finish`) encodes its last face if that has no
descriptor, so each track's descriptors cover it from first to last face and every look it
had. (Skipping that encode when the last face's chip looks like an encoded face saved a
third of cctv-asl's descriptors, but on hamilton the frontal probe photo's distance to the
three-quarter face in the audience rose from 0.59 to 0.66: chips are too coarse to say a
descriptor would add nothing.) `Tracker.finish` then splits tracks where two consecutive
descriptors of one track are farther apart than `max_distance` (an identity switch the
links did not catch), at the face least like the one before it.
`Track` and the state a track keeps while it grows (`LiveTrack`) are in `track_state`.
Pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..catalog import DEFAULT_ENCODER, ENCODERS
from ..config import TracksConfig
from ..types import box_iou
from .track_state import EncodeFn, LiveTrack, Track

DEFAULT_DIM = ENCODERS[DEFAULT_ENCODER].dim  # the default encoder's size, when a caller names none

MAX_SIZE_RATIO = 1.6  # box heights of one face in consecutive samples differ at most this much
GATE_WIDTHS_PER_S = 2.0  # centre gate grows with the time elapsed since the track's last face ...
GATE_MIN_WIDTHS, GATE_MAX_WIDTHS = 1.0, 2.0  # ... within these bounds (in mean box widths)
CENTRE_WEIGHT = 0.5
AMBIGUITY_MARGIN = 0.5  # a rival pair this close in cost makes a match unclear
DESCRIPTOR_WEIGHT = 4.0  # per unit of descriptor distance on dlib's scale (its max_distance 0.6, below)
DESCRIPTOR_SCALE = 0.6  # distances are read as d * DESCRIPTOR_SCALE / max_distance: the encoder's own scale


def link_cost(
    track_boxes: np.ndarray, boxes: np.ndarray, dt_s: np.ndarray, min_iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gated geometric cost (M, N) between tracks' last boxes and new boxes, and the IoU.

    dt_s: (M,) seconds since each track's last face. Infeasible pairs cost +inf.
    """
    iou = box_iou(track_boxes, boxes)
    tb = np.asarray(track_boxes, np.float64)[:, None, :]
    nb = np.asarray(boxes, np.float64)[None, :, :]
    centre = np.hypot(
        (tb[..., 0] + tb[..., 2] - nb[..., 0] - nb[..., 2]) / 2, (tb[..., 1] + tb[..., 3] - nb[..., 1] - nb[..., 3]) / 2
    )
    width = np.maximum(((tb[..., 2] - tb[..., 0]) + (nb[..., 2] - nb[..., 0])) / 2, 1.0)
    dist = centre / width
    th = np.maximum(tb[..., 3] - tb[..., 1], 1.0)
    nh = np.maximum(nb[..., 3] - nb[..., 1], 1.0)
    ratio = np.maximum(th / nh, nh / th)
    gate = np.clip(GATE_WIDTHS_PER_S * np.asarray(dt_s, np.float64), GATE_MIN_WIDTHS, GATE_MAX_WIDTHS)[:, None]
    feasible = ((iou >= min_iou) | (dist < gate)) & (ratio <= MAX_SIZE_RATIO)
    return np.where(feasible, (1.0 - iou) + CENTRE_WEIGHT * dist, np.inf), iou


def greedy_match(cost: np.ndarray) -> np.ndarray:
    """One-to-one matching by ascending finite cost. Returns (N,) row index per column, -1 if none.

    >>> greedy_match(np.array([[0.1, 0.2], [0.3, np.inf]]))
    array([ 0, -1])
    """
    m, n = cost.shape
    match = np.full(n, -1, np.int64)
    if m == 0 or n == 0:
        return match
    rows, cols = np.nonzero(np.isfinite(cost))
    order = np.argsort(cost[rows, cols], kind="stable")
    row_used = np.zeros(m, bool)
    for r, c in zip(rows[order], cols[order], strict=True):
        if not row_used[r] and match[c] < 0:
            row_used[r] = True
            match[c] = r
    return match


def _chips_decide(
    cost: np.ndarray, match: np.ndarray, alike: np.ndarray, known: np.ndarray, gap: np.ndarray, have_chips: bool
) -> np.ndarray:
    """(N,) bool: matched detections whose rivals in cost (pairs within AMBIGUITY_MARGIN that
    share its track or its detection) the appearance vectors rule out: the face looks like its
    own track (`alike`, (M, N) bool), which was seen recently (`gap`, (M, 1) bool: not), and
    like none of the rival tracks, and no rival face looks like its track. known: (M, 1) bool,
    tracks with a vector to compare."""
    decided = np.zeros(len(match), bool)
    if not have_chips:
        return decided
    for c in np.flatnonzero(match >= 0):
        r = match[c]
        if not alike[r, c] or gap[r, 0]:
            continue
        near = cost[:, c] < cost[r, c] + AMBIGUITY_MARGIN
        near[r] = False
        rival_faces = cost[r] < cost[r, c] + AMBIGUITY_MARGIN
        rival_faces[c] = False
        decided[c] = bool(np.all(known[near, 0]) and not alike[near, c].any() and not alike[r, rival_faces].any())
    return decided


def _clear_matches(cost: np.ndarray, match: np.ndarray) -> np.ndarray:
    """(N,) bool: matched detections whose pair beats every rival pair by AMBIGUITY_MARGIN."""
    clear = np.zeros(len(match), bool)
    for c in np.flatnonzero(match >= 0):
        r = match[c]
        own = cost[r, c]
        rivals = np.concatenate([np.delete(cost[r], c), np.delete(cost[:, c], r)])
        clear[c] = bool(np.all(rivals >= own + AMBIGUITY_MARGIN))
    return clear


class Tracker:
    """Online tracker for one feed. Feed it each sampled frame's faces in time order.

    >>> from vidcluster.config import TracksConfig
    >>> tracker = Tracker(TracksConfig())
    >>> enc = lambda idx: np.ones((len(idx), 128), np.float32)
    >>> [int(tracker.step(t, np.array([[100, 100, 180, 180]]), np.array([0.8]), enc)[0]) for t in (0.0, 0.5, 1.0)]
    [0, 0, 0]
    >>> [len(t) for t in tracker.finish()]
    [3]
    """

    def __init__(self, cfg: TracksConfig, dim: int = DEFAULT_DIM):
        self.cfg = cfg
        self.dim = dim  # the encoder's vector size
        self._live: list[LiveTrack] = []
        self._ended: list[LiveTrack] = []
        self._next_id = 0
        self._next_face = 0

    def step(
        self, t_s: float, boxes: np.ndarray, quality: np.ndarray, encode: EncodeFn, chips: np.ndarray | None = None
    ) -> np.ndarray:
        """Link this frame's faces (boxes (N, 4) xyxy, quality (N,)) to tracks; returns (N,) int64
        local track ids. Calls `encode` at most once per step for this frame's faces that need a
        descriptor (a track that ends may also encode its last face, through the `encode` of
        the frame that face came from).

        chips: optional (N, D) float32 unit-norm appearance vectors (`faces.appearance`), the
        cheap signal that confirms each link; without them only gaps and the encode policy
        ask for descriptors.

        The ids are those of live tracks; `finish()` may later split a track, so use the
        `faces` of the tracks it returns as the final assignment.
        """
        cfg = self.cfg
        boxes, quality, chips = self._checked(boxes, quality, chips)
        n = len(boxes)
        self._end([tr for tr in self._live if t_s - tr.times[-1] > cfg.max_gap_s])
        if n == 0:
            return np.zeros(0, np.int64)

        dt, geo, iou = self._link_costs(t_s, boxes)
        alike, known = self._looks_alike(chips, n)
        gap = (dt > cfg.confirm_gap_s)[:, None] if cfg.confirm_links else np.zeros((len(self._live), 1), bool)
        strict = gap | (known & ~alike)
        provisional = greedy_match(geo)
        clear = _clear_matches(geo, provisional) | _chips_decide(geo, provisional, alike, known, gap, chips is not None)
        need = self._needs_descriptor(provisional, clear, iou, alike, gap, strict, quality)
        descriptors = _encode_some(encode, np.flatnonzero(need).astype(np.int64), n)
        final = self._rematch(provisional, need, geo, descriptors, strict)
        live = list(self._live)
        ids = self._attach(t_s, boxes, quality, chips, descriptors, live, final, encode)
        self._end_replaced(live, provisional, final)
        self._next_face += n
        return ids

    def _checked(
        self, boxes: np.ndarray, quality: np.ndarray, chips: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Boxes as (N, 4), quality as (N,) float64, chips dropped when links are not confirmed."""
        boxes = np.asarray(boxes).reshape(-1, 4)
        quality = np.asarray(quality, np.float64).reshape(-1)
        n = len(boxes)
        if len(quality) != n:
            raise ValueError(f"quality has {len(quality)} rows, boxes {n}")
        if chips is not None and len(chips) != n:
            raise ValueError(f"chips has {len(chips)} rows, boxes {n}")
        return boxes, quality, chips if self.cfg.confirm_links else None

    def _link_costs(self, t_s: float, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M,) seconds since each live track's last face, and the (M, N) position cost and IoU."""
        n = len(boxes)
        if not self._live:
            return np.zeros(0), np.zeros((0, n)), np.zeros((0, n))
        track_boxes = np.stack([tr.box for tr in self._live])
        dt = t_s - np.array([tr.times[-1] for tr in self._live])
        geo, iou = link_cost(track_boxes, boxes, dt, self.cfg.min_iou)
        return dt, geo, iou

    def _needs_descriptor(
        self,
        provisional: np.ndarray,
        clear: np.ndarray,
        iou: np.ndarray,
        alike: np.ndarray,
        gap: np.ndarray,
        strict: np.ndarray,
        quality: np.ndarray,
    ) -> np.ndarray:
        """(N,) bool: the faces that get a descriptor this step. Every face does, except a clear
        match that overlaps enough (or whose chip confirms it across no long gap) and needs no
        check and no encoding by the track's policy."""
        n = len(provisional)
        strong = np.zeros(n, bool)
        has = provisional >= 0
        strong[has] = iou[provisional[has], np.flatnonzero(has)] >= self.cfg.min_iou
        need = np.ones(n, bool)  # new tracks, ambiguity checks, weak links that the chip does not confirm
        for c in np.flatnonzero(clear):
            r = provisional[c]
            if strong[c] or (alike[r, c] and not gap[r, 0]):
                need[c] = bool(strict[r, c]) or self._live[r].wants_encoding(float(quality[c]), self.cfg)
        return need

    def _rematch(
        self, provisional: np.ndarray, need: np.ndarray, geo: np.ndarray, descriptors: list, strict: np.ndarray
    ) -> np.ndarray:
        """(N,) track row per face (-1: new track): clear matches left without a descriptor stand;
        the rest is matched again with the descriptors."""
        if not self._live:
            return provisional
        kept = ~need
        cost = self._with_descriptors(geo, descriptors, strict)
        cost[provisional[kept], :] = np.inf
        cost[:, kept] = np.inf
        return np.where(kept, provisional, greedy_match(cost))

    def _attach(
        self,
        t_s: float,
        boxes: np.ndarray,
        quality: np.ndarray,
        chips: np.ndarray | None,
        descriptors: list,
        live: list[LiveTrack],
        final: np.ndarray,
        encode: EncodeFn,
    ) -> np.ndarray:
        """Add each face to its track (`live[final[c]]`, or a new one); returns (N,) int64 track ids."""
        ids = np.empty(len(boxes), np.int64)
        for c in range(len(boxes)):
            if final[c] >= 0:
                tr = live[final[c]]
            else:
                tr = LiveTrack(id=self._next_id, dim=self.dim)
                self._next_id += 1
                self._live.append(tr)
            chip = None if chips is None else np.asarray(chips[c], np.float32)
            tr.add(self._next_face + c, float(t_s), boxes[c].copy(), float(quality[c]), descriptors[c], chip)
            tr.pending = (encode, c) if self.cfg.confirm_links and descriptors[c] is None else None
            ids[c] = tr.id
        return ids

    def _looks_alike(self, chips: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """((M, N) bool, (M, 1) bool): where a face's appearance vector correlates at least
        `min_appearance_corr` with the track's latest face or with one of its encoded faces
        (someone else does not look like either), and which tracks have vectors to compare."""
        m = len(self._live)
        alike, known = np.zeros((m, n), bool), np.zeros((m, 1), bool)
        if chips is None:
            return alike, known
        chips = np.asarray(chips, np.float32)
        for r, tr in enumerate(self._live):
            if tr.chip is not None:
                known[r] = True
                alike[r] = (chips @ tr.chip >= self.cfg.min_appearance_corr) | tr.looks_encoded(
                    chips, self.cfg.min_appearance_corr
                )
        return alike, known

    def _with_descriptors(
        self, geo: np.ndarray, descriptors: list[np.ndarray | None], strict: np.ndarray
    ) -> np.ndarray:
        """Add the descriptor term to the geometric cost; forbid pairs beyond max_distance, or
        beyond confirm_distance where the link needs confirming."""
        cfg = self.cfg
        cost = geo.copy()
        for c, vec in enumerate(descriptors):
            if vec is None:
                continue
            for r, tr in enumerate(self._live):
                if not np.isfinite(cost[r, c]):
                    continue
                weight = DESCRIPTOR_WEIGHT * (DESCRIPTOR_SCALE / cfg.max_distance)  # one cost scale for every encoder
                if tr.last_descriptor is None:
                    cost[r, c] += weight * cfg.max_distance / 2  # neutral
                    continue
                d = tr.distance(vec, to_all=cfg.confirm_links)
                limit = cfg.confirm_distance if strict[r, c] else cfg.max_distance
                cost[r, c] = np.inf if d > limit else cost[r, c] + weight * d
        return cost

    def _end_replaced(self, live: list[LiveTrack], provisional: np.ndarray, final: np.ndarray) -> None:
        """End tracks whose place was taken by someone else: their face by position was refused
        by its descriptor and no other face continues them. `live`: the tracks the matchings index."""
        if not self.cfg.confirm_links:
            return
        continued = set(final[final >= 0].tolist())
        replaced = {int(r) for r, f in zip(provisional, final, strict=True) if r >= 0 and f != r and r not in continued}
        self._end([live[r] for r in sorted(replaced)])

    def _end(self, tracks: list[LiveTrack]) -> None:
        """Move tracks from live to ended, encoding their last face where it has no descriptor."""
        if not tracks:
            return
        ending = {id(tr) for tr in tracks}
        for tr in tracks:
            tr.seal()
        self._ended.extend(tracks)
        self._live = [tr for tr in self._live if id(tr) not in ending]

    def cut(self) -> None:
        """End every live track: the picture changed wholesale (a scene cut in an edited export),
        so a face at the same place is no evidence of the same person."""
        self._end(list(self._live))

    def finish(self) -> list[Track]:
        """All tracks (ended and open), in order of their first face, after splitting identity
        switches. Encodes the last face of open tracks that lack a descriptor (once); otherwise
        does not change the tracker's state."""
        for tr in self._live:
            tr.seal()
        tracks = [
            t for tr in self._ended + self._live for t in tr.to_tracks(self.cfg.max_distance, self.cfg.confirm_links)
        ]
        tracks.sort(key=lambda t: int(t.faces[0]))
        return tracks


def _encode_some(encode: EncodeFn, wanted: np.ndarray, n: int) -> list[np.ndarray | None]:
    """Descriptors of the `wanted` faces of a frame in one `encode` call; None elsewhere and
    for faces whose descriptor came back non-finite."""
    descriptors: list[np.ndarray | None] = [None] * n
    if len(wanted):
        vecs = np.asarray(encode(wanted), np.float32).reshape(len(wanted), -1)
        for c, vec in zip(wanted, vecs, strict=True):
            descriptors[c] = vec if np.all(np.isfinite(vec)) else None
    return descriptors


def track_faces(
    times_s: np.ndarray,
    boxes: np.ndarray,
    quality: np.ndarray,
    frame_ids: np.ndarray,
    encode_all: Callable[[np.ndarray], np.ndarray],
    cfg: TracksConfig,
    chips: np.ndarray | None = None,
) -> list[Track]:
    """Offline twin of `Tracker`: track all faces of one feed at once.

    times_s (N,), boxes (N, 4), quality (N,), frame_ids (N,): faces of one feed; faces with
    the same frame id belong to one sampled frame (frames are processed by increasing time).
    encode_all: (K,) indexes into these N faces -> (K, 128) descriptors. chips: optional
    (N, D) appearance vectors. The returned tracks' `faces` index these N faces.
    """
    times_s = np.asarray(times_s, np.float64)
    frame_ids = np.asarray(frame_ids)
    tracker = Tracker(cfg)
    order = np.lexsort((np.arange(len(frame_ids)), frame_ids, times_s))
    fids = frame_ids[order]
    starts = np.flatnonzero(np.r_[True, fids[1:] != fids[:-1]]) if len(order) else np.zeros(0, np.int64)

    def encode_frame(idx: np.ndarray) -> EncodeFn:
        """`encode_all` for one frame's faces: k indexes that frame's faces, not all N."""
        return lambda k: encode_all(idx[k])

    for s, e in zip(starts, np.r_[starts[1:], len(order)].astype(np.int64), strict=True):
        idx = order[s:e]
        tracker.step(
            float(times_s[idx[0]]), boxes[idx], quality[idx], encode_frame(idx), None if chips is None else chips[idx]
        )
    tracks = tracker.finish()
    return [
        Track(faces=order[t.faces].astype(np.int64), times_s=t.times_s, embeddings=t.embeddings, quality=t.quality)
        for t in tracks
    ]


def cannot_link_pairs(tracks_start_end: np.ndarray, feed_ids: np.ndarray) -> np.ndarray:
    """(P, 2) int64 pairs (i < j) of tracks of the same feed whose time spans overlap
    (ends included): they were seen at the same time, so they are never one person.

    tracks_start_end: (M, 2) float64 start/end seconds on the feed's clock; feed_ids: (M,).
    Sort-and-search per feed, vectorised; output size dominates the cost.

    >>> cannot_link_pairs(np.array([[0, 5], [4, 8], [9, 10], [0, 10.0]]), np.array([0, 0, 0, 1]))
    array([[0, 1]])
    """
    se = np.asarray(tracks_start_end, np.float64).reshape(-1, 2)
    feeds = np.asarray(feed_ids).reshape(-1)
    if len(se) != len(feeds):
        raise ValueError(f"{len(se)} tracks but {len(feeds)} feed ids")
    parts = []
    for feed in np.unique(feeds):
        members = np.flatnonzero(feeds == feed)
        members = members[np.argsort(se[members, 0], kind="stable")]
        starts, ends = se[members, 0], se[members, 1]
        # tracks after i (in start order) overlap i exactly when they start no later than i ends
        hi = np.searchsorted(starts, ends, side="right")
        counts = np.maximum(hi - np.arange(len(members)) - 1, 0)
        if counts.sum() == 0:
            continue
        first = np.repeat(np.arange(len(members)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        second = first + 1 + offsets
        a, b = members[first], members[second]
        parts.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    if not parts:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(parts).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]

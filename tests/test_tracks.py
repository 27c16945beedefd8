"""Tracking on synthetic box sequences with a fake, counting descriptor function."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tests_support import dlib_tracks

from vidcluster.analysis.track_state import Track
from vidcluster.analysis.tracks import Tracker, box_iou, cannot_link_pairs, greedy_match, link_cost, track_faces
from vidcluster.config import TracksConfig, load_config
from vidcluster.errors import ConfigError

CFG = dlib_tracks()  # the fake descriptors below are dlib-shaped
DT = 0.5  # seconds between samples (2 fps)


class FakeEncoder:
    """Descriptors per person: a random base vector plus noise, so that faces of one person
    are ~0.2 apart and different people ~0.8 apart. Counts faces encoded and calls made."""

    def __init__(self, n_people: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        base = rng.normal(size=(n_people, 128))
        self.base = base / np.linalg.norm(base, axis=1, keepdims=True) * (0.8 / np.sqrt(2))
        self.rng = rng
        self.faces = 0
        self.calls = 0

    def vectors(self, people: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(size=(len(people), 128)) * (0.2 / np.sqrt(2 * 128))
        return (self.base[people] + noise).astype(np.float32)

    def chips(self, people: np.ndarray, dim: int = 64) -> np.ndarray:
        """Unit appearance vectors: one person's correlate ~0.95, two people's ~0.5."""
        rng = np.random.default_rng(7)
        common = rng.normal(size=dim)
        own = rng.normal(size=(16, dim))
        vec = common + own[people] + self.rng.normal(size=(len(people), dim)) * 0.23
        return (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)


def box(cx: float, cy: float, size: float = 80) -> list[int]:
    return [round(cx - size / 2), round(cy - size / 2), round(cx + size / 2), round(cy + size / 2)]


def run(frames: list[list[tuple[int, list[int]]]], n_people: int, cfg: TracksConfig = CFG, times=None, chips=True):
    """frames: per sample, (person, box) pairs. Returns (tracks, encoder, person per face).

    Each frame's encode function may be called once in its own step and once more later
    (for the last face of a track that ends), never twice for one face."""
    enc = FakeEncoder(n_people)
    tracker = Tracker(cfg)
    people_of_face: list[int] = []
    calls: list[int] = []
    for k, faces in enumerate(frames):
        people = np.array([p for p, _ in faces], np.int64)
        boxes = np.array([b for _, b in faces], np.int64).reshape(-1, 4)
        calls.append(0)
        done: set[int] = set()

        def encode(idx: np.ndarray, people=people, k=k, done=done) -> np.ndarray:
            enc.calls += 1
            enc.faces += len(idx)
            calls[k] += 1
            assert idx.dtype == np.int64 and len(set(idx.tolist())) == len(idx)
            assert not done & set(idx.tolist()), "a face was encoded twice"
            done.update(idx.tolist())
            return enc.vectors(people[idx])

        t = times[k] if times is not None else k * DT
        ids = tracker.step(t, boxes, np.full(len(faces), 0.8), encode, enc.chips(people) if chips else None)
        assert calls[k] <= 1
        assert ids.shape == (len(faces),) and ids.dtype == np.int64
        assert len(set(ids.tolist())) == len(ids)  # two faces of one frame never share a track
        people_of_face += people.tolist()
    tracks = tracker.finish()
    assert max(calls, default=0) <= 2
    return tracks, enc, np.array(people_of_face)


def persons(tracks: list[Track], people_of_face: np.ndarray) -> list[set[int]]:
    return [set(people_of_face[t.faces].tolist()) for t in tracks]


def test_single_person_walking_is_one_track_with_few_encodes():
    frames = [[(0, box(100 + 30 * k, 200 + 5 * k))] for k in range(40)]
    tracks, enc, _ = run(frames, 1)
    assert len(tracks) == 1 and len(tracks[0]) == 40
    assert enc.faces <= CFG.max_encodings < 40 / 4
    assert tracks[0].encoded.sum() == enc.faces
    assert tracks[0].start_s == 0.0 and tracks[0].end_s == pytest.approx(39 * DT)


def test_two_people_side_by_side_are_two_tracks():
    frames = [[(0, box(200 + 5 * k, 200)), (1, box(320 + 5 * k, 200))] for k in range(20)]
    tracks, enc, people = run(frames, 2)
    assert persons(tracks, people) == [{0}, {1}]
    assert enc.faces <= 2 * CFG.max_encodings


def test_crossing_paths_keep_their_people():
    # person 0 walks right, person 1 walks left along the same line; their boxes overlap
    # for several samples, and the listing order flips so position alone would confuse them
    frames = []
    for k in range(20):
        a, b = (0, box(100 + 25 * k, 200)), (1, box(575 - 25 * k, 205))
        frames.append([a, b] if k % 2 else [b, a])
    tracks, _enc, people = run(frames, 2)
    assert sorted(map(sorted, persons(tracks, people))) == [[0], [1]]
    assert [len(t) for t in tracks] == [20, 20]


@pytest.mark.parametrize(
    "gap_s, n_tracks",
    [
        (1.0, 1),  # one missed sample: the track survives
        (1.5, 1),  # exactly max_gap_s
        (2.0, 2),  # longer than max_gap_s: the track ended
        (5.0, 2),
    ],
)
def test_missed_detections(gap_s, n_tracks):
    times = [0.0, 0.5, 1.0, 1.0 + gap_s, 1.5 + gap_s, 2.0 + gap_s]
    frames = [[(0, box(200 + 10 * k, 200))] for k in range(len(times))]
    tracks, _, _ = run(frames, 1, times=times)
    assert len(tracks) == n_tracks
    assert sum(len(t) for t in tracks) == len(times)


def test_person_replaced_in_place_starts_a_new_track():
    # the same spot, a different person from one sample on: descriptors refuse the link
    cfg = replace(CFG, encode_every=1)
    frames = [[(0 if k < 6 else 1, box(300, 200))] for k in range(12)]
    tracks, _, people = run(frames, 2, cfg)
    assert persons(tracks, people) == [{0}, {1}]


def _replaced(gap_s: float = 0.0, switch_at: int = 6, n: int = 12):
    """Person 0 sits at one spot, then person 1 at the same spot after `gap_s` seconds."""
    frames = [[(0 if k < switch_at else 1, box(300, 200))] for k in range(n)]
    times = [k * DT + (gap_s if k >= switch_at else 0.0) for k in range(n)]
    return frames, times


def _swapped(n: int = 12, switch_at: int = 3):
    """Two people side by side swap places between two samples (before the periodic re-encode)."""
    frames = [
        [(0, box(300, 200)), (1, box(360, 200))] if k < switch_at else [(1, box(300, 200)), (0, box(360, 200))]
        for k in range(n)
    ]
    return frames, [k * DT for k in range(n)]


def _crossing(n: int = 20):
    frames = []
    for k in range(n):
        a, b = (0, box(100 + 25 * k, 200)), (1, box(575 - 25 * k, 205))
        frames.append([a, b] if k % 2 else [b, a])
    return frames, [k * DT for k in range(n)]


@pytest.mark.parametrize(
    "case, chips, expected",
    [
        (_replaced(), True, [{0}, {1}]),  # the chip disagrees at the switch: the descriptor refuses the link
        (_replaced(switch_at=3), True, [{0}, {1}]),  # before the track's first periodic re-encode
        (_replaced(gap_s=0.6), False, [{0}, {1}]),  # no chips; the gap alone asks for confirmation
        (_replaced(gap_s=0.6), True, [{0}, {1}]),
        (_crossing(), True, [{0}, {1}]),
        (_crossing(), False, [{0}, {1}]),
        (_swapped(), True, [{0}, {1}]),  # the chips disagree at the swap: descriptors refuse both links by position
    ],
)
def test_every_track_holds_one_person(case, chips, expected):
    frames, times = case
    tracks, _, people = run(frames, 2, times=times, chips=chips)
    assert sorted(persons(tracks, people), key=min) == expected
    assert sum(len(t) for t in tracks) == len(people)


@pytest.mark.parametrize("case", [_replaced(switch_at=3), _swapped()])
def test_without_confirmation_position_alone_mixes_a_replaced_person(case):
    # what confirm_links=false (the old tracker) does: a strong overlap links B to A's track,
    # and with the switch between two periodic descriptors the split lands late or not at all
    frames, times = case
    tracks, _, people = run(frames, 2, replace(CFG, confirm_links=False), times=times)
    assert any(len(p) > 1 for p in persons(tracks, people))


@pytest.mark.parametrize("chips", [False, True])
def test_descriptors_cover_start_and_end_within_budget(chips):
    # the last face is encoded as the track ends, even when its chip looks like an encoded face
    # (chips are too coarse to say its descriptor would add nothing)
    frames = [[(0, box(100 + 30 * k, 200 + 5 * k))] for k in range(40)]
    tracks, enc, _ = run(frames, 1, chips=chips)
    assert len(tracks) == 1
    assert tracks[0].encoded[0] and tracks[0].encoded[-1]
    assert enc.faces <= CFG.max_encodings + 1  # the policy's budget, plus the last face


def _steps(tracker: Tracker, boxes: list[list[int]], chips: np.ndarray, enc: FakeEncoder, person: int = 0) -> list[int]:
    """Feed one face per sample; returns how many faces each step encoded."""
    counts = []
    for k, (b, chip) in enumerate(zip(boxes, chips, strict=True)):
        before = enc.faces

        def encode(idx: np.ndarray) -> np.ndarray:
            enc.faces += len(idx)
            return enc.vectors(np.full(len(idx), person))

        tracker.step(k * DT, np.array([b]), np.array([0.8]), encode, chip[None])
        counts.append(enc.faces - before)
    return counts


def _unit(*parts: float, dim: int = 8) -> np.ndarray:
    vec = np.zeros(dim, np.float32)
    vec[: len(parts)] = parts
    return vec / np.linalg.norm(vec)


A, B = _unit(1.0), _unit(0.5, np.sqrt(0.75))  # two looks of one face, correlation 0.5


@pytest.mark.parametrize(
    "looks, moves, expected",
    [
        # the chip agrees with the latest face: no descriptor after the first (budget off)
        ([A, A, A, A], 0, [1, 0, 0, 0]),
        # the face moves by most of a width per sample (a weak overlap): the agreeing chip confirms it
        ([A, A, A, A], 70, [1, 0, 0, 0]),
        # a new look is confirmed by a descriptor; going back to a look already encoded is not
        ([A, B, A, B], 0, [1, 1, 0, 0]),
        ([A, B, A, B], 70, [1, 1, 0, 0]),
    ],
)
def test_a_decisive_chip_needs_no_descriptor(looks, moves, expected):
    cfg = replace(CFG, encode_every=1000)
    tracker = Tracker(cfg)
    counts = _steps(tracker, [box(100 + moves * k, 200) for k in range(len(looks))], np.stack(looks), FakeEncoder(1))
    assert counts == expected
    tracks = tracker.finish()  # the last face has no descriptor yet: finish encodes it
    assert len(tracks) == 1 and tracks[0].encoded.sum() == sum(expected) + 1 and tracks[0].encoded[-1]


@pytest.mark.parametrize(
    "looks, expected",
    [
        ((A, B), [2, 0, 0, 0, 0, 0]),  # the chips tell the two apart: geometry's doubt costs no descriptor
        ((A, A), [2, 2, 2, 2, 2, 2]),  # they look alike: descriptors decide every step
    ],
)
def test_chips_settle_an_ambiguous_match(looks, expected):
    # two people side by side, so close that either box could continue either track by position
    tracker = Tracker(replace(CFG, encode_every=1000))
    enc = FakeEncoder(2)
    counts = []
    for k in range(len(expected)):
        before = enc.faces

        def encode(idx: np.ndarray) -> np.ndarray:
            enc.faces += len(idx)
            return enc.vectors(np.asarray(idx, np.int64))

        boxes = np.array([box(300 + 4 * k, 200), box(315 + 4 * k, 200)])
        tracker.step(k * DT, boxes, np.array([0.8, 0.8]), encode, np.stack(looks))
        counts.append(enc.faces - before)
    assert counts == expected
    tracks = tracker.finish()
    assert [t.faces.tolist() for t in tracks] == [list(range(0, 12, 2)), list(range(1, 12, 2))]


def test_without_chips_weak_links_and_the_end_are_encoded():
    tracker = Tracker(replace(CFG, encode_every=1000))
    enc = FakeEncoder(1)
    for k in range(4):
        tracker.step(
            k * DT,
            np.array([box(100 + 70 * k, 200)]),
            np.array([0.8]),
            lambda idx: enc.vectors(np.zeros(len(idx), np.int64)),
        )
    assert tracker.finish()[0].encoded.tolist() == [True, True, True, True]  # every link weak


def test_split_lands_where_appearance_changed():
    # no descriptor at the switch (confirmation off), but chips show where it happened
    tracker = Tracker(replace(CFG, confirm_links=False, encode_every=5))
    enc = FakeEncoder(2)
    for k in range(10):
        person = np.array([0 if k < 3 else 1])
        tracker.step(k * DT, np.array([box(300, 200)]), np.array([0.8]), lambda idx, p=person: enc.vectors(p))
    assert next(t.faces.tolist() for t in tracker.finish()) != [0, 1, 2]  # without chips: split late
    # chips that never ask for a descriptor and a descriptor gate that never refuses a link
    tracker = Tracker(replace(CFG, encode_every=5, min_appearance_corr=-1.0, confirm_gap_s=600, max_distance=2.0))
    for k in range(10):
        person = np.array([0 if k < 3 else 1])
        tracker.step(
            k * DT, np.array([box(300, 200)]), np.array([0.8]), lambda idx, p=person: enc.vectors(p), enc.chips(person)
        )
    # the periodic descriptor at face 5 disagrees with face 0, and the chips put the switch at face 3
    tracker.cfg = replace(tracker.cfg, max_distance=0.6)
    assert [t.faces.tolist() for t in tracker.finish()] == [[0, 1, 2], [3, 4, 5, 6, 7, 8, 9]]


def test_identity_switch_is_split_in_finish():
    # feed the tracker descriptors that change identity mid-track while the geometry is
    # smooth and the descriptor gate is off; finish() must cut at the switch
    tracker = Tracker(replace(CFG, encode_every=1, max_distance=2.0))
    enc = FakeEncoder(2)
    for k in range(10):
        person = 0 if k < 5 else 1

        def encode(idx, p=person):
            return enc.vectors(np.array([p]))

        tracker.step(k * DT, np.array([box(300, 200)]), np.array([0.8]), encode)
    assert len(tracker.finish()) == 1
    tracker.cfg = replace(tracker.cfg, max_distance=0.6)
    tracks = tracker.finish()
    assert [t.faces.tolist() for t in tracks] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_track_descriptor_and_best():
    emb = np.full((4, 128), np.nan, np.float32)
    emb[0], emb[2], emb[3] = 1.0, 3.0, 5.0
    t = Track(
        faces=np.arange(4, dtype=np.int64),
        times_s=np.arange(4.0),
        embeddings=emb,
        quality=np.array([0.2, 0.9, 0.5, 0.4], np.float32),
    )
    assert t.best == 1
    assert t.descriptor(1)[0] == 3.0  # best encoded face only
    assert t.descriptor(2)[0] == 4.0
    assert t.descriptor(10)[0] == pytest.approx(3.0)
    no_enc = Track(t.faces, t.times_s, np.full((4, 128), np.nan, np.float32), t.quality)
    assert no_enc.descriptor(8) is None


@pytest.mark.parametrize(
    "k, n_times, emb_shape",
    [
        (0, 0, (0, 128)),  # no faces
        (2, 2, (3, 128)),  # descriptors out of step with faces
        (2, 2, (2,)),  # not one descriptor per face
        (2, 3, (2, 128)),  # times out of step with faces
    ],
)
def test_track_rejects_bad_shapes(k, n_times, emb_shape):
    with pytest.raises(ValueError):
        Track(np.zeros(k, np.int64), np.zeros(n_times), np.zeros(emb_shape, np.float32), np.zeros(k, np.float32))


def test_a_track_takes_the_encoders_vector_size():
    tracker = Tracker(CFG, dim=512)
    rng = np.random.default_rng(0)
    face = rng.normal(size=512)
    face /= np.linalg.norm(face)  # one person: the same unit vector, a little noise each time
    box = np.array([[10, 10, 60, 60]])
    for i in range(3):
        tracker.step(i * DT, box + 2 * i, np.ones(1), lambda rows: face + rng.normal(size=(len(rows), 512)) * 1e-3)
    (track,) = tracker.finish()
    assert track.embeddings.shape == (3, 512) and track.descriptor(8).shape == (512,)


def test_empty_steps_and_quality_mismatch():
    tracker = Tracker(CFG)
    assert tracker.step(0.0, np.zeros((0, 4)), np.zeros(0), lambda i: pytest.fail("no faces to encode")).shape == (0,)
    assert tracker.finish() == []
    with pytest.raises(ValueError):
        tracker.step(0.5, np.zeros((2, 4)), np.zeros(1), lambda i: np.zeros((len(i), 128), np.float32))


def test_track_faces_offline_matches_inputs():
    # two people, faces given out of order; the returned indexes refer to the input rows
    enc = FakeEncoder(2)
    rows = [(k * DT, k, p, box(200 + 120 * p + 4 * k, 200)) for k in range(10) for p in (1, 0)]
    rng = np.random.default_rng(1)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    times = np.array([r[0] for r in rows])
    frames = np.array([r[1] for r in rows])
    people = np.array([r[2] for r in rows])
    boxes = np.array([r[3] for r in rows])
    tracks = track_faces(
        times, boxes, np.full(len(rows), 0.7), frames, lambda i: enc.vectors(people[i]), CFG, chips=enc.chips(people)
    )
    assert sorted(map(sorted, persons(tracks, people))) == [[0], [1]]
    assert sorted(np.concatenate([t.faces for t in tracks]).tolist()) == list(range(len(rows)))
    for t in tracks:
        assert np.all(np.diff(times[t.faces]) > 0)


def test_geometry_helpers():
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]]))[0, 0] == 1.0
    candidates = np.array([box(110, 100), box(400, 100), box(100, 100, 200)])
    cost, _ = link_cost(np.array([box(100, 100)]), candidates, np.array([DT]), 0.1)
    assert np.isfinite(cost[0, 0]) and np.isinf(cost[0, 1]) and np.isinf(cost[0, 2])  # near; far; size jump
    assert greedy_match(np.array([[1.0, 0.5], [0.2, 0.3]])).tolist() == [1, 0]


@pytest.mark.parametrize(
    "spans, feeds, expected",
    [
        ([], [], []),
        ([[0, 5], [6, 8]], [0, 0], []),  # one after the other
        ([[0, 5], [5, 8]], [0, 0], [[0, 1]]),  # touching ends: seen in the same sample
        ([[0, 5], [1, 2], [3, 9], [10, 11]], [0, 0, 0, 0], [[0, 1], [0, 2]]),
        ([[4, 9], [0, 5]], [3, 3], [[0, 1]]),  # unsorted input
        ([[0, 5], [1, 4]], [0, 1], []),  # different feeds never conflict
        ([[0, 10], [1, 2], [0, 3], [20, 30], [25, 26]], [1, 1, 2, 1, 2], [[0, 1]]),
    ],
)
def test_cannot_link_pairs_table(spans, feeds, expected):
    pairs = cannot_link_pairs(np.array(spans, np.float64).reshape(-1, 2), np.array(feeds, np.int64))
    assert pairs.dtype == np.int64 and pairs.shape == (len(expected), 2)
    assert pairs.tolist() == expected


def test_cannot_link_pairs_matches_brute_force_and_scales():
    rng = np.random.default_rng(0)
    m = 300
    start = rng.uniform(0, 100, m)
    spans = np.stack([start, start + rng.exponential(3, m)], axis=1)
    feeds = rng.integers(0, 4, m)
    i, j = np.triu_indices(m, 1)
    overlap = (feeds[i] == feeds[j]) & (spans[i, 0] <= spans[j, 1]) & (spans[j, 0] <= spans[i, 1])
    assert cannot_link_pairs(spans, feeds).tolist() == np.stack([i[overlap], j[overlap]], 1).tolist()

    n = 50_000  # a long run: tens of thousands of short tracks on 20 feeds
    start = rng.uniform(0, 36_000, n)
    big = cannot_link_pairs(np.stack([start, start + rng.exponential(4, n)], 1), rng.integers(0, 20, n))
    assert big.ndim == 2 and big.shape[1] == 2 and np.all(big[:, 0] < big[:, 1])


def test_cut_ends_every_live_track():
    """After a scene cut a face at the same place is someone else until descriptors say otherwise."""
    tracker = Tracker(dlib_tracks())
    box = np.array([[100, 100, 180, 180]])

    def enc(idx):
        return np.ones((len(idx), 128), np.float32)

    first = tracker.step(0.0, box, np.array([0.8]), enc)
    tracker.cut()
    second = tracker.step(0.5, box, np.array([0.8]), enc)
    assert first[0] != second[0] and [len(t) for t in tracker.finish()] == [1, 1]


@pytest.mark.parametrize(
    "tracks, field",
    [
        ({"min_appearance_corr": 1.5}, "tracks.min_appearance_corr"),
        ({"confirm_distance": -0.1}, "tracks.confirm_distance"),
        ({"confirm_gap_s": "long"}, "tracks.confirm_gap_s"),
        ({"confirm_links": "yes"}, "tracks.confirm_links"),
        ({"structure_cuts": 1}, "tracks.structure_cuts"),
    ],
)
def test_confirmation_settings_are_checked(tracks, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(overrides={"tracks": tracks})


def test_chips_must_match_the_faces():
    with pytest.raises(ValueError, match="chips"):
        Tracker(CFG).step(0.0, np.zeros((2, 4)), np.zeros(2), lambda i: np.zeros((len(i), 128)), np.zeros((1, 64)))

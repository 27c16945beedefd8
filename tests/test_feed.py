from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from conftest import data_path

from benchmarks.synth import background
from vidcluster.analysis.feed import (
    ChangeGate,
    edge_signature,
    face_crop,
    is_scene_cut,
    is_structure_cut,
    scene_signature,
)
from vidcluster.types import Frame


def frame(image: np.ndarray, t: float) -> Frame:
    return Frame(image, int(t * 1000), Fraction(1, 1000), 0)


@pytest.fixture
def empty_scene():
    rng = np.random.default_rng(0)
    return rng.integers(60, 120, (180, 320, 3)).astype(np.uint8)


def test_change_gate_uses_the_luma_plane_without_converting(empty_scene):
    """With a luma view (as the sampler gives it) the gate never converts a skipped frame to RGB."""
    import cv2

    grey = cv2.cvtColor(empty_scene, cv2.COLOR_RGB2GRAY)

    def lazy(t: float, luma: np.ndarray) -> Frame:
        def convert():
            raise AssertionError("a skipped frame was converted to RGB")

        return Frame(convert, int(t * 1000), Fraction(1, 1000), 0, lambda: luma)

    gate = ChangeGate(threshold=8.0, max_skip_s=10.0)
    gate.searched(frame(empty_scene, 0.0), n_faces=0)  # reference from RGB ...
    assert not gate.needs_detection(lazy(0.5, grey))  # ... compared with luma: the same picture
    changed = grey.copy()
    changed[40:100, 100:160] = 250
    assert gate.needs_detection(lazy(1.0, changed))


def test_change_gate_skips_only_unchanged_empty_frames(empty_scene):
    gate = ChangeGate(threshold=8.0, max_skip_s=10.0)
    assert gate.needs_detection(frame(empty_scene, 0.0))  # nothing to compare with yet
    gate.searched(frame(empty_scene, 0.0), n_faces=0)
    noisy = np.clip(empty_scene.astype(int) + np.random.default_rng(1).integers(-6, 7, empty_scene.shape), 0, 255)
    assert not gate.needs_detection(frame(noisy.astype(np.uint8), 0.5))  # sensor noise only
    entering = empty_scene.copy()
    entering[60:120, 0:40] = 230  # someone steps into one corner
    assert gate.needs_detection(frame(entering, 1.0))
    assert gate.needs_detection(frame(empty_scene, 10.5))  # searched at least every max_skip_s
    gate.searched(frame(empty_scene, 11.0), n_faces=1)
    assert gate.needs_detection(frame(empty_scene, 11.5))  # a face was there: always look again
    assert gate.skipped == 1


def test_scene_cut_signature(empty_scene):
    shifted = np.roll(empty_scene, 20, axis=1)  # the camera pans a little
    other = np.zeros_like(empty_scene)
    other[..., 2] = 200  # a different, blue scene
    a = scene_signature(empty_scene)
    assert not is_scene_cut(a, scene_signature(shifted))
    assert is_scene_cut(a, scene_signature(other))


@pytest.mark.parametrize("box", [[10, 10, 50, 60], [-20, -20, 30, 30], [300, 160, 340, 200]])
def test_face_crop_is_square_and_padded_at_borders(empty_scene, box):
    crop = face_crop(empty_scene, np.array(box), 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8


def _scene(seed: int = 3) -> np.ndarray:
    return background(np.random.default_rng(seed), (320, 180), 0)


def _reframed(image: np.ndarray, zoom: float = 1.25) -> np.ndarray:
    """The same set shot closer: same colours, different picture."""
    h, w = image.shape[:2]
    ch, cw = int(h / zoom), int(w / zoom)
    return cv2.resize(image[(h - ch) // 3 : (h - ch) // 3 + ch, (w - cw) // 2 : (w - cw) // 2 + cw], (w, h))


def _noisy_dark() -> np.ndarray:
    return np.random.default_rng(2).integers(8, 16, (180, 320, 3)).astype(np.uint8)


def _walker(image: np.ndarray, x: int) -> np.ndarray:
    out = image.copy()
    cv2.ellipse(out, (x, 110), (22, 60), 0, 0, 360, (40, 60, 200), -1)
    cv2.circle(out, (x, 40), 16, (200, 170, 150), -1)
    return out


@pytest.mark.parametrize(
    "before, after, cut",
    [
        (_scene(), _reframed(_scene()), True),  # a new shot of the same set
        (_scene(), _scene(9), True),  # another scene
        (_scene(), np.roll(_scene(), 2, axis=1), False),  # camera shake
        (_walker(_scene(), 100), _walker(_scene(), 130), False),  # someone walks
        (_scene(), _walker(_scene(), 160), False),  # someone enters
        (np.full((180, 320, 3), 12, np.uint8), _noisy_dark(), False),  # a dark picture has no structure to compare
    ],
)
def test_structure_cut_table(before, after, cut):
    assert is_structure_cut(edge_signature(before), edge_signature(after)) is cut
    assert not is_structure_cut(None, edge_signature(after))


def test_a_reframed_shot_keeps_its_colours(empty_scene):
    # what the colour detector alone misses, and why the structure test exists
    a = _scene()
    assert not is_scene_cut(scene_signature(a), scene_signature(_reframed(a)))


def _samples(path, fps: float = 2.0):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_s = 0.0
        for f in container.decode(stream):
            if float(f.pts * f.time_base) + 1e-6 >= next_s:
                next_s += 1 / fps
                yield f.to_ndarray(format="rgb24")


@pytest.mark.parametrize(
    "parts",
    [
        ("crowd", "arcade_1080p.mp4"),  # a real crowd walking towards the camera
        ("cctv-asl", "entrance", "entrance_20260314-132005.mkv"),  # people close to CCTV cameras
        ("cctv-asl", "office", "office_20260314-132540.mkv"),
    ],
)
def test_no_cut_in_real_uncut_footage(parts):
    previous = None
    for image in _samples(data_path(*parts)):
        edges, colours = edge_signature(image), scene_signature(image)
        if previous is not None:
            assert not is_structure_cut(previous[0], edges) and not is_scene_cut(previous[1], colours)
        previous = edges, colours


@pytest.fixture(scope="module")
def seated_frames():
    """One person sitting still in a wide shot of a dressed set: two samples of one shot, then two
    of a closer shot of the same set. (In a close-up the guest hides most of the set, and the
    structure test, which judges only the set around people, may have no verdict.)"""
    from benchmarks import synth

    photos = synth.labelled_photos(data_path("photos-deepface", "images"))
    person, paths = next((p, v) for p, v in photos.items() if synth.face_cuts({p: v[:1]}))
    cut = synth.face_cuts({person: paths[:1]})[person][0]
    walker = synth.seated(person, 0, 0.0, 10.0, size=0.2)
    scene = background(np.random.default_rng(5), (640, 360), 0, synth.STUDIO_PIECES)
    frames = []
    for k, shot in enumerate(
        [scene, scene, synth.reframe(scene, synth.CUT_ZOOM), synth.reframe(scene, synth.CUT_ZOOM)]
    ):
        image = shot.copy()
        synth.draw_walker(image, walker, cut, 0.5 * k)
        frames.append(frame(image, 0.5 * k))
    return frames


@pytest.mark.parametrize("structure_cuts, lengths", [(True, [2, 2]), (False, [4])])
def test_a_cut_ends_tracks_even_for_the_same_face_in_the_same_place(seated_frames, structure_cuts, lengths):
    from tests_support import dlib_config

    from vidcluster.analysis.feed import FeedProcessor
    from vidcluster.models.dlib_models import detect_hog
    from vidcluster.models.registry import make_models
    from vidcluster.types import Detections
    from vidcluster.video.sampler import SampleStats

    cfg = dlib_config({"tracks": {"structure_cuts": structure_cuts}})  # HOG's boxes: dlib's landmarks
    feed = FeedProcessor(cfg, make_models(cfg.faces))
    for f in seated_frames:
        boxes, scores = detect_hog(f.image, 640, 1)
        assert len(boxes) == 1
        feed.add(f, Detections(boxes, scores))
    result = feed.finish(SampleStats())
    assert [len(t.face_rows) for t in result.tracks] == lengths
    for track in result.tracks:  # every track's first and last face carry a descriptor
        assert result.faces.encoded[track.face_rows[[0, -1]]].all()

from fractions import Fraction

import numpy as np
import pytest

from vidcluster.feed import ChangeGate, face_crop, is_scene_cut, scene_signature
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

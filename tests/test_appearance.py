"""faces.appearance: the cheap per-face signal that confirms track links."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import data_path

from benchmarks.synth import labelled_photos
from vidcluster.models import dlib_models as facelib


def _face(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    boxes, _ = facelib.detect_hog(image, 640, 1)
    boxes = boxes[:1]
    return image, boxes, facelib.landmarks(image, boxes)


@pytest.fixture(scope="module")
def two_people():
    people = labelled_photos(data_path("photos-johns"))
    names = sorted(people)[:2]
    return [_face(people[name][0]) for name in names]


def test_shape_norm_and_empty(two_people):
    image, _boxes, points = two_people[0]
    vec = facelib.appearance(image, points, size=24)
    assert vec.shape == (1, 24 * 24) and vec.dtype == np.float32
    assert np.linalg.norm(vec[0]) == pytest.approx(1.0, abs=1e-5)
    assert facelib.appearance(image, points[:0]).shape == (0, 32 * 32)


def test_same_face_moved_and_relit_correlates_better_than_another_person(two_people):
    (image, boxes, points), (other, _other_boxes, other_points) = two_people
    a = facelib.appearance(image, points)[0]
    # the same face 7 px further right and 20 % brighter: alignment and normalisation absorb both
    moved = np.clip(np.roll(image, 7, axis=1).astype(np.float32) * 1.2, 0, 255).astype(np.uint8)
    shifted_boxes = boxes + np.array([7, 0, 7, 0])
    b = facelib.appearance(moved, facelib.landmarks(moved, shifted_boxes))[0]
    c = facelib.appearance(other, other_points)[0]
    assert float(a @ b) > 0.9
    assert float(a @ c) < float(a @ b) - 0.1

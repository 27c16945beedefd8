"""The models seam: encoder names, profiles and classes agree; the ONNX graph equals dlib; thresholds
follow the encoder; a case never mixes descriptor spaces."""

import numpy as np
import pytest
from tests_support import load_rgb

from vidcluster.case.store import Store
from vidcluster.catalog import DEFAULT_ENCODER, ENCODERS, PROFILE_FIELDS, profile_of, profile_values
from vidcluster.config import FacesConfig, IdentitiesConfig, TracksConfig, load_config
from vidcluster.errors import ConfigError, InputError
from vidcluster.models import dlib_models, registry, runtime
from vidcluster.models.base import FaceModels
from vidcluster.models.detectors import HogDetector, YunetDetector
from vidcluster.models.encoders import DlibEncoder, DlibReferenceEncoder, SFaceEncoder
from vidcluster.run.pipeline import check_encoder


def test_every_catalogued_encoder_has_a_class_of_that_spec():
    assert set(registry.ENCODER_CLASSES) == set(ENCODERS)
    for name, cls in registry.ENCODER_CLASSES.items():
        assert cls.spec is ENCODERS[name]


def test_config_defaults_are_the_default_encoders_profile():
    defaults = {("identities", f): getattr(IdentitiesConfig(), f) for f in ("eps", "eps_mean", "eps_average", "min_spread")}
    defaults.update({("tracks", f): getattr(TracksConfig(), f) for f in ("max_distance", "confirm_distance")})
    assert defaults == profile_values(DEFAULT_ENCODER)


@pytest.mark.parametrize("given", [{}, {"identities": {"eps": 0.9}}])
def test_an_encoder_brings_its_own_thresholds_unless_set(given):
    cfg = load_config(None, {"faces": {"encoder": "sface"}, **given})
    for (section, name), attr in PROFILE_FIELDS.items():
        expected = given.get(section, {}).get(name, getattr(profile_of("sface"), attr))
        assert getattr(getattr(cfg, section), name) == expected


def test_an_unknown_encoder_names_the_field():
    with pytest.raises(ConfigError, match=r"faces\.encoder"):
        load_config(None, {"faces": {"encoder": "facenet"}})


def test_sface_needs_a_detector_with_key_points():
    with pytest.raises(ConfigError, match=r"faces\.encoder"):
        registry.make_models(FacesConfig(detector="hog", encoder="sface", device="cpu"))
    models = registry.make_models(FacesConfig(detector="yunet", encoder="sface", device="cpu"))
    assert isinstance(models.encoder, SFaceEncoder) and isinstance(models.detector, YunetDetector)


def test_devices():
    assert runtime.providers_for("cpu") == (runtime.CPU,)
    if not runtime.cuda_available():
        assert runtime.providers_for("auto") == (runtime.CPU,)
        with pytest.raises(ConfigError, match=r"faces\.device"):
            runtime.providers_for("cuda")
    with pytest.raises(ConfigError, match=r"faces\.device"):
        runtime.providers_for("tpu")


@pytest.fixture(scope="module")
def real_faces():
    from conftest import data_path

    out = []
    for folder in ("photos-johns", "photos-deepface"):
        for path in sorted(data_path(folder).rglob("*.jpg"))[::6][:10]:
            image = load_rgb(path)
            boxes, _ = dlib_models.detect_hog(image, 1024, 1)
            if len(boxes):
                out.append((image, dlib_models.landmarks(image, boxes)))
    assert len(out) >= 12
    return out


def test_the_onnx_graph_equals_dlibs_descriptor_on_real_faces(real_faces):
    graph, reference = DlibEncoder(), DlibReferenceEncoder()
    images, points = zip(*real_faces, strict=True)
    ours = graph.encode_batch(images, points)
    theirs = np.concatenate([dlib_models.reference_descriptors(dlib_models.face_chips(im, p)) for im, p in real_faces])
    assert ours.shape == theirs.shape == (sum(len(p) for p in points), 128)
    assert np.abs(ours - theirs).max() <= 1e-5
    assert np.abs(reference.encode_batch(images, points) - theirs).max() == 0.0
    # one frame at a time gives what the batch gives
    singles = np.concatenate([graph.encode(im, p) for im, p in real_faces])
    assert np.abs(singles - ours).max() <= 1e-6


def _store_with(space: str) -> Store:
    from vidcluster.case.store import FileResult, TrackRecord
    from vidcluster.types import Footage

    store = Store.open(":memory:")
    fid = store.upsert_footage(Footage("/x.mp4", "cam", "video", 1, "0" * 64, None, "none", 1.0))
    track = TrackRecord(0.0, 0.0, np.array([0]), True, np.ones(128, np.float32), b"")
    store.save_file_result(fid, "k", FileResult(pts_s=np.zeros(1), boxes=np.zeros((1, 4), int), scores=np.ones(1),
                                                quality=np.ones(1), embeddings=np.ones((1, 128)), thumbs=[b""],
                                                tracks=(track,), encoder=space))
    return store


def test_a_case_never_mixes_descriptor_spaces():
    store = _store_with(ENCODERS["dlib"].space)
    assert store.encoder_spaces() == {"dlib-resnet-v1"}
    check_encoder(store, FaceModels(HogDetector(), DlibReferenceEncoder()))  # the same vectors: fine
    with pytest.raises(InputError, match="--encoder"):
        check_encoder(store, FaceModels(YunetDetector(), SFaceEncoder()))


def test_a_listed_cuda_provider_that_does_not_start_is_not_cuda(monkeypatch):
    """onnxruntime-gpu lists CUDA also where it cannot start (no GPU, no CUDA libraries): auto then
    means the CPU, and asking for cuda is one clear error."""
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [runtime.CUDA, runtime.CPU])
    runtime.cuda_available.cache_clear()
    try:
        assert runtime.cuda_available() is False  # this machine has no GPU
        assert runtime.providers_for("auto") == (runtime.CPU,)
        with pytest.raises(ConfigError, match=r"faces\.device: cuda"):
            runtime.providers_for("cuda")
    finally:
        runtime.cuda_available.cache_clear()


def test_the_written_out_defaults_leave_the_thresholds_to_the_encoder():
    from pathlib import Path

    path = Path(__file__).parents[1] / "configs" / "default.yaml"
    cfg = load_config(path, {"faces": {"encoder": "sface"}})
    assert cfg.identities.eps == profile_of("sface").eps and cfg.tracks.confirm_distance == profile_of("sface").track_confirm_distance

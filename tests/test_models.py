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
    defaults = {
        ("identities", f): getattr(IdentitiesConfig(), f) for f in ("eps", "eps_mean", "eps_average", "min_spread")
    }
    defaults.update({("tracks", f): getattr(TracksConfig(), f) for f in ("max_distance", "confirm_distance")})
    assert defaults == profile_values(DEFAULT_ENCODER)


def _profile_fields(cfg) -> dict[tuple[str, str], float]:
    return {(section, name): getattr(getattr(cfg, section), name) for section, name in PROFILE_FIELDS}


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("given", [{}, {"identities": {"eps": 0.9}}, {"tracks": {"confirm_distance": 0.3}}])
def test_an_encoder_brings_its_own_thresholds_unless_set(encoder, given):
    cfg = load_config(None, {"faces": {"encoder": encoder}, **given})
    expected = {key: given.get(key[0], {}).get(key[1], value) for key, value in profile_values(encoder).items()}
    assert _profile_fields(cfg) == expected


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_an_encoder_named_in_a_file_brings_its_thresholds(tmp_path, encoder):
    """Also where the file names the sections with nothing under them (YAML reads those as None)."""
    path = tmp_path / "case.yaml"
    path.write_text(f"faces:\n  encoder: {encoder}\nidentities:\ntracks:\n")
    assert _profile_fields(load_config(path)) == profile_values(encoder)


def test_the_default_encoder_and_the_others_in_both_directions():
    """Left out, the encoder is the default one with its own profile; naming another gives that one's,
    and naming the default gives exactly what leaving it out gives."""
    assert _profile_fields(load_config(None)) == profile_values(DEFAULT_ENCODER)
    assert load_config(None, {"faces": {"encoder": DEFAULT_ENCODER}}) == load_config(None)
    for other in set(ENCODERS) - {DEFAULT_ENCODER}:
        cfg = load_config(None, {"faces": {"encoder": other}})
        assert _profile_fields(cfg) == profile_values(other)
        if profile_of(other) != profile_of(DEFAULT_ENCODER):
            assert _profile_fields(cfg) != _profile_fields(load_config(None))


def test_sface_is_the_default_encoder():
    assert DEFAULT_ENCODER == "sface" and FacesConfig().encoder == "sface"
    assert IdentitiesConfig().eps == profile_of("sface").eps


def test_an_unknown_encoder_names_the_field():
    with pytest.raises(ConfigError, match=r"faces\.encoder"):
        load_config(None, {"faces": {"encoder": "facenet"}})


@pytest.mark.parametrize("detector", ["hog", "cnn"])
def test_sface_with_a_dlib_detector_is_one_config_error(detector):
    with pytest.raises(ConfigError, match=r"faces\.encoder") as err:
        registry.make_models(FacesConfig(detector=detector, encoder="sface", device="cpu"))
    assert "\n" not in str(err.value) and "yunet" in str(err.value)
    models = registry.make_models(FacesConfig(detector="yunet", encoder="sface", device="cpu"))
    assert isinstance(models.encoder, SFaceEncoder) and isinstance(models.detector, YunetDetector)


@pytest.mark.parametrize("cuda", [True, False])
def test_auto_gives_sface_yunet_even_where_dlib_has_cuda(monkeypatch, cuda):
    monkeypatch.setattr(dlib_models, "cuda_available", lambda: cuda)
    assert registry.resolve_detector("auto", "sface") == "yunet"
    assert registry.resolve_detector("auto") == "yunet"  # the default encoder is sface
    models = registry.make_models(FacesConfig(device="cpu"))  # every default: no ConfigError, GPU or not
    assert isinstance(models.detector, YunetDetector) and isinstance(models.encoder, SFaceEncoder)


def test_auto_for_dlib_is_still_the_cnn_where_dlib_has_cuda(monkeypatch):
    monkeypatch.setattr(dlib_models, "cuda_available", lambda: True)
    for encoder in ("dlib", "dlib-reference"):
        assert registry.resolve_detector("auto", encoder) == "cnn"
    monkeypatch.setattr(dlib_models, "cuda_available", lambda: False)
    assert registry.resolve_detector("auto", "dlib") == "yunet"


def test_auto_for_sface_without_yunets_weights_is_one_config_error(monkeypatch):
    monkeypatch.setattr(registry, "yunet_available", lambda: False)
    with pytest.raises(ConfigError, match=r"faces\.encoder: sface .*--encoder dlib"):
        registry.resolve_detector("auto", "sface")
    assert registry.resolve_detector("auto", "dlib") in ("cnn", "hog")


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
    from vidcluster.case.results import FileResult, TrackRecord
    from vidcluster.types import Footage

    store = Store.open(":memory:")
    fid = store.upsert_footage(Footage("/x.mp4", "cam", "video", 1, "0" * 64, None, "none", 1.0))
    track = TrackRecord(0.0, 0.0, np.array([0]), True, np.ones(128, np.float32), b"")
    store.save_file_result(
        fid,
        "k",
        FileResult(
            pts_s=np.zeros(1),
            boxes=np.zeros((1, 4), int),
            scores=np.ones(1),
            quality=np.ones(1),
            embeddings=np.ones((1, 128)),
            thumbs=[b""],
            tracks=(track,),
            encoder=space,
        ),
    )
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


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_the_written_out_defaults_leave_the_thresholds_to_the_encoder(encoder):
    from pathlib import Path

    path = Path(__file__).parents[1] / "configs" / "default.yaml"
    assert _profile_fields(load_config(path, {"faces": {"encoder": encoder}})) == profile_values(encoder)


def test_a_files_thresholds_do_not_carry_over_to_another_encoder(tmp_path):
    """A fragment calibrated for dlib, run with --encoder sface: refused, not silently dlib-scaled."""
    fragment = tmp_path / "dlib.yaml"
    fragment.write_text("faces: {encoder: dlib}\nidentities: {eps: 0.47, eps_average: 0.55}\n")
    with pytest.raises(ConfigError, match=r"--encoder \(sface\).*identities.eps"):
        load_config(fragment, {"faces": {"encoder": "sface"}}, {("faces", "encoder"): "--encoder"})
    # the same space (dlib's graph or dlib itself), or no thresholds in the file: fine
    assert load_config(fragment, {"faces": {"encoder": "dlib-reference"}}).identities.eps == 0.47
    plain = tmp_path / "plain.yaml"
    plain.write_text("faces: {encoder: dlib}\n")
    assert load_config(plain, {"faces": {"encoder": "sface"}}).identities.eps == profile_of("sface").eps

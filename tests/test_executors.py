"""Every executor gives the same results for the same units; the pipeline picks the right one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import face_crop, face_frames

from benchmarks.videos import write_video
from vidcluster.cli import main
from vidcluster.config import load_config
from vidcluster.errors import EngineError
from vidcluster.models.base import FaceModels
from vidcluster.models.detectors import CnnDetector, HogDetector
from vidcluster.models.encoders import DlibEncoder
from vidcluster.procs import one_core, process_pool
from vidcluster.run.executors import (
    BatchedExecutor,
    InlineExecutor,
    LocalExecutor,
    check_reachable,
)
from vidcluster.run.pipeline import make_executor
from vidcluster.run.segments import plan_segments
from vidcluster.types import Footage


class BatchedHog(HogDetector):
    """HOG that asks for batches of 3 frames, to drive the batched path on the CPU."""

    batch_size = 3


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    """Two clips: 9 s cut into 3 units, 3 s as one unit."""
    root = tmp_path_factory.mktemp("exec")
    face = face_crop(data_path("hamilton", "obama.jpg"))
    long = write_video(root / "a.mp4", face_frames(face, 90, step_px=1), fps=10)
    short = write_video(root / "b.mp4", face_frames(face, 30, step_px=3), fps=10)
    cfg = load_config(None, {"run": {"segment_s": 3.0}})
    out = []
    for fid, (path, duration) in enumerate([(long, 9.0), (short, 3.0)]):
        footage = Footage(path, "cam", "video", 1, str(fid) * 64, None, "none", duration)
        out += plan_segments(fid, footage, None, None, cfg)
    assert len(out) == 4
    return cfg, out


def _key(results) -> dict:
    """Per unit: face times, boxes, descriptors and track membership."""
    out = {}
    for r in results:
        f = r.feed
        out[(r.segment.footage_id, r.segment.index)] = (
            f.faces.pts_s.tolist(),
            f.faces.boxes.tolist(),
            np.nan_to_num(f.faces.embeddings, nan=9).round(5).tolist(),
            [t.face_rows.tolist() for t in f.tracks],
            f.stats.sampled,
        )
    return out


def test_every_executor_gives_the_same_results(units):
    cfg, segs = units
    hog = FaceModels(HogDetector(cfg.faces.detect_width, cfg.faces.upsample), DlibEncoder())
    inline = list(InlineExecutor(cfg, hog).run(segs))
    assert all(r.feed is not None and len(r.feed.faces) > 0 for r in inline)
    local = list(LocalExecutor(cfg, hog, workers=2).run(segs))
    batched = list(
        BatchedExecutor(cfg, FaceModels(BatchedHog(cfg.faces.detect_width, cfg.faces.upsample), DlibEncoder())).run(
            segs
        )
    )
    expected = _key(inline)
    assert _key(local) == expected
    assert _key(batched) == expected
    assert sorted((r.segment.footage_id, r.segment.index) for r in local) == sorted(expected)


def test_batched_executor_mixes_units_in_one_detector_call(units, monkeypatch):
    cfg, segs = units
    calls = []
    real = HogDetector.detect_batch

    def spy(self, images):
        calls.append(len(images))
        return real(self, images)

    monkeypatch.setattr(HogDetector, "detect_batch", spy)
    results = list(BatchedExecutor(cfg, FaceModels(BatchedHog(), DlibEncoder())).run(segs))
    assert len(results) == 4 and max(calls) == 3 and sum(calls) == sum(r.feed.stats.sampled for r in results)


def test_a_unreadable_unit_reports_its_reason(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    cfg = load_config(None, {})
    footage = Footage(bad, "cam", "video", 11, "0" * 64, None, "none", 5.0)
    (result,) = InlineExecutor(cfg, FaceModels(HogDetector(), DlibEncoder())).run(
        plan_segments(1, footage, None, None, cfg)
    )
    assert result.feed is None and "not a readable video" in result.skip_reason


@pytest.mark.parametrize(
    "detector,workers,expected",
    [
        (HogDetector(), 1, InlineExecutor),
        (HogDetector(), 2, LocalExecutor),
        (CnnDetector(batch_size=8), 2, BatchedExecutor),
    ],
)
def test_pipeline_picks_the_executor(detector, workers, expected):
    assert isinstance(
        make_executor(load_config(None, {}), FaceModels(detector, DlibEncoder()), workers, None), expected
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "address,message",
    [("127.0.0.1:{port}", "cannot reach the Ray cluster"), ("no-port-here", "is not HOST:PORT")],
)
def test_unreachable_address_is_an_engine_error(address, message):
    with pytest.raises(EngineError, match=message):
        check_reachable(address.format(port=_closed_port()), timeout_s=1.0)


def test_cli_unreachable_cluster_is_one_line_exit_2_nothing_written(tmp_path):
    pytest.importorskip("ray")
    clip = data_path("hamilton")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(clip), "--out", str(out), "-q", "--engine", "ray", "--address", f"127.0.0.1:{_closed_port()}"]
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "run,message",
    [
        ({"engine": "spark"}, "run.engine"),
        ({"segment_s": 0.5}, "run.segment_s"),
        ({"segment_overlap_s": -1.0}, "run.segment_overlap_s"),
    ],
)
def test_run_settings_are_checked(run, message):
    from vidcluster.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, {"run": run})


def _compute_threads() -> int:
    return cv2.getNumThreads()


def test_workers_compute_on_one_core_and_inline_work_gives_the_threads_back():
    """A pool worker runs OpenCV on one thread (N workers = N cores); inline work does for its
    duration and leaves the main process as it was."""
    before = cv2.getNumThreads()
    with process_pool(1) as pool:
        assert pool.submit(_compute_threads).result() == 1
    with one_core():
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before


def test_models_on_the_gpu_never_run_in_forked_workers():
    """CUDA does not survive a fork: a model on the CUDA provider keeps the run in one process."""
    from vidcluster.models.runtime import CPU, CUDA

    on_gpu = FaceModels(HogDetector(), DlibEncoder(providers=(CUDA, CPU)))
    assert on_gpu.on_gpu and not FaceModels(HogDetector(), DlibEncoder()).on_gpu
    assert isinstance(make_executor(load_config(None, {}), on_gpu, 2, None), BatchedExecutor)

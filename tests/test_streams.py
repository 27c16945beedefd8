"""Footage as phones and DVRs store it: a display matrix that turns the picture, several video
streams in one file."""

from __future__ import annotations

import json
import sqlite3

import av
import cv2
import numpy as np
import pytest
from conftest import data_path
from tests_support import face_crop, face_frames

from benchmarks.videos import write_streams, write_video
from vidcluster import analyse
from vidcluster.config import Config
from vidcluster.video.sampler import sample_video
from vidcluster.video.sources import probe_video


def _pattern(h: int = 48, w: int = 64) -> np.ndarray:
    """A picture that looks different after any turn or mirror: a bright block top left, a grey one bottom right."""
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 3, : w // 4] = 250
    image[-h // 4 :, -w // 3 :] = 120
    return image


@pytest.mark.parametrize("degrees", [90, -90, 180, 270])
def test_frames_of_a_turned_stream_come_back_upright(tmp_path, degrees):
    upright = _pattern()
    path = write_video(tmp_path / "phone.mp4", [upright] * 4, fps=10, rotation_deg=degrees)
    with av.open(str(path)) as container:  # stored sideways (or upside down), as a phone does
        stored = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert stored.shape != upright.shape or np.abs(stored.astype(int) - upright).mean() > 20
    frames = list(sample_video(path, fps=10))
    assert len(frames) == 4
    for frame in frames:
        assert frame.image.shape == upright.shape
        assert np.abs(frame.image.astype(int) - upright).mean() < 6
        luma = frame.luma()
        assert luma.shape == upright.shape[:2]
        assert np.abs(luma.astype(int) - upright[:, :, 0]).mean() < 8
    assert probe_video(path).rotation_deg == degrees % 360


def test_a_sideways_phone_clip_gives_its_faces_upright_in_store_snapshots_and_clips(tmp_path):
    """Stored sideways with a 90-degree display matrix: the face is found, every box lies in the
    upright frame, and the snapshot and the clip are upright (as wide as the upright frame)."""
    face = face_crop(data_path("hamilton", "obama.jpg"))
    cam = tmp_path / "in" / "bodycam"
    cam.mkdir(parents=True)
    width, height = 320, 240
    write_video(cam / "bodycam_20260314-100000.mp4", face_frames(face, 30, size=(width, height)), rotation_deg=-90)
    out = tmp_path / "out"
    summary = analyse([tmp_path / "in"], out, Config())
    assert summary.n_faces >= 5 and not summary.partial
    db = sqlite3.connect(out / "vidcluster.db")
    boxes = np.array(db.execute("SELECT x1, y1, x2, y2 FROM faces").fetchall())
    assert (boxes[:, 2] <= width + 2).all() and (boxes[:, 3] <= height + 2).all()
    # the face is pasted in the middle row: its boxes are centred vertically in the upright frame
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    assert np.abs(centre_y - height / 2).max() < 20
    snap = cv2.imdecode(np.frombuffer(db.execute("SELECT snapshot FROM tracks").fetchone()[0], np.uint8), 1)
    assert snap.shape[1] > snap.shape[0]  # landscape, as the upright frames
    clips = sorted((out / "report" / "clips").glob("*.mp4"))
    assert clips
    with av.open(str(clips[0])) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (width, height) and frame.rotation == 0


def test_a_file_with_a_second_video_stream_says_so(tmp_path):
    """A two-channel DVR export: only the first channel is analysed; the file is partly read, with
    a reason naming the streams left out, in the manifest and the store."""
    frames = face_frames(face_crop(data_path("hamilton", "obama.jpg")), 20)
    other = face_frames(face_crop(data_path("hamilton", "biden.jpg")), 20)
    cam = tmp_path / "in" / "dvr"
    cam.mkdir(parents=True)
    path = write_streams(cam / "dvr_20260314-100000.mp4", [frames, other])
    assert probe_video(path).video_streams == 2
    out = tmp_path / "out"
    summary = analyse([tmp_path / "in"], out, Config())
    assert [p["path"] for p in summary.partial] == [str(path)]
    reason = summary.partial[0]["reason"]
    assert reason.startswith("only video stream 1 of 2 analysed: stream 2 is not read")
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert [(i["status"], i["reason"]) for i in manifest["inputs"]] == [("partial", reason)]
    assert "only video stream 1 of 2" in (out / "report" / "index.html").read_text()
    # the first stream is analysed as before: its one person is there
    assert len(summary.identities) == 1 and summary.identities[0]["n_faces"] >= 3
    again = analyse([tmp_path / "in"], out, Config())  # resume: nothing redone, the same answer
    assert again.n_analysed == 0 and again.partial == summary.partial
    assert again.identities == summary.identities

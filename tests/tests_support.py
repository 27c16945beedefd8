"""Small helpers shared by tests."""

import json
from pathlib import Path

import cv2
import numpy as np

from vidcluster.catalog import profile_values
from vidcluster.config import Config, IdentitiesConfig, TracksConfig, load_config
from vidcluster.models.dlib_models import detect_hog


# -- dlib's descriptor space, named ----------------------------------------------------------------
# Tests whose descriptors are synthetic and shaped like dlib's (one person ~0.2-0.4 apart, others
# ~0.6-0.8), or whose expectations are dlib's distances, take dlib's profile from here: the
# defaults are the default encoder's (SFace's), whose distances live on another scale.
def _dlib_section(section: str) -> dict:
    return {name: value for (part, name), value in profile_values("dlib").items() if part == section}


def dlib_identities(**fields) -> IdentitiesConfig:
    """IdentitiesConfig with dlib's distance thresholds (those given in `fields` win)."""
    return IdentitiesConfig(**{**_dlib_section("identities"), **fields})


def dlib_tracks(**fields) -> TracksConfig:
    """TracksConfig with dlib's distance thresholds (those given in `fields` win)."""
    return TracksConfig(**{**_dlib_section("tracks"), **fields})


def dlib_config(overrides: dict | None = None) -> Config:
    """The config of a run with `--encoder dlib` (its whole profile) and `overrides` on top."""
    overrides = dict(overrides or {})
    overrides["faces"] = {"encoder": "dlib", **overrides.get("faces", {})}
    return load_config(None, overrides)


def load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def face_crop(path: Path, size: int = 120) -> np.ndarray:
    """The first face of a photo, cropped with some margin and resized to size x size (RGB)."""
    image = load_rgb(path)
    boxes, _ = detect_hog(image)
    x1, y1, x2, y2 = boxes[0]
    m = (x2 - x1) // 2
    crop = image[max(0, y1 - m) : y2 + m, max(0, x1 - m) : x2 + m]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def face_frames(face: np.ndarray, n: int, size=(320, 240), start_x: int = 20, step_px: int = 6) -> list[np.ndarray]:
    """n frames of a textured background with `face` pasted, moving right by step_px a frame."""
    w, h = size
    rng = np.random.default_rng(0)
    background = (rng.integers(90, 140, (h, w, 3))).astype(np.uint8)
    out = []
    fh, fw = face.shape[:2]
    for i in range(n):
        frame = background.copy()
        x = min(w - fw, start_x + i * step_px)
        y = (h - fh) // 2
        frame[y : y + fh, x : x + fw] = face
        out.append(frame)
    return out


def write_two_camera_footage(
    root: Path, obama_photo: Path, biden_photo: Path, hall_obama_name: str = "hall_20260314-100500.mp4"
) -> Path:
    """Obama walks past camera 'door' and later 'hall'; Biden passes 'hall' once (3 s clips, 10 fps)."""
    from benchmarks.videos import write_video

    obama = face_crop(obama_photo)
    biden = face_crop(biden_photo)
    (root / "door").mkdir()
    (root / "hall").mkdir()
    write_video(root / "door" / "door_20260314-100000.mp4", face_frames(obama, 30), fps=10)
    write_video(root / "hall" / hall_obama_name, face_frames(obama, 30, start_x=120, step_px=-3), fps=10)
    write_video(root / "hall" / "hall_20260314-101000.mp4", face_frames(biden, 30), fps=10)
    return root


def alternating_clips(root: Path, obama_photo: Path, biden_photo: Path, cameras: int, n: int = 6) -> Path:
    """`n` 3-s clips (10 fps) of Obama and Biden in turn, spread over `cameras` camera folders."""
    from benchmarks.videos import write_video

    faces = [face_crop(obama_photo), face_crop(biden_photo)]
    for i in range(n):
        cam = root / f"cam{i % cameras}"
        cam.mkdir(exist_ok=True)
        write_video(cam / f"cam{i % cameras}_20260314-10{i:02d}00.mp4", face_frames(faces[i % 2], 30), fps=10)
    return root


def identity_summary(out: Path) -> list:
    """The identities of OUT's report as sorted (faces, files of its sightings): equal for equal groupings."""
    data = json.loads((out / "report" / "identities.json").read_text())
    return sorted((i["n_faces"], tuple(s["file"] for s in i["sightings"])) for i in data)

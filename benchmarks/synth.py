"""Synthetic multi-camera CCTV footage with exact ground truth, for tests and benchmarks.

Real faces are cut from a labelled photo folder and composited onto cheap procedural scenes:
each camera has a textured background that drifts slowly and carries sensor noise; now and
then one or two people walk across it (their face scales with distance, tilts, turns, and is
blurred and JPEG-degraded). Most of the time nobody is there, so long feeds stay small and
fast to write and to decode.

Layout written under `out_dir`:

    CAMERA/CAMERA_YYYYMMDD-HHMMSS.mp4   H.264 (libx264 ultrafast), pts in ms, start time (UTC) in the name
    truth.csv                           person,camera,file,start_utc,end_utc,start_offset_s,end_offset_s

Everything is derived from `seed`: the same seed gives a byte-identical truth.csv and the
same frames.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import av
import cv2
import numpy as np

from vidcluster.models.dlib_models import detect_hog
from vidcluster.video.jpeg import encode_jpeg

START_UTC = datetime(2026, 3, 14, 8, 0, 0, tzinfo=timezone.utc)
DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos-deepface" / "images"
TRUTH_FIELDS = ("person", "camera", "file", "start_utc", "end_utc", "start_offset_s", "end_offset_s")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_MS = Fraction(1, 1000)
NOISE_HOLD = 2  # sensor noise changes every 2nd frame of an empty scene (fewer frames to convert)
NOISE_LEVELS = 3  # sensor noise: 0..NOISE_LEVELS-1 grey levels added per pixel
CUT_ZOOM = 1.3  # a cut in a tracking case goes to a shot this much closer
STUDIO_PIECES = (14, 22)  # a tracking case's set is dressed like a studio: structure around the guest

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FaceCut:
    """One face cut from a photo: RGB crop (H, W, 3) uint8, alpha (H, W) float32, face box xyxy in the crop."""

    person: str
    rgb: np.ndarray
    alpha: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Appearance:
    """One person visible in one file between two offsets (seconds, times of the first/last frame)."""

    person: str
    camera: str
    file: str
    start_offset_s: float
    end_offset_s: float
    file_start: datetime

    def row(self) -> dict[str, str]:
        return {
            "person": self.person,
            "camera": self.camera,
            "file": self.file,
            "start_utc": _iso_ms(self.file_start + timedelta(seconds=self.start_offset_s)),
            "end_utc": _iso_ms(self.file_start + timedelta(seconds=self.end_offset_s)),
            "start_offset_s": f"{self.start_offset_s:.3f}",
            "end_offset_s": f"{self.end_offset_s:.3f}",
        }


def _iso_ms(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- photos -> face cuts --------------------------------------------------------------------
def labelled_photos(photos_dir: str | Path, labels_csv: str | Path | None = None) -> dict[str, list[Path]]:
    """{person: [photo paths]} from a labels.csv (`file,identity_group`) or a folder per person.

    Without `labels_csv`, a labels.csv inside `photos_dir` or next to it is used when present;
    otherwise each sub-folder of `photos_dir` is one person.
    """
    photos_dir = Path(photos_dir)
    if not photos_dir.is_dir():
        raise FileNotFoundError(
            f"photo folder not found: {photos_dir} (real face photos are needed to synthesise footage)"
        )
    if labels_csv is None:
        for candidate in (photos_dir / "labels.csv", photos_dir.parent / "labels.csv"):
            if candidate.is_file():
                labels_csv = candidate
                break
    people: dict[str, list[Path]] = {}
    if labels_csv is not None:
        labels_csv = Path(labels_csv)
        with open(labels_csv, newline="") as fh:
            for row in csv.DictReader(fh):
                rel = row["file"]
                path = labels_csv.parent / rel
                if not path.is_file():
                    path = photos_dir / Path(rel).name
                if path.is_file():
                    people.setdefault(row["identity_group"], []).append(path)
    else:
        for folder in sorted(p for p in photos_dir.iterdir() if p.is_dir()):
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_EXTENSIONS)
            if files:
                people[folder.name] = files
    if not people:
        raise FileNotFoundError(f"no labelled photos under {photos_dir}")
    return {k: sorted(v) for k, v in sorted(people.items())}


def _feather_mask(h: int, w: int) -> np.ndarray:
    """Soft elliptical alpha (h, w) float32 in [0, 1]: opaque in the middle, fading at the rim."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2)
    return np.clip((1.0 - r) / 0.25, 0.0, 1.0).astype(np.float32)


def cut_face(image_rgb: np.ndarray, person: str, max_face_px: int = 160) -> FaceCut | None:
    """Cut the largest HOG face of a photo, with a margin for hair and chin; None when none is found."""
    boxes, _ = detect_hog(image_rgb, detect_width=640, upsample=1)
    if len(boxes) == 0:
        return None
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    x1, y1, x2, y2 = (int(v) for v in boxes[int(np.argmax(areas))])
    fw, fh = x2 - x1, y2 - y1
    h, w = image_rgb.shape[:2]
    cx1, cy1 = max(0, x1 - int(0.45 * fw)), max(0, y1 - int(0.6 * fh))
    cx2, cy2 = min(w, x2 + int(0.45 * fw)), min(h, y2 + int(0.4 * fh))
    crop = image_rgb[cy1:cy2, cx1:cx2]
    box = (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)
    scale = min(1.0, max_face_px / float(fh))
    if scale < 1.0:
        crop = cv2.resize(
            crop,
            (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        box = tuple(round(v * scale) for v in box)
    crop = np.ascontiguousarray(crop)
    return FaceCut(person, crop, _feather_mask(*crop.shape[:2]), box)  # type: ignore[arg-type]  # tuple() of a generator is tuple[int, ...]; a box has 4


def fit_cut(cut: FaceCut, face_px: int) -> FaceCut:
    """The cut scaled down so its face box is at most `face_px` high (saves work per frame)."""
    scale = face_px / float(max(1, cut.box[3] - cut.box[1]))
    if scale >= 1.0:
        return cut
    h, w = cut.rgb.shape[:2]
    size = (max(4, round(w * scale)), max(4, round(h * scale)))
    rgb = cv2.resize(cut.rgb, size, interpolation=cv2.INTER_AREA)
    return FaceCut(cut.person, rgb, _feather_mask(size[1], size[0]), tuple(round(v * scale) for v in cut.box))  # type: ignore[arg-type]  # tuple() of a generator is tuple[int, ...]; a box has 4


def face_cuts(photos: dict[str, list[Path]], max_per_person: int = 4) -> dict[str, list[FaceCut]]:
    """Face cuts per person (photos without a detectable face are skipped; so are people without any)."""
    out: dict[str, list[FaceCut]] = {}
    for person, paths in photos.items():
        cuts = []
        for path in paths:
            if len(cuts) >= max_per_person:
                break
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            cut = cut_face(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), person)
            if cut is not None:
                cuts.append(cut)
        if cuts:
            out[person] = cuts
    return out


# -- scenes ---------------------------------------------------------------------------------
def background(
    rng: np.random.Generator, size: tuple[int, int], margin: int, pieces: tuple[int, int] = (3, 7)
) -> np.ndarray:
    """A procedural scene (H + 2 margin, W + 2 margin, 3) uint8: gradient, soft blobs, walls and a floor."""
    w, h = size
    W, H = w + 2 * margin, h + 2 * margin
    base = rng.uniform(60, 190, 3)
    grad = np.linspace(-30, 30, H, dtype=np.float32)[:, None, None] * rng.uniform(0.3, 1.0, 3).astype(np.float32)
    blobs = cv2.resize(rng.uniform(-35, 35, (5, 8, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base.astype(np.float32) + grad + blobs, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(*pieces))):  # doors, windows, shelves
        x0, y0 = int(rng.integers(0, W - W // 8)), int(rng.integers(0, H // 2))
        x1, y1 = x0 + int(rng.integers(W // 20, W // 5)), y0 + int(rng.integers(H // 8, H // 2))
        color = tuple(int(c) for c in rng.integers(30, 230, 3))
        cv2.rectangle(img, (x0, y0), (x1, y1), color, -1 if rng.random() < 0.6 else max(2, W // 200))
    floor = int(H * rng.uniform(0.72, 0.82))
    img[floor:] = (img[floor:].astype(np.float32) * 0.75).astype(np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 1.0)


@dataclass(frozen=True)
class Walker:
    """One person crossing the scene; positions are fractions of the frame, sizes of its height."""

    person: str
    cut: int  # index into that person's cuts
    t0: float
    t1: float
    x0: float
    x1: float
    y: float  # face centre at the start
    size0: float  # face box height / frame height at t0
    size1: float
    tilt_deg: float
    turn: float  # strength of the horizontal squeeze when turning (0..0.35)
    turn_hz: float
    blur_sigma: float
    jpeg_quality: int
    body_color: tuple[int, int, int]


def schedule(
    rng: np.random.Generator, people: Sequence[str], n_cuts: dict[str, int], clip_s: float, gap_s: float
) -> list[Walker]:
    """Episodes in one file: exponential gaps of mean `gap_s`, episodes of 3-8 s, sometimes two people."""
    out: list[Walker] = []
    t = float(rng.exponential(gap_s / 2))
    while True:
        dur = float(rng.uniform(3.0, 8.0))
        if t + dur > clip_s - 0.5:
            break
        k = 2 if (len(people) > 1 and rng.random() < 0.15) else 1
        who = rng.choice(len(people), size=k, replace=False)
        rightward = rng.random() < 0.5
        approach = rng.random() < 0.4
        for j, p in enumerate(who):
            person = people[int(p)]
            lane = (j - (k - 1) / 2) * 0.36  # two people walk side by side, 0.36 frame widths apart
            a, b = (0.22 + lane, 0.78 + lane) if k == 1 else (0.3 + lane, 0.7 + lane)
            a, b = (a, b) if rightward else (b, a)
            big, small = float(rng.uniform(0.30, 0.36)), float(rng.uniform(0.2, 0.25))
            out.append(
                Walker(
                    person=person,
                    cut=int(rng.integers(n_cuts[person])),
                    t0=t + j * 0.2,
                    t1=t + dur,
                    x0=a,
                    x1=b,
                    y=float(rng.uniform(0.3, 0.42)),
                    size0=small if approach else big,
                    size1=big if approach else small,
                    tilt_deg=float(rng.uniform(-10, 10)),
                    turn=float(rng.uniform(0.0, 0.35)),
                    turn_hz=float(rng.uniform(0.1, 0.4)),
                    blur_sigma=float(rng.choice([0.0, 0.0, 0.7, 1.2])),
                    jpeg_quality=int(rng.integers(35, 85)),
                    body_color=tuple(int(c) for c in rng.integers(20, 220, 3)),  # type: ignore[arg-type]  # integers(..., 3): three channels
                )
            )
        t += dur + float(rng.exponential(gap_s))
    return out


def _patch(cut: FaceCut, face_h: float, squeeze: float, tilt_deg: float, blur: float, quality: int):
    """The cut scaled to a face height of `face_h` px, squeezed, tilted, blurred and JPEG-degraded."""
    fy = face_h / max(1, cut.box[3] - cut.box[1])
    fx = fy * squeeze
    w, h = max(4, round(cut.rgb.shape[1] * fx)), max(4, round(cut.rgb.shape[0] * fy))
    interp = cv2.INTER_AREA if fy < 1 else cv2.INTER_LINEAR
    rgb = cv2.resize(cut.rgb, (w, h), interpolation=interp)
    alpha = cv2.resize(cut.alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    if abs(tilt_deg) > 0.5:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), tilt_deg, 1.0)
        rgb = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    if blur > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), blur)
    # a compression pass for its artefacts: the channel order does not matter for a round trip
    rgb = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, quality), np.uint8), cv2.IMREAD_UNCHANGED)
    cx = (cut.box[0] + cut.box[2]) / 2 * fx  # face centre within the patch
    cy = (cut.box[1] + cut.box[3]) / 2 * fy
    return rgb, alpha, cx, cy


def _blend(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend a patch into `frame` in place with its top-left corner at (x, y), clipped."""
    H, W = frame.shape[:2]
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    p = rgb[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    dst = frame[y0:y1, x0:x1]
    dst[:] = (p * a + dst.astype(np.float32) * (1.0 - a)).astype(np.uint8)


def face_at(walker: Walker, t: float, size: tuple[int, int]) -> tuple[float, float, float]:
    """Centre (x, y) and height of the walker's face at time t in a frame of `size` (W, H), pixels."""
    w, h = size
    u = (t - walker.t0) / max(1e-6, walker.t1 - walker.t0)
    face_h = h * (walker.size0 + (walker.size1 - walker.size0) * u)
    cx = w * (walker.x0 + (walker.x1 - walker.x0) * u)
    cy = h * walker.y + face_h * 0.04 * math.sin(2 * math.pi * 1.8 * t)  # a little bob per step
    return cx, cy, face_h


def draw_walker(frame: np.ndarray, walker: Walker, cut: FaceCut, t: float) -> None:
    """Draw one person (a plain body and the face) into the RGB frame at time t, in place."""
    H, W = frame.shape[:2]
    cx, cy, face_h = face_at(walker, t, (W, H))
    squeeze = 1.0 - walker.turn * abs(math.sin(2 * math.pi * walker.turn_hz * (t - walker.t0)))
    tilt = walker.tilt_deg * math.sin(2 * math.pi * 0.25 * (t - walker.t0) + 0.5)
    body_top = int(cy + 0.55 * face_h)
    cv2.ellipse(
        frame,
        (int(cx), body_top + int(1.3 * face_h)),
        (int(0.85 * face_h * squeeze), int(1.5 * face_h)),
        0,
        0,
        360,
        walker.body_color,
        -1,
    )
    rgb, alpha, px, py = _patch(cut, face_h, squeeze, tilt, walker.blur_sigma, walker.jpeg_quality)
    _blend(frame, rgb, alpha, round(cx - px), round(cy - py))


# -- one file -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileJob:
    path: Path
    rel: str
    camera: str
    start: datetime
    clip_s: float
    fps: int
    size: tuple[int, int]
    seed: tuple[int, ...]  # entropy for this file's generator (seed, camera, file)
    walkers: tuple[Walker, ...]
    cut_s: float | None = None  # from this time on the camera shows a closer shot of the same set
    set_pieces: tuple[int, int] = (3, 7)  # how many doors, windows and shelves dress the scene (low, high)


def _scene_for(seed: tuple[int, ...], size: tuple[int, int], margin: int, pieces: tuple[int, int]) -> np.ndarray:
    return background(np.random.default_rng(list(seed[:2])), size, margin, pieces)


def write_file(job: FileJob, cuts: dict[str, list[FaceCut]]) -> str:
    """Render and encode one file; returns its relative path."""
    w, h = job.size
    margin = max(4, h // 15)
    rng = np.random.default_rng(list(job.seed))
    scene = _scene_for(job.seed, job.size, margin, job.set_pieces)  # one scene per camera
    gain = float(rng.uniform(0.85, 1.1))  # light differs a little from file to file
    scene = cv2.convertScaleAbs(scene, alpha=gain)
    noise = [rng.integers(0, NOISE_LEVELS, (h, w, 3), dtype=np.uint8) for _ in range(8)]
    drift = [
        float(rng.uniform(150, 400)),
        float(rng.uniform(150, 400)),
        float(rng.uniform(0, 6.3)),
        float(rng.uniform(0, 6.3)),
    ]
    closer = reframe(scene, CUT_ZOOM)
    n_frames = round(job.clip_s * job.fps)
    walkers = sorted(job.walkers, key=lambda k: min(k.size0, k.size1))  # far (smaller) people drawn first
    # frames that show each walker: exactly those counted in truth.csv
    shown = [(wk, _frame_range(wk, job.fps, n_frames)) for wk in walkers]
    job.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.path.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=job.fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = _MS
        stream.codec_context.time_base = _MS
        stream.codec_context.gop_size = (
            10 * job.fps
        )  # a keyframe every 10 s: small files, seeks cost <= 10 s of decoding
        stream.options = {"preset": "ultrafast", "crf": "28", "bf": "0", "threads": "1"}
        cached_key, cached = None, None
        for i in range(n_frames):
            t = i / job.fps
            abs_t = (job.start - START_UTC).total_seconds() + t  # drift is continuous across files
            dx = round(margin * (1 + math.sin(2 * math.pi * abs_t / drift[0] + drift[2])))
            dy = round(margin * (1 + 0.5 * math.sin(2 * math.pi * abs_t / drift[1] + drift[3])))
            after_cut = job.cut_s is not None and t >= job.cut_s
            key = (dx, dy, (i // NOISE_HOLD) % len(noise), after_cut)
            visible = [wk for wk, (a, b) in shown if a <= i <= b]
            if visible or key != cached_key:
                frame = cv2.add((closer if after_cut else scene)[dy : dy + h, dx : dx + w], noise[key[2]])
                for walker in visible:
                    draw_walker(frame, walker, cuts[walker.person][walker.cut], t)
                yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
                cached_key, cached = (None if visible else key), yuv
            vf = av.VideoFrame.from_ndarray(cached, format="yuv420p")
            vf.pts = round(t * 1000)
            vf.time_base = _MS
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, job.path)
    return job.rel


def reframe(scene: np.ndarray, zoom: float) -> np.ndarray:
    """The same set shot closer (`zoom` > 1, about the centre): colours stay, the picture changes."""
    h, w = scene.shape[:2]
    ch, cw = round(h / zoom), round(w / zoom)
    y, x = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(scene[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def _frame_range(walker: Walker, fps: int, n_frames: int) -> tuple[int, int]:
    """Indexes of the first and last frame that show the walker (first > last: none)."""
    return max(0, math.ceil(walker.t0 * fps - 1e-9)), min(n_frames - 1, math.floor(walker.t1 * fps + 1e-9))


def _frame_times(walker: Walker, fps: int, n_frames: int) -> tuple[float, float] | None:
    """Times of the first and last frame that show the walker."""
    first, last = _frame_range(walker, fps, n_frames)
    if last < first:
        return None
    return first / fps, last / fps


# -- the whole set --------------------------------------------------------------------------
_WORKER_CUTS: dict[str, list[FaceCut]] = {}


def _init_worker(cuts: dict[str, list[FaceCut]]) -> None:
    cv2.setNumThreads(1)
    _WORKER_CUTS.clear()
    _WORKER_CUTS.update(cuts)


def _write_in_worker(job: FileJob) -> str:
    return write_file(job, _WORKER_CUTS)


def generate(
    out_dir: str | Path,
    photos_dir: str | Path = DEFAULT_PHOTOS,
    labels_csv: str | Path | None = None,
    cameras: int = 3,
    hours: float = 1.0,
    people: int | None = None,
    seed: int = 0,
    size: tuple[int, int] = (640, 360),
    fps: int = 10,
    clip_s: float = 600.0,
    progress: Progress | None = None,
    gap_s: float = 60.0,
    workers: int = 0,
) -> Path:
    """Write `cameras` feeds of `hours` each, in files of `clip_s` seconds, and their truth.csv.

    photos_dir: labelled faces (labels.csv `file,identity_group` in or next to it, or one
    folder per person). people: how many of those people to use (None = all, seeded choice).
    size: (width, height) of the frames; fps: frames per second written. gap_s: mean time
    between two episodes in one camera. workers: processes (0 = one per core).
    Returns the path of truth.csv. Raises FileNotFoundError when the photos are missing.
    """
    progress = progress or (lambda stage, done, total: None)
    out_dir = Path(out_dir)
    if cameras < 1 or hours <= 0 or clip_s <= 0 or fps < 1:
        raise ValueError("cameras >= 1, hours > 0, clip_s > 0 and fps >= 1 are required")
    w, h = size
    if w % 2 or h % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {size}")
    photos = labelled_photos(photos_dir, labels_csv)
    rng = np.random.default_rng(seed)
    names = list(photos)
    chosen = (
        names
        if people is None or people >= len(names)
        else sorted(names[i] for i in rng.choice(len(names), size=people, replace=False))
    )
    progress("faces", 0, len(chosen))
    cuts = face_cuts({p: photos[p] for p in chosen})
    progress("faces", len(chosen), len(chosen))
    if not cuts:
        raise FileNotFoundError(f"no face found in the photos under {photos_dir}")
    cuts = {p: [fit_cut(c, int(0.4 * size[1])) for c in cs] for p, cs in cuts.items()}
    cast = sorted(cuts)
    n_cuts = {p: len(c) for p, c in cuts.items()}

    total_s = hours * 3600.0
    n_files = max(1, math.ceil(total_s / clip_s - 1e-9))
    jobs: list[FileJob] = []
    rows: list[Appearance] = []
    for c in range(cameras):
        cam = f"cam{c + 1}"
        for k in range(n_files):
            length = min(clip_s, total_s - k * clip_s)
            start = START_UTC + timedelta(seconds=k * clip_s)
            rel = f"{cam}/{cam}_{start.strftime('%Y%m%d-%H%M%S')}.mp4"
            file_rng = np.random.default_rng([seed, c, k])
            walkers = schedule(file_rng, cast, n_cuts, length, gap_s)
            jobs.append(FileJob(out_dir / rel, rel, cam, start, length, fps, (w, h), (seed, c, k), tuple(walkers)))
            n_frames = round(length * fps)
            for walker in walkers:
                span = _frame_times(walker, fps, n_frames)
                if span is not None:
                    rows.append(Appearance(walker.person, cam, rel, span[0], span[1], start))

    out_dir.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    progress("write", 0, len(jobs))
    if workers <= 1 or len(jobs) <= 1:
        for n, job in enumerate(jobs, 1):
            write_file(job, cuts)
            progress("write", n, len(jobs))
    else:
        ctx = get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(cuts,)) as pool:
            for n, _ in enumerate(pool.map(_write_in_worker, jobs), 1):
                progress("write", n, len(jobs))

    return _write_truth(out_dir / "truth.csv", rows)


def _write_truth(truth: Path, rows: list[Appearance]) -> Path:
    rows = sorted(rows, key=lambda a: (a.file_start, a.camera, a.start_offset_s, a.person))
    truth.parent.mkdir(parents=True, exist_ok=True)
    with open(truth, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=TRUTH_FIELDS, lineterminator="\n")
        writer.writeheader()
        for a in rows:
            writer.writerow(a.row())
    return truth


# -- scripted tracking cases ----------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A short scripted file for tracking: who is where and when, and an optional cut."""

    name: str
    clip_s: float
    walkers: tuple[Walker, ...]
    cut_s: float | None = None


CASE_NAMES = ("replace-cut", "replace", "replace-gap", "replace-gap-cut", "crossing")


def seated(person: str, cut: int, t0: float, t1: float, x: float = 0.5, size: float = 0.32) -> Walker:
    """Someone sitting still at one place (a guest on a set, a person at a counter)."""
    return Walker(
        person=person,
        cut=cut,
        t0=t0,
        t1=t1,
        x0=x,
        x1=x,
        y=0.4,
        size0=size,
        size1=size,
        tilt_deg=4.0,
        turn=0.12,
        turn_hz=0.2,
        blur_sigma=0.0,
        jpeg_quality=80,
        body_color=(70, 80, 120),
    )


def tracking_case(name: str, a: tuple[str, int], b: tuple[str, int]) -> Case:
    """One of CASE_NAMES with person `a` first and person `b` second ((person, cut index) each).

    replace*: b takes a's place; with a cut to a closer shot of the same set at 4 s, without
    one, and after a gap (1 s, shorter than the tracker's default max_gap_s). crossing: a
    and b walk towards each other along one line, b a little farther away and hidden behind
    a where they meet.
    """
    if name == "crossing":
        walk = dict(tilt_deg=3.0, turn=0.1, turn_hz=0.3, blur_sigma=0.0, jpeg_quality=80)
        return Case(
            name,
            8.0,
            (
                Walker(a[0], a[1], 0.5, 7.5, 0.15, 0.85, 0.42, 0.30, 0.30, body_color=(60, 90, 150), **walk),
                Walker(b[0], b[1], 0.5, 7.5, 0.85, 0.15, 0.38, 0.26, 0.26, body_color=(150, 80, 60), **walk),
            ),
        )
    gap = name.startswith("replace-gap")
    ends = (3.45, 4.5) if gap else (3.95, 4.0)
    cut_s = 4.0 if name.endswith("-cut") else None
    if name not in CASE_NAMES:
        raise ValueError(f"unknown case {name!r} (one of {', '.join(CASE_NAMES)})")
    return Case(name, 8.5, (seated(a[0], a[1], 0.0, ends[0]), seated(b[0], b[1], ends[1], 8.0)), cut_s)


def generate_cases(
    out_dir: str | Path,
    photos_dir: str | Path = DEFAULT_PHOTOS,
    labels_csv: str | Path | None = None,
    names: Sequence[str] = CASE_NAMES,
    people: int = 4,
    seed: int = 0,
    size: tuple[int, int] = (640, 360),
    fps: int = 10,
) -> dict[str, Case]:
    """Write each tracking case as CASE/CASE_20260314-080000.mp4 (camera = case name) and a
    truth.csv; returns {relative file path: Case}. Pairs of `people` (seeded choice among the
    photos' people with a usable face) rotate through the cases, so a person appears in
    several files. Raises FileNotFoundError when the photos are missing."""
    out_dir = Path(out_dir)
    photos = labelled_photos(photos_dir, labels_csv)
    rng = np.random.default_rng(seed)
    names_all = list(photos)
    chosen = sorted(names_all[i] for i in rng.permutation(len(names_all))[: max(2, people) + 2])
    cuts = {
        p: [fit_cut(c, int(0.4 * size[1])) for c in cs] for p, cs in face_cuts({p: photos[p] for p in chosen}).items()
    }
    cast = sorted(cuts)[: max(2, people)]
    if len(cast) < 2:
        raise FileNotFoundError(f"fewer than two people with a usable face under {photos_dir}")
    cases: dict[str, Case] = {}
    rows: list[Appearance] = []
    for k, name in enumerate(names):
        a, b = cast[k % len(cast)], cast[(k + 1) % len(cast)]
        case = tracking_case(name, (a, k % len(cuts[a])), (b, (k + 1) % len(cuts[b])))
        rel = f"{name}/{name}_{START_UTC.strftime('%Y%m%d-%H%M%S')}.mp4"
        job = FileJob(
            out_dir / rel,
            rel,
            name,
            START_UTC,
            case.clip_s,
            fps,
            size,
            (seed, 1000 + k, 0),
            case.walkers,
            case.cut_s,
            STUDIO_PIECES,
        )
        write_file(job, cuts)
        cases[rel] = case
        n_frames = round(case.clip_s * fps)
        for walker in case.walkers:
            span = _frame_times(walker, fps, n_frames)
            if span is not None:
                rows.append(Appearance(walker.person, name, rel, span[0], span[1], START_UTC))
    _write_truth(out_dir / "truth.csv", rows)
    return cases


def true_person(case: Case, t_s: float, box: Sequence[float], size: tuple[int, int]) -> str | None:
    """Who a face found at `box` (xyxy pixels) at time t_s shows: the nearest person, in front
    of the others, whose drawn face holds the box's centre; None for a face nobody drew there."""
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    best: tuple[float, float, str] | None = None
    for walker in case.walkers:
        if not walker.t0 - 1e-6 <= t_s <= walker.t1 + 1e-6:
            continue
        cx, cy, face_h = face_at(walker, t_s, size)
        if abs(x - cx) <= 0.6 * face_h and abs(y - cy) <= 0.6 * face_h:
            key = (-min(walker.size0, walker.size1), math.hypot(x - cx, y - cy), walker.person)
            best = key if best is None or key < best else best
    return None if best is None else best[2]


def read_truth(path: str | Path) -> list[dict[str, str]]:
    """Rows of a truth.csv as dicts (strings, as written)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.synth --out DIR [--hours H] [--cameras N] [--seed S] [--photos DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synth", description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder for the camera folders and truth.csv")
    parser.add_argument("--photos", type=Path, default=None, help="labelled photo folder (default: photos-deepface)")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kwargs = {"photos_dir": args.photos} if args.photos else {}
    try:
        truth = generate(args.out, cameras=args.cameras, hours=args.hours, seed=args.seed, **kwargs)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"benchmarks.synth: error: {exc}\n")
    print(f"wrote {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

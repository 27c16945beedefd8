"""Per-feed processing: detections of consecutive frames -> faces, tracks and pictures.

Detection is done by the caller (per frame, or on batches gathered across feeds); this module
adds landmarks, quality, the tracker's encode-on-demand descriptors (from the run's encoder),
face crops and one snapshot per sighting, and packs the feed's result for the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..case.results import TrackRecord
from ..config import Config
from ..models import dlib_models
from ..models.base import FaceModels
from ..models.imaging import downscale
from ..types import Detections, Faces, Frame
from ..video.jpeg import encode_jpeg
from ..video.sampler import SampleStats
from .quality import face_quality
from .tracks import Tracker

SNAPSHOT_WIDTH = 960
# Share of the colour histogram that changes between samples at a scene cut. Measured at 2 fps:
# cuts in an edited clip 0.46-0.61; a crowd walking or a panning camera 0.03-0.23.
SCENE_CUT_CHANGE = 0.35
# Structure change between two samples, from edge maps of a 160x90 grey copy cut into 6x8 cells:
# in each cell that holds edges and is not mostly covered by people (`people_mask`), the share of
# its edges with no edge within 2 pixels in the other sample; the median over such cells, taken
# both ways and averaged, and again after following a pan (`follow_pan`). A cut moves the edges
# of most cells. Measured at 2 fps: a 1080p crowd walking and people close to cctv-asl's cameras
# 0.01 at most, someone stepping into an empty synthetic scene 0.17, a handheld shot following a
# performer (hamilton 4-7 s) 0 once people are masked; cuts 0.44-1.0.
STRUCTURE_CUT_CHANGE = 0.35
EDGE_CELLS = (6, 8)
MIN_CELL_EDGES = 10  # a cell with fewer edge pixels says nothing about structure
MIN_CELLS = 8  # fewer cells with edges (a dark or flat picture, a bare wall behind people): no verdict
MAX_PAN = 0.25  # a camera pans at most this share of the frame between two samples
EDGE_SIZE = (160, 90)
_BOX_BGR = (0, 200, 255)


def scene_signature(image: np.ndarray) -> np.ndarray:
    """Normalised hue-saturation histogram (128,) float32 of a small copy of an RGB frame."""
    hsv = cv2.cvtColor(cv2.resize(image, (160, 90), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def is_scene_cut(before: np.ndarray | None, after: np.ndarray) -> bool:
    """True when the colour make-up of the picture changed as at a cut (total variation distance).

    People moving or a camera panning change a small share of the histogram.

    >>> a, b = np.zeros(128, np.float32), np.zeros(128, np.float32)
    >>> a[0], b[0], b[1] = 1.0, 0.9, 0.1
    >>> c = np.zeros(128, np.float32); c[5] = 1.0
    >>> is_scene_cut(a, b), is_scene_cut(a, c), is_scene_cut(None, a)
    (False, True, False)
    """
    return before is not None and 0.5 * float(np.abs(after - before).sum()) > SCENE_CUT_CHANGE


def edge_signature(image: np.ndarray) -> np.ndarray:
    """Edge map (90, 160) bool of a small, slightly blurred grey copy of an RGB frame."""
    grey = cv2.cvtColor(cv2.resize(image, EDGE_SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return cv2.Canny(cv2.GaussianBlur(grey, (0, 0), 1.0), 40, 100) > 0


def people_mask(boxes: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """(90, 160) bool, True where the people whose faces are at `boxes` (xyxy, pixels of a frame
    of `frame_shape`) may be: a face widened by a face width each side, down to 4 face heights
    below it. Their edges move with them, so they say nothing about a cut."""
    mask = np.zeros(EDGE_SIZE[::-1], bool)
    sx, sy = EDGE_SIZE[0] / frame_shape[1], EDGE_SIZE[1] / frame_shape[0]
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        w, h = x2 - x1, y2 - y1
        a, b = int(max(0, (x1 - w) * sx)), int(max(0, (y1 - 0.5 * h) * sy))
        mask[b : int(np.ceil((y2 + 4 * h) * sy)), a : int(np.ceil((x2 + w) * sx))] = True
    return mask


def edge_change(before: np.ndarray, after: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """How much of the picture's structure moved between two edge maps (see STRUCTURE_CUT_CHANGE):
    0 = every edge still in place, 1 = none; 0 when either map has too few cells with edges.
    ignore: (90, 160) bool, where people are (cells more than a quarter covered are not judged).

    >>> a = np.zeros((90, 160), bool); a[::6, :] = True
    >>> edge_change(a, np.roll(a, 1, axis=0)), edge_change(a, np.roll(a, 3, axis=0))
    (0.0, 1.0)
    """
    kernel = np.ones((5, 5), np.uint8)
    near_before = cv2.dilate(before.astype(np.uint8), kernel) > 0
    near_after = cv2.dilate(after.astype(np.uint8), kernel) > 0
    if ignore is not None:
        before, after = before & ~ignore, after & ~ignore
    lost = _moved_share(before, near_after, ignore)
    new = _moved_share(after, near_before, ignore)
    if lost is None or new is None:
        return 0.0
    return (lost + new) / 2


def _moved_share(edges: np.ndarray, near_other: np.ndarray, ignore: np.ndarray | None) -> float | None:
    """Median, over cells with at least MIN_CELL_EDGES edges, of the share of those edges that
    are not near an edge of the other map; None when fewer than MIN_CELLS cells have edges."""
    rows, cols = EDGE_CELLS
    h, w = edges.shape
    shares = []
    for i in range(rows):
        for j in range(cols):
            cell = (slice(i * h // rows, (i + 1) * h // rows), slice(j * w // cols, (j + 1) * w // cols))
            if ignore is not None and ignore[cell].mean() > 0.25:
                continue
            n = int(edges[cell].sum())
            if n >= MIN_CELL_EDGES:
                shares.append(int((edges[cell] & ~near_other[cell]).sum()) / n)
    return float(np.median(shares)) if len(shares) >= MIN_CELLS else None


def is_structure_cut(before: np.ndarray | None, after: np.ndarray, ignore: np.ndarray | None = None) -> bool:
    """True when the picture's edges changed as at a cut, even if its colours did not (a new
    shot of the same set). People walking move a small share of the edges; `ignore` masks
    where people were seen (`people_mask`)."""
    if before is None or edge_change(before, after, ignore) <= STRUCTURE_CUT_CHANGE:
        return False
    panned = follow_pan(before, after)
    return panned is None or edge_change(before, panned, ignore) > STRUCTURE_CUT_CHANGE


def follow_pan(before: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """`after` shifted back by the picture's overall shift since `before` (phase correlation of
    the blurred edge maps), so that a camera pan is not read as a new picture; None when that
    shift is more than MAX_PAN of the frame or pushes most edges out of it (no pan explains it).

    >>> a = np.zeros((90, 160), bool); a[20:70:7, 30:130] = True; a[20:70, 30:130:9] = True
    >>> bool((follow_pan(a, np.roll(a, (3, 12), axis=(0, 1))) == a).all())
    True
    """
    blur = [cv2.GaussianBlur(m.astype(np.float32), (0, 0), 2.0) for m in (before, after)]
    (dx, dy), _ = cv2.phaseCorrelate(blur[0], blur[1])
    h, w = after.shape
    if abs(dx) > MAX_PAN * w or abs(dy) > MAX_PAN * h:
        return None
    shift = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
    moved = cv2.warpAffine(after.astype(np.uint8), shift, (w, h), flags=cv2.INTER_NEAREST) > 0
    return moved if moved.sum() >= 0.5 * after.sum() else None


def frame_grey(frame: Frame) -> np.ndarray:
    """Grey (H, W) uint8 of a frame: its luma plane when the sampler gives one, else from RGB."""
    if frame.luma is not None:
        return frame.luma()
    return cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)


class ChangeGate:
    """Skip detection on frames where nothing changed since the last searched frame held no face.

    CCTV is mostly an empty scene; detection is the dominant cost. A frame is compared with the
    last frame that was searched, on a 96x54 grey copy in 6x6 blocks: if no block's mean grey
    level moved by more than `threshold` and that frame had no face, this one has none either.
    A person entering changes some block a lot even when the whole frame hardly changes. At
    least every `max_skip_s` seconds a frame is searched anyway. The grey copy comes from the
    decoder's luma plane where there is one, so a skipped frame is never converted to RGB.
    """

    GRID = (54, 96)  # rows, columns of the grey copy; blocks of 6x6

    def __init__(self, threshold: float = 8.0, max_skip_s: float = 10.0):
        self.threshold = threshold
        self.max_skip_s = max_skip_s
        self.reference: np.ndarray | None = None
        self.reference_t = 0.0
        self.reference_empty = False
        self.skipped = 0
        self._last: tuple[Frame, np.ndarray] | None = None  # blocks of the frame seen last

    @staticmethod
    def blocks(grey: np.ndarray) -> np.ndarray:
        """(9, 16) mean grey level of 6x6 blocks of a 96x54 copy of a grey (H, W) uint8 picture."""
        small = cv2.resize(grey, ChangeGate.GRID[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
        return small.reshape(9, 6, 16, 6).mean(axis=(1, 3))

    def frame_blocks(self, frame: Frame) -> np.ndarray:
        if self._last is None or self._last[0] is not frame:
            self._last = (frame, self.blocks(frame_grey(frame)))
        return self._last[1]

    def needs_detection(self, frame: Frame) -> bool:
        if self.reference is None or not self.reference_empty or frame.pts_s - self.reference_t >= self.max_skip_s:
            return True
        if float(np.abs(self.frame_blocks(frame) - self.reference).max()) > self.threshold:
            return True
        self.skipped += 1
        return False

    def searched(self, frame: Frame, n_faces: int) -> None:
        self.reference = self.frame_blocks(frame)
        self.reference_t = frame.pts_s
        self.reference_empty = n_faces == 0


def jpeg(image_rgb: np.ndarray, quality: int = 85) -> bytes:
    """(H, W, 3) uint8 RGB (as the sampler gives frames) -> JPEG bytes."""
    return encode_jpeg(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), quality)


def face_crop(image: np.ndarray, box: np.ndarray, size: int, margin: float = 0.25) -> np.ndarray:
    """A square crop around `box` (xyxy) with a margin, padded at the borders, resized to size x size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1) * (0.5 + margin)
    h, w = image.shape[:2]
    a, b = round(cx - half), round(cy - half)
    c, d = round(cx + half), round(cy + half)
    crop = image[max(0, b) : min(h, d), max(0, a) : min(w, c)]
    crop = cv2.copyMakeBorder(crop, max(0, -b), max(0, d - h), max(0, -a), max(0, c - w), cv2.BORDER_CONSTANT)
    if crop.size == 0:
        crop = np.zeros((size, size, 3), np.uint8)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def snapshot(image: np.ndarray, box: np.ndarray) -> bytes:
    """The frame (at most SNAPSHOT_WIDTH wide) with the face boxed, as JPEG."""
    scale = min(1.0, SNAPSHOT_WIDTH / image.shape[1])
    small = downscale(image, scale).copy()
    x1, y1, x2, y2 = (round(v * scale) for v in box)
    thickness = max(2, small.shape[1] // 320)
    cv2.rectangle(small, (x1, y1), (x2, y2), _BOX_BGR[::-1], thickness)
    return jpeg(small, 80)


@dataclass
class FeedResult:
    """Everything one file produced, ready for Store.save_file_result."""

    faces: Faces
    thumbs: list[bytes]
    tracks: list[TrackRecord]
    stats: SampleStats = field(default_factory=SampleStats)


class FeedProcessor:
    """Consumes the detections of one feed in time order."""

    def __init__(self, cfg: Config, models: FaceModels):
        self.cfg = cfg
        self.encoder = models.encoder
        self.tracker = Tracker(cfg.tracks, models.encoder.dim)
        self.parts: list[Faces] = []
        self.thumbs: list[bytes] = []
        self.snapshots: dict[int, bytes] = {}  # face index -> snapshot, kept for each track's best so far
        self.best: dict[int, float] = {}  # live track id -> best quality seen
        self.n_faces = 0
        self.signature: np.ndarray | None = None
        self.edges: np.ndarray | None = None
        self.people: np.ndarray | None = None  # people_mask of the last searched frame
        self.gate = ChangeGate() if cfg.faces.skip_static else None

    def needs_detection(self, frame: Frame) -> bool:
        """False when the frame is known to hold no face (unchanged since an empty searched one)."""
        return self.gate is None or self.gate.needs_detection(frame)

    def add_unchanged(self, frame: Frame) -> None:
        """A frame skipped by the change gate: no faces, time still moves on for the tracker."""
        self.tracker.step(frame.pts_s, np.zeros((0, 4), np.int32), np.zeros(0, np.float32), self._no_encode)

    def _no_encode(self, rows: np.ndarray) -> np.ndarray:
        return np.zeros((len(rows), self.encoder.dim), np.float32)

    def add(self, frame: Frame, found: Detections) -> None:
        image = frame.image
        boxes, scores = found.boxes, found.scores
        n = len(boxes)
        if self.gate is not None:
            self.gate.searched(frame, n)
        if self._is_cut(image, boxes):
            self.tracker.cut()
        if n == 0:
            self.add_unchanged(frame)
            return
        points = dlib_models.landmarks(image, boxes)
        quality = face_quality(image, boxes, points, scores)
        chips = dlib_models.appearance(image, points) if self.cfg.tracks.confirm_links else None
        embeddings = np.full((n, self.encoder.dim), np.nan, np.float32)
        aligned_on = points if self.encoder.landmarks == "dlib" else found.keypoints

        def encode(rows: np.ndarray) -> np.ndarray:
            rows = np.asarray(rows, dtype=np.int64)
            todo = rows[np.isnan(embeddings[rows, 0])]
            if len(todo):
                if aligned_on is None:  # make_models pairs such an encoder only with a detector that has them
                    raise ValueError("the encoder aligns on the detector's key points, and the detector gave none")
                embeddings[todo] = self.encoder.encode(image, aligned_on[todo])
            return embeddings[rows]

        track_ids = self.tracker.step(frame.pts_s, boxes, quality, encode, chips)
        for i in range(n):
            tid = int(track_ids[i])
            if quality[i] > self.best.get(tid, -1.0):
                self.best[tid] = float(quality[i])
                self.snapshots[self.n_faces + i] = snapshot(image, boxes[i])
            self.thumbs.append(jpeg(face_crop(image, boxes[i], self.cfg.report.thumb_px)))
        self.parts.append(
            Faces(
                boxes=boxes.astype(np.int32),
                scores=scores.astype(np.float32),
                landmarks=points,
                quality=quality.astype(np.float32),
                frame=np.full(n, frame.index, np.int64),
                pts_s=np.full(n, frame.pts_s, np.float64),
                embeddings=embeddings,
            )
        )
        self.n_faces += n

    def _is_cut(self, image: np.ndarray, boxes: np.ndarray) -> bool:
        """A scene cut since the last searched frame: colours or (when enabled) the structure
        away from the people in either frame changed."""
        signature = scene_signature(image)
        cut = is_scene_cut(self.signature, signature)
        self.signature = signature
        if self.cfg.tracks.structure_cuts:
            edges, people = edge_signature(image), people_mask(boxes, image.shape)
            ignore = people if self.people is None else people | self.people
            cut = cut or is_structure_cut(self.edges, edges, ignore)
            self.edges, self.people = edges, people
        return cut

    def finish(self, stats: SampleStats) -> FeedResult:
        tracks = self.tracker.finish()  # first: it may still encode the last face of open tracks
        faces = Faces.concat(self.parts, self.encoder.dim)
        records = []
        for track in tracks:
            rows = np.asarray(track.faces, dtype=np.int64)
            # snapshots exist for faces that were their track's best so far; after a split the
            # best of them within this part is the part's best snapshot
            with_snap = [int(r) for r in rows if int(r) in self.snapshots]
            best = max(with_snap, key=lambda r: faces.quality[r]) if with_snap else None
            snap = self.snapshots[best] if best is not None else jpeg(np.zeros((8, 8, 3), np.uint8))
            records.append(track_record(faces, rows, track.descriptor(self.cfg.tracks.max_encodings), snap, self.cfg))
        return FeedResult(faces, self.thumbs, records, stats)


def track_record(
    faces: Faces, rows: np.ndarray, descriptor: np.ndarray | None, snapshot: bytes, cfg: Config
) -> TrackRecord:
    """The sighting over `rows` of `faces`, ready for the store. It steers the grouping when it has
    a descriptor, and its best face is good enough (tracks.min_quality) and big enough
    (faces.min_face_px)."""
    heights = faces.boxes[rows, 3] - faces.boxes[rows, 1]
    steer = (
        descriptor is not None
        and float(faces.quality[rows].max()) >= cfg.tracks.min_quality
        and int(heights.max()) >= cfg.faces.min_face_px
    )
    return TrackRecord(
        start_s=float(faces.pts_s[rows].min()),
        end_s=float(faces.pts_s[rows].max()),
        face_rows=rows,
        steer=bool(steer),
        embedding=descriptor,
        snapshot=snapshot,
    )

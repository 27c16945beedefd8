"""Choose the clustering thresholds from labelled faces: `vidcluster calibrate LABELLED_DIR`.

Input: one folder per person holding photos or clips of that person, or a `labels.csv`
(`file` column relative to the folder, plus a `person`, `identity`, `identity_group` or
`label` column). The largest face of each photo (and of each sampled clip frame) is encoded;
the distances between every two faces split into same-person and different-person
distributions. For each candidate threshold: precision (pairs below it that are one person),
recall (one-person pairs below it) and F1, over the range the encoder's profile gives (dlib
0.30-0.80, in steps of 0.01). The threshold with the best F1 becomes
`identities.eps`; the 95th percentile of the same-person distances (an average of one
person's distances stays below it) becomes `identities.eps_average`. `fragment()` is YAML
that `vidcluster run --config` accepts; it names the encoder, because the thresholds hold for
its distances only.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..catalog import DEFAULT_ENCODER, ENCODERS, profile_of
from ..config import FacesConfig
from ..errors import VidclusterError, VideoOpenError
from ..models.base import FaceModels
from ..models.registry import make_encoder, portrait_models
from ..video.sampler import read_still, sample_video
from ..video.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

Progress = Callable[[str, int, int], None]

THRESHOLD_STEP = 0.01
CLIP_FPS = 1.0  # frames sampled per second of a labelled clip
CLIP_FRAMES = 10  # frames of one clip used at most
LABEL_COLUMNS = ("person", "identity", "identity_group", "label")
SAME_PERCENTILE = 95.0  # eps_average: this percentile of same-person distances


class CalibrationError(VidclusterError):
    """The labelled folder cannot calibrate: missing, one person only, or no faces found."""

    exit_code = 2


@dataclass(frozen=True)
class Threshold:
    """Pair decisions at one distance threshold (pairs closer than it are called one person)."""

    distance: float
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Calibration:
    """same, different: (P,) float64 face-pair distances; rows: one Threshold per candidate."""

    people: int
    faces: int
    same: np.ndarray
    different: np.ndarray
    rows: tuple[Threshold, ...]
    chosen: Threshold
    eps_average: float
    encoder: str = DEFAULT_ENCODER

    def fragment(self) -> str:
        """A config fragment (YAML) with the chosen thresholds, for `run --config`."""
        doc = {
            "faces": {"encoder": self.encoder},
            "identities": {"eps": float(self.chosen.distance), "eps_average": round(float(self.eps_average), 2)},
        }
        head = (
            f"# vidcluster calibrate: {self.people} people, {self.faces} faces, {len(self.same)} same-person"
            f" and {len(self.different)} different-person pairs; F1 {self.chosen.f1:.3f} at eps\n"
        )
        return head + yaml.safe_dump(doc, sort_keys=False)

    def lines(self) -> list[str]:
        """Human-readable summary: distributions, the table, the choice."""
        q = (5, 50, 95)
        out = [
            f"{self.people} people, {self.faces} faces",
            "same person      pairs {:6d}  distance p5/median/p95 {:.3f} {:.3f} {:.3f}".format(
                len(self.same), *np.percentile(self.same, q)
            ),
            "different people pairs {:6d}  distance p5/median/p95 {:.3f} {:.3f} {:.3f}".format(
                len(self.different), *np.percentile(self.different, q)
            ),
            "threshold  precision  recall     F1",
        ]
        out += [
            f"{r.distance:9.2f}  {r.precision:9.3f}  {r.recall:6.3f}  {r.f1:5.3f}"
            + ("  <- chosen" if r is self.chosen else "")
            for r in self.rows
        ]
        out.append(
            f"chosen: eps {self.chosen.distance:.2f} (F1 {self.chosen.f1:.3f}), eps_average {self.eps_average:.2f}"
        )
        return out


def thresholds_for(encoder: str) -> np.ndarray:
    """The candidate thresholds for `encoder`: its profile's sweep range in steps of 0.01.

    >>> thresholds_for("dlib")[[0, -1]].tolist()
    [0.3, 0.8]
    """
    profile = profile_of(encoder)
    return np.round(np.arange(profile.sweep_low, profile.sweep_high + THRESHOLD_STEP / 2, THRESHOLD_STEP), 2)


def threshold_table(
    same: np.ndarray, different: np.ndarray, thresholds: np.ndarray | None = None
) -> tuple[Threshold, ...]:
    """Precision, recall and F1 of "closer than t = same person" for each t.

    >>> rows = threshold_table(np.array([0.2, 0.4]), np.array([0.5, 0.7]), np.array([0.3, 0.45, 0.6]))
    >>> [(r.distance, round(r.precision, 3), r.recall, round(r.f1, 3)) for r in rows]
    [(0.3, 1.0, 0.5, 0.667), (0.45, 1.0, 1.0, 1.0), (0.6, 0.667, 1.0, 0.8)]
    """
    thresholds = thresholds_for(DEFAULT_ENCODER) if thresholds is None else thresholds
    same, different = np.sort(np.asarray(same, np.float64)), np.sort(np.asarray(different, np.float64))
    tp = np.searchsorted(same, thresholds, side="right").astype(np.float64)
    fp = np.searchsorted(different, thresholds, side="right").astype(np.float64)
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
    recall = tp / max(len(same), 1)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    return tuple(
        Threshold(float(t), float(p), float(r), float(f))
        for t, p, r, f in zip(thresholds, precision, recall, f1, strict=True)
    )


def calibrate_descriptors(descriptors: np.ndarray, people: list[str], encoder: str = DEFAULT_ENCODER) -> Calibration:
    """Calibration from (N, D) descriptors of `encoder` and their (N,) person names.

    The best F1 wins; among equal F1 the middle of the tied run (the widest margin both ways).
    """
    x = np.asarray(descriptors, np.float64)
    names = np.asarray(people)
    if len(x) != len(names) or x.ndim != 2:
        raise ValueError("descriptors must be (N, D) with one person name per row")
    if len(x) == 0:
        raise CalibrationError("no faces found in the labelled photos or clips")
    if len(set(names.tolist())) < 2:
        raise CalibrationError(f"faces of only one person ({names[0]}): calibrating needs two people or more")
    i, j = np.triu_indices(len(x), k=1)
    dist = np.linalg.norm(x[i] - x[j], axis=1)
    same_mask = names[i] == names[j]
    same, different = dist[same_mask], dist[~same_mask]
    if len(same) == 0:
        raise CalibrationError("every person has one face only: calibrating needs two faces of someone")
    rows = threshold_table(same, different, thresholds_for(encoder))
    f1 = np.array([r.f1 for r in rows])
    best = np.flatnonzero(np.isclose(f1, f1.max()))
    chosen = rows[int(best[len(best) // 2])]
    eps_average = max(chosen.distance, float(np.percentile(same, SAME_PERCENTILE)))
    return Calibration(len(set(names.tolist())), len(x), same, different, rows, chosen, eps_average, encoder)


def labelled_files(root: str | Path) -> list[tuple[Path, str]]:
    """(file, person) for every photo or clip under `root` (labels.csv, or one folder per person)."""
    root = Path(root)
    if not root.is_dir():
        raise CalibrationError(f"{root}: no such folder")
    table = root / "labels.csv"
    if table.is_file():
        with open(table, newline="") as fh:
            reader = csv.DictReader(fh)
            column = next((c for c in LABEL_COLUMNS if c in (reader.fieldnames or [])), None)
            if "file" not in (reader.fieldnames or []) or column is None:
                raise CalibrationError(f"{table}: needs a 'file' column and one of {', '.join(LABEL_COLUMNS)}")
            rows = [(root / r["file"], r[column].strip()) for r in reader if r["file"] and r[column].strip()]
        return [(p, who) for p, who in rows if p.is_file() and _usable(p)]
    return [
        (p, d.name)
        for d in sorted(root.iterdir())
        if d.is_dir()
        for p in sorted(d.rglob("*"))
        if p.is_file() and _usable(p)
    ]


def photo_models(encoder: str) -> FaceModels:
    """Models for labelled portraits: a coarse look (PORTRAIT_DETECT_WIDTH_PX) finds the face; HOG for dlib's
    descriptor (as the recipe did), YuNet for an encoder that aligns on its key points."""
    return portrait_models(make_encoder(FacesConfig(encoder=encoder, device="cpu")))


def labelled_faces(
    root: str | Path, progress: Progress | None = None, encoder: str = DEFAULT_ENCODER
) -> tuple[np.ndarray, list[str]]:
    """(N, D) float32 descriptors of the largest face per photo / sampled clip frame, and N person names."""
    files = labelled_files(root)
    if not files:
        raise CalibrationError(f"{root}: no photos or clips (one folder per person, or a labels.csv)")
    found: list[np.ndarray] = []
    people: list[str] = []
    models = photo_models(encoder)
    for n, (path, who) in enumerate(files):
        for descriptor in _largest_faces(path, models):
            found.append(descriptor)
            people.append(who)
        if progress:
            progress("calibrate", n + 1, len(files))
    return (np.stack(found) if found else np.zeros((0, models.encoder.dim), np.float32)), people


def calibrate(root: str | Path, progress: Progress | None = None, encoder: str = DEFAULT_ENCODER) -> Calibration:
    """Encode the labelled faces under `root` with `encoder` and choose its thresholds (see the
    module docstring)."""
    if encoder not in ENCODERS:
        raise CalibrationError(f"--encoder: {encoder!r} is not one of {', '.join(ENCODERS)}")
    descriptors, people = labelled_faces(root, progress, encoder)
    if len(descriptors) == 0:
        raise CalibrationError(f"{root}: no faces found in the labelled photos or clips")
    return calibrate_descriptors(descriptors, people, encoder)


def write_fragment(calibration: Calibration, path: str | Path) -> Path:
    """Write `calibration.fragment()` to `path`; CalibrationError when it cannot be written."""
    path = Path(path)
    try:
        path.write_text(calibration.fragment())
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot write the config fragment ({exc.strerror})") from None
    return path


def _usable(path: Path) -> bool:
    ext = path.suffix.lower()
    return ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS


def _largest_faces(path: Path, models: FaceModels) -> list[np.ndarray]:
    """Descriptor of the largest face in a photo, or in each of a clip's first CLIP_FRAMES samples."""
    try:
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            images = [read_still(path).image]
        else:
            images = []
            for frame in sample_video(path, CLIP_FPS):
                images.append(frame.image)
                if len(images) >= CLIP_FRAMES:
                    break
    except VideoOpenError:
        return []  # an unreadable file holds no face; "no faces at all" is reported by the caller
    out = []
    for image in images:
        boxes, descriptors = models.encode_photo(image)
        if len(boxes):
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            out.append(descriptors[int(np.argmax(areas))])
    return out

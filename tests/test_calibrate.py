"""calibrate: threshold table, choice, errors, and the CLI on real labelled photos."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import data_path

from vidcluster.catalog import DEFAULT_ENCODER, profile_of
from vidcluster.cli import main
from vidcluster.commands.calibrate import CalibrationError, calibrate_descriptors, labelled_files, threshold_table
from vidcluster.config import load_config


def two_people(n: int = 4, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """n faces each of two people: ~0.3 apart within a person, ~0.8 between them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, 128))
    centres *= 0.8 / np.sqrt(2) / np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, n, axis=0) + rng.normal(scale=0.3 / 16, size=(2 * n, 128))
    return x, ["ann"] * n + ["bob"] * n


def test_threshold_table_counts_pairs_below_each_threshold():
    rows = threshold_table(np.array([0.1, 0.3, 0.5]), np.array([0.4, 0.9]), np.array([0.2, 0.45, 1.0]))
    assert [(r.precision, r.recall) for r in rows] == [(1.0, 1 / 3), (2 / 3, 2 / 3), (3 / 5, 1.0)]


def test_chosen_threshold_separates_two_people():
    x, who = two_people()
    cal = calibrate_descriptors(x, who, encoder="dlib")  # dlib-shaped distances, dlib's sweep
    assert cal.people == 2 and cal.faces == 8 and len(cal.same) == 12 and len(cal.different) == 16
    assert cal.same.max() < cal.chosen.distance < cal.different.min()
    assert cal.chosen.f1 == 1.0 and cal.eps_average >= cal.chosen.distance


@pytest.mark.parametrize(
    "x, who, message",
    [
        (np.zeros((0, 128)), [], "no faces found"),
        (np.zeros((3, 128)), ["ann"] * 3, "only one person"),
        (np.eye(3, 128), ["ann", "bob", "cy"], "one face only"),
    ],
)
def test_bad_labelled_sets_are_clear_errors(x, who, message):
    with pytest.raises(CalibrationError, match=message):
        calibrate_descriptors(x, who)


def test_labels_csv_and_folders(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.jpg").write_bytes(b"x")
    (tmp_path / "ann" / "notes.txt").write_text("not a photo")
    assert labelled_files(tmp_path) == [(tmp_path / "ann" / "a.jpg", "ann")]
    (tmp_path / "labels.csv").write_text("file,identity_group\nann/a.jpg,g1\nmissing.jpg,g2\n")
    assert labelled_files(tmp_path) == [(tmp_path / "ann" / "a.jpg", "g1")]
    (tmp_path / "labels.csv").write_text("file,who\nann/a.jpg,g1\n")
    with pytest.raises(CalibrationError, match="needs a 'file' column"):
        labelled_files(tmp_path)


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["calibrate", *[str(a) for a in args], "-q"])
    return result.exit_code, result.stdout, result.stderr


def blank_photos(root: Path, people: list[str]) -> None:
    for who in people:
        (root / who).mkdir(parents=True)
        cv2.imwrite(str(root / who / "1.png"), np.full((120, 120, 3), 128, np.uint8))


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "no such folder"),
        (lambda root: root.mkdir(), "no photos or clips"),
        (lambda root: blank_photos(root, ["ann", "bob"]), "no faces found"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, setup, message):
    root = tmp_path / "labelled"
    setup(root)
    code, out, err = invoke(root)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("vidcluster: error: ") and message in err


def _subset_of_johns(dst: Path, people: int = 3, photos: int = 3) -> Path:
    src = data_path("photos-johns")
    for d in sorted(p for p in src.iterdir() if p.is_dir())[:people]:
        (dst / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir())[:photos]:
            shutil.copy(f, dst / d.name / f.name)
    return dst


def _subset_of_deepface(dst: Path, groups: int = 3, photos: int = 2) -> Path:
    src = data_path("photos-deepface")
    with open(src / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep: dict[str, list[str]] = {}
    for r in rows:
        if len(keep) < groups or r["identity_group"] in keep:
            chosen = keep.setdefault(r["identity_group"], [])
            if len(chosen) < photos:
                chosen.append(r["file"])
    (dst / "images").mkdir(parents=True)
    with open(dst / "labels.csv", "w", newline="") as fh:
        fh.write("file,identity_group\n")
        for group, files in keep.items():
            for f in files:
                shutil.copy(src / f, dst / f)
                fh.write(f"{f},{group}\n")
    return dst


# (flags, encoder, where real faces put the chosen eps): dlib's distances, and the default encoder's
# anywhere inside its own sweep
ENCODER_RUNS = [
    (("--encoder", "dlib"), "dlib", (0.35, 0.8)),
    ((), DEFAULT_ENCODER, (profile_of(DEFAULT_ENCODER).sweep_low, profile_of(DEFAULT_ENCODER).sweep_high)),
]


@pytest.mark.parametrize("flags, encoder, eps_range", ENCODER_RUNS, ids=["dlib", "default"])
@pytest.mark.parametrize("subset", [_subset_of_johns, _subset_of_deepface])
def test_cli_on_real_photos_writes_a_fragment_run_accepts(tmp_path, subset, flags, encoder, eps_range):
    root = subset(tmp_path / "labelled")
    code, out, err = invoke(root, "--out", tmp_path / "fragment.yaml", *flags)
    assert code == 0, err
    assert "<- chosen" in out and "config fragment -> " in out
    cfg = load_config(tmp_path / "fragment.yaml")
    assert cfg.faces.encoder == encoder
    chosen = float(out.split("chosen: eps ")[1].split()[0])
    assert cfg.identities.eps == pytest.approx(chosen)
    # real faces: one person's photos come closer than different people's at the chosen threshold
    low, high = eps_range
    assert low <= cfg.identities.eps <= high and cfg.identities.eps_average >= cfg.identities.eps
    single = root / "only_one"
    single.mkdir()
    first = next(p for p in sorted(root.rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    (single / "x").mkdir()
    shutil.copy(first, single / "x" / first.name)
    code, _, err = invoke(single)
    assert code == 2 and "only one person" in err

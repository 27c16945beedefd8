"""The answer must not change as the case grows: copies and near-copies of sightings, a person seen often."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import data_path
from tests_support import dlib_identities

from benchmarks.cases import copy_cameras
from vidcluster.analysis.identities import cluster
from vidcluster.analysis.metrics import bcubed
from vidcluster.config import Config, from_mapping

DIM = 128


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIM)
    return v / np.linalg.norm(v)


def _blob(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    """n descriptors around `centre`, two of them ~`spread` apart."""
    return centre + rng.normal(scale=spread / np.sqrt(2 * DIM), size=(n, DIM))


def sightings(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Track means of 7 people shaped like the cctv-asl sample: 2..6 sightings each, 0.14-0.34 apart.

    The last person has two sightings 0.34 apart only: alone they join, as two single rows.
    Returns (x (N, 128) float32, truth (N,) int64).
    """
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for person, n in enumerate([6, 6, 4, 3, 5, 2]):
        rows.append(_blob(rng, _unit(rng) * 0.5, n, 0.22))
        truth += [person] * n
    centre = _unit(rng) * 0.5
    step = _unit(rng) * 0.17
    rows.append(np.stack([centre - step, centre + step]))
    truth += [6, 6]
    return np.concatenate(rows).astype(np.float32), np.array(truth, np.int64)


def replicate(x: np.ndarray, times: int, noise: float, seed: int = 7) -> np.ndarray:
    """Every row `times` times (row by row), each copy moved by ~`noise`."""
    rng = np.random.default_rng(seed)
    out = np.repeat(x, times, axis=0)
    return (out + rng.normal(scale=noise / np.sqrt(2 * DIM), size=out.shape)).astype(np.float32)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return bcubed(a, b) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("times", [3, 10, 30])
@pytest.mark.parametrize("noise", [0.0, 0.001, 0.03])
def test_replicated_sightings_give_the_same_partition(seed, times, noise):
    x, truth = sightings(seed)
    counts = np.full(len(x), 2.0)
    cfg = dlib_identities()
    base = cluster(x, cfg, counts=counts)
    assert _same_partition(truth, base)
    grown = cluster(replicate(x, times, noise), cfg, counts=np.repeat(counts, times))
    assert _same_partition(np.repeat(base, times), grown)


@pytest.mark.parametrize("mode_spread, gap", [(0.1, 0.15), (0.15, 0.1), (0.15, 0.2), (0.2, 0.15)])
def test_a_person_seen_often_in_two_conditions_stays_one_identity(mode_spread, gap):
    """100 sightings at a desk, 100 at a door: each row's nearest neighbours all lie in its own mode."""
    rng = np.random.default_rng(5)
    centre, shift = _unit(rng) * 0.5, _unit(rng) * gap
    x = np.concatenate([_blob(rng, centre, 100, mode_spread), _blob(rng, centre + shift, 100, mode_spread)])
    labels = cluster(x.astype(np.float32), dlib_identities(), counts=np.full(200, 3.0))
    assert len(set(labels.tolist())) == 1


@pytest.mark.parametrize("spread", [0.0, 0.05, 0.1])
@pytest.mark.parametrize("gap", [0.3, 0.4])
def test_brothers_seen_often_and_alike_stay_apart(spread, gap):
    """Near-duplicate sightings become one node each; that must not hide how tight each brother is."""
    rng = np.random.default_rng(3)
    centre, shift = _unit(rng) * 0.5, _unit(rng) * gap
    one = _blob(rng, centre, 6, 0.15)
    two = _blob(rng, centre + shift, 6, 0.15)
    x = np.concatenate([replicate(one, 20, spread), replicate(two, 20, spread)])
    labels = cluster(x, dlib_identities(), counts=np.full(len(x), 3.0))
    assert _same_partition(np.repeat([0, 1], 120), labels)


def test_copies_are_not_collapsed_across_a_cannot_link():
    """Two identical rows that must differ (two faces in one frame) stay two identities."""
    x, _ = sightings(0)
    twin = np.concatenate([x, x[:1]])
    labels = cluster(twin, dlib_identities(min_samples=1), cannot_link=np.array([[0, len(x)]]))
    assert labels[0] != labels[-1]


# --- the real sample, grown by copying its camera folders ---------------------------------


def _grown_case(tmp_path: Path, sets: int) -> None:
    from vidcluster.run.pipeline import analyse

    src = data_path("cctv-asl")
    with open(src / "truth.csv", newline="") as f:
        truth = {r["file"]: r["person"] for r in csv.DictReader(f)}
    copy_cameras(src, tmp_path / "in", sets, truth)  # each copy other bytes: equal files are analysed once
    cfg: Config = from_mapping({"sources": {"timezone": "Europe/Berlin"}, "report": {"clips": False}})
    summary = analyse([tmp_path / "in"], tmp_path / "out", cfg)
    assert (summary.n_analysed, summary.duplicates) == (len(truth) * sets, [])  # every copy analysed
    assert len(summary.identities) == len(set(truth.values()))


def test_cctv_asl_copied_three_times_keeps_five_identities(tmp_path):
    _grown_case(tmp_path, 3)


@pytest.mark.slow
def test_cctv_asl_copied_ten_times_keeps_five_identities(tmp_path):
    _grown_case(tmp_path, 10)

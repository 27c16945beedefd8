"""The people present, no more and no fewer, in every sub-case of the cctv-asl sample (default encoder).

Each camera alone, each pair, all three, and the whole set copied three times under other camera
names, analysed with configs/cctv-asl.yaml and the default settings: the identities found must be
exactly the people truth.csv names for those files, at BCubed F >= 0.99 (per detected face, each
face belonging to its clip's person). `python -m benchmarks cases` measures the same cases for
every encoder.
"""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

import pytest
from conftest import data_path

from benchmarks.cases import copy_cameras
from vidcluster.analysis.metrics import bcubed
from vidcluster.catalog import DEFAULT_ENCODER
from vidcluster.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cctv-asl.yaml"
CAMERAS = ("entrance", "hallway", "office")
MIN_F = 0.99


def _truth(root: Path) -> dict[str, str]:
    """{camera folder/file name: person} from truth.csv."""
    with open(root / "truth.csv", newline="") as fh:
        return {r["file"]: r["person"] for r in csv.DictReader(fh)}


def _analyse(inputs: list[Path], out: Path, truth: dict[str, str]) -> tuple[int, int, float]:
    """(identities found, people present, BCubed F) of one run with the default encoder."""
    from vidcluster.run.pipeline import analyse

    cfg = load_config(CONFIG, overrides={"faces": {"encoder": DEFAULT_ENCODER}, "report": {"clips": False}})
    summary = analyse(inputs, out, cfg)
    people, found = [], []
    with open(out / "report" / "faces.csv", newline="") as fh:
        for face in csv.DictReader(fh):
            path = Path(face["file"])
            people.append(truth[f"{path.parent.name}/{path.name}"])
            found.append(int(face["identity"]))
    return len(summary.identities), len(set(people)), bcubed(people, found)[2]


def _case(cameras: tuple[str, ...]):
    return pytest.param(cameras, id="+".join(cameras))


CASES = [_case((c,)) for c in CAMERAS] + [_case(p) for p in combinations(CAMERAS, 2)] + [_case(CAMERAS)]


@pytest.mark.parametrize("cameras", CASES)
def test_cameras_give_exactly_the_people_present(tmp_path, cameras):
    root = data_path("cctv-asl")
    found, people, f = _analyse([root / c for c in cameras], tmp_path / "out", _truth(root))
    assert (found, f >= MIN_F) == (people, True), f"{found} identities for {people} people, BCubed F {f:.3f}"


def test_cctv_asl_copied_three_times_under_other_camera_names(tmp_path):
    root = data_path("cctv-asl")
    copied = copy_cameras(root, tmp_path / "in", 3, _truth(root))
    found, people, f = _analyse([tmp_path / "in"], tmp_path / "out", copied)
    manifest = json.loads((tmp_path / "out" / "report" / "manifest.json").read_text())
    assert [i["status"] for i in manifest["inputs"]] == ["done"] * len(copied)  # every copy analysed, none a duplicate
    assert (found, f >= MIN_F) == (people, True), f"{found} identities for {people} people, BCubed F {f:.3f}"


def test_a_split_person_is_flagged_close(tmp_path):
    """Entrance and office: the examiner takes one sighting out of the person seen most, so he is
    now two identities; the report says each part may be the other (their sightings lie within
    the limit one person's track means approach)."""
    import json

    from vidcluster.commands import workflow

    root = data_path("cctv-asl")
    out = tmp_path / "out"
    _analyse([root / "entrance", root / "office"], out, _truth(root))
    before = json.loads((out / "report" / "identities.json").read_text())
    most = max(before, key=lambda i: len(i["sightings"]))
    workflow.reject(out, most["id"], f"sighting:{most['sightings'][0]['track_id']}")
    identities = json.loads((out / "report" / "identities.json").read_text())
    assert len(identities) == len(before) + 1
    close = [i for i in identities if i["doubt"] == "close"]
    assert len(close) == 2 and {c["nearest"][0]["id"] for c in close} == {c["id"] for c in close}

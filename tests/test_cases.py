"""The people present, no more and no fewer, in every sub-case of the cctv-asl sample (default encoder).

Each camera alone, each pair, all three, and the whole set copied three times under other camera
names, analysed with configs/cctv-asl.yaml and the default settings: the identities found must be
exactly the people truth.csv names for those files, at BCubed F >= 0.99 (per detected face, each
face belonging to its clip's person). `python -m benchmarks cases` measures the same cases for
every encoder.
"""

from __future__ import annotations

import csv
import shutil
from itertools import combinations
from pathlib import Path

import pytest
from conftest import data_path

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


# Measured with `python -m benchmarks cases` (identities found of people present, BCubed F); a case
# is marked only when no encoder passes it.
_BOTH_FAIL = {
    ("entrance", "office"): "P2 is split: dlib 6 identities of 5 (F 0.958), sface 6 of 5 (F 0.940); "
    "the two parts are flagged close (test_a_split_person_is_flagged_close)",
}


def _case(cameras: tuple[str, ...]):
    mark = [pytest.mark.xfail(strict=True, reason=_BOTH_FAIL[cameras])] if cameras in _BOTH_FAIL else []
    return pytest.param(cameras, id="+".join(cameras), marks=mark)


CASES = [_case((c,)) for c in CAMERAS] + [_case(p) for p in combinations(CAMERAS, 2)] + [_case(CAMERAS)]


@pytest.mark.parametrize("cameras", CASES)
def test_cameras_give_exactly_the_people_present(tmp_path, cameras):
    root = data_path("cctv-asl")
    found, people, f = _analyse([root / c for c in cameras], tmp_path / "out", _truth(root))
    assert (found, f >= MIN_F) == (people, True), f"{found} identities for {people} people, BCubed F {f:.3f}"


def test_cctv_asl_copied_three_times_under_other_camera_names(tmp_path):
    root = data_path("cctv-asl")
    truth = _truth(root)
    copied = {}
    for k in (1, 2, 3):
        for cam in CAMERAS:
            name = cam if k == 1 else f"{cam}_c{k}"
            (tmp_path / "in" / name).mkdir(parents=True)
            for clip in sorted((root / cam).glob("*.mkv")):
                target = tmp_path / "in" / name / clip.name.replace(cam, name, 1)
                shutil.copyfile(clip, target)
                if k > 1:  # the same frames in a file of other bytes (a re-export): equal bytes are one file
                    with open(target, "ab") as fh:
                        fh.write(b"\0" * 16)
                copied[f"{name}/{target.name}"] = truth[f"{cam}/{clip.name}"]
    found, people, f = _analyse([tmp_path / "in"], tmp_path / "out", copied)
    assert (found, f >= MIN_F) == (people, True), f"{found} identities for {people} people, BCubed F {f:.3f}"


def test_a_split_person_is_flagged_close(tmp_path):
    """Entrance and office: one person's lone entrance sighting lies 0.31 from the rest of him, more
    than 1.4 times their own spread (0.21), so it stays apart; the report says both parts may be one."""
    import json

    root = data_path("cctv-asl")
    _analyse([root / "entrance", root / "office"], tmp_path / "out", _truth(root))
    identities = json.loads((tmp_path / "out" / "report" / "identities.json").read_text())
    close = [i for i in identities if i["doubt"] == "close"]
    assert len(close) == 2 and {c["nearest"][0]["id"] for c in close} == {c["id"] for c in close}

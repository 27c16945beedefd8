"""End to end on the scripted synthetic cases: every sighting holds one person, identities are right.

A person replaced in the same place on the same background (with a cut to a closer shot of
the set, without a cut, after a gap shorter than max_gap_s, after a gap and a cut) and two
people crossing; faces are attributed to the person drawn where they were found.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import data_path

from benchmarks import synth
from vidcluster.config import TracksConfig, load_config
from vidcluster.run.pipeline import analyse

SIZE = (640, 360)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    photos = data_path("photos-deepface", "images")
    root = tmp_path_factory.mktemp("cases")
    cases = synth.generate_cases(root / "footage", photos, size=SIZE)
    analyse([root / "footage"], root / "out", load_config(overrides={"faces": {"detector": "hog", "encoder": "dlib"}}))
    with open(root / "out" / "report" / "faces.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_name = {Path(rel).name: case for rel, case in cases.items()}
    for r in rows:
        box = [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
        r["person"] = synth.true_person(by_name[Path(r["file"]).name], float(r["pts_s"]), box, SIZE)
    return cases, rows


def test_cases_are_what_the_issue_asks_for(analysed):
    cases, _ = analysed
    assert sorted(c.name for c in cases.values()) == sorted(synth.CASE_NAMES)
    for case in cases.values():
        first, second = case.walkers
        assert first.person != second.person
        if case.name.startswith("replace"):
            assert (first.x0, first.y, first.size0) == (second.x0, second.y, second.size0)  # the same place
            gap = second.t0 - first.t1
            assert 0 < gap < TracksConfig().max_gap_s
            assert (case.cut_s is not None) == case.name.endswith("-cut")


def test_faces_found_are_faces_drawn(analysed):
    _, rows = analysed
    assert len(rows) >= 60
    assert sum(r["person"] is None for r in rows) <= 0.05 * len(rows)


@pytest.mark.parametrize("case", synth.CASE_NAMES)
def test_every_track_holds_one_person(analysed, case):
    _, rows = analysed
    people: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["camera"] == case and r["person"] is not None:
            people[r["track_id"]].add(r["person"])
    assert people, f"no faces found in {case}"
    assert all(len(p) == 1 for p in people.values()), dict(people)
    assert len(set.union(*people.values())) == 2  # both people were seen


def test_identities_are_the_people(analysed):
    _, rows = analysed
    identities: dict[int, set[str]] = defaultdict(set)
    of_person: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        if r["person"] is not None and int(r["identity"]) >= 0:
            identities[int(r["identity"])].add(r["person"])
            of_person[r["person"]].add(int(r["identity"]))
    assert all(len(p) == 1 for p in identities.values()), dict(identities)
    assert all(len(i) == 1 for i in of_person.values()), dict(of_person)
    matched = sum(int(r["identity"]) >= 0 for r in rows if r["person"] is not None)
    assert matched >= 0.9 * sum(r["person"] is not None for r in rows)

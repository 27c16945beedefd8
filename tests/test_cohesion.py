"""Doubt made visible: an identity's spread against its nearest other identities."""

import json

import numpy as np
import pytest

from vidcluster.analysis.cohesion import NEAREST_SHOWN, identity_cohesion


def _group(rng, centre, n, noise):
    return centre + rng.normal(0, noise, (n, len(centre)))


def _unit(rng, d=16):
    v = rng.normal(size=d)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("gap, expected", [(0.2, "close"), (1.5, "")])
def test_two_identities_closer_than_one_persons_means_are_flagged(gap, expected):
    rng = np.random.default_rng(1)
    a = _unit(rng)
    b = a + gap * _unit(rng)
    x = np.vstack([_group(rng, a, 5, 0.01), _group(rng, b, 5, 0.01)])
    c = identity_cohesion(x, np.repeat([0, 1], 5), eps_mean=0.42)
    assert c[0].doubt == c[1].doubt == expected
    assert c[0].closest[0] == 1 and c[1].closest[0] == 0
    assert c[0].closest[1] == pytest.approx(np.linalg.norm(a - b), abs=0.05)


def test_an_identity_holding_two_people_is_loose():
    rng = np.random.default_rng(2)
    a, b, far = _unit(rng), _unit(rng), 5 * _unit(rng)
    x = np.vstack([_group(rng, a, 4, 0.01), _group(rng, b, 4, 0.01), _group(rng, far, 3, 0.01)])
    c = identity_cohesion(x, np.array([0] * 8 + [1] * 3), eps_mean=0.42)
    assert c[0].doubt == "loose" and c[0].spread > 0.42
    assert c[1].doubt == "" and c[1].spread < 0.1


def test_noise_is_left_out_and_the_list_is_short():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 8))
    labels = np.repeat(np.arange(6), 5)
    labels[:3] = -1
    c = identity_cohesion(x, labels, eps_mean=0.42)
    assert set(c) == set(range(6)) and all(len(v.nearest) == NEAREST_SHOWN for v in c.values())
    assert all(-1 not in [i for i, _ in v.nearest] for v in c.values())
    assert identity_cohesion(x[:1], np.array([0]), 0.42)[0].nearest == ()


def test_identities_json_says_which_identities_are_doubtful(tmp_path):
    """Grouping the office camera with thresholds far too loose puts its five people in one identity;
    the report flags it as loose (its sightings lie farther apart than one person's means do)."""
    from conftest import data_path

    from vidcluster.config import load_config
    from vidcluster.run.pipeline import analyse

    office = data_path("cctv-asl", "office")
    loose = {"eps": 0.7, "eps_average": 1.0, "spread_ratio": 10.0}  # eps_mean stays dlib's 0.42
    cfg = load_config(
        "configs/cctv-asl.yaml", {"report": {"clips": False}, "faces": {"encoder": "dlib"}, "identities": loose}
    )
    analyse([office], tmp_path / "out", cfg)
    identities = json.loads((tmp_path / "out" / "report" / "identities.json").read_text())
    assert all({"spread", "nearest", "doubt"} <= set(i) for i in identities)
    biggest = max(identities, key=lambda i: i["n_sightings"])
    assert biggest["doubt"] == "loose" and biggest["spread"] > 0.42
    index = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "maybe more than one person" in index
    page = (tmp_path / "out" / "report" / f"identity-{biggest['id']}.html").read_text()
    assert "Nearest identities" in page

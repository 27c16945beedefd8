import pytest

from vidcluster.config import Config, load_config, parse_instant
from vidcluster.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_override_precedence(tmp_path):
    path = write(tmp_path, "sampler: {fps: 3}\nidentities: {eps: 0.4}\n")
    cfg = load_config(path, {"sampler": {"fps": 5.0}, "identities": {"eps": None}})
    assert cfg.sampler.fps == 5.0  # flag beats file
    assert cfg.identities.eps == 0.4  # file beats default
    assert cfg.faces.detector == Config().faces.detector


def test_default_yaml_matches_builtin_defaults():
    from pathlib import Path

    assert load_config(Path(__file__).parents[1] / "configs" / "default.yaml") == Config()


@pytest.mark.parametrize(
    "text,field",
    [
        ("samplr: {fps: 2}", "samplr"),
        ("sampler: {fsp: 2}", "sampler.fsp"),
        ("sampler: {fps: fast}", "sampler.fps"),
        ("sampler: {fps: 0}", "sampler.fps"),
        ("faces: {detector: mtcnn}", "faces.detector"),
        ("identities: {min_samples: 1.5}", "identities.min_samples"),
        ("sources: {timezone: Mars/Base}", "sources.timezone"),
        ("sources: {cameras: [{id: a, timezone: Nowhere}]}", "sources.cameras[0].timezone"),
        ("sources: {cameras: [{id: a}, {id: a}]}", "sources.cameras[1].id"),
        ("sources: {cameras: [{name: x}]}", "sources.cameras[0]"),
        ("sampler: {since: '2026-03-14T11:00', until: '2026-03-14T10:00'}", "sampler"),
        ("sampler: {since: 'yesterday'}", "sampler.since"),
        ("- a list", "top level"),
        ("sampler: [1, 2", "YAML"),
    ],
)
def test_bad_config_names_field_and_file(tmp_path, text, field):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text,tz,iso",
    [
        ("2026-03-14T10:00", "Europe/Berlin", "2026-03-14T09:00:00+00:00"),
        ("2026-03-14T10:00+02:00", "Europe/Berlin", "2026-03-14T08:00:00+00:00"),
        ("2026-03-14T10:00Z", "Asia/Tokyo", "2026-03-14T10:00:00+00:00"),
        ("2026-07-01 10:00:00", "Europe/Berlin", "2026-07-01T08:00:00+00:00"),  # summer time
    ],
)
def test_parse_instant(text, tz, iso):
    assert parse_instant(text, tz, "x").isoformat() == iso

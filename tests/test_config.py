import math

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidcluster.cli import main
from vidcluster.config import _BOUNDS, Config, from_mapping, load_config, parse_instant
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


# -- hostile settings (issue 13): one line, exit 2, the field named; property-based -------------

_INT_FIELDS = {key for key in _BOUNDS if isinstance(getattr(getattr(Config(), key[0]), key[1]), int)}


def _bad_values(key):
    """Values `key` must refuse: NaN, infinities, numbers beyond its bounds, wrong types."""
    lo, hi = _BOUNDS[key]
    outside = st.one_of(
        st.floats(max_value=lo, exclude_max=True, allow_nan=False) if lo is not None else st.nothing(),
        st.floats(min_value=hi, exclude_min=True, allow_nan=False) if hi is not None else st.nothing(),
    )
    wrong_type = st.one_of(
        st.text(max_size=8),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    )
    values = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 1.0e300, -1.0e300]), outside, wrong_type)
    if key in _INT_FIELDS:  # an int field takes no float at all, and no int beyond its bounds
        values = st.one_of(
            values,
            st.floats(allow_nan=False).filter(lambda v: not v.is_integer()),
            st.integers(max_value=int(lo) - 1),
            st.integers(min_value=int(hi) + 1),
        )
    return values


@st.composite
def _bad_setting(draw):
    key = draw(st.sampled_from(sorted(_BOUNDS)))
    return key, draw(_bad_values(key))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-config")
    (folder / "in").mkdir()
    return folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bad_setting())
def test_any_bad_bounded_value_is_one_line_and_exit_2(scratch, setting):
    (section, name), value = setting
    if isinstance(value, str) and value.strip() == "":
        value = "x" + value  # an empty string reads as 'unset' in YAML-free overrides; keep it bad
    path = scratch / "c.yaml"
    path.write_text(yaml.safe_dump({section: {name: value}}))
    result = CliRunner().invoke(main, ["run", str(scratch / "in"), "--out", str(scratch / "o"), "-c", str(path)])
    assert result.exit_code == 2, (setting, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{section}.{name}" in lines[0] and str(path) in lines[0], result.stderr
    assert not (scratch / "o").exists()


_yaml_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_yaml_docs = st.recursive(
    _yaml_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)
_sections = st.dictionaries(
    st.sampled_from(["sources", "sampler", "faces", "tracks", "identities", "report", "run"]),
    st.one_of(
        _yaml_docs,
        st.dictionaries(
            st.sampled_from(["fps", "since", "cameras", "eps", "workers", "timezone", "detector", "thumb_px"]),
            _yaml_docs,
            max_size=3,
        ),
    ),
    max_size=3,
)
_cameras = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "paths", "timezone", "clock_offset_s", "start_time", "filename_pattern", "name"]),
        _yaml_docs,
        max_size=5,
    ),
    max_size=2,
).map(lambda cams: {"sources": {"cameras": cams}})


@settings(max_examples=200, deadline=None)
@given(st.one_of(_yaml_docs, _sections, _cameras))
def test_any_document_gives_a_config_or_one_config_error(tmp_path_factory, doc):
    path = tmp_path_factory.getbasetemp() / "doc.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_config_or_one_config_error(tmp_path_factory, blob):
    path = tmp_path_factory.getbasetemp() / "bytes.yaml"
    path.write_bytes(blob)
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"sampler: {fps: 2}\n# caf\xff\n", "not UTF-8 text (byte 0xff"),
        (b"sources: {cameras: [{id: a, clock_offset_s: 1.0e+300}]}\n", "sources.cameras[0].clock_offset_s"),
        (b"sources: {cameras: [{id: a, clock_offset_s: .nan}]}\n", "sources.cameras[0].clock_offset_s"),
        (b"sampler: {fps: .inf}\n", "sampler.fps"),
        (b"identities: {eps: .nan}\n", "identities.eps"),
        (b"sampler: [1, 2\nfaces: {}\n", "not valid YAML (line"),
        (b"sources: {cameras: [{id: a, paths: 'cam/*'}]}\n", "sources.cameras[0].paths: expected a list"),
        (b"sources: {cameras: 5}\n", "sources.cameras: expected a list"),
        (b"sources: {cameras: [{id: null}]}\n", "sources.cameras[0]"),
        (b"sources: {timezone: America}\n", "sources.timezone"),
        (b"sampler: {since: '0001-01-01T00:00+05:00'}\n", "sampler.since"),
        (b"run: {workers: 1" + b"0" * 5000 + b"}\n", "not valid YAML (Exceeds the limit"),
        (b"run: {workers: 1" + b"0" * 400 + b"}\n", "run.workers"),
    ],
    ids=lambda v: v[:40] if isinstance(v, bytes) else None,
)
def test_hostile_config_file_is_one_line_exit_2(tmp_path, content, needle):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    (tmp_path / "in").mkdir()
    result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "-c", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and str(path) in lines[0], result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["\n", "a\tb", "\x1b[31m"])
def test_an_odd_section_name_stays_one_line(key):
    with pytest.raises(ConfigError) as err:
        from_mapping({key: None}, "doc.yaml")
    assert "\n" not in str(err.value) and "unknown section" in str(err.value)

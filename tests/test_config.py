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


# -- issue 21 item 12: "billion laughs" is refused at once --------------------------------------


def _laughs(field: str, depth: int = 9) -> str:
    """A YAML document whose `field` (section.name) holds anchors nested `depth` deep, nine aliases each:
    a few hundred bytes that stand for 9**depth strings."""
    section, name = field.split(".")
    rows = ["    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"    - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, depth)]
    return f"{section}:\n  {name}:\n" + "\n".join(rows) + "\n"


_LOAD = """
import sys, time
from vidcluster.config import load_config
from vidcluster.errors import ConfigError
t0 = time.process_time()  # CPU time: the shared test machine may hold the child back for a while
try:
    load_config(sys.argv[1])
    print("loaded")
except ConfigError as exc:
    print(exc)
print(f"{time.process_time() - t0:.3f}")
"""


def _bounded_python(code: str, *args: str) -> list[str]:
    """stdout lines of `code` run in a child held to 1 GB and 20 s: before the bounds these cases grew
    to many GB or ran for ever, and a test must fail then, not take the machine with it."""
    import resource
    import subprocess
    import sys

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=20, preexec_fn=limit_memory
        )
    except subprocess.TimeoutExpired:
        pytest.fail("hung (20 s)")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


@pytest.mark.parametrize("field", ["sampler.fps", "report.case", "sources.cameras"])
def test_billion_laughs_is_refused_in_well_under_a_second(tmp_path, field):
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(field))
    lines = _bounded_python(_LOAD, str(path))
    assert len(lines) == 2, lines
    assert str(path) in lines[0] and "aliases are expanded" in lines[0] and len(lines[0]) < 300, lines[0]
    assert float(lines[1]) < 0.5


_SHOW = """
import time
from vidcluster.config import _show, from_mapping
from vidcluster.errors import ConfigError
value = ["lol"] * 9
for _ in range(9):  # 9**10 strings if printed whole
    value = [value] * 9
t0 = time.process_time()
print(_show(value))
try:
    from_mapping({"sampler": {"fps": value}}, "x.yaml")
except ConfigError as exc:
    print(exc)
print(f"{time.process_time() - t0:.3f}")
"""


def test_error_text_never_prints_a_huge_value_whole():
    shown, error, seconds = _bounded_python(_SHOW)
    assert len(shown) <= 60 and shown.startswith("[[[")
    assert error.startswith("x.yaml: sampler.fps: expected float, got list [[[") and len(error) < 200
    assert float(seconds) < 0.5


def test_anchors_within_reason_still_load(tmp_path):
    path = write(
        tmp_path,
        "sources:\n  cameras:\n"
        "    - &berlin {id: entrance, timezone: Europe/Berlin}\n"
        "    - {<<: *berlin, id: hallway}\n"
        "sampler: {fps: &fps 3}\nreport: {montage_faces: *fps}\n",
    )
    cfg = load_config(path)
    assert [(c.id, c.timezone) for c in cfg.sources.cameras] == [
        ("entrance", "Europe/Berlin"),
        ("hallway", "Europe/Berlin"),
    ]
    assert cfg.sampler.fps == 3.0 and cfg.report.montage_faces == 3


def test_an_alias_inside_itself_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match="refers to the node that contains it"):
        load_config(write(tmp_path, "sampler: {fps: &a [*a]}\n"))


# -- issue 21 item 14: free text that reaches the report is bounded -----------------------------


@pytest.mark.parametrize(
    "doc,field",
    [
        ({"report": {"case": "c" * 201}}, "report.case"),
        ({"report": {"examiner": "e" * 201}}, "report.examiner"),
        ({"sources": {"cameras": [{"id": "i" * 101}]}}, "sources.cameras[0].id"),
        ({"sources": {"cameras": [{"id": "a", "name": "n" * 201}]}}, "sources.cameras[0].name"),
        ({"sources": {"cameras": [{"id": "a", "paths": ["p" * 5000]}]}}, "sources.cameras[0].paths[0]"),
        ({"run": {"address": "h" * 5000}}, "run.address"),
    ],
)
def test_text_fields_have_a_length_bound(doc, field):
    with pytest.raises(ConfigError) as err:
        from_mapping(doc, "c.yaml")
    assert f"c.yaml: {field}: " in str(err.value) and "characters, more than the" in str(err.value)
    assert len(str(err.value)) < 200


def test_text_at_the_bound_is_accepted():
    cfg = from_mapping({"report": {"case": "c" * 200, "examiner": "e" * 200}})
    assert len(cfg.report.case) == 200


@pytest.mark.parametrize("flag", ["--case", "--examiner"])
def test_a_huge_case_flag_is_one_line_naming_it(tmp_path, flag):
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), flag, "x" * 5_000_000]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{flag} (report." in lines[0] and len(lines[0]) < 200, result.stderr[:300]
    assert not (tmp_path / "o").exists()


def test_a_config_file_too_large_for_a_config_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("report: {case: '" + "c" * 2_000_000 + "'}\n")
    with pytest.raises(ConfigError, match="too large for a config file") as err:
        load_config(path)
    assert str(path) in str(err.value)


# -- issue 21 item 18: a wall-clock time the zone skips or repeats ------------------------------


@pytest.mark.parametrize(
    "flag,value,words",
    [
        ("--since", "2026-03-29T02:30", "does not exist in Europe/Berlin"),  # clocks go 02:00 -> 03:00
        ("--until", "2026-03-29T02:59:59", "does not exist in Europe/Berlin"),
        ("--since", "2026-10-25T02:30", "happens twice in Europe/Berlin"),  # 02:00-03:00 runs twice
    ],
)
@pytest.mark.parametrize("where", ["default zone", "camera zone"])
def test_window_in_a_dst_gap_or_overlap_is_an_error_naming_the_flag(tmp_path, flag, value, words, where):
    text = (
        "sources: {timezone: Europe/Berlin}\n"
        if where == "default zone"
        else "sources: {cameras: [{id: hallway, timezone: Europe/Berlin}]}\n"
    )
    path = write(tmp_path, text)
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "-c", str(path), flag, value]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vidcluster: error: {flag} (sampler.") and words in lines[0], lines
    assert "+0" in lines[0]  # says how to write it with an offset
    assert not (tmp_path / "o").exists()


def test_the_offsets_given_in_the_message_are_each_one_instant():
    with pytest.raises(ConfigError) as err:
        parse_instant("2026-10-25T02:30", "Europe/Berlin", "--since")
    before, after = str(err.value).split(" (the first) or ")
    first, second = before.split()[-1], after.split()[0]
    assert parse_instant(first, "Europe/Berlin", "x").isoformat() == "2026-10-25T00:30:00+00:00"
    assert parse_instant(second, "Europe/Berlin", "x").isoformat() == "2026-10-25T01:30:00+00:00"
    with pytest.raises(ConfigError) as err:
        parse_instant("2026-03-29T02:30", "Europe/Berlin", "--since")
    suggested = str(err.value).split()[-1]
    assert parse_instant(suggested, "Europe/Berlin", "x").isoformat() == "2026-03-29T01:30:00+00:00"


def test_times_next_to_a_dst_change_and_with_an_offset_are_accepted():
    assert parse_instant("2026-03-29T01:59", "Europe/Berlin", "x").isoformat() == "2026-03-29T00:59:00+00:00"
    assert parse_instant("2026-03-29T03:00", "Europe/Berlin", "x").isoformat() == "2026-03-29T01:00:00+00:00"
    assert parse_instant("2026-10-25T02:30+01:00", "Europe/Berlin", "x").isoformat() == "2026-10-25T01:30:00+00:00"
    assert parse_instant("2026-03-29T02:30", "UTC", "x").isoformat() == "2026-03-29T02:30:00+00:00"


def test_a_camera_start_time_in_a_gap_names_the_field(tmp_path):
    path = write(tmp_path, "sources: {cameras: [{id: a, timezone: Europe/Berlin, start_time: '2026-03-29T02:10'}]}\n")
    with pytest.raises(ConfigError, match=r"sources\.cameras\[0\]\.start_time: .* does not exist"):
        load_config(path)


# -- issue 21, new user: several -c files are merged in order -----------------------------------


def test_several_config_files_merge_in_order(tmp_path):
    first = tmp_path / "cameras.yaml"
    first.write_text(
        "sources:\n  timezone: Europe/Berlin\n  cameras:\n"
        "    - {id: hallway, timezone: Europe/Paris, paths: ['hall/*']}\n"
        "    - {id: office, timezone: Europe/Berlin}\n"
        "identities: {eps: 1.0, min_samples: 3}\n"
    )
    second = tmp_path / "tuning.yaml"
    second.write_text(
        "sources:\n  cameras:\n    - {id: hallway, name: Hall}\n    - {id: entrance}\n"
        "identities: {eps: 0.9, min_samples: null}\nsampler: {fps: 4}\n"
    )
    cfg = load_config([first, second], {"sampler": {"fps": 5.0}})
    assert cfg.sources.timezone == "Europe/Berlin"  # kept from the first: the second does not set it
    assert [(c.id, c.name, c.timezone, c.paths) for c in cfg.sources.cameras] == [
        ("hallway", "Hall", "Europe/Paris", ("hall/*",)),
        ("office", "", "Europe/Berlin", ()),
        ("entrance", "", "UTC", ()),
    ]
    assert cfg.identities.eps == 0.9 and cfg.identities.min_samples == 3  # null leaves the earlier value
    assert cfg.sampler.fps == 5.0  # the flag beats both files
    assert load_config([second, first]).identities.eps == 1.0  # order decides


def test_cli_reads_every_config_file(tmp_path, monkeypatch):
    import vidcluster.cli as cli

    seen = []

    def fake_analyse(inputs, out, cfg, progress=None):
        seen.append(cfg)
        raise ConfigError("stopped here")

    monkeypatch.setattr(cli, "analyse", fake_analyse)
    first = write(tmp_path, "sources: {timezone: Europe/Berlin}\n")
    second = tmp_path / "second.yaml"
    second.write_text("identities: {min_samples: 4}\n")
    result = CliRunner().invoke(
        main, ["run", str(tmp_path), "--out", str(tmp_path / "o"), "-c", str(first), "--config", str(second)]
    )
    assert result.exit_code == 2 and "stopped here" in result.stderr
    assert seen[0].sources.timezone == "Europe/Berlin" and seen[0].identities.min_samples == 4


def test_an_error_in_the_first_of_two_files_names_that_file(tmp_path):
    first = write(tmp_path, "sampler: {fps: 0}\n")
    second = tmp_path / "second.yaml"
    second.write_text("sampler: {fps: 2}\n")
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "-c", str(first), "-c", str(second)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == f"vidcluster: error: {first}: sampler.fps: 0.0 is outside [0.01, 120.0]"


def test_a_later_file_switching_encoder_refuses_the_earlier_thresholds(tmp_path):
    first = write(tmp_path, "faces: {encoder: dlib}\nidentities: {eps: 0.45}\n")
    second = tmp_path / "sface.yaml"
    second.write_text("faces: {encoder: sface}\n")
    with pytest.raises(ConfigError) as err:
        load_config([first, second])
    assert str(second) in str(err.value) and f"{first} sets identities.eps" in str(err.value)
    third = tmp_path / "sface-tuned.yaml"
    third.write_text("faces: {encoder: sface}\nidentities: {eps: 1.0}\n")  # sets its own: fine
    assert load_config([first, third]).identities.eps == 1.0

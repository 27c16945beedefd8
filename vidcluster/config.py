"""One frozen config object, one section per stage, loaded from YAML and checked once.

Precedence: CLI flag > config file > default. Every error names the field and the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .catalog import (
    ALGORITHMS,
    DEFAULT_ENCODER,
    DETECTORS,
    ENCODERS,
    ENGINES,
    PROFILE_FIELDS,
    profile_of,
    profile_values,
)
from .errors import ConfigError


@dataclass(frozen=True)
class CameraConfig:
    """How to recognise one camera's files and read their start times."""

    id: str
    name: str = ""
    paths: tuple[str, ...] = ()  # glob patterns matched against the file path (fnmatch, '**' allowed)
    timezone: str = "UTC"
    filename_pattern: str = ""  # strftime-style, e.g. "entrance_%Y%m%d-%H%M%S"
    clock_offset_s: float = 0.0  # added to every start time (DVR clock drift correction)
    start_time: str = ""  # fixed ISO 8601 start for files that carry none

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class SourcesConfig:
    cameras: tuple[CameraConfig, ...] = ()
    timezone: str = "UTC"  # zone for cameras the config does not list
    use_mtime: bool = True  # last resort for the start time, flagged as unreliable


@dataclass(frozen=True)
class SamplerConfig:
    fps: float = 2.0  # sampled frames per second of video time
    since: str = ""  # ISO 8601; without an offset it is read in each camera's zone
    until: str = ""


# Detection widths (px): frames wider than this are downscaled for detection. The run's default,
# and the coarser look that finds the one face of a portrait (labelled photos, probe photos).
DETECT_WIDTH_PX = 1280
PORTRAIT_DETECT_WIDTH_PX = 1024


@dataclass(frozen=True)
class FacesConfig:
    detector: str = "auto"  # catalog.DETECTORS (auto: yunet for sface; for dlib cnn with CUDA, else yunet, else hog)
    encoder: str = DEFAULT_ENCODER  # catalog.ENCODERS; its distance profile fills every distance threshold not set
    device: str = "auto"  # auto | cpu | cuda: ONNX Runtime's execution provider (cuda with the [gpu] extra)
    gpu_batch_size: int = 16  # frames per detector call on a GPU, gathered across feeds
    detect_width: int = DETECT_WIDTH_PX  # frames wider than this are downscaled for detection (with upsample 1: faces from ~54 px at 1080p)
    upsample: int = 1  # HOG/CNN upsampling of the detection copy
    min_face_px: int = 20  # faces smaller than this (full-res box height) do not steer clustering
    cnn_batch_size: int = 4  # frames per CNN call, gathered across units (measured: larger batches are no faster)
    skip_static: bool = True  # no detection on frames unchanged since an empty one (see feed.ChangeGate)
    yunet_score: float = 0.6  # YuNet's score threshold (0..1)
    yunet_confirm_score: float = 0.85  # yunet faces scored below this are kept only where HOG finds them too
    smallest_face_px: int = 0  # yunet: smallest face wanted (full-res px) sets the detection scale; 0 = detect_width


# The distance thresholds a config leaves unset are its encoder's (`_with_profile`); the dataclass
# defaults below are those of the default encoder, so that a bare Config() is self-consistent.
_DEFAULT_PROFILE = profile_of(DEFAULT_ENCODER)


@dataclass(frozen=True)
class TracksConfig:
    max_gap_s: float = 1.5  # a track survives this long without a detection
    min_iou: float = 0.1  # geometric gate for linking
    max_distance: float = _DEFAULT_PROFILE.track_max_distance  # descriptor gate for linking when both sides are encoded
    encode_every: int = 6  # re-encode a track at least every K of its faces
    max_encodings: int = 8  # descriptors kept per track
    min_quality: float = 0.15  # faces below this are kept but do not steer clustering
    confirm_links: bool = True  # confirm every link by appearance (false: position alone where unambiguous)
    min_appearance_corr: float = 0.8  # aligned-chip correlation below this asks for a descriptor
    confirm_distance: float = (
        _DEFAULT_PROFILE.track_confirm_distance
    )  # a link confirmed by descriptor needs at most this
    confirm_gap_s: float = 0.75  # a link over a longer gap is always confirmed by descriptor
    structure_cuts: bool = True  # scene cuts also from an edge-map change (same colours, new picture)


@dataclass(frozen=True)
class IdentitiesConfig:
    algorithm: str = "graph-average"  # graph-average | dbscan | chinese-whispers
    eps: float = (
        _DEFAULT_PROFILE.eps
    )  # distance threshold between single faces (every distance here: the encoder's profile)
    eps_mean: float = (
        _DEFAULT_PROFILE.eps_mean
    )  # dbscan, graph-average: the threshold two tracks approach as they average more faces
    min_samples: int = 2  # faces an identity needs (a track counts its faces)
    split_chains: bool = True  # dbscan: split clusters that only a chain of close pairs holds together
    eps_average: float = (
        _DEFAULT_PROFILE.eps_average
    )  # graph-average: largest average distance at which two groups join
    min_spread: float = _DEFAULT_PROFILE.min_spread  # graph-average: a group's spread never counts as less than this
    spread_ratio: float = 1.4  # graph-average: groups join only when their average distance is at most this
    #   many times the spread inside them (two look-alikes are farther apart than each is from himself)
    neighbours: int = 10  # graph-average: nearest neighbours per row in the graph


@dataclass(frozen=True)
class ReportConfig:
    montage_faces: int = 25
    thumb_px: int = 112
    clips: bool = True  # cut a short H.264 clip per video sighting into report/clips/
    clip_context_s: float = 1.5  # footage kept before and after each sighting in its clip
    clip_max_s: float = 20.0  # a clip is never longer than this (a long sighting keeps its beginning)
    case: str = ""  # case reference shown on every page and in the manifest
    examiner: str = ""  # who examines it (also recorded by `vidcluster confirm`)


@dataclass(frozen=True)
class RunConfig:
    workers: int = 0  # 0 = one per core
    file_time_limit_s: float = 0.0  # stop decoding a file after this long; 0 = 60 s + 20x its duration
    engine: str = "local"  # local (processes on this machine) | ray (a Ray cluster)
    address: str = ""  # ray: HOST:PORT of the cluster's head; empty = start a local Ray instance
    segment_s: float = 60.0  # long files are cut into units of about this many seconds of video (shorter, not
    # below 20 s, when the run has fewer units than workers)
    segment_overlap_s: float = 2.0  # lead-in each unit decodes before its start, to join tracks at the border

    @property
    def n_workers(self) -> int:
        """Worker processes to start: `workers`, or one per core when it is 0."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class Config:
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    tracks: TracksConfig = field(default_factory=TracksConfig)
    identities: IdentitiesConfig = field(default_factory=IdentitiesConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# (section, field) -> (low, high) inclusive bounds; None = unbounded on that side
_BOUNDS: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("sampler", "fps"): (0.01, 120.0),
    ("faces", "detect_width"): (64, 8192),
    ("faces", "upsample"): (0, 3),
    ("faces", "min_face_px"): (0, 10000),
    ("faces", "cnn_batch_size"): (1, 1024),
    ("faces", "gpu_batch_size"): (1, 1024),
    ("faces", "yunet_score"): (0.05, 0.99),
    ("faces", "yunet_confirm_score"): (0.0, 1.0),
    ("faces", "smallest_face_px"): (0, 10000),
    ("tracks", "max_gap_s"): (0.0, 600.0),
    ("tracks", "min_iou"): (0.0, 1.0),
    ("tracks", "max_distance"): (0.0, 2.0),
    ("tracks", "encode_every"): (1, 10000),
    ("tracks", "max_encodings"): (1, 1000),
    ("tracks", "min_quality"): (0.0, 1.0),
    ("tracks", "min_appearance_corr"): (-1.0, 1.0),
    ("tracks", "confirm_distance"): (0.0, 2.0),
    ("tracks", "confirm_gap_s"): (0.0, 600.0),
    ("identities", "eps"): (0.01, 2.0),
    ("identities", "eps_mean"): (0.01, 2.0),
    ("identities", "min_samples"): (1, 1000),
    ("identities", "eps_average"): (0.01, 2.0),
    ("identities", "min_spread"): (0.0, 2.0),
    ("identities", "spread_ratio"): (1.0, 10.0),
    ("identities", "neighbours"): (2, 200),
    ("report", "montage_faces"): (1, 400),
    ("report", "thumb_px"): (32, 512),
    ("report", "clip_context_s"): (0.0, 60.0),
    ("report", "clip_max_s"): (1.0, 600.0),
    ("run", "workers"): (0, 256),
    ("run", "file_time_limit_s"): (0.0, 1e7),
    ("run", "segment_s"): (1.0, 1e6),
    ("run", "segment_overlap_s"): (0.0, 600.0),
}
# Largest clock correction accepted: a camera clock a decade off is already absurd.
MAX_CLOCK_OFFSET_S = 10 * 366 * 86400.0
_CHOICES = {
    ("faces", "detector"): tuple(DETECTORS),
    ("faces", "encoder"): tuple(ENCODERS),
    ("faces", "device"): ("auto", "cpu", "cuda"),
    ("identities", "algorithm"): ALGORITHMS,
    ("run", "engine"): ENGINES,
}


def _where(origin: str, name: str) -> str:
    if origin.startswith("--"):  # a command-line flag: name it first, the field in brackets
        return f"{origin} ({name})"
    return f"{origin}: {name}" if origin else name


def _key(key: Any) -> str:
    """A mapping key as written in a message."""
    return key[:60] if isinstance(key, str) and key.isprintable() else _show(key)  # a newline stays one line


def _show(value: Any, limit: int = 60) -> str:
    """A short repr for messages (a value may be a huge number or a long string)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check one scalar against its declared type (bool is not an int here)."""
    typ = {"float": float, "int": int, "str": str, "bool": bool}.get(typ, typ) if isinstance(typ, str) else typ
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{where}: {_show(value)} is not a finite number")
        return number
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value) if value is not None else ""
    if typ is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {typ.__name__}, got {type(value).__name__} {_show(value)}")


def _check_timezone(tz: str, where: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):  # OSError: a folder of zones, '..'
        raise ConfigError(
            f"{where}: unknown time zone {_show(tz)} (use an IANA name such as 'Europe/Berlin')"
        ) from None


def _build_section(cls: type, data: Mapping[str, Any], section: str, origin: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_where(origin, section)}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise ConfigError(
            f"{_where(origin, section + '.' + _key(unknown[0]))}: unknown key (known: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for name, value in data.items():
        where = _where(origin, f"{section}.{name}")
        f = known[name]
        if section == "sources" and name == "cameras":
            if not isinstance(value, (list, tuple)) and value is not None:
                raise ConfigError(f"{where}: expected a list of cameras, got {type(value).__name__}")
            values[name] = tuple(_build_camera(c, i, origin) for i, c in enumerate(value or []))
        elif value is None:
            continue
        else:
            values[name] = _coerce(value, f.type, where)
    return cls(**values)


def _build_camera(data: Any, index: int, origin: str) -> CameraConfig:
    section = f"sources.cameras[{index}]"
    if not isinstance(data, Mapping) or data.get("id") is None:
        raise ConfigError(f"{_where(origin, section)}: each camera needs at least an 'id'")
    data = dict(data)
    paths = data.pop("paths", None)
    if paths is None:
        paths = []
    if isinstance(paths, str):  # one string would silently become a list of characters elsewhere
        raise ConfigError(
            f"{_where(origin, section + '.paths')}: expected a list of glob patterns, got the string {_show(paths)}"
            f" (write paths: [{_show(paths)}])"
        )
    if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"{_where(origin, section + '.paths')}: expected a list of glob patterns")
    cam = _build_section(CameraConfig, data, section, origin)
    return replace(cam, paths=tuple(paths))


def validate(cfg: Config, origin: str = "") -> Config:
    """Check bounds, choices, zones and the window; return cfg unchanged or raise ConfigError."""
    for (section, name), (lo, hi) in _BOUNDS.items():
        value = getattr(getattr(cfg, section), name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{_where(origin, f'{section}.{name}')}: {value} is not a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{_where(origin, f'{section}.{name}')}: {_show(value)} is outside [{lo}, {hi}]")
    for (section, name), choices in _CHOICES.items():
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(f"{_where(origin, f'{section}.{name}')}: {value!r} is not one of {', '.join(choices)}")
    _check_timezone(cfg.sources.timezone, _where(origin, "sources.timezone"))
    seen: set[str] = set()
    for i, cam in enumerate(cfg.sources.cameras):
        where = _where(origin, f"sources.cameras[{i}]")
        if not cam.id.strip():
            raise ConfigError(f"{where}.id: must not be empty")
        if cam.id in seen:
            raise ConfigError(f"{where}.id: camera {_show(cam.id)} is listed twice")
        seen.add(cam.id)
        offset = cam.clock_offset_s
        if not math.isfinite(offset) or abs(offset) > MAX_CLOCK_OFFSET_S:
            raise ConfigError(
                f"{where}.clock_offset_s: {_show(offset)} is outside [{-MAX_CLOCK_OFFSET_S:.0f}, {MAX_CLOCK_OFFSET_S:.0f}]"
            )
        _check_timezone(cam.timezone, f"{where}.timezone")
        if cam.start_time:
            parse_instant(cam.start_time, cam.timezone, f"{where}.start_time")
    since, until = cfg.sampler.since, cfg.sampler.until
    for name in ("since", "until"):
        text = getattr(cfg.sampler, name)
        if text:
            parse_instant(text, cfg.sources.timezone, _where(origin, f"sampler.{name}"))
    if since and until:
        a = parse_instant(since, cfg.sources.timezone, "since")
        b = parse_instant(until, cfg.sources.timezone, "until")
        if a >= b:
            raise ConfigError(
                f"{_where(origin, 'sampler')}: since ({_show(since)}) must be before until ({_show(until)})"
            )
    return cfg


def parse_instant(text: str, tz: str, where: str) -> datetime:
    """Parse ISO 8601; a time without an offset is read in zone `tz`. Returns an aware UTC datetime.

    >>> parse_instant("2026-03-14T10:00", "Europe/Berlin", "x").isoformat()
    '2026-03-14T09:00:00+00:00'
    """
    example = "(e.g. 2026-03-14T14:00:00+01:00)"
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {_show(text)} is not an ISO 8601 time {example}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00+05:00 lies before year 1 in UTC
        raise ConfigError(f"{where}: {_show(text)} is out of range {example}") from None


_SECTIONS = {
    "sources": SourcesConfig,
    "sampler": SamplerConfig,
    "faces": FacesConfig,
    "tracks": TracksConfig,
    "identities": IdentitiesConfig,
    "report": ReportConfig,
    "run": RunConfig,
}


def from_mapping(data: Mapping[str, Any], origin: str = "") -> Config:
    """Build and validate a Config from a nested mapping (as read from YAML)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin or 'config'}: expected a mapping at the top level")
    unknown = sorted(set(data) - set(_SECTIONS), key=str)
    if unknown:
        raise ConfigError(f"{_where(origin, _key(unknown[0]))}: unknown section (known: {', '.join(_SECTIONS)})")
    data = _with_profile(data)
    sections = {name: _build_section(cls, data.get(name) or {}, name, origin) for name, cls in _SECTIONS.items()}
    return validate(Config(**sections), origin)


def _with_profile(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """`data` with every distance threshold it leaves unset taken from its encoder's profile."""
    faces = data.get("faces")
    encoder = faces.get("encoder") if isinstance(faces, Mapping) else None
    encoder = DEFAULT_ENCODER if encoder is None else encoder  # `encoder:` with no value is the default too
    if not isinstance(encoder, str) or encoder not in ENCODERS:
        return data  # an unknown name (or a non-string) fails validation with the field named
    # Filled for the default encoder as well, so that the result never rests on the dataclass
    # defaults happening to be that encoder's profile.
    out = {name: dict(section) if isinstance(section, Mapping) else section for name, section in data.items()}
    for (section, name), value in profile_values(encoder).items():
        if out.get(section) is None:  # absent, or written as an empty `identities:`
            out[section] = {}
        part = out[section]
        if isinstance(part, dict) and part.get(name) is None:
            part[name] = value
    return out


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    flag_names: Mapping[tuple[str, str], str] | None = None,
) -> Config:
    """Read `path` (YAML) if given, apply `overrides` ({section: {field: value}}, None values ignored).

    `flag_names` ({(section, field): "--flag"}) says which command-line flag gave an override,
    so that an error names the flag rather than the config file.
    """
    data: dict[str, Any] = {}
    origin = ""
    if path is not None:
        origin = str(path)
        data = _read_yaml(Path(path), origin)
        _check_thresholds_fit(data, overrides or {}, origin, (flag_names or {}).get(("faces", "encoder"), "override"))
    for section, values in (overrides or {}).items():
        for name, value in values.items():
            if value is not None:
                # the flag alone, so that its error names the flag (e.g. --since), not the file
                from_mapping({section: {name: value}}, (flag_names or {}).get((section, name), "override"))
                if not isinstance(data.get(section), dict):
                    data[section] = {}
                data[section][name] = value
    return from_mapping(data, origin)


def _encoder_named(data: Mapping[str, Any]) -> Any:
    faces = data.get("faces")
    return faces.get("encoder") if isinstance(faces, Mapping) else None


def _check_thresholds_fit(
    data: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]], origin: str, flag: str
) -> None:
    """Refuse a file's distance thresholds when a flag switches to an encoder of another space: they
    were written for the file's encoder (e.g. by `vidcluster calibrate`) and mean nothing for another."""
    theirs, ours = _encoder_named(data) or DEFAULT_ENCODER, _encoder_named(overrides)
    if ours is None or theirs not in ENCODERS or ours not in ENCODERS or ENCODERS[theirs].space == ENCODERS[ours].space:
        return
    given = [
        f"{section}.{name}"
        for section, name in PROFILE_FIELDS
        if isinstance(data.get(section), Mapping) and data[section].get(name) is not None
    ]
    if given:
        raise ConfigError(
            f"{flag} ({ours}): {origin} sets {', '.join(given)} for {theirs}'s distances; "
            f"they do not carry over to {ours} (drop them, or calibrate for {ours})"
        )


def _read_yaml(path: Path, origin: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file; every failure is one ConfigError line naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read config ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{origin}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML ({_yaml_problem(exc)})") from None
    except RecursionError:
        raise ConfigError(f"{origin}: not valid YAML (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{origin}: not valid YAML ({str(exc).split(':')[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: where, and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())

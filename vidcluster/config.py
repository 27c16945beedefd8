"""One frozen config object, one section per stage, loaded from YAML and checked once.

Precedence: CLI flag > config file > default. Every error names the field and the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

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


@dataclass(frozen=True)
class FacesConfig:
    detector: str = "auto"  # auto | hog | cnn
    detect_width: int = 1280  # frames wider than this are downscaled for detection (with upsample 1: faces from ~54 px at 1080p)
    upsample: int = 1  # HOG/CNN upsampling of the detection copy
    min_face_px: int = 20  # faces smaller than this (full-res box height) do not steer clustering
    cnn_batch_size: int = 16  # frames per CNN batch, gathered across feeds
    skip_static: bool = True  # no detection on frames unchanged since an empty one (see feed.ChangeGate)


@dataclass(frozen=True)
class TracksConfig:
    max_gap_s: float = 1.5  # a track survives this long without a detection
    min_iou: float = 0.1  # geometric gate for linking
    max_distance: float = 0.6  # descriptor gate for linking when both sides are encoded
    encode_every: int = 6  # re-encode a track at least every K of its faces
    max_encodings: int = 8  # descriptors kept per track
    min_quality: float = 0.15  # faces below this are kept but do not steer clustering


@dataclass(frozen=True)
class IdentitiesConfig:
    algorithm: str = "dbscan"  # dbscan | chinese-whispers
    eps: float = 0.5  # distance threshold between single faces (dlib's same-person limit is 0.6)
    eps_mean: float = 0.42  # dbscan: the threshold two tracks approach as they average more faces
    min_samples: int = 2  # faces an identity needs (a track counts its faces)
    split_chains: bool = True  # dbscan: split clusters that only a chain of close pairs holds together


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
    ("tracks", "max_gap_s"): (0.0, 600.0),
    ("tracks", "min_iou"): (0.0, 1.0),
    ("tracks", "max_distance"): (0.0, 2.0),
    ("tracks", "encode_every"): (1, 10000),
    ("tracks", "max_encodings"): (1, 1000),
    ("tracks", "min_quality"): (0.0, 1.0),
    ("identities", "eps"): (0.01, 2.0),
    ("identities", "eps_mean"): (0.01, 2.0),
    ("identities", "min_samples"): (1, 1000),
    ("report", "montage_faces"): (1, 400),
    ("report", "thumb_px"): (32, 512),
    ("report", "clip_context_s"): (0.0, 60.0),
    ("report", "clip_max_s"): (1.0, 600.0),
    ("run", "workers"): (0, 256),
    ("run", "file_time_limit_s"): (0.0, 1e7),
}
_CHOICES = {
    ("faces", "detector"): ("auto", "hog", "cnn"),
    ("identities", "algorithm"): ("dbscan", "chinese-whispers"),
}


def _where(origin: str, name: str) -> str:
    return f"{origin}: {name}" if origin else name


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check one scalar against its declared type (bool is not an int here)."""
    typ = {"float": float, "int": int, "str": str, "bool": bool}.get(typ, typ) if isinstance(typ, str) else typ
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value) if value is not None else ""
    if typ is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {typ.__name__}, got {type(value).__name__} {value!r}")


def _check_timezone(tz: str, where: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {tz!r} (use an IANA name such as 'Europe/Berlin')") from None


def _build_section(cls: type, data: Mapping[str, Any], section: str, origin: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_where(origin, section)}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{_where(origin, section + '.' + str(unknown[0]))}: unknown key (known: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for name, value in data.items():
        where = _where(origin, f"{section}.{name}")
        f = known[name]
        if section == "sources" and name == "cameras":
            values[name] = tuple(_build_camera(c, i, origin) for i, c in enumerate(value or []))
        elif value is None:
            continue
        else:
            values[name] = _coerce(value, f.type, where)
    return cls(**values)


def _build_camera(data: Any, index: int, origin: str) -> CameraConfig:
    section = f"sources.cameras[{index}]"
    if not isinstance(data, Mapping) or "id" not in data:
        raise ConfigError(f"{_where(origin, section)}: each camera needs at least an 'id'")
    data = dict(data)
    paths = data.pop("paths", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"{_where(origin, section + '.paths')}: expected a list of glob patterns")
    cam = _build_section(CameraConfig, data, section, origin)
    return replace(cam, paths=tuple(paths))


def validate(cfg: Config, origin: str = "") -> Config:
    """Check bounds, choices, zones and the window; return cfg unchanged or raise ConfigError."""
    for (section, name), (lo, hi) in _BOUNDS.items():
        value = getattr(getattr(cfg, section), name)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{_where(origin, f'{section}.{name}')}: {value} is outside [{lo}, {hi}]")
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
            raise ConfigError(f"{where}.id: camera {cam.id!r} is listed twice")
        seen.add(cam.id)
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
            raise ConfigError(f"{_where(origin, 'sampler')}: since ({since}) must be before until ({until})")
    return cfg


def parse_instant(text: str, tz: str, where: str) -> datetime:
    """Parse ISO 8601; a time without an offset is read in zone `tz`. Returns an aware UTC datetime.

    >>> parse_instant("2026-03-14T10:00", "Europe/Berlin", "x").isoformat()
    '2026-03-14T09:00:00+00:00'
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an ISO 8601 time (e.g. 2026-03-14T14:00:00+01:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(timezone.utc)


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
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{_where(origin, str(unknown[0]))}: unknown section (known: {', '.join(_SECTIONS)})")
    sections = {name: _build_section(cls, data.get(name) or {}, name, origin) for name, cls in _SECTIONS.items()}
    return validate(Config(**sections), origin)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Read `path` (YAML) if given, apply `overrides` ({section: {field: value}}, None values ignored)."""
    data: dict[str, Any] = {}
    origin = ""
    if path is not None:
        origin = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read config ({exc.strerror or exc})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level")
    for section, values in (overrides or {}).items():
        for name, value in values.items():
            if value is not None:
                data.setdefault(section, {})
                if data[section] is None:
                    data[section] = {}
                data[section][name] = value
    return from_mapping(data, origin)

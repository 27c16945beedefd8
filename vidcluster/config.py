"""One frozen config object, one section per stage, loaded from YAML and checked once.

Precedence: CLI flag > config file > default. Every error names the field and the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
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
# Longest free text, in characters, of the fields that every report page shows; any other text field
# (a path pattern, a time, an address) is held to MAX_TEXT_CHARS. A 50 MB case name once made a 401 MB report.
TEXT_LIMITS = {("report", "case"): 200, ("report", "examiner"): 200, ("camera", "id"): 100, ("camera", "name"): 200}
MAX_TEXT_CHARS = 4096
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


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxtuple = 2, 4, 4, 4


def _show(value: Any, limit: int = 60) -> str:
    """A short repr for messages. The value may be a huge number, a long string or a deep structure of
    shared parts (YAML aliases): it is never printed whole, only the first few items of a few levels.

    >>> _show([[1, 2, 3, 4, 5, 6]] * 10**9)
    '[[1, 2, 3, 4, ...], [1, 2, 3, 4, ...], [1, 2, 3, 4, ...],...'
    """
    try:
        text = _SHORT.repr(value)
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


def _check_length(text: str, limit: int, where: str) -> None:
    if len(text) > limit:
        raise ConfigError(f"{where}: {len(text)} characters, more than the {limit} allowed")


def _check_texts(cfg: Config, at: Callable[[str, str], str], origin: str) -> None:
    """Every text field within its length bound (checked first: later messages quote values)."""
    for section in _SECTIONS:
        part = getattr(cfg, section)
        for f in fields(part):
            value = getattr(part, f.name)
            if isinstance(value, str):
                _check_length(value, TEXT_LIMITS.get((section, f.name), MAX_TEXT_CHARS), at(section, f.name))
    for i, cam in enumerate(cfg.sources.cameras):
        where = _where(origin, f"sources.cameras[{i}]")
        for f in fields(cam):
            value = getattr(cam, f.name)
            if isinstance(value, str):
                _check_length(value, TEXT_LIMITS.get(("camera", f.name), MAX_TEXT_CHARS), f"{where}.{f.name}")
        for j, pattern in enumerate(cam.paths):
            _check_length(pattern, MAX_TEXT_CHARS, f"{where}.paths[{j}]")


def validate(cfg: Config, origin: str = "", flags: Mapping[tuple[str, str], str] | None = None) -> Config:
    """Check bounds, choices, zones and the window; return cfg unchanged or raise ConfigError.

    `flags` ({(section, field): "--flag"}) names the command-line flag that gave a field, for its errors.
    """

    def at(section: str, name: str) -> str:
        flag = (flags or {}).get((section, name))
        return _where(flag or origin, f"{section}.{name}")

    _check_texts(cfg, at, origin)
    for (section, name), (lo, hi) in _BOUNDS.items():
        value = getattr(getattr(cfg, section), name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{at(section, name)}: {value} is not a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{at(section, name)}: {_show(value)} is outside [{lo}, {hi}]")
    for (section, name), choices in _CHOICES.items():
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(f"{at(section, name)}: {_show(value)} is not one of {', '.join(choices)}")
    _check_timezone(cfg.sources.timezone, at("sources", "timezone"))
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
    # A window without an offset is read in each camera's zone (the zone of cameras the config does
    # not list among them): it must name one instant in every one of them.
    zones = dict.fromkeys([cfg.sources.timezone, *(cam.timezone for cam in cfg.sources.cameras)])
    for name in ("since", "until"):
        text = getattr(cfg.sampler, name)
        for tz in zones if text else ():
            parse_instant(text, tz, at("sampler", name))
    if since and until:
        a = parse_instant(since, cfg.sources.timezone, "since")
        b = parse_instant(until, cfg.sources.timezone, "until")
        if a >= b:
            where = (flags or {}).get(("sampler", "since")) or (flags or {}).get(("sampler", "until")) or origin
            raise ConfigError(
                f"{_where(where, 'sampler')}: since ({_show(since)}) must be before until ({_show(until)})"
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
        value = _local(value, ZoneInfo(tz), text, where)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00+05:00 lies before year 1 in UTC
        raise ConfigError(f"{where}: {_show(text)} is out of range {example}") from None


def _local(value: datetime, zone: ZoneInfo, text: str, where: str) -> datetime:
    """The naive wall-clock time `value` in `zone`; ConfigError when the clocks skip it (a DST gap) or
    show it twice (the hour repeated when they go back): either way it names no one instant, so it is
    refused rather than guessed, with the offsets that would make it one.

    >>> _local(datetime(2026, 10, 25, 2, 30), ZoneInfo("Europe/Berlin"), "02:30", "--since")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    vidcluster.errors.ConfigError: --since: '02:30' happens twice in Europe/Berlin (the clocks go back that day); ...
    """
    first, second = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    try:
        offsets = first.utcoffset(), second.utcoffset()
        if offsets[0] == offsets[1]:
            return first
        # in a gap, the time read with the offset before it comes back as a time after it
        after = first.astimezone(timezone.utc).astimezone(zone)
    except (OverflowError, ValueError):
        return first  # at the ends of the calendar; astimezone reports it
    spec = "minutes" if not value.second and not value.microsecond else "auto"
    if after.replace(tzinfo=None) != value:
        raise ConfigError(
            f"{where}: {_show(text)} does not exist in {zone.key} (the clocks skip it that day); "
            f"give a time that does, or one with an offset, e.g. {after.isoformat(timespec=spec)}"
        )
    wall = value.isoformat(timespec=spec)
    a, b = (_offset_text(o) for o in offsets)
    raise ConfigError(
        f"{where}: {_show(text)} happens twice in {zone.key} (the clocks go back that day); give its offset: "
        f"{wall}{a} (the first) or {wall}{b} (the second)"
    )


def _offset_text(offset: timedelta | None) -> str:
    """A UTC offset as ISO 8601 writes it: +02:00."""
    minutes = round((offset or timedelta()).total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


_SECTIONS = {
    "sources": SourcesConfig,
    "sampler": SamplerConfig,
    "faces": FacesConfig,
    "tracks": TracksConfig,
    "identities": IdentitiesConfig,
    "report": ReportConfig,
    "run": RunConfig,
}


def from_mapping(
    data: Mapping[str, Any], origin: str = "", flags: Mapping[tuple[str, str], str] | None = None
) -> Config:
    """Build and validate a Config from a nested mapping (as read from YAML); `flags` as for `validate`."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin or 'config'}: expected a mapping at the top level")
    unknown = sorted(set(data) - set(_SECTIONS), key=str)
    if unknown:
        raise ConfigError(f"{_where(origin, _key(unknown[0]))}: unknown section (known: {', '.join(_SECTIONS)})")
    data = _with_profile(data)
    sections = {name: _build_section(cls, data.get(name) or {}, name, origin) for name, cls in _SECTIONS.items()}
    return validate(Config(**sections), origin, flags)


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


ConfigPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


def load_config(
    path: ConfigPaths = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    flag_names: Mapping[tuple[str, str], str] | None = None,
) -> Config:
    """Read the YAML file `path` (or several, merged in order: see `merged`), then apply `overrides`
    ({section: {field: value}}, None values ignored).

    `flag_names` ({(section, field): "--flag"}) says which command-line flag gave an override,
    so that an error names the flag rather than the config file.
    """
    paths = [] if path is None else [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[tuple[str, Mapping[str, Any]]] = []
    for one in paths:
        origin = os.fspath(one)
        document = _read_yaml(Path(one), origin)
        from_mapping(document, origin)  # each file on its own first, so that its errors name it
        layers.append((origin, document))
    names = flag_names or {}
    flagged: dict[str, dict[str, Any]] = {}
    given: dict[tuple[str, str], str] = {}
    for section, values in (overrides or {}).items():
        for name, value in values.items():
            if value is not None:
                given[(section, name)] = names.get((section, name), "override")
                # the flag alone, so that its error names the flag (e.g. --since), not the file
                from_mapping({section: {name: value}}, given[(section, name)])
                flagged.setdefault(section, {})[name] = value
    _check_thresholds_fit([*layers, (given.get(("faces", "encoder"), "override"), flagged)])
    data: Mapping[str, Any] = {}
    for _, layer in [*layers, ("", flagged)]:
        data = merged(data, layer)
    return from_mapping(data, " + ".join(origin for origin, _ in layers), given)


def merged(base: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """Two config documents as one: `later` wins field by field within each section, a field it leaves
    empty keeps `base`'s value, and its cameras join `base`'s: one with an id already listed updates
    that camera field by field (its `paths` replace the earlier list), a new id is added at the end.

    >>> merged({"sampler": {"fps": 2, "since": "x"}}, {"sampler": {"fps": 5, "until": None}})
    {'sampler': {'fps': 5, 'since': 'x'}}
    >>> cams = merged({"sources": {"cameras": [{"id": "a", "timezone": "Europe/Berlin"}]}},
    ...               {"sources": {"cameras": [{"id": "a", "name": "door"}, {"id": "b"}]}})
    >>> cams["sources"]["cameras"]
    [{'id': 'a', 'timezone': 'Europe/Berlin', 'name': 'door'}, {'id': 'b'}]
    """
    out: dict[str, Any] = {name: dict(part) if isinstance(part, Mapping) else part for name, part in base.items()}
    for name, part in later.items():
        if not isinstance(part, Mapping):
            if part is not None or name not in out:
                out[name] = part
            continue
        section = out[name] if isinstance(out.get(name), dict) else {}
        out[name] = section
        for key, value in part.items():
            if name == "sources" and key == "cameras":
                section[key] = _merged_cameras(section.get(key) or [], value or [])
            elif value is not None:
                section[key] = value
    return out


def _merged_cameras(base: Sequence[Any], later: Sequence[Any]) -> list[Any]:
    cameras = [dict(cam) if isinstance(cam, Mapping) else cam for cam in base]
    where = {str(cam.get("id")): i for i, cam in enumerate(cameras) if isinstance(cam, Mapping)}
    for cam in later:
        key = str(cam.get("id")) if isinstance(cam, Mapping) else None
        if key is not None and key in where:
            cameras[where[key]].update({k: v for k, v in cam.items() if v is not None})
        else:
            if key is not None:
                where[key] = len(cameras)
            cameras.append(dict(cam) if isinstance(cam, Mapping) else cam)
    return cameras


def _encoder_named(data: Mapping[str, Any]) -> Any:
    faces = data.get("faces")
    return faces.get("encoder") if isinstance(faces, Mapping) else None


def _sets(data: Mapping[str, Any], section: str, name: str) -> bool:
    part = data.get(section)
    return isinstance(part, Mapping) and part.get(name) is not None


def _check_thresholds_fit(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Refuse distance thresholds given for one encoder when a later file or flag switches to an encoder
    of another space: they were written for the first (e.g. by `vidcluster calibrate`) and mean nothing
    for the other. A threshold the switching layer sets again is its own."""
    encoder = DEFAULT_ENCODER
    given: dict[tuple[str, str], str] = {}  # threshold -> the layer that set it
    for origin, data in layers:
        named = _encoder_named(data)
        if isinstance(named, str) and named in ENCODERS and ENCODERS[named].space != ENCODERS[encoder].space:
            stale: dict[str, list[str]] = {}
            for (section, name), source in given.items():
                if not _sets(data, section, name):
                    stale.setdefault(source, []).append(f"{section}.{name}")
            if stale:
                sets = "; ".join(f"{source} sets {', '.join(names)}" for source, names in stale.items())
                raise ConfigError(
                    f"{origin} ({named}): {sets} for {encoder}'s distances; they do not carry over to "
                    f"{named} (drop them, or calibrate for {named})"
                )
            given = {}
        if isinstance(named, str) and named in ENCODERS:
            encoder = named
        given.update({key: origin for key in PROFILE_FIELDS if _sets(data, *key)})


# A config file is a few kB; these bounds are far above any real one and far below what hurts.
MAX_CONFIG_BYTES = 1_000_000
# Nodes of the document with every alias expanded: "billion laughs" (anchors nesting aliases of
# aliases) loads as a small graph of shared lists that anything walking it sees as 10^9 values.
MAX_CONFIG_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a document whose aliases expand beyond MAX_CONFIG_NODES nodes
    (or refer to themselves), before anything is built from it."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _expanded_nodes(node, {}, set())
        return node


def _expanded_nodes(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many nodes `node` stands for with every alias expanded (each shared node counted once per
    use, its size computed once); ConfigProblem past MAX_CONFIG_NODES or for an alias within itself."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise _ConfigProblem("not usable as a config: an alias refers to the node that contains it")
    open_.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    total = 1
    for child in children:
        total += _expanded_nodes(child, sizes, open_)
        if total > MAX_CONFIG_NODES:
            raise _ConfigProblem(
                f"too large for a config: more than {MAX_CONFIG_NODES} values once its aliases are expanded"
            )
    open_.discard(key)
    sizes[key] = total
    return total


class _ConfigProblem(Exception):
    """A document too large or self-referring for a config (raised while loading, reported by _read_yaml)."""


def _read_yaml(path: Path, origin: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file; every failure is one ConfigError line naming the file."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read config ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{origin}: larger than {MAX_CONFIG_BYTES // 1000} kB, too large for a config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{origin}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        data = yaml.load(text, Loader=_BoundedLoader) or {}  # a SafeLoader, with bounds
    except _ConfigProblem as exc:
        raise ConfigError(f"{origin}: {exc}") from None
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

"""Pieces of HTML about sightings and identities that several pages show: links and anchors,
badges, doubt and correction boxes, a person's path through the cameras, timeline marks, clip
players, and the `Assets` (image and clip files) they point at.

Links and image names are built from integer ids only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from pathlib import Path

from ..case.records import FileInfo, zone
from .chrome import e, fmt_local, fmt_offsets, fmt_span, plural
from .data import Identity, ReportData, Sighting
from .svg import Mark

CASE_HREF = "case.html"


@dataclass
class Assets:
    """Files written into the report folder for the pages, by the id they were made from."""

    faces: dict[int, str] = field(default_factory=dict)  # face id -> face-<id>.jpg
    snapshots: dict[int, str] = field(default_factory=dict)  # track id -> snap-<id>.jpg
    montages: dict[int, str] = field(default_factory=dict)  # identity id -> montage-<id>.jpg
    montage_tiles: dict[int, int] = field(default_factory=dict)  # identity id -> faces in its montage
    clips: dict[int, str] = field(default_factory=dict)  # track id -> clips/clip-<id>-<key>.mp4
    folder: Path | None = None  # where the pages are written


def where_in_file(s: Sighting) -> str:
    """'photo' for a still, else the offsets into the video ('12.0 s – 14.5 s')."""
    return "photo" if s.file.is_photo else fmt_offsets(s.start_s, s.end_s)


def approx_badge(f: FileInfo) -> str:
    """A visible marker next to times whose file start time is a guess (mtime) or missing."""
    if f.start_utc is None:
        return (
            ' <span class="approx" title="this file has no start time; offsets within the file are shown">'
            "no clock</span>"
        )
    if not f.time_reliable:
        return (
            f' <span class="approx" title="start time taken from {e(f.start_source)}: unreliable">\u2248 approx.</span>'
        )
    return ""


def reset_badge(s: Sighting) -> str:
    """A marker on a sighting that ends after a timestamp reset of its file: its time is counted
    from its position in the file (video/timeline.py), less certain than the recorder's clock."""
    if s.file.time_certain_at(s.end_s):
        return ""
    return (
        ' <span class="approx" title="after a timestamp reset in the file: time counted from the position'
        ' in the file, less certain">\u2248 after a timestamp reset</span>'
    )


def seen_html(s: Sighting | None, *, first: bool, utc_too: bool = False) -> str:
    """First/last seen time on the camera's clock with the camera, marked when its file's clock is a guess."""
    if s is None:
        return '<span class="muted">unknown (no sighting has a wall-clock time)</span>'
    t = s.start_utc if first else s.end_utc
    return f"{e(fmt_local(t, s.file.zone, utc_too))} ({e(s.camera)}){approx_badge(s.file)}{reset_badge(s)}"


def sighting_when(s: Sighting, utc_too: bool = False) -> str:
    """Wall-clock span of a sighting, or its place in the file when the file has no start time."""
    if s.start_utc is None or s.end_utc is None:
        where = "a photo" if s.file.is_photo else f"{e(fmt_offsets(s.start_s, s.end_s))} into the file"
        return f"{where}{approx_badge(s.file)}"
    return e(fmt_span(s.start_utc, s.end_utc, s.file.zone, utc_too)) + approx_badge(s.file) + reset_badge(s)


def sighting_title(s: Sighting, who: str) -> str:
    """Tooltip text: who, camera, local time (and UTC), faces, file."""
    if s.start_utc and s.end_utc:
        when = fmt_span(s.start_utc, s.end_utc, s.file.zone, utc_too=True)
    else:
        when = where_in_file(s)
    approx = "" if s.file.time_reliable else f" (approx.: time from {s.file.start_source})"
    return (
        f"{who} \u00b7 camera {s.camera} \u00b7 {when}{approx} \u00b7 {plural(len(s.faces), 'face')}"
        f" \u00b7 {s.file.name}"
    )


def identity_href(ident_id: int) -> str:
    return f"identity-{int(ident_id)}.html"


def sighting_anchor(track_id: int) -> str:
    return f"sighting-{int(track_id)}"


def sighting_href(s: Sighting) -> str:
    """Where a sighting is shown: its row on its identity's page, or on the case page when unmatched."""
    page_name = CASE_HREF if s.identity < 0 else identity_href(s.identity)
    return f"{page_name}#{sighting_anchor(s.track_id)}"


def lane_label(ident: Identity, limit: int = 20) -> str:
    """'#3' or '#3 label' cut to fit the timeline's label column (plain text)."""
    text = f"#{int(ident.id)}" + (f" {ident.label}" if ident.label else "")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def confirmed_badge(ident: Identity) -> str:
    """'✓ confirmed by examiner' with who and when, or ''."""
    c = ident.confirmed
    if c is None:
        return ""
    who = f" ({c.text})" if c.text else ""
    return f'<span class="confirmed" title="confirmed {e(c.created_utc)}">\u2713 confirmed by examiner{e(who)}</span>'


def corrected_badge(ident: Identity) -> str:
    """A small line on the card: confirmation, notes and corrections by hand."""
    bits = []
    if ident.notes:
        bits.append(f'<p class="muted">{e(plural(len(ident.notes), "correction"))} by hand</p>')
    if ident.texts:
        last = ident.texts[-1].text
        short = last if len(last) <= 80 else last[:79] + "\u2026"
        bits.append(f'<p class="muted" title="{e(last)}">Note: {e(short)}</p>')
    badge = confirmed_badge(ident)
    return (f"<p>{badge}</p>" if badge else "") + "".join(bits)


def doubt_line(ident: Identity, linked: bool = True) -> str:
    """'Maybe the same person as 7 (0.52)' or 'Sightings far apart (0.47): maybe two people', or ''."""
    c = ident.cohesion
    if c is None or not c.doubt:
        return ""
    if c.doubt == "close" and c.closest is not None:
        other, distance = c.closest
        name = f"identity {other}"
        who = f'<a href="{e(identity_href(other))}">{e(name)}</a>' if linked else e(name)
        text = f"Maybe the same person as {who} (distance {distance:.2f})"
    else:
        text = f"Sightings far apart (spread {c.spread:.2f}): maybe more than one person"
    return f'<p class="doubt" role="note">{text}</p>'


def nearest_html(ident: Identity) -> str:
    """The nearest other identities with their distance, as links."""
    c = ident.cohesion
    if c is None or not c.nearest:
        return '<span class="muted">none</span>'
    return ", ".join(f'<a href="{e(identity_href(i))}">{e(i)}</a> ({d:.2f})' for i, d in c.nearest)


def corrections_box(ident: Identity) -> str:
    """The investigator's corrections that shaped this identity (merges, rejected sightings)."""
    if not ident.notes:
        return ""
    lis = "".join(f"<li>{e(n)}</li>" for n in ident.notes)
    return f'<div class="corrections" role="note"><strong>Corrected by hand</strong><ul>{lis}</ul></div>'


def notes_box(ident: Identity) -> str:
    """The examiner's notes (`vidcluster note`)."""
    if not ident.texts:
        return ""
    lis = "".join(f'<li>{e(n.text)} <span class="muted">({e(n.created_utc)})</span></li>' for n in ident.texts)
    return f'<div class="notes" role="note"><strong>Examiner\u2019s notes</strong><ul>{lis}</ul></div>'


def best_face_ref(s: Sighting) -> str:
    best = s.best_face
    return "" if best is None else f'<br><span class="mono muted">face:{int(best.id)}</span>'


def camera_steps(sightings: Iterable[Sighting]) -> list[tuple[str, list[Sighting]]]:
    """The cameras a person passed, in time order, each with the consecutive sightings on it (a step).

    Sightings without a time are left out.
    """
    steps: list[tuple[str, list[Sighting]]] = []
    timed = [(t, s) for s in sightings if (t := s.start_utc) is not None]
    for _, s in sorted(timed, key=lambda ts: ts[0]):
        if steps and steps[-1][0] == s.camera:
            steps[-1][1].append(s)
        else:
            steps.append((s.camera, [s]))
    return steps


def camera_path(sightings: Iterable[Sighting]) -> list[tuple[str, Sighting]]:
    """The cameras a person passed, in time order: consecutive sightings on one camera are one step.

    Returns (camera, first sighting of the step); sightings without a time are left out.
    """
    return [(cam, members[0]) for cam, members in camera_steps(sightings)]


def path_html(ident: Identity) -> str:
    """'entrance 09:15 → hallway 09:16 → office 09:20', every step a link to its first sighting and
    naming all of them (data-sightings, for the case page's filter)."""
    steps = camera_steps(ident.sightings)
    if not steps:
        return '<span class="muted">no sighting has a wall-clock time</span>'
    items: list[str] = []
    day = None  # the first step's date is the page's; a later step shows its date when it changes
    for cam, members in steps:
        s = members[0]
        if s.start_utc is None:  # camera_steps leaves these out
            continue
        local = s.start_utc.astimezone(s.file.zone)
        when = f"{local:%H:%M:%S}" if day is None or local.date() == day else f"{local:%Y-%m-%d %H:%M:%S}"
        day = local.date()
        arrow = '<span class="arrow"> \u2192 </span>' if items else ""
        ids = " ".join(str(int(m.track_id)) for m in members)
        items.append(
            f'<span class="hop" data-sightings="{ids}">{arrow}<a class="step" href="{e(sighting_href(s))}" '
            f'title="{e(sighting_title(s, ident.title))}">{e(cam)} {when}</a></span>'
        )
    return f'<span class="path">{"".join(items)}</span>'


def axis_zone(data: ReportData) -> tuple[tzinfo, str]:
    """The zone the timelines are drawn in: the cameras' zone when they share one, else UTC."""
    if data.mixed_zones:
        return timezone.utc, "UTC"
    name = data.zones[0]
    return zone(name), name


def sighting_mark(s: Sighting, color: str, who: str) -> Mark:
    """The sighting's bar on a timeline; only for a sighting with a wall-clock time (callers leave out the rest)."""
    span = s.span_utc
    if span is None:
        raise ValueError(f"sighting {s.track_id} has no wall-clock time to draw")
    start, end = span
    return Mark(start, end, color, sighting_title(s, who), not s.file.time_reliable, sighting_href(s), s.track_id)


def clip_player(s: Sighting, assets: Assets) -> str:
    """An HTML5 player of the sighting's clip (in report/clips/), or '' when it has none."""
    clip = assets.clips.get(s.track_id)
    if not clip:
        return ""
    return (
        f'<video class="clip" controls preload="metadata" src="{e(clip)}" '
        f'title="clip of sighting {int(s.track_id)}"></video>'
    )

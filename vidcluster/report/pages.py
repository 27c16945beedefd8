"""HTML pages of the report: index.html, case.html and one identity-<id>.html per identity.

Small functions returning strings. All text from the footage (camera and file names, reasons,
paths) is escaped with `html.escape`; links and image names are built from integer ids only.
The pages are self-contained: inline CSS, no external URLs, a restrictive CSP. Only case.html
runs a script (its filter), inline, and its CSP allows exactly that script's SHA-256.
Times are shown on the camera's clock with its UTC offset, and in UTC too where the cameras
keep time in different zones.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from html import escape
from pathlib import Path
from typing import Any

from ..case.records import FileInfo, zone
from ..types import UNMATCHED_TEXT
from .data import Identity, ReportData, Sighting
from .exports import skipped_files
from .svg import Lane, Mark, camera_colors, timeline_svg

CSP = (
    "default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; media-src 'self' file:; "
    "base-uri 'none'; form-action 'none'"
)
CASE_HREF = "case.html"
MAX_UNMATCHED_THUMBS = 120

CSS = """
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #d9d9de; --bg: #ffffff; --card: #f6f6f8; --warn: #8a4b00;
        --warnbg: #fff4e0; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0 auto; padding: 1.5rem; max-width: 1100px; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; } h2 { font-size: 1.2rem; margin: 2rem 0 .6rem;
     border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
a { color: #0b57d0; } .muted { color: var(--muted); } .mono { font-family: ui-monospace, Menlo, Consolas, monospace;
     font-size: .85em; word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
th { background: var(--card); font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
.warning { background: var(--warnbg); color: var(--warn); border-left: 4px solid #e8a33d; padding: .6rem .8rem;
           margin: .8rem 0; } .warning ul { margin: .3rem 0 0; padding-left: 1.2rem; }
.approx { color: var(--warn); font-weight: 600; cursor: help; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: .8rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .7rem;
        break-inside: avoid; } .card img { display: block; width: 112px; height: 112px; object-fit: cover;
        border-radius: 4px; margin-bottom: .4rem; } .card h3 { margin: 0 0 .3rem; font-size: 1.05rem; }
.card p { margin: .1rem 0; font-size: .85rem; }
.thumbs { display: flex; flex-wrap: wrap; gap: 4px; } .thumbs img { width: 72px; height: 72px; object-fit: cover;
          border-radius: 3px; }
img.montage { max-width: 100%; height: auto; border: 1px solid var(--line); }
img.snap { max-width: 220px; max-height: 165px; width: auto; height: auto; border: 1px solid var(--line); }
video.clip { width: 320px; max-width: 100%; height: auto; background: #000; display: block; margin-top: .3rem; }
td.ref { white-space: nowrap; } td.ref .mono { word-break: normal; }
.doubt { color: #8a4b00; background: #fff4e5; border-left: 3px solid #e8a33d; padding: 2px 6px; }
.confirmed { display: inline-block; background: #e6f4ea; color: #137333; border: 1px solid #81c995;
             border-radius: 3px; padding: 0 .35rem; font-size: .8rem; font-weight: 600; }
.notes { background: #fffbe6; border-left: 4px solid #c9a400; padding: .6rem .8rem; margin: .8rem 0; }
.notes ul { margin: .3rem 0 0; padding-left: 1.2rem; }
.path { font-size: .9rem; } .path .step { white-space: nowrap; }
.casebar { font-size: .85rem; color: var(--muted); margin-bottom: .6rem; }
form.filter { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: end; background: var(--card);
              padding: .6rem; border: 1px solid var(--line); border-radius: 6px; margin: .6rem 0; }
form.filter label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
tr:target, .target { outline: 3px solid #0b57d0; outline-offset: -3px; }
img.case-snap { max-width: 120px; max-height: 90px; width: auto; height: auto; }
svg.timeline a.marklink { cursor: pointer; } svg.timeline a.marklink:hover rect { stroke: #000; stroke-width: 2; }
svg.timeline { max-width: 100%; height: auto; display: block; margin: .4rem 0; }
svg.timeline .grid { stroke: #e3e3e8; stroke-width: 1; } svg.timeline .axisline { stroke: #888; }
svg.timeline .tick, svg.timeline .axis { font-size: 11px; fill: var(--muted); }
svg.timeline .lane { font-size: 12px; fill: var(--fg); } svg.timeline a .lane { fill: #0b57d0; }
svg.timeline .stripe { fill: #f7f7f9; } svg.timeline .mark { stroke: rgba(0,0,0,.35); stroke-width: .5; }
svg.timeline .mark.approx { fill-opacity: .45; stroke: #8a4b00; stroke-width: 1.5; stroke-dasharray: 2 1.5; }
.legend { display: flex; flex-wrap: wrap; gap: .3rem 1rem; font-size: .85rem; margin: .3rem 0; }
.swatch { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: -0.1em;
          margin-right: .3em; border: 1px solid rgba(0,0,0,.3); }
nav { margin-bottom: 1rem; font-size: .9rem; }
.corrections { background: #eef4ff; border-left: 4px solid #0b57d0; padding: .6rem .8rem; margin: .8rem 0; }
.corrections ul { margin: .3rem 0 0; padding-left: 1.2rem; }
footer { margin-top: 2.5rem; font-size: .8rem; color: var(--muted); }
.print-only { display: none; }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; } nav, footer, form.filter, video.clip { display: none; }
  .print-only { display: block; } tr[hidden] { display: none; }
  a { color: inherit; text-decoration: none; } h2 { break-after: avoid; }
  tr, .card, svg.timeline, img { break-inside: avoid; }
  .warning { border: 1px solid #e8a33d; }
  details { display: block; } details > summary { list-style: none; }
}
"""


@dataclass
class Assets:
    """Files written into the report folder for the pages, by the id they were made from."""

    faces: dict[int, str] = field(default_factory=dict)  # face id -> face-<id>.jpg
    snapshots: dict[int, str] = field(default_factory=dict)  # track id -> snap-<id>.jpg
    montages: dict[int, str] = field(default_factory=dict)  # identity id -> montage-<id>.jpg
    montage_tiles: dict[int, int] = field(default_factory=dict)  # identity id -> faces in its montage
    clips: dict[int, str] = field(default_factory=dict)  # track id -> clips/clip-<id>-<key>.mp4
    folder: Path | None = None  # where the pages are written


@dataclass(frozen=True)
class Context:
    """What every page shows in its head and print margins: case, examiner, generation time."""

    generated_utc: str
    case: str = ""
    examiner: str = ""


# -- formatting -----------------------------------------------------------------------------
def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def fmt_utc(t: datetime | None) -> str:
    """'2026-03-14 09:00:01 UTC', or an em dash when unknown."""
    if t is None:
        return "\u2014"
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def offset_label(t: datetime, tz: tzinfo) -> str:
    """'UTC+01:00' (the zone's offset at instant t), 'UTC' for UTC itself.

    >>> offset_label(datetime(2026, 7, 1, tzinfo=timezone.utc), zone("Europe/Berlin"))
    'UTC+02:00'
    """
    off = t.astimezone(tz).utcoffset()
    if not off:
        return "UTC"
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h:02d}:{m:02d}"


def fmt_local(t: datetime | None, tz: tzinfo, utc_too: bool = False) -> str:
    """'2026-03-14 09:15:02 (UTC+01:00)' on the camera's clock; with `utc_too` also '· 08:15:02 UTC'.

    >>> fmt_local(datetime(2026, 3, 14, 8, 15, 2, tzinfo=timezone.utc), zone("Europe/Berlin"), True)
    '2026-03-14 09:15:02 (UTC+01:00) \u00b7 08:15:02 UTC'
    """
    if t is None:
        return "\u2014"
    local = t.astimezone(tz)
    text = f"{local:%Y-%m-%d %H:%M:%S} ({offset_label(t, tz)})"
    if utc_too and local.utcoffset():
        text += f" \u00b7 {t.astimezone(timezone.utc):%H:%M:%S} UTC"
    return text


def fmt_span(a: datetime, b: datetime, tz: tzinfo = timezone.utc, utc_too: bool = False) -> str:
    """'2026-03-14 09:00:01 – 09:00:12 (UTC+01:00)' on the camera's clock (the date repeated only when it changes)."""
    la, lb = a.astimezone(tz), b.astimezone(tz)
    if la.replace(microsecond=0) == lb.replace(microsecond=0):
        return fmt_local(a, tz, utc_too)
    end = lb.strftime("%H:%M:%S") if la.date() == lb.date() else lb.strftime("%Y-%m-%d %H:%M:%S")
    text = f"{la:%Y-%m-%d %H:%M:%S} \u2013 {end} ({offset_label(a, tz)})"
    if utc_too and la.utcoffset():
        text += f" \u00b7 {a.astimezone(timezone.utc):%H:%M:%S} \u2013 {b.astimezone(timezone.utc):%H:%M:%S} UTC"
    return text


def local_key(t: datetime | None, tz: tzinfo) -> str:
    """'2026-03-14 09:15:02' on the camera's clock: what the case filter compares against."""
    return "" if t is None else t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    """'1 h 02 min 03 s', '4 min 05 s', '12.5 s'; an em dash when unknown.

    >>> fmt_duration(3723), fmt_duration(12.5)
    ('1 h 02 min 03 s', '12.5 s')
    """
    if seconds is None:
        return "\u2014"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s"


def fmt_offsets(start_s: float, end_s: float) -> str:
    if round(start_s, 1) == round(end_s, 1):
        return f"{start_s:.1f} s"
    return f"{start_s:.1f} s \u2013 {end_s:.1f} s"


def where_in_file(s: Sighting) -> str:
    """'photo' for a still, else the offsets into the video ('12.0 s – 14.5 s')."""
    return "photo" if s.file.is_photo else fmt_offsets(s.start_s, s.end_s)


def plural(n: int, word: str) -> str:
    """'1 face', '3 faces'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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


def seen_html(s: Sighting | None, *, first: bool, utc_too: bool = False) -> str:
    """First/last seen time on the camera's clock with the camera, marked when its file's clock is a guess."""
    if s is None:
        return '<span class="muted">unknown (no sighting has a wall-clock time)</span>'
    t = s.start_utc if first else s.end_utc
    return f"{e(fmt_local(t, s.file.zone, utc_too))} ({e(s.camera)}){approx_badge(s.file)}"


def sighting_when(s: Sighting, utc_too: bool = False) -> str:
    """Wall-clock span of a sighting, or its place in the file when the file has no start time."""
    if s.start_utc is None or s.end_utc is None:
        where = "a photo" if s.file.is_photo else f"{e(fmt_offsets(s.start_s, s.end_s))} into the file"
        return f"{where}{approx_badge(s.file)}"
    return e(fmt_span(s.start_utc, s.end_utc, s.file.zone, utc_too)) + approx_badge(s.file)


def sighting_title(s: Sighting, who: str) -> str:
    """Tooltip text: who, camera, local time (and UTC), faces, file."""
    if s.start_utc and s.end_utc:
        when = fmt_span(s.start_utc, s.end_utc, s.file.zone, utc_too=True)
    else:
        when = where_in_file(s)
    approx = "" if s.file.time_reliable else f" (approx.: time from {s.file.start_source})"
    return (
        f"{who} \u00b7 camera {s.camera} \u00b7 {when}{approx} \u00b7 {plural(len(s.faces), 'face')}"
        f" \u00b7 {s.file.path}"
    )


def css_string(text: str) -> str:
    """A CSS string literal that cannot end the string, the rule or the <style> element.

    >>> css_string('Case "7" </style>') == '"Case \\\\22 7\\\\22  \\\\3c /style\\\\3e "'
    True
    """
    safe = "".join(c if c.isalnum() or c in " .,:-_/#()+" else f"\\{ord(c):x} " for c in text)
    return f'"{safe}"'


def script_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script: 'sha256-<base64>'."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def case_text(ctx: Context) -> str:
    """'Case 2026-117 · examiner J. Doe · generated …' (plain text)."""
    bits = [
        f"Case {ctx.case}" if ctx.case else "",
        f"examiner {ctx.examiner}" if ctx.examiner else "",
        f"report generated {ctx.generated_utc}",
    ]
    return " \u00b7 ".join(b for b in bits if b)


def print_css(ctx: Context) -> str:
    """Printed pages carry the case, the generation time and 'page N of M' in their margins."""
    head = css_string(f"Case {ctx.case}" if ctx.case else "vidcluster report")
    gen = css_string(f"generated {ctx.generated_utc}")
    return (
        "@page { margin: 16mm 12mm 16mm; "
        f"@top-left {{ content: {head}; font-size: 9pt; color: #555; }} "
        f"@top-right {{ content: {gen}; font-size: 9pt; color: #555; }} "
        '@bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 9pt; color: #555; } }'
    )


def page(title: str, body: str, ctx: Context | None = None, script: str = "") -> str:
    """A complete, self-contained HTML document; `script` (inline) is the only one its CSP allows."""
    csp = CSP + (f"; script-src {script_hash(script)}" if script else "")
    head_extra = f"<style>{print_css(ctx)}</style>\n" if ctx else ""
    bar = f'<div class="casebar">{e(case_text(ctx))}</div>\n' if ctx else ""
    tail = f"\n<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n{head_extra}</head>\n<body>\n{bar}{body}{tail}\n"
        "</body>\n</html>\n"
    )


def facts(rows: Iterable[tuple[str, str]]) -> str:
    """<dl> of (label, already-escaped html) pairs."""
    items = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def legend(colors: dict[str, str]) -> str:
    items = "".join(
        f'<span><span class="swatch" style="background:{e(c)}"></span>{e(cam)}</span>' for cam, c in colors.items()
    )
    return f'<div class="legend">{items}</div>'


def warning(title: str, items: list[str]) -> str:
    """A highlighted box; `items` are already-escaped html fragments."""
    lis = "".join(f"<li>{i}</li>" for i in items)
    return f'<div class="warning" role="note"><strong>{e(title)}</strong><ul>{lis}</ul></div>'


def identity_href(ident_id: int) -> str:
    return f"identity-{int(ident_id)}.html"


def sighting_anchor(track_id: int) -> str:
    return f"sighting-{int(track_id)}"


def sighting_href(s: Sighting) -> str:
    """Where a sighting is shown: its row on its identity's page, or on the case page when unmatched."""
    page_name = CASE_HREF if s.identity < 0 else identity_href(s.identity)
    return f"{page_name}#{sighting_anchor(s.track_id)}"


def img(src: str | None, alt: str, cls: str = "", title: str = "") -> str:
    if not src:
        return ""
    c = f' class="{e(cls)}"' if cls else ""
    t = f' title="{e(title)}"' if title else ""
    return f'<img src="{e(src)}" alt="{e(alt)}"{c}{t} loading="lazy">'


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


def camera_path(sightings: Iterable[Sighting]) -> list[tuple[str, Sighting]]:
    """The cameras a person passed, in time order: consecutive sightings on one camera are one step.

    Returns (camera, first sighting of the step); sightings without a time are left out.
    """
    steps: list[tuple[str, Sighting]] = []
    timed = [(t, s) for s in sightings if (t := s.start_utc) is not None]
    for _, s in sorted(timed, key=lambda ts: ts[0]):
        if not steps or steps[-1][0] != s.camera:
            steps.append((s.camera, s))
    return steps


def path_html(ident: Identity) -> str:
    """'entrance 09:15 → hallway 09:16 → office 09:20', every step a link to its sighting."""
    steps = camera_path(ident.sightings)
    if not steps:
        return '<span class="muted">no sighting has a wall-clock time</span>'
    items = []
    day = None  # the first step's date is the page's; a later step shows its date when it changes
    for cam, s in steps:
        if s.start_utc is None:  # camera_path leaves these out
            continue
        local = s.start_utc.astimezone(s.file.zone)
        when = f"{local:%H:%M:%S}" if day is None or local.date() == day else f"{local:%Y-%m-%d %H:%M:%S}"
        day = local.date()
        items.append(
            f'<a class="step" href="{e(sighting_href(s))}" title="{e(sighting_title(s, ident.title))}">'
            f"{e(cam)} {when}</a>"
        )
    arrow = " \u2192 "
    return f'<span class="path">{arrow.join(items)}</span>'


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
    return Mark(start, end, color, sighting_title(s, who), not s.file.time_reliable, sighting_href(s))


def clip_player(s: Sighting, assets: Assets) -> str:
    """An HTML5 player of the sighting's clip (in report/clips/), or '' when it has none."""
    clip = assets.clips.get(s.track_id)
    if not clip:
        return ""
    return (
        f'<video class="clip" controls preload="metadata" src="{e(clip)}" '
        f'title="clip of sighting {int(s.track_id)}"></video>'
    )


# -- index ----------------------------------------------------------------------------------
def time_warnings(data: ReportData) -> str:
    """Warnings about analysed files whose start time is a guess or missing."""
    used = [f for f in data.files if f.status != "skipped" and not f.is_photo]
    guessed = [f for f in used if f.start_utc is not None and not f.time_reliable]
    missing = [f for f in used if f.start_utc is None]
    out = ""
    if guessed:
        out += warning(
            "Unreliable times: the start time of these files was not found in the camera settings, the file "
            "name or the container metadata but guessed (e.g. from the file modification time), so their "
            "wall-clock times may be wrong (marked \u2248 approx.; dashed on the timelines).",
            [f'{e(f.camera)}: <span class="mono">{e(f.path)}</span> ({e(f.start_source)})' for f in guessed],
        )
    if missing:
        out += warning(
            "No start time: these files carry no start time; their sightings are given as offsets in seconds "
            "within the file and are left out of the timelines.",
            [f'{e(f.camera)}: <span class="mono">{e(f.path)}</span>' for f in missing],
        )
    return out


def summary_section(data: ReportData, run_info: dict[str, Any]) -> str:
    files = data.files
    by_status: dict[str, int] = {}
    for f in files:
        by_status[f.status] = by_status.get(f.status, 0) + 1
    status_text = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    total_s = sum(f.duration_s or 0.0 for f in files if f.kind == "video" and f.status != "skipped")
    window = run_info.get("window") or {}
    since, until = window.get("since"), window.get("until")
    window_text = "whole footage" if not since and not until else f"{since or 'start'} \u2013 {until or 'end'}"
    n_unmatched = len(data.unmatched_faces)
    zones = ", ".join(data.zones) + (" (UTC shown beside local times)" if data.mixed_zones else "")
    rows = [
        ("Files", e(f"{len(files)} ({status_text})" if files else "0")),
        ("Cameras", e(f"{len(data.cameras)}: " + ", ".join(data.cameras)) if data.cameras else "0"),
        ("Camera clocks", e(zones)),
        ("Footage duration", e(fmt_duration(total_s))),
        ("Time window", e(window_text)),
        ("Identities", e(len(data.identities))),
        ("Sightings", f'{e(len(data.sightings))} (<a href="{CASE_HREF}">the case in order</a>)'),
        ("Faces", e(f"{len(data.faces)} ({n_unmatched} unmatched)")),
    ]
    parts = ['<section id="summary"><h2>Summary</h2>', facts(rows), time_warnings(data)]
    partial = [f for f in files if f.status == "partial"]
    if partial:
        parts.append(
            warning(
                "Partly analysed files:",
                [
                    f'{e(f.camera)}: <span class="mono">{e(f.path)}</span> \u2014 {e(f.reason or "no reason given")}'
                    for f in partial
                ],
            )
        )
    skipped = skipped_files(data, run_info)
    if skipped:
        parts.append(
            warning(
                "Skipped files (not analysed):",
                [
                    f'<span class="mono">{e(s["path"])}</span> \u2014 {e(s["reason"] or "no reason given")}'
                    for s in skipped
                ],
            )
        )
    parts.append("</section>")
    return "\n".join(parts)


def overview_section(data: ReportData, colors: dict[str, str]) -> str:
    lanes = []
    for ident in data.identities:
        marks = tuple(
            sighting_mark(s, colors[s.camera], f"identity {ident.id}")
            for s in ident.sightings
            if s.start_utc is not None
        )
        lanes.append(Lane(lane_label(ident), marks, identity_href(ident.id)))
    if data.unmatched:
        marks = tuple(
            sighting_mark(s, colors[s.camera], UNMATCHED_TEXT) for s in data.unmatched if s.start_utc is not None
        )
        lanes.append(Lane(UNMATCHED_TEXT, marks, CASE_HREF))
    tz, tz_label = axis_zone(data)
    svg = timeline_svg(
        lanes, caption=f"Sightings per identity over time ({tz_label}), coloured by camera", tz=tz, tz_label=tz_label
    )
    untimed = sum(1 for s in data.sightings if s.start_utc is None)
    note = (
        f'<p class="muted">{untimed} sighting(s) without a wall-clock time are not on the timeline.</p>'
        if untimed
        else ""
    )
    more = (
        f'<p class="muted">Every mark links to its sighting. Per camera: the '
        f'<a href="{CASE_HREF}#case-timeline">case timeline</a>.</p>'
    )
    body = (svg + legend(colors) + more) if svg else '<p class="muted">No sighting has a wall-clock time.</p>'
    return f'<section id="timeline"><h2>Timeline</h2>{body}{note}</section>'


def identity_card(ident: Identity, assets: Assets, utc_too: bool = False) -> str:
    best = ident.best_face
    thumb = img(assets.faces.get(best.id) if best else None, f"best face of identity {ident.id}")
    href = identity_href(ident.id)
    return (
        f'<div class="card"><a href="{href}">{thumb}</a>'
        f'<h3><a href="{href}">{e(ident.title)}</a></h3>'
        f"{corrected_badge(ident)}{doubt_line(ident)}"
        f"<p>{e(plural(ident.n_sightings, 'sighting'))}, {e(plural(ident.n_faces, 'face'))}</p>"
        f"<p>Cameras: {e(', '.join(ident.cameras))}</p>"
        f"<p>First seen: {seen_html(ident.first_sighting, first=True, utc_too=utc_too)}</p>"
        f"<p>Last seen: {seen_html(ident.last_sighting, first=False, utc_too=utc_too)}</p></div>"
    )


def identities_section(data: ReportData, assets: Assets) -> str:
    if not data.identities:
        return '<section id="identities"><h2>Identities</h2><p class="muted">No identities were found.</p></section>'
    cards = "\n".join(identity_card(i, assets, data.mixed_zones) for i in data.identities)
    return (
        f'<section id="identities"><h2>Identities ({len(data.identities)})</h2>'
        f'<div class="cards">{cards}</div></section>'
    )


def unmatched_section(data: ReportData, assets: Assets) -> str:
    faces = data.unmatched_faces
    head = f'<section id="unmatched"><h2>Unmatched ({len(faces)} face(s), {len(data.unmatched)} sighting(s))</h2>'
    if not data.unmatched:
        return head + '<p class="muted">Every face was assigned to an identity.</p></section>'
    shown = [(s, f) for s in data.unmatched if (f := s.best_face) and f.id in assets.faces][:MAX_UNMATCHED_THUMBS]
    thumbs = "".join(
        f'<a href="{e(sighting_href(s))}">'
        + img(assets.faces[f.id], f"unmatched face {f.id}", title=sighting_title(s, UNMATCHED_TEXT))
        + "</a>"
        for s, f in shown
    )
    note = (
        f'<p class="muted">Best face of each unmatched sighting; showing {len(shown)} of {len(data.unmatched)}.</p>'
        if len(shown) < len(data.unmatched)
        else '<p class="muted">Best face of each unmatched sighting (hover for camera and time).</p>'
    )
    return (
        f"{head}<p>Faces that could not be grouped with any other sighting.</p>{note}"
        f'<div class="thumbs">{thumbs}</div></section>'
    )


def files_section(data: ReportData) -> str:
    rows = "".join(
        f'<tr><td>{e(f.camera)}</td><td class="mono">{e(f.path)}</td><td>'
        f"{e(fmt_local(f.start_utc, f.zone, data.mixed_zones))}"
        f"{approx_badge(f)}</td><td>{e(f.start_source)}</td><td>{e(fmt_duration(f.duration_s))}</td>"
        f'<td>{e(f.status)}</td><td>{e(f.reason)}</td><td class="mono" title="{e(f.sha256)}">'
        f"{e(f.sha256[:12])}\u2026</td></tr>"
        for f in data.files
    )
    return (
        f'<section id="files"><h2>Files</h2><details><summary>{len(data.files)} file(s) '
        "with start time (camera clock), its source and SHA-256 (full list in manifest.json)</summary>"
        "<table><thead><tr><th>Camera</th><th>File</th><th>Start</th><th>Time source</th><th>Duration</th>"
        f"<th>Status</th><th>Reason</th><th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table></details></section>"
    )


def run_line(run_info: dict[str, Any], generated_utc: str) -> str:
    return (
        f'<p class="muted">vidcluster {e(run_info.get("version"))} \u00b7 run {e(run_info.get("started_utc"))} '
        f"\u2013 {e(run_info.get('finished_utc'))} \u00b7 report generated {e(generated_utc)}</p>"
    )


def index_page(data: ReportData, run_info: dict[str, Any], assets: Assets, ctx: Context) -> str:
    colors = camera_colors(data.cameras)
    body = "\n".join(
        [
            "<header><h1>Who appears in the footage</h1>",
            run_line(run_info, ctx.generated_utc),
            "</header>",
            summary_section(data, run_info),
            overview_section(data, colors),
            identities_section(data, assets),
            unmatched_section(data, assets),
            files_section(data),
            "<footer>Identities are unsupervised groupings of similar faces, not confirmed identifications; "
            f'check every sighting. The case in order: <a href="{CASE_HREF}">case.html</a>. Machine-readable: '
            '<a href="identities.json">identities.json</a>, <a href="sightings.csv">sightings.csv</a>, '
            '<a href="faces.csv">faces.csv</a>, <a href="manifest.json">manifest.json</a>.</footer>',
        ]
    )
    return page("vidcluster report", body, ctx)


# -- identity page --------------------------------------------------------------------------
def camera_timeline(ident: Identity, colors: dict[str, str], tz: tzinfo, tz_label: str) -> str:
    lanes = []
    for cam in ident.cameras:
        marks = tuple(
            sighting_mark(s, colors[cam], f"identity {ident.id}")
            for s in ident.sightings
            if s.camera == cam and s.start_utc is not None
        )
        lanes.append(Lane(cam, marks))
    return timeline_svg(
        lanes, caption=f"Sightings of identity {ident.id} per camera over time ({tz_label})", tz=tz, tz_label=tz_label
    )


def sightings_table(ident: Identity, assets: Assets, utc_too: bool = False) -> str:
    rows = []
    for k, s in enumerate(ident.sightings, 1):
        snap = assets.snapshots.get(s.track_id)
        snap_html = (
            f'<a href="{e(snap)}">{img(snap, f"snapshot of sighting {s.track_id}", "snap")}</a>'
            if snap
            else '<span class="muted">none</span>'
        )
        ref = (
            f'<span class="mono" title="use as vidcluster reject OUT {int(ident.id)} sighting:{int(s.track_id)}">'
            f"sighting:{int(s.track_id)}</span>"
        )
        rows.append(
            f'<tr id="{sighting_anchor(s.track_id)}"><td class="ref">{k}<br>{ref}{best_face_ref(s)}</td>'
            f"<td>{e(s.camera)}</td><td>{sighting_when(s, utc_too)}</td><td>{len(s.faces)}</td>"
            f'<td>{snap_html}{clip_player(s, assets)}</td><td><span class="mono">{e(s.file.path)}</span><br>'
            f"{'a photo' if s.file.is_photo else 'at ' + e(where_in_file(s))}</td></tr>"
        )
    return (
        "<table><thead><tr><th>#</th><th>Camera</th><th>When (camera clock)</th><th>Faces</th>"
        f"<th>Snapshot and clip</th><th>File and offset</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def identity_page(ident: Identity, data: ReportData, assets: Assets, ctx: Context) -> str:
    colors = camera_colors(data.cameras)
    used = {c: colors[c] for c in ident.cameras}
    tz, tz_label = axis_zone(data)
    svg = camera_timeline(ident, colors, tz, tz_label)
    untimed = sum(1 for s in ident.sightings if s.start_utc is None)
    rows = [
        ("Sightings", e(ident.n_sightings)),
        ("Faces", e(ident.n_faces)),
        ("Cameras", e(", ".join(ident.cameras))),
        ("First seen", seen_html(ident.first_sighting, first=True, utc_too=data.mixed_zones)),
        ("Last seen", seen_html(ident.last_sighting, first=False, utc_too=data.mixed_zones)),
        ("Path", path_html(ident)),
        ("Nearest identities", nearest_html(ident)),
    ]
    if ident.confirmed is not None:
        rows.insert(
            0, ("Examiner", confirmed_badge(ident) + f' <span class="muted">{e(ident.confirmed.created_utc)}</span>')
        )
    notes = []
    if not ident.times_reliable:
        notes.append(
            warning(
                "Some times on this page are unreliable or missing:",
                [
                    f'{e(f.camera)}: <span class="mono">{e(f.path)}</span> (start time source: {e(f.start_source)})'
                    for f in sorted(
                        {s.file.path: s.file for s in ident.sightings if not s.file.time_reliable}.values(),
                        key=lambda f: f.path,
                    )
                ],
            )
        )
    montage = assets.montages.get(ident.id)
    n_tiles = assets.montage_tiles.get(ident.id, 0)
    body = "\n".join(
        [
            f'<nav><a href="index.html">\u2190 All identities</a> \u00b7 <a href="{CASE_HREF}">The case in order</a></nav>',
            f"<header><h1>{e(ident.title)}</h1></header>",
            facts(rows),
            doubt_line(ident),
            *notes,
            notes_box(ident),
            corrections_box(ident),
            "<h2>Faces</h2>",
            img(montage, f"montage of faces of identity {ident.id}", "montage") if montage else "",
            f'<p class="muted">The {n_tiles} best of {ident.n_faces} face(s), best quality first.</p>'
            if montage
            else '<p class="muted">No face image available.</p>',
            "<h2>Timeline</h2>",
            (svg + legend(used)) if svg else '<p class="muted">No sighting has a wall-clock time.</p>',
            f'<p class="muted">{untimed} sighting(s) without a start time are not on the timeline.</p>'
            if untimed and svg
            else "",
            f"<h2>Sightings ({ident.n_sightings})</h2>",
            sightings_table(ident, assets, data.mixed_zones),
            "<footer>Identity numbers are arbitrary; a grouping is a lead, not an identification.</footer>",
        ]
    )
    return page(f"{ident.title} \u2014 vidcluster report", body, ctx)


# -- the case in order ----------------------------------------------------------------------
# The case page's filter. It only hides rows; it loads nothing, so the page works offline.
FILTER_SCRIPT = """
(function () {
  var form = document.getElementById("filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#case-list tbody tr"));
  var shown = document.getElementById("shown");
  function apply() {
    var cam = form.elements.camera.value;
    var from = form.elements.from.value.replace("T", " ");
    var to = form.elements.to.value.replace("T", " ");
    var who = form.elements.who.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (row) {
      var t = row.getAttribute("data-local");
      var ok = (!cam || row.getAttribute("data-camera") === cam) &&
               (!from || (t && t >= from)) &&
               (!to || (t && t.slice(0, to.length) <= to)) &&
               (!who || row.getAttribute("data-who").indexOf(who) >= 0);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  form.addEventListener("reset", function () { setTimeout(apply, 0); });
  apply();
})();
""".strip()


def who_text(s: Sighting, ident: Identity | None) -> str:
    """What the label filter matches: '#3 label' or 'unmatched' (lower case)."""
    if ident is None:
        return UNMATCHED_TEXT
    return (f"#{ident.id} identity {ident.id} " + (ident.label or "")).strip().lower()


def case_timeline(data: ReportData, colors: dict[str, str]) -> str:
    """Per camera, one row per identity seen there: who passed each camera when."""
    by_id = data.by_id
    id_colors = camera_colors([str(i.id) for i in data.identities])
    timed = [s for s in data.chronological if s.start_utc is not None]
    lanes = []
    for cam in data.cameras:
        on_cam = [s for s in timed if s.camera == cam]
        for ident_id in sorted({s.identity for s in on_cam}, key=lambda i: (i < 0, i)):
            ident = by_id.get(ident_id)
            who = ident.title if ident else UNMATCHED_TEXT
            label = f"{cam} \u00b7 " + (lane_label(ident, 12) if ident else UNMATCHED_TEXT)
            marks = tuple(
                sighting_mark(s, id_colors.get(str(ident_id), "#999999"), who) for s in on_cam if s.identity == ident_id
            )
            lanes.append(Lane(label, marks, identity_href(ident_id) if ident else None))
    tz, tz_label = axis_zone(data)
    return timeline_svg(
        lanes,
        caption=f"Sightings per camera and identity over time ({tz_label})",
        tz=tz,
        tz_label=tz_label,
        label_px=190,
    )


def case_rows(data: ReportData, assets: Assets) -> str:
    by_id = data.by_id
    rows = []
    for n, s in enumerate(data.chronological, 1):
        ident = by_id.get(s.identity)
        who = (
            f'<a href="{e(identity_href(ident.id))}">{e(ident.title)}</a> {confirmed_badge(ident)}'
            if ident
            else '<span class="muted">unmatched</span>'
        )
        snap = assets.snapshots.get(s.track_id)
        snap_html = img(snap, f"snapshot of sighting {s.track_id}", "case-snap") if snap else ""
        link = f'<a href="{e(sighting_href(s))}">{snap_html or "sighting"}</a>' if ident else snap_html
        rows.append(
            f'<tr id="{sighting_anchor(s.track_id) if ident is None else "case-" + str(int(s.track_id))}" '
            f'data-camera="{e(s.camera)}" data-local="{e(local_key(s.start_utc, s.file.zone))}" '
            f'data-who="{e(who_text(s, ident))}">'
            f'<td class="ref">{n}<br><span class="mono">sighting:{int(s.track_id)}</span></td><td>{who}</td>'
            f"<td>{e(s.camera)}</td><td>{sighting_when(s, data.mixed_zones)}</td>"
            f"<td>{e('photo' if s.file.is_photo else fmt_duration(s.duration_s))}</td>"
            f"<td>{link}{clip_player(s, assets) if ident is None else ''}</td></tr>"
        )
    return "".join(rows)


def filter_form(data: ReportData) -> str:
    options = "".join(f'<option value="{e(c)}">{e(c)}</option>' for c in data.cameras)
    return (
        '<form id="filter" class="filter" role="search">'
        f'<label>Camera<select name="camera"><option value="">all cameras</option>{options}</select></label>'
        '<label>From (camera clock)<input type="datetime-local" name="from" step="1"></label>'
        '<label>To (camera clock)<input type="datetime-local" name="to" step="1"></label>'
        '<label>Identity or label<input type="text" name="who" placeholder="e.g. #3 or guard"></label>'
        '<button type="reset">Show all</button>'
        f'<span class="muted"><span id="shown">{len(data.sightings)}</span> of {len(data.sightings)} shown</span>'
        "</form>"
    )


def case_page(data: ReportData, assets: Assets, ctx: Context) -> str:
    """Every sighting of the case in time order with a filter, each identity's path, and the per-camera timeline."""
    colors = camera_colors(data.cameras)
    svg = case_timeline(data, colors)
    paths = "".join(
        f'<li><a href="{e(identity_href(i.id))}">{e(i.title)}</a>'
        f"{' ' + confirmed_badge(i) if i.confirmed else ''}: {path_html(i)}</li>"
        for i in sorted(data.identities, key=lambda i: i.id)
    )
    body = "\n".join(
        [
            '<nav><a href="index.html">\u2190 All identities</a></nav>',
            "<header><h1>The case in order</h1></header>",
            f'<p class="print-only">{e(case_text(ctx))}</p>',
            '<section id="case-timeline"><h2>Per camera</h2>',
            (svg + '<p class="muted">One row per camera and identity; every mark links to its sighting.</p>')
            if svg
            else '<p class="muted">No sighting has a wall-clock time.</p>',
            "</section>",
            '<section id="paths"><h2>Paths through the cameras</h2>',
            f"<ul>{paths}</ul>" if paths else '<p class="muted">No identities were found.</p>',
            "</section>",
            f'<section id="sightings"><h2>Every sighting ({len(data.sightings)})</h2>',
            filter_form(data),
            '<table id="case-list"><thead><tr><th>#</th><th>Identity</th><th>Camera</th><th>When (camera clock)</th>'
            f"<th>Duration</th><th>Snapshot</th></tr></thead><tbody>{case_rows(data, assets)}</tbody></table>",
            '<p class="muted">The same list as a table: <a href="sightings.csv">sightings.csv</a>.</p></section>',
        ]
    )
    return page("The case in order \u2014 vidcluster report", body, ctx, script=FILTER_SCRIPT)

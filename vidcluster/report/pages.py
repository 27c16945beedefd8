"""HTML pages of the report: index.html and one identity-<id>.html per identity.

Small functions returning strings. All text from the footage (camera and file names, reasons,
paths) is escaped with `html.escape`; links and image names are built from integer ids only.
The pages are self-contained: inline CSS, no scripts, no external URLs, a restrictive CSP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from urllib.parse import quote
from typing import Any, Iterable

from .data import FileInfo, Identity, ReportData, Sighting
from .exports import skipped_files
from .svg import Lane, Mark, camera_colors, timeline_svg

CSP = ("default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; media-src 'self' file:; "
       "base-uri 'none'; form-action 'none'")
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
img.snap { max-width: 220px; height: auto; border: 1px solid var(--line); }
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
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; } nav, footer { display: none; }
  a { color: inherit; text-decoration: none; } h2 { break-after: avoid; }
  tr, .card, svg.timeline, img { break-inside: avoid; }
  .warning { border: 1px solid #e8a33d; }
  details { display: block; } details > summary { list-style: none; }
}
"""


@dataclass
class Assets:
    """Image files written into the report folder, by the id they were made from."""

    faces: dict[int, str] = field(default_factory=dict)  # face id -> face-<id>.jpg
    snapshots: dict[int, str] = field(default_factory=dict)  # track id -> snap-<id>.jpg
    montages: dict[int, str] = field(default_factory=dict)  # identity id -> montage-<id>.jpg
    montage_tiles: dict[int, int] = field(default_factory=dict)  # identity id -> faces in its montage
    folder: Path | None = None  # where the pages are written (links to the footage are relative to it)


# -- formatting -----------------------------------------------------------------------------
def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def fmt_utc(t: datetime | None) -> str:
    """'2026-03-14 09:00:01 UTC', or an em dash when unknown."""
    if t is None:
        return "\u2014"
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_span(a: datetime, b: datetime) -> str:
    """'2026-03-14 09:00:01 – 09:00:12 UTC' (the date repeated only when it changes)."""
    a, b = a.astimezone(timezone.utc), b.astimezone(timezone.utc)
    if a.replace(microsecond=0) == b.replace(microsecond=0):
        return fmt_utc(a)
    end = b.strftime("%H:%M:%S") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M:%S")
    return f"{a:%Y-%m-%d %H:%M:%S} \u2013 {end} UTC"


def fmt_duration(seconds: float | None) -> str:
    """'1 h 02 min 03 s', '4 min 05 s', '12.5 s'; an em dash when unknown.

    >>> fmt_duration(3723), fmt_duration(12.5)
    ('1 h 02 min 03 s', '12.5 s')
    """
    if seconds is None:
        return "\u2014"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s"


def fmt_offsets(start_s: float, end_s: float) -> str:
    if round(start_s, 1) == round(end_s, 1):
        return f"{start_s:.1f} s"
    return f"{start_s:.1f} s \u2013 {end_s:.1f} s"


def plural(n: int, word: str) -> str:
    """'1 face', '3 faces'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def approx_badge(f: FileInfo) -> str:
    """A visible marker next to times whose file start time is a guess (mtime) or missing."""
    if f.start_utc is None:
        return ' <span class="approx" title="this file has no start time; offsets within the file are shown">' \
               "no clock</span>"
    if not f.time_reliable:
        return (f' <span class="approx" title="start time taken from {e(f.start_source)}: unreliable">'
                "\u2248 approx.</span>")
    return ""


def seen_html(s: Sighting | None, *, first: bool) -> str:
    """First/last seen time with the camera, marked when its file's clock is a guess."""
    if s is None:
        return '<span class="muted">unknown (no sighting has a wall-clock time)</span>'
    t = s.start_utc if first else s.end_utc
    return f"{e(fmt_utc(t))} ({e(s.camera)}){approx_badge(s.file)}"


def sighting_when(s: Sighting) -> str:
    """Wall-clock span of a sighting, or its offsets within the file when the file has no start time."""
    if s.start_utc is None or s.end_utc is None:
        return f"{e(fmt_offsets(s.start_s, s.end_s))} into the file{approx_badge(s.file)}"
    return e(fmt_span(s.start_utc, s.end_utc)) + approx_badge(s.file)


def sighting_title(s: Sighting, who: str) -> str:
    when = fmt_span(s.start_utc, s.end_utc) if s.start_utc and s.end_utc else fmt_offsets(s.start_s, s.end_s)
    approx = "" if s.file.time_reliable else f" (approx.: time from {s.file.start_source})"
    return (f"{who} \u00b7 camera {s.camera} \u00b7 {when}{approx} \u00b7 {plural(len(s.faces), 'face')}"
            f" \u00b7 {s.file.path}")


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def facts(rows: Iterable[tuple[str, str]]) -> str:
    """<dl> of (label, already-escaped html) pairs."""
    items = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def legend(colors: dict[str, str]) -> str:
    items = "".join(f'<span><span class="swatch" style="background:{e(c)}"></span>{e(cam)}</span>'
                    for cam, c in colors.items())
    return f'<div class="legend">{items}</div>'


def warning(title: str, items: list[str]) -> str:
    """A highlighted box; `items` are already-escaped html fragments."""
    lis = "".join(f"<li>{i}</li>" for i in items)
    return f'<div class="warning" role="note"><strong>{e(title)}</strong><ul>{lis}</ul></div>'


def identity_href(ident_id: int) -> str:
    return f"identity-{int(ident_id)}.html"


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


def corrected_badge(ident: Identity) -> str:
    """A small line on the card when the investigator corrected this identity."""
    if not ident.notes:
        return ""
    return f'<p class="muted">{e(plural(len(ident.notes), "correction"))} by hand</p>'


def corrections_box(ident: Identity) -> str:
    """The investigator's corrections that shaped this identity (merges, rejected sightings)."""
    if not ident.notes:
        return ""
    items = "".join(f"<li>{e(n)}</li>" for n in ident.notes)
    return f'<div class="corrections" role="note"><strong>Corrected by hand</strong><ul>{items}</ul></div>'


def best_face_ref(s: Sighting) -> str:
    best = s.best_face
    return "" if best is None else f'<br><span class="mono muted">face:{int(best.id)}</span>'


# -- index ----------------------------------------------------------------------------------
def time_warnings(data: ReportData) -> str:
    """Warnings about analysed files whose start time is a guess or missing."""
    used = [f for f in data.files if f.status != "skipped"]
    guessed = [f for f in used if f.start_utc is not None and not f.time_reliable]
    missing = [f for f in used if f.start_utc is None]
    out = ""
    if guessed:
        out += warning(
            "Unreliable times: the start time of these files was not found in the camera settings, the file "
            "name or the container metadata but guessed (e.g. from the file modification time), so their "
            "wall-clock times may be wrong (marked \u2248 approx.; dashed on the timelines).",
            [f"{e(f.camera)}: <span class=\"mono\">{e(f.path)}</span> ({e(f.start_source)})" for f in guessed],
        )
    if missing:
        out += warning(
            "No start time: these files carry no start time; their sightings are given as offsets in seconds "
            "within the file and are left out of the timelines.",
            [f"{e(f.camera)}: <span class=\"mono\">{e(f.path)}</span>" for f in missing],
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
    rows = [
        ("Files", e(f"{len(files)} ({status_text})" if files else "0")),
        ("Cameras", e(f"{len(data.cameras)}: " + ", ".join(data.cameras)) if data.cameras else "0"),
        ("Footage duration", e(fmt_duration(total_s))),
        ("Time window", e(window_text)),
        ("Identities", e(len(data.identities))),
        ("Sightings", e(len(data.sightings))),
        ("Faces", e(f"{len(data.faces)} ({n_unmatched} unmatched)")),
    ]
    parts = ['<section id="summary"><h2>Summary</h2>', facts(rows), time_warnings(data)]
    partial = [f for f in files if f.status == "partial"]
    if partial:
        parts.append(warning("Partly analysed files:", [
            f"{e(f.camera)}: <span class=\"mono\">{e(f.path)}</span> \u2014 {e(f.reason or 'no reason given')}"
            for f in partial]))
    skipped = skipped_files(data, run_info)
    if skipped:
        parts.append(warning("Skipped files (not analysed):", [
            f"<span class=\"mono\">{e(s['path'])}</span> \u2014 {e(s['reason'] or 'no reason given')}"
            for s in skipped]))
    parts.append("</section>")
    return "\n".join(parts)


def overview_section(data: ReportData, colors: dict[str, str]) -> str:
    lanes = []
    for ident in data.identities:
        marks = tuple(Mark(s.start_utc, s.end_utc, colors[s.camera], sighting_title(s, f"identity {ident.id}"),
                           not s.file.time_reliable)
                      for s in ident.sightings if s.start_utc is not None)
        lanes.append(Lane(lane_label(ident), marks, identity_href(ident.id)))
    if data.unmatched:
        marks = tuple(Mark(s.start_utc, s.end_utc, colors[s.camera], sighting_title(s, "unmatched"),
                           not s.file.time_reliable)
                      for s in data.unmatched if s.start_utc is not None)
        lanes.append(Lane("unmatched", marks))
    svg = timeline_svg(lanes, caption="Sightings per identity over time (UTC), coloured by camera")
    untimed = sum(1 for s in data.sightings if s.start_utc is None)
    note = (f'<p class="muted">{untimed} sighting(s) from files without a start time are not on the timeline.</p>'
            if untimed else "")
    body = (svg + legend(colors)) if svg else '<p class="muted">No sighting has a wall-clock time.</p>'
    return f'<section id="timeline"><h2>Timeline</h2>{body}{note}</section>'


def identity_card(ident: Identity, assets: Assets) -> str:
    best = ident.best_face
    thumb = img(assets.faces.get(best.id) if best else None, f"best face of identity {ident.id}")
    href = identity_href(ident.id)
    return (
        f'<div class="card"><a href="{href}">{thumb}</a>'
        f'<h3><a href="{href}">{e(ident.title)}</a></h3>'
        f"{corrected_badge(ident)}"
        f"<p>{e(plural(ident.n_sightings, 'sighting'))}, {e(plural(ident.n_faces, 'face'))}</p>"
        f"<p>Cameras: {e(', '.join(ident.cameras))}</p>"
        f"<p>First seen: {seen_html(ident.first_sighting, first=True)}</p>"
        f"<p>Last seen: {seen_html(ident.last_sighting, first=False)}</p></div>"
    )


def identities_section(data: ReportData, assets: Assets) -> str:
    if not data.identities:
        return '<section id="identities"><h2>Identities</h2><p class="muted">No identities were found.</p></section>'
    cards = "\n".join(identity_card(i, assets) for i in data.identities)
    return (f'<section id="identities"><h2>Identities ({len(data.identities)})</h2>'
            f'<div class="cards">{cards}</div></section>')


def unmatched_section(data: ReportData, assets: Assets) -> str:
    faces = data.unmatched_faces
    head = f'<section id="unmatched"><h2>Unmatched ({len(faces)} face(s), {len(data.unmatched)} sighting(s))</h2>'
    if not data.unmatched:
        return head + '<p class="muted">Every face was assigned to an identity.</p></section>'
    shown = [s for s in data.unmatched if s.best_face and s.best_face.id in assets.faces][:MAX_UNMATCHED_THUMBS]
    thumbs = "".join(img(assets.faces[s.best_face.id], f"unmatched face {s.best_face.id}",
                         title=sighting_title(s, "unmatched")) for s in shown)
    note = (f'<p class="muted">Best face of each unmatched sighting; showing {len(shown)} of {len(data.unmatched)}.</p>'
            if len(shown) < len(data.unmatched) else
            '<p class="muted">Best face of each unmatched sighting (hover for camera and time).</p>')
    return f'{head}<p>Faces that could not be grouped with any other sighting.</p>{note}' \
           f'<div class="thumbs">{thumbs}</div></section>'


def files_section(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{e(f.camera)}</td><td class=\"mono\">{e(f.path)}</td><td>{e(fmt_utc(f.start_utc))}"
        f"{approx_badge(f)}</td><td>{e(f.start_source)}</td><td>{e(fmt_duration(f.duration_s))}</td>"
        f"<td>{e(f.status)}</td><td>{e(f.reason)}</td><td class=\"mono\" title=\"{e(f.sha256)}\">"
        f"{e(f.sha256[:12])}\u2026</td></tr>"
        for f in data.files
    )
    return (
        f'<section id="files"><h2>Files</h2><details><summary>{len(data.files)} file(s) '
        "with start time, its source and SHA-256 (full list in manifest.json)</summary>"
        "<table><thead><tr><th>Camera</th><th>File</th><th>Start</th><th>Time source</th><th>Duration</th>"
        f"<th>Status</th><th>Reason</th><th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table></details></section>"
    )


def run_line(run_info: dict[str, Any], generated_utc: str) -> str:
    return (f'<p class="muted">vidcluster {e(run_info.get("version"))} \u00b7 run {e(run_info.get("started_utc"))} '
            f'\u2013 {e(run_info.get("finished_utc"))} \u00b7 report generated {e(generated_utc)}</p>')


def index_page(data: ReportData, run_info: dict[str, Any], assets: Assets, generated_utc: str) -> str:
    colors = camera_colors(data.cameras)
    body = "\n".join([
        "<header><h1>Who appears in the footage</h1>", run_line(run_info, generated_utc), "</header>",
        summary_section(data, run_info),
        overview_section(data, colors),
        identities_section(data, assets),
        unmatched_section(data, assets),
        files_section(data),
        '<footer>Identities are unsupervised groupings of similar faces, not confirmed identifications; '
        'check every sighting. Machine-readable: <a href="identities.json">identities.json</a>, '
        '<a href="faces.csv">faces.csv</a>, <a href="manifest.json">manifest.json</a>.</footer>',
    ])
    return page("vidcluster report", body)


# -- identity page --------------------------------------------------------------------------
def camera_timeline(ident: Identity, colors: dict[str, str]) -> str:
    lanes = []
    for cam in ident.cameras:
        marks = tuple(Mark(s.start_utc, s.end_utc, colors[cam], sighting_title(s, f"identity {ident.id}"),
                           not s.file.time_reliable)
                      for s in ident.sightings if s.camera == cam and s.start_utc is not None)
        lanes.append(Lane(cam, marks))
    return timeline_svg(lanes, caption=f"Sightings of identity {ident.id} per camera over time (UTC)")


# Containers a browser's <video> commonly plays (with H.264 inside); others get file and offset only.
PLAYABLE_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".ogv"})


def player(s: Sighting, folder: Path | None) -> str:
    """An HTML5 player cued to the sighting (media fragment #t=start,end), linked relative to the
    report `folder`; '' for formats browsers do not play or without a folder."""
    path = Path(s.file.path)
    if folder is None or path.suffix.lower() not in PLAYABLE_SUFFIXES or not path.is_absolute():
        return ""
    rel = Path(os.path.relpath(path, Path(folder).resolve())).as_posix()
    src = f"{quote(rel)}#t={max(0.0, s.start_s):.2f},{s.end_s + 0.5:.2f}"
    return f'<br><video controls preload="none" width="320" src="{e(src)}"></video>'


def sightings_table(ident: Identity, assets: Assets) -> str:
    rows = []
    for k, s in enumerate(ident.sightings, 1):
        snap = assets.snapshots.get(s.track_id)
        snap_html = (f'<a href="{e(snap)}">{img(snap, f"snapshot of sighting {s.track_id}", "snap")}</a>'
                     if snap else '<span class="muted">none</span>')
        rows.append(
            f"<tr><td>{k}<br><span class=\"mono\" title=\"use as vidcluster reject OUT {int(ident.id)} sighting:{int(s.track_id)}\">sighting:{int(s.track_id)}</span>{best_face_ref(s)}</td><td>{e(s.camera)}</td><td>{sighting_when(s)}</td><td>{len(s.faces)}</td>"
            f"<td>{snap_html}</td><td><span class=\"mono\">{e(s.file.path)}</span><br>"
            f"at {e(fmt_offsets(s.start_s, s.end_s))}{player(s, assets.folder)}</td></tr>"
        )
    return ("<table><thead><tr><th>#</th><th>Camera</th><th>When</th><th>Faces</th><th>Snapshot</th>"
            f"<th>File and offset</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def identity_page(ident: Identity, data: ReportData, assets: Assets, generated_utc: str) -> str:
    colors = camera_colors(data.cameras)
    used = {c: colors[c] for c in ident.cameras}
    svg = camera_timeline(ident, colors)
    untimed = sum(1 for s in ident.sightings if s.start_utc is None)
    rows = [
        ("Sightings", e(ident.n_sightings)),
        ("Faces", e(ident.n_faces)),
        ("Cameras", e(", ".join(ident.cameras))),
        ("First seen", seen_html(ident.first_sighting, first=True)),
        ("Last seen", seen_html(ident.last_sighting, first=False)),
    ]
    notes = []
    if not ident.times_reliable:
        notes.append(warning("Some times on this page are unreliable or missing:", [
            f"{e(f.camera)}: <span class=\"mono\">{e(f.path)}</span> (start time source: {e(f.start_source)})"
            for f in sorted({s.file.path: s.file for s in ident.sightings if not s.file.time_reliable}.values(),
                            key=lambda f: f.path)]))
    montage = assets.montages.get(ident.id)
    n_tiles = assets.montage_tiles.get(ident.id, 0)
    body = "\n".join([
        '<nav><a href="index.html">\u2190 All identities</a></nav>',
        f"<header><h1>{e(ident.title)}</h1></header>",
        facts(rows), *notes, corrections_box(ident),
        "<h2>Faces</h2>",
        img(montage, f"montage of faces of identity {ident.id}", "montage") if montage else "",
        f'<p class="muted">The {n_tiles} best of {ident.n_faces} face(s), best quality first.</p>' if montage
        else '<p class="muted">No face image available.</p>',
        "<h2>Timeline</h2>",
        (svg + legend(used)) if svg else '<p class="muted">No sighting has a wall-clock time.</p>',
        f'<p class="muted">{untimed} sighting(s) without a start time are not on the timeline.</p>' if untimed and svg
        else "",
        f"<h2>Sightings ({ident.n_sightings})</h2>",
        sightings_table(ident, assets),
        f"<footer>Generated {e(generated_utc)} by vidcluster. Identity numbers are arbitrary; "
        "a grouping is a lead, not an identification.</footer>",
    ])
    return page(f"{ident.title} \u2014 vidcluster report", body)

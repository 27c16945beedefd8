"""The report's index.html (summary, timeline, identity cards, unmatched faces, files) and one
identity-<id>.html per identity.

The pieces they share with case.html are in `fragments`, the document shell in `chrome`.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Any

from ..types import UNMATCHED_TEXT
from .chrome import Context, e, facts, fmt_duration, fmt_local, img, legend, page, plural, warning
from .data import Identity, ReportData
from .exports import left_out_folders, skipped_files
from .fragments import (
    CASE_HREF,
    Assets,
    approx_badge,
    axis_zone,
    best_face_ref,
    clip_player,
    confirmed_badge,
    corrected_badge,
    corrections_box,
    doubt_line,
    identity_href,
    lane_label,
    nearest_html,
    notes_box,
    path_html,
    seen_html,
    sighting_anchor,
    sighting_href,
    sighting_mark,
    sighting_title,
    sighting_when,
    where_in_file,
)
from .method import nav_html
from .svg import Lane, camera_colors, timeline_svg

MAX_UNMATCHED_THUMBS = 120


# -- index ----------------------------------------------------------------------------------
def time_warnings(data: ReportData) -> str:
    """Warnings about analysed files whose start time is a guess or missing."""
    used = [f for f in data.files if f.analysed and not f.is_photo]
    guessed = [f for f in used if f.start_utc is not None and not f.time_reliable]
    missing = [f for f in used if f.start_utc is None]
    out = ""
    if guessed:
        out += warning(
            "Unreliable times: the start time of these files was not found in the camera settings, the file "
            "name or the container metadata but guessed (e.g. from the file modification time), so their "
            "wall-clock times may be wrong (marked \u2248 approx.; dashed on the timelines).",
            [f'{e(f.camera)}: <span class="mono">{e(f.name)}</span> ({e(f.start_source)})' for f in guessed],
        )
    if missing:
        out += warning(
            "No start time: these files carry no start time; their sightings are given as offsets in seconds "
            "within the file and are left out of the timelines.",
            [f'{e(f.camera)}: <span class="mono">{e(f.name)}</span>' for f in missing],
        )
    return out


def summary_section(data: ReportData, run_info: dict[str, Any]) -> str:
    files = data.files
    by_status: dict[str, int] = {}
    for f in files:
        by_status[f.status] = by_status.get(f.status, 0) + 1
    status_text = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    total_s = sum(f.duration_s or 0.0 for f in files if f.kind == "video" and f.analysed)
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
                    f'{e(f.camera)}: <span class="mono">{e(f.name)}</span> \u2014 {e(f.reason or "no reason given")}'
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
                    f'<span class="mono">{e(s["shown"])}</span> \u2014 {e(s["reason"] or "no reason given")}'
                    for s in skipped
                ],
            )
        )
    parts += duplicates_box(data) + left_out_box(run_info)
    parts.append("</section>")
    return "\n".join(parts)


def duplicates_box(data: ReportData) -> list[str]:
    """Files whose content (SHA-256) another file has: each analysed once, under the file named."""
    dups = data.duplicates
    if not dups:
        return []
    items = [
        f'{e(f.camera)}: <span class="mono">{e(f.name)}</span> \u2014 same content as '
        + (f'<span class="mono">{e(o.name)}</span> ({e(o.camera)})' if o else "a file no longer analysed")
        + f' <span class="mono muted" title="{e(f.sha256)}">SHA-256 {e(f.sha256[:12])}\u2026</span>'
        for f, o in dups
    ]
    return [
        warning(
            "Duplicate files: the same content (equal SHA-256) under several paths, analysed once; "
            "its sightings are those of the file named:",
            items,
        )
    ]


def left_out_box(run_info: dict[str, Any]) -> list[str]:
    """Folders under the inputs that were not walked: this run's output folder, other cases' output."""
    folders = left_out_folders(run_info)
    if not folders:
        return []
    return [
        warning(
            "Folders not walked (a case's output: its face crops and clips are not footage):",
            [
                f'<span class="mono">{e(i["shown"] or Path(i["path"]).name)}</span> \u2014 {e(i["reason"])}'
                for i in folders
            ],
        )
    ]


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
    which = "chosen cover" if ident.cover_chosen else "best"
    thumb = img(assets.faces.get(best.id) if best else None, f"{which} face of identity {ident.id}")
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


def hidden_section(data: ReportData) -> str:
    """The identities hidden by hand: only their ids and sizes, and the command that shows each again."""
    if not data.hidden:
        return ""
    rows = "".join(
        f"<tr><td>{e(h.id)}</td><td>{e(h.label or '')}</td><td>{e(h.n_sightings)}</td><td>{e(h.n_faces)}</td>"
        f'<td class="mono">vidcluster undo OUT {e(h.correction)}</td></tr>'
        for h in data.hidden
    )
    return (
        f'<section id="hidden"><h2>Hidden identities ({len(data.hidden)})</h2><details><summary>Hidden by hand '
        "(e.g. bystanders): left out of these pages, identities.json, sightings.csv and faces.csv; still in the "
        "store</summary><table><thead><tr><th>Identity</th><th>Label</th><th>Sightings</th><th>Faces</th>"
        f"<th>Shows it again</th></tr></thead><tbody>{rows}</tbody></table></details></section>"
    )


def files_section(data: ReportData) -> str:
    rows = "".join(
        f'<tr><td>{e(f.camera)}</td><td class="mono">{e(f.name)}</td><td>'
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
            nav_html("index.html"),
            "<header><h1>Who appears in the footage</h1>",
            run_line(run_info, ctx.generated_utc),
            "</header>",
            summary_section(data, run_info),
            overview_section(data, colors),
            identities_section(data, assets),
            unmatched_section(data, assets),
            hidden_section(data),
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
            f'<td>{snap_html}{clip_player(s, assets)}</td><td><span class="mono">{e(s.file.name)}</span><br>'
            f"{'a photo' if s.file.is_photo else 'at ' + e(where_in_file(s))}</td></tr>"
        )
    return (
        "<table><thead><tr><th>#</th><th>Camera</th><th>When (camera clock)</th><th>Faces</th>"
        f"<th>Snapshot and clip</th><th>File and offset</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def identity_facts(ident: Identity, utc_too: bool) -> str:
    """The facts list at the top of an identity page: counts, cameras, first and last seen, path."""
    rows = [
        ("Sightings", e(ident.n_sightings)),
        ("Faces", e(ident.n_faces)),
        ("Cameras", e(", ".join(ident.cameras))),
        ("First seen", seen_html(ident.first_sighting, first=True, utc_too=utc_too)),
        ("Last seen", seen_html(ident.last_sighting, first=False, utc_too=utc_too)),
        ("Path", path_html(ident)),
        ("Nearest identities", nearest_html(ident)),
    ]
    if ident.confirmed is not None:
        rows.insert(
            0, ("Examiner", confirmed_badge(ident) + f' <span class="muted">{e(ident.confirmed.created_utc)}</span>')
        )
    return facts(rows)


def unreliable_times(ident: Identity) -> list[str]:
    """A warning naming the files of this identity whose start time is a guess or missing (or none)."""
    if ident.times_reliable:
        return []
    files = sorted(
        {s.file.path: s.file for s in ident.sightings if not s.file.time_reliable}.values(), key=lambda f: f.path
    )
    return [
        warning(
            "Some times on this page are unreliable or missing:",
            [
                f'{e(f.camera)}: <span class="mono">{e(f.name)}</span> (start time source: {e(f.start_source)})'
                for f in files
            ],
        )
    ]


def identity_page(ident: Identity, data: ReportData, assets: Assets, ctx: Context) -> str:
    colors = camera_colors(data.cameras)
    used = {c: colors[c] for c in ident.cameras}
    tz, tz_label = axis_zone(data)
    svg = camera_timeline(ident, colors, tz, tz_label)
    untimed = sum(1 for s in ident.sightings if s.start_utc is None)
    montage = assets.montages.get(ident.id)
    n_tiles = assets.montage_tiles.get(ident.id, 0)
    body = "\n".join(
        [
            nav_html(),
            f"<header><h1>{e(ident.title)}</h1></header>",
            identity_facts(ident, data.mixed_zones),
            doubt_line(ident),
            *unreliable_times(ident),
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

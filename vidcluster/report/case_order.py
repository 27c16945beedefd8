"""case.html, the case in order: every sighting by time with an offline filter, each identity's
path through the cameras, and the timeline per camera and identity.

Its filter is the only script of the report; it hides rows and loads nothing.
"""

from __future__ import annotations

from ..types import UNMATCHED_TEXT
from .chrome import Context, case_text, e, fmt_duration, img, legend, local_key, page
from .data import Identity, ReportData, Sighting
from .fragments import (
    CASE_HREF,
    Assets,
    axis_zone,
    clip_player,
    confirmed_badge,
    identity_href,
    lane_label,
    path_html,
    sighting_anchor,
    sighting_href,
    sighting_mark,
    sighting_when,
)
from .method import nav_html
from .svg import Lane, camera_colors, timeline_svg

# -- the case in order ----------------------------------------------------------------------
# The case page's filter. It only hides things; it loads nothing, so the page works offline. The
# rows it keeps name their sightings, and every timeline mark and path step of another sighting is
# hidden too (class "off"), a path with none left with it.
FILTER_SCRIPT = """
(function () {
  var form = document.getElementById("filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#case-list tbody tr"));
  var marks = Array.prototype.slice.call(document.querySelectorAll("#case-timeline [data-sighting]"));
  var paths = Array.prototype.slice.call(document.querySelectorAll("#paths li"));
  var shown = document.getElementById("shown");
  function apply() {
    var cam = form.elements.camera.value;
    var from = form.elements.from.value.replace("T", " ");
    var to = form.elements.to.value.replace("T", " ");
    var who = form.elements.who.value.trim().toLowerCase();
    var n = 0;
    var kept = {};
    rows.forEach(function (row) {
      var t = row.getAttribute("data-local");
      var ok = (!cam || row.getAttribute("data-camera") === cam) &&
               (!from || (t && t >= from)) &&
               (!to || (t && t.slice(0, to.length) <= to)) &&
               (!who || row.getAttribute("data-who").indexOf(who) >= 0);
      row.hidden = !ok;
      if (ok) { n += 1; kept[row.getAttribute("data-sighting")] = true; }
    });
    marks.forEach(function (m) { m.classList.toggle("off", !kept[m.getAttribute("data-sighting")]); });
    paths.forEach(function (li) {
      var first = true;
      li.querySelectorAll(".hop").forEach(function (hop) {
        var on = hop.getAttribute("data-sightings").split(" ").some(function (id) { return kept[id]; });
        hop.classList.toggle("off", !on);
        var arrow = hop.querySelector(".arrow");
        if (arrow) { arrow.classList.toggle("off", first); }
        if (on) { first = false; }
      });
      li.classList.toggle("off", !li.getAttribute("data-sightings").split(" ").some(function (id) { return kept[id]; }));
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
    """Per camera, one row per identity seen there: who passed each camera when (coloured by camera, as on every page)."""
    by_id = data.by_id
    timed = [s for s in data.chronological if s.start_utc is not None]
    lanes = []
    for cam in data.cameras:
        on_cam = [s for s in timed if s.camera == cam]
        for ident_id in sorted({s.identity for s in on_cam}, key=lambda i: (i < 0, i)):
            ident = by_id.get(ident_id)
            who = ident.title if ident else UNMATCHED_TEXT
            label = f"{cam} \u00b7 " + (lane_label(ident, 12) if ident else UNMATCHED_TEXT)
            marks = tuple(sighting_mark(s, colors[cam], who) for s in on_cam if s.identity == ident_id)
            lanes.append(Lane(label, marks, identity_href(ident_id) if ident else None))
    tz, tz_label = axis_zone(data)
    return timeline_svg(
        lanes,
        caption=f"Sightings per camera and identity over time ({tz_label}), coloured by camera",
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
            f'data-who="{e(who_text(s, ident))}" data-sighting="{int(s.track_id)}">'
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
        f'<li data-sightings="{" ".join(str(int(s.track_id)) for s in i.sightings)}">'
        f'<a href="{e(identity_href(i.id))}">{e(i.title)}</a>'
        f"{' ' + confirmed_badge(i) if i.confirmed else ''}: {path_html(i)}</li>"
        for i in sorted(data.identities, key=lambda i: i.id)
    )
    body = "\n".join(
        [
            nav_html(CASE_HREF),
            "<header><h1>The case in order</h1></header>",
            f'<p class="print-only">{e(case_text(ctx))}</p>',
            '<section id="case-timeline"><h2>Per camera</h2>',
            (
                svg
                + legend(colors)
                + '<p class="muted">One row per camera and identity; every mark links to its sighting. '
                "The filter below narrows these marks and the paths too.</p>"
            )
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

"""Inline SVG timelines: lanes (identities or cameras) against wall-clock time.

Pure string building; every piece of text goes through `chrome.e` (`html.escape`, bidi controls
made visible). Every mark can be a link (to its sighting); marks are at least `min_mark_px` wide so that a 2-second sighting on a
5-hour axis can still be seen and clicked. The axis is labelled in one zone (`tz`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from .chrome import e as escape

# Tableau-like palette; cameras beyond it get evenly spread hues.
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# Tick steps in seconds, smallest first.
_STEPS_S = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    28 * 86400,
    91 * 86400,
    364 * 86400,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def camera_colors(cameras: list[str]) -> dict[str, str]:
    """Stable colour per camera (by sorted name)."""
    out = {}
    for k, cam in enumerate(sorted(cameras)):
        if k < len(_PALETTE):
            out[cam] = _PALETTE[k]
        else:
            out[cam] = f"hsl({(k * 137.5) % 360:.0f}, 60%, 45%)"
    return out


@dataclass(frozen=True)
class Mark:
    """One interval on a lane; `title` becomes the hover tooltip."""

    start: datetime
    end: datetime
    color: str
    title: str
    approx: bool = False  # drawn hatched-outline: the time is a guess
    href: str | None = None  # relative link to the sighting
    sighting: int | None = None  # the sighting's track id (data-sighting), for the case page's filter


@dataclass(frozen=True)
class Lane:
    label: str
    marks: tuple[Mark, ...]
    href: str | None = None  # relative link for the label


def tick_step_s(span_s: float, max_ticks: int = 8) -> int:
    """Smallest readable step that gives at most `max_ticks` ticks over `span_s` seconds.

    >>> tick_step_s(600), tick_step_s(50), tick_step_s(3 * 86400)
    (120, 10, 43200)
    """
    for step in _STEPS_S:
        if span_s / step <= max_ticks:
            return step
    return _STEPS_S[-1]


def ticks(t0: datetime, t1: datetime, step_s: int, tz: tzinfo = timezone.utc) -> list[datetime]:
    """Instants in [t0, t1] whose clock time in zone `tz` is a whole multiple of step_s (UTC offset at t0)."""
    shift = (t0.astimezone(tz).utcoffset() or timedelta(0)).total_seconds()
    first = math.ceil(((t0 - _EPOCH).total_seconds() + shift) / step_s) * step_s - shift
    out = []
    t = _EPOCH + timedelta(seconds=first)
    while t <= t1:
        out.append(t)
        t += timedelta(seconds=step_s)
    return out


def tick_label(t: datetime, step_s: int, multi_day: bool, tz: tzinfo = timezone.utc) -> str:
    """Short label in zone `tz`: date for day steps, date+time across days, seconds for sub-minute steps.

    >>> tick_label(datetime(2026, 3, 14, 9, 5, 30, tzinfo=timezone.utc), 30, False)
    '09:05:30'
    """
    t = t.astimezone(tz)
    if step_s >= 86400:
        return t.strftime("%Y-%m-%d")
    clock = t.strftime("%H:%M:%S" if step_s < 60 else "%H:%M")
    return f"{t.strftime('%m-%d')} {clock}" if multi_day else clock


def time_range(lanes: list[Lane], pad_frac: float = 0.03) -> tuple[datetime, datetime] | None:
    """(start, end) covering every mark, padded a little; at least one minute wide; None if no marks."""
    starts = [m.start for lane in lanes for m in lane.marks]
    ends = [m.end for lane in lanes for m in lane.marks]
    if not starts:
        return None
    t0, t1 = min(starts), max(ends)
    span = max((t1 - t0).total_seconds(), 60.0)
    mid = t0 + (t1 - t0) / 2
    half = timedelta(seconds=span * (0.5 + pad_frac))
    return mid - half, mid + half


def _truncate(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


@dataclass(frozen=True)
class _Frame:
    """Where a timeline's parts go: the span drawn from t0, the plot's left edge and width, the top
    of the first lane and the height of each."""

    t0: datetime
    span_s: float
    label_px: int
    plot_w: int
    top: int
    lane_px: int

    def x_of(self, t: datetime) -> float:
        return self.label_px + self.plot_w * (t - self.t0).total_seconds() / self.span_s


def timeline_svg(
    lanes: list[Lane],
    *,
    width_px: int = 960,
    lane_px: int = 22,
    label_px: int = 150,
    caption: str = "",
    tz: tzinfo = timezone.utc,
    tz_label: str = "UTC",
    min_mark_px: float = 6.0,
) -> str:
    """An SVG element with one row per lane and a time axis in zone `tz` (named `tz_label` under it);
    empty string when nothing is timed."""
    rng = time_range(lanes)
    if rng is None:
        return ""
    t0, t1 = rng
    top_labels = len(lanes) > 12  # tall charts repeat the time labels above the lanes
    top, axis_px = (22 if top_labels else 8), 34
    height = top + lane_px * len(lanes) + axis_px
    frame = _Frame(t0, (t1 - t0).total_seconds(), label_px, width_px - label_px - 10, top, lane_px)
    parts = [
        f'<svg class="timeline" viewBox="0 0 {width_px} {height}" '
        f'width="{width_px}" height="{height}" role="img" aria-label="{escape(caption or "timeline")}">',
    ]
    if caption:
        parts.append(f"<title>{escape(caption)}</title>")
    parts += _axis(frame, t1, top + lane_px * len(lanes), tz, tz_label, top_labels)
    for k, lane in enumerate(lanes):
        parts += _lane(frame, k, lane, width_px, min_mark_px)
    parts.append("</svg>")
    return "\n".join(parts)


def _axis(frame: _Frame, t1: datetime, axis_y: int, tz: tzinfo, tz_label: str, top_labels: bool) -> list[str]:
    """Grid lines and tick labels (repeated above the lanes with `top_labels`), the axis and its caption."""
    t0, top, label_px, plot_w = frame.t0, frame.top, frame.label_px, frame.plot_w
    multi_day = t0.astimezone(tz).date() != t1.astimezone(tz).date()
    step = tick_step_s(frame.span_s)
    parts = []
    for t in ticks(t0, t1, step, tz):
        x = frame.x_of(t)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle">'
            f"{escape(tick_label(t, step, multi_day, tz))}</text>"
        )
        if top_labels:
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{top - 6}" text-anchor="middle">'
                f"{escape(tick_label(t, step, multi_day, tz))}</text>"
            )
    l0, l1 = t0.astimezone(tz), t1.astimezone(tz)
    day_text = l0.strftime("%Y-%m-%d") if not multi_day else f"{l0:%Y-%m-%d} \u2013 {l1:%Y-%m-%d}"
    parts.append(
        f'<text class="axis" x="{label_px + plot_w}" y="{axis_y + 30}" text-anchor="end">'
        f"time ({escape(tz_label)}), {escape(day_text)}</text>"
    )
    parts.append(f'<line class="axisline" x1="{label_px}" y1="{axis_y}" x2="{label_px + plot_w}" y2="{axis_y}"/>')
    return parts


def _lane(frame: _Frame, k: int, lane: Lane, width_px: int, min_mark_px: float) -> list[str]:
    """Lane number k: its stripe (every other lane), its label (a link with an href) and its marks."""
    lane_px, label_px = frame.lane_px, frame.label_px
    y = frame.top + k * lane_px
    parts = []
    if k % 2 == 0:
        parts.append(f'<rect class="stripe" x="0" y="{y}" width="{width_px}" height="{lane_px}"/>')
    label = (
        f'<text class="lane" x="{label_px - 6}" y="{y + lane_px * 0.68:.1f}" text-anchor="end">'
        f"<title>{escape(lane.label)}</title>{escape(_truncate(lane.label, 22))}</text>"
    )
    if lane.href:
        label = f'<a href="{escape(lane.href)}">{label}</a>'
    parts.append(label)
    for m in lane.marks:
        x0 = frame.x_of(m.start)
        w = frame.x_of(m.end) - x0
        if w < min_mark_px:  # widen around the middle so a short sighting stays visible and clickable
            x0, w = x0 + w / 2 - min_mark_px / 2, min_mark_px
        rect = (
            f'<rect class="{"mark approx" if m.approx else "mark"}" x="{x0:.1f}" y="{y + 4}" '
            f'width="{w:.1f}" height="{lane_px - 8}" '
            f'fill="{escape(m.color)}"><title>{escape(m.title)}</title></rect>'
        )
        data = f' data-sighting="{int(m.sighting)}"' if m.sighting is not None else ""
        parts.append(f'<a class="marklink" href="{escape(m.href)}"{data}>{rect}</a>' if m.href else rect)
    return parts

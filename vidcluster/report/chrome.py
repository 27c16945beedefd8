"""The pages' chrome: escaping, time and size formats, and the self-contained document shell.

All text from the footage (camera and file names, reasons, paths) is escaped with `e`
(`html.escape`, and bidirectional controls written out as `\u202e`, so a name shows as stored). A page is self-contained: inline CSS, no external URLs, a restrictive CSP; a
page that runs a script (case.html's filter) names it inline and its CSP allows exactly that
script's SHA-256. Times are shown on the camera's clock with its UTC offset, and in UTC too
where the cameras keep time in different zones.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from html import escape
from typing import Any

CSP = (
    "default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; media-src 'self' file:; "
    "base-uri 'none'; form-action 'none'"
)


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
.off { display: none; }
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


@dataclass(frozen=True)
class Context:
    """What every page shows in its head and print margins: case, examiner, generation time."""

    generated_utc: str
    case: str = ""
    examiner: str = ""


# -- formatting -----------------------------------------------------------------------------
# Unicode's bidirectional controls (Bidi_Control): in a file or camera name they make a browser show
# the text around them in another order ('\u202egnp.exe' reads 'exe.png').
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_VISIBLE_BIDI = {ord(c): f"\\u{ord(c):04x}" for c in BIDI_CONTROLS}


def visible_controls(text: str) -> str:
    """`text` with each bidirectional control written as visible text (\\u202e), so it shows as stored.

    >>> print(visible_controls("cam_" + chr(0x202E) + "gnp.mp4"))
    cam_\\u202egnp.mp4
    """
    return text.translate(_VISIBLE_BIDI)


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute; bidirectional controls become visible text."""
    return escape(visible_controls("" if value is None else str(value)), quote=True)


def fmt_utc(t: datetime | None) -> str:
    """'2026-03-14 09:00:01 UTC', or an em dash when unknown."""
    if t is None:
        return "\u2014"
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def offset_label(t: datetime, tz: tzinfo) -> str:
    """'UTC+01:00' (the zone's offset at instant t), 'UTC' for UTC itself.

    >>> from vidcluster.case.records import zone
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

    >>> from vidcluster.case.records import zone
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


def plural(n: int, word: str) -> str:
    """'1 face', '3 faces'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
    """The key of a timeline's colours; on every page a colour means a camera (`svg.camera_colors`)."""
    items = '<span class="muted">Colour = camera:</span>' + "".join(
        f'<span><span class="swatch" style="background:{e(c)}"></span>{e(cam)}</span>' for cam, c in colors.items()
    )
    return f'<div class="legend">{items}</div>'


def warning(title: str, items: list[str]) -> str:
    """A highlighted box; `items` are already-escaped html fragments."""
    lis = "".join(f"<li>{i}</li>" for i in items)
    return f'<div class="warning" role="note"><strong>{e(title)}</strong><ul>{lis}</ul></div>'


def img(src: str | None, alt: str, cls: str = "", title: str = "") -> str:
    if not src:
        return ""
    c = f' class="{e(cls)}"' if cls else ""
    t = f' title="{e(title)}"' if title else ""
    return f'<img src="{e(src)}" alt="{e(alt)}"{c}{t} loading="lazy">'

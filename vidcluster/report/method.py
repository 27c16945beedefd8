"""method.html: how the result was reached. The models the run loaded (name, version, SHA-256 of
each weight file), the settings and thresholds in force, and the case's audit log (every run,
recluster, correction and undo with its time, version, settings, examiner and identity count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..case.audit import AuditEntry, key_parameters
from .chrome import Context, e, page
from .fragments import CASE_HREF

METHOD_HREF = "method.html"


def nav_html(here: str = "") -> str:
    """The report's navigation bar; `here` (an href) is the page it is on, shown unlinked."""
    links = (("index.html", "All identities"), (CASE_HREF, "The case in order"), (METHOD_HREF, "Method and audit log"))
    items = [e(text) if href == here else f'<a href="{e(href)}">{e(text)}</a>' for href, text in links]
    return "<nav>" + " \u00b7 ".join(items) + "</nav>"


def _value(v: Any) -> str:
    if v is None or v == "":
        return "\u2014"
    return f"{v:g}" if isinstance(v, float) else str(v)


def models_section(models: Mapping[str, Any]) -> str:
    """The detector and encoder of the run, and every weight file it loaded with its SHA-256."""
    enc = models.get("encoder") or {}
    head = (
        f"<p>Detector <strong>{e(models.get('detector') or '?')}</strong>; encoder "
        f"<strong>{e(enc.get('name') or '?')}</strong> (version {e(enc.get('version') or '?')}, "
        f"descriptor space {e(enc.get('space') or '?')}, {e(enc.get('dim') or '?')} dimensions).</p>"
    )
    weights = models.get("weights") or []
    if not weights:
        return (
            '<section id="models"><h2>Models</h2>'
            + (head if models else "")
            + '<p class="muted">The run did not record its weight files.</p></section>'
        )
    rows = "".join(
        f'<tr><td>{e(w.get("model"))}</td><td class="mono">{e(w.get("file"))}</td>'
        f"<td>{e(w.get('package'))} {e(w.get('package_version') or '')}</td>"
        f'<td class="mono">{e(w.get("sha256") or "unreadable")}</td></tr>'
        for w in weights
    )
    return (
        f'<section id="models"><h2>Models</h2>{head}'
        "<table><thead><tr><th>Model</th><th>Weight file</th><th>Package</th><th>SHA-256</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def thresholds_section(parameters: Mapping[str, Any]) -> str:
    """The settings and thresholds the current grouping rests on (distances on the encoder's scale)."""
    values = key_parameters(parameters)
    if not values:
        return '<section id="thresholds"><h2>Settings and thresholds</h2><p class="muted">Not recorded.</p></section>'
    rows = "".join(f'<tr><td class="mono">{e(k)}</td><td>{e(_value(v))}</td></tr>' for k, v in values.items())
    return (
        '<section id="thresholds"><h2>Settings and thresholds</h2>'
        "<p>In force for this report; every distance is on the encoder's own scale.</p>"
        f"<table><thead><tr><th>Setting</th><th>Value</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _changes(entry: AuditEntry, before: Mapping[str, Any] | None) -> str:
    """The entry's settings: all of them for the first, else only those that changed."""
    params = entry.parameters
    if before is None:
        shown = params
    else:
        shown = {k: v for k, v in params.items() if before.get(k) != v}
        shown.update({k: None for k in before if k not in params})
    if not shown:
        return '<span class="muted">unchanged</span>'
    return ", ".join(f"{e(k)} {e(_value(v))}" for k, v in shown.items())


def audit_section(log: Sequence[AuditEntry]) -> str:
    if not log:
        return (
            '<section id="audit"><h2>Audit log</h2><p class="muted">Nothing has been logged yet '
            "(a store made before the audit log keeps it from its next command on).</p></section>"
        )
    rows = []
    before: Mapping[str, Any] | None = None
    for entry in log:
        rows.append(
            f'<tr id="audit-{int(entry.id)}"><td>{int(entry.id)}</td><td class="mono">{e(entry.utc)}</td>'
            f"<td>{e(entry.action)}</td><td>{e(entry.detail)}</td><td>{e(entry.version)}</td>"
            f"<td>{e(entry.examiner or chr(0x2014))}</td><td>{e(_value(entry.identities))}</td>"
            f"<td>{_changes(entry, before)}</td>"
            f'<td class="mono" title="{e(entry.sha256)}">{e(entry.sha256[:12])}\u2026</td></tr>'
        )
        before = entry.parameters
    return (
        f'<section id="audit"><h2>Audit log ({len(log)})</h2>'
        "<p>Every run, regrouping, correction and undo, oldest first (times in UTC). Settings are listed in "
        "full for the first entry and then only where they changed. Each entry's SHA-256 covers its fields and "
        "the entry before it; <code>vidcluster verify OUT</code> checks the chain, the store and every file of "
        'this report against <a href="manifest.json">manifest.json</a>.</p>'
        "<table><thead><tr><th>#</th><th>When (UTC)</th><th>Action</th><th>What</th><th>Version</th>"
        "<th>Examiner</th><th>Identities after</th><th>Settings</th><th>SHA-256</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def method_page(run_info: Mapping[str, Any], log: Sequence[AuditEntry], ctx: Context) -> str:
    body = "\n".join(
        [
            nav_html(METHOD_HREF),
            "<header><h1>Method and audit log</h1></header>",
            models_section(run_info.get("models") or {}),
            thresholds_section(run_info.get("parameters") or {}),
            audit_section(log),
        ]
    )
    return page("Method and audit log \u2014 vidcluster report", body, ctx)

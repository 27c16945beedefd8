"""The case's audit log: every run, recluster, correction and undo, with when (UTC), vidcluster's
version, the settings that shape the result, the examiner and how many identities there were after.

Rows are only ever appended. Each carries the SHA-256 of its own fields and of the row before it,
so `chain_breaks` finds a row that was edited, removed or put in another order; the report's
manifest keeps a copy of the log, which `vidcluster verify` compares with the store's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from .store import Store

AUDIT_COLUMNS = (
    "id",
    "utc",
    "action",
    "detail",
    "correction",
    "version",
    "parameters",
    "examiner",
    "identities",
    "prev_sha256",
    "sha256",
)

# (config section, field) -> the name the log gives it: what decides which faces are found, how
# they are tracked and grouped, and which footage was looked at.
KEY_PARAMETERS: dict[tuple[str, str], str] = {
    ("faces", "encoder"): "encoder",
    ("faces", "detector"): "detector",
    ("sampler", "fps"): "fps",
    ("sampler", "since"): "since",
    ("sampler", "until"): "until",
    ("identities", "algorithm"): "algorithm",
    ("identities", "eps"): "eps",
    ("identities", "eps_mean"): "eps_mean",
    ("identities", "eps_average"): "eps_average",
    ("identities", "min_samples"): "min_samples",
    ("identities", "min_spread"): "min_spread",
    ("identities", "spread_ratio"): "spread_ratio",
    ("identities", "neighbours"): "neighbours",
    ("tracks", "max_distance"): "track_max_distance",
    ("tracks", "confirm_distance"): "track_confirm_distance",
    ("faces", "yunet_score"): "yunet_score",
    ("faces", "yunet_confirm_score"): "yunet_confirm_score",
    ("faces", "min_face_px"): "min_face_px",
}


@dataclass(frozen=True)
class AuditEntry:
    """One row of the log. `identities` is None where the count was not known when it was logged."""

    id: int
    utc: str
    action: str
    detail: str
    correction: int | None
    version: str
    parameters: dict[str, Any]
    examiner: str
    identities: int | None
    prev_sha256: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def recomputed(self) -> str:
        """The SHA-256 this row's fields and predecessor give (equal to `sha256` unless edited)."""
        return entry_sha256(self.as_dict())


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _parameters_text(parameters: Mapping[str, Any]) -> str:
    return json.dumps(dict(parameters), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def entry_sha256(row: Mapping[str, Any]) -> str:
    """SHA-256 of one row's fields (all but its own hash), its predecessor's hash among them.

    >>> len(entry_sha256({"id": 1, "parameters": {}, "prev_sha256": ""}))
    64
    """
    fields = [row.get(c) for c in AUDIT_COLUMNS[:-1] if c != "parameters"]
    fields.append(_parameters_text(row.get("parameters") or {}))
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def key_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings worth logging from a run's parameters (`Config.to_dict()`, plus `detector_used`
    and `encoder_used` where the run recorded them); a setting that is not there is left out.

    >>> key_parameters({"faces": {"detector": "auto", "encoder": "sface"}, "detector_used": "yunet"})
    {'encoder': 'sface', 'detector': 'yunet'}
    """
    out: dict[str, Any] = {}
    for (section, name), key in KEY_PARAMETERS.items():
        values = params.get(section)
        if isinstance(values, Mapping) and name in values:
            out[key] = values[name]
    if params.get("detector_used"):  # 'auto' resolved on the machine that ran it
        out["detector"] = params["detector_used"]
    if params.get("encoder_used"):
        out["encoder"] = params["encoder_used"]
    return out


def append(
    store: Store,
    *,
    action: str,
    detail: str,
    version: str,
    parameters: Mapping[str, Any],
    examiner: str = "",
    identities: int | None = None,
    correction: int | None = None,
    utc: str | None = None,
) -> AuditEntry:
    """Add one row at the end of the log (the caller holds OUT's lock: one writer) and return it."""
    last_id, last_sha = store.audit_head()
    row: dict[str, Any] = {
        "id": last_id + 1,
        "utc": utc or now_utc(),
        "action": str(action),
        "detail": str(detail),
        "correction": None if correction is None else int(correction),
        "version": str(version),
        "parameters": dict(parameters),
        "examiner": " ".join(str(examiner or "").split()),
        "identities": None if identities is None else int(identities),
        "prev_sha256": last_sha,
    }
    row["sha256"] = entry_sha256(row)
    store.add_audit({**row, "parameters": _parameters_text(row["parameters"])})
    return AuditEntry(**row)


def read_entries(conn: sqlite3.Connection) -> list[AuditEntry]:
    """Every row of the log, oldest first; none for a store older than the log. A row whose
    parameters are not JSON keeps them as {'unreadable': text} (its hash then tells it was changed)."""
    try:
        rows = conn.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # no such table
        return []
    out = []
    for r in rows:
        values = dict(zip(AUDIT_COLUMNS, tuple(r), strict=True))
        try:
            params = json.loads(values["parameters"])
        except (TypeError, ValueError):
            params = None
        values["parameters"] = params if isinstance(params, dict) else {"unreadable": str(values["parameters"])}
        out.append(AuditEntry(**values))
    return out


def entries(store: Store) -> list[AuditEntry]:
    return read_entries(store.conn)


def chain_breaks(log: list[AuditEntry]) -> list[str]:
    """One line per row whose hash does not follow from its fields and its predecessor (oldest first)."""
    out = []
    prev = ""
    for entry in log:
        if entry.prev_sha256 != prev:
            out.append(f"audit entry {entry.id}: does not follow the entry before it (an entry was removed or moved)")
        elif entry.recomputed != entry.sha256:
            out.append(f"audit entry {entry.id}: its fields do not match its SHA-256 (the entry was edited)")
        prev = entry.sha256
    return out

"""Machine-readable outputs: identities.json, faces.csv, sightings.csv, manifest.json (plain values in, text out).

Times are ISO 8601 UTC (`..._utc`, `start`, `end`, as before) plus the camera's local time with
its UTC offset (`..._local`) and the camera's IANA zone.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ..case.records import FileInfo
from ..version import __version__
from .data import Identity, ReportData, Sighting, iso_local, iso_utc

FACES_CSV_COLUMNS = (
    "face_id",
    "identity",
    "camera",
    "file",
    "pts_s",
    "time_utc",
    "x1",
    "y1",
    "x2",
    "y2",
    "track_id",
    "quality",
    "time_local",
    "timezone",
)
SIGHTINGS_CSV_COLUMNS = (
    "n",
    "identity",
    "label",
    "confirmed",
    "camera",
    "timezone",
    "start_local",
    "end_local",
    "start_utc",
    "end_utc",
    "duration_s",
    "n_faces",
    "track_id",
    "file",
    "start_offset_s",
    "end_offset_s",
    "time_source",
    "clip",
    "snapshot",
)

# module name -> distributions that may provide it, most likely first
_VERSIONED = {
    "dlib": ("dlib-bin", "dlib"),
    "av": ("av",),
    "numpy": ("numpy",),
    "sklearn": ("scikit-learn",),
    "cv2": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
    "yaml": ("PyYAML",),
}


def sighting_dict(s: Sighting, clip: str | None = None) -> dict[str, Any]:
    return {
        "track_id": s.track_id,
        "camera": s.camera,
        "file": s.file.name,
        "start": iso_utc(s.start_utc),
        "end": iso_utc(s.end_utc),
        "n_faces": len(s.faces),
        "start_offset_s": round(s.start_s, 3),
        "end_offset_s": round(s.end_s, 3),
        "time_source": s.file.start_source,
        "timezone": s.file.timezone,
        "start_local": iso_local(s.start_utc, s.file.zone),
        "end_local": iso_local(s.end_utc, s.file.zone),
        "clip": clip,
    }


def identity_dict(ident: Identity, clips: dict[int, str] | None = None) -> dict[str, Any]:
    clips = clips or {}
    first, last = ident.first_sighting, ident.last_sighting
    return {
        "id": ident.id,
        "label": ident.label,
        "notes": list(ident.notes) + [n.text for n in ident.texts],  # corrections in words, then the examiner's notes
        "rejected_sightings": list(ident.rejected),
        "n_faces": ident.n_faces,
        "n_sightings": ident.n_sightings,
        "cameras": ident.cameras,
        "first_seen": iso_utc(ident.first_seen),
        "last_seen": iso_utc(ident.last_seen),
        "times_reliable": ident.times_reliable,
        "cover_face": best.id if (best := ident.best_face) else None,  # the face shown first on its card and page
        "cover_chosen": ident.cover_chosen,  # chosen by hand (`vidcluster cover`), not the best-quality face
        "first_seen_local": iso_local(ident.first_seen, first.file.zone) if first else None,
        "last_seen_local": iso_local(ident.last_seen, last.file.zone) if last else None,
        "examiner_notes": [{"text": n.text, "created_utc": n.created_utc} for n in ident.texts],
        "confirmed": (
            None
            if ident.confirmed is None
            else {"by": ident.confirmed.text, "created_utc": ident.confirmed.created_utc}
        ),
        **cohesion_dict(ident),
        "sightings": [sighting_dict(s, clips.get(s.track_id)) for s in ident.sightings],
    }


def cohesion_dict(ident: Identity) -> dict[str, Any]:
    """`spread`, `nearest` ([{id, distance}], nearest first) and `doubt` ('close', 'loose' or None)."""
    c = ident.cohesion
    if c is None:
        return {"spread": None, "nearest": [], "doubt": None}
    return {"spread": c.spread, "nearest": [{"id": i, "distance": d} for i, d in c.nearest], "doubt": c.doubt or None}


def identities_json(data: ReportData, clips: dict[int, str] | None = None) -> str:
    """One object per identity (unmatched excluded), by sightings desc then id; `clips`: track id -> clip path."""
    return json.dumps([identity_dict(i, clips) for i in data.identities], indent=2, ensure_ascii=False) + "\n"


def sightings_csv(
    data: ReportData, clips: dict[int, str] | None = None, snapshots: dict[int, str] | None = None
) -> str:
    """The case in order: one row per sighting (unmatched included: identity -1), chronological."""
    clips, snapshots = clips or {}, snapshots or {}
    by_id = data.by_id
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SIGHTINGS_CSV_COLUMNS)
    for n, s in enumerate(data.chronological, 1):
        ident = by_id.get(s.identity)
        confirmed = ident.confirmed.created_utc if ident is not None and ident.confirmed else ""
        writer.writerow(
            [
                n,
                s.identity,
                (ident.label or "") if ident else "",
                confirmed,
                s.camera,
                s.file.timezone,
                iso_local(s.start_utc, s.file.zone) or "",
                iso_local(s.end_utc, s.file.zone) or "",
                iso_utc(s.start_utc) or "",
                iso_utc(s.end_utc) or "",
                f"{s.duration_s:.3f}",
                len(s.faces),
                s.track_id,
                s.file.name,
                f"{s.start_s:.3f}",
                f"{s.end_s:.3f}",
                s.file.start_source,
                clips.get(s.track_id, ""),
                snapshots.get(s.track_id, ""),
            ]
        )
    return buf.getvalue()


def faces_csv(data: ReportData) -> str:
    """One row per face, in face id order; identity -1 = unmatched, empty time_utc = unknown."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FACES_CSV_COLUMNS)
    for f in data.faces:
        x1, y1, x2, y2 = f.box_xyxy
        writer.writerow(
            [
                f.id,
                f.identity,
                f.file.camera,
                f.file.name,
                f"{f.pts_s:.3f}",
                iso_utc(f.time_utc) or "",
                x1,
                y1,
                x2,
                y2,
                f.track_id,
                f"{f.quality:.4f}",
                iso_local(f.time_utc, f.file.zone) or "",
                f.file.timezone,
            ]
        )
    return buf.getvalue()


def _dist_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _module_version(module: str) -> str | None:
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except Exception:  # a broken optional install must not stop the report
            return None
    value = getattr(mod, "__version__", None) or getattr(mod, "DLIB_VERSION", None)
    return str(value) if value is not None else None


def library_versions(vidcluster_version: str | None = None) -> dict[str, str | None]:
    """Versions of the libraries that shape the results (None when not installed)."""
    if vidcluster_version is None:
        vidcluster_version = __version__
    out: dict[str, str | None] = {"vidcluster": vidcluster_version, "python": platform.python_version()}
    for module, dists in _VERSIONED.items():
        out[module] = _dist_version(dists) or _module_version(module)
    return out


def file_dict(f: FileInfo, duplicate_of: FileInfo | None = None) -> dict[str, Any]:
    """One input as the manifest lists it: the full `path` for the record, and as the report shows it."""
    return {
        "path": f.path,
        "shown": f.name,
        "camera": f.camera,
        "kind": f.kind,
        "size_bytes": f.size_bytes,
        "sha256": f.sha256,
        "start_utc": iso_utc(f.start_utc),
        "start_source": f.start_source,
        "timezone": f.timezone,
        "start_reliable": f.time_reliable,
        "duration_s": f.duration_s,
        "status": f.status,
        "reason": f.reason,
        "timestamp_resets_s": list(f.resets_s),
        "timing": f.timing_note,
        "duplicate_of": duplicate_of.path if duplicate_of is not None else None,  # same SHA-256, analysed there
    }


def skipped_files(data: ReportData, run_info: dict[str, Any]) -> list[dict[str, str]]:
    """Files left out of the analysis with the reason: those the run reported and those the store marks.
    `path` is the full path, `shown` the path as the pages show it."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in run_info.get("skipped") or []:
        path = str(item.get("path", ""))
        if path not in seen:
            seen.add(path)
            shown = str(item.get("shown") or path)
            out.append({"path": path, "reason": str(item.get("reason", "")), "shown": shown})
    for f in data.files:
        if f.status == "skipped" and f.path not in seen:
            seen.add(f.path)
            out.append({"path": f.path, "reason": f.reason, "shown": f.name})
    return out


def left_out_folders(run_info: dict[str, Any]) -> list[dict[str, str]]:
    """Folders the walk did not enter (this run's OUT, other cases' output), with the reason."""
    return [
        {"path": str(i.get("path", "")), "reason": str(i.get("reason", "")), "shown": str(i.get("shown") or "")}
        for i in run_info.get("left_out") or []
    ]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_hashes(folder: Path) -> dict[str, str]:
    """{path relative to `folder` (posix): SHA-256} of every file under it, sorted by path."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def manifest(
    data: ReportData,
    run_info: dict[str, Any],
    *,
    generated_utc: str,
    versions: dict[str, str | None] | None = None,
    case: dict[str, str] | None = None,
    store_sha256: str | None = None,
    report_files: dict[str, str] | None = None,
    audit_log: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Provenance of the run: every input file with its hash and time source, settings, versions."""
    window = run_info.get("window") or {}
    originals = {f.id: o for f, o in data.duplicates if o is not None}
    return {
        "tool": "vidcluster",
        "version": run_info.get("version"),
        "started_utc": run_info.get("started_utc"),
        "finished_utc": run_info.get("finished_utc"),
        "report_generated_utc": generated_utc,
        "case": (case or {}).get("case") or None,
        "examiner": (case or {}).get("examiner") or None,
        "store_sha256": store_sha256,
        "input_args": [str(p) for p in run_info.get("inputs") or []],
        "window": {"since": window.get("since"), "until": window.get("until")},
        "inputs": [file_dict(f, originals.get(f.id)) for f in data.files],
        "skipped": skipped_files(data, run_info),
        "duplicates": [
            {"path": f.path, "shown": f.name, "sha256": f.sha256, "duplicate_of": o.path if o else None}
            for f, o in data.duplicates
        ],
        "left_out": left_out_folders(run_info),
        "counts": {
            "files": len(data.files),
            "duplicates": len(data.duplicates),
            "identities": len(data.identities),
            "sightings": len(data.sightings),
            "faces": len(data.faces),
            "unmatched_faces": len(data.unmatched_faces),
            "hidden_identities": len(data.hidden),
        },
        # identities hidden by hand (bystanders): not in the pages, identities.json, sightings.csv or faces.csv
        "hidden": [dataclasses.asdict(h) for h in data.hidden],
        "parameters": run_info.get("parameters") or {},
        "regrouped": run_info.get("regrouped") or [],
        "corrections": list(data.corrections),
        "corrections_undone": list(data.undone),
        "versions": versions if versions is not None else library_versions(run_info.get("version")),
        "models": run_info.get("models") or {},  # detector, encoder, every weight file loaded with its SHA-256
        "audit_log": audit_log or [],  # the store's audit log as it stood when the report was written
        "report_files_sha256": report_files or {},  # every other file of the report; manifest.json is written last
    }


def manifest_json(data: ReportData, run_info: dict[str, Any], *, generated_utc: str, **extra: Any) -> str:
    return (
        json.dumps(
            manifest(data, run_info, generated_utc=generated_utc, **extra), indent=2, ensure_ascii=False, default=str
        )
        + "\n"
    )

"""The investigator's report: HTML pages, montages, timelines, clips, identities.json, sightings.csv,
faces.csv, manifest.json.

`write_report` reads the store once (`load_report_data`), builds the whole report in a
temporary folder next to the target and then swaps it in, so a crash never leaves a half
report behind and a previous report is replaced completely (a killed write's temporary folder is
removed when OUT is next locked, `outdir.run_lock`). The swap also takes away the old report's
OUT-OF-DATE.txt (`outdir.mark_report_stale`).

Layout of OUT/report/ (every file name is derived from integer ids, never from camera or
file names): index.html, case.html, method.html, identity-<id>.html, montage-<id>.jpg, face-<face id>.jpg,
snap-<track id>.jpg, clips/clip-<track id>-<key>.mp4, identities.json, sightings.csv, faces.csv,
manifest.json. The manifest is written last: it carries the SHA-256 of the store and of every
other file of the report.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..case import audit
from ..case.outdir import REPORT_DIRNAME
from ..case.store import Store, is_disk_full
from ..config import ReportConfig
from ..errors import DamagedStoreError, DiskFullError, StoreError, VidclusterError
from .case_order import case_page
from .chrome import Context
from .clips import write_clips
from .data import ReportData, load_report_data
from .exports import faces_csv, folder_hashes, identities_json, manifest_json, sha256_file, sightings_csv
from .fragments import Assets, identity_href
from .images import as_jpeg, montage_jpeg
from .method import METHOD_HREF, method_page
from .pages import MAX_UNMATCHED_THUMBS, identity_page, index_page

__all__ = ["REPORT_DIRNAME", "ReportData", "ReportError", "build_report", "load_report_data", "write_report"]


class ReportError(VidclusterError):
    """The report folder cannot be written."""


def _thumb(store: Store, face_id: int) -> bytes | None:
    try:
        return store.thumb(face_id)
    except DamagedStoreError:
        raise  # a picture that is not what was stored is never shown
    except (StoreError, TypeError, sqlite3.DatabaseError):
        return None


def _snapshot(store: Store, track_id: int) -> bytes | None:
    try:
        return store.snapshot(track_id)
    except DamagedStoreError:
        raise
    except (StoreError, TypeError, sqlite3.DatabaseError):  # TypeError: a NULL snapshot
        return None


def _write_bytes(folder: Path, name: str, blob: bytes) -> str:
    (folder / name).write_bytes(blob)
    return name


def write_images(store: Store, data: ReportData, folder: Path, cfg: ReportConfig) -> Assets:
    """Face thumbnails, montages and snapshots the pages show; returns what was written."""
    assets = Assets(folder=folder)

    def face_file(face_id: int) -> None:
        if face_id not in assets.faces:
            jpeg = as_jpeg(_thumb(store, face_id))
            if jpeg is not None:
                assets.faces[face_id] = _write_bytes(folder, f"face-{int(face_id)}.jpg", jpeg)

    for ident in data.identities:
        faces = ident.faces
        if faces:
            face_file(faces[0].id)
            chosen = faces[: cfg.montage_faces]
            name = f"montage-{int(ident.id)}.jpg"
            assets.montages[ident.id] = _write_bytes(
                folder, name, montage_jpeg([_thumb(store, f.id) for f in chosen], cfg.thumb_px)
            )
            assets.montage_tiles[ident.id] = len(chosen)
        for s in ident.sightings:
            jpeg = as_jpeg(_snapshot(store, s.track_id))
            if jpeg is not None:
                assets.snapshots[s.track_id] = _write_bytes(folder, f"snap-{int(s.track_id)}.jpg", jpeg)
    for s in data.unmatched[:MAX_UNMATCHED_THUMBS]:
        if s.best_face is not None:
            face_file(s.best_face.id)
    return assets


def store_sha256(store: Store) -> str | None:
    """SHA-256 of the store file as it stands (WAL written back first); None for an in-memory store."""
    path = Path(store.path)
    if store.path == ":memory:" or not path.is_file():
        return None
    store.checkpoint()
    return sha256_file(path)


def build_report(
    store: Store,
    data: ReportData,
    run_info: dict[str, Any],
    cfg: ReportConfig,
    folder: Path,
    generated_utc: str,
    previous: Path | None = None,
    clip_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> None:
    """Write every report file into `folder` (which must exist and be empty), manifest.json last.

    `previous`: the report this one replaces; its clips are reused where they would come out the same.
    `workers`: processes cutting clips.
    """
    ctx = Context(generated_utc=generated_utc, case=cfg.case, examiner=cfg.examiner)
    assets = write_images(store, data, folder, cfg)
    if cfg.clips:
        assets.clips = write_clips(
            data.sightings,
            folder,
            context_s=cfg.clip_context_s,
            max_s=cfg.clip_max_s,
            previous=previous,
            workers=workers,
            progress=clip_progress,
        )
    folder.joinpath("identities.json").write_bytes(identities_json(data, assets.clips).encode("utf-8"))
    folder.joinpath("faces.csv").write_bytes(faces_csv(data).encode("utf-8"))
    folder.joinpath("sightings.csv").write_bytes(sightings_csv(data, assets.clips, assets.snapshots).encode("utf-8"))
    for ident in data.identities:
        html = identity_page(ident, data, assets, ctx)
        folder.joinpath(identity_href(ident.id)).write_bytes(html.encode("utf-8"))
    folder.joinpath("case.html").write_bytes(case_page(data, assets, ctx).encode("utf-8"))
    log = audit.entries(store)
    folder.joinpath(METHOD_HREF).write_bytes(method_page(run_info, log, ctx).encode("utf-8"))
    folder.joinpath("index.html").write_bytes(index_page(data, run_info, assets, ctx).encode("utf-8"))
    folder.joinpath("manifest.json").write_bytes(
        manifest_json(
            data,
            run_info,
            generated_utc=generated_utc,
            case={"case": cfg.case, "examiner": cfg.examiner},
            store_sha256=store_sha256(store),
            report_files=folder_hashes(folder),
            audit_log=[entry.as_dict() for entry in log],
        ).encode("utf-8")
    )


def _swap_in(new: Path, target: Path) -> None:
    """Replace `target` (a folder, if any) by `new` with two renames on the same file system."""
    old = None
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        old = Path(tempfile.mkdtemp(prefix=".report-old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def replaced_folder(target: Path, error: type[VidclusterError], what: str) -> Iterator[Path]:
    """Yield a new folder beside `target`; when the block succeeds it replaces `target` whole,
    when it fails it is removed and `target` stays as it was. OSError becomes `error`, or
    DiskFullError when the disk is full."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-new-", dir=target.parent))
    except OSError as exc:
        if is_disk_full(exc, target):
            raise DiskFullError(f"disk full writing {target}") from None
        raise error(f"{target.parent}: cannot create {what} ({exc.strerror or exc})") from None
    try:
        yield tmp
        _swap_in(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc, target):
            raise DiskFullError(f"disk full writing {target}") from None
        raise error(f"{target}: cannot write {what} ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_report(
    store: Store,
    out_dir: Path,
    run_info: dict,
    cfg: ReportConfig,
    clip_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> Path:
    """Write OUT/report/ from the store and return the path of its index.html.

    `run_info`: version, started_utc, finished_utc, parameters, inputs, window, skipped
    (see the Output contract in DESIGN.md). `clip_progress(done, total)` follows the clips being cut,
    by `workers` processes.
    Raises StoreError when the store cannot be read
    and ReportError when the folder cannot be written.
    """
    out_dir = Path(out_dir)
    data = load_report_data(store)
    generated_utc = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    target = out_dir / REPORT_DIRNAME
    with replaced_folder(target, ReportError, "the report") as tmp:
        build_report(
            store,
            data,
            run_info,
            cfg,
            tmp,
            generated_utc,
            previous=target if target.is_dir() else None,
            clip_progress=clip_progress,
            workers=workers,
        )
    return target / "index.html"

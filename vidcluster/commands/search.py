"""Search the analysed footage for the person in a probe photo (no decoding of footage).

The probe's largest face is encoded (with jitter, as for enrolment photos) and compared with
every sighting: its aggregated track descriptor and each of its encoded faces. A sighting's
distance is the smallest of those; the face that gave it says when in the sighting the
person is best seen. Sightings are ranked by distance; those within `max_distance` are
matches (by default the case's encoder's `search_max_distance`: SFace 1.21, dlib 0.6).

Writes OUT/search-<probe stem>/index.html (self-contained, escaped, same CSP as the report),
results.csv, probe.jpg and the snapshots the page shows.
"""

from __future__ import annotations

import csv
import io
import re
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from ..analysis.feed import face_crop, jpeg
from ..case.corrections import load_annotations
from ..case.encoder import case_encoder
from ..case.outdir import has_store, store_path
from ..case.records import StoredTrack, zone
from ..case.store import Store, store_errors
from ..catalog import ENCODERS, profile_of
from ..config import FacesConfig
from ..errors import SearchError
from ..models.base import Encoder, FaceModels
from ..models.encoders import DlibReferenceEncoder
from ..models.registry import make_encoder, portrait_models
from ..report import replaced_folder
from ..report.chrome import e, fmt_local, fmt_span, page
from ..report.data import iso_utc
from ..report.images import as_jpeg
from ..types import UNMATCHED_TEXT, utc_at

PROBE_JITTERS = 10  # re-encodings of the probe with small shifts, averaged (dlib's num_jitters)
CSV_COLUMNS = (
    "rank",
    "distance",
    "match",
    "track_id",
    "identity",
    "hidden",
    "label",
    "camera",
    "file",
    "start_offset_s",
    "end_offset_s",
    "best_offset_s",
    "start_utc",
    "end_utc",
    "best_time_utc",
    "best_face_id",
    "time_source",
)


@dataclass(frozen=True)
class Hit:
    """One sighting ranked against the probe; offsets in seconds into `file`."""

    rank: int
    distance: float
    match: bool
    track_id: int
    identity: int
    label: str | None
    camera: str
    file: str
    start_offset_s: float
    end_offset_s: float
    best_offset_s: float
    best_face_id: int | None
    file_start_utc: datetime | None
    time_source: str
    photo: bool = False  # the sighting is a still photo: no offsets to show
    timezone: str = "UTC"  # the camera's clock, for showing local times
    hidden: bool = False  # its identity is hidden from the report (a bystander): still searched, and said so

    def time_at(self, offset_s: float) -> datetime | None:
        return utc_at(self.file_start_utc, offset_s)


@dataclass(frozen=True)
class SearchResult:
    probe: Path
    folder: Path  # OUT/search-<stem>
    hits: tuple[Hit, ...]  # ranked, at most `top`
    n_sightings: int
    max_distance: float

    @property
    def matches(self) -> list[Hit]:
        return [h for h in self.hits if h.match]

    def lines(self) -> list[str]:
        """What the CLI prints: one line per match, then a summary line."""
        out = []
        for h in self.matches:
            t = h.time_at(h.best_offset_s)
            when = t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "no clock"
            who = f"identity {h.identity}" if h.identity >= 0 else UNMATCHED_TEXT
            if h.label:
                who += f" ({h.label})"
            if h.hidden:
                who += ", hidden from the report"
            out.append(
                f"{h.rank:>3}. {h.distance:.3f}  {h.camera}  {when}  {h.file} @ {h.best_offset_s:.1f} s  "
                f"sighting {h.track_id}, {who}"
            )
        nearest = f"; nearest {self.hits[0].distance:.3f}" if self.hits and not self.matches else ""
        out.append(
            f"{len(self.matches)} of {self.n_sightings} sightings within {self.max_distance:g}{nearest} "
            f"-> {self.folder / 'index.html'}"
        )
        return out


# -- probe --------------------------------------------------------------------------------
def read_probe(path: str | Path) -> np.ndarray:
    """The probe photo as RGB uint8 (H, W, 3); SearchError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise SearchError(f"{path}: no such photo")
    data = np.frombuffer(path.read_bytes(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SearchError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def probe_models(encoder: str, jitters: int = PROBE_JITTERS) -> list[FaceModels]:
    """The models that encode a probe photo for a case made with `encoder`, each a finer look than
    the last (a small face in a large photo needs upsampling). dlib's descriptor is taken by dlib
    itself with `jitters` (same vectors as the case's, a steadier probe)."""
    enc: Encoder = (
        DlibReferenceEncoder(jitters)
        if ENCODERS[encoder].space == ENCODERS["dlib"].space
        else make_encoder(FacesConfig(encoder=encoder, device="cpu"))
    )
    upsamples = (1,) if enc.landmarks == "detector" else (1, 2)  # YuNet's copy does not upsample
    return [portrait_models(enc, upsample) for upsample in upsamples]


def encode_probe(
    image: np.ndarray, encoder: str = "dlib", jitters: int = PROBE_JITTERS
) -> tuple[np.ndarray, np.ndarray, int]:
    """Largest face of the photo: (box (4,) int xyxy, descriptor (D,) float32, faces found)."""
    for models in probe_models(encoder, jitters):
        boxes, descriptors = models.encode_photo(image)
        if len(boxes):
            break
    else:
        raise SearchError("no face found in the probe photo")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    best = int(np.argmax(areas))
    return boxes[best], descriptors[best], len(boxes)


# -- ranking ------------------------------------------------------------------------------
def rank_sightings(store: Store, probe: np.ndarray) -> list[tuple[float, StoredTrack, tuple[int, float] | None]]:
    """(distance, sighting, (id, pts_s) of its nearest encoded face or None) per sighting, nearest first.

    A sighting's distance is the smallest over its track descriptor and its encoded faces.
    """
    tracks = {t.id: t for t in store.tracks()}
    dist = {t.id: float(np.linalg.norm(t.embedding - probe)) for t in tracks.values() if t.embedding is not None}
    nearest_face: dict[int, tuple[float, int, float]] = {}  # track -> (distance, face id, pts_s)
    for f in store.encoded_faces():
        d = float(np.linalg.norm(f.embedding - probe))
        if f.track_id not in nearest_face or d < nearest_face[f.track_id][0]:
            nearest_face[f.track_id] = (d, f.id, f.pts_s)
        dist[f.track_id] = min(d, dist.get(f.track_id, np.inf))
    out = []
    for tid, d in sorted(dist.items(), key=lambda kv: (kv[1], kv[0])):
        face = nearest_face.get(tid)
        out.append((d, tracks[tid], face[1:] if face else None))
    return out


def safe_stem(path: Path) -> str:
    """A folder-safe form of the photo's name.

    >>> safe_stem(Path("<img src=x>.jpg")), safe_stem(Path("obama.jpg"))
    ('img_src_x', 'obama')
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._-")
    return stem[:80] or "probe"


def search(out: str | Path, photo: str | Path, *, top: int = 20, max_distance: float | None = None) -> SearchResult:
    """Rank every sighting in OUT's store by its distance to the face in `photo`; write the page and CSV.
    `max_distance` (None: the case's encoder's profile) marks the matches."""
    out, photo = Path(out), Path(photo)
    if top < 1:
        raise SearchError("--top must be at least 1")
    if max_distance is not None and not 0 < max_distance <= 2:
        raise SearchError("--max-distance must be in (0, 2]")
    if not has_store(out):
        raise SearchError(f"{out}: no vidcluster store here (run `vidcluster run INPUT --out {out}` first)")
    image = read_probe(photo)
    with store_errors(store_path(out)), closing(Store.open(store_path(out))) as store:  # SQLite's errors: one line
        encoder = case_encoder(store)
        max_distance = profile_of(encoder).search_max_distance if max_distance is None else max_distance
        box, probe, _ = encode_probe(image, encoder)
        annotations = load_annotations(store)
        labels = annotations.labels
        files = {f.id: f for f in store.footage()}
        ranked = rank_sightings(store, probe)
        hits = []
        for k, (d, track, face) in enumerate(ranked[:top], 1):
            fid, best_pts = face or store.best_face(track.id) or (None, None)
            file = files[track.footage_id]
            hits.append(
                Hit(
                    rank=k,
                    distance=round(d, 4),
                    match=d <= max_distance,
                    track_id=track.id,
                    identity=track.identity,
                    label=labels.get(track.identity),
                    hidden=track.identity in annotations.hidden,
                    camera=file.camera,
                    file=file.name,  # as the report shows it (from the INPUT's folder)
                    start_offset_s=track.start_s,
                    end_offset_s=track.end_s,
                    best_offset_s=best_pts if best_pts is not None else track.start_s,
                    best_face_id=fid,
                    file_start_utc=file.start_utc,
                    time_source=file.start_source,
                    photo=file.is_photo,
                    timezone=file.timezone,
                )
            )
        folder = out / f"search-{safe_stem(photo)}"
        result = SearchResult(photo, folder, tuple(hits), len(ranked), max_distance)
        _write(store, result, image, box, out)
        return result


# -- output -------------------------------------------------------------------------------
def results_csv(result: SearchResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for h in result.hits:
        w.writerow(
            [
                h.rank,
                f"{h.distance:.4f}",
                int(h.match),
                h.track_id,
                h.identity,
                int(h.hidden),
                h.label or "",
                h.camera,
                h.file,
                f"{h.start_offset_s:.3f}",
                f"{h.end_offset_s:.3f}",
                f"{h.best_offset_s:.3f}",
                iso_utc(h.time_at(h.start_offset_s)) or "",
                iso_utc(h.time_at(h.end_offset_s)) or "",
                iso_utc(h.time_at(h.best_offset_s)) or "",
                "" if h.best_face_id is None else h.best_face_id,
                h.time_source,
            ]
        )
    return buf.getvalue()


def _probe_jpeg(image: np.ndarray, box: np.ndarray) -> bytes:
    return jpeg(face_crop(image, box, 160))


def hit_row(h: Hit, snapshots: dict[int, str], report_dir: Path | None) -> str:
    """One table row of the results page: distance, camera, time, file, snapshot, identity."""
    t0, t1, tb = h.time_at(h.start_offset_s), h.time_at(h.end_offset_s), h.time_at(h.best_offset_s)
    tz = zone(h.timezone)
    when = (
        f'{e(fmt_local(tb, tz, utc_too=True))}<br><span class="muted">sighting {e(fmt_span(t0, t1, tz))}</span>'
        if tb and t0 and t1
        else '<span class="approx">no clock</span>'
    )
    if tb and h.time_source not in ("config", "filename", "metadata"):
        when += f' <span class="approx" title="start time from {e(h.time_source)}">\u2248 approx.</span>'
    snap = snapshots.get(h.track_id)
    snap_html = (
        f'<a href="{e(snap)}"><img class="snap" src="{e(snap)}" alt="snapshot of sighting {h.track_id}" '
        'loading="lazy"></a>'
        if snap
        else '<span class="muted">none</span>'
    )
    if h.identity >= 0:
        name = f"Identity {h.identity}" + (f" \u2014 {e(h.label)}" if h.label else "")
        name += ' <span class="muted">(hidden from the report)</span>' if h.hidden else ""
        who = (
            f'<a href="../report/identity-{int(h.identity)}.html">{name}</a>'
            if report_dir and (report_dir / f"identity-{int(h.identity)}.html").exists()
            else name
        )
    else:
        who = '<span class="muted">unmatched</span>'
    where = (
        "a photo"
        if h.photo
        else f"at {h.best_offset_s:.1f} s (sighting {h.start_offset_s:.1f} \u2013 {h.end_offset_s:.1f} s)"
    )
    cls = "" if h.match else ' class="muted"'
    return (
        f"<tr{cls}><td>{h.rank}</td><td>{h.distance:.3f}{'' if h.match else ' (beyond)'}</td>"
        f'<td>{e(h.camera)}</td><td>{when}</td><td><span class="mono">{e(h.file)}</span><br>'
        f"{where}</td>"
        f'<td>{snap_html}</td><td>{who}<br><span class="muted">sighting {h.track_id}</span></td></tr>'
    )


def results_page(result: SearchResult, snapshots: dict[int, str], report_dir: Path | None) -> str:
    def row(h: Hit) -> str:
        return hit_row(h, snapshots, report_dir)

    matches = result.matches
    rest = [h for h in result.hits if not h.match]
    head = (
        "<table><thead><tr><th>#</th><th>Distance</th><th>Camera</th><th>When (best face; camera clock)</th>"
        "<th>File and offset</th><th>Snapshot</th><th>Identity</th></tr></thead><tbody>"
    )
    parts = [
        '<nav><a href="../report/index.html">\u2190 Report</a></nav>' if report_dir else "",
        "<header><h1>Search by photo</h1></header>",
        '<div class="cards"><div class="card"><img src="probe.jpg" alt="face in the probe photo">'
        f'<p>Probe: <span class="mono">{e(result.probe.name)}</span></p></div></div>',
        f"<p>{len(matches)} of {result.n_sightings} sightings lie within distance {result.max_distance:g} of the "
        "probe face (smaller is more alike; dlib's reference threshold is 0.6).</p>",
        "<h2>Matches</h2>",
        head + "".join(row(h) for h in matches) + "</tbody></table>"
        if matches
        else '<p class="muted">No sighting is within the distance limit.</p>',
    ]
    if rest:
        parts += ["<h2>Nearest beyond the limit</h2>", head + "".join(row(h) for h in rest) + "</tbody></table>"]
    parts.append(
        "<footer>A small distance is a lead, not an identification; check every sighting. "
        'Machine-readable: <a href="results.csv">results.csv</a>.</footer>'
    )
    return page(f"Search: {result.probe.name}", "\n".join(parts))


def _write(store: Store, result: SearchResult, image: np.ndarray, box: np.ndarray, out: Path) -> None:
    """Build the folder next to its target and swap it in whole."""
    with replaced_folder(result.folder, SearchError, "the search results") as tmp:
        (tmp / "probe.jpg").write_bytes(_probe_jpeg(image, box))
        snapshots: dict[int, str] = {}
        for h in result.hits:
            try:
                blob = as_jpeg(store.snapshot(h.track_id))
            except Exception:  # a missing or NULL snapshot only costs the picture
                blob = None
            if blob is not None:
                name = f"snap-{int(h.track_id)}.jpg"
                (tmp / name).write_bytes(blob)
                snapshots[h.track_id] = name
        report_dir = out / "report"
        (tmp / "results.csv").write_text(results_csv(result), encoding="utf-8")
        (tmp / "index.html").write_text(
            results_page(result, snapshots, report_dir if report_dir.is_dir() else None), encoding="utf-8"
        )

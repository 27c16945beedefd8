"""The store's SQLite schema: its tables, the columns added since schema 1, and `prepare`, which
creates what a store lacks and refuses a store of another schema version or one that lost a table
or column it had.

A store records its layout (every table and column) in `meta`; opened again, it must still have
all of them: a table that was dropped is never made again empty (that would lose the examiner's
corrections, or say "0 identities", without a word). Tables and columns this code adds that the
store never had are created and recorded. A store written before the layout was recorded must hold
the tables every such version wrote (`_TABLES_BEFORE_LAYOUT`).
"""

from __future__ import annotations

import json
import sqlite3

from ..errors import DamagedStoreError, StoreError

SCHEMA_VERSION = 1
LEGACY_SPACE = "dlib-resnet-v1"  # every descriptor of a store written before encoders were recorded

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS footage (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    start_utc TEXT,
    start_source TEXT NOT NULL,
    duration_s REAL,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | done | partial | skipped | duplicate
    reason TEXT NOT NULL DEFAULT '',
    params_key TEXT NOT NULL DEFAULT '',
    frames_decoded INTEGER NOT NULL DEFAULT 0,
    frames_sampled INTEGER NOT NULL DEFAULT 0,
    reached_s REAL
);
CREATE TABLE IF NOT EXISTS tracks (
    id INTEGER PRIMARY KEY,
    footage_id INTEGER NOT NULL REFERENCES footage(id) ON DELETE CASCADE,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    n_faces INTEGER NOT NULL,
    steer INTEGER NOT NULL,          -- 1 if the track takes part in clustering
    embedding BLOB,                  -- float32[D] (the encoder's size), mean of its best descriptors
    snapshot BLOB                    -- JPEG of its best frame with the face boxed
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    footage_id INTEGER NOT NULL REFERENCES footage(id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    pts_s REAL NOT NULL,
    x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL,
    score REAL NOT NULL,
    quality REAL NOT NULL,
    embedding BLOB,                  -- float32[D] or NULL when not encoded
    thumb BLOB NOT NULL              -- JPEG crop of the face
);
CREATE INDEX IF NOT EXISTS faces_track ON faces(track_id);
CREATE INDEX IF NOT EXISTS tracks_footage ON tracks(footage_id);
-- Finished segments of a long file not yet whole (see segments.py); a file's row replaces them.
CREATE TABLE IF NOT EXISTS segment_results (
    footage_id INTEGER NOT NULL REFERENCES footage(id) ON DELETE CASCADE,
    segment INTEGER NOT NULL,        -- 0-based position within the file
    segment_key TEXT NOT NULL,       -- settings, content and cut it was made with
    frames_decoded INTEGER NOT NULL,
    data BLOB NOT NULL,              -- segments.pack_result (npz, no pickle)
    PRIMARY KEY (footage_id, segment)
);
CREATE TABLE IF NOT EXISTS assignment (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    identity INTEGER NOT NULL        -- -1 = unmatched
);
"""


# The investigator's corrections (name, merge, reject). They refer to the tracks an identity
# covered when the correction was made, never to identity ids (those may change on regrouping).
# No foreign key on track_id: a correction outlives a re-analysis that renumbers tracks; such a
# correction then simply covers no track any more. `kind` and `role` hold the values of
# records.Kind and records.Role (note and confirm came later; their tracks are members).
_WORKFLOW_SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,              -- a records.Kind value: name | merge | reject | move | ...
    identities TEXT NOT NULL,        -- JSON list of the identity ids the user gave
    label TEXT,                      -- name: the label
    ref TEXT,                        -- reject, move, cover: 'face:<id>' or 'sighting:<track id>'
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS correction_tracks (
    correction_id INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL,
    role TEXT NOT NULL,              -- a records.Role value: member | rejected | other | ...
    PRIMARY KEY (correction_id, track_id, role)
);
"""


# Columns added after schema 1; an older store gains them (with their defaults) when opened.
_ADDED_COLUMNS = (
    ("footage", "timezone", "TEXT NOT NULL DEFAULT 'UTC'"),  # IANA zone of the camera's clock
    ("corrections", "undone_utc", "TEXT"),  # set by `vidcluster undo`: the correction no longer applies
    # the newest correction id when it was undone: which later corrections were made while it applied
    ("corrections", "undone_after", "INTEGER"),
    # the descriptor space (catalog.EncoderSpec.space) of each row's embedding; older stores hold dlib's
    ("tracks", "encoder", f"TEXT NOT NULL DEFAULT '{LEGACY_SPACE}'"),
    ("faces", "encoder", f"TEXT NOT NULL DEFAULT '{LEGACY_SPACE}'"),
    # the CRC-32 of a row's blobs (blobs.blob_crc); NULL in rows written before: those are checked by
    # what they hold only
    ("tracks", "embedding_crc", "INTEGER"),
    ("tracks", "snapshot_crc", "INTEGER"),
    ("faces", "embedding_crc", "INTEGER"),
    ("faces", "thumb_crc", "INTEGER"),
    # what the packet scan found of a file's times (store.timing_json): '' for plain timestamps
    ("footage", "timing", "TEXT NOT NULL DEFAULT ''"),
    # the path as the report shows it, from the folder holding the INPUT ('' = show the full path)
    ("footage", "shown_path", "TEXT NOT NULL DEFAULT ''"),
)


def _add_columns(conn: sqlite3.Connection) -> None:
    for table, column, decl in _ADDED_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")


# Every group of tracks that ever held an identity id, so that regrouping back to the same
# groups (trying a setting, then reverting it) gives back the same ids.
_MEMORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_memory (
    members TEXT PRIMARY KEY,        -- members_key() of the identity's track ids
    identity INTEGER NOT NULL,
    used INTEGER NOT NULL            -- grows with every assignment: the latest holder of a key wins
);
"""


# The audit log: one row per run, recluster, correction and undo, appended and never changed. Each
# row carries the SHA-256 of its own fields and of the row before it (`case.audit`), so an edited,
# removed or reordered row breaks the chain. Stores made before it gain the table (empty) on open.
_AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    utc TEXT NOT NULL,               -- when it was done, ISO 8601 UTC
    action TEXT NOT NULL,            -- run | recluster | a correction's kind | undo
    detail TEXT NOT NULL,            -- what was done, in words
    correction INTEGER,              -- the correction it records (its kind, or undo), else NULL
    version TEXT NOT NULL,           -- vidcluster's version
    parameters TEXT NOT NULL,        -- JSON: the settings that shape the result (audit.key_parameters)
    examiner TEXT NOT NULL,          -- '' when nobody was named
    identities INTEGER,              -- identities afterwards; NULL when not known (logged late)
    prev_sha256 TEXT NOT NULL,       -- the previous row's sha256 ('' for the first)
    sha256 TEXT NOT NULL             -- audit.entry_sha256 of this row
);
"""


# Every table of the store, in the order they are made; a table added to the schema goes here.
SCRIPTS = (_SCHEMA, _WORKFLOW_SCHEMA, _MEMORY_SCHEMA, _AUDIT_SCHEMA)
# The tables every store written before the layout was recorded holds (the code of that time made all
# of them on opening); a table added since (the audit log) is created in such a store instead.
_TABLES_BEFORE_LAYOUT = (
    "meta",
    "footage",
    "tracks",
    "faces",
    "segment_results",
    "assignment",
    "corrections",
    "correction_tracks",
    "identity_memory",
)
LAYOUT_KEY = "layout"  # meta: {table: [column, ...]} as the store has them
RESTORE_HINT = "restore vidcluster.db from a copy, or analyse the footage again into a new --out"

Layout = dict[str, set[str]]


def layout_of(conn: sqlite3.Connection) -> Layout:
    """{table: its columns} of every table in the database (SQLite's own tables left out)."""
    names = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    return {name: {r[1] for r in conn.execute(f"PRAGMA table_info({name})")} for name in names}


def schema_layout() -> Layout:
    """{table: columns} of a store made by this code (from SCRIPTS and the added columns)."""
    conn = sqlite3.connect(":memory:")
    try:
        for script in SCRIPTS:
            conn.executescript(script)
        _add_columns(conn)
        return layout_of(conn)
    finally:
        conn.close()


def _baseline(conn: sqlite3.Connection) -> Layout:
    """What an existing store must still have: the layout it recorded, or for a store older than that
    record the tables every earlier version made, with the columns they were made with."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (LAYOUT_KEY,)).fetchone()
    if row is not None:
        try:
            recorded = json.loads(row[0])
            return {str(t): {str(c) for c in cols} for t, cols in recorded.items()}
        except (ValueError, TypeError, AttributeError):
            raise DamagedStoreError("its record of its own tables cannot be read") from None
    added = {(t, c) for t, c, _ in _ADDED_COLUMNS}
    return {
        t: {c for c in cols if (t, c) not in added} for t, cols in schema_layout().items() if t in _TABLES_BEFORE_LAYOUT
    }


def missing_parts(have: Layout, need: Layout) -> list[str]:
    """'table X' or 'column X.Y' for every part of `need` that `have` lacks, in a stable order.

    >>> missing_parts({"a": {"x"}}, {"a": {"x", "y"}, "b": {"z"}})
    ['column a.y', 'table b']
    """
    out = []
    for table in sorted(need):
        if table not in have:
            out.append(f"table {table}")
        else:
            out += [f"column {table}.{c}" for c in sorted(need[table] - have[table])]
    return out


def _check_existing(conn: sqlite3.Connection, have: Layout) -> None:
    """Refuse an existing store of another schema version or one that lacks a part it had."""
    if "meta" not in have:
        raise DamagedStoreError("table meta is missing")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise DamagedStoreError("its schema version is missing")
    if str(row[0]) != str(SCHEMA_VERSION):
        raise StoreError(f"store schema {row[0]} is not supported (expected {SCHEMA_VERSION})")
    missing = missing_parts(have, _baseline(conn))
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DamagedStoreError(f"{', '.join(missing[:3])}{more} missing")


def prepare(conn: sqlite3.Connection, path: str) -> None:
    """Check an existing store at `path` (StoreError for another schema version, DamagedStoreError for
    a lost table or column), then create what this code has and the store lacks and record its layout
    and, for a new store, the schema version."""
    have = layout_of(conn)
    if have:  # an empty database is a new store
        try:
            _check_existing(conn, have)
        except DamagedStoreError as exc:
            raise DamagedStoreError(f"{path}: the store is damaged: {exc}; {RESTORE_HINT}") from None
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}") from None
    try:  # one transaction: a store cut short (a full disk, a kill) is no half-made store
        conn.executescript("BEGIN;\n" + "\n".join(SCRIPTS))
        _add_columns(conn)
        if not have:
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        layout = json.dumps({t: sorted(cols) for t, cols in sorted(layout_of(conn).items())})
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (LAYOUT_KEY,)).fetchone()
        if row is None or row[0] != layout:  # written only when it changed: opening leaves the file's bytes alone
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (LAYOUT_KEY, layout))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise

"""The store's SQLite schema: its tables, the columns added since schema 1, and `prepare`, which
creates what a store lacks and refuses a store of another schema version.
"""

from __future__ import annotations

import sqlite3

from ..errors import StoreError

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
    kind TEXT NOT NULL,              -- name | merge | reject
    identities TEXT NOT NULL,        -- JSON list of the identity ids the user gave
    label TEXT,                      -- name: the label
    ref TEXT,                        -- reject: 'face:<id>' or 'sighting:<track id>'
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS correction_tracks (
    correction_id INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL,
    role TEXT NOT NULL,              -- member (name, merge) | rejected | other (reject)
    PRIMARY KEY (correction_id, track_id, role)
);
"""


# Columns added after schema 1; an older store gains them (with their defaults) when opened.
_ADDED_COLUMNS = (
    ("footage", "timezone", "TEXT NOT NULL DEFAULT 'UTC'"),  # IANA zone of the camera's clock
    ("corrections", "undone_utc", "TEXT"),  # set by `vidcluster undo`: the correction no longer applies
    # the descriptor space (catalog.EncoderSpec.space) of each row's embedding; older stores hold dlib's
    ("tracks", "encoder", f"TEXT NOT NULL DEFAULT '{LEGACY_SPACE}'"),
    ("faces", "encoder", f"TEXT NOT NULL DEFAULT '{LEGACY_SPACE}'"),
    # the path as the report shows it, from the folder holding the INPUT ('' = show the full path)
    ("footage", "shown_path", "TEXT NOT NULL DEFAULT ''"),
)


def _add_columns(conn: sqlite3.Connection) -> None:
    for table, column, decl in _ADDED_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    conn.commit()


# Every group of tracks that ever held an identity id, so that regrouping back to the same
# groups (trying a setting, then reverting it) gives back the same ids.
_MEMORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_memory (
    members TEXT PRIMARY KEY,        -- members_key() of the identity's track ids
    identity INTEGER NOT NULL,
    used INTEGER NOT NULL            -- grows with every assignment: the latest holder of a key wins
);
"""


def prepare(conn: sqlite3.Connection, path: str) -> None:
    """Create the tables and columns the store at `path` lacks; record the schema version of a new
    store, and raise StoreError for one written with another."""
    conn.executescript(_SCHEMA)
    conn.executescript(_WORKFLOW_SCHEMA)
    conn.executescript(_MEMORY_SCHEMA)
    _add_columns(conn)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.commit()
    elif int(row[0]) != SCHEMA_VERSION:
        raise StoreError(f"{path}: store schema {row[0]} is not supported (expected {SCHEMA_VERSION})")

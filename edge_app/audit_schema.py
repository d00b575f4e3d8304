"""The audit log's file format: its one table, the marks that identify the file, the migrations.

Kept apart from the claim protocol (:mod:`edge_app.audit_log`) because it changes for different
reasons: a new column is a schema change (bump :data:`SCHEMA_VERSION`, add a migration), not a
change in how watchers share work.
"""

#: Bumped with every change to the tables below (adding a migration for older files); a file
#: with a newer version is refused rather than misread.
SCHEMA_VERSION = 3

#: ``PRAGMA application_id`` marking a file as a pneumoscan audit log ("PNMS").
APPLICATION_ID = 0x504E4D53

SCHEMA = (
    """
CREATE TABLE results (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'error')),
    path          TEXT    NOT NULL,   -- where the image was when it was scored
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER,
    probability   REAL,
    score         INTEGER,
    label         TEXT,
    uncertain     INTEGER,
    threshold     REAL,
    threshold_source TEXT,            -- 'model', 'site' or 'option' (--threshold)
    site_profile  TEXT,               -- the site profile's hash when threshold_source = 'site'
    latency_ms    REAL,
    error         TEXT,
    created_at    TEXT    NOT NULL,   -- UTC ISO-8601; when the result (or the claim) was written
    claimed_by    TEXT,               -- host:boot:pid:start:nonce of the watcher that scored it
    claimed_at    TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    app_version   TEXT,
    extra         TEXT,               -- JSON: the heatmap's path, DICOM header fields
    UNIQUE (sha256, model_version)
)""",
    "CREATE INDEX results_created_at ON results (created_at)",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

#: What turns a file of version ``n - 1`` into version ``n``.
MIGRATIONS = {
    2: ("ALTER TABLE results ADD COLUMN extra TEXT",),
    3: (
        "ALTER TABLE results ADD COLUMN threshold_source TEXT",
        "ALTER TABLE results ADD COLUMN site_profile TEXT",
    ),
}

#: Columns a reader gets for each row (:meth:`edge_app.audit_log.AuditLog.rows`), besides ``extra``.
ROW_COLUMNS = (
    "created_at",
    "path",
    "status",
    "label",
    "score",
    "probability",
    "uncertain",
    "threshold",
    "threshold_source",
    "site_profile",
    "model_version",
    "latency_ms",
    "error",
    "sha256",
    "size",
)

-- Money, bytes and hardware: the remote budget and egress ledgers, GPU and
-- host samples, learned model sizes.

-- Every reservation, commit and release against the remote budget. A
-- reservation row holds its worst case until it is settled.
CREATE TABLE budget_reservations (
    id            TEXT PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    settled_at    INTEGER,
    run_id        TEXT NOT NULL DEFAULT '',
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    day           TEXT NOT NULL,            -- YYYY-MM-DD in the configured zone
    month         TEXT NOT NULL,            -- YYYY-MM
    reserved_usd  REAL NOT NULL,
    reserved_bytes INTEGER NOT NULL,
    actual_usd    REAL,
    actual_bytes  INTEGER,
    status        TEXT NOT NULL             -- reserved|committed|released
) STRICT;
CREATE INDEX budget_day ON budget_reservations(day);
CREATE INDEX budget_month ON budget_reservations(month);
CREATE INDEX budget_run ON budget_reservations(run_id);

CREATE TABLE egress_ledger (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    run_id      TEXT NOT NULL DEFAULT '',
    destination TEXT NOT NULL,
    provider    TEXT NOT NULL DEFAULT '',
    model       TEXT NOT NULL DEFAULT '',
    purpose     TEXT NOT NULL,
    bytes_out   INTEGER NOT NULL,
    bytes_in    INTEGER NOT NULL DEFAULT 0,
    sha256      TEXT NOT NULL,
    redactions  TEXT NOT NULL DEFAULT '{}', -- counts per kind, never the values
    status      TEXT NOT NULL DEFAULT 'sent' -- sent|ok|failed
) STRICT;
CREATE INDEX egress_created ON egress_ledger(created_at);

CREATE TABLE deferred_runs (
    run_id      TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    enqueued_at INTEGER NOT NULL,
    deadline_at INTEGER NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE finetune_candidates (
    id           INTEGER PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    run_id       TEXT NOT NULL DEFAULT '',
    request      TEXT NOT NULL,             -- redacted
    local_plan   TEXT NOT NULL DEFAULT '',
    local_errors TEXT NOT NULL DEFAULT '[]',
    remote_plan  TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL
) STRICT;

-- resolution_s is 0 for raw samples and 60 or 3600 for downsampled rows.
CREATE TABLE gpu_samples (
    ts           INTEGER NOT NULL,
    resolution_s INTEGER NOT NULL DEFAULT 0,
    gpu_index    INTEGER NOT NULL,
    source       TEXT NOT NULL DEFAULT '',
    name         TEXT NOT NULL DEFAULT '',
    mem_total    INTEGER,
    mem_used     INTEGER,
    util_pct     REAL,
    temp_c       REAL,
    power_w      REAL,
    PRIMARY KEY (ts, resolution_s, gpu_index)
) STRICT;

CREATE TABLE host_samples (
    ts           INTEGER NOT NULL,
    resolution_s INTEGER NOT NULL DEFAULT 0,
    cpu_pct      REAL,
    mem_total    INTEGER,
    mem_used     INTEGER,
    load1        REAL,
    temp_c       REAL,
    PRIMARY KEY (ts, resolution_s)
) STRICT;

CREATE TABLE model_sizes (
    model      TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    size       INTEGER NOT NULL,
    size_vram  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (model, endpoint)
) STRICT;

CREATE TABLE doc_chunks (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL,
    mtime      INTEGER NOT NULL,
    chunk      INTEGER NOT NULL,
    content    TEXT NOT NULL,
    model      TEXT NOT NULL,
    embedding  BLOB NOT NULL,               -- little-endian float32s
    UNIQUE (path, chunk)
) STRICT;

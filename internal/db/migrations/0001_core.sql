-- Runs, their plans and steps, and everything a run does. Times are Unix
-- milliseconds (UTC); JSON columns hold JSON text.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    status          TEXT NOT NULL,          -- queued|planning|running|waiting_approval|deferred|review|done|partial|failed|canceled
    source          TEXT NOT NULL DEFAULT 'api', -- api|openai|cli|dashboard|demo
    request         TEXT NOT NULL,
    workflow        TEXT NOT NULL DEFAULT '',
    priority        INTEGER NOT NULL DEFAULT 0,
    planner         TEXT NOT NULL DEFAULT 'auto', -- what the request asked for: auto|local|remote
    route           TEXT NOT NULL DEFAULT '',     -- what the router chose: template|local|remote|scratchpad
    route_reasons   TEXT NOT NULL DEFAULT '[]',
    sensitive       INTEGER NOT NULL DEFAULT 0,
    async           INTEGER NOT NULL DEFAULT 0,
    degraded        INTEGER NOT NULL DEFAULT 0,
    answer          TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    error_count     INTEGER NOT NULL DEFAULT 0,
    deadline_at     INTEGER,
    cost_usd        REAL NOT NULL DEFAULT 0,
    energy_wh       REAL NOT NULL DEFAULT 0,
    remote_only_usd REAL NOT NULL DEFAULT 0,  -- what the run would have cost with the remote model doing every call
    est_cost_usd    REAL,
    est_duration_ms INTEGER,
    meta            TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX runs_status ON runs(status, created_at);
CREATE INDEX runs_created ON runs(created_at);

CREATE TABLE plans (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,            -- 1 for the first plan, +1 per replan
    created_at INTEGER NOT NULL,
    source     TEXT NOT NULL,               -- template|local|remote|replan_local|replan_remote|scratchpad
    model      TEXT NOT NULL DEFAULT '',
    plan       TEXT NOT NULL,               -- the plan JSON
    attempts   INTEGER NOT NULL DEFAULT 1,  -- planner calls it took (1 + repairs)
    errors     TEXT NOT NULL DEFAULT '[]',  -- validation errors met on the way
    PRIMARY KEY (run_id, version)
) STRICT;

CREATE TABLE steps (
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id      TEXT NOT NULL,
    plan_version INTEGER NOT NULL,
    kind         TEXT NOT NULL,             -- tool|task
    tool         TEXT NOT NULL DEFAULT '',
    tier         TEXT NOT NULL DEFAULT '',
    spec         TEXT NOT NULL,             -- the step as planned (JSON)
    depends_on   TEXT NOT NULL DEFAULT '[]',
    status       TEXT NOT NULL,             -- pending|running|waiting_approval|done|failed|skipped|review|canceled
    args         TEXT NOT NULL DEFAULT '{}',-- arguments as bound at run time
    output       TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    idempotent   INTEGER NOT NULL DEFAULT 1,
    started_at   INTEGER,
    finished_at  INTEGER,
    PRIMARY KEY (run_id, step_id)
) STRICT;
CREATE INDEX steps_status ON steps(status);

CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id     TEXT NOT NULL,
    n           INTEGER NOT NULL,
    rung        TEXT NOT NULL,              -- first|retry|regenerate|replan_local|replan_remote|review|partial
    status      TEXT NOT NULL,              -- running|ok|failed
    error_class TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE INDEX attempts_run ON attempts(run_id, step_id);

CREATE TABLE model_calls (
    id            INTEGER PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    run_id        TEXT REFERENCES runs(id) ON DELETE CASCADE,
    step_id       TEXT NOT NULL DEFAULT '',
    purpose       TEXT NOT NULL,            -- classify|plan|repair|execute|judge|summarize|synthesize|embed|replan
    model         TEXT NOT NULL,
    endpoint      TEXT NOT NULL DEFAULT '',
    location      TEXT NOT NULL,            -- local|remote
    tier          TEXT NOT NULL DEFAULT '',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    load_ms       REAL NOT NULL DEFAULT 0,
    prompt_ms     REAL NOT NULL DEFAULT 0,
    gen_ms        REAL NOT NULL DEFAULT 0,
    total_ms      REAL NOT NULL DEFAULT 0,
    cost_usd      REAL NOT NULL DEFAULT 0,
    energy_wh     REAL NOT NULL DEFAULT 0,
    done_reason   TEXT NOT NULL DEFAULT '',
    error         TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX model_calls_run ON model_calls(run_id);
CREATE INDEX model_calls_created ON model_calls(created_at);

-- A tool call row is written (status 'started') before the tool runs, so a
-- crash leaves evidence that a non-idempotent call may have happened.
CREATE TABLE tool_calls (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id     TEXT NOT NULL,
    tool        TEXT NOT NULL,
    args        TEXT NOT NULL DEFAULT '{}',
    args_hash   TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,              -- started|ok|failed
    output      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    exit_code   INTEGER,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE INDEX tool_calls_run ON tool_calls(run_id, step_id);

CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id      TEXT NOT NULL,
    tool         TEXT NOT NULL,
    args         TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL,             -- pending|approved|denied|expired
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    decided_by   TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    UNIQUE (run_id, step_id)
) STRICT;
CREATE INDEX approvals_status ON approvals(status);

-- Steps and runs a person must look at: a non-idempotent step interrupted by
-- a crash, a run the ladder could not finish.
CREATE TABLE review_items (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id     TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,
    resolution  TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,
    type    TEXT NOT NULL,
    run_id  TEXT NOT NULL DEFAULT '',
    data    TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX events_ts ON events(ts);
CREATE INDEX events_run ON events(run_id) WHERE run_id <> '';

-- A remote provider that billed more than a call's reserved worst case is
-- suspended until a person re-enables it; the row outlives restarts so a
-- dishonest provider cannot get a fresh allowance by a crash or a reboot.
-- One row per provider (kind and destination host); enabled rows are kept
-- as the record of who re-enabled it and when.
CREATE TABLE provider_suspensions (
    provider      TEXT NOT NULL,               -- openai|anthropic|ollama
    destination   TEXT NOT NULL,               -- host[:port] requests go to
    suspended     INTEGER NOT NULL,            -- 1 while suspended
    reason        TEXT NOT NULL DEFAULT '',
    run_id        TEXT NOT NULL DEFAULT '',    -- the run whose call was overbilled
    reserved_usd  REAL NOT NULL DEFAULT 0,     -- what that call reserved
    actual_usd    REAL NOT NULL DEFAULT 0,     -- what the provider billed
    suspended_at  INTEGER NOT NULL DEFAULT 0,  -- unix ms
    changed_at    INTEGER NOT NULL,            -- unix ms of the last change
    changed_by    TEXT NOT NULL DEFAULT '',    -- agentd | api | dashboard | cli
    PRIMARY KEY (provider, destination)
) STRICT;

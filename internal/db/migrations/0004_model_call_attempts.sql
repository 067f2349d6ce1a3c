-- Every attempt of a model call is its own row: a call the client retried
-- once has two, numbered by attempt. wall_ms is the attempt's time as agentd
-- saw it (total_ms is the server's own figure), so the time the server was
-- busy with a run can be told from the run's wall time.
ALTER TABLE model_calls ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE model_calls ADD COLUMN wall_ms REAL NOT NULL DEFAULT 0;

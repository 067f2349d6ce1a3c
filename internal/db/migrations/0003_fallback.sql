-- Remote fallback: budget alerts fire once per cap, window and threshold,
-- across restarts; fine-tuning candidates keep the (redacted) system prompt
-- they were planned under, so an export is a complete chat transcript.

CREATE TABLE budget_alerts (
    cap        TEXT NOT NULL,               -- day_usd|month_usd|day_bytes|month_bytes
    period     TEXT NOT NULL,               -- YYYY-MM-DD or YYYY-MM in the configured zone
    threshold  REAL NOT NULL,               -- fraction of the cap, like 0.8
    fired_at   INTEGER NOT NULL,
    PRIMARY KEY (cap, period, threshold)
) STRICT;

ALTER TABLE finetune_candidates ADD COLUMN system_prompt TEXT NOT NULL DEFAULT '';
ALTER TABLE finetune_candidates ADD COLUMN provider TEXT NOT NULL DEFAULT '';
ALTER TABLE finetune_candidates ADD COLUMN model TEXT NOT NULL DEFAULT '';

CREATE INDEX budget_status ON budget_reservations(status);
CREATE INDEX deferred_deadline ON deferred_runs(deadline_at);

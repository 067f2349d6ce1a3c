-- Plan templates agentd learned from its own successful runs (the plan
-- cache). The template itself (plan with {{param}} placeholders, the
-- wordings it matches, its parameters, examples and counters) is one JSON
-- document; the columns are what lists and the unique key need.
CREATE TABLE plan_templates (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,         -- hash of the parameterised plan
    state       TEXT NOT NULL,                -- active|pending|demoted|retired|disabled
    data        TEXT NOT NULL,                -- the template as JSON
    created_at  INTEGER NOT NULL,             -- unix ms
    updated_at  INTEGER NOT NULL              -- unix ms
) STRICT;

package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Attempt is one rung of the failure ladder for a step.
type Attempt struct {
	ID         int64      `json:"id"`
	StepID     string     `json:"step_id"`
	N          int        `json:"n"`
	Rung       string     `json:"rung"`
	Status     string     `json:"status"`
	ErrorClass string     `json:"error_class,omitempty"`
	Error      string     `json:"error,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// ToolCall is one tool invocation.
type ToolCall struct {
	ID         int64           `json:"id"`
	StepID     string          `json:"step_id"`
	Tool       string          `json:"tool"`
	Args       json.RawMessage `json:"args,omitempty"`
	Status     string          `json:"status"`
	Output     string          `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	ExitCode   *int            `json:"exit_code,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// Approval is a human decision, pending or made.
type Approval struct {
	RunID       string          `json:"run_id"`
	StepID      string          `json:"step_id"`
	Tool        string          `json:"tool"`
	Args        json.RawMessage `json:"args,omitempty"`
	Status      string          `json:"status"`
	RequestedAt time.Time       `json:"requested_at"`
	ExpiresAt   time.Time       `json:"expires_at"`
	DecidedAt   *time.Time      `json:"decided_at,omitempty"`
	DecidedBy   string          `json:"decided_by,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Request     string          `json:"request,omitempty"`
}

// RunAttempts lists a run's attempts in order.
func (s *Store) RunAttempts(ctx context.Context, runID string) ([]Attempt, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, step_id, n, rung, status, error_class, error, started_at, finished_at
		FROM attempts WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started int64
		var finished sql.NullInt64
		if err := rows.Scan(&a.ID, &a.StepID, &a.N, &a.Rung, &a.Status, &a.ErrorClass, &a.Error, &started, &finished); err != nil {
			return nil, err
		}
		a.StartedAt, a.FinishedAt = fromMS(started), nullMS(finished)
		out = append(out, a)
	}
	return out, rows.Err()
}

// RunToolCalls lists a run's tool calls in order.
func (s *Store) RunToolCalls(ctx context.Context, runID string) ([]ToolCall, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, step_id, tool, args, status, output, error, exit_code, started_at, finished_at
		FROM tool_calls WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ToolCall
	for rows.Next() {
		var c ToolCall
		var args string
		var code sql.NullInt64
		var started int64
		var finished sql.NullInt64
		if err := rows.Scan(&c.ID, &c.StepID, &c.Tool, &args, &c.Status, &c.Output, &c.Error, &code, &started, &finished); err != nil {
			return nil, err
		}
		c.Args = json.RawMessage(args)
		if code.Valid {
			v := int(code.Int64)
			c.ExitCode = &v
		}
		c.StartedAt, c.FinishedAt = fromMS(started), nullMS(finished)
		out = append(out, c)
	}
	return out, rows.Err()
}

const approvalCols = `a.run_id, a.step_id, a.tool, a.args, a.status, a.requested_at, a.expires_at, a.decided_at, a.decided_by, a.reason, r.request`

func scanApprovals(rows *sql.Rows) ([]Approval, error) {
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var a Approval
		var args string
		var req, exp int64
		var dec sql.NullInt64
		if err := rows.Scan(&a.RunID, &a.StepID, &a.Tool, &args, &a.Status, &req, &exp, &dec, &a.DecidedBy, &a.Reason, &a.Request); err != nil {
			return nil, err
		}
		a.Args, a.RequestedAt, a.ExpiresAt, a.DecidedAt = json.RawMessage(args), fromMS(req), fromMS(exp), nullMS(dec)
		out = append(out, a)
	}
	return out, rows.Err()
}

// RunApprovals lists a run's approvals.
func (s *Store) RunApprovals(ctx context.Context, runID string) ([]Approval, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+approvalCols+` FROM approvals a JOIN runs r ON r.id = a.run_id
		WHERE a.run_id = ? ORDER BY a.id`, runID)
	if err != nil {
		return nil, err
	}
	return scanApprovals(rows)
}

// PendingApprovals lists every approval waiting for a person, oldest first.
func (s *Store) PendingApprovals(ctx context.Context) ([]Approval, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+approvalCols+` FROM approvals a JOIN runs r ON r.id = a.run_id
		WHERE a.status = 'pending' ORDER BY a.requested_at, a.id`)
	if err != nil {
		return nil, err
	}
	return scanApprovals(rows)
}

// PlanInfo says where a run's latest plan came from.
func (s *Store) PlanInfo(ctx context.Context, runID string) (source, model string, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT source, model FROM plans WHERE run_id = ? ORDER BY version DESC LIMIT 1`, runID).Scan(&source, &model)
	if err == sql.ErrNoRows {
		return "", "", nil
	}
	return source, model, err
}

// PlanRecord is one version of a run's plan: when it was made, by what,
// and what its planner went through (calls and validation errors).
type PlanRecord struct {
	Version   int             `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	Source    string          `json:"source"` // template | local | remote | replan_local | replan_remote | scratchpad
	Model     string          `json:"model,omitempty"`
	Attempts  int             `json:"attempts"` // planner calls it took (1 + repairs)
	Errors    []string        `json:"errors"`   // validation errors met on the way
	Plan      json.RawMessage `json:"plan"`
}

// RunPlans lists every version of a run's plan, oldest first: the first
// one's time ends the run's planning, and a replan's steps can cite steps
// only an earlier version holds.
func (s *Store) RunPlans(ctx context.Context, runID string) ([]PlanRecord, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT version, created_at, source, model, attempts, errors, plan
		FROM plans WHERE run_id = ? ORDER BY version`, runID)
	if err != nil {
		return nil, fmt.Errorf("load plans of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []PlanRecord
	for rows.Next() {
		var p PlanRecord
		var created int64
		var errs, plan string
		if err := rows.Scan(&p.Version, &created, &p.Source, &p.Model, &p.Attempts, &errs, &plan); err != nil {
			return nil, fmt.Errorf("load plans of run %s: %w", runID, err)
		}
		p.CreatedAt, p.Plan = fromMS(created), json.RawMessage(plan)
		if err := json.Unmarshal([]byte(errs), &p.Errors); err != nil {
			return nil, fmt.Errorf("plan %s v%d: errors column: %w", runID, p.Version, err)
		}
		if p.Errors == nil {
			p.Errors = []string{}
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Egress lists ledger rows newest first, with ids below before (0: from
// the newest).
func (s *Store) Egress(ctx context.Context, before int64, limit int) ([]EgressRecord, error) {
	if before <= 0 {
		before = 1<<62 - 1
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, created_at, run_id, destination, provider, model, purpose, bytes_out, bytes_in, sha256, redactions, status
		FROM egress_ledger WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EgressRecord
	for rows.Next() {
		var e EgressRecord
		var created int64
		var red string
		if err := rows.Scan(&e.ID, &created, &e.RunID, &e.Destination, &e.Provider, &e.Model, &e.Purpose, &e.BytesOut, &e.BytesIn, &e.SHA256, &red, &e.Status); err != nil {
			return nil, err
		}
		e.CreatedAt = fromMS(created)
		_ = json.Unmarshal([]byte(red), &e.Redactions)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SavingsTotals sums measured cost and the remote-only counterfactual over
// finished runs since t.
func (s *Store) SavingsTotals(ctx context.Context, since time.Time) (runs int, cost, remoteOnly float64, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(cost_usd),0), coalesce(sum(remote_only_usd),0) FROM runs
		WHERE created_at >= ? AND status IN ('done','partial','failed','review')`, ms(since)).Scan(&runs, &cost, &remoteOnly)
	return
}

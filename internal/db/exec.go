package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentd/agentd/internal/run"
)

// The executor's queries: plans, steps, attempts, tool calls, approvals and
// review items. The executor declares the interface (exec.Store); these are
// its implementation, kept apart from the generic run queries.

// UnfinishedRuns lists runs the executor must pick up again after a start:
// every run that is neither terminal nor waiting in review, oldest first.
func (s *Store) UnfinishedRuns(ctx context.Context) ([]*run.Run, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+runColumns+` FROM runs
		WHERE status IN ('queued','planning','running','waiting_approval') ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list unfinished runs: %w", err)
	}
	defer rows.Close()
	var out []*run.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list unfinished runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SavePlan stores a plan version and writes the given steps (insert or
// replace by step id) in one transaction, so a run never has a plan without
// its steps.
func (s *Store) SavePlan(ctx context.Context, runID string, version int, source, model string, planJSON []byte,
	attempts int, errs []string, steps []*run.Step) error {
	errJSON, _ := json.Marshal(nonNil(errs))
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, insertPlanSQL, runID, version, ms(s.Now()), source, model, string(planJSON), attempts, string(errJSON)); err != nil {
			return fmt.Errorf("insert plan %s v%d: %w", runID, version, err)
		}
		for _, st := range steps {
			if err := s.upsertStep(ctx, tx, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// LatestPlan returns the newest plan of a run; version 0 means none.
func (s *Store) LatestPlan(ctx context.Context, runID string) (int, []byte, error) {
	var v int
	var p string
	err := s.read.QueryRowContext(ctx, `SELECT version, plan FROM plans WHERE run_id = ? ORDER BY version DESC LIMIT 1`, runID).Scan(&v, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load plan of run %s: %w", runID, err)
	}
	return v, []byte(p), nil
}

const stepColumns = `run_id, step_id, plan_version, kind, tool, tier, spec, depends_on, status, args, output, error,
	attempts, idempotent, started_at, finished_at`

// RunSteps loads a run's steps in the order they were written.
func (s *Store) RunSteps(ctx context.Context, runID string) ([]*run.Step, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+stepColumns+` FROM steps WHERE run_id = ? ORDER BY rowid`, runID)
	if err != nil {
		return nil, fmt.Errorf("load steps of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []*run.Step
	for rows.Next() {
		var st run.Step
		var spec, deps, status, args string
		var started, finished sql.NullInt64
		if err := rows.Scan(&st.RunID, &st.StepID, &st.PlanVersion, &st.Kind, &st.Tool, &st.Tier, &spec, &deps, &status,
			&args, &st.Output, &st.Error, &st.Attempts, &st.Idempotent, &started, &finished); err != nil {
			return nil, fmt.Errorf("load steps of run %s: %w", runID, err)
		}
		st.Spec, st.Args, st.Status = json.RawMessage(spec), json.RawMessage(args), run.StepStatus(status)
		_ = json.Unmarshal([]byte(deps), &st.DependsOn)
		st.StartedAt, st.FinishedAt = nullMS(started), nullMS(finished)
		out = append(out, &st)
	}
	return out, rows.Err()
}

// UpdateStep writes a step's state (insert or replace by step id).
func (s *Store) UpdateStep(ctx context.Context, st *run.Step) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return s.upsertStep(ctx, tx, st) })
}

const upsertStepSQL = `INSERT INTO steps(` + stepColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(run_id, step_id) DO UPDATE SET plan_version=excluded.plan_version, kind=excluded.kind,
		tool=excluded.tool, tier=excluded.tier, spec=excluded.spec, depends_on=excluded.depends_on,
		status=excluded.status, args=excluded.args, output=excluded.output, error=excluded.error,
		attempts=excluded.attempts, idempotent=excluded.idempotent, started_at=excluded.started_at,
		finished_at=excluded.finished_at`

func (s *Store) upsertStep(ctx context.Context, tx *sql.Tx, st *run.Step) error {
	deps, _ := json.Marshal(nonNil(st.DependsOn))
	spec, args := string(st.Spec), string(st.Args)
	if spec == "" {
		spec = "{}"
	}
	if args == "" {
		args = "{}"
	}
	_, err := s.txExec(ctx, tx, upsertStepSQL,
		st.RunID, st.StepID, st.PlanVersion, st.Kind, st.Tool, st.Tier, spec, string(deps), string(st.Status), args,
		st.Output, st.Error, st.Attempts, st.Idempotent, msPtr(st.StartedAt), msPtr(st.FinishedAt))
	if err != nil {
		return fmt.Errorf("write step %s/%s: %w", st.RunID, st.StepID, err)
	}
	return nil
}

const (
	insertPlanSQL = `INSERT INTO plans(run_id, version, created_at, source, model, plan, attempts, errors)
		VALUES (?,?,?,?,?,?,?,?)`
	insertAttemptSQL = `INSERT INTO attempts(run_id, step_id, n, rung, status, started_at) VALUES (?,?,?,?,'running',?)`
	finishAttemptSQL = `UPDATE attempts SET status=?, error_class=?, error=?, finished_at=? WHERE id=?`
	insertCallSQL    = `INSERT INTO tool_calls(run_id, step_id, tool, args, args_hash, status, started_at)
		VALUES (?,?,?,?,?,'started',?)`
	finishCallSQL = `UPDATE tool_calls SET status=?, output=?, error=?, exit_code=?, finished_at=? WHERE id=?`
)

// StartAttempt records that a rung of the failure ladder began for a step.
func (s *Store) StartAttempt(ctx context.Context, runID, stepID string, n int, rung string) (int64, error) {
	var id int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = s.insertAttempt(ctx, tx, runID, stepID, n, rung)
		return err
	})
	return id, err
}

// StartStepAttempt writes st as it stands (running, its attempt count) and
// opens its attempt st.Attempts on rung, in one transaction.
func (s *Store) StartStepAttempt(ctx context.Context, st *run.Step, rung string) (int64, error) {
	var id int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.upsertStep(ctx, tx, st); err != nil {
			return err
		}
		var err error
		id, err = s.insertAttempt(ctx, tx, st.RunID, st.StepID, st.Attempts, rung)
		return err
	})
	return id, err
}

func (s *Store) insertAttempt(ctx context.Context, tx *sql.Tx, runID, stepID string, n int, rung string) (int64, error) {
	res, err := s.txExec(ctx, tx, insertAttemptSQL, runID, stepID, n, rung, ms(s.Now()))
	if err != nil {
		return 0, fmt.Errorf("record attempt %d of %s/%s: %w", n, runID, stepID, err)
	}
	return res.LastInsertId()
}

// FinishAttempt closes an attempt: status ok or failed, with the error class
// the ladder acted on.
func (s *Store) FinishAttempt(ctx context.Context, id int64, status, class, msg string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return s.finishAttempt(ctx, tx, id, status, class, msg) })
}

// FinishStepAttempt closes an attempt and writes st as it stands, in one
// transaction: a step's result and the attempt that made it are committed
// together.
func (s *Store) FinishStepAttempt(ctx context.Context, id int64, st *run.Step, status, class, msg string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.finishAttempt(ctx, tx, id, status, class, msg); err != nil {
			return err
		}
		return s.upsertStep(ctx, tx, st)
	})
}

func (s *Store) finishAttempt(ctx context.Context, tx *sql.Tx, id int64, status, class, msg string) error {
	if _, err := s.txExec(ctx, tx, finishAttemptSQL, status, class, msg, ms(s.Now()), id); err != nil {
		return fmt.Errorf("finish attempt %d: %w", id, err)
	}
	return nil
}

// BeginToolCall writes the step's state and a 'started' tool call in one
// transaction, before the tool runs: after a crash the row is the evidence
// that a non-idempotent call may have happened.
func (s *Store) BeginToolCall(ctx context.Context, st *run.Step, tool string, args []byte, argsHash string) (int64, error) {
	var id int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.upsertStep(ctx, tx, st); err != nil {
			return err
		}
		var err error
		id, err = s.insertCall(ctx, tx, st, tool, args, argsHash)
		return err
	})
	return id, err
}

// BeginToolAttempt is BeginToolCall for a tool step, whose attempt is its
// one call: the step's state, its attempt st.Attempts on rung and the
// 'started' call, in one transaction, before the tool runs.
func (s *Store) BeginToolAttempt(ctx context.Context, st *run.Step, rung, tool string, args []byte, argsHash string) (attemptID, callID int64, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.upsertStep(ctx, tx, st); err != nil {
			return err
		}
		var err error
		if attemptID, err = s.insertAttempt(ctx, tx, st.RunID, st.StepID, st.Attempts, rung); err != nil {
			return err
		}
		callID, err = s.insertCall(ctx, tx, st, tool, args, argsHash)
		return err
	})
	return attemptID, callID, err
}

func (s *Store) insertCall(ctx context.Context, tx *sql.Tx, st *run.Step, tool string, args []byte, argsHash string) (int64, error) {
	a := string(args)
	if a == "" {
		a = "{}"
	}
	res, err := s.txExec(ctx, tx, insertCallSQL, st.RunID, st.StepID, tool, a, argsHash, ms(s.Now()))
	if err != nil {
		return 0, fmt.Errorf("record tool call %s of %s/%s: %w", tool, st.RunID, st.StepID, err)
	}
	return res.LastInsertId()
}

// FinishToolCall records how a tool call ended (ok or failed).
func (s *Store) FinishToolCall(ctx context.Context, id int64, status, output, errMsg string, exitCode *int) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return s.finishCall(ctx, tx, id, status, output, errMsg, exitCode) })
}

func (s *Store) finishCall(ctx context.Context, tx *sql.Tx, id int64, status, output, errMsg string, exitCode *int) error {
	if _, err := s.txExec(ctx, tx, finishCallSQL, status, output, errMsg, exitCode, ms(s.Now()), id); err != nil {
		return fmt.Errorf("finish tool call %d: %w", id, err)
	}
	return nil
}

// FinishToolAttempt ends a tool step's attempt and its one call together,
// and writes st as it stands, in one transaction: the call as it ended
// (status, output, callErr, exitCode), the attempt with the same status and
// the class and message the ladder gave it. A tool step's result, its call
// and its attempt are never committed one without the others.
func (s *Store) FinishToolAttempt(ctx context.Context, st *run.Step, attemptID, callID int64, status, class, msg,
	output, callErr string, exitCode *int) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.finishCall(ctx, tx, callID, status, output, callErr, exitCode); err != nil {
			return err
		}
		if err := s.finishAttempt(ctx, tx, attemptID, status, class, msg); err != nil {
			return err
		}
		return s.upsertStep(ctx, tx, st)
	})
}

// ToolCallInterrupted is the status of a tool call agentd stopped during
// (shutdown, crash or kill): it has a finish time, and whether it took
// effect is unknown.
const ToolCallInterrupted = "interrupted"

// InterruptToolCalls closes the run's tool calls still 'started' (all of
// them, or only id when id > 0) as interrupted, with why, and reports how
// many it closed.
func (s *Store) InterruptToolCalls(ctx context.Context, runID string, id int64, why string) (int64, error) {
	q := `UPDATE tool_calls SET status=?, error=?, finished_at=? WHERE run_id=? AND status='started'`
	args := []any{ToolCallInterrupted, why, ms(s.Now()), runID}
	if id > 0 {
		q += ` AND id=?`
		args = append(args, id)
	}
	res, err := s.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("close interrupted tool calls of %s: %w", runID, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// LastToolCall is the newest tool call of a step: its status
// (started|interrupted|ok|failed) and output; found is false when the step made none.
func (s *Store) LastToolCall(ctx context.Context, runID, stepID string) (status, output string, found bool, err error) {
	err = s.write.QueryRowContext(ctx, `SELECT status, output FROM tool_calls WHERE run_id = ? AND step_id = ?
		ORDER BY id DESC LIMIT 1`, runID, stepID).Scan(&status, &output)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("last tool call of %s/%s: %w", runID, stepID, err)
	}
	return status, output, true, nil
}

// RequestApproval records a pending approval for a step unless one exists
// (a resumed run keeps its first request and expiry), and returns the
// approval as it stands.
func (s *Store) RequestApproval(ctx context.Context, runID, stepID, tool string, args []byte, expiresAt time.Time) (status string, expires time.Time, by, reason string, err error) {
	a := string(args)
	if a == "" {
		a = "{}"
	}
	if _, err = s.Exec(ctx, `INSERT OR IGNORE INTO approvals(run_id, step_id, tool, args, status, requested_at, expires_at)
		VALUES (?,?,?,?,'pending',?,?)`, runID, stepID, tool, a, ms(s.Now()), ms(expiresAt)); err != nil {
		return "", time.Time{}, "", "", fmt.Errorf("request approval for %s/%s: %w", runID, stepID, err)
	}
	var exp int64
	err = s.write.QueryRowContext(ctx, `SELECT status, expires_at, decided_by, reason FROM approvals WHERE run_id = ? AND step_id = ?`,
		runID, stepID).Scan(&status, &exp, &by, &reason)
	if err != nil {
		return "", time.Time{}, "", "", fmt.Errorf("read approval for %s/%s: %w", runID, stepID, err)
	}
	return status, fromMS(exp), by, reason, nil
}

// DecideApproval moves a pending approval to status (approved, denied or
// expired); it reports false when no pending approval was there to decide.
func (s *Store) DecideApproval(ctx context.Context, runID, stepID, status, by, reason string) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE approvals SET status=?, decided_at=?, decided_by=?, reason=?
		WHERE run_id=? AND step_id=? AND status='pending'`, status, ms(s.Now()), by, reason, runID, stepID)
	if err != nil {
		return false, fmt.Errorf("decide approval for %s/%s: %w", runID, stepID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// AddReviewItem queues a step (or a whole run, stepID "") for a person.
func (s *Store) AddReviewItem(ctx context.Context, runID, stepID, reason string) error {
	if _, err := s.Exec(ctx, `INSERT INTO review_items(run_id, step_id, reason, created_at) VALUES (?,?,?,?)`,
		runID, stepID, reason, ms(s.Now())); err != nil {
		return fmt.Errorf("add review item for %s/%s: %w", runID, stepID, err)
	}
	return nil
}

// UpdateStepAndRun writes a step and its run in one transaction.
func (s *Store) UpdateStepAndRun(ctx context.Context, st *run.Step, r *run.Run) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.upsertStep(ctx, tx, st); err != nil {
			return err
		}
		return s.updateRun(ctx, tx, r)
	})
}

// ResolveReviewItem closes a step's open review item and writes the steps
// and run the decision changed, in one transaction. It reports false when
// the step had no open item.
func (s *Store) ResolveReviewItem(ctx context.Context, runID, stepID, resolution string, steps []*run.Step, r *run.Run) (bool, error) {
	found := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, `UPDATE review_items SET resolved_at = ?, resolution = ?
			WHERE run_id = ? AND step_id = ? AND resolved_at IS NULL`, ms(s.Now()), resolution, runID, stepID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		found = true
		for _, st := range steps {
			if err := s.upsertStep(ctx, tx, st); err != nil {
				return err
			}
		}
		return s.updateRun(ctx, tx, r)
	})
	return found, err
}

// ReviewItem is a step a person must look at.
type ReviewItem struct {
	ID         int64      `json:"id"`
	RunID      string     `json:"run_id"`
	StepID     string     `json:"step_id"`
	Tool       string     `json:"tool,omitempty"`
	Reason     string     `json:"reason"`
	CreatedAt  time.Time  `json:"created_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
	Request    string     `json:"request"`
}

// OpenReviewItems lists review items nobody has resolved, oldest first.
func (s *Store) OpenReviewItems(ctx context.Context) ([]ReviewItem, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT i.id, i.run_id, i.step_id, coalesce(st.tool, ''), i.reason, i.created_at, r.request
		FROM review_items i JOIN runs r ON r.id = i.run_id
		LEFT JOIN steps st ON st.run_id = i.run_id AND st.step_id = i.step_id
		WHERE i.resolved_at IS NULL ORDER BY i.created_at, i.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ReviewItem{}
	for rows.Next() {
		var it ReviewItem
		var created int64
		if err := rows.Scan(&it.ID, &it.RunID, &it.StepID, &it.Tool, &it.Reason, &created, &it.Request); err != nil {
			return nil, err
		}
		it.CreatedAt = fromMS(created)
		out = append(out, it)
	}
	return out, rows.Err()
}

package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Reservation statuses. A reservation counts at its worst case until it is
// committed (then its actual counts) or released (then nothing counts).
// Orphaned reservations were left open by a process that died: nobody knows
// whether their request was answered and billed, so they keep counting at
// their worst case for good.
const (
	ReservationReserved  = "reserved"
	ReservationCommitted = "committed"
	ReservationReleased  = "released"
	ReservationOrphaned  = "orphaned"
)

// BudgetReservation is one reservation against the remote budget.
type BudgetReservation struct {
	ID            string
	CreatedAt     time.Time
	RunID         string
	Provider      string
	Model         string
	Purpose       string
	Day           string // YYYY-MM-DD in the configured zone
	Month         string // YYYY-MM
	ReservedUSD   float64
	ReservedBytes int64
}

// BudgetSpend is what one window (a run, a day, a month) holds: settled
// spend and the worst case of reservations still open.
type BudgetSpend struct {
	SpentUSD      float64
	ReservedUSD   float64
	SpentBytes    int64
	ReservedBytes int64
}

// budgetSumSQL counts committed rows at their actuals, released rows at
// nothing, open reservations as reserved, and anything else (orphaned, or a
// status this binary does not know) as spent at its worst case.
const budgetSumSQL = `SELECT
	COALESCE(SUM(CASE status WHEN 'committed' THEN COALESCE(actual_usd, reserved_usd) WHEN 'released' THEN 0 WHEN 'reserved' THEN 0 ELSE reserved_usd END), 0),
	COALESCE(SUM(CASE status WHEN 'reserved' THEN reserved_usd ELSE 0 END), 0),
	COALESCE(SUM(CASE status WHEN 'committed' THEN COALESCE(actual_bytes, reserved_bytes) WHEN 'released' THEN 0 WHEN 'reserved' THEN 0 ELSE reserved_bytes END), 0),
	COALESCE(SUM(CASE status WHEN 'reserved' THEN reserved_bytes ELSE 0 END), 0)
	FROM budget_reservations WHERE `

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func budgetSpend(ctx context.Context, q queryRower, column, value string) (BudgetSpend, error) {
	var s BudgetSpend
	err := q.QueryRowContext(ctx, budgetSumSQL+column+` = ?`, value).
		Scan(&s.SpentUSD, &s.ReservedUSD, &s.SpentBytes, &s.ReservedBytes)
	if err != nil {
		return s, fmt.Errorf("sum budget for %s %s: %w", column, value, err)
	}
	return s, nil
}

// BudgetWindowsTx sums the run's, the day's and the month's spend inside tx,
// so a reservation decided on these sums cannot race another.
func BudgetWindowsTx(ctx context.Context, tx *sql.Tx, runID, day, month string) (run, d, m BudgetSpend, err error) {
	if run, err = budgetSpend(ctx, tx, "run_id", runID); err != nil {
		return
	}
	if d, err = budgetSpend(ctx, tx, "day", day); err != nil {
		return
	}
	m, err = budgetSpend(ctx, tx, "month", month)
	return
}

// BudgetWindows sums the same windows from the read pool, for headroom
// checks and alerts that decide nothing binding.
func (s *Store) BudgetWindows(ctx context.Context, runID, day, month string) (run, d, m BudgetSpend, err error) {
	if run, err = budgetSpend(ctx, s.read, "run_id", runID); err != nil {
		return
	}
	if d, err = budgetSpend(ctx, s.read, "day", day); err != nil {
		return
	}
	m, err = budgetSpend(ctx, s.read, "month", month)
	return
}

// InsertReservationTx records an open reservation inside tx.
func InsertReservationTx(ctx context.Context, tx *sql.Tx, r BudgetReservation) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO budget_reservations(id, created_at, run_id, provider, model, purpose,
		day, month, reserved_usd, reserved_bytes, status) VALUES (?,?,?,?,?,?,?,?,?,?,'reserved')`,
		r.ID, ms(r.CreatedAt), r.RunID, r.Provider, r.Model, r.Purpose, r.Day, r.Month, r.ReservedUSD, r.ReservedBytes)
	if err != nil {
		return fmt.Errorf("insert reservation %s: %w", r.ID, err)
	}
	return nil
}

// SettleReservation moves an open reservation to committed or released with
// its actuals. It reports false when the reservation was not open (already
// settled, orphaned, or unknown), so settling twice is harmless.
func (s *Store) SettleReservation(ctx context.Context, id, status string, usd float64, bytes int64) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE budget_reservations SET status = ?, settled_at = ?, actual_usd = ?,
		actual_bytes = ? WHERE id = ? AND status = 'reserved'`, status, ms(s.Now()), usd, bytes, id)
	if err != nil {
		return false, fmt.Errorf("settle reservation %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// OrphanReservations marks every reservation still open as orphaned. Call it
// once at start, before any reservation is made: open rows then belong to a
// process that died.
func (s *Store) OrphanReservations(ctx context.Context) (int64, error) {
	res, err := s.Exec(ctx, `UPDATE budget_reservations SET status = 'orphaned', settled_at = ?
		WHERE status = 'reserved'`, ms(s.Now()))
	if err != nil {
		return 0, fmt.Errorf("orphan open reservations: %w", err)
	}
	return res.RowsAffected()
}

// InsertBudgetAlert records that an alert fired; it reports false when this
// cap, period and threshold had already fired.
func (s *Store) InsertBudgetAlert(ctx context.Context, capName, period string, threshold float64) (bool, error) {
	res, err := s.Exec(ctx, `INSERT OR IGNORE INTO budget_alerts(cap, period, threshold, fired_at)
		VALUES (?,?,?,?)`, capName, period, threshold, ms(s.Now()))
	if err != nil {
		return false, fmt.Errorf("record budget alert %s %s: %w", capName, period, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// EgressRecord is one remote request in the egress ledger.
type EgressRecord struct {
	ID          int64          `json:"id"`
	CreatedAt   time.Time      `json:"time"`
	RunID       string         `json:"run_id"`
	Destination string         `json:"destination"`
	Provider    string         `json:"provider"`
	Model       string         `json:"model"`
	Purpose     string         `json:"purpose"`
	BytesOut    int64          `json:"bytes_out"`
	BytesIn     int64          `json:"bytes_in"`
	SHA256      string         `json:"sha256"`
	Redactions  map[string]int `json:"redactions"`
	Status      string         `json:"status"`
}

// InsertEgress writes a ledger row with status "sent"; call it before the
// bytes leave.
func (s *Store) InsertEgress(ctx context.Context, e *EgressRecord) (int64, error) {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.Now().UTC()
	}
	red, _ := json.Marshal(nonNilCounts(e.Redactions))
	if e.Status == "" {
		e.Status = "sent"
	}
	res, err := s.Exec(ctx, `INSERT INTO egress_ledger(created_at, run_id, destination, provider, model,
		purpose, bytes_out, bytes_in, sha256, redactions, status) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		ms(e.CreatedAt), e.RunID, e.Destination, e.Provider, e.Model, e.Purpose, e.BytesOut, e.BytesIn, e.SHA256,
		string(red), e.Status)
	if err != nil {
		return 0, fmt.Errorf("insert egress record: %w", err)
	}
	e.ID, err = res.LastInsertId()
	return e.ID, err
}

// FinishEgress records what came back and how the request ended.
func (s *Store) FinishEgress(ctx context.Context, id, bytesIn int64, status string) error {
	if _, err := s.Exec(ctx, `UPDATE egress_ledger SET bytes_in = ?, status = ? WHERE id = ?`,
		bytesIn, status, id); err != nil {
		return fmt.Errorf("finish egress record %d: %w", id, err)
	}
	return nil
}

// InterruptEgress marks rows still "sent" as "interrupted": their process
// died before it learned how they ended. Call it once at start.
func (s *Store) InterruptEgress(ctx context.Context) (int64, error) {
	res, err := s.Exec(ctx, `UPDATE egress_ledger SET status = 'interrupted' WHERE status = 'sent'`)
	if err != nil {
		return 0, fmt.Errorf("mark interrupted egress records: %w", err)
	}
	return res.RowsAffected()
}

// EachEgress calls fn for every ledger row created at or after since, oldest
// first.
func (s *Store) EachEgress(ctx context.Context, since time.Time, fn func(EgressRecord) error) error {
	rows, err := s.read.QueryContext(ctx, `SELECT id, created_at, run_id, destination, provider, model, purpose,
		bytes_out, bytes_in, sha256, redactions, status FROM egress_ledger WHERE created_at >= ? ORDER BY created_at, id`,
		ms(since))
	if err != nil {
		return fmt.Errorf("list egress records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e EgressRecord
		var created int64
		var red string
		if err := rows.Scan(&e.ID, &created, &e.RunID, &e.Destination, &e.Provider, &e.Model, &e.Purpose,
			&e.BytesOut, &e.BytesIn, &e.SHA256, &red, &e.Status); err != nil {
			return fmt.Errorf("read egress record: %w", err)
		}
		e.CreatedAt = fromMS(created)
		e.Redactions = map[string]int{}
		_ = json.Unmarshal([]byte(red), &e.Redactions)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

func nonNilCounts(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// DeferredRun is an asynchronous run waiting for the link.
type DeferredRun struct {
	RunID      string
	EnqueuedAt time.Time
	Deadline   time.Time
	Reason     string
}

// DeferredWithoutQueue lists runs recorded deferred that are not in the
// deferred queue: a crash came between the two writes. Each comes with its
// creation time, from which its wait is bounded.
func (s *Store) DeferredWithoutQueue(ctx context.Context) ([]DeferredRun, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, created_at FROM runs
		WHERE status = 'deferred' AND id NOT IN (SELECT run_id FROM deferred_runs) ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("list deferred runs without a queue entry: %w", err)
	}
	defer rows.Close()
	var out []DeferredRun
	for rows.Next() {
		var d DeferredRun
		var created int64
		if err := rows.Scan(&d.RunID, &created); err != nil {
			return nil, err
		}
		d.EnqueuedAt = time.UnixMilli(created).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// UpsertDeferred queues a run (the run must exist); queuing it again keeps
// its place and takes the new deadline and reason.
func (s *Store) UpsertDeferred(ctx context.Context, d DeferredRun) error {
	if d.EnqueuedAt.IsZero() {
		d.EnqueuedAt = s.Now().UTC()
	}
	_, err := s.Exec(ctx, `INSERT INTO deferred_runs(run_id, enqueued_at, deadline_at, reason)
		VALUES (?,?,?,?) ON CONFLICT(run_id) DO UPDATE SET deadline_at = excluded.deadline_at, reason = excluded.reason`,
		d.RunID, ms(d.EnqueuedAt), ms(d.Deadline), d.Reason)
	if err != nil {
		return fmt.Errorf("defer run %s: %w", d.RunID, err)
	}
	return nil
}

// ListDeferred returns the queue in deadline order (then arrival order).
func (s *Store) ListDeferred(ctx context.Context) ([]DeferredRun, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT run_id, enqueued_at, deadline_at, reason FROM deferred_runs
		ORDER BY deadline_at, enqueued_at, run_id`)
	if err != nil {
		return nil, fmt.Errorf("list deferred runs: %w", err)
	}
	defer rows.Close()
	var out []DeferredRun
	for rows.Next() {
		var d DeferredRun
		var enq, dl int64
		if err := rows.Scan(&d.RunID, &enq, &dl, &d.Reason); err != nil {
			return nil, fmt.Errorf("read deferred run: %w", err)
		}
		d.EnqueuedAt, d.Deadline = fromMS(enq), fromMS(dl)
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDeferred removes a run from the queue; it reports false when another
// drain took it first, so each run leaves the queue exactly once.
func (s *Store) ClaimDeferred(ctx context.Context, runID string) (bool, error) {
	res, err := s.Exec(ctx, `DELETE FROM deferred_runs WHERE run_id = ?`, runID)
	if err != nil {
		return false, fmt.Errorf("claim deferred run %s: %w", runID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// FinetuneCandidate is a planning request kept for training a local planner.
// Every text in it is redacted.
type FinetuneCandidate struct {
	ID           int64
	CreatedAt    time.Time
	RunID        string
	SystemPrompt string
	Request      string
	LocalPlan    string
	LocalErrors  []string
	RemotePlan   string
	Provider     string
	Model        string
	Reason       string
}

// InsertFinetune stores a candidate.
func (s *Store) InsertFinetune(ctx context.Context, c *FinetuneCandidate) (int64, error) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.Now().UTC()
	}
	errs, _ := json.Marshal(nonNil(c.LocalErrors))
	res, err := s.Exec(ctx, `INSERT INTO finetune_candidates(created_at, run_id, request, local_plan,
		local_errors, remote_plan, reason, system_prompt, provider, model) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		ms(c.CreatedAt), c.RunID, c.Request, c.LocalPlan, string(errs), c.RemotePlan, c.Reason, c.SystemPrompt,
		c.Provider, c.Model)
	if err != nil {
		return 0, fmt.Errorf("insert fine-tuning candidate for run %s: %w", c.RunID, err)
	}
	c.ID, err = res.LastInsertId()
	return c.ID, err
}

// EachFinetune calls fn for every candidate, oldest first.
func (s *Store) EachFinetune(ctx context.Context, fn func(FinetuneCandidate) error) error {
	rows, err := s.read.QueryContext(ctx, `SELECT id, created_at, run_id, system_prompt, request, local_plan,
		local_errors, remote_plan, provider, model, reason FROM finetune_candidates ORDER BY id`)
	if err != nil {
		return fmt.Errorf("list fine-tuning candidates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c FinetuneCandidate
		var created int64
		var errs string
		if err := rows.Scan(&c.ID, &created, &c.RunID, &c.SystemPrompt, &c.Request, &c.LocalPlan, &errs,
			&c.RemotePlan, &c.Provider, &c.Model, &c.Reason); err != nil {
			return fmt.Errorf("read fine-tuning candidate: %w", err)
		}
		c.CreatedAt = fromMS(created)
		_ = json.Unmarshal([]byte(errs), &c.LocalErrors)
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

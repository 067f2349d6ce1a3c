package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/run"
)

// ErrNotFound means no row matched.
var ErrNotFound = errors.New("not found")

const runColumns = `id, created_at, updated_at, started_at, finished_at, status, source, request, workflow,
	priority, planner, route, route_reasons, sensitive, async, degraded, answer, error, error_count,
	deadline_at, cost_usd, energy_wh, remote_only_usd, est_cost_usd, est_duration_ms, meta`

const (
	insertRunSQL = `INSERT INTO runs(` + runColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	updateRunSQL = `UPDATE runs SET updated_at=?, started_at=?, finished_at=?, status=?, workflow=?,
		route=?, route_reasons=?, degraded=?, sensitive=(sensitive OR ?), answer=?, error=?, error_count=?, deadline_at=?, cost_usd=?, energy_wh=?,
		remote_only_usd=?, est_cost_usd=?, est_duration_ms=?, meta=? WHERE id=?`
)

// InsertRun stores a new run. CreatedAt and UpdatedAt default to now, and
// StartedAt too for a run stored already under way (see stampStart).
func (s *Store) InsertRun(ctx context.Context, r *run.Run) error {
	now := s.Now().UTC()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	r.UpdatedAt = now
	stampStart(r, now)
	reasons, _ := json.Marshal(nonNil(r.RouteReasons))
	meta := string(r.Meta)
	if meta == "" {
		meta = "{}"
	}
	_, err := s.Exec(ctx, insertRunSQL,
		r.ID, ms(r.CreatedAt), ms(r.UpdatedAt), msPtr(r.StartedAt), msPtr(r.FinishedAt), string(r.Status), r.Source,
		r.Request, r.Workflow, r.Priority, r.Planner, r.Route, string(reasons), r.Sensitive, r.Async, r.Degraded,
		r.Answer, r.Error, r.ErrorCount, msPtr(r.DeadlineAt), r.CostUSD, r.EnergyWh, r.RemoteOnlyUSD,
		r.EstCostUSD, r.EstDurationMS, meta)
	if err != nil {
		return fmt.Errorf("insert run %s: %w", r.ID, err)
	}
	return nil
}

// UpdateRun writes every mutable field of r.
func (s *Store) UpdateRun(ctx context.Context, r *run.Run) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return s.updateRun(ctx, tx, r) })
}

// updateRun is UpdateRunTx with the statement prepared once.
func (s *Store) updateRun(ctx context.Context, tx *sql.Tx, r *run.Run) error {
	return updateRun(s.Now(), r, func(q string, args ...any) (sql.Result, error) {
		return s.txExec(ctx, tx, q, args...)
	})
}

// UpdateRunTx writes every mutable field of r inside tx, setting
// UpdatedAt to now and StartedAt as stampStart says.
func UpdateRunTx(ctx context.Context, tx *sql.Tx, now time.Time, r *run.Run) error {
	return updateRun(now, r, func(q string, args ...any) (sql.Result, error) {
		return tx.ExecContext(ctx, q, args...)
	})
}

func updateRun(now time.Time, r *run.Run, exec func(q string, args ...any) (sql.Result, error)) error {
	r.UpdatedAt = now.UTC()
	stampStart(r, r.UpdatedAt)
	reasons, _ := json.Marshal(nonNil(r.RouteReasons))
	meta := string(r.Meta)
	if meta == "" {
		meta = "{}"
	}
	// sensitive only ever turns on: planning may find a run sensitive (its
	// workflow is), nothing may make a sensitive run less so.
	res, err := exec(updateRunSQL,
		ms(r.UpdatedAt), msPtr(r.StartedAt), msPtr(r.FinishedAt), string(r.Status), r.Workflow, r.Route, string(reasons),
		r.Degraded, r.Sensitive, r.Answer, r.Error, r.ErrorCount, msPtr(r.DeadlineAt), r.CostUSD, r.EnergyWh, r.RemoteOnlyUSD,
		r.EstCostUSD, r.EstDurationMS, meta, r.ID)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update run %s: %w", r.ID, ErrNotFound)
	}
	return nil
}

// GetRun loads one run.
func (s *Store) GetRun(ctx context.Context, id string) (*run.Run, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return r, err
}

// RunFilter selects runs for listing. Runs come newest first; Before pages
// by creation time and id.
type RunFilter struct {
	Statuses []run.Status
	Workflow string
	Before   string // run id: list runs created before it
	Limit    int
}

// ListRuns lists runs newest first.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]*run.Run, error) {
	var where []string
	var args []any
	if len(f.Statuses) > 0 {
		ph := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			ph[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "status IN ("+strings.Join(ph, ",")+")")
	}
	if f.Workflow != "" {
		where = append(where, "workflow = ?")
		args = append(args, f.Workflow)
	}
	if f.Before != "" {
		where = append(where, "(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)")
		args = append(args, f.Before)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*run.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CountRunsByStatus counts runs per status.
func (s *Store) CountRunsByStatus(ctx context.Context) (map[run.Status]int, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT status, count(*) FROM runs GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[run.Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[run.Status(st)] = n
	}
	return out, rows.Err()
}

type scanner interface{ Scan(...any) error }

func scanRun(sc scanner) (*run.Run, error) {
	var r run.Run
	var created, updated int64
	var started, finished, deadline sql.NullInt64
	var status, reasons, meta string
	var estCost sql.NullFloat64
	var estDur sql.NullInt64
	err := sc.Scan(&r.ID, &created, &updated, &started, &finished, &status, &r.Source, &r.Request, &r.Workflow,
		&r.Priority, &r.Planner, &r.Route, &reasons, &r.Sensitive, &r.Async, &r.Degraded, &r.Answer, &r.Error,
		&r.ErrorCount, &deadline, &r.CostUSD, &r.EnergyWh, &r.RemoteOnlyUSD, &estCost, &estDur, &meta)
	if err != nil {
		return nil, err
	}
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(updated)
	r.StartedAt, r.FinishedAt, r.DeadlineAt = nullMS(started), nullMS(finished), nullMS(deadline)
	r.Status = run.Status(status)
	_ = json.Unmarshal([]byte(reasons), &r.RouteReasons)
	if estCost.Valid {
		r.EstCostUSD = &estCost.Float64
	}
	if estDur.Valid {
		r.EstDurationMS = &estDur.Int64
	}
	r.Meta = json.RawMessage(meta)
	r.Template = run.TemplateFromMeta(r.Meta)
	r.TraceID = run.TraceIDFromMeta(r.Meta)
	return &r, nil
}

// stampStart sets r.StartedAt to now the first time r is written in a
// status where work on it is under way. A run starts when its planning
// starts, so one whose planning fails still has a start and a duration;
// one canceled while queued never started. The store sets it, as it sets
// CreatedAt and UpdatedAt, so no status change can leave it out.
func stampStart(r *run.Run, now time.Time) {
	if r.StartedAt != nil {
		return
	}
	switch r.Status {
	case run.Planning, run.Running, run.WaitingApproval:
		r.StartedAt = &now
	}
}

func msPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

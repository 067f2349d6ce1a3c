package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ModelCall is one model call's usage record.
type ModelCall struct {
	CreatedAt    time.Time `json:"created_at"`
	RunID        string    `json:"run_id,omitempty"`
	StepID       string    `json:"step_id,omitempty"`
	Purpose      string    `json:"purpose"`
	Model        string    `json:"model"`
	Endpoint     string    `json:"endpoint,omitempty"`
	Location     string    `json:"location"` // local | remote
	Tier         string    `json:"tier,omitempty"`
	PromptTokens int       `json:"prompt_tokens"`
	OutputTokens int       `json:"output_tokens"`
	LoadMS       float64   `json:"load_ms"`
	PromptMS     float64   `json:"prompt_ms"`
	GenMS        float64   `json:"gen_ms"`
	TotalMS      float64   `json:"total_ms"`
	CostUSD      float64   `json:"cost_usd"`
	EnergyWh     float64   `json:"energy_wh"`
	DoneReason   string    `json:"done_reason,omitempty"`
	Error        string    `json:"error,omitempty"`
	// Attempt numbers the attempts of one call: the model client retries
	// busy and transient failures, and records each attempt.
	Attempt int     `json:"attempt"`
	WallMS  float64 `json:"wall_ms"` // the attempt's time as agentd saw it, from CreatedAt
}

const (
	runExistsSQL       = "SELECT count(*) FROM runs WHERE id = ?"
	insertModelCallSQL = `INSERT INTO model_calls(created_at, run_id, step_id, purpose, model, endpoint, location, tier,
			prompt_tokens, output_tokens, load_ms, prompt_ms, gen_ms, total_ms, cost_usd, energy_wh, done_reason, error, attempt, wall_ms)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
)

// InsertModelCall records a model call. The executor owns the run's cost
// totals; this is the per-call record they are audited against.
func (s *Store) InsertModelCall(ctx context.Context, c *ModelCall) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.Now()
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var runID any
		if c.RunID != "" {
			// A call may outlive its run's retention, or belong to no run
			// (prewarm, doctor): tie it to a run only when the run exists.
			var n int
			if err := s.txQueryRow(ctx, tx, runExistsSQL, c.RunID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				runID = c.RunID
			}
		}
		_, err := s.txExec(ctx, tx, insertModelCallSQL,
			ms(c.CreatedAt), runID, c.StepID, c.Purpose, c.Model, c.Endpoint, c.Location, c.Tier, c.PromptTokens, c.OutputTokens,
			c.LoadMS, c.PromptMS, c.GenMS, c.TotalMS, c.CostUSD, c.EnergyWh, c.DoneReason, c.Error, max(c.Attempt, 1), c.WallMS)
		if err != nil {
			return fmt.Errorf("insert model call: %w", err)
		}
		return nil
	})
}

// RunModelCalls lists a run's model calls, oldest first.
func (s *Store) RunModelCalls(ctx context.Context, runID string) ([]ModelCall, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT created_at, coalesce(run_id,''), step_id, purpose, model, endpoint, location, tier,
		prompt_tokens, output_tokens, load_ms, prompt_ms, gen_ms, total_ms, cost_usd, energy_wh, done_reason, error, attempt, wall_ms
		FROM model_calls WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ModelCall
	for rows.Next() {
		var c ModelCall
		var created int64
		if err := rows.Scan(&created, &c.RunID, &c.StepID, &c.Purpose, &c.Model, &c.Endpoint, &c.Location, &c.Tier,
			&c.PromptTokens, &c.OutputTokens, &c.LoadMS, &c.PromptMS, &c.GenMS, &c.TotalMS, &c.CostUSD, &c.EnergyWh,
			&c.DoneReason, &c.Error, &c.Attempt, &c.WallMS); err != nil {
			return nil, err
		}
		c.CreatedAt = fromMS(created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ModelCallTotals sums tokens and calls per model and location.
type ModelCallTotals struct {
	Model        string  `json:"model"`
	Location     string  `json:"location"`
	Calls        int     `json:"calls"`
	PromptTokens int64   `json:"prompt_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// ModelCallTotalsSince aggregates model calls since t.
func (s *Store) ModelCallTotalsSince(ctx context.Context, t time.Time) ([]ModelCallTotals, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT model, location, count(*), sum(prompt_tokens), sum(output_tokens), sum(cost_usd)
		FROM model_calls WHERE created_at >= ? GROUP BY model, location ORDER BY model`, ms(t))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ModelCallTotals
	for rows.Next() {
		var m ModelCallTotals
		if err := rows.Scan(&m.Model, &m.Location, &m.Calls, &m.PromptTokens, &m.OutputTokens, &m.CostUSD); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetRemoteOnlyCost records what a run would have cost on the remote model.
func (s *Store) SetRemoteOnlyCost(ctx context.Context, runID string, usd float64) error {
	_, err := s.Exec(ctx, "UPDATE runs SET remote_only_usd = ? WHERE id = ?", usd, runID)
	return err
}

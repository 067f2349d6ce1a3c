// Package run holds the records of a run's life that the store keeps and the
// executor, API and dashboard share.
package run

import (
	"encoding/json"
	"log/slog"
	"time"
)

// Status of a run.
type Status string

// Run statuses. Terminal ones are Done, Partial, Failed, Canceled.
const (
	Queued          Status = "queued"
	Planning        Status = "planning"
	Running         Status = "running"
	WaitingApproval Status = "waiting_approval"
	Deferred        Status = "deferred"
	Review          Status = "review"
	Done            Status = "done"
	Partial         Status = "partial"
	Failed          Status = "failed"
	Canceled        Status = "canceled"
)

// Terminal reports whether a run in this status will not change again by
// itself (Review waits for a person).
func (s Status) Terminal() bool {
	switch s {
	case Done, Partial, Failed, Canceled:
		return true
	}
	return false
}

// Run is one request's whole life.
type Run struct {
	ID            string          `json:"id"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	StartedAt     *time.Time      `json:"started_at,omitempty"`
	FinishedAt    *time.Time      `json:"finished_at,omitempty"`
	Status        Status          `json:"status"`
	Source        string          `json:"source"`
	Request       string          `json:"request"`
	Workflow      string          `json:"workflow,omitempty"`
	Priority      int             `json:"priority"`
	Planner       string          `json:"planner"`
	Route         string          `json:"route,omitempty"`
	RouteReasons  []string        `json:"route_reasons,omitempty"`
	Sensitive     bool            `json:"sensitive"`
	Async         bool            `json:"async"`
	Degraded      bool            `json:"degraded"`
	Answer        string          `json:"answer,omitempty"`
	Error         string          `json:"error,omitempty"`
	ErrorCount    int             `json:"error_count"`
	DeadlineAt    *time.Time      `json:"deadline_at,omitempty"`
	CostUSD       float64         `json:"cost_usd"`
	EnergyWh      float64         `json:"energy_wh"`
	RemoteOnlyUSD float64         `json:"remote_only_usd"`
	EstCostUSD    *float64        `json:"est_cost_usd,omitempty"`
	EstDurationMS *int64          `json:"est_duration_ms,omitempty"`
	Meta          json.RawMessage `json:"meta,omitempty"`
	// Template is the learned template that planned the run, if one did
	// (kept in Meta; filled when the run is read).
	Template *TemplateUse `json:"template,omitempty"`
	// TraceID is the OpenTelemetry trace of the run's latest execution
	// when traces are exported (kept in Meta; filled when the run is read).
	TraceID string `json:"trace_id,omitempty"`
}

// TemplateUse is what a run records of the learned template that planned
// it: which one, through which wording, and the values it took from the
// request.
type TemplateUse struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Phrasing string         `json:"phrasing,omitempty"`
	Params   map[string]any `json:"params,omitempty"`
	// Written are the values as the request wrote them ("2,340" for the
	// number 2340).
	Written map[string]string `json:"written,omitempty"`
	Learned bool              `json:"learned"`
	// AnswerPattern is true when the template's answer pattern wrote the
	// reply (no summarizer call).
	AnswerPattern bool `json:"answer_pattern,omitempty"`
}

// TraceIDFromMeta reads the trace id out of a run's meta document.
func TraceIDFromMeta(meta json.RawMessage) string {
	if len(meta) == 0 {
		return ""
	}
	var m struct {
		TraceID string `json:"trace_id"`
	}
	if json.Unmarshal(meta, &m) != nil {
		return ""
	}
	return m.TraceID
}

// TemplateFromMeta reads the template use out of a run's meta document.
func TemplateFromMeta(meta json.RawMessage) *TemplateUse {
	if len(meta) == 0 {
		return nil
	}
	var m struct {
		Template *TemplateUse `json:"template"`
	}
	if json.Unmarshal(meta, &m) != nil {
		return nil
	}
	return m.Template
}

// LogValue keeps log lines short and free of the request text.
func (r *Run) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", r.ID), slog.String("status", string(r.Status)),
		slog.String("workflow", r.Workflow), slog.String("route", r.Route))
}

// StepStatus of a step.
type StepStatus string

// Step statuses.
const (
	StepPending         StepStatus = "pending"
	StepRunning         StepStatus = "running"
	StepWaitingApproval StepStatus = "waiting_approval"
	StepDone            StepStatus = "done"
	StepFailed          StepStatus = "failed"
	StepSkipped         StepStatus = "skipped"
	StepReview          StepStatus = "review"
	StepCanceled        StepStatus = "canceled"
)

// Step is a step's state within a run.
type Step struct {
	RunID       string          `json:"run_id"`
	StepID      string          `json:"step_id"`
	PlanVersion int             `json:"plan_version"`
	Kind        string          `json:"kind"`
	Tool        string          `json:"tool,omitempty"`
	Tier        string          `json:"tier,omitempty"`
	Spec        json.RawMessage `json:"spec"`
	DependsOn   []string        `json:"depends_on"`
	Status      StepStatus      `json:"status"`
	Args        json.RawMessage `json:"args,omitempty"`
	Output      string          `json:"output,omitempty"`
	Error       string          `json:"error,omitempty"`
	Attempts    int             `json:"attempts"`
	Idempotent  bool            `json:"idempotent"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
}

// LogValue names the step without its data.
func (s *Step) LogValue() slog.Value {
	return slog.GroupValue(slog.String("run", s.RunID), slog.String("step", s.StepID),
		slog.String("status", string(s.Status)), slog.String("tool", s.Tool))
}

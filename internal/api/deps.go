package api

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// Sentinel errors the daemon's adapters return (wrapped or not) so the API
// can answer with the right status.
var (
	// ErrNotFound: no such run, step or approval.
	ErrNotFound = errors.New("not found")
	// ErrQueueFull: admission refused the run; the API answers 503 with
	// Retry-After.
	ErrQueueFull = errors.New("run queue is full")
	// ErrConflict: the request does not fit the current state (cancel a
	// finished run, decide an approval already decided).
	ErrConflict = errors.New("conflict with the current state")
	// ErrInvalid: the engine refused the request's content (unknown
	// workflow, bad parameters); its message is shown to the caller.
	ErrInvalid = errors.New("invalid request")
)

// SubmitRequest is a request to start a run.
type SubmitRequest struct {
	Request   string         `json:"request"`
	Workflow  string         `json:"workflow,omitempty"`
	Params    map[string]any `json:"params,omitempty"`
	Planner   string         `json:"planner"` // local | remote | auto
	Sensitive bool           `json:"sensitive"`
	Priority  int            `json:"priority"`
	Async     bool           `json:"async"`
	// Source is who asked: api | openai | dashboard.
	Source string `json:"source"`
}

// Engine runs requests; the executor's adapter implements it.
type Engine interface {
	// Submit admits a run and returns it (status queued or later). It returns
	// ErrQueueFull when admission is full and ErrInvalid for a request the
	// engine refuses.
	Submit(ctx context.Context, req SubmitRequest) (*run.Run, error)
	// Wait blocks until the run reaches a terminal status (run.Status.Terminal)
	// or Review, or ctx ends (then it returns ctx.Err()). ErrNotFound if no
	// such run.
	Wait(ctx context.Context, id string) (*run.Run, error)
	// Cancel cancels a run; by is "api" or "dashboard". ErrNotFound, or
	// ErrConflict when the run has already finished.
	Cancel(ctx context.Context, id, by string) error
	// Decide approves or denies a step waiting for approval. ErrNotFound when
	// there is no such pending approval, ErrConflict when it was already
	// decided or expired.
	Decide(ctx context.Context, runID, stepID string, approve bool, by, reason string) error
}

// RunQuery selects runs for GET /api/v1/runs: newest first, Before is a run
// id cursor (runs created before it), Limit 1..200.
type RunQuery struct {
	Statuses []run.Status
	Workflow string
	Before   string
	Limit    int
}

// RunReader reads what the store holds about runs.
type RunReader interface {
	// ListRuns lists runs newest first (db.Store.ListRuns fits).
	ListRuns(ctx context.Context, q RunQuery) ([]*run.Run, error)
	// RunDetail returns everything about one run, or ErrNotFound.
	RunDetail(ctx context.Context, id string) (*RunDetail, error)
	// PendingApprovals lists approvals with status "pending", oldest first.
	PendingApprovals(ctx context.Context) ([]Approval, error)
}

// RunDetail is GET /api/v1/runs/{id}: the run and every record of its life.
type RunDetail struct {
	Run *run.Run `json:"run"`
	// Plan is the latest plan's JSON (null before planning).
	Plan        json.RawMessage `json:"plan"`
	PlanVersion int             `json:"plan_version"`
	PlanSource  string          `json:"plan_source,omitempty"`
	PlanModel   string          `json:"plan_model,omitempty"`
	// Plans is every plan version, oldest first: when each was made, by
	// which planner and model, after how many attempts (the dashboard's
	// planning phase ends at version 1).
	Plans      []db.PlanRecord `json:"plans"`
	Steps      []*run.Step     `json:"steps"`
	Attempts   []Attempt       `json:"attempts"`
	ModelCalls []ModelCall     `json:"model_calls"`
	ToolCalls  []ToolCall      `json:"tool_calls"`
	Approvals  []Approval      `json:"approvals"`
}

// Attempt is the store's record, shown as is.
type Attempt = db.Attempt

// ModelCall is one model call (table model_calls).
type ModelCall struct {
	ID           int64     `json:"id"`
	CreatedAt    time.Time `json:"created_at"`
	StepID       string    `json:"step_id,omitempty"`
	Purpose      string    `json:"purpose"`
	Model        string    `json:"model"`
	Location     string    `json:"location"` // local | remote
	Tier         string    `json:"tier,omitempty"`
	PromptTokens int       `json:"prompt_tokens"`
	OutputTokens int       `json:"output_tokens"`
	TotalMS      float64   `json:"total_ms"`
	CostUSD      float64   `json:"cost_usd"`
	EnergyWh     float64   `json:"energy_wh"`
	Error        string    `json:"error,omitempty"`
	// Attempt numbers the attempts of one call (the model client retries
	// busy and transient failures); WallMS is the attempt's time as agentd
	// saw it; DoneReason is how the reply ended ("stop", "length").
	Attempt    int     `json:"attempt"`
	WallMS     float64 `json:"wall_ms"`
	DoneReason string  `json:"done_reason,omitempty"`
}

// ToolCall is the store's record, shown as is.
type ToolCall = db.ToolCall

// Approval is the store's record, shown as is.
type Approval = db.Approval

// Ledger reads the egress ledger.
type Ledger interface {
	// Egress returns up to limit records with id < before (before <= 0: the
	// newest), newest first.
	Egress(ctx context.Context, before int64, limit int) ([]db.EgressRecord, error)
}

// Budgets reports remote spend against the caps.
type Budgets interface {
	Budgets(ctx context.Context) (BudgetReport, error)
}

// BudgetReport is GET /api/v1/budgets.
type BudgetReport struct {
	Caps    []BudgetCap `json:"caps"`
	Alerts  []string    `json:"alerts"`
	Savings Savings     `json:"savings"`
}

// BudgetCap is one hard cap and where spend stands against it.
type BudgetCap struct {
	Name     string  `json:"name"`   // e.g. "usd_day", "bytes_month"
	Period   string  `json:"period"` // run | day | month
	Unit     string  `json:"unit"`   // usd | bytes
	Cap      float64 `json:"cap"`    // 0: no cap
	Spent    float64 `json:"spent"`
	Reserved float64 `json:"reserved"`
	// Alert is the highest alert level crossed: 0, 50, 80 or 100.
	Alert int `json:"alert"`
}

// Savings is measured: what runs would have cost on the remote model alone
// minus what they cost.
type Savings struct {
	Runs          int     `json:"runs"`
	CostUSD       float64 `json:"cost_usd"`
	RemoteOnlyUSD float64 `json:"remote_only_usd"`
	SavedUSD      float64 `json:"saved_usd"`
}

// Residency reports what Ollama holds and the link to the remote.
type Residency interface {
	LoadedModels(ctx context.Context) ([]LoadedModel, error)
}

// LoadedModel is one model resident in Ollama (/api/ps).
type LoadedModel struct {
	Name      string    `json:"name"`
	Endpoint  string    `json:"endpoint,omitempty"`
	SizeBytes int64     `json:"size_bytes"`
	VRAMBytes int64     `json:"vram_bytes"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// LinkReporter reports the remote link as the link monitor measures it.
type LinkReporter interface {
	Link(ctx context.Context) (LinkStatus, error)
}

// LinkStatus is GET /api/v1/link and the link.state event's data.
type LinkStatus struct {
	State          string    `json:"state"` // online | constrained | offline | disabled
	RTTMS          float64   `json:"rtt_ms"`
	ThroughputBPS  float64   `json:"throughput_bps"`
	LastMeasuredAt time.Time `json:"last_measured_at,omitzero"`
	Reason         string    `json:"reason,omitempty"`
}

// GPUHistory reads the GPU samples the store keeps (table gpu_samples), so
// the dashboard's charts start full instead of empty.
type GPUHistory interface {
	// GPUHistory returns samples taken at or after since, oldest first, at
	// most about maxPoints per GPU (downsampled rows are fine).
	GPUHistory(ctx context.Context, since time.Time, maxPoints int) ([]GPUPoint, error)
}

// GPUPoint is one GPU sample.
type GPUPoint struct {
	Time          time.Time `json:"time"`
	GPU           int       `json:"gpu"`
	Name          string    `json:"name,omitempty"`
	MemUsedBytes  *int64    `json:"memory_used_bytes"`
	MemTotalBytes *int64    `json:"memory_total_bytes"`
	UtilPercent   *float64  `json:"utilization_percent"`
}

// EventSource is the event bus; *events.Bus implements it.
type EventSource interface {
	Subscribe(ctx context.Context, since int64, buffer int, match func(events.Event) bool) ([]events.Event, *events.Subscription, error)
	LastSeq() int64
}

var _ EventSource = (*events.Bus)(nil)

// Deps are what RegisterRoutes serves. Engine, Runs and Events are
// required; a nil Ledger, Budgets, Residency or History answers 404 with a
// reason ("remote fallback is not configured"), a nil Link reports the
// link as disabled.
type Deps struct {
	Engine    Engine
	Runs      RunReader
	Events    EventSource
	Ledger    Ledger
	Budgets   Budgets
	Residency Residency
	Link      LinkReporter
	History   GPUHistory
	// Reviews is the human review queue; nil answers 404.
	Reviews Reviews
	// Templates is the plan cache's learned templates; nil (the cache is
	// off) answers 404 with the reason.
	Templates TemplateAdmin
	// Workflows lists the configured workflow names for /v1/models.
	Workflows func() []string
	// Metrics is served at /metrics when not nil.
	Metrics *Metrics
	// Dashboard overrides the embedded web.FS() (tests).
	Dashboard fs.FS
	// Now is a test seam.
	Now func() time.Time
	// WSBuffer bounds how far a WebSocket client may fall behind (events)
	// before it is dropped with a resume hint; default 512.
	WSBuffer int
	// WSPing is the keepalive interval; default 20s.
	WSPing time.Duration
	// SSEKeepalive is the interval of SSE comments while an OpenAI
	// streaming request waits for its run; default 5s.
	SSEKeepalive time.Duration
	// RetryAfter is the Retry-After header's seconds on a full queue;
	// default 5.
	RetryAfter int
}

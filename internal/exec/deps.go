package exec

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// Publisher receives every transition; *events.Bus implements it.
//
// It takes a typed payload only: the event's type is the payload's, so
// what a producer sends and what a consumer decodes are one Go type and a
// drift between them does not compile.
type Publisher interface {
	Emit(runID string, p events.Payload) events.Event
}

// Planner makes and remakes plans. The composition root adapts the local
// planner, the workflow templates and the router (with the remote fallback
// behind it) to this.
type Planner interface {
	Plan(ctx context.Context, req PlanRequest) (PlanResult, error)
	Replan(ctx context.Context, req ReplanRequest) (PlanResult, error)
}

// PlanRequest asks for a first plan.
type PlanRequest struct {
	RunID     string
	Request   string
	Workflow  string
	Params    map[string]any
	Planner   string // what the request asked for: auto | local | remote
	Sensitive bool
	// Async: the requester can wait, so a run that needs the remote
	// planner while it cannot be had may be deferred (see DeferError).
	Async bool
}

// DeferError is the planner's answer for an async run that needs the
// remote planner while the link is down or the budget window is spent: the
// run waits, as "deferred", until it can go (Deps.Defer).
type DeferError struct{ Reason string }

func (e *DeferError) Error() string { return "deferred: " + e.Reason }

// ReplanRequest asks for a new plan of the steps still to do, given what
// completed and what failed.
type ReplanRequest struct {
	RunID     string
	Request   string
	Workflow  string
	Params    map[string]any
	Sensitive bool
	// Plan is the plan that failed.
	Plan *plan.Plan
	// Completed holds the output of every done step by id; a new plan may
	// depend on these ids and they are not run again.
	Completed map[string]string
	Failed    []FailedStep
	// Attempt counts replans of this run, from 1.
	Attempt int
	// Remote asks for the remote planner. The adapter decides whether policy,
	// budget and link allow it, and returns an error when they do not.
	Remote bool
}

// FailedStep is a step the ladder gave up on, and why.
type FailedStep struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// PlanResult is a plan and how it was made.
type PlanResult struct {
	Plan     *plan.Plan
	Source   string // template | local | remote | replan_local | replan_remote
	Route    string
	Reasons  []string
	Model    string
	Attempts int
	Errors   []string // validation errors met on the way
	Degraded bool
	// Sensitive is true when planning found the run sensitive (its
	// workflow is): the run is recorded so, and nothing about it leaves
	// the machine on any later path. It can only narrow.
	Sensitive bool
	// Mode "scratchpad" hands the run to the scratchpad loop instead.
	Mode string
	// Workflow is the workflow the router matched ("" for none), recorded
	// on a run that did not name one.
	Workflow string
	// CostUSD of the planning calls, added to the run.
	CostUSD float64
	// Template is the learned template that made the plan, if one did.
	Template *run.TemplateUse
}

// Ended is how a run ended, for Deps.OnEnded: the run, the plan it ended
// on (its version and who made it) and its done tool steps' results.
type Ended struct {
	Run         *run.Run
	Plan        *plan.Plan
	PlanVersion int
	PlanSource  string
	ToolOutputs map[string]string
}

// Tools looks tools up; the tool registry implements it.
type Tools interface {
	Lookup(name string) (Tool, bool)
	// Names lists every tool, for the scratchpad loop.
	Names() []string
}

// Tool is one callable tool.
type Tool interface {
	Name() string
	Description() string
	// Schema is the JSON Schema of the arguments.
	Schema() json.RawMessage
	// Idempotent tools may be run again after a crash interrupted them.
	Idempotent() bool
	RequiresApproval() bool
	// Acquire waits for the tool's own concurrency limit.
	Acquire(ctx context.Context) (release func(), err error)
	// Call runs the tool. ctx ends when the run is cancelled or the step
	// times out: child processes must be killed then.
	Call(ctx context.Context, args map[string]any) (ToolResult, error)
}

// ToolResult is what a tool returned.
type ToolResult struct {
	Output   string
	ExitCode *int
}

// ModelLimiter bounds how many calls a model serves at once; the VRAM
// residency manager implements it. NewModelLimiter is the config-only one.
type ModelLimiter interface {
	Acquire(ctx context.Context, model string) (release func(), err error)
}

// Models names the model for a role: plan.TierFast, plan.TierStandard,
// RoleSummarizer, RoleScratchpad.
type Models interface {
	Model(role string) string
}

// Model roles beyond the executor tiers.
const (
	RoleSummarizer = "summarizer"
	RoleScratchpad = "scratchpad"
)

// ChatModel is a chat call to a local model.
type ChatModel interface {
	Chat(ctx context.Context, req ChatRequest) (ChatResponse, error)
}

// ChatRequest is one model call.
type ChatRequest struct {
	Model    string
	Messages []Message
	Tools    []ToolSpec
	// Format is a JSON Schema the output must satisfy (empty: free text).
	Format     json.RawMessage
	NumPredict int
	// Regeneration counts how often this reply has been asked for again
	// after bad output; the model client varies its sampling by it.
	Regeneration int
	RunID        string
	StepID       string
	Purpose      string // execute | summarize | scratchpad
	Tier         string
}

// Message of a chat.
type Message struct {
	Role      string     `json:"role"` // system | user | assistant | tool
	Content   string     `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	ToolName  string     `json:"tool_name,omitempty"`
}

// ToolCall is a model's request to call a tool.
type ToolCall struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

// ToolSpec offers a tool to a model.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ChatResponse is a finished model call.
type ChatResponse struct {
	Content        string
	ToolCalls      []ToolCall
	DoneReason     string
	PromptTokens   int
	OutputTokens   int
	LoadDuration   time.Duration
	PromptDuration time.Duration
	EvalDuration   time.Duration
	TotalDuration  time.Duration
	Where          string // local | remote
	CostUSD        float64
	EnergyWh       float64
}

// Deps are the executor's collaborators.
type Deps struct {
	Store   Store
	Planner Planner
	Chat    ChatModel
	Models  Models
	Tools   Tools
	// Limiter defaults to no per-model limit.
	Limiter ModelLimiter
	// Events defaults to dropping events.
	Events Publisher
	Log    *slog.Logger
	// Tracer makes the run's spans (the run, its planning, its tools; the
	// model client makes the model calls' under them); nil is a no-op.
	Tracer trace.Tracer
	// TraceContent puts request, answer and tool text on spans
	// (telemetry.include_content); off, no text goes on a span.
	TraceContent bool

	// SupportsTools reports whether a model takes native tool calls; nil
	// means every model does.
	SupportsTools func(ctx context.Context, model string) bool
	// IsNoToolSupport recognises the model's refusal of tools; the step
	// then switches to schema-constrained tool selection.
	IsNoToolSupport func(error) bool
	// IsBadOutput recognises a model reply that was cut at its output
	// bound or broken off by the server (its repeated-token abort): bad
	// output to regenerate with more room and other sampling, not a
	// failure to retry as it was.
	IsBadOutput func(error) bool
	// Defer puts a run the planner deferred in the deferred queue, which
	// hands it back with Engine.Resubmit; nil means runs cannot be
	// deferred, and a deferral fails the run.
	Defer func(ctx context.Context, runID string, deadline *time.Time, reason string) error
	// IsModelMissing recognises a model that is not pulled: no replan can
	// route around a configuration error (it would only hide it), so the
	// run stops and says what to pull.
	IsModelMissing func(error) bool
	// IsTransient recognises failures worth a retry of the step (its own
	// timeout, a tool's transient failure). Model calls come back already
	// retried by the model client, which owns the one retry policy for
	// busy and transient model failures, so they are not transient here.
	IsTransient func(error) bool
	// BytesPerToken is how many bytes of text model counts as a token,
	// as measured from its own prompt counts; prompt budgets and the cut
	// of results are sized with it. nil (or 0) means charsPerToken.
	BytesPerToken func(model string) float64

	// OnEnded, when set, hears of every run that ends in this process
	// (the plan cache learns from it), before the run's waiters wake.
	OnEnded func(ctx context.Context, e Ended)

	// Now and NewID are test seams.
	Now   func() time.Time
	NewID func() string
}

// Package localplanner turns a request into a valid plan with a small local
// model, reliably by construction: the model's output is constrained by a
// JSON Schema built from the tool catalog, parsed leniently, validated
// strictly, and repaired with the validation errors fed back. Known
// workflows are plan templates that skip the planner. Where a request is
// planned (template, local or remote) is internal/planning's decision,
// which uses this package's request features and fingerprints.
//
// The package never imports the concrete model client, the store or the
// tool registry: it declares the small interfaces it needs (ChatModel,
// Catalog) and the composition root adapts them.
package localplanner

import (
	"context"
	"encoding/json"

	"github.com/agentd/agentd/internal/plan"
)

// ChatModel is one chat call to a model. The Ollama client adapts to it.
type ChatModel interface {
	Chat(ctx context.Context, req ChatRequest) (ChatResponse, error)
}

// ChatRequest is a non-streaming chat call.
type ChatRequest struct {
	Model    string
	Messages []Message
	// Format is a JSON Schema the output must follow (Ollama's "format").
	Format json.RawMessage
	// NumPredict caps the output tokens (Ollama's options.num_predict); 0
	// leaves the model's default.
	NumPredict int
	// Regeneration counts how often this reply has been asked for again
	// after it broke off; the model client varies its sampling by it.
	Regeneration int
	// Purpose says why the call is made: PurposePlan, PurposeRepair,
	// PurposeReplan, PurposeClassify or PurposeExtract. It is recorded with
	// the call's usage.
	Purpose string
	RunID   string
	// OnDelta, when set, receives the reply so far as it streams in; the
	// caller may act on complete parts early (see Request.OnDraft).
	OnDelta func(soFar string)
}

// Message roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatResponse is what a chat call returned.
type ChatResponse struct {
	Content string
	// DoneReason is Ollama's done_reason: "stop", or "length" when the
	// output hit NumPredict and is cut short.
	DoneReason   string
	PromptTokens int
	OutputTokens int
}

// DoneLength is the done reason of an output cut short by NumPredict.
const DoneLength = "length"

// DoneAborted marks a reply the server broke off before it was finished
// (Ollama's repeated-token abort); Content holds what came before.
const DoneAborted = "aborted"

// Purposes of model calls.
const (
	PurposePlan     = "plan"
	PurposeRepair   = "plan_repair"
	PurposeReplan   = "replan"
	PurposeClassify = "workflow_classify"
	PurposeExtract  = "workflow_params"
)

// Catalog is what planning needs from the tool registry: validation, and
// the list of tools with their argument schemas for the plan schema and the
// prompt.
type Catalog interface {
	plan.Catalog
	List() []plan.ToolInfo
}

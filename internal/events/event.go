// Package events is agentd's in-process event bus: every state change becomes
// an event with a sequence id, kept in a ring buffer for clients that resume,
// fanned out to subscribers, and persisted to the store.
package events

import (
	"encoding/json"
	"time"
)

// Event is one state change. Seq is assigned by the bus and increases by one
// per event; clients resume with since=<seq>.
type Event struct {
	Seq   int64           `json:"seq"`
	Time  time.Time       `json:"time"`
	Type  string          `json:"type"`
	RunID string          `json:"run_id,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Event types.
const (
	RunCreated        = "run.created"
	RunStatus         = "run.status"
	PlanCreated       = "plan.created"
	StepStatus        = "step.status"
	StepAttempt       = "step.attempt"
	ModelCall         = "model.call"
	ToolCall          = "tool.call"
	ApprovalRequested = "approval.requested"
	ApprovalDecided   = "approval.decided"
	ReviewAdded       = "review.added"
	ReviewResolved    = "review.resolved"
	GPUSample         = "gpu.sample"
	Threshold         = "threshold"
	ModelResidency    = "model.residency"
	BudgetAlert       = "budget.alert"
	BudgetChanged     = "budget.changed"
	LinkState         = "link.state"
	Egress            = "egress"
	DaemonState       = "daemon.state"
)

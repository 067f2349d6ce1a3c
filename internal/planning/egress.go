// Package planning is agentd's one planning service: it routes a request
// (workflow template, scratchpad, local planner, remote planner), makes the
// plan and the replans, and owns the one decision of whether anything may
// leave the machine for planning. The daemon's executor, and through it the
// API, the CLI, the demo and the bench, plan through it.
package planning

import (
	"fmt"

	"github.com/agentd/agentd/internal/config"
)

// Purposes of a remote planning call, each one rung where the remote
// planner may be asked.
const (
	PurposeRoute    = "route"         // the router's choice of planner for a new request
	PurposeEscalate = "escalate"      // the local planner failed: ask the remote one
	PurposeReplan   = "replan_remote" // the ladder's remote replan rung
)

// Ask is everything the operator's policy is a function of, for one
// question "may this planning step go to the remote planner?". The budget
// and the link are asked after the policy (fallback.Gate), only when the
// policy allows.
type Ask struct {
	Purpose string
	// Request flags: a request may narrow the policy, never widen it.
	RequestPlanner   string // auto | local | remote | ""
	RequestSensitive bool
	// Workflow is the workflow the run was matched to or asked for, if any.
	Workflow *config.WorkflowConfig
}

// Egress is the policy's answer and why; the reasons are recorded on the
// run.
type Egress struct {
	Allowed bool
	// Sensitive is true when the request or its workflow is sensitive:
	// the run is recorded sensitive, and nothing about it leaves.
	Sensitive bool
	Reasons   []string
}

// Policy is the operator's configuration of remote planning.
type Policy struct {
	Enabled bool   // fallback.enabled
	Mode    string // planner.mode: auto | local | remote
}

// PolicyFrom reads the operator's policy from the config.
func PolicyFrom(cfg *config.Config) Policy {
	return Policy{Enabled: cfg.Fallback.Enabled, Mode: cfg.Planner.Mode}
}

// Decide answers whether a planning step may go to the remote planner. It
// is the one place this is decided, for every purpose. The rules, in
// order, each only ever narrowing:
//   - remote fallback must be enabled by the operator;
//   - a sensitive request, or a run of a sensitive workflow, never leaves;
//   - planner.mode = "local" forbids it, whatever a request or workflow asks;
//   - a workflow with planner = "local" forbids it;
//   - a request with planner = "local" forbids it.
func (p Policy) Decide(a Ask) Egress {
	e := Egress{Sensitive: a.RequestSensitive || (a.Workflow != nil && a.Workflow.Sensitive)}
	no := func(format string, args ...any) Egress {
		e.Allowed = false
		e.Reasons = append(e.Reasons, "remote planner not allowed: "+fmt.Sprintf(format, args...))
		return e
	}
	switch {
	case !p.Enabled:
		return no("remote fallback is off (fallback.enabled = false)")
	case a.RequestSensitive:
		return no("the request is marked sensitive")
	case a.Workflow != nil && a.Workflow.Sensitive:
		return no("workflow %s is sensitive", a.Workflow.Name)
	case p.Mode == "local":
		if a.RequestPlanner == "remote" {
			return no(`the request asked for it, but the operator's planner.mode = "local" forbids it`)
		}
		return no(`planner.mode = "local"`)
	case a.Workflow != nil && a.Workflow.Planner == "local":
		return no(`workflow %s has planner = "local"`, a.Workflow.Name)
	case a.RequestPlanner == "local":
		return no(`the request asked for the local planner`)
	}
	e.Allowed = true
	e.Reasons = append(e.Reasons, "policy allows the remote planner for "+a.Purpose)
	return e
}

// Package scenarios holds the requests agentd's users describe — parallel
// lookups and a comparison, a four-step order with an approval, a research
// summary with a schema-checked report, a tool that fails and forces a
// replan, a workflow template that needs no planner — as deterministic
// fixture tools, a script for the Ollama simulator that makes its models
// answer like a capable model would, and the results a correct run must
// reach. `agentd demo`, `agentd bench` and the end-to-end tests run them.
package scenarios

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
)

// Scenario is one request with everything needed to run and score it.
type Scenario struct {
	Name string
	// Request is the user's text; it is unique among scenarios and is how
	// the simulator script recognises the scenario.
	Request string
	// Workflow names the workflow template the request matches (by
	// keyword); empty when the planner plans it.
	Workflow string
	// Params are the workflow parameters the router model extracts.
	Params map[string]any
	// Plan is what the simulated planner returns (nil for a template
	// scenario: the template is the plan).
	Plan *plan.Plan
	// Replan is what the planner returns when a step failed (nil: the
	// scenario does not expect one). Denied maps to a plan with no steps,
	// which cannot be valid: nothing is left that may be done.
	Replan *plan.Plan
	// Tasks script the executor model for each task step (by step id).
	Tasks map[string]Task
	// Answer is the summarizer's final answer.
	Answer string
	// React is the single-model ReAct baseline's script: its tool calls in
	// order, then its final answer.
	React      []ReactAction
	ReactFinal string

	// Expect is what a correct run reaches.
	Expect Expect
}

// Task scripts an executor model for one task step: the tool calls it makes
// (natively, all in its first turn), then its answer.
type Task struct {
	// Marker is a phrase of the step's task text that identifies it.
	Marker    string
	ToolCalls []ToolCall
	Answer    string
}

// ToolCall is one scripted tool call.
type ToolCall struct {
	Name string
	Args map[string]any
}

// ReactAction is one tool call of the ReAct baseline.
type ReactAction struct {
	Tool string
	Args map[string]any
	Note string // what the model writes as its next move
}

// Expect is what a correct run of a scenario produces.
type Expect struct {
	// Steps: facts (substrings, case-insensitive) each step's output must
	// contain, by step id of the plan (the last plan, after a replan).
	Steps []StepExpect
	// Facts the final answer must state.
	Facts []string
	// Parallel lists groups of steps that must run at the same time.
	Parallel [][]string
	// Approval is the step that waits for a person's yes.
	Approval string
	// Replans is the number of replans a correct run needs.
	Replans int
	// OutputSchema maps a step id to the JSON Schema its output satisfies.
	OutputSchema map[string]json.RawMessage
}

// StepExpect is one step's expected output.
type StepExpect struct {
	Step  string
	Tool  string // the tool behind it, for runs without plan step ids (ReAct)
	Facts []string
}

// Find returns the scenario called name.
func Find(name string) (Scenario, bool) {
	for _, s := range All() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Names lists the scenario names in order.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name)
	}
	return out
}

// PlanFor returns the plan a scenario runs: its planner plan, or its
// workflow template instantiated with its params.
func (s Scenario) PlanFor() (*plan.Plan, error) {
	if s.Plan != nil {
		return clonePlan(s.Plan), nil
	}
	for _, w := range Workflows() {
		if w.Name == s.Workflow {
			return localplanner.Instantiate(w, s.Params, s.Request)
		}
	}
	return nil, fmt.Errorf("scenario %s has neither a plan nor a known workflow", s.Name)
}

// FinalPlan is the plan whose steps a correct run ends with: the replan
// merged over the first plan's completed steps when there is one.
func (s Scenario) FinalPlan() (*plan.Plan, error) {
	p, err := s.PlanFor()
	if err != nil || s.Replan == nil || len(s.Replan.Steps) == 0 {
		return p, err
	}
	out := &plan.Plan{Goal: p.Goal, Answer: s.Replan.Answer}
	ids := map[string]bool{}
	for _, st := range s.Replan.Steps {
		ids[st.ID] = true
	}
	// Steps of the first plan that a correct run completed before the
	// failure stay (those the replan does not redo and that are expected).
	for _, st := range p.Steps {
		if !ids[st.ID] && slices.ContainsFunc(s.Expect.Steps, func(e StepExpect) bool { return e.Step == st.ID }) {
			out.Steps = append(out.Steps, st)
		}
	}
	out.Steps = append(out.Steps, clonePlan(s.Replan).Steps...)
	return out, nil
}

func clonePlan(p *plan.Plan) *plan.Plan {
	b, _ := json.Marshal(p)
	var out plan.Plan
	_ = json.Unmarshal(b, &out)
	return &out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// PlanJSON is the plan as the simulated planner writes it.
func PlanJSON(p *plan.Plan) string { return mustJSON(p) }

// Scenario names.
const (
	NameCities   = "similar_cities"
	NameOrder    = "order_processing"
	NameResearch = "research_summary"
	NameReplan   = "boat_window_replan"
	NameTemplate = "low_stock_template"
)

// All returns every scenario, in a fixed order.
func All() []Scenario {
	return []Scenario{cityScenario(), orderScenario(), researchScenario(), replanScenario(), templateScenario()}
}

// Workflows are the workflow templates the scenarios use, for
// config.Workflows.
func Workflows() []config.WorkflowConfig {
	return []config.WorkflowConfig{{
		Name:        "low_stock_reorder",
		Description: "List the low-stock items of a warehouse, fetch supplier lead times, and draft a purchase order.",
		Keywords:    []string{"low stock"},
		Params: map[string]any{"type": "object", "required": []any{"warehouse"}, "additionalProperties": false,
			"properties": map[string]any{"warehouse": map[string]any{"type": "string", "description": "warehouse code, like W2"}}},
		Steps: []config.WorkflowStep{
			{ID: "low_stock", Tool: "list_low_stock", Args: map[string]any{"warehouse": "{{warehouse}}"}},
			{ID: "lead_times", Tool: "supplier_lead_times", Args: map[string]any{"warehouse": "{{warehouse}}"}},
			{ID: "draft_po", Task: "Draft a purchase order for the low-stock items of warehouse {{warehouse}}: order each item's reorder_qty, " +
				"price it with calc, and give the total and the slowest lead time. Items: ${low_stock.items}. Lead times (days): ${lead_times.lead_times}.",
				Tools: []string{"calc"}, Tier: "fast", DependsOn: []string{"low_stock", "lead_times"}},
		},
		Answer: "Report the draft purchase order for warehouse {{warehouse}}: lines, total in USD, and when the last item arrives.",
	}}
}

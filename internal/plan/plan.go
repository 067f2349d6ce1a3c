// Package plan is the plan format of DESIGN.md: a goal, a DAG of steps, and
// how to combine their results. Planners produce it, the executor runs it.
package plan

import "encoding/json"

// Plan is what a planner returns.
type Plan struct {
	Goal   string `json:"goal"`
	Steps  []Step `json:"steps"`
	Answer string `json:"answer"`
	// AnswerPattern, set only by a template (written or learned), is the
	// reply with ${step.path} references to fill from the results: the
	// run then makes no summarizer call. Planners do not write it.
	AnswerPattern string `json:"answer_pattern,omitempty"`
}

// Step is one node of the plan's DAG. A tool step has Tool and Args and runs
// with no model call; a task step has Task and goes to an executor model of
// its Tier with only the listed Tools.
type Step struct {
	ID        string         `json:"id"`
	Tool      string         `json:"tool,omitempty"`
	Args      map[string]any `json:"args,omitempty"`
	Task      string         `json:"task,omitempty"`
	Tools     []string       `json:"tools,omitempty"`
	Tier      string         `json:"tier,omitempty"`
	DependsOn []string       `json:"depends_on,omitempty"`
	// Output, when set on a task step, is a JSON Schema the step's result
	// must satisfy (extraction, judging, summarising).
	Output json.RawMessage `json:"output,omitempty"`
}

// Kind of a step.
const (
	KindTool = "tool"
	KindTask = "task"
)

// Kind reports whether the step is a tool step or a task step.
func (s Step) Kind() string {
	if s.Tool != "" {
		return KindTool
	}
	return KindTask
}

// Tiers of executor models.
const (
	TierFast     = "fast"
	TierStandard = "standard"
)

// Step looks a step up by id.
func (p *Plan) Step(id string) (Step, bool) {
	for _, s := range p.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

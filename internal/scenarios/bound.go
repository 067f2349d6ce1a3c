package scenarios

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/bench/makespan"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/plan"
)

// Work describes what a correct run of the scenario has to do, for the
// makespan bound: the planning call (or, for a workflow, the router's
// parameter extraction), each step's tool latency and executor calls, a
// replan when the scenario needs one, and the answer. Token counts are the
// least a model can read and write: it must read the request or the step's
// task and write what the script has it write, at the simulator's four
// characters a token. Nothing here comes from a run.
func (s Scenario) Work(models config.ModelsConfig) (makespan.Run, error) {
	r := makespan.Run{Name: s.Name}
	tier := func(t string) string {
		if t == plan.TierStandard {
			return models.Standard
		}
		return models.Fast
	}
	summarizer := models.Summarizer
	if summarizer == "" {
		summarizer = models.Fast
	}
	latency := toolLatencies()
	step := func(ps plan.Step) makespan.Step {
		st := makespan.Step{ID: ps.ID, DependsOn: ps.DependsOn, Tool: latency[ps.Tool]}
		if ps.Tool != "" {
			return st
		}
		t := s.Tasks[ps.ID]
		read := ollamasim.CountTokens(ps.Task)
		if len(t.ToolCalls) > 0 {
			// One turn that calls the tools (at once), then the answer.
			calls, _ := json.Marshal(t.ToolCalls)
			st.Calls = append(st.Calls, makespan.Call{Model: tier(ps.Tier), PromptTokens: read, OutputTokens: ollamasim.CountTokens(string(calls))})
			var slowest time.Duration
			for _, c := range t.ToolCalls {
				slowest = max(slowest, latency[c.Name])
			}
			st.Tool = slowest
		}
		st.Calls = append(st.Calls, makespan.Call{Model: tier(ps.Tier), PromptTokens: read, OutputTokens: ollamasim.CountTokens(t.Answer)})
		return st
	}
	p, err := s.PlanFor()
	if err != nil {
		return r, err
	}
	if s.Workflow != "" {
		params, _ := json.Marshal(s.Params)
		r.Before = []makespan.Call{{Model: models.Router, PromptTokens: ollamasim.CountTokens(s.Request), OutputTokens: ollamasim.CountTokens(string(params))}}
	} else {
		r.Before = []makespan.Call{{Model: models.Planner, PromptTokens: ollamasim.CountTokens(s.Request), OutputTokens: ollamasim.CountTokens(PlanJSON(s.Plan))}}
	}
	firstPlan := map[string]int{}
	if s.Workflow == "" {
		firstPlan = writtenAt(s.Plan)
	}
	if s.Replan == nil {
		for _, ps := range p.Steps {
			st := step(ps)
			st.Written = firstPlan[ps.ID]
			r.Steps = append(r.Steps, st)
		}
	} else {
		// The first plan's steps run until one fails: the failed one is a
		// step the replan drops and does not cite. The replan waits for it,
		// and the new plan's steps wait for the replan.
		kept := map[string]bool{}
		for _, ps := range s.Replan.Steps {
			kept[ps.ID] = true
		}
		var dropped []string
		for _, ps := range p.Steps {
			if kept[ps.ID] {
				continue
			}
			st := step(ps)
			st.Written = firstPlan[ps.ID]
			r.Steps = append(r.Steps, st)
			if !referenced(s.Replan, ps.ID) {
				dropped = append(dropped, ps.ID)
			}
		}
		r.Steps = append(r.Steps, makespan.Step{ID: "replan", DependsOn: dropped,
			Calls: []makespan.Call{{Model: models.Planner, PromptTokens: ollamasim.CountTokens(s.Request), OutputTokens: ollamasim.CountTokens(PlanJSON(s.Replan))}}})
		replanned := writtenAt(s.Replan)
		for _, ps := range s.Replan.Steps {
			st := step(ps)
			st.DependsOn = append(slices.Clone(st.DependsOn), "replan")
			st.Written, st.WrittenBy = replanned[ps.ID], "replan"
			r.Steps = append(r.Steps, st)
		}
	}
	r.After = []makespan.Call{{Model: summarizer, PromptTokens: ollamasim.CountTokens(s.Request), OutputTokens: ollamasim.CountTokens(s.Answer)}}
	return r, nil
}

// writtenAt is, for each step of p, how many tokens of the plan's text
// (as the script has the planner write it) are out when the step's object
// is complete: agentd streams the plan and may start a step then. One token
// less than the count, so that a step ending inside a token never starts
// later in the bound than it could. Empty when p was not written by a
// model (a workflow's template).
func writtenAt(p *plan.Plan) map[string]int {
	out := map[string]int{}
	if p == nil {
		return out
	}
	text := PlanJSON(p)
	for _, ps := range p.Steps {
		step := mustJSON(ps)
		if i := strings.Index(text, step); i >= 0 {
			out[ps.ID] = max(ollamasim.CountTokens(text[:i+len(step)])-1, 1)
		}
	}
	return out
}

// referenced reports whether a step of p uses id's result (depends on it,
// or cites ${id} in its task or arguments): such a step of the first plan
// succeeded, so it is not the one whose failure made the replan.
func referenced(p *plan.Plan, id string) bool {
	for _, s := range p.Steps {
		args, _ := json.Marshal(s.Args)
		if slices.Contains(s.DependsOn, id) || strings.Contains(s.Task, "${"+id) || strings.Contains(string(args), "${"+id) {
			return true
		}
	}
	return false
}

// Machine is the simulator's machine for the bound: its catalog's sizes and
// speeds, parallel slots, VRAM (0: the simulator's default) and load rate
// (0: its default), with the given models resident at the start (the
// bench prewarms them).
func Machine(slots int, vram int64, loadBytesPerSec float64, resident ...string) (makespan.Resources, error) {
	res := makespan.Resources{Models: map[string]makespan.Model{}, VRAMBytes: vram,
		LoadBytesPerSec: loadBytesPerSec, Resident: map[string]bool{}}
	if res.VRAMBytes == 0 {
		res.VRAMBytes = ollamasim.DefaultVRAM
	}
	if res.LoadBytesPerSec <= 0 {
		res.LoadBytesPerSec = ollamasim.DefaultLoadBytesPerSecond
	}
	for _, m := range ollamasim.DefaultModels() {
		res.Models[m.Name] = makespan.Model{SizeBytes: m.Size, PrefillTPS: m.PrefillTPS, DecodeTPS: m.DecodeTPS, Slots: slots}
	}
	for _, name := range resident {
		if _, ok := res.Models[name]; !ok {
			return res, fmt.Errorf("model %q is not in the simulator's catalog", name)
		}
		res.Resident[name] = true
	}
	return res, nil
}

// toolLatencies are the fixture tools' simulated latencies by name (the
// built-in tools the scenarios use, like calc, take no time).
func toolLatencies() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, t := range Tools(Options{}) {
		if f, ok := t.(*fixture); ok {
			out[f.spec.Name] = f.latency
		}
	}
	return out
}

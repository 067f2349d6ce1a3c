package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
)

// PlannerModel adapts the Ollama client to the planner's ChatModel (the
// planner benchmark builds a planner outside the daemon).
type PlannerModel struct{ C *llm.Client }

var _ localplanner.ChatModel = PlannerModel{}

// Chat implements localplanner.ChatModel.
func (p PlannerModel) Chat(ctx context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	resp, err := p.C.Chat(ctx, llm.Request{Model: req.Model, Messages: apiMessages(req.Messages), Format: req.Format, NumPredict: req.NumPredict,
		Purpose: req.Purpose, RunID: req.RunID, Options: map[string]any{"temperature": 0}})
	if err != nil {
		var le *llm.Error
		if llm.ClassOf(err) == llm.ClassTruncated && errors.As(err, &le) && le.Partial != nil {
			return localplanner.ChatResponse{Content: le.Partial.Message.Content, DoneReason: localplanner.DoneLength,
				PromptTokens: le.Partial.Usage.PromptTokens, OutputTokens: le.Partial.Usage.OutputTokens}, nil
		}
		return localplanner.ChatResponse{}, err
	}
	return localplanner.ChatResponse{Content: resp.Message.Content, DoneReason: resp.DoneReason,
		PromptTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.OutputTokens}, nil
}

// apiMessages converts planner messages to the Ollama client's.
func apiMessages(ms []localplanner.Message) []api.Message {
	out := make([]api.Message, len(ms))
	for i, m := range ms {
		out[i] = api.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// Planner fault classes.
const (
	FaultInvalidJSON = "invalid_json"
	FaultUnknownTool = "unknown_tool"
	FaultBadRef      = "bad_reference"
	FaultTruncated   = "truncated"
)

// FaultyPlanner wraps a planner model that writes correct plans and
// corrupts its first reply to a request at seeded rates: invalid JSON, a
// tool that does not exist, a reference outside depends_on, and output cut
// at the token limit. Asked to repair, it fixes the fault only when the
// planner's feedback names the problem (otherwise it repeats it), so the
// benchmark measures the quality of the feedback, not a forgiving fake.
type FaultyPlanner struct {
	Inner localplanner.ChatModel
	// Rates per fault class, of first replies.
	Rates map[string]float64

	mu       sync.Mutex
	rng      *rand.Rand
	injected map[string]int
	pending  map[string]string
	firstNP  map[string]int
	calls    int
}

// NewFaultyPlanner uses the benchmark's rates: invalid JSON 10%, unknown
// tool 10%, bad reference 10%, truncation 5%.
func NewFaultyPlanner(inner localplanner.ChatModel, seed uint64) *FaultyPlanner {
	return &FaultyPlanner{Inner: inner, rng: rand.New(rand.NewPCG(seed, 7)),
		Rates:    map[string]float64{FaultInvalidJSON: 0.10, FaultUnknownTool: 0.10, FaultBadRef: 0.10, FaultTruncated: 0.05},
		injected: map[string]int{}, pending: map[string]string{}, firstNP: map[string]int{}}
}

// Injected counts the faults made, by class; Calls the planner calls.
func (f *FaultyPlanner) Injected() (map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.injected {
		out[k] = v
	}
	return out, f.calls
}

// feedbackWords is what the planner's repair message must say for the
// fault to be fixed.
var feedbackWords = map[string]string{FaultInvalidJSON: "invalid JSON", FaultUnknownTool: "does not exist", FaultBadRef: "to depends_on"}

const repairOpening = "That plan cannot run"

// Chat implements localplanner.ChatModel.
func (f *FaultyPlanner) Chat(ctx context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	resp, err := f.Inner.Chat(ctx, req)
	if err != nil {
		return resp, err
	}
	request, last := req.RunID, ""
	for _, m := range req.Messages {
		if m.Role == localplanner.RoleUser {
			last = m.Content
			if request == "" && !strings.HasPrefix(m.Content, repairOpening) {
				request = m.Content
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	_, seen := f.firstNP[request]
	fault := ""
	switch {
	case !seen:
		// The first reply to a request: roll for a fault.
		f.firstNP[request] = req.NumPredict
		r, acc := f.rng.Float64(), 0.0
		for _, k := range []string{FaultInvalidJSON, FaultUnknownTool, FaultBadRef, FaultTruncated} {
			acc += f.Rates[k]
			if r < acc {
				fault = k
				break
			}
		}
	case f.pending[request] == FaultTruncated:
		fault = FaultTruncated // cut again unless given more room (below)
	case strings.HasPrefix(last, repairOpening):
		// Fix the fault only if the feedback names it.
		if prev := f.pending[request]; prev != "" && !strings.Contains(last, feedbackWords[prev]) {
			fault = prev
		}
	}
	good := resp.Content
	switch fault {
	case FaultInvalidJSON:
		resp.Content = strings.Replace(good, `"steps":[`, `"steps":[,`, 1)
	case FaultUnknownTool:
		resp.Content = corruptPlan(good, func(p *plan.Plan) bool {
			for i := range p.Steps {
				if p.Steps[i].Tool != "" {
					p.Steps[i].Tool += "_v2"
					return true
				}
			}
			return false
		})
	case FaultBadRef:
		resp.Content = corruptPlan(good, func(p *plan.Plan) bool {
			for i := range p.Steps {
				if len(p.Steps[i].DependsOn) > 0 {
					p.Steps[i].DependsOn = nil
					return true
				}
			}
			return false
		})
	case FaultTruncated:
		// The reply needed more than the first output limit: cut unless the
		// planner already asked for more room.
		if first := f.firstNP[request]; first == 0 || req.NumPredict < 2*first {
			resp.Content, resp.DoneReason = good[:len(good)/2], localplanner.DoneLength
		} else {
			fault = ""
		}
	}
	if resp.Content == good && fault != FaultTruncated {
		fault = "" // nothing to corrupt in this plan
	}
	if fault != "" && !seen {
		f.injected[fault]++
	}
	f.pending[request] = fault
	return resp, nil
}

func corruptPlan(content string, mutate func(*plan.Plan) bool) string {
	var p plan.Plan
	if json.Unmarshal([]byte(content), &p) != nil || !mutate(&p) {
		return content
	}
	return mustJSON(&p)
}

// Catalog adapts the tool registry to the planner's catalog, for planning
// outside the daemon (the planner benchmark).
type Catalog struct{ R *tools.Registry }

var _ localplanner.Catalog = Catalog{}

// Has implements plan.Catalog.
func (c Catalog) Has(name string) bool { _, ok := c.R.Get(name); return ok }

// ValidateArgs implements plan.Catalog.
func (c Catalog) ValidateArgs(name string, args map[string]any) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	return c.R.Validate(name, b)
}

// List implements localplanner.Catalog.
func (c Catalog) List() []plan.ToolInfo { return toolInfos(c.R) }

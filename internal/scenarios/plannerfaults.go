package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
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

// FaultyPlanner wraps a planner model that writes correct plans and makes
// faults at seeded rates: invalid JSON, a tool that does not exist, a
// reference outside depends_on, and output cut at the token limit.
//
// The first reply to a request is faulty at Rates. A fault can outlive
// the planner's repair: on each later reply, with probability Recur the
// same fault comes back whatever the feedback said; otherwise, with
// probability Ignore, the model disregards the feedback and either repeats
// its last reply word for word or makes a different fault; otherwise it
// heeds the feedback, which fixes the fault only when the feedback names
// the problem (a truncated reply: only when the planner asks for twice the
// output room). With Recur and Ignore 0 a fault named by the feedback is
// always fixed on the next call; with Recur 1 no repair ever succeeds.
//
// Every request draws from its own random stream (seed and request), so
// its n-th reply is the same whatever the planner's call budget: runs of
// the same requests at budgets 1..N are coupled, and a larger budget can
// only add calls at the end.
type FaultyPlanner struct {
	Inner localplanner.ChatModel
	// Rates per fault class, of first replies.
	Rates map[string]float64
	// Recur is the chance that a fault comes back on each repair reply.
	Recur float64
	// Ignore is the chance that a repair reply ignores the feedback.
	Ignore float64

	mu       sync.Mutex
	seed     uint64
	requests map[string]*faultState
	stats    FaultStats
}

// faultState is one request's history.
type faultState struct {
	rng       *rand.Rand
	firstNP   int    // the first call's output limit
	fault     string // the fault of the last reply ("" if it was clean)
	lastReply localplanner.ChatResponse
}

// FaultStats counts what the faulty planner did.
type FaultStats struct {
	Calls int
	// First counts first replies with a fault, by class.
	First map[string]int
	// On replies after the first to a faulty one: Recurred the faults that
	// came back despite the feedback, Repeated the replies that ignored it
	// and repeated the last one, Switched those that ignored it and made
	// another fault, Unfixed the faults kept because the feedback did not
	// name them (or gave no more room), Fixed the faults mended.
	Recurred, Repeated, Switched, Unfixed, Fixed int
}

// NewFaultyPlanner uses the benchmark's rates of first-reply faults:
// invalid JSON 10%, unknown tool 10%, bad reference 10%, truncation 5%;
// Recur and Ignore are 0.
func NewFaultyPlanner(inner localplanner.ChatModel, seed uint64) *FaultyPlanner {
	return &FaultyPlanner{Inner: inner, seed: seed,
		Rates:    map[string]float64{FaultInvalidJSON: 0.10, FaultUnknownTool: 0.10, FaultBadRef: 0.10, FaultTruncated: 0.05},
		requests: map[string]*faultState{}, stats: FaultStats{First: map[string]int{}}}
}

// Injected counts the faults made on first replies, by class; Calls the
// planner calls.
func (f *FaultyPlanner) Injected() (map[string]int, int) {
	st := f.Stats()
	return st.First, st.Calls
}

// Stats returns a copy of the counts.
func (f *FaultyPlanner) Stats() FaultStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.First = maps.Clone(f.stats.First)
	return st
}

// faultClasses in the order first-reply rates are drawn.
var faultClasses = []string{FaultInvalidJSON, FaultUnknownTool, FaultBadRef, FaultTruncated}

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
	f.stats.Calls++
	st := f.requests[request]
	if st == nil {
		h := fnv.New64a()
		h.Write([]byte(request))
		st = &faultState{rng: rand.New(rand.NewPCG(f.seed, h.Sum64())), firstNP: req.NumPredict}
		f.requests[request] = st
		fault := ""
		r, acc := st.rng.Float64(), 0.0
		for _, k := range faultClasses {
			acc += f.Rates[k]
			if r < acc {
				fault = k
				break
			}
		}
		resp, st.fault = f.corrupt(resp, fault, st, req.NumPredict, true)
		if st.fault != "" {
			f.stats.First[st.fault]++
		}
		st.lastReply = resp
		return resp, nil
	}
	prev := st.fault
	if prev == "" {
		// The last reply was clean: nothing to persist.
		st.lastReply = resp
		return resp, nil
	}
	// Draw all three numbers on every such call, so one request's stream does
	// not depend on which branch an earlier call took.
	recur, ignore, other := st.rng.Float64(), st.rng.Float64(), st.rng.Float64()
	switch {
	case recur < f.Recur:
		f.stats.Recurred++
		resp, st.fault = f.corrupt(resp, prev, st, req.NumPredict, true)
	case ignore < f.Ignore && other < 0.5:
		f.stats.Repeated++
		resp = st.lastReply
	case ignore < f.Ignore:
		// Another fault than the last, if this plan has room for one.
		f.stats.Switched++
		alts := slices.DeleteFunc(slices.Clone(faultClasses), func(k string) bool { return k == prev })
		start := int((other - 0.5) * 2 * float64(len(alts)))
		made := false
		for i := range alts {
			if r, fault := f.corrupt(resp, alts[(start+i)%len(alts)], st, req.NumPredict, true); fault != "" {
				resp, st.fault, made = r, fault, true
				break
			}
		}
		if !made {
			resp = st.lastReply // nothing else to break: repeat the last reply
		}
	case prev == FaultTruncated:
		// Heeding the "asking again with more" of a cut reply means fitting
		// in the room given: it fits only in twice the first limit.
		if resp, st.fault = f.corrupt(resp, prev, st, req.NumPredict, false); st.fault != "" {
			f.stats.Unfixed++
		} else {
			f.stats.Fixed++
		}
	case strings.HasPrefix(last, repairOpening) && strings.Contains(last, feedbackWords[prev]):
		f.stats.Fixed++
		st.fault = ""
	default:
		// The feedback does not name the problem: the model makes it again.
		f.stats.Unfixed++
		resp, st.fault = f.corrupt(resp, prev, st, req.NumPredict, true)
	}
	st.lastReply = resp
	return resp, nil
}

// corrupt makes fault in a correct reply and reports the fault made ("" if
// the plan has nothing it applies to). A truncation cuts the reply unless
// always is false and the planner gave twice the first output limit.
func (f *FaultyPlanner) corrupt(resp localplanner.ChatResponse, fault string, st *faultState, numPredict int, always bool) (localplanner.ChatResponse, string) {
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
		if !always && st.firstNP > 0 && numPredict >= 2*st.firstNP {
			return resp, ""
		}
		resp.Content, resp.DoneReason = good[:len(good)/2], localplanner.DoneLength
		return resp, fault
	}
	if resp.Content == good {
		return resp, "" // nothing to corrupt in this plan
	}
	return resp, fault
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

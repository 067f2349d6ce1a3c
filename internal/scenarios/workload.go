package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/agentd/agentd/internal/plan"
)

// The plan cache workload (issue 14): a stream of everyday requests of a
// few kinds, each worded a few ways, with entities drawn from pools, in
// random order, so that the same wording comes back with other values. A
// plan cache should plan the repeats with no planner call; the benchmark
// counts how many it did and whether any got a wrong plan or answer.
//
// Some kinds are look-alikes of others that need another plan: a stock
// check and a reorder of the same item, a currency and a unit conversion
// worded the same, the weather now and tomorrow, a person and their
// manager, a percentage of and a percentage off, summarising and closing a
// ticket, one city's weather and two cities compared (whose answer depends
// on which is warmer). A cache that matched them loosely would serve the
// wrong plan; each must fall back to the planner instead.
//
// The simulated planner (WorkloadScript) recognises each wording by its
// regular expression and replies with the kind's plan for the entities it
// found; the summarizer writes its answer from the step results it is
// given, never from what the request should have produced, so a run served
// the wrong plan gets a wrong answer and is counted as one.

// WorkloadRequest is one request of the workload.
type WorkloadRequest struct {
	// Kind names the request type ("stock_check").
	Kind string
	// Phrasing is the index of the wording used, within the kind.
	Phrasing int
	Text     string
	// Entities are the slot values as written in Text.
	Entities map[string]string
	// Hard requests read as hard to the router (several asks and
	// conditions), which sends them to the remote planner when allowed.
	Hard bool
}

// requestKind is one request type: its wordings, entity pools, plan and
// answer.
type requestKind struct {
	name string
	hard bool
	// phrasings are sentences with {slot}s.
	phrasings []string
	// slots are the regular expressions of the slots' values.
	slots map[string]string
	draw  func(r *rand.Rand) map[string]string
	plan  func(e map[string]string) *plan.Plan
	// answer is the summarizer's reply from the step results.
	answer func(e map[string]string, res stepResults) string
	// facts are what a correct answer states, read from correct results.
	facts func(e map[string]string, res stepResults) []string

	res []*regexp.Regexp // compiled phrasings
}

// Slot patterns.
const (
	reSKU       = `W-[0-9]{3}`
	reWarehouse = `east|west|north|south|central`
	reInt       = `[0-9]+`
	reCurrency  = `[A-Z]{3}`
	reUnit      = `kilometers|miles|kilograms|pounds|liters|gallons`
	reOrder     = `ORD-[0-9]{5}`
	rePlace     = `[A-Z][a-z]+(?: [A-Z][a-z]+)?`
	reName      = `[A-Z][a-z]+ [A-Z][a-z]+`
	reTicket    = `T-[0-9]{4}`
	reDays      = `[2-5]`
)

// workloadKinds returns every request type, the ordinary ones first.
// Compiled once: the regular expressions are shared and read-only.
var workloadKinds = compileKinds(append(ordinaryKinds(), hardKinds()...))

func compileKinds(kinds []*requestKind) []*requestKind {
	slot := regexp.MustCompile(`\{([a-z_]+)\}`)
	for _, k := range kinds {
		for _, p := range k.phrasings {
			var b strings.Builder
			b.WriteString("^")
			last := 0
			for _, m := range slot.FindAllStringSubmatchIndex(p, -1) {
				b.WriteString(regexp.QuoteMeta(p[last:m[0]]))
				name := p[m[2]:m[3]]
				pat, ok := k.slots[name]
				if !ok {
					panic(fmt.Sprintf("workload kind %s: phrasing %q has slot %s with no pattern", k.name, p, name))
				}
				fmt.Fprintf(&b, "(?P<%s>%s)", name, pat)
				last = m[1]
			}
			b.WriteString(regexp.QuoteMeta(p[last:]))
			b.WriteString("$")
			k.res = append(k.res, regexp.MustCompile(b.String()))
		}
	}
	return kinds
}

func kindNamed(name string) (*requestKind, bool) {
	for _, k := range workloadKinds {
		if k.name == name {
			return k, true
		}
	}
	return nil, false
}

// WorkloadKinds names the ordinary request types (hard ones excluded).
func WorkloadKinds() []string {
	var out []string
	for _, k := range workloadKinds {
		if !k.hard {
			out = append(out, k.name)
		}
	}
	return out
}

// WorkloadPhrasings counts the wordings of the ordinary (hard=false) or the
// hard request types.
func WorkloadPhrasings(hard bool) int {
	n := 0
	for _, k := range workloadKinds {
		if k.hard == hard {
			n += len(k.phrasings)
		}
	}
	return n
}

// Workload draws n requests of the ordinary types with the given seed:
// every type in turn, then shuffled, each with a random wording and random
// entities. The same seed gives the same workload.
func Workload(n int, seed uint64) []WorkloadRequest { return drawWorkload(n, seed, false) }

// HardWorkload draws n requests of the hard types, which the router sends
// to the remote planner when remote fallback is on.
func HardWorkload(n int, seed uint64) []WorkloadRequest { return drawWorkload(n, seed, true) }

func drawWorkload(n int, seed uint64, hard bool) []WorkloadRequest {
	var kinds []*requestKind
	for _, k := range workloadKinds {
		if k.hard == hard {
			kinds = append(kinds, k)
		}
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]WorkloadRequest, 0, n)
	for i := range n {
		k := kinds[i%len(kinds)]
		ph := r.IntN(len(k.phrasings))
		text := fill(k.phrasings[ph], k.draw(r))
		// The entities are what the text says (a wording may leave a drawn
		// one out: "tomorrow" says days_ahead 1), read back as the planner
		// reads them.
		w, ok := RecogniseWorkload(text)
		if !ok || w.Kind != k.name || w.Phrasing != ph {
			panic(fmt.Sprintf("workload: %q (%s, wording %d) reads back as %s wording %d", text, k.name, ph, w.Kind, w.Phrasing))
		}
		out = append(out, w)
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func fill(phrasing string, e map[string]string) string {
	for k, v := range e {
		phrasing = strings.ReplaceAll(phrasing, "{"+k+"}", v)
	}
	return phrasing
}

// RecogniseWorkload finds the request type, wording and entities of a
// request text, as the simulated planner does.
func RecogniseWorkload(text string) (WorkloadRequest, bool) {
	text = strings.TrimSpace(text)
	for _, k := range workloadKinds {
		for i, re := range k.res {
			m := re.FindStringSubmatch(text)
			if m == nil {
				continue
			}
			e := map[string]string{}
			for j, name := range re.SubexpNames() {
				if name != "" {
					e[name] = m[j]
				}
			}
			return WorkloadRequest{Kind: k.name, Phrasing: i, Text: text, Entities: e, Hard: k.hard}, true
		}
	}
	return WorkloadRequest{}, false
}

// WorkloadPlanIn finds a workload request in a prompt (the whole text or
// any one line of it) and returns the plan a capable planner writes for
// it: what the simulated local planner and the benchmark's fake remote
// planner reply.
func WorkloadPlanIn(text string) (*plan.Plan, bool) {
	lines := append([]string{text}, strings.Split(text, "\n")...)
	for _, l := range lines {
		if w, ok := RecogniseWorkload(l); ok {
			return w.Plan(), true
		}
	}
	return nil, false
}

// Plan is the correct plan for the request.
func (w WorkloadRequest) Plan() *plan.Plan {
	k, ok := kindNamed(w.Kind)
	if !ok {
		return nil
	}
	return k.plan(w.Entities)
}

// ExpectedStep is one step a correct run completes: a tool step with its
// bound arguments, or a task step whose output states Facts.
type ExpectedStep struct {
	ID    string
	Tool  string         // "" for a task step
	Args  map[string]any // bound: references filled from the correct results
	Facts []string       // task steps
}

// WorkloadExpect is what a correct run of a request reaches.
type WorkloadExpect struct {
	Steps []ExpectedStep
	// Facts the final answer must state.
	Facts []string
}

// Expect runs the request's correct plan against the fixtures (no
// latency, no model: task steps get the simulated executor's answer) and
// reads what a correct run reaches from the results.
func (w WorkloadRequest) Expect() (WorkloadExpect, error) {
	k, ok := kindNamed(w.Kind)
	if !ok {
		return WorkloadExpect{}, fmt.Errorf("unknown workload kind %q", w.Kind)
	}
	p := k.plan(w.Entities)
	order, err := p.TopoOrder()
	if err != nil {
		return WorkloadExpect{}, fmt.Errorf("%s: %w", w.Kind, err)
	}
	results := map[string]json.RawMessage{}
	texts := stepResults{}
	var exp WorkloadExpect
	for _, id := range order {
		st, _ := p.Step(id)
		if st.Tool == "" {
			task, err := plan.BindText(st.Task, results)
			if err != nil {
				return exp, fmt.Errorf("%s: step %s: %w", w.Kind, id, err)
			}
			out := executorAnswer(task)
			texts[id] = out
			results[id], _ = json.Marshal(out)
			exp.Steps = append(exp.Steps, ExpectedStep{ID: id, Facts: taskFacts(out)})
			continue
		}
		args, err := plan.Bind(st.Args, results)
		if err != nil {
			return exp, fmt.Errorf("%s: step %s: %w", w.Kind, id, err)
		}
		out, err := callWorkloadTool(st.Tool, args)
		if err != nil {
			return exp, fmt.Errorf("%s: step %s: %w", w.Kind, id, err)
		}
		results[id], texts[id] = json.RawMessage(out), out
		exp.Steps = append(exp.Steps, ExpectedStep{ID: id, Tool: st.Tool, Args: args})
	}
	exp.Facts = k.facts(w.Entities, texts)
	return exp, nil
}

// --- scoring ---------------------------------------------------------------

// RunStep is one step of a run as the store recorded it.
type RunStep struct {
	ID, Tool string
	Done     bool
	Args     json.RawMessage // bound arguments (tool steps)
	Output   string
}

// WorkloadScore is how much of a request's expected result a run reached.
type WorkloadScore struct {
	// StepsOK counts expected steps found among the run's completed steps;
	// StepsTotal is the expected steps plus any completed step no
	// expectation accounts for (a wrong plan's extra lookups).
	StepsOK, StepsTotal int
	FactsOK, FactsTotal int
	// PlanOK: every expected step and nothing else; AnswerOK: the run ended
	// done and its answer states every expected fact.
	PlanOK, AnswerOK bool
	Missing          []string // what was wrong, for reports
}

// Score checks a run's completed steps and answer against the expectation.
// Steps match by tool and bound arguments (not by id: a plan may name its
// steps differently and still be right).
func (x WorkloadExpect) Score(steps []RunStep, answer string, done bool) WorkloadScore {
	var sc WorkloadScore
	used := make([]bool, len(steps))
	for _, e := range x.Steps {
		sc.StepsTotal++
		found := -1
		for i, st := range steps {
			if used[i] || !st.Done {
				continue
			}
			if e.Tool != "" && st.Tool == e.Tool && sameJSON(st.Args, e.Args) ||
				e.Tool == "" && st.Tool == "" && containsAll(st.Output, e.Facts) {
				found = i
				break
			}
		}
		if found < 0 {
			what := e.Tool
			if what == "" {
				what = "task stating " + strings.Join(e.Facts, ", ")
			}
			b, _ := json.Marshal(e.Args)
			sc.Missing = append(sc.Missing, fmt.Sprintf("step %s: %s %s", e.ID, what, b))
			continue
		}
		used[found] = true
		sc.StepsOK++
	}
	for i, st := range steps {
		if st.Done && !used[i] {
			sc.StepsTotal++
			sc.Missing = append(sc.Missing, fmt.Sprintf("unexpected step %s: %s %s", st.ID, st.Tool, st.Args))
		}
	}
	for _, f := range x.Facts {
		sc.FactsTotal++
		if containsFold(answer, f) {
			sc.FactsOK++
		} else {
			sc.Missing = append(sc.Missing, "answer: "+f)
		}
	}
	sc.PlanOK = sc.StepsOK == sc.StepsTotal
	sc.AnswerOK = done && sc.FactsOK == sc.FactsTotal
	return sc
}

// sameJSON compares stored arguments with expected ones as JSON values.
func sameJSON(raw json.RawMessage, want map[string]any) bool {
	var got any
	if json.Unmarshal(raw, &got) != nil {
		return false
	}
	wb, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var w any
	_ = json.Unmarshal(wb, &w)
	gb, _ := json.Marshal(got)
	wb, _ = json.Marshal(w)
	return string(gb) == string(wb)
}

// --- step results as a model reads them -------------------------------------

// stepResults maps step ids to their output text.
type stepResults map[string]string

// get reads a field of a step's JSON result as text (numbers as written),
// or "?" when the step or field is missing: the summarizer says what it
// has, it does not guess.
func (r stepResults) get(step, field string) string {
	out, ok := r[step]
	if !ok {
		return "?"
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return "?"
	}
	switch v := m[field].(type) {
	case nil:
		return "?"
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// num reads a numeric field (NaN when missing).
func (r stepResults) num(step, field string) float64 {
	var v float64
	if _, err := fmt.Sscan(r.get(step, field), &v); err != nil {
		return math.NaN()
	}
	return v
}

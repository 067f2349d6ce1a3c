package scenarios

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
)

func workloadCatalog(t *testing.T) Catalog {
	t.Helper()
	r, err := NewRegistry(config.Default().Tools, tools.Deps{}, WorkloadTools(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return Catalog{R: r}
}

// The default workload is what issue 14 asks for: at least 200 requests
// of at least 10 types, each worded 2 to 4 ways, in an order the seed
// fixes.
func TestWorkloadShape(t *testing.T) {
	reqs := Workload(200, 1)
	if len(reqs) != 200 {
		t.Fatalf("%d requests, want 200", len(reqs))
	}
	kinds, wordings := map[string]int{}, map[string]bool{}
	for _, r := range reqs {
		kinds[r.Kind]++
		wordings[fmt.Sprintf("%s/%d", r.Kind, r.Phrasing)] = true
		if r.Hard {
			t.Errorf("hard request in the ordinary workload: %q", r.Text)
		}
	}
	if len(kinds) < 10 || len(kinds) != len(WorkloadKinds()) {
		t.Errorf("%d request types drawn (%v), want every one of %d and at least 10", len(kinds), kinds, len(WorkloadKinds()))
	}
	for _, k := range workloadKinds {
		if n := len(k.phrasings); n < 1 || (!k.hard && (n < 2 || n > 4)) {
			t.Errorf("%s has %d wordings, want 2 to 4", k.name, n)
		}
	}
	if len(wordings) < WorkloadPhrasings(false)*9/10 {
		t.Errorf("only %d of %d wordings drawn", len(wordings), WorkloadPhrasings(false))
	}
	// Not grouped: the first 20 requests mix several types.
	first := map[string]bool{}
	for _, r := range reqs[:20] {
		first[r.Kind] = true
	}
	if len(first) < 8 {
		t.Errorf("the first 20 requests hold only %d types: not shuffled", len(first))
	}
	if again := Workload(200, 1); !reflect.DeepEqual(reqs, again) {
		t.Error("the same seed drew another workload")
	}
	if other := Workload(200, 2); reflect.DeepEqual(reqs, other) {
		t.Error("another seed drew the same workload")
	}
}

// Every request reads back as exactly one type and wording: look-alikes
// are told apart by their wording and entities, never by luck of order.
func TestWorkloadRequestsAreUnambiguous(t *testing.T) {
	for _, r := range append(Workload(400, 3), HardWorkload(60, 3)...) {
		n := 0
		for _, k := range workloadKinds {
			for _, re := range k.res {
				if re.MatchString(r.Text) {
					n++
				}
			}
		}
		if n != 1 {
			t.Errorf("%q matches %d wordings, want 1", r.Text, n)
		}
	}
}

// Each request's scripted plan validates against the workload's tools, and
// running it on the fixtures gives an expectation with real values.
func TestWorkloadPlansValidateAndExpectationsResolve(t *testing.T) {
	cat := workloadCatalog(t)
	for _, r := range append(Workload(300, 5), HardWorkload(30, 5)...) {
		p := r.Plan()
		if p == nil {
			t.Fatalf("%q: no plan", r.Text)
		}
		if errs := plan.Validate(p, cat, config.Default().Planner.MaxSteps); len(errs) > 0 {
			t.Errorf("%s %q: plan invalid: %v", r.Kind, r.Text, plan.Errors(errs))
			continue
		}
		exp, err := r.Expect()
		if err != nil {
			t.Errorf("%s %q: %v", r.Kind, r.Text, err)
			continue
		}
		if len(exp.Steps) != len(p.Steps) || len(exp.Facts) == 0 {
			t.Errorf("%s: expectation %+v for plan %s", r.Kind, exp, PlanJSON(p))
		}
		for _, f := range exp.Facts {
			if strings.Contains(f, "?") || strings.Contains(f, "(no summary)") {
				t.Errorf("%s %q: fact %q has a missing value", r.Kind, r.Text, f)
			}
		}
		for _, st := range exp.Steps {
			if st.Tool != "" {
				if err := cat.ValidateArgs(st.Tool, st.Args); err != nil {
					t.Errorf("%s: step %s bound args %v: %v", r.Kind, st.ID, st.Args, err)
				}
			}
		}
	}
}

// Look-alike requests share entities but not plans.
func TestWorkloadLookAlikesNeedAnotherPlan(t *testing.T) {
	pairs := [][2]string{
		{"Stock check for SKU W-100 in the east warehouse", "Restock W-100 in the east warehouse"},
		{"Convert 100 USD to EUR", "Convert 100 kilometers to miles"},
		{"What's the weather in Oslo?", "What's the weather in Oslo tomorrow?"},
		{"Who is Kofi Mensah?", "Who is Kofi Mensah's manager?"},
		{"What is 15% of 240?", "What is 15% off 240?"},
		{"Track order ORD-12345", "Cancel order ORD-12345"},
		{"Summarize ticket T-4411", "Close ticket T-4411"},
		{"What's the weather in Oslo?", "Compare the weather in Oslo and Lima"},
	}
	for _, p := range pairs {
		a, okA := RecogniseWorkload(p[0])
		b, okB := RecogniseWorkload(p[1])
		if !okA || !okB {
			t.Errorf("not recognised: %q %v, %q %v", p[0], okA, p[1], okB)
			continue
		}
		if a.Kind == b.Kind || PlanJSON(a.Plan()) == PlanJSON(b.Plan()) {
			t.Errorf("%q and %q get the same type or plan", p[0], p[1])
		}
	}
}

// The router sends the hard types to the remote planner and keeps the
// ordinary ones local, by the request text alone; and a hard request
// leaves the machine unredacted, so the fake remote can read it.
func TestWorkloadHardTypesEscalate(t *testing.T) {
	known := localplanner.KnownWords(workloadCatalog(t).List())
	threshold := config.Default().Planner.Complexity.EscalateScore
	for _, r := range HardWorkload(60, 7) {
		if s := localplanner.ExtractFeatures(r.Text, known).Score(); s < threshold {
			t.Errorf("hard %s scores %.2f < %.2f: %q (%+v)", r.Kind, s, threshold, r.Text, localplanner.ExtractFeatures(r.Text, known))
		}
	}
	for _, r := range Workload(200, 7) {
		if s := localplanner.ExtractFeatures(r.Text, known).Score(); s >= threshold {
			t.Errorf("ordinary %s scores %.2f: %q", r.Kind, s, r.Text)
		}
	}
	red, err := fallback.NewRedactor(config.Default().Fallback.Privacy)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range HardWorkload(30, 7) {
		if got := red.NewSession().Redact(r.Text); got != r.Text {
			t.Errorf("redacted: %q -> %q", r.Text, got)
		}
	}
}

// The script plays the planner, the executor and the summarizer: the
// planner's reply is the request's plan, and an answer written from the
// correct results states every expected fact.
func TestWorkloadScriptPlansAndAnswers(t *testing.T) {
	s := WorkloadScript()
	for _, r := range append(Workload(64, 9), HardWorkload(6, 9)...) {
		reply, ok := s.Respond(&api.ChatRequest{Messages: []api.Message{
			{Role: "system", Content: markPlanner + ". Tools: ..."},
			{Role: "user", Content: r.Text},
		}})
		if !ok || reply.Content != PlanJSON(r.Plan()) {
			t.Fatalf("%q: planner reply %q", r.Text, reply.Content)
		}
		exp, err := r.Expect()
		if err != nil {
			t.Fatal(err)
		}
		// The step results as a correct run has them, rendered as the
		// summarizer's prompt renders them.
		var body strings.Builder
		for _, st := range exp.Steps {
			out := ""
			if st.Tool != "" {
				out, err = callWorkloadTool(st.Tool, st.Args)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				task := executorTask(t, r)
				rep, ok := s.Respond(&api.ChatRequest{Messages: []api.Message{
					{Role: "system", Content: "You carry out one step of a larger plan."},
					{Role: "user", Content: "Run state:\n\nTask: " + task},
				}})
				if !ok {
					t.Fatalf("%q: executor did not answer task %q", r.Text, task)
				}
				out = rep.Content
			}
			body.WriteString("[" + st.ID + "] " + out + "\n")
		}
		prompt := "Request: " + r.Text + "\nHow to answer: ...\nCompleted steps:\n" + body.String()
		reply, ok = s.Respond(&api.ChatRequest{Messages: []api.Message{
			{Role: "system", Content: markSummarizer + " to a user's request."},
			{Role: "user", Content: prompt},
		}})
		if !ok {
			t.Fatalf("%q: no summary", r.Text)
		}
		steps := make([]RunStep, 0, len(exp.Steps))
		for _, st := range exp.Steps {
			args, _ := json.Marshal(st.Args)
			if st.Tool == "" {
				args = nil
			}
			steps = append(steps, RunStep{ID: st.ID, Tool: st.Tool, Done: true, Args: args, Output: outputOf(body.String(), st.ID)})
		}
		if sc := exp.Score(steps, reply.Content, true); !sc.PlanOK || !sc.AnswerOK {
			t.Errorf("%q: answer %q scores %+v", r.Text, reply.Content, sc)
		}
	}
}

func executorTask(t *testing.T, r WorkloadRequest) string {
	t.Helper()
	p := r.Plan()
	results := map[string]json.RawMessage{}
	for _, st := range p.Steps {
		if st.Tool != "" {
			out, err := callWorkloadTool(st.Tool, st.Args)
			if err != nil {
				t.Fatal(err)
			}
			results[st.ID] = json.RawMessage(out)
		}
	}
	for _, st := range p.Steps {
		if st.Tool == "" {
			task, err := plan.BindText(st.Task, results)
			if err != nil {
				t.Fatal(err)
			}
			return task
		}
	}
	t.Fatalf("%s has no task step", r.Kind)
	return ""
}

func outputOf(body, id string) string {
	for _, l := range strings.Split(body, "\n") {
		if out, ok := strings.CutPrefix(l, "["+id+"] "); ok {
			return out
		}
	}
	return ""
}

// A run served another request's plan is caught: the step check sees the
// wrong arguments, and an answer written from the wrong results misses
// the facts.
func TestWorkloadScoreCatchesAWrongPlan(t *testing.T) {
	want, _ := RecogniseWorkload("Shipping quote for 120 kg from Rotterdam to Lagos")
	wrong, _ := RecogniseWorkload("Shipping quote for 120 kg from Lagos to Rotterdam")
	exp, err := want.Expect()
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"origin": "Lagos", "destination": "Rotterdam", "weight_kg": 120}
	out, err := callWorkloadTool("shipping_quote", args)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(args)
	k, _ := kindNamed(wrong.Kind)
	answer := k.answer(wrong.Entities, stepResults{"quote": out})
	sc := exp.Score([]RunStep{{ID: "quote", Tool: "shipping_quote", Done: true, Args: raw, Output: out}}, answer, true)
	if sc.PlanOK || sc.AnswerOK || sc.StepsOK != 0 || sc.StepsTotal != 2 {
		t.Errorf("a swapped route scores %+v (answer %q)", sc, answer)
	}
}

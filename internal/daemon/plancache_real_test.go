package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/ollamatest"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/plancache"
	"github.com/agentd/agentd/internal/run"
)

// TestRealPlanCache serves a request from a learned template against the
// real Ollama server: no planner call, the tool step computes the value,
// and the one model call left — the summarizer, on the real server —
// writes the reply. The random-weight model cannot write a usable plan,
// so the template is taught from a done run's outcome as the planner
// would have made it; everything after that goes through the public API.
func TestRealPlanCache(t *testing.T) {
	srv := ollamatest.Shared(t)
	a := startReal(t, srv, realConfig(t, srv.URL))
	ctx := context.Background()
	taught := &plan.Plan{Goal: "percentage", Answer: "Give the result.",
		Steps: []plan.Step{{ID: "calculate", Tool: "calc", Args: map[string]any{"expression": "2340 * 17 / 100"}}}}
	a.d.PlanCache.Ended(ctx, plancache.Outcome{RunID: "r_taught", Request: "What is 17% of 2,340?", Status: run.Done,
		Plan: taught, PlanVersion: 1, PlanSource: "local", Answer: "17% of 2,340 is 397.8 [calculate]",
		ToolOutputs: map[string]string{"calculate": `{"result": 397.8}`}})

	var list struct {
		Templates []struct {
			ID        string   `json:"id"`
			State     string   `json:"state"`
			Phrasings []string `json:"phrasings"`
		} `json:"templates"`
	}
	if code := a.call(http.MethodGet, "/api/v1/templates", nil, &list); code != http.StatusOK || len(list.Templates) != 1 {
		t.Fatalf("GET /api/v1/templates: %d %+v", code, list)
	}

	id := a.submit(map[string]any{"request": "What is 25% of 1,200?"})
	r := a.wait(id)
	if r.Status != run.Done {
		t.Fatalf("templated run: %s (%s)", r.Status, r.Error)
	}
	stored, err := a.d.Store.GetRun(ctx, id)
	must(t, err)
	if stored.Route != "cache" || stored.Template == nil || stored.Template.ID != list.Templates[0].ID {
		t.Fatalf("route %q template %+v: want the learned template", stored.Route, stored.Template)
	}
	calls, err := a.d.Store.RunModelCalls(ctx, id)
	must(t, err)
	if len(calls) != 1 || calls[0].Purpose != "synthesize" || calls[0].Error != "" {
		t.Fatalf("model calls %+v: want one summarizer call on the real server and no planner call", calls)
	}
	steps, err := a.d.Store.RunSteps(ctx, id)
	must(t, err)
	if len(steps) != 1 || !strings.Contains(steps[0].Output, "300") {
		t.Fatalf("steps %+v: want calc of 1200 * 25 / 100", steps)
	}
	// The real summarizer's words are noise: no answer pattern is
	// confirmed from them, so the next run asks the summarizer again.
	if tp, err := a.d.PlanCache.Get(list.Templates[0].ID); err != nil || tp.Workflow.AnswerPattern != "" || tp.Successes != 1 {
		t.Fatalf("template after the run: %+v %v", tp, err)
	}
}

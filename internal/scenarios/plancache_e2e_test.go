package scenarios_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/run"
)

// TestDaemonLearnsAPlanTemplate runs the plan cache through the real
// daemon (real SQLite, the simulator's planner): a request planned by the
// planner teaches a template; the next request with the same wording and
// other numbers is planned from it with no planner call; once a second
// run confirms the answer pattern, a request makes no model call at all;
// other wording and sensitive runs teach nothing new.
func TestDaemonLearnsAPlanTemplate(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	submit := func(req string, sensitive bool) (*run.Run, []string) {
		t.Helper()
		r, err := h.d.Engine.Submit(ctx, exec.SubmitRequest{Request: req, Source: "test", Sensitive: sensitive})
		if err != nil {
			t.Fatal(err)
		}
		got := h.wait(t, r.ID)
		calls, err := h.d.Store.RunModelCalls(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var purposes []string
		for _, c := range calls {
			purposes = append(purposes, c.Purpose)
		}
		if got.Status != run.Done {
			t.Fatalf("%q: %s (%s)", req, got.Status, got.Error)
		}
		return got, purposes
	}

	first, calls := submit("What is 17% of 2,340?", false)
	if first.Route == "cache" || !slices.Contains(calls, "plan") {
		t.Fatalf("first request: route %s, calls %v; want the planner", first.Route, calls)
	}
	if n := len(h.d.PlanCache.List()); n != 1 {
		t.Fatalf("%d templates after one done run, want 1", n)
	}

	second, calls := submit("What is 25% of 1,200?", false)
	if second.Route != "cache" || second.Template == nil || slices.Contains(calls, "plan") {
		t.Fatalf("second request: route %s, template %v, calls %v; want the learned template and no planner call", second.Route, second.Template, calls)
	}
	if !strings.Contains(second.Answer, "300") {
		t.Fatalf("answer %q, want 300", second.Answer)
	}
	if second.Template.Params["number"] != float64(1200) || second.Template.Params["number_2"] != float64(25) {
		t.Fatalf("params %v", second.Template.Params)
	}
	stored, err := h.d.Store.GetRun(ctx, second.ID)
	if err != nil || stored.Template == nil || stored.Template.ID != second.Template.ID {
		t.Fatalf("the stored run does not say which template planned it: %+v %v", stored.Template, err)
	}

	// Two runs with other values wrote the same answer: the pattern now
	// writes it, and the run makes no model call at all.
	third, calls := submit("What is 10% of 50?", false)
	if third.Route != "cache" || len(calls) != 0 {
		t.Fatalf("third request: route %s, calls %v; want no model call", third.Route, calls)
	}
	if !strings.Contains(third.Answer, "10% of 50 is 5") {
		t.Fatalf("answer from the pattern %q", third.Answer)
	}

	// Other wording goes to the planner; a sensitive run teaches nothing.
	other, calls := submit("what is 12 times 7", true)
	if other.Route == "cache" || !slices.Contains(calls, "plan") {
		t.Fatalf("other wording: route %s, calls %v", other.Route, calls)
	}
	if n := len(h.d.PlanCache.List()); n != 1 {
		t.Fatalf("%d templates: a sensitive run taught one", n)
	}
	if _, calls := submit("what is 12 times 7", false); !slices.Contains(calls, "plan") {
		t.Fatal("the sensitive run's request was planned from a template")
	}
	if n := len(h.d.PlanCache.List()); n != 2 {
		t.Fatalf("%d templates after the same request, not sensitive: want 2", n)
	}
}

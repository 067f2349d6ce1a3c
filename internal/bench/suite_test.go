package bench

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/scenarios"
)

// TestBenchSuiteTinyRun runs two scenarios in all three modes on a fast
// simulator and checks the table and the figures behind it.
func TestBenchSuiteTinyRun(t *testing.T) {
	var list []scenarios.Scenario
	for _, n := range []string{scenarios.NameOrder, scenarios.NameTemplate} {
		sc, _ := scenarios.Find(n)
		list = append(list, sc)
	}
	res, err := RunSuite(context.Background(), config.Default(), SuiteOptions{TimeScale: 0.01, Scenarios: list, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 6 {
		t.Fatalf("rows = %d, want 2 scenarios x 3 modes", len(res.Rows))
	}
	rows := map[string]modeRow{}
	for _, r := range res.Rows {
		rows[r.Scenario+"/"+r.Mode] = r
		if r.Status != "done" || r.Wall <= 0 || r.Calls == 0 || r.CostUSD <= 0 {
			t.Errorf("%s/%s: %+v", r.Scenario, r.Mode, r)
		}
		if r.Score.StepsOK != r.Score.StepsTotal || r.Score.FactsOK != r.Score.FactsTotal {
			t.Errorf("%s/%s score %+v", r.Scenario, r.Mode, r.Score)
		}
	}
	// Order: agentd routes (classify), plans and synthesizes, and its four
	// tool steps make no model call; sequential sends each step to the
	// model; ReAct takes a turn per tool and one to answer.
	if got := rows["order_processing/agentd"].Calls; got != 3 {
		t.Errorf("agentd model calls on the order = %d, want 3", got)
	}
	if got := rows["order_processing/sequential"].Calls; got != 6 {
		t.Errorf("sequential model calls on the order = %d, want 6 (plan, 4 steps, summary)", got)
	}
	if got := rows["order_processing/react"].Calls; got != 5 {
		t.Errorf("react model calls on the order = %d, want 5", got)
	}
	// The independent bound is computed before the run: it must be a
	// lower bound on what the run measured.
	for _, sc := range []string{"order_processing", "low_stock_template"} {
		if a := rows[sc+"/agentd"]; a.Bound <= 0 || a.Bound > a.Wall {
			t.Errorf("%s: independent bound %s for wall %s: not a lower bound", sc, a.Bound, a.Wall)
		}
	}
	var b bytes.Buffer
	res.Render(&b)
	out := b.String()
	for _, want := range []string{"scenario", "bound", "order_processing", "low_stock_template", "sequential", "react",
		"Targets:", "model calls agentd 3 vs ReAct 5 (40% fewer; target ≥50%: NOT met)", "gpt-4.1-mini"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderTargets renders fixed rows and checks the target arithmetic.
func TestRenderTargets(t *testing.T) {
	res := &SuiteResult{Backend: "test", PriceName: "m", Parallel: map[string]bool{"p": true}, Rows: []modeRow{
		{Scenario: "p", Mode: modeAgentd, Status: "done", Wall: 10 * time.Second, Bound: 9500 * time.Millisecond, Planning: 4 * time.Second, Calls: 4,
			Tokens: map[string]tokenCount{"a": {1500, 200}}, Score: scenarios.Score{StepsOK: 1, StepsTotal: 2, FactsOK: 2, FactsTotal: 2}},
		{Scenario: "p", Mode: modeSequential, Status: "done", Wall: 25 * time.Second, Planning: 4 * time.Second, Calls: 12},
		{Scenario: "p", Mode: modeReAct, Status: "done", Wall: 30 * time.Second, Calls: 10},
		{Scenario: "q", Mode: modeAgentd, Status: "done", Wall: time.Second, Bound: time.Second, Calls: 3},
		{Scenario: "q", Mode: modeSequential, Status: "done", Wall: 2 * time.Second, Calls: 4},
		{Scenario: "q", Mode: modeReAct, Status: "partial", Err: "no final answer", Wall: 30 * time.Second, Calls: 10},
	}}
	var b bytes.Buffer
	res.Render(&b)
	out := b.String()
	for _, want := range []string{
		"(+5.3%; target within 10%: met)",
		"sequential 25.00s / agentd 10.00s = 2.50x faster (target ≥2x: met); after the shared planner call (4.00s): 21.00s / 6.00s = 3.50x",
		"- p: model calls agentd 4 vs ReAct 10 (60% fewer; target ≥50%: met)",
		"- q: model calls: ReAct ended partial: a loss for ReAct; agentd's run counts (target ≥50% fewer: met)",
		"- all scenarios: model calls agentd 4 vs ReAct 10 where both runs count (60% fewer); scenarios where a run does not count: 1 (agentd's among them in 0, only ReAct's in 1) (target ≥50% fewer: met)",
		"- runs that count: agentd 2/2, sequential 2/2, react 1/2",
		"note: q/react ended partial: no final answer",
		"1.5k/200", "1/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderFailedRunWinsNothing: a run that did not end done, or ended
// done with a wrong answer, wins no comparison however few calls it made
// or however fast it failed; a baseline's failure is its loss. The first
// case is the report that printed "83% fewer model calls: met" for an
// agentd run that failed with 0/7 steps right.
func TestRenderFailedRunWinsNothing(t *testing.T) {
	wrong := scenarios.Score{StepsOK: 7, StepsTotal: 7, FactsOK: 2, FactsTotal: 6}
	right := scenarios.Score{StepsOK: 7, StepsTotal: 7, FactsOK: 6, FactsTotal: 6}
	failed := scenarios.Score{StepsOK: 0, StepsTotal: 7, FactsOK: 0, FactsTotal: 6}
	for _, tc := range []struct {
		name          string
		agentd, seq   modeRow
		react         modeRow
		want, notWant []string
	}{{
		name:   "agentd failed",
		agentd: modeRow{Status: "failed", Err: "plan: no valid plan", Wall: time.Second, Bound: time.Second, Calls: 1, Score: failed},
		seq:    modeRow{Status: "done", Wall: 20 * time.Second, Calls: 9, Score: right},
		react:  modeRow{Status: "done", Wall: 30 * time.Second, Calls: 6, Score: right},
		want: []string{
			"- runs that count: agentd 0/1, sequential 1/1, react 1/1",
			"- s: agentd ended failed: no wall-vs-bound figure (target within 10%: NOT met)",
			"- s (parallel steps): agentd ended failed: a loss, whatever it saved (target ≥2x faster: NOT met)",
			"- s: model calls: agentd ended failed: a loss, whatever it saved (target ≥50% fewer: NOT met)",
			"- all scenarios: no scenario where both runs count; scenarios where a run does not count: 1 (agentd's among them in 1, only ReAct's in 0) (target ≥50% fewer: NOT met)",
		},
		notWant: []string{": met", "83%", "20.00x"},
	}, {
		name:   "agentd done with a wrong answer",
		agentd: modeRow{Status: "done", Wall: time.Second, Bound: time.Second, Calls: 1, Score: wrong},
		seq:    modeRow{Status: "done", Wall: 20 * time.Second, Calls: 9, Score: right},
		react:  modeRow{Status: "done", Wall: 30 * time.Second, Calls: 6, Score: right},
		want: []string{
			"- s: agentd ended done but its answer holds 2 of 6 expected facts: no wall-vs-bound figure (target within 10%: NOT met)",
			"- s: model calls: agentd ended done but its answer holds 2 of 6 expected facts: a loss, whatever it saved (target ≥50% fewer: NOT met)",
		},
		notWant: []string{": met"},
	}, {
		name:   "both fail",
		agentd: modeRow{Status: "partial", Err: "step x failed", Wall: time.Second, Calls: 1, Score: failed},
		seq:    modeRow{Status: "error", Err: "ollama not reachable", Calls: 1, Score: failed},
		react:  modeRow{Status: "failed", Err: "no answer", Wall: time.Second, Calls: 3, Score: failed},
		want: []string{
			"- s (parallel steps): agentd ended partial and sequential ended error: both lose, agentd wins nothing (target ≥2x faster: NOT met)",
			"- s: model calls: agentd ended partial and ReAct ended failed: both lose, agentd wins nothing (target ≥50% fewer: NOT met)",
		},
		notWant: []string{": met"},
	}, {
		name:   "baselines fail, agentd right",
		agentd: modeRow{Status: "done", Wall: 10 * time.Second, Bound: 10 * time.Second, Calls: 5, Score: right},
		seq:    modeRow{Status: "partial", Err: "step x failed", Wall: 5 * time.Second, Calls: 4, Score: failed},
		react:  modeRow{Status: "done", Wall: 5 * time.Second, Calls: 4, Score: wrong},
		want: []string{
			"- s: agentd wall 10.00s vs independent bound 10.00s (+0.0%; target within 10%: met)",
			"- s (parallel steps): sequential ended partial: a loss for sequential; agentd's run counts (target ≥2x faster: met)",
			"- s: model calls: ReAct ended done but its answer holds 2 of 6 expected facts: a loss for ReAct; agentd's run counts (target ≥50% fewer: met)",
			"- all scenarios: no scenario where both runs count; scenarios where a run does not count: 1 (agentd's among them in 0, only ReAct's in 1) (target ≥50% fewer: met)",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.agentd.Scenario, tc.agentd.Mode = "s", modeAgentd
			tc.seq.Scenario, tc.seq.Mode = "s", modeSequential
			tc.react.Scenario, tc.react.Mode = "s", modeReAct
			res := &SuiteResult{Backend: "test", PriceName: "m", Parallel: map[string]bool{"s": true}, Rows: []modeRow{tc.agentd, tc.seq, tc.react}}
			var b bytes.Buffer
			res.Render(&b)
			out := b.String()
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			for _, bad := range tc.notWant {
				if strings.Contains(out, bad) {
					t.Errorf("output has %q", bad)
				}
			}
			if t.Failed() {
				t.Log(out)
			}
		})
	}
}

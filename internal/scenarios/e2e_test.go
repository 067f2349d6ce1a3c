package scenarios_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
)

// timeScale is small enough for a fast suite, large enough that parallel
// tool steps (1.2 s simulated, 24 ms here) visibly overlap.
const timeScale = 0.02

type harness struct {
	d      *daemon.Daemon
	sim    *ollamasim.Server
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sim := ollamasim.New(ollamasim.Config{Seed: 1, TimeScale: timeScale, NumParallel: 4, Script: scenarios.Script(),
		Logger: slog.New(slog.DiscardHandler)})
	url, err := sim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Storage.StateDir = t.TempDir()
	cfg.VRAM.Probe = "none"
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "sim", URL: url, ParallelSlots: 4, MaxQueue: 64}}
	cfg.Workflows = scenarios.Workflows()
	cfg.Executor.MaxConcurrentSteps = 10
	// These tests watch the DAG executor run independent steps at once, from
	// the steps' own start and finish times. Prefetching would do that work
	// while the plan streams and leave nothing to observe here; it has its
	// own test in internal/daemon.
	cfg.Executor.PrefetchTools = false
	cfg.Executor.RetryBackoff = config.Duration(10 * time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(ctx, cfg, daemon.Options{Listener: ln, GPUCapacity: 24 << 30, Demo: true,
		Tools: scenarios.Registry(scenarios.Options{TimeScale: timeScale}), Closers: []func(){func() { sim.Close() }}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{d: d, sim: sim, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("daemon Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return h
}

func (h *harness) submit(t *testing.T, sc scenarios.Scenario) string {
	t.Helper()
	r, err := h.d.Engine.Submit(context.Background(), exec.SubmitRequest{Request: sc.Request, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func (h *harness) wait(t *testing.T, id string) *run.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := h.d.Engine.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for run %s: %v", id, err)
	}
	return r
}

// waitApproval waits until the step asks for approval.
func (h *harness) waitApproval(t *testing.T, id, step string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		steps, err := h.d.Store.RunSteps(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if s.StepID == step && s.Status == run.StepWaitingApproval {
				r, err := h.d.Store.GetRun(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != run.WaitingApproval {
					t.Errorf("run status while %s waits = %s, want %s", step, r.Status, run.WaitingApproval)
				}
				return
			}
		}
		if r, err := h.d.Store.GetRun(context.Background(), id); err == nil && r.Status.Terminal() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	steps, _ := h.d.Store.RunSteps(context.Background(), id)
	r, _ := h.d.Store.GetRun(context.Background(), id)
	for _, s := range steps {
		t.Logf("step %s %s %s out=%.200s", s.StepID, s.Status, s.Error, s.Output)
	}
	t.Fatalf("step %s of run %s never waited for approval (run %s: %s)", step, id, r.Status, r.Error)
}

func outputs(t *testing.T, h *harness, id string) ([]*run.Step, []scenarios.StepOutput, []db.ModelCall) {
	t.Helper()
	steps, err := h.d.Store.RunSteps(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var outs []scenarios.StepOutput
	for _, s := range steps {
		if s.Status == run.StepDone {
			outs = append(outs, scenarios.StepOutput{ID: s.StepID, Tool: s.Tool, Output: s.Output})
		}
	}
	calls, err := h.d.Store.RunModelCalls(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return steps, outs, calls
}

// TestScenariosEndToEnd runs every scenario through the real daemon on the
// simulator and checks its expected results.
func TestScenariosEndToEnd(t *testing.T) {
	h := start(t)
	if !statusDemo(t, h) {
		t.Error("status.demo is false with Options.Demo set")
	}
	for _, sc := range scenarios.All() {
		t.Run(sc.Name, func(t *testing.T) {
			id := h.submit(t, sc)
			if sc.Expect.Approval != "" {
				h.waitApproval(t, id, sc.Expect.Approval)
				if err := h.d.Engine.Approve(context.Background(), id, sc.Expect.Approval, "tester", "looks right"); err != nil {
					t.Fatal(err)
				}
			}
			r := h.wait(t, id)
			if r.Status != run.Done {
				t.Fatalf("run ended %s: %s\nanswer: %s", r.Status, r.Error, r.Answer)
			}
			steps, outs, calls := outputs(t, h, id)
			score := sc.Score(outs, r.Answer, false)
			if score.StepsOK != score.StepsTotal || score.FactsOK != score.FactsTotal {
				t.Errorf("score %d/%d steps, %d/%d facts; missing %v\nanswer: %s", score.StepsOK, score.StepsTotal,
					score.FactsOK, score.FactsTotal, score.Missing, r.Answer)
			}
			byID := map[string]*run.Step{}
			for _, s := range steps {
				byID[s.StepID] = s
			}
			// Tool steps make no model call; task steps do.
			perStep := map[string]int{}
			purposes := map[string]int{}
			for _, c := range calls {
				purposes[c.Purpose]++
				if c.StepID != "" {
					perStep[c.StepID]++
				}
			}
			for _, s := range steps {
				if s.Status != run.StepDone {
					continue
				}
				if s.Kind == "tool" && perStep[s.StepID] != 0 {
					t.Errorf("tool step %s made %d model calls", s.StepID, perStep[s.StepID])
				}
				if s.Kind == "task" && perStep[s.StepID] == 0 {
					t.Errorf("task step %s made no model call", s.StepID)
				}
			}
			if got, _ := h.d.Store.GetRun(context.Background(), id); got == nil || got.Workflow != sc.Workflow {
				t.Errorf("run's workflow = %+v, want %q (the router's match is recorded on the run)", got, sc.Workflow)
			}
			if sc.Workflow != "" && purposes["plan"] != 0 {
				t.Errorf("workflow scenario made %d planner calls, want none", purposes["plan"])
			}
			if sc.Workflow == "" && purposes["plan"] != 1 {
				t.Errorf("planner calls = %d, want 1 (calls by purpose %v)", purposes["plan"], purposes)
			}
			if purposes["replan"] != sc.Expect.Replans {
				t.Errorf("replans = %d, want %d", purposes["replan"], sc.Expect.Replans)
			}
			for _, group := range sc.Expect.Parallel {
				checkOverlap(t, byID, group)
			}
			for step, sch := range sc.Expect.OutputSchema {
				s := byID[step]
				if s == nil {
					t.Fatalf("no step %s", step)
				}
				checkSchema(t, step, sch, s.Output)
			}
		})
	}
}

// statusDemo reads status.demo over the HTTP API, with the token.
func statusDemo(t *testing.T, h *harness) bool {
	t.Helper()
	tok, err := api.LoadOrCreateToken(h.d.Paths().TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+h.d.Addr().String()+"/api/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Demo bool `json:"demo"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %v", resp.StatusCode, err)
	}
	return st.Demo
}

// checkOverlap asserts the steps ran at the same time: every one started
// before any of them finished.
func checkOverlap(t *testing.T, byID map[string]*run.Step, group []string) {
	t.Helper()
	var lastStart, firstEnd time.Time
	for _, id := range group {
		s := byID[id]
		if s == nil || s.StartedAt == nil || s.FinishedAt == nil {
			t.Fatalf("step %s has no start and finish times: %+v", id, s)
		}
		if s.StartedAt.After(lastStart) {
			lastStart = *s.StartedAt
		}
		if firstEnd.IsZero() || s.FinishedAt.Before(firstEnd) {
			firstEnd = *s.FinishedAt
		}
	}
	if !lastStart.Before(firstEnd) {
		t.Errorf("steps %v did not overlap: last start %s, first finish %s", group, lastStart.Format(time.StampMicro), firstEnd.Format(time.StampMicro))
	}
}

func checkSchema(t *testing.T, step string, schema json.RawMessage, output string) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(schema)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem://schema.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(output))
	if err != nil {
		t.Fatalf("step %s output is not JSON: %v\n%s", step, err, output)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("step %s output does not match its schema: %v\n%s", step, err, output)
	}
}

// TestOrderDenied: a denied confirm_order never runs, and the run ends
// partial with the reason.
func TestOrderDenied(t *testing.T) {
	h := start(t)
	sc, _ := scenarios.Find(scenarios.NameOrder)
	id := h.submit(t, sc)
	h.waitApproval(t, id, "confirm")
	if err := h.d.Engine.Deny(context.Background(), id, "confirm", "tester", "customer cancelled by phone"); err != nil {
		t.Fatal(err)
	}
	r := h.wait(t, id)
	if r.Status != run.Partial {
		t.Fatalf("status = %s, want partial (error %q)", r.Status, r.Error)
	}
	if !strings.Contains(r.Error, "customer cancelled by phone") || !strings.Contains(r.Answer, "customer cancelled by phone") {
		t.Errorf("the denial reason is missing: error %q, answer %q", r.Error, r.Answer)
	}
	steps, _, calls := outputs(t, h, id)
	for _, s := range steps {
		if s.StepID == "confirm" && s.Status == run.StepDone {
			t.Error("confirm ran although it was denied")
		}
	}
	for _, c := range calls {
		if c.Purpose == "replan" {
			t.Errorf("a denial was planned around: %s call to %s", c.Purpose, c.Model)
		}
	}
}

// A newcomer's own requests, not scripted scenarios, get a sensible plan
// and a right answer in the demo: arithmetic through calc, the time
// through now, anything else through a task step that says it is simulated.
func TestDemoAnswersOpenRequests(t *testing.T) {
	h := start(t)
	for _, c := range []struct{ request, want string }{
		{"What is 17% of 2,340?", "397.8"},
		{"hi there", "simulated model"},
		{"What day is it today?", time.Now().UTC().Weekday().String()},
		{"what is 12 times 7", "84"},
	} {
		r, err := h.d.Engine.Submit(context.Background(), exec.SubmitRequest{Request: c.request, Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		got := h.wait(t, r.ID)
		if got.Status != run.Done || !strings.Contains(got.Answer, c.want) {
			t.Errorf("%q: run %s, answer %q; want done with %q (error %q)", c.request, got.Status, got.Answer, c.want, got.Error)
		}
	}
}

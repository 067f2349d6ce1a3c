package exec

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// crashState writes a run as a crash leaves it: some steps done, some
// running (with and without a started tool call), some waiting approval.
func crashState(t *testing.T, h *harness, runID string, steps []*run.Step, specs []plan.Step) {
	t.Helper()
	ctx := context.Background()
	if err := h.store.InsertRun(ctx, &run.Run{ID: runID, Status: run.Running, Request: "resume me", Planner: "auto", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		st.RunID, st.PlanVersion = runID, 1
		st.Spec, _ = json.Marshal(specs[i])
		st.Kind, st.Tool, st.DependsOn = specs[i].Kind(), specs[i].Tool, specs[i].DependsOn
	}
	raw, _ := json.Marshal(plan.Plan{Goal: "g", Steps: specs, Answer: "combine"})
	if err := h.store.SavePlan(ctx, runID, 1, "local", "planner", raw, 1, nil, steps); err != nil {
		t.Fatal(err)
	}
}

func TestResumeAfterCrash(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	done := h.tools.add(&fakeTool{name: "done_tool", idempotent: true})
	idemB := h.tools.add(&fakeTool{name: "idem_b", idempotent: true})
	idemD := h.tools.add(&fakeTool{name: "idem_d", idempotent: true})
	pay := h.tools.add(&fakeTool{name: "pay", idempotent: false})
	payE := h.tools.add(&fakeTool{name: "pay_e", idempotent: false})
	payF := h.tools.add(&fakeTool{name: "pay_f", idempotent: false})
	gated := h.tools.add(&fakeTool{name: "gated", idempotent: true, approval: true})
	gated2 := h.tools.add(&fakeTool{name: "gated2", idempotent: true, approval: true})

	specs := []plan.Step{
		{ID: "a", Tool: "done_tool"},
		{ID: "b", Tool: "idem_b"},
		{ID: "c", Tool: "pay"},
		{ID: "d", Tool: "idem_d", DependsOn: []string{"a"}, Args: map[string]any{"x": "${a}"}},
		{ID: "e", Tool: "pay_e"},
		{ID: "f", Tool: "pay_f"},
		{ID: "g", Tool: "gated"},
		{ID: "w", Tool: "gated2"},
	}
	now := time.Now()
	steps := []*run.Step{
		{StepID: "a", Status: run.StepDone, Output: "A-result", Attempts: 1, Idempotent: true, StartedAt: &now, FinishedAt: &now},
		{StepID: "b", Status: run.StepRunning, Attempts: 1, Idempotent: true, StartedAt: &now},
		{StepID: "c", Status: run.StepRunning, Attempts: 1, Idempotent: false, StartedAt: &now},
		{StepID: "d", Status: run.StepPending, Idempotent: true},
		{StepID: "e", Status: run.StepRunning, Attempts: 1, Idempotent: false, StartedAt: &now},
		{StepID: "f", Status: run.StepRunning, Attempts: 1, Idempotent: false, StartedAt: &now},
		{StepID: "g", Status: run.StepWaitingApproval, Idempotent: true},
		{StepID: "w", Status: run.StepWaitingApproval, Idempotent: true},
	}
	crashState(t, h, "crashed", steps, specs)
	// c: the payment call started and never finished.
	if _, err := h.store.BeginToolCall(ctx, steps[2], "pay", []byte(`{}`), "h"); err != nil {
		t.Fatal(err)
	}
	// f: the call finished ok; the crash came before the step was written.
	id, _ := h.store.BeginToolCall(ctx, steps[5], "pay_f", []byte(`{}`), "h")
	if err := h.store.FinishToolCall(ctx, id, "ok", "paid 10", "", nil); err != nil {
		t.Fatal(err)
	}
	// g's approval expired while the daemon was down; w's still waits.
	if _, _, _, _, err := h.store.RequestApproval(ctx, "crashed", "g", "gated", nil, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := h.store.RequestApproval(ctx, "crashed", "w", "gated2", nil, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A queued run is admitted again.
	if err := h.store.InsertRun(ctx, &run.Run{ID: "waiting", Status: run.Queued, Request: "later", Planner: "auto", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	later := h.tools.add(&fakeTool{name: "later", idempotent: true})
	h.planner.plan = onePlan(plan.Step{ID: "l", Tool: "later"})

	eng := h.start()
	if q := h.wait("waiting"); q.Status != run.Done || later.calls.Load() != 1 {
		t.Errorf("queued run: %s, calls %d", q.Status, later.calls.Load())
	}
	waitFor(t, "w waiting again", func() bool { return h.runStatus("crashed") == run.WaitingApproval })
	if err := eng.Approve(ctx, "crashed", "w", "carol", "after restart"); err != nil {
		t.Fatal(err)
	}
	r := h.wait("crashed")
	got := h.steps("crashed")

	if done.calls.Load() != 0 || got["a"].Output != "A-result" || got["a"].Attempts != 1 {
		t.Errorf("done step touched: calls %d %+v", done.calls.Load(), got["a"])
	}
	if idemB.calls.Load() != 1 || got["b"].Status != run.StepDone {
		t.Errorf("idempotent step b: calls %d status %s", idemB.calls.Load(), got["b"].Status)
	}
	if pay.calls.Load() != 0 || got["c"].Status != run.StepReview {
		t.Errorf("non-idempotent step c: calls %d status %s", pay.calls.Load(), got["c"].Status)
	}
	if n := h.count(`SELECT count(*) FROM review_items WHERE run_id = 'crashed' AND step_id = 'c'`); n != 1 {
		t.Errorf("review items for c: %d", n)
	}
	if idemD.calls.Load() != 1 || idemD.args[0]["x"] != "A-result" {
		t.Errorf("d: calls %d args %v", idemD.calls.Load(), idemD.args)
	}
	if payE.calls.Load() != 1 || got["e"].Status != run.StepDone {
		t.Errorf("e (never called before the crash): calls %d status %s", payE.calls.Load(), got["e"].Status)
	}
	if payF.calls.Load() != 0 || got["f"].Status != run.StepDone || got["f"].Output != "paid 10" {
		t.Errorf("f: calls %d %+v", payF.calls.Load(), got["f"])
	}
	if gated.calls.Load() != 0 || got["g"].Status != run.StepFailed || !strings.HasPrefix(got["g"].Error, "denied by timeout") {
		t.Errorf("g: calls %d %s %q", gated.calls.Load(), got["g"].Status, got["g"].Error)
	}
	if gated2.calls.Load() != 1 || got["w"].Status != run.StepDone {
		t.Errorf("w: calls %d %s", gated2.calls.Load(), got["w"].Status)
	}
	if r.Status != run.Review {
		t.Errorf("run status %s (%s)", r.Status, r.Error)
	}
	// c's call the crash cut off is closed as interrupted, with a finish time.
	if n := h.count(`SELECT count(*) FROM tool_calls WHERE run_id = 'crashed' AND status = 'started'`); n != 0 {
		t.Errorf("%d tool calls still 'started' after the resume", n)
	}
	if n := h.count(`SELECT count(*) FROM tool_calls WHERE run_id = 'crashed' AND step_id = 'c' AND status = 'interrupted' AND finished_at IS NOT NULL`); n != 1 {
		t.Errorf("c's cut-off call: %d rows interrupted with a finish time, want 1", n)
	}
}

// A graceful stop leaves a running step for the next start, which runs an
// idempotent step once more and finishes the run.
func TestShutdownThenResume(t *testing.T) {
	h := newHarness(t)
	started := make(chan struct{}, 1)
	first := true
	slow := h.tools.add(&fakeTool{name: "slow", idempotent: true, fn: func(ctx context.Context, _ map[string]any) (ToolResult, error) {
		if first {
			first = false
			started <- struct{}{}
			<-ctx.Done()
			return ToolResult{}, ctx.Err()
		}
		return ToolResult{Output: "done"}, nil
	}})
	h.planner.plan = onePlan(plan.Step{ID: "s", Tool: "slow"})
	h.start()
	r := h.submit("x")
	<-started
	h.shutdown()
	if st := h.runStatus(r.ID); st != run.Running {
		t.Fatalf("after shutdown the run is %s, want running (left for resume)", st)
	}
	// The call the shutdown cut off is closed, not left 'started' forever.
	if n := h.count(`SELECT count(*) FROM tool_calls WHERE run_id = '` + r.ID + `' AND status = 'interrupted' AND finished_at IS NOT NULL`); n != 1 {
		t.Errorf("after shutdown: %d interrupted tool calls with a finish time, want 1", n)
	}
	h.start()
	got := h.wait(r.ID)
	if got.Status != run.Done || slow.calls.Load() != 2 {
		t.Errorf("status %s calls %d", got.Status, slow.calls.Load())
	}
}

package exec

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

func onePlan(steps ...plan.Step) func(PlanRequest) (PlanResult, error) {
	return staticPlan(&plan.Plan{Goal: "g", Steps: steps, Answer: "combine"})
}

func TestLadderTransientRetry(t *testing.T) {
	h := newHarness(t)
	var n atomic.Int32
	h.tools.add(&fakeTool{name: "flaky", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		if n.Add(1) <= 2 {
			return ToolResult{}, errTransient
		}
		return ToolResult{Output: "fine"}, nil
	}})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "flaky"})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	if got := rungs(h.attempts(r.ID), "a"); got != "first:failed:transient retry:failed:transient retry:ok: " {
		t.Errorf("rungs = %q", got)
	}
	if r.ErrorCount != 2 {
		t.Errorf("error_count = %d", r.ErrorCount)
	}
}

func TestLadderTransientGivesUpAfterMaxRetries(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxRetries = 1
	h.cfg.Executor.MaxReplans = 0
	h.tools.add(&fakeTool{name: "down", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{}, errTransient
	}})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "down"})
	h.start()
	r := h.wait(h.submit("x").ID)
	as := h.attempts(r.ID)
	if got := rungs(as, "a"); !strings.HasPrefix(got, "first:failed:transient retry:failed:transient replan_remote:failed") {
		t.Errorf("rungs = %q", got)
	}
	if r.Status != run.Review {
		t.Errorf("status %s", r.Status)
	}
}

// A task step whose output fails its schema is regenerated once with the
// error in context.
func TestLadderRegenerateInvalidOutput(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "execute" {
			return ChatResponse{Content: "n is 3 [count]"}, nil
		}
		if calls.Add(1) == 1 {
			return ChatResponse{Content: `{"n":"three"}`}, nil
		}
		last := req.Messages[len(req.Messages)-1].Content
		if !strings.Contains(last, "rejected") || !strings.Contains(last, "schema") {
			t.Errorf("regenerate lacks the error: %q", last)
		}
		return ChatResponse{Content: `{"n":3}`}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "count", Task: "count things",
		Output: []byte(`{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}`)})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done || h.steps(r.ID)["count"].Output != `{"n":3}` {
		t.Fatalf("status %s (%s) output %q", r.Status, r.Error, h.steps(r.ID)["count"].Output)
	}
	if got := rungs(h.attempts(r.ID), "count"); got != "first:failed:bad_output regenerate:ok: " {
		t.Errorf("rungs = %q", got)
	}
	if f := h.chat.requests("execute")[0].Format; string(f) == "" {
		t.Error("a step with an output schema must be schema-constrained")
	}
}

// A logic failure is replanned locally with the completed results; the
// failed step is superseded and the run completes.
func TestLadderLocalReplan(t *testing.T) {
	h := newHarness(t)
	h.tools.add(&fakeTool{name: "ok", idempotent: true})
	broken := h.tools.add(&fakeTool{name: "broken", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: "stack trace"}, errors.New("exit status 2")
	}})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "ok"}, plan.Step{ID: "b", Tool: "broken", DependsOn: []string{"a"}})
	h.planner.replan = func(req ReplanRequest) (PlanResult, error) {
		if req.Remote || req.Completed["a"] == "" || len(req.Failed) != 1 || req.Failed[0].ID != "b" {
			t.Errorf("replan request %+v", req)
		}
		return PlanResult{Plan: &plan.Plan{Goal: "g", Answer: "combine", Steps: []plan.Step{
			{ID: "b2", Tool: "ok", Args: map[string]any{"from": "${a}"}, DependsOn: []string{"a"}}}}}, nil
	}
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	steps := h.steps(r.ID)
	if steps["b"].Status != run.StepSkipped || !strings.Contains(steps["b"].Error, "superseded by plan v2") ||
		steps["b2"].Status != run.StepDone || steps["a"].Attempts != 1 {
		t.Errorf("steps a=%+v b=%+v b2=%+v", steps["a"], steps["b"], steps["b2"])
	}
	if got := rungs(h.attempts(r.ID), "b"); got != "first:failed:tool_error replan_local:ok:replan_local " {
		t.Errorf("rungs = %q", got)
	}
	if broken.calls.Load() != 1 || h.count(`SELECT count(*) FROM plans WHERE run_id = ?`, r.ID) != 2 {
		t.Errorf("broken calls %d", broken.calls.Load())
	}
}

// When local replans are spent, the remote rung is asked once.
func TestLadderRemoteReplan(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxReplans = 1
	h.tools.add(&fakeTool{name: "ok", idempotent: true})
	h.tools.add(&fakeTool{name: "broken", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{}, errors.New("no such file")
	}})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "broken"})
	h.planner.replan = func(req ReplanRequest) (PlanResult, error) {
		if !req.Remote {
			return PlanResult{}, errors.New("local planner produced an invalid plan")
		}
		return PlanResult{Source: "replan_remote", Plan: &plan.Plan{Goal: "g", Steps: []plan.Step{{ID: "a2", Tool: "ok"}}}}, nil
	}
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	reqs := h.planner.replanRequests()
	if len(reqs) != 2 || reqs[0].Remote || !reqs[1].Remote {
		t.Errorf("replan requests %+v", reqs)
	}
	if got := rungs(h.attempts(r.ID), "a"); got != "first:failed:tool_error replan_local:failed:replan_local replan_remote:ok:replan_remote " {
		t.Errorf("rungs = %q", got)
	}
}

// With every replan refused the step goes to human review, and the run
// ends with a partial answer that says what failed.
func TestLadderHumanReviewAndPartialAnswer(t *testing.T) {
	h := newHarness(t)
	h.tools.add(&fakeTool{name: "ok", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: "42"}, nil
	}})
	h.tools.add(&fakeTool{name: "broken", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{}, errors.New("permission denied")
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) { return ChatResponse{}, errors.New("summarizer down") }
	h.planner.plan = onePlan(plan.Step{ID: "good", Tool: "ok"}, plan.Step{ID: "bad", Tool: "broken"},
		plan.Step{ID: "after_bad", Tool: "ok", DependsOn: []string{"bad"}})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Review {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	if n := h.count(`SELECT count(*) FROM review_items WHERE run_id = ? AND step_id = 'bad'`, r.ID); n != 1 {
		t.Errorf("review items = %d", n)
	}
	steps := h.steps(r.ID)
	if steps["bad"].Status != run.StepReview || steps["after_bad"].Status != run.StepSkipped {
		t.Errorf("bad %s after_bad %s", steps["bad"].Status, steps["after_bad"].Status)
	}
	for _, want := range []string{"[good] 42", "Incomplete", "[bad] review: tool broken: permission denied", "[after_bad] skipped"} {
		if !strings.Contains(r.Answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, r.Answer)
		}
	}
	if got := rungs(h.attempts(r.ID), "bad"); !strings.HasSuffix(got, "replan_remote:failed:replan_remote review:failed:review ") {
		t.Errorf("rungs = %q", got)
	}
}

// max_errors stops the run: what finished becomes a partial answer.
func TestMaxErrorsStopsWithPartial(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxErrors = 2
	h.cfg.Executor.MaxRetries = 5
	h.tools.add(&fakeTool{name: "ok", idempotent: true})
	h.tools.add(&fakeTool{name: "down", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{}, errTransient
	}})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "ok"}, plan.Step{ID: "b", Tool: "down", DependsOn: []string{"a"}},
		plan.Step{ID: "c", Tool: "ok", DependsOn: []string{"b"}})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Partial || !strings.Contains(r.Error, "max_errors 2") || r.ErrorCount != 2 {
		t.Fatalf("status %s error %q count %d", r.Status, r.Error, r.ErrorCount)
	}
	if len(h.planner.replanRequests()) != 0 {
		t.Error("a stopped run must not replan")
	}
	if !strings.Contains(r.Answer, "run stopped: max_errors 2 reached") {
		t.Errorf("answer %q", r.Answer)
	}
}

// A model that repeats the same call is stopped at max_repeat_calls.
func TestRepeatedCallDetection(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxRepeatCalls = 2
	h.cfg.Executor.MaxReplans = 0
	h.cfg.MaxTurns = 10
	search := h.tools.add(&fakeTool{name: "search", idempotent: true})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "execute" {
			return ChatResponse{Content: "x"}, nil
		}
		return ChatResponse{ToolCalls: []ToolCall{{Name: "search", Arguments: map[string]any{"q": "same", "n": 1.0}}}}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "loop", Task: "find it", Tools: []string{"search"}})
	h.start()
	r := h.wait(h.submit("x").ID)
	if search.calls.Load() != 2 {
		t.Errorf("search called %d times, want 2", search.calls.Load())
	}
	as := h.attempts(r.ID)
	if len(as) == 0 || as[0].class != ClassRepeat || !strings.Contains(as[0].err, "already made 2 times") {
		t.Errorf("attempts %+v", as)
	}
	if r.Status == run.Done {
		t.Errorf("status %s", r.Status)
	}
}

// A tool that panics fails its step (and the ladder goes on); the daemon
// lives.
func TestPanickingToolFailsStep(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxReplans = 0
	h.tools.add(&fakeTool{name: "boom", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		panic("nil map")
	}})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "boom"})
	h.start()
	r := h.wait(h.submit("x").ID)
	if st := h.steps(r.ID)["a"]; st.Status != run.StepReview || !strings.Contains(st.Error, "step panicked: nil map") {
		t.Errorf("step %s %q", st.Status, st.Error)
	}
}

// A reply the server broke off (or cut at its bound) is bad output: the
// step regenerates once, recorded as a rung, with other sampling and twice
// the room; asking the same way again would get the same reply. Every call
// carries an output bound.
func TestLadderRegeneratesBrokenOffReply(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.NumPredict <= 0 {
			t.Errorf("%s call without an output bound", req.Purpose)
		}
		if req.Purpose != "execute" {
			return ChatResponse{Content: "done [s]"}, nil
		}
		if calls.Add(1) == 1 {
			return ChatResponse{}, errBrokeOff
		}
		return ChatResponse{Content: "fine"}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "s", Task: "say something"})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	if got := rungs(h.attempts(r.ID), "s"); got != "first:failed:bad_output regenerate:ok: " {
		t.Errorf("rungs = %q", got)
	}
	reqs := h.chat.requests("execute")
	if len(reqs) != 2 {
		t.Fatalf("%d execute calls, want 2", len(reqs))
	}
	if reqs[0].Regeneration != 0 || reqs[1].Regeneration != 1 || reqs[1].NumPredict != 2*reqs[0].NumPredict {
		t.Errorf("regeneration %d/%d, num_predict %d then %d: want other sampling and twice the room",
			reqs[0].Regeneration, reqs[1].Regeneration, reqs[0].NumPredict, reqs[1].NumPredict)
	}
}

// Broken off again after the one regeneration: the step fails with the
// reason, no third call.
func TestLadderBrokenOffTwiceFails(t *testing.T) {
	h := newHarness(t)
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "execute" {
			return ChatResponse{Content: "nothing"}, nil
		}
		return ChatResponse{}, errBrokeOff
	}
	h.planner.plan = onePlan(plan.Step{ID: "s", Task: "say something"})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status == run.Done {
		t.Fatalf("status %s, want the run not done", r.Status)
	}
	if n := len(h.chat.requests("execute")); n != 2 {
		t.Errorf("%d execute calls, want 2 (first and one regeneration)", n)
	}
	if st := h.steps(r.ID)["s"]; !strings.Contains(st.Error, "broke off") {
		t.Errorf("step error %q does not give the reason", st.Error)
	}
}

// A model that is not pulled stops the run with what to pull: a replan
// onto another model would hide the configuration error.
func TestLadderMissingModelStopsWithoutReplan(t *testing.T) {
	h := newHarness(t)
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose == "execute" {
			return ChatResponse{}, errMissing
		}
		return ChatResponse{Content: "summary"}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "s", Task: "say something"})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status == run.Done {
		t.Fatalf("status %s, want the run not done", r.Status)
	}
	if n := len(h.planner.replanRequests()); n != 0 {
		t.Errorf("%d replans around a missing model, want none", n)
	}
	if !strings.Contains(r.Error+r.Answer, "ollama pull x") {
		t.Errorf("run ended %s with %q / %q: the reason should say what to pull", r.Status, r.Error, r.Answer)
	}
	if n := len(h.chat.requests("execute")); n != 1 {
		t.Errorf("%d execute calls, want 1: asking again cannot make a model appear", n)
	}
}

// An async run the planner defers waits as "deferred" (not failed, not
// ended) in the deferred queue, and Resubmit runs it under the same id.
func TestDeferredRunResumesUnderItsOwnID(t *testing.T) {
	h := newHarness(t)
	deferred := make(chan string, 1)
	var calls int
	h.planner.plan = func(req PlanRequest) (PlanResult, error) {
		calls++
		if calls == 1 {
			if !req.Async {
				t.Errorf("the planner was not told the run is async")
			}
			return PlanResult{}, &DeferError{Reason: "the link is offline"}
		}
		if req.Planner != "local" {
			t.Errorf("an expired deferral resubmitted with planner %q, want local", req.Planner)
		}
		return onePlan(plan.Step{ID: "a", Task: "say hi"})(req)
	}
	h.eng = New(h.cfg, func() Deps {
		d := h.deps()
		d.Defer = func(_ context.Context, runID string, _ *time.Time, reason string) error {
			deferred <- runID + ": " + reason
			return nil
		}
		return d
	}())
	h.start2()
	r, err := h.eng.Submit(t.Context(), SubmitRequest{Request: "x", Async: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-deferred:
		if got != r.ID+": the link is offline" {
			t.Fatalf("deferred queue got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run was not deferred")
	}
	if got, _ := h.store.GetRun(t.Context(), r.ID); got.Status != run.Deferred {
		t.Fatalf("run is %s, want deferred", got.Status)
	}
	if err := h.eng.Resubmit(t.Context(), r.ID, "local"); err != nil {
		t.Fatal(err)
	}
	if got := h.wait(r.ID); got.Status != run.Done || got.ID != r.ID {
		t.Fatalf("resubmitted run %s ended %s (%s)", got.ID, got.Status, got.Error)
	}
	if err := h.eng.Resubmit(t.Context(), r.ID, ""); err == nil {
		t.Error("a run that is not deferred was resubmitted")
	}
}

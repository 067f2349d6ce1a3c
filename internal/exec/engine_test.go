package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

func TestSubmitCommitsBeforeAck(t *testing.T) {
	h := newHarness(t)
	h.eng = New(h.cfg, h.deps())
	r := h.submit("hello")
	stored, err := h.store.GetRun(context.Background(), r.ID)
	if err != nil || stored.Status != run.Queued || stored.Request != "hello" {
		t.Fatalf("stored %+v, %v", stored, err)
	}
}

func TestQueueFull(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.QueueSize = 2
	h.eng = New(h.cfg, h.deps()) // not running: nothing leaves the queue
	h.submit("1")
	h.submit("2")
	if _, err := h.eng.Submit(context.Background(), SubmitRequest{Request: "3"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third submit: %v, want ErrQueueFull", err)
	}
	if n := h.count(`SELECT count(*) FROM runs`); n != 2 {
		t.Errorf("runs stored %d", n)
	}
}

// Higher priority runs are admitted first.
func TestPriorityOrder(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxConcurrentRuns = 1
	var mu sync.Mutex
	var order []string
	h.tools.add(&fakeTool{name: "t", idempotent: true, fn: func(_ context.Context, args map[string]any) (ToolResult, error) {
		mu.Lock()
		order = append(order, args["req"].(string))
		mu.Unlock()
		return ToolResult{Output: "ok"}, nil
	}})
	h.planner.plan = func(req PlanRequest) (PlanResult, error) {
		return PlanResult{Plan: &plan.Plan{Steps: []plan.Step{{ID: "a", Tool: "t", Args: map[string]any{"req": req.Request}}}}}, nil
	}
	h.eng = New(h.cfg, h.deps())
	var ids []string
	for i, p := range []int{0, 5, 1} {
		r, err := h.eng.Submit(context.Background(), SubmitRequest{Request: fmt.Sprint("p", p), Priority: p})
		if err != nil {
			t.Fatal(err, i)
		}
		ids = append(ids, r.ID)
	}
	h.start2()
	for _, id := range ids {
		h.wait(id)
	}
	if fmt.Sprint(order) != "[p5 p1 p0]" {
		t.Errorf("order %v", order)
	}
}

// Many concurrent runs with an instant model complete without error.
func TestManyConcurrentRuns(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	h := newHarness(t)
	h.cfg.Executor.MaxConcurrentRuns = 64
	h.cfg.Executor.QueueSize = n
	h.tools.add(&fakeTool{name: "t", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: "1"}, nil
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		return ChatResponse{Content: "fine [a]"}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "t"}, plan.Step{ID: "b", Task: "use ${a}", DependsOn: []string{"a"}})
	h.start()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.eng.Submit(context.Background(), SubmitRequest{Request: fmt.Sprint("req ", i)})
			if err != nil {
				errs <- err
				return
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, id := range ids {
		r, err := h.eng.Wait(ctx, id)
		if err != nil || r.Status != run.Done {
			t.Fatalf("run %s: %v %+v", id, err, r)
		}
	}
}

// BenchmarkStepOverhead measures the executor's own cost per step (store
// writes, events, scheduling) with an instant tool and model.
func BenchmarkStepOverhead(b *testing.B) {
	h := newHarness(b)
	h.cfg.Executor.MaxConcurrentRuns = 8
	h.cfg.Executor.QueueSize = 1 << 20
	h.tools.add(&fakeTool{name: "t", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: "1"}, nil
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) { return ChatResponse{Content: "x [s0]"}, nil }
	const steps = 10
	h.planner.plan = onePlan(tenToolSteps()...)
	h.start()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		r, err := h.eng.Submit(context.Background(), SubmitRequest{Request: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if got, err := h.eng.Wait(context.Background(), r.ID); err != nil || got.Status != run.Done {
			b.Fatalf("%v %+v", err, got)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N*steps), "µs/step")
}

// tenToolSteps is the plan of the overhead benchmarks: 10 tool steps on
// tool "t", every even step after the first depending on the one before.
func tenToolSteps() []plan.Step {
	var ps []plan.Step
	for i := range 10 {
		s := plan.Step{ID: fmt.Sprint("s", i), Tool: "t", Args: map[string]any{"i": i}}
		if i > 0 && i%2 == 0 {
			s.DependsOn = []string{fmt.Sprint("s", i-1)}
		}
		ps = append(ps, s)
	}
	return ps
}

// BenchmarkConcurrentRuns submits 500 runs of 10 tool steps (a no-op tool,
// an instant model) at once and reports how many finish per second, with
// the daemon's settings for the --overhead bench (64 runs at once) and the
// real event bus persisting events to the same SQLite database.
func BenchmarkConcurrentRuns(b *testing.B) {
	const runs = 500
	h := newHarness(b)
	h.cfg.Executor.MaxConcurrentRuns = 64
	h.cfg.Executor.QueueSize = 1000
	h.tools.add(&fakeTool{name: "t", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: "1"}, nil
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) { return ChatResponse{Content: "x [s0]"}, nil }
	h.planner.plan = onePlan(tenToolSteps()...)
	bus := events.New(h.store, 4096, slog.New(slog.DiscardHandler))
	if err := bus.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	busCtx, stopBus := context.WithCancel(context.Background())
	busDone := make(chan struct{})
	go func() { _ = bus.Run(busCtx); close(busDone) }()
	defer func() { stopBus(); <-busDone }()
	d := h.deps()
	d.Events = bus
	h.eng = New(h.cfg, d)
	h.start2()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		ids := make([]string, runs)
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() {
				r, err := h.eng.Submit(context.Background(), SubmitRequest{Request: "bench"})
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = r.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id == "" {
				b.FailNow()
			}
			if got, err := h.eng.Wait(context.Background(), id); err != nil || got.Status != run.Done {
				b.Fatalf("%v %+v", err, got)
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(b.N*runs)/total.Seconds(), "runs/s")
}

// BenchmarkOneCallRun is agentd's own time for a run whose only model call
// is the synthesizer's (instant here): submit, plan (instant), one tool
// step, the answer, every state change committed to SQLite, one run at a
// time. Against a real server, this is what a run adds around its call.
func BenchmarkOneCallRun(b *testing.B) {
	h := newHarness(b)
	h.tools.add(&fakeTool{name: "t", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: "1"}, nil
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) { return ChatResponse{Content: "x [s0]"}, nil }
	h.planner.plan = onePlan(plan.Step{ID: "s0", Tool: "t", Args: map[string]any{"i": 0}})
	h.start()
	start := time.Now()
	for b.Loop() {
		r, err := h.eng.Submit(context.Background(), SubmitRequest{Request: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if got, err := h.eng.Wait(context.Background(), r.ID); err != nil || got.Status != run.Done {
			b.Fatalf("%v %+v", err, got)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/run")
	if n := len(h.chat.requests("synthesize")); n != b.N {
		b.Fatalf("%d synthesizer calls for %d runs", n, b.N)
	}
}

func TestRunNeedsDeps(t *testing.T) {
	err := New(Config{}, Deps{}).Run(context.Background())
	if err == nil || err.Error() != "exec: Deps lack Chat, Models, Planner, Store, Tools" {
		t.Errorf("Run without deps: %v", err)
	}
}

// The run timeout stops a run: what finished becomes a partial answer.
func TestRunTimeoutGivesPartial(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.RunTimeout = config.Duration(100 * time.Millisecond)
	h.tools.add(&fakeTool{name: "quick", idempotent: true})
	h.tools.add(&fakeTool{name: "stuck", idempotent: true, fn: func(ctx context.Context, _ map[string]any) (ToolResult, error) {
		<-ctx.Done()
		return ToolResult{}, ctx.Err()
	}})
	h.planner.plan = onePlan(plan.Step{ID: "q", Tool: "quick"}, plan.Step{ID: "s", Tool: "stuck"})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Partial || r.Error != "run timeout 100ms reached" || !strings.Contains(r.Answer, "[q]") {
		t.Errorf("status %s error %q answer %q", r.Status, r.Error, r.Answer)
	}
	if st := h.steps(r.ID)["s"]; st.Status != run.StepCanceled {
		t.Errorf("stuck step %s", st.Status)
	}
}

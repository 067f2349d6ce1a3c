package exec

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// TestStepDurationFromTheRealExecutor runs a step through the real engine,
// publishing on a real bus that feeds the API's metrics, and reads
// agentd_step_duration_seconds at /metrics: the histogram is observed from
// the executor's own step.status events, not from a fake's.
func TestStepDurationFromTheRealExecutor(t *testing.T) {
	h := newHarness(t)
	bus := events.New(nil, 1024, slog.New(slog.DiscardHandler))
	metrics := api.NewMetrics(api.MetricsSource{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- metrics.RunSince(ctx, bus, 0) }()
	defer func() { cancel(); <-done }()

	h.tools.add(&fakeTool{name: "slow", fn: func(context.Context, map[string]any) (ToolResult, error) {
		time.Sleep(20 * time.Millisecond)
		return ToolResult{Output: "ok"}, nil
	}})
	h.planner.plan = staticPlan(&plan.Plan{Goal: "g", Steps: []plan.Step{{ID: "a", Tool: "slow"}}, Answer: "${a}"})
	h.eng = New(h.cfg, func() Deps { d := h.deps(); d.Events = bus; return d }())
	h.start2()
	r := h.wait(h.submit("one step").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}

	// The step's terminal event carries the executor's timings.
	var terminal events.StepStatusData
	backlog, sub, err := bus.Subscribe(ctx, 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	for _, e := range backlog {
		if d, ok := events.Decode[events.StepStatusData](e); ok && d.Status == string(run.StepDone) {
			terminal = d
		}
	}
	if terminal.StartedAt == nil || terminal.FinishedAt == nil || terminal.DurationMS == nil || *terminal.DurationMS < 20 {
		t.Fatalf("step.status done = %+v; want started_at, finished_at and duration_ms >= 20", terminal)
	}

	re := regexp.MustCompile(`agentd_step_duration_seconds_count\{kind="tool",status="done"\} (\d+)`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec := httptest.NewRecorder()
		metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if m := re.FindStringSubmatch(rec.Body.String()); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no observed step duration:\n%s", rec.Body.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package daemon

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/tools"
)

func TestCompleteSteps(t *testing.T) {
	tests := []struct {
		draft string
		want  []string
	}{
		{`{"goal":"x","st`, nil},
		{`{"goal":"x","steps":[{"id":"a","tool":"t","args":{"q":"}"}},{"id":"b","to`,
			[]string{`{"id":"a","tool":"t","args":{"q":"}"}}`}},
		{`{"steps": [ {"id":"a","args":{"s":"say \"hi\" {"}} , {"id":"b"} ], "answer":"{x}"}`,
			[]string{`{"id":"a","args":{"s":"say \"hi\" {"}}`, `{"id":"b"}`}},
		{`{"steps":[{"id":"a","depends_on":["x"]}]}`, []string{`{"id":"a","depends_on":["x"]}`}},
	}
	for _, tt := range tests {
		if got := completeSteps(tt.draft); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("completeSteps(%q) = %q, want %q", tt.draft, got, tt.want)
		}
	}
}

// countingTool records when each call happened.
type countingTool struct {
	name       string
	idempotent bool
	mu         sync.Mutex
	calls      []time.Time
}

func (c *countingTool) Spec() tools.Spec {
	return tools.Spec{Name: c.name, Description: "look a city up", Idempotent: c.idempotent,
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`)}
}

func (c *countingTool) Call(ctx context.Context, args json.RawMessage) (tools.Result, error) {
	c.mu.Lock()
	c.calls = append(c.calls, time.Now())
	c.mu.Unlock()
	return tools.Result{Output: json.RawMessage(`{"ok":true,"args":` + string(args) + `}`)}, nil
}

func (c *countingTool) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.calls...)
}

func TestPrefetchStartsIndependentStepsWhilePlanStreams(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lookup := &countingTool{name: "lookup_city", idempotent: true}
	book := &countingTool{name: "book_city", idempotent: false}
	planJSON := `{"goal":"cities","steps":[` +
		`{"id":"oslo","tool":"lookup_city","args":{"city":"Oslo"}},` +
		`{"id":"bergen","tool":"lookup_city","args":{"city":"Bergen"}},` +
		`{"id":"reserve","tool":"book_city","args":{"city":"Oslo"}},` +
		`{"id":"again","tool":"lookup_city","args":{"city":"${oslo.args.city}"},"depends_on":["oslo"]}` +
		`],"answer":"Report ${oslo} and ${bergen}"}`
	// The planner decodes slowly (TimeScale 0.05 at gemma3:12b's 55 tok/s):
	// the plan streams over about a quarter of a second.
	d := startOnSimulator(t, ctx, ollamasim.Config{Seed: 1, TimeScale: 0.05, Script: ollamasim.NewRules(
		ollamasim.Rule{Model: "gemma3:12b", Format: ollamasim.Present, Replies: []ollamasim.Reply{{Content: planJSON}}},
		ollamasim.Rule{Contains: "Report", Replies: []ollamasim.Reply{{Content: "Oslo and Bergen [oslo] [bergen]."}}},
	)}, Options{Tools: func(tc config.ToolsConfig, deps tools.Deps) (*tools.Registry, error) {
		r := tools.NewRegistry(deps.Logger)
		for _, tl := range []tools.Tool{lookup, book} {
			if err := r.Register(tl); err != nil {
				return nil, err
			}
		}
		return r, nil
	}})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "Look up Oslo and Bergen, and book Oslo", Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	final, err := d.Engine.Wait(wctx, r.ID)
	if err != nil || final.Status != run.Done {
		t.Fatalf("run ended %v, %v", final, err)
	}
	steps, _ := d.Store.RunSteps(ctx, r.ID)
	planSaved := time.Time{}
	for _, s := range steps {
		if s.StartedAt != nil && (planSaved.IsZero() || s.StartedAt.Before(planSaved)) {
			planSaved = *s.StartedAt // no step starts before the plan is saved
		}
	}
	lookups := lookup.times()
	// oslo and bergen were prefetched (once each) and "again" (same args as
	// oslo, but it depends on a step) reused oslo's prefetched result:
	// three lookup steps, two tool calls.
	if len(lookups) != 2 {
		t.Fatalf("lookup_city called %d times, want 2 (each prefetched call once, reused)", len(lookups))
	}
	for i, at := range lookups {
		if !at.Before(planSaved) {
			t.Errorf("lookup %d ran at %s, not before the first step started (%s): not prefetched", i, at.Format(time.StampMicro), planSaved.Format(time.StampMicro))
		}
	}
	// The non-idempotent tool is never started early.
	if b := book.times(); len(b) != 1 || b[0].Before(planSaved) {
		t.Errorf("book_city calls %v: want exactly one, after the plan", b)
	}
	calls, _ := d.Store.RunToolCalls(ctx, r.ID)
	if len(calls) != 4 {
		t.Errorf("tool call records = %d, want 4: every step is recorded, prefetched or not", len(calls))
	}
}

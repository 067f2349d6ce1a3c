package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

var _ Store = (*db.Store)(nil)

// errTransient is what fakes return for a failure worth a retry.
var errTransient = errors.New("503 busy")

// errNoTools is the fake model's refusal of native tools.
var errNoTools = errors.New("model does not support tools")

// errMissing stands for a model that is not pulled.
var errMissing = errors.New("model x is not pulled — run `ollama pull x`")

// errBrokeOff stands for a reply the server broke off or cut at its bound.
var errBrokeOff = errors.New("model broke off its reply")

func openStore(t testing.TB) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeTool is a tool whose behaviour a test sets.
type fakeTool struct {
	name       string
	schema     string
	idempotent bool
	approval   bool
	fn         func(ctx context.Context, args map[string]any) (ToolResult, error)

	calls    atomic.Int64
	mu       sync.Mutex
	inflight int
	maxIn    int
	args     []map[string]any
}

func (f *fakeTool) Name() string        { return f.name }
func (f *fakeTool) Description() string { return "fake tool " + f.name + "." }
func (f *fakeTool) Schema() json.RawMessage {
	if f.schema == "" {
		return json.RawMessage(`{"type":"object"}`)
	}
	return json.RawMessage(f.schema)
}
func (f *fakeTool) Idempotent() bool       { return f.idempotent }
func (f *fakeTool) RequiresApproval() bool { return f.approval }
func (f *fakeTool) Acquire(context.Context) (func(), error) {
	return func() {}, nil
}

func (f *fakeTool) Call(ctx context.Context, args map[string]any) (ToolResult, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.inflight++
	if f.inflight > f.maxIn {
		f.maxIn = f.inflight
	}
	f.args = append(f.args, args)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if f.fn == nil {
		b, _ := json.Marshal(args)
		return ToolResult{Output: f.name + ":" + string(b)}, nil
	}
	return f.fn(ctx, args)
}

func (f *fakeTool) maxInflight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxIn
}

type fakeTools map[string]*fakeTool

func (ft fakeTools) Lookup(name string) (Tool, bool) {
	t, ok := ft[name]
	if !ok {
		return nil, false
	}
	return t, true
}

func (ft fakeTools) Names() []string {
	var out []string
	for n := range ft {
		out = append(out, n)
	}
	return out
}

func (ft fakeTools) add(t *fakeTool) *fakeTool {
	ft[t.name] = t
	return t
}

// fakePlanner returns set plans and records what it was asked.
type fakePlanner struct {
	mu      sync.Mutex
	plan    func(req PlanRequest) (PlanResult, error)
	replan  func(req ReplanRequest) (PlanResult, error)
	replans []ReplanRequest
}

func (p *fakePlanner) Plan(_ context.Context, req PlanRequest) (PlanResult, error) {
	return p.plan(req)
}

func (p *fakePlanner) Replan(_ context.Context, req ReplanRequest) (PlanResult, error) {
	p.mu.Lock()
	p.replans = append(p.replans, req)
	p.mu.Unlock()
	if p.replan == nil {
		return PlanResult{}, errors.New("replanning not available")
	}
	return p.replan(req)
}

func (p *fakePlanner) replanRequests() []ReplanRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ReplanRequest(nil), p.replans...)
}

func staticPlan(p *plan.Plan) func(PlanRequest) (PlanResult, error) {
	return func(PlanRequest) (PlanResult, error) {
		return PlanResult{Plan: p, Source: "local", Model: "planner", Attempts: 1}, nil
	}
}

// fakeChat answers with a function of the request and records requests.
type fakeChat struct {
	mu   sync.Mutex
	fn   func(req ChatRequest) (ChatResponse, error)
	reqs []ChatRequest
}

func (c *fakeChat) Chat(ctx context.Context, req ChatRequest) (ChatResponse, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	fn := c.fn
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return ChatResponse{}, err
	}
	if fn == nil {
		return ChatResponse{Content: "answer"}, nil
	}
	return fn(req)
}

func (c *fakeChat) requests(purpose string) []ChatRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ChatRequest
	for _, r := range c.reqs {
		if purpose == "" || r.Purpose == purpose {
			out = append(out, r)
		}
	}
	return out
}

// recorder keeps published events.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Emit(runID string, p events.Payload) events.Event {
	raw, _ := json.Marshal(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := events.Event{Seq: int64(len(r.evs) + 1), Type: p.EventType(), RunID: runID, Data: raw}
	r.evs = append(r.evs, ev)
	return ev
}

func (r *recorder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

type fixedModels struct{}

func (fixedModels) Model(role string) string { return "model-" + role }

// harness is an engine on a real database with fakes around it.
type harness struct {
	t       testing.TB
	store   *db.Store
	tools   fakeTools
	planner *fakePlanner
	chat    *fakeChat
	events  *recorder
	cfg     Config
	eng     *Engine
	stop    func()
	noTools map[string]bool
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, store: openStore(t), tools: fakeTools{}, planner: &fakePlanner{}, chat: &fakeChat{},
		events: &recorder{}, noTools: map[string]bool{}}
	ex := config.Default().Executor
	ex.RetryBackoff = config.Duration(time.Millisecond)
	ex.StepTimeout = config.Duration(10 * time.Second)
	h.cfg = Config{Executor: ex, MaxSteps: 20}
	return h
}

func (h *harness) deps() Deps {
	return Deps{Store: h.store, Planner: h.planner, Chat: h.chat, Models: fixedModels{}, Tools: h.tools,
		Events:          h.events,
		SupportsTools:   func(_ context.Context, m string) bool { return !h.noTools[m] },
		IsNoToolSupport: func(err error) bool { return errors.Is(err, errNoTools) },
		IsTransient:     func(err error) bool { return errors.Is(err, errTransient) },
		IsBadOutput:     func(err error) bool { return errors.Is(err, errBrokeOff) },
		IsModelMissing:  func(err error) bool { return errors.Is(err, errMissing) },
	}
}

// start builds the engine from h.cfg and runs it until the test ends.
func (h *harness) start() *Engine {
	h.eng = New(h.cfg, h.deps())
	return h.start2()
}

// start2 runs the engine already built in h.eng.
func (h *harness) start2() *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.eng.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("engine Run: %v", err)
			}
		})
	}
	h.stop = stop
	h.t.Cleanup(stop)
	return h.eng
}

// shutdown stops the engine now (a later start makes a new one).
func (h *harness) shutdown() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

func (h *harness) submit(req string) *run.Run {
	h.t.Helper()
	r, err := h.eng.Submit(context.Background(), SubmitRequest{Request: req})
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return r
}

func (h *harness) wait(id string) *run.Run {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := h.eng.Wait(ctx, id)
	if err != nil {
		h.t.Fatalf("wait %s: %v", id, err)
	}
	return r
}

func (h *harness) steps(runID string) map[string]*run.Step {
	h.t.Helper()
	steps, err := h.store.RunSteps(context.Background(), runID)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]*run.Step{}
	for _, s := range steps {
		out[s.StepID] = s
	}
	return out
}

type attemptRow struct{ step, rung, status, class, err string }

func (h *harness) attempts(runID string) []attemptRow {
	h.t.Helper()
	rows, err := h.store.Reader().Query(`SELECT step_id, rung, status, error_class, error FROM attempts WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var a attemptRow
		if err := rows.Scan(&a.step, &a.rung, &a.status, &a.class, &a.err); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func (h *harness) count(q string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.store.Reader().QueryRow(q, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func rungs(as []attemptRow, step string) string {
	s := ""
	for _, a := range as {
		if a.step == step {
			s += fmt.Sprintf("%s:%s:%s ", a.rung, a.status, a.class)
		}
	}
	return s
}

// waitFor polls cond (a state the engine reaches on its own goroutines).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

var quiet = slog.New(slog.DiscardHandler)

// fakeStep is one step of the fake engine's fixed plan.
type fakeStep struct {
	id, kind, tool string
	deps           []string
	approval       bool
}

// fakePlan is a diamond with an approval gate: fetch and lookup run in
// parallel, analyze joins them, send waits for a person, then summarize.
var fakePlan = []fakeStep{
	{id: "fetch", kind: "tool", tool: "http_get"},
	{id: "lookup", kind: "tool", tool: "search_docs"},
	{id: "analyze", kind: "task", deps: []string{"fetch", "lookup"}},
	{id: "send", kind: "tool", tool: "send_email", deps: []string{"analyze"}, approval: true},
	{id: "summarize", kind: "task", deps: []string{"send"}},
}

type fakeRun struct {
	run       run.Run
	steps     map[string]*run.Step
	calls     []ModelCall
	approvals map[string]*Approval
	decided   map[string]chan bool
	done      chan struct{}
	cancel    context.CancelFunc
}

// fakeEngine runs fakePlan with real timing and publishes every transition
// on a real bus, as the executor will.
type fakeEngine struct {
	bus       *events.Bus
	stepDelay time.Duration
	// noApproval skips the approval gate (API tests).
	noApproval bool
	answer     string

	mu        sync.Mutex
	full      bool
	runs      map[string]*fakeRun
	order     []string
	submitted []SubmitRequest
	canceled  []string
	decisions []string
	n         int
}

func newFakeEngine(bus *events.Bus) *fakeEngine {
	return &fakeEngine{bus: bus, stepDelay: 5 * time.Millisecond, runs: map[string]*fakeRun{}, answer: "The answer is 42."}
}

func (e *fakeEngine) Submit(_ context.Context, req SubmitRequest) (*run.Run, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.full {
		return nil, fmt.Errorf("admit run: %w (64 waiting)", ErrQueueFull)
	}
	if req.Workflow == "nope" {
		return nil, fmt.Errorf("workflow %q is not configured: %w", req.Workflow, ErrInvalid)
	}
	e.submitted = append(e.submitted, req)
	e.n++
	id := fmt.Sprintf("run%03d", e.n)
	ctx, cancel := context.WithCancel(context.Background())
	fr := &fakeRun{
		run: run.Run{ID: id, CreatedAt: time.Now().UTC().Add(time.Duration(e.n) * time.Millisecond), Status: run.Queued,
			Source: req.Source, Request: req.Request, Workflow: req.Workflow, Planner: req.Planner, Priority: req.Priority,
			Sensitive: req.Sensitive, Async: req.Async},
		steps: map[string]*run.Step{}, approvals: map[string]*Approval{}, decided: map[string]chan bool{},
		done: make(chan struct{}), cancel: cancel,
	}
	e.runs[id] = fr
	e.order = append(e.order, id)
	cp := fr.run
	e.bus.Emit(id, events.RunCreatedData{Status: string(cp.Status), Source: cp.Source, Workflow: cp.Workflow, Priority: cp.Priority})
	go e.execute(ctx, fr)
	return &cp, nil
}

// submittedCopy is what was submitted so far.
func (e *fakeEngine) submittedCopy() []SubmitRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.submitted)
}

func (e *fakeEngine) setRunStatus(fr *fakeRun, st run.Status) {
	e.mu.Lock()
	prev := fr.run.Status
	fr.run.Status = st
	fr.run.UpdatedAt = time.Now().UTC()
	now := time.Now().UTC()
	if st == run.Running && fr.run.StartedAt == nil {
		fr.run.StartedAt = &now
	}
	if st.Terminal() {
		fr.run.FinishedAt = &now
	}
	e.mu.Unlock()
	e.bus.Emit(fr.run.ID, events.RunStatusData{Status: string(st), Previous: string(prev)})
}

func (e *fakeEngine) setStep(fr *fakeRun, id string, st run.StepStatus, output string) {
	e.mu.Lock()
	s := fr.steps[id]
	s.Status = st
	now := time.Now().UTC()
	// No timings: the step latency metric must come from the real
	// executor's events (TestStepDurationFromTheRealExecutor), never from
	// a fake that adds what the executor forgets.
	data := events.StepStatusData{StepID: id, Status: string(st), Kind: s.Kind, Tool: s.Tool,
		DependsOn: s.DependsOn, PlanVersion: s.PlanVersion}
	switch st {
	case run.StepRunning:
		s.StartedAt = &now
		s.Attempts++
	case run.StepDone, run.StepFailed, run.StepCanceled:
		s.FinishedAt = &now
		s.Output = output
	}
	data.Attempts = s.Attempts
	e.mu.Unlock()
	e.bus.Emit(fr.run.ID, data)
}

func (e *fakeEngine) execute(ctx context.Context, fr *fakeRun) {
	defer close(fr.done)
	planSteps := []events.PlanStepData{}
	e.mu.Lock()
	for _, ps := range fakePlan {
		spec := map[string]any{"id": ps.id}
		if ps.tool != "" {
			spec["tool"] = ps.tool
		} else {
			spec["task"] = "think about " + ps.id
		}
		if len(ps.deps) > 0 {
			spec["depends_on"] = ps.deps
		}
		planSteps = append(planSteps, events.PlanStepData{ID: ps.id, Kind: ps.kind, Tool: ps.tool, DependsOn: ps.deps,
			Status: string(run.StepPending)})
		b, _ := json.Marshal(spec)
		fr.steps[ps.id] = &run.Step{RunID: fr.run.ID, StepID: ps.id, PlanVersion: 1, Kind: ps.kind, Tool: ps.tool, Spec: b,
			DependsOn: append([]string{}, ps.deps...), Status: run.StepPending}
	}
	e.mu.Unlock()
	e.setRunStatus(fr, run.Planning)
	e.bus.Emit(fr.run.ID, events.PlanCreatedData{Version: 1, Source: "fake", Goal: fr.run.Request, Steps: planSteps})
	e.setRunStatus(fr, run.Running)
	finished := map[string]bool{}
	for len(finished) < len(fakePlan) {
		var ready []fakeStep
		for _, ps := range fakePlan {
			if finished[ps.id] {
				continue
			}
			ok := true
			for _, d := range ps.deps {
				ok = ok && finished[d]
			}
			if ok {
				ready = append(ready, ps)
			}
		}
		var wg sync.WaitGroup
		for _, ps := range ready {
			wg.Go(func() { e.runStep(ctx, fr, ps) })
		}
		wg.Wait()
		if ctx.Err() != nil {
			e.mu.Lock()
			fr.run.Error = "canceled"
			e.mu.Unlock()
			e.setRunStatus(fr, run.Canceled)
			return
		}
		for _, ps := range ready {
			finished[ps.id] = true
		}
	}
	e.mu.Lock()
	fr.run.Answer = e.answer
	fr.run.CostUSD = 0.0021
	fr.run.RemoteOnlyUSD = 0.05
	e.mu.Unlock()
	e.setRunStatus(fr, run.Done)
}

func (e *fakeEngine) runStep(ctx context.Context, fr *fakeRun, ps fakeStep) {
	if ps.approval && !e.noApproval {
		ch := make(chan bool, 1)
		e.mu.Lock()
		fr.decided[ps.id] = ch
		fr.approvals[ps.id] = &Approval{RunID: fr.run.ID, StepID: ps.id, Tool: ps.tool, Args: json.RawMessage(`{"to":"ops@example.com"}`),
			Status: "pending", RequestedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC(), Request: fr.run.Request}
		e.mu.Unlock()
		e.setStep(fr, ps.id, run.StepWaitingApproval, "")
		e.setRunStatus(fr, run.WaitingApproval)
		e.bus.Emit(fr.run.ID, events.ApprovalRequestedData{StepID: ps.id, Tool: ps.tool})
		select {
		case ok := <-ch:
			e.setRunStatus(fr, run.Running)
			if !ok {
				e.setStep(fr, ps.id, run.StepFailed, "")
				return
			}
		case <-ctx.Done():
			e.setStep(fr, ps.id, run.StepCanceled, "")
			return
		}
	}
	e.setStep(fr, ps.id, run.StepRunning, "")
	select {
	case <-time.After(e.stepDelay):
	case <-ctx.Done():
		e.setStep(fr, ps.id, run.StepCanceled, "")
		return
	}
	if ps.kind == "task" {
		mc := ModelCall{CreatedAt: time.Now().UTC(), StepID: ps.id, Purpose: "execute", Model: "qwen3:4b", Location: "local",
			PromptTokens: 120, OutputTokens: 30, TotalMS: float64(e.stepDelay.Milliseconds()), CostUSD: 0}
		e.mu.Lock()
		mc.ID = int64(len(fr.calls) + 1)
		fr.calls = append(fr.calls, mc)
		e.mu.Unlock()
		e.bus.Emit(fr.run.ID, events.ModelCallData{StepID: ps.id, Model: mc.Model, Location: mc.Location, Where: mc.Location,
			PromptTokens: mc.PromptTokens, OutputTokens: mc.OutputTokens, TotalMS: int64(mc.TotalMS)})
	}
	e.setStep(fr, ps.id, run.StepDone, "output of "+ps.id)
}

func (e *fakeEngine) Wait(ctx context.Context, id string) (*run.Run, error) {
	e.mu.Lock()
	fr, ok := e.runs[id]
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	select {
	case <-fr.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cp := fr.run
	return &cp, nil
}

func (e *fakeEngine) Cancel(_ context.Context, id, by string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	fr, ok := e.runs[id]
	if !ok {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if fr.run.Status.Terminal() {
		return fmt.Errorf("run %s is %s: %w", id, fr.run.Status, ErrConflict)
	}
	e.canceled = append(e.canceled, id+" by "+by)
	fr.cancel()
	return nil
}

func (e *fakeEngine) Decide(_ context.Context, runID, stepID string, approve bool, by, reason string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	fr, ok := e.runs[runID]
	if !ok {
		return fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	a, ok := fr.approvals[stepID]
	if !ok {
		return fmt.Errorf("no approval for %s/%s: %w", runID, stepID, ErrNotFound)
	}
	if a.Status != "pending" {
		return fmt.Errorf("approval %s/%s is %s: %w", runID, stepID, a.Status, ErrConflict)
	}
	now := time.Now().UTC()
	a.Status, a.DecidedAt, a.DecidedBy, a.Reason = "denied", &now, by, reason
	if approve {
		a.Status = "approved"
	}
	e.decisions = append(e.decisions, fmt.Sprintf("%s/%s %s by %s", runID, stepID, a.Status, by))
	fr.decided[stepID] <- approve
	e.bus.Emit(runID, events.ApprovalDecidedData{StepID: stepID, Decision: a.Status, By: by, Reason: reason})
	return nil
}

// fakeRuns reads the fake engine's state as the store adapter would.
type fakeRuns struct{ e *fakeEngine }

func (f fakeRuns) ListRuns(_ context.Context, q RunQuery) ([]*run.Run, error) {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	var out []*run.Run
	started := q.Before == ""
	for i := len(f.e.order) - 1; i >= 0; i-- {
		fr := f.e.runs[f.e.order[i]]
		if !started {
			started = fr.run.ID == q.Before
			continue
		}
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, fr.run.Status) {
			continue
		}
		cp := fr.run
		out = append(out, &cp)
		if len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func (f fakeRuns) RunDetail(_ context.Context, id string) (*RunDetail, error) {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	fr, ok := f.e.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	cp := fr.run
	d := &RunDetail{Run: &cp, PlanVersion: 1, PlanSource: "local", PlanModel: "qwen3:8b", Attempts: []Attempt{}, ToolCalls: []ToolCall{}}
	var steps []map[string]any
	for _, ps := range fakePlan {
		s, ok := fr.steps[ps.id]
		if !ok {
			continue
		}
		sc := *s
		d.Steps = append(d.Steps, &sc)
		var spec map[string]any
		_ = json.Unmarshal(s.Spec, &spec)
		steps = append(steps, spec)
		if s.Attempts > 0 {
			d.Attempts = append(d.Attempts, Attempt{ID: int64(len(d.Attempts) + 1), StepID: s.StepID, N: 1, Rung: "first", Status: "ok", StartedAt: *s.StartedAt})
		}
	}
	if len(steps) > 0 {
		d.Plan, _ = json.Marshal(map[string]any{"goal": fr.run.Request, "steps": steps, "answer": "combine"})
	}
	d.ModelCalls = append([]ModelCall{}, fr.calls...)
	for _, ps := range fakePlan {
		if a, ok := fr.approvals[ps.id]; ok {
			d.Approvals = append(d.Approvals, *a)
		}
	}
	return d, nil
}

func (f fakeRuns) PendingApprovals(context.Context) ([]Approval, error) {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	var out []Approval
	for _, id := range f.e.order {
		for _, ps := range fakePlan {
			if a, ok := f.e.runs[id].approvals[ps.id]; ok && a.Status == "pending" {
				out = append(out, *a)
			}
		}
	}
	return out, nil
}

type fakeLedger struct{ recs []db.EgressRecord }

func (f *fakeLedger) Egress(_ context.Context, before int64, limit int) ([]db.EgressRecord, error) {
	var out []db.EgressRecord
	for i := len(f.recs) - 1; i >= 0 && len(out) < limit; i-- {
		if before > 0 && f.recs[i].ID >= before {
			continue
		}
		out = append(out, f.recs[i])
	}
	return out, nil
}

func newFakeLedger(n int) *fakeLedger {
	l := &fakeLedger{}
	for i := 1; i <= n; i++ {
		l.recs = append(l.recs, db.EgressRecord{ID: int64(i), CreatedAt: time.Date(2026, 11, 22, 7, 0, i, 0, time.UTC), RunID: "run001",
			Destination: "api.anthropic.com", Provider: "anthropic", Model: "claude-sonnet", Purpose: "plan",
			BytesOut: int64(1000 + i), BytesIn: 400, SHA256: fmt.Sprintf("%064x", i), Redactions: map[string]int{"email": 1}, Status: "ok"})
	}
	return l
}

type fakeBudgets struct{}

func (fakeBudgets) Budgets(context.Context) (BudgetReport, error) {
	return BudgetReport{
		Caps: []BudgetCap{
			{Name: "usd_day", Period: "day", Unit: "usd", Cap: 5, Spent: 2.6, Reserved: 0.4, Alert: 50},
			{Name: "usd_month", Period: "month", Unit: "usd", Cap: 50, Spent: 41, Reserved: 0, Alert: 80},
			{Name: "bytes_day", Period: "day", Unit: "bytes", Cap: 50e6, Spent: 12e6, Alert: 0},
		},
		Alerts:  []string{"usd_month at 80%"},
		Savings: Savings{Runs: 12, CostUSD: 1.2, RemoteOnlyUSD: 9.7, SavedUSD: 8.5},
	}, nil
}

type fakeResidency struct{}

func (fakeResidency) LoadedModels(context.Context) ([]LoadedModel, error) {
	return []LoadedModel{
		{Name: "qwen3:8b", SizeBytes: 6e9, VRAMBytes: 6e9},
		{Name: "qwen3:4b", SizeBytes: 3.5e9, VRAMBytes: 2.5e9},
	}, nil
}

type fakeHistory struct {
	mu    sync.Mutex
	since time.Time
}

func (f *fakeHistory) asked() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.since }

func (f *fakeHistory) GPUHistory(_ context.Context, since time.Time, maxPoints int) ([]GPUPoint, error) {
	f.mu.Lock()
	f.since = since
	f.mu.Unlock()
	var out []GPUPoint
	total := int64(20e9)
	for i := range 60 {
		used := int64(6e9 + float64(i%20)*2e8)
		util := float64(20 + i%50)
		out = append(out, GPUPoint{Time: time.Now().Add(time.Duration(i-60) * 30 * time.Second).UTC(), GPU: 0, Name: "NVIDIA RTX 4000 Ada",
			MemUsedBytes: &used, MemTotalBytes: &total, UtilPercent: &util})
	}
	return out[:min(len(out), maxPoints)], nil
}

type fakeLink struct{}

func (fakeLink) Link(context.Context) (LinkStatus, error) {
	return LinkStatus{State: "constrained", RTTMS: 640, ThroughputBPS: 48000, LastMeasuredAt: time.Now().UTC()}, nil
}

// testEnv is a server with fakes behind a real listener on 127.0.0.1.
type testEnv struct {
	t      *testing.T
	srv    *Server
	bus    *events.Bus
	engine *fakeEngine
	token  string
	url    string
	deps   Deps
	cancel context.CancelFunc
	done   chan error
}

// statusOption replaces the status the test server reports.
type statusOption func(context.Context) any

func newTestEnv(t *testing.T, opts ...any) *testEnv {
	t.Helper()
	bus := events.New(nil, 1024, quiet)
	eng := newFakeEngine(bus)
	eng.noApproval = true
	tf, err := LoadOrCreateToken(filepath.Join(t.TempDir(), "token"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{AuthRequired: true, MaxRequestBytes: 64 << 10, ShutdownTimeout: 2 * time.Second}
	deps := Deps{Engine: eng, Runs: fakeRuns{eng}, Events: bus, Ledger: newFakeLedger(7), Budgets: fakeBudgets{},
		Residency: fakeResidency{}, Link: fakeLink{}, History: &fakeHistory{}, Reviews: &fakeReviews{}, Workflows: func() []string { return []string{"triage", "report"} },
		Metrics: NewMetrics(MetricsSource{}, quiet)}
	status := func(context.Context) any {
		return map[string]any{"demo": true, "runs": map[string]int{"done": 1}}
	}
	for _, o := range opts {
		switch o := o.(type) {
		case func(*Config, *Deps):
			o(&cfg, &deps)
		case statusOption:
			status = o
		default:
			t.Fatalf("unknown option %T", o)
		}
	}
	srv := New(cfg, ln, tf, status, nil, quiet)
	if err := RegisterRoutes(srv, deps); err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	ctx, cancel := context.WithCancel(context.Background())
	env := &testEnv{t: t, srv: srv, bus: bus, engine: eng, token: tf.Token(), url: "http://" + ln.Addr().String(),
		deps: deps, cancel: cancel, done: make(chan error, 1)}
	go func() { env.done <- srv.Run(ctx) }()
	t.Cleanup(env.stop)
	return env
}

func (env *testEnv) stop() {
	if env.cancel == nil {
		return
	}
	env.cancel()
	env.cancel = nil
	select {
	case err := <-env.done:
		if err != nil {
			env.t.Errorf("server Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		env.t.Error("server did not stop within 5s")
	}
}

// do sends a request with the bearer token (auth=false: without).
func (env *testEnv) do(method, path, body string, auth bool) (*http.Response, []byte) {
	env.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.url+path, r)
	if err != nil {
		env.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+env.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		env.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		env.t.Fatal(err)
	}
	return resp, b
}

package vram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/llm"
	"github.com/ollama/ollama/api"
)

const testGB = 1_000_000_000

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeOllama serves /api/ps and /api/tags from fields tests set.
type fakeOllama struct {
	mu      sync.Mutex
	running []api.ProcessModelResponse
	pulled  []api.ListModelResponse
	psErr   error
	loads   []string
	keeps   []time.Duration
}

func (f *fakeOllama) ListRunning(context.Context) (*api.ProcessResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.psErr != nil {
		return nil, f.psErr
	}
	return &api.ProcessResponse{Models: slices.Clone(f.running)}, nil
}

func (f *fakeOllama) List(context.Context) (*api.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &api.ListResponse{Models: slices.Clone(f.pulled)}, nil
}

func (f *fakeOllama) Load(_ context.Context, model string, keep time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads = append(f.loads, model)
	f.keeps = append(f.keeps, keep)
	return nil
}

func (f *fakeOllama) set(running ...api.ProcessModelResponse) {
	f.mu.Lock()
	f.running = running
	f.mu.Unlock()
}

type fakeStore struct {
	mu     sync.Mutex
	saves  []string
	stored map[string]int64
}

func (s *fakeStore) SaveModelSize(_ context.Context, model, endpoint string, size, sizeVRAM int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves = append(s.saves, model+"@"+endpoint)
	return nil
}

func (s *fakeStore) ModelSizes(context.Context) (map[string]int64, error) {
	return s.stored, nil
}

type recordedEvent struct {
	typ  string
	data any
}

type fakePublisher struct {
	mu        sync.Mutex
	events    []recordedEvent // everything but model.residency
	residency []events.ModelResidencyData
}

func (p *fakePublisher) Publish(data events.Payload) {
	typ := data.EventType()
	p.mu.Lock()
	defer p.mu.Unlock()
	if typ == events.ModelResidency {
		p.residency = append(p.residency, data.(events.ModelResidencyData))
		return
	}
	p.events = append(p.events, recordedEvent{typ, data})
}

type fakeSamples struct {
	mu sync.Mutex
	s  Sample
	ok bool
}

func (f *fakeSamples) Latest() (Sample, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s, f.ok
}

func (f *fakeSamples) set(total, free uint64) {
	f.mu.Lock()
	f.s = Sample{GPUs: []GPU{{Source: SourceNVIDIA, MemoryTotalBytes: u64(total), MemoryFreeBytes: u64(free), MemoryUsedBytes: u64(total - free)}}}
	f.ok = true
	f.mu.Unlock()
}

func ps(name string, size, vram int64) api.ProcessModelResponse {
	return api.ProcessModelResponse{Name: name, Model: name, Size: size, SizeVRAM: vram}
}

func tag(name string, size int64) api.ListModelResponse {
	return api.ListModelResponse{Name: name, Model: name, Size: size}
}

// testModels: planner 8 GB, executor 2 GB, embedder 0.3 GB.
func testModels() config.ModelsConfig {
	return config.ModelsConfig{
		Planner: "big:8g", Fast: "small:2g", Standard: "small:2g", Embedding: "embed:1",
		KeepAlive: config.Duration(30 * time.Minute),
	}
}

// testUses: the test models as a site with a docs folder calls them.
func testUses() []config.ModelUse {
	cfg := &config.Config{Models: testModels()}
	cfg.Tools.Docs.Folders = []string{"/docs"}
	return cfg.ModelUses()
}

func testPulled() []api.ListModelResponse {
	return []api.ListModelResponse{tag("big:8g", 8*testGB), tag("small:2g", 2*testGB), tag("embed:1", testGB/4)}
}

type testEnv struct {
	m     *Manager
	clock *fakeClock
	ol    *fakeOllama
	store *fakeStore
	pub   *fakePublisher
	gpu   *fakeSamples
}

func newTestEnv(t *testing.T, capacity uint64, mutate func(*ManagerConfig)) *testEnv {
	t.Helper()
	e := &testEnv{clock: newFakeClock(), ol: &fakeOllama{pulled: testPulled()}, store: &fakeStore{}, pub: &fakePublisher{}, gpu: &fakeSamples{}}
	cfg := ManagerConfig{
		Models:        testModels(),
		Uses:          testUses(),
		VRAM:          config.VRAMConfig{Headroom: 512 << 20, Prewarm: true},
		Endpoints:     []Endpoint{{Name: "local", ParallelSlots: 1, Running: e.ol, Tags: e.ol, Loader: e.ol}},
		Samples:       e.gpu,
		CapacityBytes: capacity,
		Store:         e.store,
		Publisher:     e.pub,
		Logger:        slog.New(slog.DiscardHandler),
		Now:           e.clock.Now,
		MaxBatch:      100,
		MaxWait:       time.Hour,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e.m = NewManager(cfg)
	e.m.Refresh(context.Background())
	return e
}

// pending is an Acquire running in its own goroutine.
type pending struct {
	env     *testEnv
	model   string
	done    chan struct{}
	release func()
	err     error
}

func (e *testEnv) acquire(ctx context.Context, model string) *pending {
	p := &pending{env: e, model: model, done: make(chan struct{})}
	go func() {
		p.release, p.err = e.m.Acquire(ctx, model)
		close(p.done)
	}()
	return p
}

// acquireQueued starts an Acquire and waits until the Manager holds it,
// granted or queued, so the order of calls is the order of the test.
func (e *testEnv) acquireQueued(t *testing.T, model string) *pending {
	t.Helper()
	before := e.held(model)
	p := e.acquire(context.Background(), model)
	e.waitFor(t, func() bool { return e.held(model) > before }, model+" to reach the manager")
	return p
}

func (e *testEnv) queued(model string) int {
	for _, ms := range e.m.Snapshot().Models {
		if ms.Name == model {
			return ms.Queued
		}
	}
	return 0
}

func (e *testEnv) held(model string) int {
	s := e.m.Snapshot()
	for _, ms := range s.Models {
		if ms.Name == model {
			return ms.InFlight + ms.Queued
		}
	}
	for _, a := range s.Other {
		if a.Model == llm.ModelKey(model) {
			return a.InFlight + a.Queued
		}
	}
	return 0
}

// waitFor spins (yielding, never sleeping) until cond holds; the deadline
// only guards against a hung test.
func (e *testEnv) waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; snapshot %+v", what, e.m.Snapshot())
		}
		runtime.Gosched()
	}
}

func (p *pending) granted() bool {
	select {
	case <-p.done:
		return p.err == nil
	default:
		return false
	}
}

func mustGranted(t *testing.T, p *pending) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not granted", p.model)
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.model, p.err)
	}
}

// mustWaiting checks both sides: the call has not returned, and the
// Manager still holds a queued call for its model (a grant is made under
// the Manager's lock, before the caller's goroutine wakes).
func mustWaiting(t *testing.T, p *pending) {
	t.Helper()
	if p.granted() {
		t.Fatalf("%s: granted, want it waiting", p.model)
	}
	if p.env.queued(p.model) == 0 {
		t.Fatalf("%s: nothing queued for the model, want the call waiting", p.model)
	}
}

func TestManagerModeFromSizes(t *testing.T) {
	t.Run("download sizes decide before anything loads", func(t *testing.T) {
		e := newTestEnv(t, 8<<30, nil)
		wantEq(t, "mode", e.m.Mode(), ModeSwap)
		wantEq(t, "planner keep_alive", e.m.KeepAliveFor("big:8g"), 30*time.Minute)
		wantEq(t, "executor keep_alive", e.m.KeepAliveFor("small:2g"), time.Minute)
		e24 := newTestEnv(t, 24<<30, nil)
		wantEq(t, "mode", e24.m.Mode(), ModeCoResident)
		wantEq(t, "executor keep_alive", e24.m.KeepAliveFor("small:2g"), 30*time.Minute)
		wantEq(t, "unconfigured keep_alive", e24.m.KeepAliveFor("other:1b"), 30*time.Minute)
	})
	t.Run("no capacity known", func(t *testing.T) {
		e := newTestEnv(t, 0, nil)
		wantEq(t, "mode", e.m.Mode(), ModeUnmanaged)
	})
	t.Run("monitor total and other processes", func(t *testing.T) {
		e := newTestEnv(t, 0, nil)
		e.gpu.set(24*testGB, 23*testGB)
		e.m.Refresh(context.Background())
		wantEq(t, "mode", e.m.Mode(), ModeCoResident)
		wantEq(t, "capacity source", e.m.Snapshot().CapacitySource, "monitor")
		// A game takes 14 GB: planner and executor no longer fit together.
		e.gpu.set(24*testGB, 9*testGB)
		e.m.Refresh(context.Background())
		wantEq(t, "mode", e.m.Mode(), ModeSwap)
		wantEq(t, "external", e.m.Snapshot().ExternalBytes, uint64(15*testGB))
		// Our own resident models are not counted as another process.
		e.ol.set(ps("big:8g", 8*testGB, 8*testGB))
		e.gpu.set(24*testGB, 16*testGB)
		e.m.Refresh(context.Background())
		wantEq(t, "external with planner loaded", e.m.Snapshot().ExternalBytes, uint64(0))
		wantEq(t, "mode", e.m.Mode(), ModeCoResident)
	})
	t.Run("stored sizes beat download sizes, measured beat stored", func(t *testing.T) {
		e := newTestEnv(t, 12<<30, func(c *ManagerConfig) {
			c.Store = &fakeStore{stored: map[string]int64{"big:8g": 11 * testGB}}
		})
		if err := e.m.LoadStoredSizes(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantEq(t, "mode with stored 11 GB planner", e.m.Mode(), ModeSwap)
		e.ol.set(ps("big:8g", 9*testGB, 9*testGB))
		e.m.Refresh(context.Background())
		wantEq(t, "mode with measured 9 GB planner", e.m.Mode(), ModeCoResident)
		var got ModelStatus
		for _, ms := range e.m.Snapshot().Models {
			if ms.Name == "big:8g" {
				got = ms
			}
		}
		wantEq(t, "size", got.SizeBytes, uint64(9*testGB))
		wantEq(t, "size source", got.SizeSource, SizeFromPS)
		wantEq(t, "resident", got.Resident, true)
	})
}

func TestManagerLearnsSizesAndReportsSpill(t *testing.T) {
	e := newTestEnv(t, 8<<30, nil)
	ctx := context.Background()
	e.ol.set(ps("big:8g", 9*testGB, 7*testGB))
	e.m.Refresh(ctx)
	e.m.Refresh(ctx) // same reading: nothing saved or published again
	wantEq(t, "saves", strings.Join(e.store.saves, ","), "big:8g@local")
	// model.residency: empty at the first refresh, then big:8g once.
	if n := len(e.pub.residency); n != 2 || len(e.pub.residency[1].Models) != 1 || e.pub.residency[1].Models[0].VRAMBytes != 7*testGB {
		t.Errorf("model.residency announcements = %+v, want [] then big:8g once", e.pub.residency)
	}
	if len(e.pub.events) != 1 || e.pub.events[0].typ != EventModelSpill {
		t.Fatalf("events = %+v, want one %s", e.pub.events, EventModelSpill)
	}
	ev := e.pub.events[0].data.(SpillEvent)
	wantEq(t, "event endpoint", ev.Endpoint, "local")
	s := e.m.Snapshot()
	if len(s.Warnings) != 1 || s.Warnings[0] != ev.Residency.Warning || !strings.Contains(s.Warnings[0], "22% on CPU") {
		t.Errorf("warnings = %q, want the residency warning %q", s.Warnings, ev.Residency.Warning)
	}

	// The spill changes, then clears: one event each.
	e.ol.set(ps("big:8g", 9*testGB, 6*testGB))
	e.m.Refresh(ctx)
	e.ol.set(ps("big:8g", 9*testGB, 9*testGB))
	e.m.Refresh(ctx)
	var types []string
	for _, ev := range e.pub.events {
		types = append(types, ev.typ)
	}
	wantEq(t, "event types", strings.Join(types, ","), EventModelSpill+","+EventModelSpill+","+EventModelSpillCleared)
	wantEq(t, "saves", len(e.store.saves), 3)
	wantEq(t, "warnings after clear", len(e.m.Snapshot().Warnings), 0)
}

func TestManagerMissingModels(t *testing.T) {
	e := newTestEnv(t, 24<<30, nil)
	e.ol.mu.Lock()
	e.ol.pulled = []api.ListModelResponse{tag("big:8g", 8*testGB), tag("embed:1", testGB/4)}
	e.ol.mu.Unlock()
	e.m.Refresh(context.Background())
	s := e.m.Snapshot()
	if len(s.Missing) != 1 {
		t.Fatalf("missing = %+v, want small:2g only", s.Missing)
	}
	miss := s.Missing[0]
	wantEq(t, "name", miss.Name, "small:2g")
	wantEq(t, "command", miss.PullCommand, "ollama pull small:2g")
	wantEq(t, "roles", strings.Join(miss.Roles, ","), "standard,fast,summarizer") // fast also writes answers when models.summarizer is empty
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mode":"co-resident"`, `"pull_command":"ollama pull small:2g"`, `"keep_alive":"30m0s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("snapshot JSON lacks %s: %s", want, b)
		}
	}
}

// TestManagerPollError: a server that answers /api/ps with an error keeps
// its last reading; one that does not answer holds no model any more.
func TestManagerPollError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		resident bool
	}{
		{"server error keeps the last reading", api.StatusError{StatusCode: 500, ErrorMessage: "scheduler busy"}, true},
		{"no answer forgets what it held", &url.Error{Op: "Get", URL: "http://127.0.0.1:11434/api/ps",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, 24<<30, nil)
			e.ol.set(ps("big:8g", 8*testGB, 8*testGB))
			e.m.Refresh(context.Background())
			wantEq(t, "planner resident after a read", e.m.Snapshot().Models[0].Resident, true)
			e.ol.mu.Lock()
			e.ol.psErr = tc.err
			e.ol.mu.Unlock()
			e.m.Refresh(context.Background())
			s := e.m.Snapshot()
			if len(s.Errors) != 1 || !strings.Contains(s.Errors[0], tc.err.Error()) {
				t.Errorf("errors = %q", s.Errors)
			}
			wantEq(t, "planner resident after a failed read", s.Models[0].Resident, tc.resident)
		})
	}
}

// TestManagerEndpointUnreachable: told an endpoint is down, the manager
// stops reporting its models resident before its next poll, and says why.
func TestManagerEndpointUnreachable(t *testing.T) {
	e := newTestEnv(t, 24<<30, nil)
	e.ol.set(ps("big:8g", 8*testGB, 8*testGB))
	e.m.Refresh(context.Background())
	e.m.EndpointUnreachable("elsewhere", errors.New("connection refused"))
	wantEq(t, "resident after another endpoint went down", e.m.Snapshot().Models[0].Resident, true)
	e.m.EndpointUnreachable("local", errors.New("connection refused"))
	s := e.m.Snapshot()
	wantEq(t, "resident after its endpoint went down", s.Models[0].Resident, false)
	if len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "local: not reachable (connection refused)") {
		t.Errorf("errors = %q", s.Errors)
	}
	e.m.Refresh(context.Background()) // it answers again
	wantEq(t, "resident once it answers", e.m.Snapshot().Models[0].Resident, true)
}

func TestManagerPrewarm(t *testing.T) {
	t.Run("co-resident loads every pulled model not loaded", func(t *testing.T) {
		e := newTestEnv(t, 24<<30, nil)
		e.ol.set(ps("embed:1", testGB/4, testGB/4))
		e.m.Refresh(context.Background())
		e.m.Prewarm(context.Background())
		wantEq(t, "loads", strings.Join(e.ol.loads, ","), "big:8g,small:2g")
		for _, k := range e.ol.keeps {
			wantEq(t, "prewarm keep_alive", k, 30*time.Minute)
		}
	})
	t.Run("swap mode loads nothing", func(t *testing.T) {
		e := newTestEnv(t, 8<<30, nil)
		e.m.Prewarm(context.Background())
		wantEq(t, "loads", len(e.ol.loads), 0)
	})
}

func TestManagerRun(t *testing.T) {
	e := newTestEnv(t, 24<<30, nil)
	ticks := make(chan time.Time)
	e.m.cfg.Tick = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Run(ctx) }()
	ticks <- time.Time{} // Run is past start-up: prewarm has happened
	e.ol.set(ps("big:8g", 9*testGB, 5*testGB))
	ticks <- time.Time{}
	ticks <- time.Time{} // the previous tick's Refresh has finished
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
	wantEq(t, "prewarmed (not the embedder)", strings.Join(e.ol.loads, ","), "big:8g,small:2g")
	wantEq(t, "spill seen by poll", len(e.pub.events), 1)
}

func TestAcquireSwapGroupsByModel(t *testing.T) {
	e := newTestEnv(t, 8<<30, nil)
	wantEq(t, "mode", e.m.Mode(), ModeSwap)

	a1 := e.acquireQueued(t, "big:8g")
	mustGranted(t, a1)
	b1 := e.acquireQueued(t, "small:2g")
	a2 := e.acquireQueued(t, "big:8g")
	a3 := e.acquireQueued(t, "big:8g")
	mustWaiting(t, b1)
	mustWaiting(t, a2) // one parallel slot

	// The planner keeps the GPU while it has waiters, though b1 came first.
	a1.release()
	mustGranted(t, a2)
	mustWaiting(t, b1)
	a2.release()
	mustGranted(t, a3)
	mustWaiting(t, b1)
	wantEq(t, "serving", e.m.Snapshot().Serving, "big:8g")
	a3.release()
	a3.release() // a second release is harmless
	mustGranted(t, b1)
	wantEq(t, "serving", e.m.Snapshot().Serving, "small:2g")
	b1.release()
	s := e.m.Snapshot()
	wantEq(t, "switches", s.Switches, int64(2))
	for _, ms := range s.Models {
		if ms.InFlight != 0 || ms.Queued != 0 {
			t.Errorf("%s: in flight %d, queued %d after all released", ms.Name, ms.InFlight, ms.Queued)
		}
	}
}

func TestAcquireSwapPicksMostWaiters(t *testing.T) {
	e := newTestEnv(t, 8<<30, func(c *ManagerConfig) {
		c.Models.Standard = "mid:7g"
	})
	e.ol.mu.Lock()
	e.ol.pulled = append(e.ol.pulled, tag("mid:7g", 7*testGB))
	e.ol.mu.Unlock()
	e.m.Refresh(context.Background())

	a := e.acquireQueued(t, "big:8g")
	mustGranted(t, a)
	e.clock.Advance(time.Second)
	s1 := e.acquireQueued(t, "small:2g") // oldest, but alone
	e.clock.Advance(time.Second)
	m1 := e.acquireQueued(t, "mid:7g")
	m2 := e.acquireQueued(t, "mid:7g")
	a.release()
	mustGranted(t, m1)
	mustWaiting(t, s1)
	m1.release()
	mustGranted(t, m2)
	m2.release()
	mustGranted(t, s1)
	s1.release()
}

func TestAcquireSwapFairness(t *testing.T) {
	t.Run("max batch", func(t *testing.T) {
		e := newTestEnv(t, 8<<30, func(c *ManagerConfig) { c.MaxBatch = 2 })
		a1 := e.acquireQueued(t, "big:8g")
		mustGranted(t, a1)
		b := e.acquireQueued(t, "small:2g")
		a2 := e.acquireQueued(t, "big:8g")
		a3 := e.acquireQueued(t, "big:8g")
		a1.release()
		mustGranted(t, a2) // second of the batch
		a2.release()
		mustGranted(t, b) // the batch is used up: the executor's turn
		mustWaiting(t, a3)
		b.release()
		mustGranted(t, a3)
		a3.release()
	})
	t.Run("max wait counts from the turn start", func(t *testing.T) {
		e := newTestEnv(t, 8<<30, func(c *ManagerConfig) { c.MaxWait = time.Minute })
		a1 := e.acquireQueued(t, "big:8g")
		mustGranted(t, a1)
		b1 := e.acquireQueued(t, "small:2g")
		a2 := e.acquireQueued(t, "big:8g")
		e.clock.Advance(59 * time.Second)
		a1.release()
		mustGranted(t, a2)
		a3 := e.acquireQueued(t, "big:8g")
		e.clock.Advance(time.Second) // b1 has waited a minute
		a2.release()
		mustGranted(t, b1)
		mustWaiting(t, a3) // waited a second, but even a3's wait restarts with b1's turn
		b2 := e.acquireQueued(t, "small:2g")
		e.clock.Advance(30 * time.Second)
		b1.release()
		mustGranted(t, b2) // the executor's turn is 30s old: it keeps the GPU
		e.clock.Advance(30 * time.Second)
		b3 := e.acquireQueued(t, "small:2g")
		b2.release()
		mustGranted(t, a3) // the turn reached a minute: the planner's again
		mustWaiting(t, b3)
		a3.release()
		mustGranted(t, b3)
		b3.release()
	})
	t.Run("a long turn ends at the next release", func(t *testing.T) {
		e := newTestEnv(t, 8<<30, func(c *ManagerConfig) { c.MaxWait = time.Minute })
		a1 := e.acquireQueued(t, "big:8g")
		mustGranted(t, a1)
		b1 := e.acquireQueued(t, "small:2g")
		a1.release()
		mustGranted(t, b1) // the planner drained: the executor goes at once
		a2 := e.acquireQueued(t, "big:8g")
		b2 := e.acquireQueued(t, "small:2g")
		e.clock.Advance(2 * time.Minute)
		e.m.Refresh(context.Background()) // nothing to hand over while b1 runs
		mustWaiting(t, a2)
		b1.release()
		mustGranted(t, a2)
		mustWaiting(t, b2)
		a2.release()
		mustGranted(t, b2)
		b2.release()
	})
}

func TestAcquireSwapRunsSmallModelBeside(t *testing.T) {
	e := newTestEnv(t, 19<<29, nil) // 9.5 GiB: planner + embedder fit, planner + executor do not
	wantEq(t, "mode", e.m.Mode(), ModeSwap)
	a := e.acquireQueued(t, "big:8g")
	mustGranted(t, a)
	emb := e.acquireQueued(t, "embed:1")
	mustGranted(t, emb) // fits beside the planner
	ex := e.acquireQueued(t, "small:2g")
	mustWaiting(t, ex)
	a.release()
	mustGranted(t, ex) // the planner is gone; executor and embedder fit together
	emb.release()
	ex.release()
}

func TestAcquireCoResident(t *testing.T) {
	e := newTestEnv(t, 24<<30, func(c *ManagerConfig) {
		c.Endpoints[0].ParallelSlots = 2
		c.Models.Options = map[string]config.ModelOptions{"small:2g": {MaxConcurrent: 1}}
	})
	wantEq(t, "mode", e.m.Mode(), ModeCoResident)
	a1 := e.acquireQueued(t, "big:8g")
	a2 := e.acquireQueued(t, "big:8g")
	b1 := e.acquireQueued(t, "small:2g")
	mustGranted(t, a1)
	mustGranted(t, a2)
	mustGranted(t, b1)
	a3 := e.acquireQueued(t, "big:8g")
	b2 := e.acquireQueued(t, "small:2g")
	mustWaiting(t, a3) // two slots
	mustWaiting(t, b2) // max_concurrent 1
	wantEq(t, "planner limit", e.m.MaxConcurrent("big:8g"), 2)
	wantEq(t, "executor limit", e.m.MaxConcurrent("small:2g"), 1)
	b1.release()
	mustGranted(t, b2)
	a1.release()
	mustGranted(t, a3)
	for _, p := range []*pending{a2, a3, b2} {
		p.release()
	}
}

func TestAcquireBacksOffUnderPressure(t *testing.T) {
	e := newTestEnv(t, 0, func(c *ManagerConfig) { c.Endpoints[0].ParallelSlots = 4 })
	e.gpu.set(24*testGB, 20*testGB)
	e.m.Refresh(context.Background())
	wantEq(t, "limit with room", e.m.MaxConcurrent("big:8g"), 4)
	// Something else fills the GPU: one call at a time, no extra model.
	e.gpu.set(24*testGB, 100<<20)
	e.m.Refresh(context.Background())
	s := e.m.Snapshot()
	wantEq(t, "pressure", s.Pressure, true)
	wantEq(t, "mode", s.Mode, ModeSwap)
	wantEq(t, "limit under pressure", e.m.MaxConcurrent("big:8g"), 1)
	a1 := e.acquireQueued(t, "big:8g")
	mustGranted(t, a1)
	a2 := e.acquireQueued(t, "big:8g")
	emb := e.acquireQueued(t, "embed:1")
	mustWaiting(t, a2)
	mustWaiting(t, emb) // would fit by size, but not while VRAM is squeezed
	// The other process exits: the waiting call goes at once.
	e.gpu.set(24*testGB, 15*testGB)
	e.m.Refresh(context.Background())
	mustGranted(t, a2)
	a1.release()
	a2.release()
	mustGranted(t, emb)
	emb.release()
}

func TestAcquireCancel(t *testing.T) {
	e := newTestEnv(t, 8<<30, nil)
	a := e.acquireQueued(t, "big:8g")
	mustGranted(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	b := e.acquire(ctx, "small:2g")
	e.waitFor(t, func() bool { return e.held("small:2g") == 1 }, "executor to queue")
	cancel()
	<-b.done
	if !errors.Is(b.err, context.Canceled) || b.release != nil {
		t.Fatalf("Acquire = %v, %v; want context.Canceled and no release", b.release != nil, b.err)
	}
	wantEq(t, "executor queued after cancel", e.held("small:2g"), 0)
	a.release()
	wantEq(t, "serving after all done", e.m.Snapshot().Serving, "")

	// A context already done never queues.
	if _, err := e.m.Acquire(ctx, "big:8g"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with done ctx = %v", err)
	}
	// A waiter granted at the moment it gives up hands the slot back.
	c := e.acquireQueued(t, "big:8g")
	mustGranted(t, c)
	ctx2, cancel2 := context.WithCancel(context.Background())
	d := e.acquire(ctx2, "big:8g")
	e.waitFor(t, func() bool { return e.held("big:8g") == 2 }, "second planner call to queue")
	cancel2()
	c.release()
	<-d.done
	if d.err == nil {
		d.release()
	}
	e.waitFor(t, func() bool { return e.held("big:8g") == 0 }, "no slot leaked")
}

func TestAcquireManyConcurrent(t *testing.T) {
	// Hammer the admission from many goroutines: no call is lost, none
	// overlaps an incompatible model, and nothing leaks.
	e := newTestEnv(t, 8<<30, func(c *ManagerConfig) { c.MaxBatch = 3 })
	var mu sync.Mutex
	active := map[string]int{}
	var wg sync.WaitGroup
	ctx := context.Background()
	for i := range 40 {
		model := []string{"big:8g", "small:2g", "embed:1"}[i%3]
		wg.Go(func() {
			release, err := e.m.Acquire(ctx, model)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			active[model]++
			if active["big:8g"] > 0 && active["small:2g"] > 0 {
				t.Error("planner and executor admitted together on an 8 GiB GPU")
			}
			mu.Unlock()
			runtime.Gosched()
			mu.Lock()
			active[model]--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	s := e.m.Snapshot()
	var served int64
	for _, ms := range s.Models {
		served += ms.Served
		if ms.InFlight != 0 || ms.Queued != 0 {
			t.Errorf("%s: in flight %d, queued %d", ms.Name, ms.InFlight, ms.Queued)
		}
	}
	wantEq(t, "served", served, int64(40))
}

// An Ollama that does not answer is one warning per endpoint, not one per
// operation with the raw dial error, and its return is said once.
func TestManagerOllamaNotAnsweringLogsOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a closed port: connection refused
	u, _ := url.Parse("http://" + addr)
	down := api.NewClient(u, http.DefaultClient)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	e := newTestEnv(t, 24<<30, func(c *ManagerConfig) {
		c.Endpoints = []Endpoint{{Name: "local", ParallelSlots: 1, Running: down, Tags: down}}
		c.Logger = log
	})
	for range 3 {
		e.m.Refresh(context.Background())
	}
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, "not reachable") || strings.Contains(out, "connection refused") {
		t.Errorf("want one warning saying Ollama is not reachable, without the raw dial error; got %d:\n%s", n, out)
	}
	buf.Reset()
	e.m.mu.Lock()
	e.m.cfg.Endpoints = []Endpoint{{Name: "local", ParallelSlots: 1, Running: e.ol, Tags: e.ol}}
	e.m.mu.Unlock()
	e.m.Refresh(context.Background())
	if !strings.Contains(buf.String(), "ollama reachable again") {
		t.Errorf("want one line when Ollama answers again:\n%s", buf.String())
	}
}

// A model an OpenAI-compatible endpoint serves is not this GPU's: it runs
// beside whatever the GPU serves, held back by its concurrency limit only,
// and the snapshot reports it as external rather than missing or sized.
func TestExternalModelsBypassVRAM(t *testing.T) {
	e := newTestEnv(t, 8<<30, func(c *ManagerConfig) { c.External = map[string]string{"small:2g": "vllm"} })
	a1 := e.acquireQueued(t, "big:8g")
	mustGranted(t, a1)
	b1 := e.acquireQueued(t, "small:2g")
	mustGranted(t, b1) // on its own server, whatever the GPU serves
	b2 := e.acquireQueued(t, "small:2g")
	mustWaiting(t, b2) // one slot
	s := e.m.Snapshot()
	wantEq(t, "serving", s.Serving, "big:8g")
	var found bool
	for _, ms := range s.Models {
		if ms.Name == "small:2g" {
			found = true
			if !ms.External || ms.Endpoint != "vllm" || ms.Resident || ms.SizeBytes != 0 || ms.InFlight != 1 || ms.Queued != 1 {
				t.Errorf("external model status = %+v", ms)
			}
		}
	}
	if !found {
		t.Errorf("models = %+v, want small:2g reported", s.Models)
	}
	for _, mm := range s.Missing {
		if mm.Name == "small:2g" {
			t.Errorf("external model reported missing: %+v", mm)
		}
	}
	b1.release()
	mustGranted(t, b2)
	b2.release()
	a1.release()
}

// Package exec runs plans: admission of runs, the DAG of steps in parallel,
// tool and task steps, the failure ladder and guardrails, approvals, the
// validator and synthesizer, the scratchpad loop, and resume after a crash.
//
// exec declares the small interfaces it needs (Store, Planner, ChatModel,
// Tools, ModelLimiter, Publisher) and imports neither the model client nor
// the store.
package exec

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// ErrQueueFull is returned by Submit when executor.queue_size runs already
// wait; the API answers 503 and the client retries later.
var ErrQueueFull = errors.New("run queue is full: retry later, or raise executor.queue_size")

// ErrNoPendingApproval means Approve or Deny found nothing to decide.
var ErrNoPendingApproval = errors.New("no pending approval for this step")

// ErrRunFinished means the run already ended.
var ErrRunFinished = errors.New("run already finished")

// errShutdown is the cause given to runs when the engine stops: their state
// is left as it is in the store, to be resumed on the next start.
var errShutdown = errors.New("executor stopping")

// canceledBy is the cause given to a run cancelled through Cancel.
type canceledBy struct{ by string }

func (c *canceledBy) Error() string { return "canceled by " + c.by }

// Modes of running a request.
const (
	ModePlan       = "plan"
	ModeScratchpad = "scratchpad"
)

// Config shapes the executor.
type Config struct {
	// Executor is the [executor] section. MaxConcurrentRuns and QueueSize
	// bound the engine; MaxConcurrentSteps bounds the steps of one run.
	Executor config.ExecutorConfig
	// MaxSteps bounds a plan (planner.max_steps); replans beyond it are
	// refused.
	MaxSteps int
	// MaxTurns bounds model turns within one attempt of a task step.
	MaxTurns int
	// MaxRegenerate bounds regenerations of a step whose model produced bad
	// arguments or invalid output.
	MaxRegenerate int
	// NumPredict, when set, replaces the output bound agentd derives for
	// each executor call from what the call must produce (see outputBound).
	NumPredict int
}

func (c *Config) defaults() {
	ex := &c.Executor
	d := config.Default().Executor
	if ex.MaxConcurrentRuns <= 0 {
		ex.MaxConcurrentRuns = d.MaxConcurrentRuns
	}
	if ex.MaxConcurrentSteps <= 0 {
		ex.MaxConcurrentSteps = d.MaxConcurrentSteps
	}
	if ex.QueueSize <= 0 {
		ex.QueueSize = d.QueueSize
	}
	if ex.MaxErrors <= 0 {
		ex.MaxErrors = d.MaxErrors
	}
	if ex.MaxRepeatCalls <= 0 {
		ex.MaxRepeatCalls = d.MaxRepeatCalls
	}
	if ex.ApprovalTimeout <= 0 {
		ex.ApprovalTimeout = d.ApprovalTimeout
	}
	if c.MaxSteps <= 0 {
		c.MaxSteps = config.Default().Planner.MaxSteps
	}
	if c.MaxTurns <= 0 {
		c.MaxTurns = 6
	}
	if c.MaxRegenerate <= 0 {
		c.MaxRegenerate = 1
	}
	if ex.ScratchpadTurns <= 0 {
		ex.ScratchpadTurns = d.ScratchpadTurns
	}
}

// SubmitRequest is a request to run.
type SubmitRequest struct {
	Request   string
	Source    string // api | openai | mcp | cli | dashboard | demo | bench
	Workflow  string
	Params    map[string]any
	Priority  int
	Planner   string // auto | local | remote
	Sensitive bool
	Async     bool
	// Mode forces "scratchpad" (the bench baseline) or "plan".
	Mode     string
	Deadline *time.Time
}

// runMeta is what a run needs beyond its row to be resumed.
type runMeta struct {
	Params   map[string]any   `json:"params,omitempty"`
	Mode     string           `json:"mode,omitempty"`
	Template *run.TemplateUse `json:"template,omitempty"`
	// TraceID is the trace of the latest execution, when exported.
	TraceID string `json:"trace_id,omitempty"`
}

// Engine admits runs and executes them.
type Engine struct {
	cfg Config
	d   Deps
	log *slog.Logger
	val *validator

	mu       sync.Mutex
	queue    runQueue
	seq      uint64
	reserved int
	// submitting holds ids between their insert and their place in the
	// queue, so resume does not queue them twice.
	submitting map[string]bool
	running    int
	active     map[string]*runExec
	watchers   map[string]chan struct{}
	approvals  map[approvalKey]chan approvalDecision
	base       context.Context
	stopping   bool
	wake       chan struct{}
	wg         sync.WaitGroup
}

// New builds an engine; Run starts it.
func New(cfg Config, d Deps) *Engine {
	cfg.defaults()
	if d.Tracer == nil {
		d.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Limiter == nil {
		d.Limiter = noLimit{}
	}
	if d.Events == nil {
		d.Events = dropEvents{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.NewID == nil {
		d.NewID = newRunID
	}
	if d.IsTransient == nil {
		d.IsTransient = func(error) bool { return false }
	}
	if d.IsModelMissing == nil {
		d.IsModelMissing = func(error) bool { return false }
	}
	if d.IsBadOutput == nil {
		d.IsBadOutput = func(error) bool { return false }
	}
	if d.IsNoToolSupport == nil {
		d.IsNoToolSupport = func(error) bool { return false }
	}
	if d.SupportsTools == nil {
		d.SupportsTools = func(context.Context, string) bool { return true }
	}
	return &Engine{
		cfg: cfg, d: d, log: d.Log.With("component", "exec"), val: newValidator(),
		active: map[string]*runExec{}, submitting: map[string]bool{}, watchers: map[string]chan struct{}{},
		approvals: map[approvalKey]chan approvalDecision{}, wake: make(chan struct{}, 1),
	}
}

// check names a missing collaborator before anything runs.
func (d Deps) check() error {
	var missing []string
	for name, ok := range map[string]bool{"Store": d.Store != nil, "Planner": d.Planner != nil, "Chat": d.Chat != nil,
		"Models": d.Models != nil, "Tools": d.Tools != nil} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("exec: Deps lack %s", strings.Join(missing, ", "))
	}
	return nil
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "r_" + time.Now().UTC().Format("20060102T150405") + "_" + hex.EncodeToString(b[:])
}

// Run resumes the runs a previous process left unfinished, then admits
// runs until ctx ends. Runs still executing then are stopped where they
// are, their state kept for the next start; cancellation is a clean exit.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.d.check(); err != nil {
		return err
	}
	e.mu.Lock()
	if e.base != nil {
		e.mu.Unlock()
		return errors.New("exec: engine already running")
	}
	base, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	e.base = base
	e.mu.Unlock()
	defer stop(errShutdown)

	if err := e.resume(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for {
		e.admit()
		select {
		case <-ctx.Done():
			e.mu.Lock()
			e.stopping = true
			for _, x := range e.active {
				x.cancel(errShutdown)
			}
			e.mu.Unlock()
			e.wg.Wait()
			return nil
		case <-e.wake:
		}
	}
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// admit starts queued runs while there is room.
func (e *Engine) admit() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for !e.stopping && e.running < e.cfg.Executor.MaxConcurrentRuns && e.queue.Len() > 0 {
		it := heap.Pop(&e.queue).(*queuedRun)
		x := e.newRunExec(it.r)
		x.fresh = it.fresh
		e.running++
		e.active[it.r.ID] = x
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			x.execute()
			e.mu.Lock()
			e.running--
			delete(e.active, x.r.ID)
			e.mu.Unlock()
			e.signal()
		}()
	}
}

func (e *Engine) enqueue(r *run.Run, resumed bool) {
	e.mu.Lock()
	e.seq++
	heap.Push(&e.queue, &queuedRun{r: r, seq: e.seq, resumed: resumed})
	e.mu.Unlock()
	e.signal()
}

// Submit admits a request: the run row (status queued) is committed before
// Submit returns, so an acknowledged run survives a crash. It fails fast
// with ErrQueueFull when the queue is at executor.queue_size.
func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (*run.Run, error) {
	if req.Request == "" {
		return nil, errors.New("submit: empty request")
	}
	e.mu.Lock()
	if e.queue.waiting()+e.reserved >= e.cfg.Executor.QueueSize {
		e.mu.Unlock()
		return nil, ErrQueueFull
	}
	// Hold the place while the row is written so concurrent submits cannot
	// overfill the queue.
	e.reserved++
	id := e.d.NewID()
	e.submitting[id] = true
	e.mu.Unlock()
	release := func() {
		e.mu.Lock()
		e.reserved--
		delete(e.submitting, id)
		e.mu.Unlock()
	}

	meta, _ := json.Marshal(runMeta{Params: req.Params, Mode: req.Mode})
	r := &run.Run{
		ID: id, Status: run.Queued, Source: req.Source, Request: req.Request, Workflow: req.Workflow,
		Priority: req.Priority, Planner: req.Planner, Sensitive: req.Sensitive, Async: req.Async,
		DeadlineAt: req.Deadline, Meta: meta,
	}
	if r.Source == "" {
		r.Source = "api"
	}
	if r.Planner == "" {
		r.Planner = "auto"
	}
	r.CreatedAt = e.d.Now().UTC()
	if err := e.d.Store.InsertRun(ctx, r); err != nil {
		release()
		return nil, fmt.Errorf("submit: %w", err)
	}
	emit(e.d.Events, r.ID, events.RunCreatedData{Status: string(r.Status), Source: r.Source, Workflow: r.Workflow,
		Priority: r.Priority})
	cp := *r
	e.mu.Lock()
	e.reserved--
	delete(e.submitting, id)
	e.seq++
	heap.Push(&e.queue, &queuedRun{r: r, seq: e.seq, fresh: true})
	e.mu.Unlock()
	e.signal()
	e.log.Info("run queued", "run", &cp)
	return &cp, nil
}

// Wait blocks until the run ends (a terminal status, or review where a
// person must act) and returns it as stored.
func (e *Engine) Wait(ctx context.Context, runID string) (*run.Run, error) {
	e.mu.Lock()
	ch, ok := e.watchers[runID]
	if !ok {
		ch = make(chan struct{})
		e.watchers[runID] = ch
	}
	e.mu.Unlock()
	for {
		r, err := e.d.Store.GetRun(ctx, runID)
		if err != nil {
			return nil, fmt.Errorf("wait for run %s: %w", runID, err)
		}
		if r.Status.Terminal() || r.Status == run.Review {
			return r, nil
		}
		select {
		case <-ch:
			e.mu.Lock()
			if e.watchers[runID] == nil {
				ch = make(chan struct{})
				e.watchers[runID] = ch
			} else {
				ch = e.watchers[runID]
			}
			e.mu.Unlock()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// notifyEnded wakes waiters; called after the run's final state is stored.
func (e *Engine) notifyEnded(runID string) {
	e.mu.Lock()
	if ch, ok := e.watchers[runID]; ok {
		close(ch)
		delete(e.watchers, runID)
	}
	e.mu.Unlock()
}

// Cancel stops a run: a queued run never starts; a running one has its
// context cancelled, which stops model calls and kills tool processes.
func (e *Engine) Cancel(ctx context.Context, runID, by string) error {
	if by == "" {
		by = "unknown"
	}
	e.mu.Lock()
	if r, ok := e.queue.remove(runID); ok {
		e.mu.Unlock()
		return e.settleCanceled(ctx, r, by)
	}
	if x, ok := e.active[runID]; ok {
		e.mu.Unlock()
		// A run that just ended is still active until its executor
		// returns: it is finished all the same.
		x.mu.Lock()
		st := x.r.Status
		x.mu.Unlock()
		if st.Terminal() {
			return fmt.Errorf("cancel run %s: %w (%s)", runID, ErrRunFinished, st)
		}
		x.cancel(&canceledBy{by: by})
		return nil
	}
	e.mu.Unlock()
	r, err := e.d.Store.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", runID, err)
	}
	if r.Status.Terminal() {
		return fmt.Errorf("cancel run %s: %w (%s)", runID, ErrRunFinished, r.Status)
	}
	// Not in this process (in review, or not yet resumed): settle it here.
	return e.settleCanceled(ctx, r, by)
}

// settleCanceled ends a run that no executor holds.
func (e *Engine) settleCanceled(ctx context.Context, r *run.Run, by string) error {
	r.Status, r.Error = run.Canceled, "canceled by "+by
	now := e.d.Now().UTC()
	r.FinishedAt = &now
	if err := e.d.Store.UpdateRun(ctx, r); err != nil {
		return fmt.Errorf("cancel run %s: %w", r.ID, err)
	}
	emit(e.d.Events, r.ID, runStatusData(r))
	e.notifyEnded(r.ID)
	return nil
}

// Resubmit hands a deferred run back to the queue under its own id: the
// deferred queue calls it when the link or the budget window allows again
// (planner ""), or when fallback.deferred_max_age has passed (planner
// "local": the run stops waiting for the remote planner and plans locally).
func (e *Engine) Resubmit(ctx context.Context, runID, planner string) error {
	r, err := e.d.Store.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("resubmit run %s: %w", runID, err)
	}
	if r.Status != run.Deferred {
		return fmt.Errorf("resubmit run %s: it is %s, not deferred", runID, r.Status)
	}
	if planner != "" {
		r.Planner = planner
	}
	r.Status, r.Error = run.Queued, ""
	r.UpdatedAt = e.d.Now().UTC()
	if err := e.d.Store.UpdateRun(ctx, r); err != nil {
		return fmt.Errorf("resubmit run %s: %w", runID, err)
	}
	emit(e.d.Events, r.ID, runStatusData(r))
	e.enqueue(r, false)
	return nil
}

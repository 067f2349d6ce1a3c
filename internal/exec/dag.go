package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// runExec is one run being executed. The coordinator goroutine (execute)
// owns the plan and the step records; each step goroutine works on its own
// copy of its step and hands it back through results.
type runExec struct {
	e      *Engine
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex // guards r, calls, activeN, waitingN
	r        *run.Run
	calls    map[string]int
	activeN  int
	waitingN int

	plan    *plan.Plan
	version int
	// source is who made the current plan (local, remote, template,
	// cache, replan_local...); "" for a plan resumed from the store.
	source  string
	steps   map[string]*run.Step
	specs   map[string]plan.Step
	order   []string
	seqDone map[string]int

	// fresh: the run was submitted to this process and has no stored
	// plan yet, so loadOrPlan need not look for one.
	fresh bool

	results  chan stepResult
	inflight int
	stepSem  chan struct{}
	failures []string // failed steps waiting for the ladder's replan rungs
	replans  int
	remote   bool // the remote replan rung was tried
	stopped  string
}

// stepResult is a step goroutine's final state of its step.
type stepResult struct {
	step  *run.Step
	class string
}

func (e *Engine) newRunExec(r *run.Run) *runExec {
	ctx, cancel := context.WithCancelCause(e.base)
	return &runExec{
		e: e, log: e.log.With("run", r.ID), ctx: ctx, cancel: cancel, r: r, calls: map[string]int{},
		steps: map[string]*run.Step{}, specs: map[string]plan.Step{}, seqDone: map[string]int{},
		results: make(chan stepResult), stepSem: make(chan struct{}, e.cfg.Executor.MaxConcurrentSteps),
	}
}

// dbctx is for writes that must happen even when the run was cancelled.
func (x *runExec) dbctx() context.Context { return context.WithoutCancel(x.ctx) }

func (x *runExec) shuttingDown() bool { return errors.Is(context.Cause(x.ctx), errShutdown) }

// setStatus commits the run's status, then announces it.
func (x *runExec) setStatus(st run.Status, errMsg string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.setStatusLocked(st, errMsg)
}

func (x *runExec) setStatusLocked(st run.Status, errMsg string) error {
	if x.r.Status == st && errMsg == "" {
		return nil
	}
	x.r.Status = st
	if errMsg != "" {
		x.r.Error = errMsg
	}
	now := x.e.d.Now().UTC()
	// started_at is stamped by the store, the first time a run is written
	// as planning, running or waiting for approval.
	if st.Terminal() || st == run.Review {
		x.r.FinishedAt = &now
	}
	if err := x.e.d.Store.UpdateRun(x.dbctx(), x.r); err != nil {
		return fmt.Errorf("set run %s %s: %w", x.r.ID, st, err)
	}
	emit(x.e.d.Events, x.r.ID, runStatusData(x.r))
	return nil
}

func (x *runExec) meta() runMeta {
	var m runMeta
	if len(x.r.Meta) > 0 {
		_ = json.Unmarshal(x.r.Meta, &m)
	}
	return m
}

// mode is the run's mode as the planning service decided it (kept in the
// run's meta, so a resumed run keeps it); before planning, a plan.
func (x *runExec) mode() string {
	if m := x.meta().Mode; m != "" {
		return m
	}
	return ModePlan
}

// execute carries a run from admission to its end.
func (x *runExec) execute() {
	defer x.cancel(nil)
	// The run's own deadline: executor.run_timeout, or the request's
	// deadline when sooner. x.ctx becomes the bounded context, so every
	// step sees the same cause.
	if d := x.e.cfg.Executor.RunTimeout.D(); d > 0 {
		var stop context.CancelFunc
		x.ctx, stop = context.WithTimeoutCause(x.ctx, d, fmt.Errorf("run timeout %s reached", d))
		defer stop()
	}
	if dl := x.r.DeadlineAt; dl != nil {
		var stop context.CancelFunc
		x.ctx, stop = context.WithDeadlineCause(x.ctx, *dl, errors.New("request deadline reached"))
		defer stop()
	}
	var span trace.Span
	x.ctx, span = x.startRunSpan(x.ctx)
	// The span ends before the run's waiters wake, so that a flush after
	// the answer holds the whole run.
	endSpan := sync.OnceFunc(func() { x.endRunSpan(span) })
	defer endSpan()
	ctx := x.ctx
	x.log.Info("run started", "run", x.r, "trace_id", x.r.TraceID)
	err := x.executeIn(ctx)
	if x.shuttingDown() {
		x.log.Info("run left for resume", "run", x.r)
		return
	}
	if errors.Is(err, errDeferred) {
		return // not ended: the deferred queue hands it back
	}
	if err != nil {
		x.log.Error("run failed", "run", x.r, "err", err)
		if serr := x.setStatus(run.Failed, err.Error()); serr != nil {
			x.log.Error("record run failure", "err", serr)
		}
	}
	endSpan()
	x.ended()
	x.e.notifyEnded(x.r.ID)
	x.log.Info("run ended", "run", x.r)
}

// ended tells Deps.OnEnded how the run ended, before its waiters wake, so
// that what the run teaches (the plan cache) is in place for the next
// request.
func (x *runExec) ended() {
	if x.e.d.OnEnded == nil {
		return
	}
	x.mu.Lock()
	r := *x.r
	x.mu.Unlock()
	if !r.Status.Terminal() {
		return
	}
	tools := map[string]string{}
	for id, st := range x.steps {
		if st.Status == run.StepDone && st.Kind == plan.KindTool {
			tools[id] = st.Output
		}
	}
	x.e.d.OnEnded(x.dbctx(), Ended{Run: &r, Plan: x.plan, PlanVersion: x.version, PlanSource: x.source, ToolOutputs: tools})
}

// errDeferred ends a run's execution in this process without ending the
// run: it waits in the deferred queue.
var errDeferred = errors.New("run deferred")

// deferRun records the run as deferred and hands it to the deferred queue.
func (x *runExec) deferRun(reason string) error {
	if err := x.setStatus(run.Deferred, reason); err != nil {
		return err
	}
	x.mu.Lock()
	deadline := x.r.DeadlineAt
	x.mu.Unlock()
	if err := x.e.d.Defer(x.dbctx(), x.r.ID, deadline, reason); err != nil {
		return fmt.Errorf("defer run: %w", err)
	}
	x.log.Info("run deferred", "run", x.r, "reason", reason)
	return errDeferred
}

func (x *runExec) executeIn(ctx context.Context) error {
	if x.mode() == ModeScratchpad {
		return x.scratchpad(ctx)
	}
	if err := x.loadOrPlan(ctx); err != nil {
		if cerr := x.canceled(ctx); cerr != nil {
			return x.finishCanceled(cerr)
		}
		return err
	}
	if x.mode() == ModeScratchpad {
		return x.scratchpad(ctx)
	}
	if err := x.setStatus(run.Running, ""); err != nil {
		return err
	}
	x.runDAG(ctx)
	if cerr := x.canceled(ctx); cerr != nil && !x.shuttingDown() {
		if _, ok := cerr.(*canceledBy); ok {
			return x.finishCanceled(cerr)
		}
		// Run timeout: what finished becomes a partial answer.
		x.stopped = cerr.Error()
	}
	if x.shuttingDown() {
		return nil
	}
	return x.finish()
}

// canceled reports why ctx ended (nil while it has not).
func (x *runExec) canceled(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
}

func (x *runExec) finishCanceled(cause error) error {
	if x.shuttingDown() {
		return nil
	}
	for _, id := range x.order {
		st := x.steps[id]
		if st.Status == run.StepPending || st.Status == run.StepRunning || st.Status == run.StepWaitingApproval {
			x.setStep(st, run.StepCanceled, cause.Error())
		}
	}
	return x.setStatus(run.Canceled, cause.Error())
}

// loadOrPlan takes the run's stored plan and steps (a resumed run) or asks
// the planner for one and stores it.
func (x *runExec) loadOrPlan(ctx context.Context) error {
	store := x.e.d.Store
	version, raw := 0, []byte(nil)
	if !x.fresh {
		var err error
		if version, raw, err = store.LatestPlan(ctx, x.r.ID); err != nil {
			return err
		}
	}
	if version > 0 {
		var p plan.Plan
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("stored plan v%d of run %s: %w", version, x.r.ID, err)
		}
		steps, err := store.RunSteps(ctx, x.r.ID)
		if err != nil {
			return err
		}
		x.plan, x.version = &p, version
		x.replans = version - 1
		for _, st := range steps {
			var spec plan.Step
			if err := json.Unmarshal(st.Spec, &spec); err != nil {
				return fmt.Errorf("stored step %s of run %s: %w", st.StepID, x.r.ID, err)
			}
			x.steps[st.StepID], x.specs[st.StepID] = st, spec
			x.order = append(x.order, st.StepID)
			if st.Status == run.StepDone {
				x.seqDone[st.StepID] = len(x.seqDone)
			}
		}
		return x.recoverSteps(ctx)
	}
	if err := x.setStatus(run.Planning, ""); err != nil {
		return err
	}
	m := x.meta()
	pctx, span := x.startPlanSpan(ctx, "plan")
	res, err := x.e.d.Planner.Plan(pctx, PlanRequest{RunID: x.r.ID, Request: x.r.Request, Workflow: x.r.Workflow,
		Params: m.Params, Planner: x.r.Planner, Sensitive: x.r.Sensitive, Async: x.r.Async})
	x.endPlanSpan(span, res, err)
	// What planning decided is the run's, whether or not a plan came of
	// it: where it was routed and why, whether it is sensitive (narrowing
	// only: a sensitive workflow makes the run so for every later rung)
	// and whether it ran degraded.
	x.mu.Lock()
	x.r.Sensitive = x.r.Sensitive || res.Sensitive
	if x.r.Workflow == "" {
		x.r.Workflow = res.Workflow
	}
	if res.Route != "" {
		x.r.Route = res.Route
	}
	if len(res.Reasons) > 0 {
		x.r.RouteReasons = res.Reasons
	}
	x.r.Degraded = x.r.Degraded || res.Degraded
	if res.Template != nil {
		x.r.Template = res.Template
		m.Template = res.Template
		x.r.Meta, _ = json.Marshal(m)
	}
	x.mu.Unlock()
	var de *DeferError
	if errors.As(err, &de) && x.e.d.Defer != nil {
		return x.deferRun(de.Reason)
	}
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if res.Mode == ModeScratchpad {
		m.Mode = ModeScratchpad
		x.mu.Lock()
		x.r.Meta, _ = json.Marshal(m)
		x.mu.Unlock()
		return nil // executeIn hands the run to the scratchpad loop
	}
	if res.Plan == nil {
		return errors.New("plan: planner returned no plan")
	}
	if err := x.checkPlan(res.Plan, nil); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	x.mu.Lock()
	x.r.CostUSD += res.CostUSD
	x.mu.Unlock()
	return x.applyPlan(res, nil)
}

// checkPlan is the executor's own guard on a plan it is handed, by the
// plan package's rules; a replan is checked for the remaining work, with
// the done steps' results available to it.
func (x *runExec) checkPlan(p *plan.Plan, done map[string]bool) error {
	cat := catalog{tools: x.e.d.Tools, val: x.e.val}
	if len(done) == 0 {
		return planErrors(plan.Validate(p, cat, x.e.cfg.MaxSteps))
	}
	ids := make([]string, 0, len(done))
	for id := range done {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return planErrors(plan.ValidateRemaining(p, cat, x.e.cfg.MaxSteps, ids))
}

// idempotent: a tool step is as idempotent as its tool; a task step as
// the least idempotent tool it may call.
func (x *runExec) idempotent(s plan.Step) bool {
	names := s.Tools
	if s.Tool != "" {
		names = []string{s.Tool}
	}
	for _, n := range names {
		if t, ok := x.e.d.Tools.Lookup(n); ok && !t.Idempotent() {
			return false
		}
	}
	return true
}

// applyPlan makes res the run's plan: done steps are kept (a replan may
// depend on them), steps the new plan drops are skipped, new steps are
// pending. Plan and steps are committed together, then announced.
func (x *runExec) applyPlan(res PlanResult, superseded map[string]string) error {
	x.version++
	newIDs := map[string]bool{}
	var changed []*run.Step
	for _, s := range res.Plan.Steps {
		newIDs[s.ID] = true
		if old, ok := x.steps[s.ID]; ok && old.Status == run.StepDone {
			continue
		}
		spec, _ := json.Marshal(s)
		st := &run.Step{RunID: x.r.ID, StepID: s.ID, PlanVersion: x.version, Kind: s.Kind(), Tool: s.Tool, Tier: s.Tier,
			Spec: spec, DependsOn: s.DependsOn, Status: run.StepPending, Idempotent: x.idempotent(s)}
		if old, ok := x.steps[s.ID]; ok {
			st.Attempts = old.Attempts
		} else {
			x.order = append(x.order, s.ID)
		}
		x.steps[s.ID], x.specs[s.ID] = st, s
		changed = append(changed, st)
	}
	for _, id := range x.order {
		st := x.steps[id]
		if newIDs[id] || st.Status == run.StepDone || st.Status == run.StepReview {
			continue
		}
		if st.Status == run.StepPending || st.Status == run.StepFailed || st.Status == run.StepSkipped {
			st.Status = run.StepSkipped
			if why, ok := superseded[id]; ok {
				st.Error = fmt.Sprintf("superseded by plan v%d after: %s", x.version, why)
			} else {
				st.Error = fmt.Sprintf("not in plan v%d", x.version)
			}
			changed = append(changed, st)
		}
	}
	raw, err := json.Marshal(res.Plan)
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	source := res.Source
	if source == "" {
		source = "local"
	}
	attempts := res.Attempts
	if attempts <= 0 {
		attempts = 1
	}
	if err := x.e.d.Store.SavePlan(x.dbctx(), x.r.ID, x.version, source, res.Model, raw, attempts, res.Errors, changed); err != nil {
		return err
	}
	x.plan, x.source = res.Plan, source
	steps := make([]events.PlanStepData, 0, len(x.order))
	for _, id := range x.order {
		st := x.steps[id]
		steps = append(steps, events.PlanStepData{ID: id, Kind: st.Kind, Tool: st.Tool, Tier: st.Tier,
			DependsOn: st.DependsOn, Status: string(st.Status)})
	}
	emit(x.e.d.Events, x.r.ID, events.PlanCreatedData{Version: x.version, Source: source, Model: res.Model,
		Goal: res.Plan.Goal, Answer: res.Plan.Answer, Steps: steps})
	for _, st := range changed {
		if st.Status == run.StepSkipped {
			x.publishStep(st)
		}
	}
	return nil
}

func (x *runExec) publishStep(st *run.Step) {
	emit(x.e.d.Events, st.RunID, stepStatusData(st))
}

// setStep commits a step's new status and announces it.
func (x *runExec) setStep(st *run.Step, status run.StepStatus, errMsg string) {
	x.markStep(st, status, errMsg)
	if err := x.e.d.Store.UpdateStep(x.dbctx(), st); err != nil {
		x.log.Error("save step", "step", st, "err", err)
	}
	x.publishStep(st)
}

// markStep gives a step its new status (and start or end time) in memory
// only: the caller commits it, then announces it.
func (x *runExec) markStep(st *run.Step, status run.StepStatus, errMsg string) {
	st.Status = status
	if errMsg != "" || status == run.StepDone {
		st.Error = errMsg
	}
	now := x.e.d.Now().UTC()
	switch status {
	case run.StepRunning:
		if st.StartedAt == nil {
			st.StartedAt = &now
		}
	case run.StepDone, run.StepFailed, run.StepSkipped, run.StepCanceled, run.StepReview:
		st.FinishedAt = &now
	}
}

// runDAG schedules ready steps until nothing can run.
func (x *runExec) runDAG(ctx context.Context) {
	for {
		if ctx.Err() == nil && x.stopped == "" && len(x.failures) == 0 {
			x.skipBlocked()
			// Count every ready step active before any starts: a step that
			// pauses for approval at once must not show the run waiting
			// for a person while its siblings are still being launched.
			ready := x.ready()
			x.mu.Lock()
			x.activeN += len(ready)
			x.mu.Unlock()
			for _, id := range ready {
				x.launch(ctx, id)
			}
		}
		x.refreshStatus()
		if x.inflight == 0 {
			if len(x.failures) > 0 && ctx.Err() == nil && x.stopped == "" {
				x.climb(ctx)
				continue
			}
			return
		}
		res := <-x.results
		x.inflight--
		x.mu.Lock()
		x.activeN--
		x.mu.Unlock()
		st := res.step
		x.steps[st.StepID] = st
		switch st.Status {
		case run.StepDone:
			x.seqDone[st.StepID] = len(x.seqDone)
		case run.StepFailed:
			switch {
			case ctx.Err() != nil || x.stopped != "":
			case res.class == ClassMissing:
				// Every step on that model would fail the same way, and
				// a replan onto another would hide what to fix.
				x.stopped = st.Error
			default:
				x.failures = append(x.failures, st.StepID)
			}
		}
		if x.errorsExceeded() && x.stopped == "" {
			x.stopped = fmt.Sprintf("max_errors %d reached", x.e.cfg.Executor.MaxErrors)
			x.log.Warn("run stopped by guardrail", "reason", x.stopped)
		}
	}
}

// refreshStatus shows waiting_approval while the only thing going on is
// steps waiting for a person, running otherwise.
func (x *runExec) refreshStatus() {
	x.mu.Lock()
	defer x.mu.Unlock()
	want := x.liveStatusLocked()
	if x.r.Status != want && (x.r.Status == run.Running || x.r.Status == run.WaitingApproval) {
		if err := x.setStatusLocked(want, ""); err != nil {
			x.log.Error("run status", "err", err)
		}
	}
}

// liveStatusLocked is the status a live run shows: waiting_approval while
// the only steps active are waiting for a person, running otherwise.
func (x *runExec) liveStatusLocked() run.Status {
	if x.waitingN > 0 && x.activeN == x.waitingN {
		return run.WaitingApproval
	}
	return run.Running
}

func (x *runExec) errorsExceeded() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.r.ErrorCount >= x.e.cfg.Executor.MaxErrors
}

// addError counts a failed attempt against max_errors.
func (x *runExec) addError() {
	x.mu.Lock()
	x.r.ErrorCount++
	x.mu.Unlock()
}

// ready lists pending steps whose dependencies are all done.
func (x *runExec) ready() []string {
	var out []string
	for _, id := range x.order {
		st := x.steps[id]
		if st.Status != run.StepPending {
			continue
		}
		ok := true
		for _, d := range st.DependsOn {
			if dep, found := x.steps[d]; !found || dep.Status != run.StepDone {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, id)
		}
	}
	return out
}

// skipBlocked skips pending steps whose dependencies can no longer finish.
func (x *runExec) skipBlocked() {
	for changed := true; changed; {
		changed = false
		for _, id := range x.order {
			st := x.steps[id]
			if st.Status != run.StepPending {
				continue
			}
			for _, d := range st.DependsOn {
				dep, found := x.steps[d]
				if !found || dep.Status == run.StepFailed || dep.Status == run.StepSkipped ||
					dep.Status == run.StepReview || dep.Status == run.StepCanceled {
					x.setStep(st, run.StepSkipped, fmt.Sprintf("dependency %s did not complete", d))
					changed = true
					break
				}
			}
		}
	}
}

// outputs of done steps by id.
func (x *runExec) outputs() map[string]string {
	out := map[string]string{}
	for id, st := range x.steps {
		if st.Status == run.StepDone {
			out[id] = st.Output
		}
	}
	return out
}

// stateView condenses the run for an executor prompt.
func (x *runExec) stateView(except string) runStateView {
	v := runStateView{goal: x.r.Request}
	if x.plan != nil && x.plan.Goal != "" {
		v.goal = x.plan.Goal
	}
	for _, id := range x.order {
		st := x.steps[id]
		switch {
		case id == except:
		case st.Status == run.StepDone:
			v.completed = append(v.completed, stateEntry{id: id, order: x.seqDone[id], text: st.Output})
		case st.Status == run.StepPending || st.Status == run.StepRunning || st.Status == run.StepWaitingApproval:
			v.pending = append(v.pending, id)
		case st.Status == run.StepFailed || st.Status == run.StepReview:
			v.failed = append(v.failed, stateEntry{id: id, text: st.Error})
		}
	}
	x.mu.Lock()
	v.errors = x.r.ErrorCount
	x.mu.Unlock()
	return v
}

// launch starts a step on its own goroutine with a copy of its record.
func (x *runExec) launch(ctx context.Context, id string) {
	cp := *x.steps[id]
	st := &cp
	st.Status = run.StepRunning // owned by the goroutine from here
	x.steps[id] = st
	spec := x.specs[id]
	in := stepInput{spec: spec, outputs: x.outputs(), view: x.stateView(id)}
	x.inflight++ // activeN was counted by runDAG for the whole batch
	go func() {
		mine := *st
		mine.Status = run.StepPending
		class := ""
		func() {
			// A tool that panics fails its step, not the daemon.
			defer func() {
				if p := recover(); p != nil {
					x.addError()
					class = x.failStep(&mine, ClassTool, fmt.Sprintf("step panicked: %v", p))
				}
			}()
			class = x.runStep(ctx, &mine, in)
		}()
		x.results <- stepResult{step: &mine, class: class}
	}()
}

// climb takes the failed steps up the ladder's planning rungs: local
// replan (up to max_replans), remote replan (once, if the planner adapter
// allows it), then the human review queue.
func (x *runExec) climb(ctx context.Context) {
	failedIDs := x.failures
	x.failures = nil
	var failed []FailedStep
	superseded := map[string]string{}
	reviewable := false
	for _, id := range failedIDs {
		st := x.steps[id]
		failed = append(failed, FailedStep{ID: id, Error: st.Error})
		superseded[id] = st.Error
		if !strings.HasPrefix(st.Error, "denied by ") && !strings.HasPrefix(st.Error, abandonedPrefix) {
			reviewable = true
		}
	}
	if !reviewable {
		// Every failure is a person's "no": planning around a human
		// decision would second-guess it. The run ends partial, saying who
		// denied what and why.
		x.log.Info("not replanning around a denial", "steps", failedIDs)
		return
	}
	done := map[string]bool{}
	completed := map[string]string{}
	for id, st := range x.steps {
		if st.Status == run.StepDone {
			done[id] = true
			completed[id] = st.Output
		}
	}
	for ctx.Err() == nil {
		rung, remote := RungReplanLocal, false
		switch {
		case x.replans < x.e.cfg.Executor.MaxReplans:
		case !x.remote:
			rung, remote = RungReplanRemote, true
			x.remote = true
		default:
			if reviewable {
				x.toReview(failedIDs)
			}
			return
		}
		if !remote {
			x.replans++
		}
		ids := x.recordRung(failedIDs, rung)
		pctx, span := x.startPlanSpan(ctx, "replan")
		res, err := x.e.d.Planner.Replan(pctx, ReplanRequest{RunID: x.r.ID, Request: x.r.Request, Sensitive: x.r.Sensitive,
			Workflow: x.r.Workflow, Params: x.meta().Params,
			Plan: x.plan, Completed: completed, Failed: failed, Attempt: x.replans, Remote: remote})
		x.endPlanSpan(span, res, err)
		if err == nil && res.Plan == nil {
			err = errors.New("planner returned no plan")
		}
		if err == nil {
			err = x.checkPlan(res.Plan, done)
		}
		if err == nil {
			if res.Source == "" {
				res.Source = rung
			}
			x.mu.Lock()
			x.r.CostUSD += res.CostUSD
			x.r.Degraded = x.r.Degraded || res.Degraded
			x.mu.Unlock()
			err = x.applyPlan(res, superseded)
		}
		x.finishRung(failedIDs, ids, rung, err)
		if err == nil {
			x.log.Info("replanned", "rung", rung, "version", x.version)
			return
		}
		x.log.Warn("replan failed", "rung", rung, "err", err)
	}
}

// toReview sends failed steps to the human review queue.
func (x *runExec) toReview(ids []string) {
	for _, id := range ids {
		st := x.steps[id]
		if strings.HasPrefix(st.Error, "denied by ") || strings.HasPrefix(st.Error, abandonedPrefix) {
			continue
		}
		reason := fmt.Sprintf("failure ladder exhausted (retries, regenerate, %d local replans, remote replan): %s",
			x.replans, st.Error)
		x.review(st, reason)
	}
}

// review moves a step to the review queue: review_items row, step review,
// review.added event.
func (x *runExec) review(st *run.Step, reason string) {
	ctx := x.dbctx()
	if err := x.e.d.Store.AddReviewItem(ctx, x.r.ID, st.StepID, reason); err != nil {
		x.log.Error("add review item", "step", st, "err", err)
	}
	if aid, err := x.e.d.Store.StartAttempt(ctx, x.r.ID, st.StepID, st.Attempts+1, RungReview); err == nil {
		_ = x.e.d.Store.FinishAttempt(ctx, aid, "failed", "review", reason)
	}
	emit(x.e.d.Events, x.r.ID, events.StepAttemptData{StepID: st.StepID, N: st.Attempts + 1, Rung: RungReview,
		Status: "failed", Error: reason})
	errMsg := st.Error
	if errMsg == "" {
		errMsg = reason
	}
	x.setStep(st, run.StepReview, errMsg)
	emit(x.e.d.Events, x.r.ID, events.ReviewAddedData{StepID: st.StepID, Reason: reason})
}

// recordRung opens an attempt row per failed step for a planning rung.
func (x *runExec) recordRung(stepIDs []string, rung string) []int64 {
	var ids []int64
	for _, id := range stepIDs {
		st := x.steps[id]
		st.Attempts++
		aid, err := x.e.d.Store.StartAttempt(x.dbctx(), x.r.ID, id, st.Attempts, rung)
		if err != nil {
			x.log.Error("record rung", "err", err)
		}
		ids = append(ids, aid)
		emit(x.e.d.Events, x.r.ID, events.StepAttemptData{StepID: id, N: st.Attempts, Rung: rung, Status: "running"})
	}
	return ids
}

func (x *runExec) finishRung(stepIDs []string, aids []int64, rung string, err error) {
	status, msg := "ok", ""
	if err != nil {
		status, msg = "failed", err.Error()
		x.addError()
	}
	for _, aid := range aids {
		if aid != 0 {
			if ferr := x.e.d.Store.FinishAttempt(x.dbctx(), aid, status, rung, msg); ferr != nil {
				x.log.Error("finish rung", "err", ferr)
			}
		}
	}
	for _, id := range stepIDs {
		emit(x.e.d.Events, x.r.ID, events.StepAttemptData{StepID: id, N: x.steps[id].Attempts, Rung: rung,
			Status: status, ErrorClass: rung, Error: msg})
	}
}

// finish synthesizes the answer and settles the run's status: done when
// every step of the plan is done, review when a step waits for a person,
// partial otherwise.
func (x *runExec) finish() error {
	status := run.Done
	for _, id := range x.order {
		st := x.steps[id]
		switch st.Status {
		case run.StepDone:
		case run.StepReview:
			status = run.Review
		case run.StepSkipped:
			if strings.HasPrefix(st.Error, "superseded by plan") || strings.HasPrefix(st.Error, "not in plan") {
				continue
			}
			if status == run.Done {
				status = run.Partial
			}
		default:
			if status == run.Done {
				status = run.Partial
			}
		}
	}
	if x.stopped != "" && status == run.Done {
		status = run.Partial
	}
	answer := x.synthesize(x.dbctx())
	x.mu.Lock()
	x.r.Answer = answer
	errMsg := x.stopped
	if errMsg == "" && status != run.Done {
		errMsg = x.failureSummary()
	}
	err := x.setStatusLocked(status, errMsg)
	x.mu.Unlock()
	return err
}

// failureSummary names what did not complete.
func (x *runExec) failureSummary() string {
	var parts []string
	for _, id := range x.order {
		st := x.steps[id]
		if st.Status == run.StepDone || (st.Status == run.StepSkipped &&
			(strings.HasPrefix(st.Error, "superseded by plan") || strings.HasPrefix(st.Error, "not in plan"))) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s", id, st.Status, st.Error))
	}
	return strings.Join(parts, "; ")
}

// stepInput is what a step goroutine gets from the coordinator.
type stepInput struct {
	spec    plan.Step
	outputs map[string]string
	view    runStateView
}

// emit publishes p under its own type, so an event's type and data cannot
// disagree.
func emit(pub Publisher, runID string, p events.Payload) {
	pub.Emit(runID, p)
}

// runStatusData is the payload of every run.status event.
func runStatusData(r *run.Run) events.RunStatusData {
	return events.RunStatusData{Status: string(r.Status), Error: r.Error, ErrorCount: r.ErrorCount, CostUSD: r.CostUSD}
}

// stepStatusData is the payload of every step.status event; the dashboard
// draws the plan graph from it. A step that has ended (or waits for review)
// carries its start, end and duration, the metrics' step latency.
func stepStatusData(st *run.Step) events.StepStatusData {
	d := events.StepStatusData{StepID: st.StepID, Status: string(st.Status), Kind: st.Kind, Tool: st.Tool, Tier: st.Tier,
		DependsOn: st.DependsOn, PlanVersion: st.PlanVersion, Attempts: st.Attempts, Error: st.Error}
	switch st.Status {
	case run.StepDone, run.StepFailed, run.StepSkipped, run.StepCanceled, run.StepReview:
		d.StepTimes(st.StartedAt, st.FinishedAt)
	default:
		d.StartedAt = st.StartedAt
	}
	return d
}

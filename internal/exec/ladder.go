package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// Rungs of the failure ladder, as stored in attempts.rung.
const (
	RungFirst        = "first"
	RungRetry        = "retry"
	RungRegenerate   = "regenerate"
	RungReplanLocal  = "replan_local"
	RungReplanRemote = "replan_remote"
	RungReview       = "review"
	RungResume       = "resume"
)

// Error classes the ladder acts on, as stored in attempts.error_class.
const (
	ClassTransient = "transient"     // retry with backoff
	ClassBadArgs   = "bad_args"      // a model's arguments failed the tool's schema: regenerate
	ClassBadOutput = "bad_output"    // a model's output failed the step's schema: regenerate
	ClassTool      = "tool_error"    // the tool failed: replan
	ClassRepeat    = "repeat_call"   // the same call again and again: replan
	ClassTurns     = "turn_limit"    // no answer within the turns: replan
	ClassBind      = "bind"          // a reference could not be filled: replan
	ClassInvalid   = "invalid"       // a tool step's bound arguments failed the schema: replan
	ClassDenied    = "denied"        // a person (or the timeout) said no
	ClassModel     = "model"         // the model call failed for good
	ClassMissing   = "model_missing" // the model is not pulled: the run stops, no replan
	ClassCanceled  = "canceled"
	ClassGuardrail = "guardrail" // max_errors reached
)

// stepError carries the ladder class of a failure.
type stepError struct {
	class string
	err   error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func classed(class string, format string, args ...any) error {
	return &stepError{class: class, err: fmt.Errorf(format, args...)}
}

// classify names the rung a failure belongs to.
func (x *runExec) classify(err error, attemptCtx context.Context) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.class
	}
	if x.ctx.Err() != nil {
		return ClassCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(attemptCtx.Err(), context.DeadlineExceeded) {
		return ClassTransient // the per-step timeout
	}
	if x.e.d.IsModelMissing(err) {
		return ClassMissing
	}
	if x.e.d.IsTransient(err) {
		return ClassTransient
	}
	return ClassModel
}

// backoff before retry n (1-based): executor.retry_backoff doubled per try.
func (x *runExec) backoff(n int) time.Duration {
	d := x.e.cfg.Executor.RetryBackoff.D()
	for i := 1; i < n && d < time.Minute; i++ {
		d *= 2
	}
	return d
}

// runStep carries one step through approval, its attempts, and the
// retry and regenerate rungs. It returns the failure class (or "").
func (x *runExec) runStep(ctx context.Context, st *run.Step, in stepInput) string {
	results := resultsJSON(in.outputs)
	var args map[string]any
	var task string
	var err error
	if in.spec.Kind() == plan.KindTool {
		args, err = plan.Bind(in.spec.Args, results)
		if args == nil {
			args = map[string]any{}
		}
		if err == nil {
			st.Args, _ = json.Marshal(args)
		}
	} else {
		task, err = plan.BindText(in.spec.Task, results)
	}
	if err != nil {
		x.addError()
		return x.failStep(st, ClassBind, err.Error())
	}

	if ok, class, msg := x.gate(ctx, st, in.spec, args, task); !ok {
		if class == ClassCanceled {
			return x.canceledStep(st)
		}
		x.addError()
		return x.failStep(st, class, msg)
	}

	select {
	case x.stepSem <- struct{}{}:
		defer func() { <-x.stepSem }()
	case <-ctx.Done():
		return x.canceledStep(st)
	}
	// Running from here; the store has it with the attempt's first write
	// (see attempt), and it is announced once committed.
	x.markStep(st, run.StepRunning, "")

	var runner func(ctx context.Context, a *attempt, feedback string) (string, error)
	if in.spec.Kind() == plan.KindTool {
		runner = func(ctx context.Context, a *attempt, _ string) (string, error) {
			return x.toolStep(ctx, st, in.spec, args, a)
		}
	} else {
		t := x.newTaskConv(st, in, task)
		runner = func(ctx context.Context, a *attempt, feedback string) (string, error) {
			x.openAttempt(st, a)
			return t.attempt(ctx, feedback)
		}
	}

	rung := RungFirst
	if st.Attempts > 0 {
		rung = RungResume
	}
	retries, regens := 0, 0
	feedback := ""
	for first := true; ; first = false {
		st.Attempts++
		a := &attempt{n: st.Attempts, rung: rung, first: first}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if d := x.e.cfg.Executor.StepTimeout.D(); d > 0 {
			actx, cancel = context.WithTimeout(ctx, d)
		}
		out, err := runner(actx, a, feedback)
		class := ""
		if err != nil {
			class = x.classify(err, actx)
		}
		cancel()
		if err == nil {
			st.Output = out
			x.markStep(st, run.StepDone, "")
			x.closeAttempt(st, a, "ok", "", "")
			x.publishStep(st)
			return ""
		}
		if class == ClassCanceled || ctx.Err() != nil {
			if x.shuttingDown() {
				return ClassCanceled // left as it is for resume
			}
			x.closeAttempt(st, a, "failed", ClassCanceled, err.Error())
			return x.canceledStep(st)
		}
		x.closeAttempt(st, a, "failed", class, err.Error())
		x.addError()
		if x.errorsExceeded() {
			return x.failStep(st, class, fmt.Sprintf("%v (max_errors %d reached)", err, x.e.cfg.Executor.MaxErrors))
		}
		switch {
		case class == ClassTransient && retries < x.e.cfg.Executor.MaxRetries:
			retries++
			rung = RungRetry
			if !sleepCtx(ctx, x.backoff(retries)) {
				return x.canceledStep(st)
			}
			continue
		case (class == ClassBadArgs || class == ClassBadOutput) && in.spec.Kind() == plan.KindTask &&
			regens < x.e.cfg.MaxRegenerate:
			regens++
			rung = RungRegenerate
			feedback = err.Error()
			continue
		}
		return x.failStep(st, class, err.Error())
	}
}

// attempt is one try of a step on a rung of the ladder, and what the store
// has of it. A task step's attempt is written as it starts, with the
// step's state. A tool step's attempt is its one tool call: the step's
// state, the attempt and the 'started' call are written in one commit just
// before the tool runs, and the call's end, the attempt's and the step's
// in one commit after. Each write is announced once committed.
type attempt struct {
	n    int
	rung string
	// first is the first attempt this process makes of the step: it
	// announces the step running.
	first bool
	id    int64        // the attempts row, once written
	call  *toolCallEnd // a tool step's call, closed with the attempt
}

// toolCallEnd is how a tool step's call ended, kept until the attempt
// closes with it.
type toolCallEnd struct {
	id                  int64
	tool, key           string
	status, output, err string
	exitCode            *int
	ms                  int64
	outputBytes         int
}

// openAttempt commits the step's state and the attempt's start, then
// announces them.
func (x *runExec) openAttempt(st *run.Step, a *attempt) {
	id, err := x.e.d.Store.StartStepAttempt(x.dbctx(), st, a.rung)
	if err != nil {
		x.log.Error("record attempt", "step", st, "err", err)
	}
	a.id = id
	x.announceAttempt(st, a)
}

// announceAttempt publishes what opening the attempt committed: the step
// running (on its first attempt here) and the attempt.
func (x *runExec) announceAttempt(st *run.Step, a *attempt) {
	if a.first {
		x.publishStep(st)
	}
	emit(x.e.d.Events, st.RunID, events.StepAttemptData{StepID: st.StepID, N: a.n, Rung: a.rung, Status: "running"})
}

// closeAttempt commits how the attempt ended together with the step's
// state as it stands (and a tool step's call), then announces the call and
// the attempt; the caller announces the step.
func (x *runExec) closeAttempt(st *run.Step, a *attempt, status, class, msg string) {
	ctx := x.dbctx()
	if c := a.call; c != nil {
		if err := x.e.d.Store.FinishToolAttempt(ctx, st, a.id, c.id, status, class, msg, c.output, c.err, c.exitCode); err != nil {
			x.log.Error("finish tool attempt", "step", st, "err", err)
		}
		emit(x.e.d.Events, st.RunID, events.ToolCallData{StepID: st.StepID, Tool: c.tool, ArgsHash: c.key, Status: c.status,
			Error: c.err, MS: c.ms, OutputBytes: c.outputBytes})
	} else {
		if a.id == 0 {
			// It ended before anything was written (arguments refused,
			// the repeat guard, the wait for the tool): record it now.
			x.openAttempt(st, a)
		}
		if a.id != 0 {
			if err := x.e.d.Store.FinishStepAttempt(ctx, a.id, st, status, class, msg); err != nil {
				x.log.Error("finish attempt", "step", st, "err", err)
			}
		}
	}
	emit(x.e.d.Events, st.RunID, events.StepAttemptData{StepID: st.StepID, N: a.n, Rung: a.rung, Status: status,
		ErrorClass: class, Error: msg})
}

func (x *runExec) failStep(st *run.Step, class, msg string) string {
	x.setStep(st, run.StepFailed, msg)
	x.log.Warn("step failed", "step", st, "class", class, "err", msg)
	return class
}

func (x *runExec) canceledStep(st *run.Step) string {
	if x.shuttingDown() {
		return ClassCanceled
	}
	why := "canceled"
	if cause := context.Cause(x.ctx); cause != nil {
		why = cause.Error()
	}
	x.setStep(st, run.StepCanceled, why)
	return ClassCanceled
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// callKey identifies a call for repeat detection: tool and canonical
// arguments (encoding/json sorts map keys).
func callKey(tool string, args map[string]any) (key string, argsJSON []byte) {
	if args == nil {
		args = map[string]any{}
	}
	argsJSON, _ = json.Marshal(args)
	sum := sha256.Sum256(append([]byte(tool+"\x00"), argsJSON...))
	return hex.EncodeToString(sum[:16]), argsJSON
}

// countCall refuses a call already made executor.max_repeat_calls times
// in this run: a model looping on one call burns the budget for nothing.
func (x *runExec) countCall(tool, key string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.calls[key] >= x.e.cfg.Executor.MaxRepeatCalls {
		return classed(ClassRepeat, "call %s with the same arguments was already made %d times (max_repeat_calls)",
			tool, x.calls[key])
	}
	x.calls[key]++
	return nil
}

// callTool runs one tool call with crash evidence around it: the step and
// a 'started' tool call row are committed before the tool runs, the result
// after.
func (x *runExec) callTool(ctx context.Context, st *run.Step, tool Tool, args map[string]any) (string, error) {
	return x.invokeTool(ctx, st, tool, args, nil)
}

// invokeTool is callTool; with a set (a tool step's attempt) the call's
// start is committed with the attempt's and its end is left for the
// attempt to commit (closeAttempt).
func (x *runExec) invokeTool(ctx context.Context, st *run.Step, tool Tool, args map[string]any, a *attempt) (string, error) {
	name := tool.Name()
	key, argsJSON := callKey(name, args)
	if err := x.countCall(name, key); err != nil {
		return "", err
	}
	release, err := tool.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("wait for tool %s: %w", name, err)
	}
	defer release()
	var id int64
	if a != nil {
		a.id, id, err = x.e.d.Store.BeginToolAttempt(x.dbctx(), st, a.rung, name, argsJSON, key)
	} else {
		id, err = x.e.d.Store.BeginToolCall(x.dbctx(), st, name, argsJSON, key)
	}
	if err != nil {
		return "", fmt.Errorf("record tool call %s: %w", name, err)
	}
	if a != nil {
		x.announceAttempt(st, a)
	}
	emit(x.e.d.Events, st.RunID, events.ToolCallData{StepID: st.StepID, Tool: name, ArgsHash: key, Status: "started"})
	start := time.Now()
	tctx, span := x.startToolSpan(ctx, st, name, string(argsJSON))
	res, err := tool.Call(withRunID(tctx, st.RunID), args)
	x.endToolSpan(span, res.Output, err)
	if x.shuttingDown() {
		// Whether the call had effects is unknown: close it as interrupted
		// (with a finish time) and let the resumed run decide by the
		// tool's idempotence.
		if _, ferr := x.e.d.Store.InterruptToolCalls(x.dbctx(), st.RunID, id, "agentd shut down during the call; whether it took effect is unknown"); ferr != nil {
			x.log.Error("close interrupted tool call", "step", st, "err", ferr)
		}
		return "", context.Cause(x.ctx)
	}
	out := capText(res.Output, int(x.e.cfg.Executor.ToolOutputCap))
	status, msg := "ok", ""
	if err != nil {
		status, msg = "failed", err.Error()
	}
	if a != nil {
		a.call = &toolCallEnd{id: id, tool: name, key: key, status: status, output: out, err: msg, exitCode: res.ExitCode,
			ms: time.Since(start).Milliseconds(), outputBytes: len(res.Output)}
	} else {
		if ferr := x.e.d.Store.FinishToolCall(x.dbctx(), id, status, out, msg, res.ExitCode); ferr != nil {
			x.log.Error("finish tool call", "step", st, "err", ferr)
		}
		emit(x.e.d.Events, st.RunID, events.ToolCallData{StepID: st.StepID, Tool: name, ArgsHash: key, Status: status,
			Error: msg, MS: time.Since(start).Milliseconds(), OutputBytes: len(res.Output)})
	}
	if err != nil {
		if ctx.Err() != nil {
			return out, err
		}
		if !strings.HasPrefix(err.Error(), "tool "+name) { // tools may name themselves already
			err = fmt.Errorf("tool %s: %w", name, err)
		}
		if x.e.d.IsTransient(err) {
			return out, &stepError{class: ClassTransient, err: err}
		}
		return out, &stepError{class: ClassTool, err: err}
	}
	return out, nil
}

type runIDKey struct{}

func withRunID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, runIDKey{}, id)
}

// RunIDFromContext names the run a tool call belongs to, for tools (and
// tool adapters) that keep per-run state.
func RunIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(runIDKey{}).(string)
	return id
}

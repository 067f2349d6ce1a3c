package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// Approval statuses, as stored in approvals.status.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
)

type approvalKey struct{ run, step string }

type approvalDecision struct{ status, by, reason string }

// needsApproval names the tool a step may not run without a person's yes:
// a tool step's tool, or for a task step the first listed tool that
// requires approval (the approval then covers the whole step).
func (x *runExec) needsApproval(spec plan.Step) (string, bool) {
	names := spec.Tools
	if spec.Tool != "" {
		names = []string{spec.Tool}
	}
	for _, n := range names {
		if t, ok := x.e.d.Tools.Lookup(n); ok && t.RequiresApproval() {
			return n, true
		}
	}
	return "", false
}

// gate holds a step until it is approved when its tool requires approval.
// The rest of the DAG goes on meanwhile. The request and the decision are
// stored, so a restart keeps waiting with the same expiry.
func (x *runExec) gate(ctx context.Context, st *run.Step, spec plan.Step, args map[string]any, task string) (ok bool, class, msg string) {
	tool, need := x.needsApproval(spec)
	if !need {
		return true, "", ""
	}
	e := x.e
	key := approvalKey{st.RunID, st.StepID}
	ch := make(chan approvalDecision, 1)
	e.mu.Lock()
	e.approvals[key] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.approvals, key)
		e.mu.Unlock()
	}()

	var shown []byte
	if args != nil {
		shown, _ = json.Marshal(args)
	} else {
		shown, _ = json.Marshal(map[string]any{"task": task})
	}
	timeout := e.cfg.Executor.ApprovalTimeout.D()
	status, expires, by, reason, err := e.d.Store.RequestApproval(x.dbctx(), st.RunID, st.StepID, tool, shown,
		e.d.Now().Add(timeout))
	if err != nil {
		return false, ClassDenied, err.Error()
	}
	d := approvalDecision{status: status, by: by, reason: reason}
	if status == ApprovalPending {
		x.pauseForApproval(st)
		emit(e.d.Events, st.RunID, events.ApprovalRequestedData{StepID: st.StepID, Tool: tool,
			Args: json.RawMessage(shown), ExpiresAt: expires})
		x.log.Info("approval requested", "step", st, "tool", tool, "expires", expires)
		d, err = x.awaitDecision(ctx, st, ch, expires, timeout)
		x.mu.Lock()
		x.waitingN--
		x.mu.Unlock()
		x.refreshStatus()
		if err != nil {
			return false, ClassCanceled, err.Error()
		}
	}
	if d.status == ApprovalApproved {
		return true, "", ""
	}
	if d.reason == "" {
		d.reason = "no reason given"
	}
	return false, ClassDenied, fmt.Sprintf("denied by %s: %s", d.by, d.reason)
}

func (x *runExec) awaitDecision(ctx context.Context, st *run.Step, ch chan approvalDecision, expires time.Time, timeout time.Duration) (approvalDecision, error) {
	wait := expires.Sub(x.e.d.Now())
	if wait < 0 {
		wait = 0
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case d := <-ch:
		return d, nil
	case <-ctx.Done():
		return approvalDecision{}, context.Cause(ctx)
	case <-timer.C:
		d := approvalDecision{status: ApprovalExpired, by: "timeout",
			reason: fmt.Sprintf("no decision within approval_timeout %s", timeout)}
		decided, err := x.e.d.Store.DecideApproval(x.dbctx(), st.RunID, st.StepID, d.status, d.by, d.reason)
		if err != nil {
			return approvalDecision{}, err
		}
		if !decided {
			// A person decided at the same moment: theirs stands.
			select {
			case d = <-ch:
			case <-time.After(time.Second):
				status, _, by, reason, err := x.e.d.Store.RequestApproval(x.dbctx(), st.RunID, st.StepID, "", nil, expires)
				if err != nil {
					return approvalDecision{}, err
				}
				d = approvalDecision{status: status, by: by, reason: reason}
			}
			return d, nil
		}
		emit(x.e.d.Events, st.RunID, events.ApprovalDecidedData{StepID: st.StepID, Decision: d.status, By: d.by,
			Reason: d.reason})
		return d, nil
	}
}

// Approve lets a waiting step run.
func (e *Engine) Approve(ctx context.Context, runID, stepID, by, reason string) error {
	return e.decide(ctx, runID, stepID, ApprovalApproved, by, reason)
}

// Deny refuses a waiting step; it fails with "denied by <by>: <reason>"
// and the failure ladder and partial answer follow.
func (e *Engine) Deny(ctx context.Context, runID, stepID, by, reason string) error {
	return e.decide(ctx, runID, stepID, ApprovalDenied, by, reason)
}

func (e *Engine) decide(ctx context.Context, runID, stepID, status, by, reason string) error {
	if by == "" {
		by = "unknown"
	}
	ok, err := e.d.Store.DecideApproval(ctx, runID, stepID, status, by, reason)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s step %s of run %s: %w", status, stepID, runID, ErrNoPendingApproval)
	}
	emit(e.d.Events, runID, events.ApprovalDecidedData{StepID: stepID, Decision: status, By: by, Reason: reason})
	e.log.Info("approval decided", "run", runID, "step", stepID, "decision", status, "by", by)
	e.mu.Lock()
	ch := e.approvals[approvalKey{runID, stepID}]
	e.mu.Unlock()
	if ch != nil {
		select {
		case ch <- approvalDecision{status: status, by: by, reason: reason}:
		default:
		}
	}
	return nil
}

// pauseForApproval marks the step waiting and, when nothing else of the run
// is active, the run too, in one commit: a reader never sees a step waiting
// for a person under a run that says it is running.
func (x *runExec) pauseForApproval(st *run.Step) {
	st.Status = run.StepWaitingApproval
	x.mu.Lock()
	x.waitingN++
	runChanged := false
	if want := x.liveStatusLocked(); want != x.r.Status && x.r.Status == run.Running {
		x.r.Status, runChanged = want, true
	}
	if err := x.e.d.Store.UpdateStepAndRun(x.dbctx(), st, x.r); err != nil {
		x.log.Error("save approval pause", "step", st, "err", err)
	}
	x.mu.Unlock()
	x.publishStep(st)
	if runChanged {
		x.mu.Lock()
		emit(x.e.d.Events, x.r.ID, runStatusData(x.r))
		x.mu.Unlock()
	}
}

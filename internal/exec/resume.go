package exec

import (
	"context"
	"fmt"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// resume re-admits the runs a previous process left unfinished. Queued runs
// queue again; runs that were planning or running continue from their
// stored state (recoverSteps) ahead of new work.
func (e *Engine) resume(ctx context.Context) error {
	runs, err := e.d.Store.UnfinishedRuns(ctx)
	if err != nil {
		return fmt.Errorf("resume runs: %w", err)
	}
	for _, r := range runs {
		if e.known(r.ID) {
			continue // submitted to this process before Run started
		}
		e.log.Info("resuming run", "run", r)
		e.enqueue(r, r.Status != run.Queued)
	}
	return nil
}

// recoverSteps settles steps a crash interrupted, before anything runs:
//   - done steps stay done and are never redone;
//   - an interrupted idempotent step runs again;
//   - an interrupted non-idempotent step that may have called its tool goes
//     to the review queue and is never run a second time silently; when the
//     stored call had finished ok (the crash came between the tool's result
//     and the step's), its result is taken as the step's;
//   - a step waiting for approval asks again, which finds the stored request
//     with its first expiry;
//   - a failed step whose ladder was cut short climbs on.
func (x *runExec) recoverSteps(ctx context.Context) error {
	// A crash or kill leaves calls 'started' with no finish time; close
	// them first (a clean shutdown has closed its own).
	if n, err := x.e.d.Store.InterruptToolCalls(ctx, x.r.ID, 0, "agentd stopped (crash or kill) during the call; whether it took effect is unknown"); err != nil {
		return err
	} else if n > 0 {
		x.log.Info("closed tool calls a crash interrupted", "calls", n)
	}
	for _, id := range x.order {
		st := x.steps[id]
		switch st.Status {
		case run.StepWaitingApproval:
			st.Status = run.StepPending
		case run.StepFailed:
			x.failures = append(x.failures, id)
		case run.StepRunning:
			if st.Idempotent {
				x.log.Info("re-running interrupted idempotent step", "step", st)
				x.setStep(st, run.StepPending, "")
				continue
			}
			status, output, found, err := x.e.d.Store.LastToolCall(ctx, x.r.ID, id)
			if err != nil {
				return err
			}
			switch {
			case !found:
				// The tool was never called: nothing happened that could repeat.
				x.setStep(st, run.StepPending, "")
			case status == "ok" && st.Kind == plan.KindTool:
				st.Output = output
				x.setStep(st, run.StepDone, "")
				x.seqDone[id] = len(x.seqDone)
			default:
				reason := fmt.Sprintf("interrupted by a restart while its non-idempotent tool call was %s; "+
					"check whether it took effect, it will not be run again automatically", status)
				if status == "ok" || status == "failed" {
					reason = "interrupted by a restart after non-idempotent tool calls; they will not be repeated automatically"
				}
				st.Error = reason
				x.review(st, reason)
			}
		}
	}
	return nil
}

// known reports whether this process already holds the run.
func (e *Engine) known(runID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.active[runID]; ok || e.submitting[runID] {
		return true
	}
	for _, it := range e.queue {
		if it.r.ID == runID {
			return true
		}
	}
	return false
}

package exec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// Review actions: what a person decided about a step in the review queue.
const (
	// ReviewRetry runs the step again: the person checked that doing so is
	// safe (the interrupted call did not take effect).
	ReviewRetry = "retry"
	// ReviewDone takes the step as done, with the person's note as its
	// result (the interrupted call did take effect).
	ReviewDone = "done"
	// ReviewFail gives the step up; the run ends with what it has.
	ReviewFail = "fail"
)

// Review errors.
var (
	ErrNoReview      = errors.New("no step of that run is waiting in the review queue")
	ErrInvalidReview = errors.New("invalid review action")
)

// abandonedPrefix marks a step a person gave up in review; like a denial,
// it is not planned around.
const abandonedPrefix = "abandoned by "

// ResolveReview applies a person's decision to a step in the review queue
// and resumes its run: the step, the steps skipped because of it, the run
// and the review item change in one commit before the run is admitted
// again.
func (e *Engine) ResolveReview(ctx context.Context, runID, stepID, action, by, note string) error {
	switch action {
	case ReviewRetry, ReviewDone, ReviewFail:
	default:
		return fmt.Errorf("%w %q: use %q, %q or %q", ErrInvalidReview, action, ReviewRetry, ReviewDone, ReviewFail)
	}
	if by == "" {
		by = "unknown"
	}
	if e.known(runID) {
		return fmt.Errorf("run %s is executing: %w", runID, ErrNoReview)
	}
	r, err := e.d.Store.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	if r.Status != run.Review {
		return fmt.Errorf("run %s is %s: %w", runID, r.Status, ErrNoReview)
	}
	steps, err := e.d.Store.RunSteps(ctx, runID)
	if err != nil {
		return err
	}
	var target *run.Step
	for _, st := range steps {
		if st.StepID == stepID && st.Status == run.StepReview {
			target = st
		}
	}
	if target == nil {
		return fmt.Errorf("step %s of run %s: %w", stepID, runID, ErrNoReview)
	}
	now := e.d.Now().UTC()
	switch action {
	case ReviewRetry:
		target.Status, target.Error, target.StartedAt, target.FinishedAt = run.StepPending, "", nil, nil
	case ReviewDone:
		if strings.TrimSpace(note) == "" {
			note = "completed, as checked by " + by
		}
		target.Status, target.Output, target.Error, target.FinishedAt = run.StepDone, note, "", &now
	case ReviewFail:
		target.Status, target.Error, target.FinishedAt = run.StepFailed, fmt.Sprintf("%s%s in review: %s", abandonedPrefix, by, note), &now
	}
	changed := []*run.Step{target}
	if action != ReviewFail {
		// Steps skipped because this one did not complete may run now; any
		// still blocked are skipped again when the run resumes.
		for _, st := range steps {
			if st.Status == run.StepSkipped && strings.HasPrefix(st.Error, "dependency ") {
				st.Status, st.Error, st.StartedAt, st.FinishedAt = run.StepPending, "", nil, nil
				changed = append(changed, st)
			}
		}
	}
	r.Status, r.FinishedAt = run.Running, nil
	resolution := fmt.Sprintf("%s by %s", action, by)
	if note != "" {
		resolution += ": " + note
	}
	ok, err := e.d.Store.ResolveReviewItem(ctx, runID, stepID, resolution, changed, r)
	if err != nil {
		return fmt.Errorf("resolve review of %s/%s: %w", runID, stepID, err)
	}
	if !ok {
		return fmt.Errorf("step %s of run %s: %w", stepID, runID, ErrNoReview)
	}
	emit(e.d.Events, runID, events.ReviewResolvedData{StepID: stepID, Action: action, By: by, Note: note})
	for _, st := range changed {
		emit(e.d.Events, runID, stepStatusData(st))
	}
	emit(e.d.Events, runID, runStatusData(r))
	e.log.Info("review resolved", "run", r, "step", stepID, "action", action, "by", by)
	e.enqueue(r, true)
	return nil
}

package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/agentd/agentd/internal/db"
)

// Reviews is the human review queue: steps the failure ladder or a crash
// handed to a person. ResolveReview returns ErrNotFound (wrapped) when the
// step has no open item and ErrInvalid for an unknown action.
type Reviews interface {
	OpenReviews(ctx context.Context) ([]db.ReviewItem, error)
	ResolveReview(ctx context.Context, runID, stepID, action, by, note string) error
}

type reviewBody struct {
	Action string `json:"action"` // retry | done | fail
	Note   string `json:"note"`
}

func (rt *routes) listReviews(w http.ResponseWriter, r *http.Request) {
	if rt.d.Reviews == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "the review queue is not available in this build")
		return
	}
	items, err := rt.d.Reviews.OpenReviews(r.Context())
	if err != nil {
		rt.engineError(w, r, "list reviews", err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"reviews": items})
}

func (rt *routes) resolveReview(w http.ResponseWriter, r *http.Request) {
	if rt.d.Reviews == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "the review queue is not available in this build")
		return
	}
	var b reviewBody
	if !decodeJSON(w, r, &b) {
		return
	}
	switch b.Action {
	case "retry", "done", "fail":
	default:
		WriteError(w, http.StatusBadRequest, "bad_action", fmt.Sprintf(`"action" is %q; use retry (run the step again), done (it took effect: "note" is its result) or fail (give it up)`, b.Action))
		return
	}
	runID, stepID, who := r.PathValue("run"), r.PathValue("step"), by(r)
	if err := rt.d.Reviews.ResolveReview(r.Context(), runID, stepID, b.Action, who, b.Note); err != nil {
		rt.engineError(w, r, fmt.Sprintf("resolve review %s/%s", runID, stepID), err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"run_id": runID, "step_id": stepID, "action": b.Action, "by": who, "note": b.Note})
}

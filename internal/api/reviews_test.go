package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/internal/db"
)

type fakeReviews struct {
	mu       sync.Mutex
	open     []db.ReviewItem
	resolved []string
}

func (f *fakeReviews) OpenReviews(context.Context) ([]db.ReviewItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]db.ReviewItem{}, f.open...), nil
}

func (f *fakeReviews) ResolveReview(_ context.Context, runID, stepID, action, by, note string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, it := range f.open {
		if it.RunID == runID && it.StepID == stepID {
			f.open = append(f.open[:i], f.open[i+1:]...)
			f.resolved = append(f.resolved, fmt.Sprintf("%s/%s %s by %s: %s", runID, stepID, action, by, note))
			return nil
		}
	}
	return fmt.Errorf("%w: no open review for %s/%s", ErrNotFound, runID, stepID)
}

func TestReviewQueue(t *testing.T) {
	rv := &fakeReviews{open: []db.ReviewItem{{ID: 1, RunID: "r1", StepID: "pay", Tool: "charge_card", Reason: "interrupted by a restart", Request: "pay the invoice"}}}
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.Reviews = rv })

	resp, body := env.do("GET", "/api/v1/reviews", "", true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"step_id": "pay"`) || !strings.Contains(string(body), "pay the invoice") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = env.do("POST", "/api/v1/reviews/r1/pay", `{"action":"reboot"}`, true)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "retry") {
		t.Errorf("bad action: %d %s", resp.StatusCode, body)
	}
	resp, body = env.do("POST", "/api/v1/reviews/r1/pay", `{"action":"done","note":"charged, ref 77"}`, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	if len(rv.resolved) != 1 || rv.resolved[0] != "r1/pay done by api: charged, ref 77" {
		t.Errorf("resolved %v", rv.resolved)
	}
	resp, _ = env.do("POST", "/api/v1/reviews/r1/pay", `{"action":"done"}`, true)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("resolving twice: %d, want 404", resp.StatusCode)
	}
	resp, _ = env.do("GET", "/api/v1/reviews", "", false)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without token: %d", resp.StatusCode)
	}
}

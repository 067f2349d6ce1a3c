package db

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/run"
)

// TestRunPlansListsEveryVersion: a replanned run keeps both plans, in
// order, with when each was made and what its planner met; a run that
// failed in planning has none.
func TestRunPlansListsEveryVersion(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	now := t0
	s.Now = func() time.Time { return now }
	for _, id := range []string{"replanned", "failed"} {
		if err := s.InsertRun(ctx, &run.Run{ID: id, Status: run.Queued, Source: "api", Request: "q", Planner: "auto"}); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(4 * time.Second)
	if err := s.SavePlan(ctx, "replanned", 1, "local", "gemma3:12b", []byte(`{"goal":"g","steps":[{"id":"wind","tool":"forecast"}],"answer":"a"}`),
		2, []string{"plan is not valid JSON"}, nil); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(9 * time.Second)
	if err := s.SavePlan(ctx, "replanned", 2, "replan_local", "gemma3:12b", []byte(`{"goal":"g","steps":[{"id":"decide","task":"${wind}"}],"answer":"a"}`),
		1, nil, nil); err != nil {
		t.Fatal(err)
	}

	got, err := s.RunPlans(ctx, "replanned")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d plans, want 2", len(got))
	}
	first, second := got[0], got[1]
	if first.Version != 1 || !first.CreatedAt.Equal(t0.Add(4*time.Second)) || first.Source != "local" || first.Model != "gemma3:12b" ||
		first.Attempts != 2 || len(first.Errors) != 1 || first.Errors[0] != "plan is not valid JSON" {
		t.Errorf("v1 = %+v", first)
	}
	if second.Version != 2 || !second.CreatedAt.Equal(t0.Add(9*time.Second)) || second.Source != "replan_local" || second.Errors == nil {
		t.Errorf("v2 = %+v", second)
	}
	var p struct{ Steps []struct{ ID string } }
	if err := json.Unmarshal(second.Plan, &p); err != nil || len(p.Steps) != 1 || p.Steps[0].ID != "decide" {
		t.Errorf("v2 plan %s (%v)", second.Plan, err)
	}

	none, err := s.RunPlans(ctx, "failed")
	if err != nil || len(none) != 0 {
		t.Errorf("a run with no plan: %v, %v", none, err)
	}
}

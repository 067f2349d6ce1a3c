package db

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/run"
)

// TestRunStartsWhenPlanningStarts: the store stamps started_at the first
// time a run is written under way, planning included, and keeps it; so a
// run that fails in planning has a start and a duration, and one canceled
// in the queue has neither.
func TestRunStartsWhenPlanningStarts(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		statuses []run.Status
		started  time.Duration // offset of the wanted start from t0; <0: none
	}{
		{"fails in planning", []run.Status{run.Planning, run.Failed}, time.Second},
		{"runs after planning", []run.Status{run.Planning, run.Running, run.Done}, time.Second},
		{"resumed straight to running", []run.Status{run.Running, run.Done}, time.Second},
		{"canceled while queued", []run.Status{run.Canceled}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, Options{})
			ctx := context.Background()
			now := t0
			s.Now = func() time.Time { return now }
			r := &run.Run{ID: "r1", Status: run.Queued, Source: "api", Request: "q", Planner: "auto"}
			if err := s.InsertRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			for _, st := range tc.statuses {
				now = now.Add(time.Second)
				r.Status = st
				if st.Terminal() {
					fin := now
					r.FinishedAt = &fin
				}
				if err := s.UpdateRun(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.GetRun(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.started < 0 {
				if got.StartedAt != nil {
					t.Errorf("started_at = %v, want none", got.StartedAt)
				}
				return
			}
			if want := t0.Add(tc.started); got.StartedAt == nil || !got.StartedAt.Equal(want) {
				t.Fatalf("started_at = %v, want %v", got.StartedAt, want)
			}
			if r.StartedAt == nil || !r.StartedAt.Equal(*got.StartedAt) {
				t.Errorf("the caller's run has started_at %v, the stored one %v", r.StartedAt, got.StartedAt)
			}
			if got.FinishedAt == nil || got.FinishedAt.Sub(*got.StartedAt) != time.Duration(len(tc.statuses)-1)*time.Second {
				t.Errorf("finished_at = %v, started_at = %v: duration is not the time from the first status under way", got.FinishedAt, got.StartedAt)
			}
		})
	}
}

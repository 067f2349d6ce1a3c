package db

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/run"
)

func TestExecQueries(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	for _, r := range []*run.Run{
		{ID: "r1", Status: run.Running, Request: "a"},
		{ID: "r2", Status: run.Done, Request: "b"},
		{ID: "r3", Status: run.Queued, Request: "c"},
		{ID: "r4", Status: run.Review, Request: "d"},
	} {
		if err := s.InsertRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	un, err := s.UnfinishedRuns(ctx)
	if err != nil || len(un) != 2 || un[0].ID != "r1" || un[1].ID != "r3" {
		t.Fatalf("unfinished %v, %v", un, err)
	}

	t.Run("plan and steps", func(t *testing.T) {
		if v, p, err := s.LatestPlan(ctx, "r1"); v != 0 || p != nil || err != nil {
			t.Fatalf("no plan: %d %s %v", v, p, err)
		}
		now := time.Now()
		steps := []*run.Step{
			{RunID: "r1", StepID: "a", PlanVersion: 1, Kind: "tool", Tool: "t", Spec: []byte(`{"id":"a"}`), Status: run.StepDone,
				Output: "out", Attempts: 1, Idempotent: true, StartedAt: &now, FinishedAt: &now},
			{RunID: "r1", StepID: "b", PlanVersion: 1, Kind: "task", Spec: []byte(`{"id":"b"}`), DependsOn: []string{"a"},
				Status: run.StepPending, Idempotent: false},
		}
		if err := s.SavePlan(ctx, "r1", 1, "local", "m", []byte(`{"goal":"g"}`), 2, []string{"e1"}, steps); err != nil {
			t.Fatal(err)
		}
		steps[1].Status, steps[1].Output = run.StepDone, "B"
		if err := s.SavePlan(ctx, "r1", 2, "replan_local", "m", []byte(`{"goal":"g2"}`), 1, nil, steps[1:]); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePlan(ctx, "r1", 2, "x", "m", []byte(`{}`), 1, nil, nil); err == nil {
			t.Error("duplicate plan version accepted")
		}
		v, p, err := s.LatestPlan(ctx, "r1")
		if v != 2 || string(p) != `{"goal":"g2"}` || err != nil {
			t.Errorf("latest %d %s %v", v, p, err)
		}
		got, err := s.RunSteps(ctx, "r1")
		if err != nil || len(got) != 2 {
			t.Fatal(got, err)
		}
		if got[0].StepID != "a" || got[0].Output != "out" || got[0].StartedAt == nil || !got[0].Idempotent ||
			got[1].Output != "B" || got[1].DependsOn[0] != "a" || got[1].Idempotent {
			t.Errorf("steps %+v %+v", got[0], got[1])
		}
	})

	t.Run("attempts and tool calls", func(t *testing.T) {
		id, err := s.StartAttempt(ctx, "r1", "a", 1, "first")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishAttempt(ctx, id, "failed", "transient", "busy"); err != nil {
			t.Fatal(err)
		}
		st := &run.Step{RunID: "r1", StepID: "c", Kind: "tool", Tool: "pay", Status: run.StepRunning, Spec: []byte(`{}`)}
		if _, _, found, _ := s.LastToolCall(ctx, "r1", "c"); found {
			t.Error("found a call before any")
		}
		cid, err := s.BeginToolCall(ctx, st, "pay", []byte(`{"n":1}`), "h1")
		if err != nil {
			t.Fatal(err)
		}
		status, _, found, err := s.LastToolCall(ctx, "r1", "c")
		if status != "started" || !found || err != nil {
			t.Errorf("after begin: %s %v %v", status, found, err)
		}
		code := 0
		if err := s.FinishToolCall(ctx, cid, "ok", "paid", "", &code); err != nil {
			t.Fatal(err)
		}
		status, out, _, _ := s.LastToolCall(ctx, "r1", "c")
		if status != "ok" || out != "paid" {
			t.Errorf("after finish: %s %s", status, out)
		}
		steps, _ := s.RunSteps(ctx, "r1")
		if len(steps) != 3 || steps[2].Status != run.StepRunning {
			t.Errorf("BeginToolCall did not write the step: %+v", steps)
		}
	})

	t.Run("approvals", func(t *testing.T) {
		exp := time.Now().Add(time.Minute).Truncate(time.Millisecond)
		st, e, _, _, err := s.RequestApproval(ctx, "r1", "c", "pay", []byte(`{}`), exp)
		if st != "pending" || !e.Equal(exp) || err != nil {
			t.Fatalf("request: %s %v %v", st, e, err)
		}
		// Asking again keeps the first request and its expiry.
		st, e, _, _, _ = s.RequestApproval(ctx, "r1", "c", "pay", nil, exp.Add(time.Hour))
		if st != "pending" || !e.Equal(exp) {
			t.Errorf("second request: %s %v", st, e)
		}
		ok, err := s.DecideApproval(ctx, "r1", "c", "denied", "alice", "no")
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		if ok, _ := s.DecideApproval(ctx, "r1", "c", "approved", "bob", ""); ok {
			t.Error("decided twice")
		}
		st, _, by, reason, _ := s.RequestApproval(ctx, "r1", "c", "pay", nil, exp)
		if st != "denied" || by != "alice" || reason != "no" {
			t.Errorf("after decision: %s %s %s", st, by, reason)
		}
	})

	t.Run("review items", func(t *testing.T) {
		if err := s.AddReviewItem(ctx, "r1", "c", "interrupted"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddReviewItem(ctx, "missing", "c", "x"); err == nil {
			t.Error("review item for a missing run accepted")
		}
		var n int
		_ = s.read.QueryRow(`SELECT count(*) FROM review_items WHERE run_id = 'r1'`).Scan(&n)
		if n != 1 {
			t.Errorf("review items %d", n)
		}
	})
}

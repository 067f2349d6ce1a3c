package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// A tool step's two commits: before the tool runs, the step running, its
// attempt and a 'started' call; after, all three as they ended.
func TestToolAttemptCommitsStepAttemptAndCall(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if err := s.InsertRun(ctx, &run.Run{ID: "r1", Status: run.Running, Request: "a"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := &run.Step{RunID: "r1", StepID: "a", PlanVersion: 1, Kind: "tool", Tool: "pay", Spec: []byte(`{"id":"a"}`),
		Status: run.StepRunning, Attempts: 1, StartedAt: &now}
	aid, cid, err := s.BeginToolAttempt(ctx, st, "first", "pay", []byte(`{"n":1}`), "h1")
	if err != nil || aid == 0 || cid == 0 {
		t.Fatalf("begin: %d %d %v", aid, cid, err)
	}
	row := func() string {
		var out string
		err := s.Reader().QueryRow(`SELECT st.status || '/' || st.attempts || ' ' || a.n || ':' || a.rung || ':' || a.status || ' ' ||
			c.status || ':' || c.output || ':' || coalesce(c.exit_code, '-')
			FROM steps st JOIN attempts a ON a.run_id = st.run_id AND a.step_id = st.step_id
			JOIN tool_calls c ON c.run_id = st.run_id AND c.step_id = st.step_id
			WHERE st.run_id = 'r1' AND st.step_id = 'a' AND a.id = ? AND c.id = ?`, aid, cid).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := row(); got != "running/1 1:first:running started::-" {
		t.Errorf("before the tool: %s", got)
	}
	st.Status, st.Output, st.FinishedAt = run.StepDone, "paid", &now
	code := 0
	if err := s.FinishToolAttempt(ctx, st, aid, cid, "ok", "", "", "paid", "", &code); err != nil {
		t.Fatal(err)
	}
	if got := row(); got != "done/1 1:first:ok ok:paid:0" {
		t.Errorf("after the tool: %s", got)
	}

	// A task step's attempt: opened with the step, closed with it.
	tk := &run.Step{RunID: "r1", StepID: "b", PlanVersion: 1, Kind: "task", Spec: []byte(`{"id":"b"}`),
		Status: run.StepRunning, Attempts: 2}
	id, err := s.StartStepAttempt(ctx, tk, "retry")
	if err != nil {
		t.Fatal(err)
	}
	tk.Status, tk.Error = run.StepFailed, "busy"
	if err := s.FinishStepAttempt(ctx, id, tk, "failed", "transient", "busy"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.Reader().QueryRow(`SELECT st.status || ' ' || a.n || ':' || a.rung || ':' || a.status || ':' || a.error_class
		FROM steps st JOIN attempts a ON a.run_id = st.run_id AND a.step_id = st.step_id WHERE a.id = ?`, id).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "failed 2:retry:failed:transient" {
		t.Errorf("task attempt: %s", got)
	}
}

// BenchmarkToolStepWrites is the store's share of a tool step: the commit
// before the tool runs and the one after, one step at a time.
func BenchmarkToolStepWrites(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir()+"/agentd.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.InsertRun(ctx, &run.Run{ID: "r1", Status: run.Running, Request: "a"}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		st := &run.Step{RunID: "r1", StepID: fmt.Sprint("s", i), PlanVersion: 1, Kind: "tool", Tool: "t",
			Spec: []byte(`{"id":"s","tool":"t","args":{"i":1}}`), Args: []byte(`{"i":1}`), Status: run.StepRunning,
			Attempts: 1, Idempotent: true, StartedAt: &now}
		aid, cid, err := s.BeginToolAttempt(ctx, st, "first", "t", []byte(`{"i":1}`), "0123456789abcdef0123456789abcdef")
		if err != nil {
			b.Fatal(err)
		}
		st.Status, st.Output, st.FinishedAt = run.StepDone, "1", &now
		if err := s.FinishToolAttempt(ctx, st, aid, cid, "ok", "", "", "1", "", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// Events go in by eventRows at a time and one by one for the rest; an event
// already stored (a flush retried) is ignored, not doubled.
func TestAppendEventsInRowsOfMany(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	var evs []events.Event
	for i := range 2*eventRows + 7 {
		evs = append(evs, events.Event{Seq: int64(i + 1), Time: time.UnixMilli(int64(1000 + i)), Type: "step.status",
			RunID: "r", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	if err := s.AppendEvents(ctx, evs[:eventRows+3]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, evs[eventRows:]); err != nil { // overlaps the first batch by 3
		t.Fatal(err)
	}
	got, err := s.EventsSince(ctx, 0, 1000)
	if err != nil || len(got) != len(evs) {
		t.Fatalf("%d events, %v; want %d", len(got), err, len(evs))
	}
	for i, e := range got {
		if e.Seq != int64(i+1) || string(e.Data) != fmt.Sprintf(`{"i":%d}`, i) || e.Time.UnixMilli() != int64(1000+i) {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
}

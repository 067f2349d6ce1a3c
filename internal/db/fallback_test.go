package db

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/run"
)

func TestBudgetSums(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	res := func(id, runID, day string, usd float64, bytes int64) BudgetReservation {
		return BudgetReservation{ID: id, CreatedAt: time.Now(), RunID: runID, Provider: "openai", Model: "m",
			Purpose: "plan", Day: day, Month: day[:7], ReservedUSD: usd, ReservedBytes: bytes}
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range []BudgetReservation{
			res("open", "a", "2026-03-14", 0.5, 500),
			res("done", "a", "2026-03-14", 0.4, 400),
			res("freed", "b", "2026-03-14", 0.3, 300),
			res("stale", "b", "2026-03-14", 0.2, 200),
			res("other-day", "c", "2026-03-13", 0.1, 100),
		} {
			if err := InsertReservationTx(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.OrphanReservations(ctx); err != nil || n != 5 {
		t.Fatalf("OrphanReservations = %d, %v", n, err)
	}
	// Reopen all but "stale", to settle them as a live process would.
	if _, err := s.Exec(ctx, `UPDATE budget_reservations SET status = 'reserved' WHERE id IN ('open','done','freed','other-day')`); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SettleReservation(ctx, "done", ReservationCommitted, 0.15, 120); !ok || err != nil {
		t.Fatalf("commit = %v, %v", ok, err)
	}
	if ok, _ := s.SettleReservation(ctx, "done", ReservationReleased, 0, 0); ok {
		t.Error("settled twice")
	}
	if ok, _ := s.SettleReservation(ctx, "freed", ReservationReleased, 0, 0); !ok {
		t.Error("release failed")
	}
	var runA, day, month BudgetSpend
	err = s.Tx(ctx, func(tx *sql.Tx) (err error) {
		runA, day, month, err = BudgetWindowsTx(ctx, tx, "a", "2026-03-14", "2026-03")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(runA.SpentUSD, 0.15) || !near(runA.ReservedUSD, 0.5) || runA.SpentBytes != 120 || runA.ReservedBytes != 500 {
		t.Errorf("run a = %+v", runA)
	}
	// Day: committed 0.15 + orphaned 0.2 spent; 0.5 open; the released row counts nothing.
	if !near(day.SpentUSD, 0.35) || !near(day.ReservedUSD, 0.5) || day.SpentBytes != 320 || day.ReservedBytes != 500 {
		t.Errorf("day = %+v", day)
	}
	if !near(month.ReservedUSD, 0.6) || !near(month.SpentUSD, 0.35) {
		t.Errorf("month = %+v", month)
	}
	_, d2, _, err := s.BudgetWindows(ctx, "a", "2026-03-14", "2026-03")
	if err != nil || d2 != day {
		t.Errorf("read-pool sums %+v, %v; want %+v", d2, err, day)
	}
	if ok, _ := s.InsertBudgetAlert(ctx, "day_usd", "2026-03-14", 0.5); !ok {
		t.Error("first alert not recorded")
	}
	if ok, _ := s.InsertBudgetAlert(ctx, "day_usd", "2026-03-14", 0.5); ok {
		t.Error("alert recorded twice")
	}
}

func TestEgressDeferredFinetune(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	e := &EgressRecord{RunID: "r", Destination: "api.example.com", Provider: "openai", Model: "m", Purpose: "plan",
		BytesOut: 10, SHA256: "ab", Redactions: map[string]int{"EMAIL": 1}}
	id, err := s.InsertEgress(ctx, e)
	if err != nil || id == 0 || e.Status != "sent" {
		t.Fatalf("InsertEgress = %d, %v", id, err)
	}
	if n, _ := s.InterruptEgress(ctx); n != 1 {
		t.Errorf("interrupted %d", n)
	}
	if err := s.FinishEgress(ctx, id, 7, "ok"); err != nil {
		t.Fatal(err)
	}
	var got []EgressRecord
	_ = s.EachEgress(ctx, time.Time{}, func(e EgressRecord) error { got = append(got, e); return nil })
	if len(got) != 1 || got[0].BytesIn != 7 || got[0].Status != "ok" || got[0].Redactions["EMAIL"] != 1 {
		t.Errorf("egress = %+v", got)
	}

	for _, id := range []string{"r1", "r2"} {
		if err := s.InsertRun(ctx, &run.Run{ID: id, Status: run.Deferred, Source: "api", Request: "x", Planner: "auto"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	_ = s.UpsertDeferred(ctx, DeferredRun{RunID: "r1", Deadline: now.Add(2 * time.Hour), Reason: "offline"})
	_ = s.UpsertDeferred(ctx, DeferredRun{RunID: "r2", Deadline: now.Add(3 * time.Hour)})
	if err := s.UpsertDeferred(ctx, DeferredRun{RunID: "r2", Deadline: now.Add(time.Hour), Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertDeferred(ctx, DeferredRun{RunID: "missing", Deadline: now}); err == nil {
		t.Error("deferred a run that does not exist")
	}
	q, err := s.ListDeferred(ctx)
	if err != nil || len(q) != 2 || q[0].RunID != "r2" || q[0].Reason != "again" || !q[0].Deadline.Equal(now.Add(time.Hour)) {
		t.Fatalf("queue = %+v, %v", q, err)
	}
	if ok, _ := s.ClaimDeferred(ctx, "r2"); !ok {
		t.Error("claim failed")
	}
	if ok, _ := s.ClaimDeferred(ctx, "r2"); ok {
		t.Error("claimed twice")
	}

	c := &FinetuneCandidate{RunID: "r1", SystemPrompt: "sys", Request: "req", LocalErrors: []string{"e1"},
		RemotePlan: "{}", Provider: "openai", Model: "m", Reason: "remote_plan"}
	if _, err := s.InsertFinetune(ctx, c); err != nil {
		t.Fatal(err)
	}
	var cs []FinetuneCandidate
	_ = s.EachFinetune(ctx, func(c FinetuneCandidate) error { cs = append(cs, c); return nil })
	if len(cs) != 1 || cs[0].SystemPrompt != "sys" || len(cs[0].LocalErrors) != 1 || cs[0].Model != "m" {
		t.Errorf("candidates = %+v", cs)
	}
}

package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

func openTest(t *testing.T, opt Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "agentd.db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFreshDatabase(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != LatestVersion() || v < 2 {
		t.Fatalf("version = %d, %v; want %d", v, err, LatestVersion())
	}
	for _, pragma := range []struct{ name, want string }{{"journal_mode", "wal"}, {"foreign_keys", "1"}} {
		var got string
		if err := s.write.QueryRow("PRAGMA " + pragma.name).Scan(&got); err != nil || got != pragma.want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma.name, got, err, pragma.want)
		}
	}
	// Foreign keys are enforced: a step for a missing run is refused.
	if _, err := s.Exec(ctx, `INSERT INTO steps(run_id, step_id, plan_version, kind, spec, status) VALUES ('nope','a',1,'tool','{}','pending')`); err == nil {
		t.Error("step without run was accepted: foreign keys off")
	}
	// The reader pool cannot write.
	if _, err := s.Reader().Exec(`INSERT INTO events(seq, ts, type) VALUES (1, 1, 'x')`); err == nil {
		t.Error("reader pool accepted a write")
	}
}

func TestUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := Open(ctx, path, Options{MigrateTo: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := old.SchemaVersion(ctx); v != 1 {
		t.Fatalf("old version = %d", v)
	}
	r := &run.Run{ID: "r1", Status: run.Done, Source: "api", Request: "hello", Planner: "auto"}
	if err := old.InsertRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(ctx, "SELECT count(*) FROM budget_reservations"); err == nil {
		t.Fatal("version 1 already has budget_reservations")
	}
	old.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != LatestVersion() {
		t.Fatalf("upgraded version = %d, want %d", v, LatestVersion())
	}
	got, err := s.GetRun(ctx, "r1")
	if err != nil || got.Request != "hello" || got.Status != run.Done {
		t.Fatalf("run after upgrade = %+v, %v", got, err)
	}
	if _, err := s.Exec(ctx, "INSERT INTO budget_reservations(id, created_at, provider, model, purpose, day, month, reserved_usd, reserved_bytes, status) VALUES ('b',1,'p','m','plan','2026-01-01','2026-01',0.1,10,'reserved')"); err != nil {
		t.Fatalf("new table unusable after upgrade: %v", err)
	}
}

func TestSecondOpenIsRefusedWithHolder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	for _, want := range []string{"pid", "storage.state_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A reader that takes no lock still works beside the daemon.
	r, err := Open(ctx, path, Options{NoLock: true, NoMigrate: true})
	if err != nil {
		t.Fatalf("NoLock open: %v", err)
	}
	r.Close()
	s.Close()
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}

func TestBackupIsConsistentCopy(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	for i := range 20 {
		if err := s.InsertRun(ctx, &run.Run{ID: fmt.Sprintf("r%02d", i), Status: run.Queued, Source: "api", Request: "x", Planner: "auto"}); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, dst); err == nil {
		t.Error("backup over an existing file succeeded")
	}
	b, err := Open(ctx, dst, Options{NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	runs, err := b.ListRuns(ctx, RunFilter{Limit: 100})
	if err != nil || len(runs) != 20 {
		t.Fatalf("backup holds %d runs, %v", len(runs), err)
	}
}

func TestListRunsPagesNewestFirst(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		st := run.Done
		if i%2 == 0 {
			st = run.Running
		}
		r := &run.Run{ID: fmt.Sprintf("r%d", i), CreatedAt: base.Add(time.Duration(i) * time.Minute), Status: st, Source: "api", Request: "q", Planner: "auto"}
		if err := s.InsertRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	page1, _ := s.ListRuns(ctx, RunFilter{Limit: 2})
	page2, _ := s.ListRuns(ctx, RunFilter{Limit: 2, Before: page1[1].ID})
	if ids(page1) != "r4,r3" || ids(page2) != "r2,r1" {
		t.Errorf("pages = %s | %s", ids(page1), ids(page2))
	}
	running, _ := s.ListRuns(ctx, RunFilter{Statuses: []run.Status{run.Running}})
	if ids(running) != "r4,r2,r0" {
		t.Errorf("running = %s", ids(running))
	}
	counts, _ := s.CountRunsByStatus(ctx)
	if counts[run.Running] != 3 || counts[run.Done] != 2 {
		t.Errorf("counts = %v", counts)
	}
}

func ids(rs []*run.Run) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		out += r.ID
	}
	return out
}

func TestEventsRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	now := time.Now()
	var evs []events.Event
	for i := 1; i <= 10; i++ {
		evs = append(evs, events.Event{Seq: int64(i), Time: now, Type: events.StepStatus, RunID: "r", Data: []byte(`{"i":1}`)})
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	got, err := s.EventsSince(ctx, 7, 100)
	if err != nil || len(got) != 3 || got[0].Seq != 8 {
		t.Fatalf("since 7 = %v, %v", got, err)
	}
	if last, _ := s.LastEventSeq(ctx); last != 10 {
		t.Errorf("last = %d", last)
	}
}

func TestPruneKeepsUnfinishedRuns(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	old := time.Now().Add(-90 * 24 * time.Hour)
	for id, st := range map[string]run.Status{"old-done": run.Done, "old-running": run.Running, "old-review": run.Review} {
		if err := s.InsertRun(ctx, &run.Run{ID: id, CreatedAt: old, Status: st, Source: "api", Request: "q", Planner: "auto"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertRun(ctx, &run.Run{ID: "new-done", Status: run.Done, Source: "api", Request: "q", Planner: "auto"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(ctx, Retention{Runs: 30 * 24 * time.Hour, Events: time.Hour, Samples: time.Hour, Ledgers: 400 * 24 * time.Hour})
	if err != nil || res.Runs != 1 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	left, _ := s.ListRuns(ctx, RunFilter{})
	if ids(left) != "new-done,old-running,old-review" && ids(left) != "new-done,old-review,old-running" {
		t.Errorf("left = %s", ids(left))
	}
}

func TestModelCallsAddCostToRun(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if err := s.InsertRun(ctx, &run.Run{ID: "r", Status: run.Running, Source: "api", Request: "q", Planner: "auto"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []ModelCall{
		{RunID: "r", Purpose: "plan", Model: "gemma3:12b", Location: "local", PromptTokens: 100, OutputTokens: 50},
		{RunID: "r", Purpose: "plan", Model: "gpt-4.1-mini", Location: "remote", PromptTokens: 1000, OutputTokens: 500, CostUSD: 0.0012},
		{RunID: "gone", Purpose: "embed", Model: "nomic-embed-text", Location: "local"},
	} {
		if err := s.InsertModelCall(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	calls, err := s.RunModelCalls(ctx, "r")
	if err != nil || len(calls) != 2 {
		t.Fatalf("calls = %d, %v", len(calls), err)
	}
	if calls[1].CostUSD != 0.0012 || calls[1].Location != "remote" {
		t.Errorf("second call = %+v", calls[1])
	}
	tot, _ := s.ModelCallTotalsSince(ctx, time.Time{})
	if len(tot) != 3 {
		t.Errorf("totals = %+v", tot)
	}
}

func TestModelSizesAndLocalFailures(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if err := s.SaveModelSize(ctx, "gemma3:12b", "a", 8_100_000_000, 8_100_000_000); err != nil {
		t.Fatal(err)
	}
	_ = s.SaveModelSize(ctx, "gemma3:12b", "b", 8_200_000_000, 5_000_000_000)
	_ = s.SaveModelSize(ctx, "gemma3:12b", "a", 8_000_000_000, 8_000_000_000) // upsert
	sizes, err := s.ModelSizes(ctx)
	if err != nil || sizes["gemma3:12b"] != 8_200_000_000 {
		t.Fatalf("sizes = %v, %v", sizes, err)
	}
	for i, st := range []run.Status{run.Failed, run.Done, run.Partial} {
		r := &run.Run{ID: fmt.Sprintf("r%d", i), Status: st, Source: "api", Request: "q", Planner: "auto", Route: "local", Meta: []byte(`{"fingerprint":"fp1"}`)}
		if err := s.InsertRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	reasons := &run.Run{ID: "r9", Status: run.Failed, Source: "api", Request: "q", Planner: "auto", Route: "local", RouteReasons: []string{"complexity 0.2", "fingerprint fp1"}}
	if err := s.InsertRun(ctx, reasons); err != nil {
		t.Fatal(err)
	}
	if n, err := s.LocalFailures(ctx, "fp1"); err != nil || n != 3 {
		t.Errorf("LocalFailures = %d, %v; want 3", n, err)
	}
}

func TestSamplesDownsample(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	used := func(v int64) *int64 { return &v }
	for i := range 120 { // two minutes of 1 s samples
		if err := s.InsertSamples(ctx, base.Add(time.Duration(i)*time.Second),
			[]GPUSample{{Index: 0, Source: "nvidia", Name: "H100", MemUsed: used(int64(i)), MemTotal: used(100)}},
			&HostSample{MemTotal: 10, MemUsed: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Downsample(ctx, base.Add(time.Hour), time.Minute)
	if err != nil || n != 240 {
		t.Fatalf("downsample removed %d raw rows, %v; want 240", n, err)
	}
	hist, err := s.GPUHistory(ctx, base, 100)
	if err != nil || len(hist) != 2 || *hist[1].MemUsed != 119 {
		t.Fatalf("history = %+v, %v", hist, err)
	}
}

// A first prune over a large backlog deletes in bounded batches (other
// writers get in between) and checkpoints, so the WAL does not keep the
// size of everything deleted.
func TestPruneInBoundedBatchesAndCheckpoints(t *testing.T) {
	s := openTest(t, Options{})
	s.PruneBatch = 50
	perTable := map[string][]int64{}
	s.pruneHook = func(table string, n int64) { perTable[table] = append(perTable[table], n) }
	ctx := context.Background()
	old := time.Now().Add(-90 * 24 * time.Hour)
	const runs, eventsPerRun = 260, 4
	var evs []events.Event
	seq := int64(0)
	for i := range runs {
		id := fmt.Sprintf("r%04d", i)
		if err := s.InsertRun(ctx, &run.Run{ID: id, CreatedAt: old, Status: run.Done, Source: "api", Request: "q", Planner: "auto"}); err != nil {
			t.Fatal(err)
		}
		for range eventsPerRun {
			seq++
			evs = append(evs, events.Event{Seq: seq, Time: old, Type: events.RunStatus, RunID: id, Data: []byte(`{"status":"done"}`)})
		}
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(ctx, Retention{Runs: 30 * 24 * time.Hour, Events: 24 * time.Hour, Samples: time.Hour, Ledgers: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Runs != runs {
		t.Errorf("pruned %d runs, want %d", res.Runs, runs)
	}
	if left, _ := s.ListRuns(ctx, RunFilter{}); len(left) != 0 {
		t.Errorf("%d runs left", len(left))
	}
	if got := perTable["runs"]; len(got) < runs/50 {
		t.Errorf("runs pruned in %d batches %v, want at least %d", len(got), got, runs/50)
	}
	for table, batches := range perTable {
		for _, n := range batches {
			if n > 50 {
				t.Errorf("%s: one batch deleted %d rows, over the bound 50", table, n)
			}
		}
	}
	if st, err := os.Stat(s.path + "-wal"); err == nil && st.Size() > 0 {
		t.Errorf("WAL is %d bytes after the prune's checkpoint, want truncated", st.Size())
	}
}

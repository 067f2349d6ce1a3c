package db

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// BenchmarkPruneBacklog is the first prune after retention is turned on
// over a large backlog (PRUNE_RUNS finished runs, 40 events each, default
// 20,000): it reports the longest single write transaction of the prune
// (how long other writers can be held up), a concurrent writer's longest
// wait for one insert, and the WAL's size after the prune. PRUNE_BATCH
// overrides the batch size (1000000000: everything in one transaction per
// table, as before batching).
func BenchmarkPruneBacklog(b *testing.B) {
	runs := 20000
	if v := os.Getenv("PRUNE_RUNS"); v != "" {
		fmt.Sscan(v, &runs)
	}
	const perRun = 40
	for range b.N {
		b.StopTimer()
		s, err := Open(context.Background(), b.TempDir()+"/agentd.db", Options{})
		if err != nil {
			b.Fatal(err)
		}
		if v := os.Getenv("PRUNE_BATCH"); v != "" {
			fmt.Sscan(v, &s.PruneBatch) // a huge batch is the old one-transaction prune
		}
		ctx := context.Background()
		old := time.Now().Add(-90 * 24 * time.Hour)
		seq := int64(0)
		var evs []events.Event
		for i := range runs {
			id := fmt.Sprintf("r%06d", i)
			if err := s.InsertRun(ctx, &run.Run{ID: id, CreatedAt: old, Status: run.Done, Source: "api", Request: "q", Planner: "auto"}); err != nil {
				b.Fatal(err)
			}
			for range perRun {
				seq++
				evs = append(evs, events.Event{Seq: seq, Time: old, Type: events.StepStatus, RunID: id, Data: []byte(`{"step_id":"s","status":"done"}`)})
			}
			if len(evs) >= 4000 {
				if err := s.AppendEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
				evs = evs[:0]
			}
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
		var longest time.Duration
		last := time.Now()
		s.pruneHook = func(string, int64) {
			if d := time.Since(last); d > longest {
				longest = d
			}
			last = time.Now()
		}
		// A writer that keeps submitting while the prune runs.
		stop := make(chan struct{})
		waits := make(chan time.Duration, 1)
		go func() {
			var worst time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					waits <- worst
					return
				default:
				}
				t0 := time.Now()
				_ = s.InsertRun(ctx, &run.Run{ID: fmt.Sprintf("new%06d", i), Status: run.Queued, Source: "api", Request: "q", Planner: "auto"})
				worst = max(worst, time.Since(t0))
				time.Sleep(time.Millisecond)
			}
		}()
		b.StartTimer()
		res, err := s.Prune(ctx, Retention{Runs: 30 * 24 * time.Hour, Events: 30 * 24 * time.Hour, Samples: time.Hour, Ledgers: 400 * 24 * time.Hour})
		b.StopTimer()
		close(stop)
		worst := <-waits
		if err != nil || res.Runs != int64(runs) {
			b.Fatalf("prune = %+v, %v", res, err)
		}
		wal := int64(0)
		if st, err := os.Stat(s.path + "-wal"); err == nil {
			wal = st.Size()
		}
		b.ReportMetric(float64(longest.Milliseconds()), "longest-batch-ms")
		b.ReportMetric(float64(worst.Milliseconds()), "writer-worst-wait-ms")
		b.ReportMetric(float64(wal)/(1<<20), "wal-MiB")
		b.ReportMetric(float64(res.Events), "events-pruned")
		s.Close()
	}
}

package fallback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/run"
)

func insertRuns(t *testing.T, store *db.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := store.InsertRun(context.Background(), &run.Run{ID: id, Status: run.Deferred, Source: "api",
			Request: "r", Planner: "auto", Async: true}); err != nil {
			t.Fatal(err)
		}
	}
}

func offlineLink() *Link {
	l := NewLink(LinkOptions{Config: testLinkConfig(), Logger: discardLogger()})
	for range 3 {
		l.Observe(Observation{Failed: true})
	}
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeferredDrainsOnceInDeadlineOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := openStore(t)
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	link := offlineLink()
	var mu sync.Mutex
	var resubmitted, expired []string
	pub := &recordingPublisher{}
	d, err := NewDeferred(DeferredOptions{Store: store, Link: link, Publisher: pub, Logger: discardLogger(),
		Now: func() time.Time { return now },
		// Only link changes wake the queue in this test.
		After: func(time.Duration) <-chan time.Time { return nil },
		Resubmit: func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			resubmitted = append(resubmitted, id)
			return nil
		},
		Expired: func(_ context.Context, r db.DeferredRun) {
			mu.Lock()
			defer mu.Unlock()
			expired = append(expired, r.RunID)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Enqueued in an order unlike their deadlines.
	hours := map[string]int{"run-c": 3, "run-a": 1, "run-e": 5, "run-b": 2, "run-d": 4, "run-late": -1}
	order := []string{"run-c", "run-a", "run-e", "run-late", "run-b", "run-d"}
	insertRuns(t, store, order...)
	for _, id := range order {
		if err := d.Enqueue(ctx, id, now.Add(time.Duration(hours[id])*time.Hour), "link offline"); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "the expired run to be reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(expired) == 1
	})
	mu.Lock()
	if expired[0] != "run-late" || len(resubmitted) != 0 {
		t.Fatalf("offline: expired %v, resubmitted %v", expired, resubmitted)
	}
	mu.Unlock()
	// The link comes back.
	link.Observe(Observation{RTT: time.Millisecond})
	link.Observe(Observation{RTT: time.Millisecond})
	waitFor(t, "the queue to drain", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(resubmitted) == 5
	})
	// Flapping afterwards resubmits nothing twice.
	for range 3 {
		link.Observe(Observation{Failed: true})
	}
	link.Observe(Observation{RTT: time.Millisecond})
	link.Observe(Observation{RTT: time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(resubmitted); got != "[run-a run-b run-c run-d run-e]" {
		t.Errorf("drained %s; want deadline order, once each", got)
	}
	if pending, _ := d.Pending(context.Background()); len(pending) != 0 {
		t.Errorf("%d runs still queued", len(pending))
	}
	if len(pub.ofType(EventDeferredExpired)) != 1 || len(pub.ofType(EventDeferredDrained)) != 5 {
		t.Errorf("events: %d expired, %d drained", len(pub.ofType(EventDeferredExpired)), len(pub.ofType(EventDeferredDrained)))
	}
}

func TestDeferredFailedResubmitStaysQueued(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	calls := 0
	d, err := NewDeferred(DeferredOptions{Store: store, Link: NewLink(LinkOptions{Config: testLinkConfig()}),
		Logger: discardLogger(), Now: func() time.Time { return now }, MaxAge: 2 * time.Hour,
		Resubmit: func(context.Context, string) error {
			calls++
			if calls == 1 {
				return errors.New("executor queue full")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	insertRuns(t, store, "run-1")
	if err := d.Enqueue(ctx, "run-1", time.Time{}, "offline"); err != nil {
		t.Fatal(err)
	}
	pending, _ := d.Pending(ctx)
	if len(pending) != 1 || !pending[0].Deadline.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("pending = %+v; want the max-age deadline", pending)
	}
	if n, _, err := d.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("first drain = %d, %v", n, err)
	}
	if pending, _ := d.Pending(ctx); len(pending) != 1 {
		t.Fatal("a run whose resubmit failed left the queue")
	}
	if n, _, err := d.Drain(ctx); err != nil || n != 1 || calls != 2 {
		t.Fatalf("second drain = %d, %v (calls %d)", n, err, calls)
	}
	if _, err := NewDeferred(DeferredOptions{Store: store}); err == nil {
		t.Error("missing link and resubmit accepted")
	}
}

func TestDeferredExpiresOnTimeWhileOffline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := openStore(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	ticks := make(chan time.Time)
	waits := make(chan time.Duration, 10)
	expired := make(chan string, 1)
	d, err := NewDeferred(DeferredOptions{Store: store, Link: offlineLink(), Logger: discardLogger(),
		Now:   func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		After: func(w time.Duration) <-chan time.Time { waits <- w; return ticks },
		Resubmit: func(context.Context, string) error {
			t.Error("resubmitted while offline")
			return nil
		},
		Expired: func(_ context.Context, r db.DeferredRun) { expired <- r.RunID },
	})
	if err != nil {
		t.Fatal(err)
	}
	insertRuns(t, store, "run-1")
	if err := d.Enqueue(ctx, "run-1", now.Add(30*time.Second), "offline"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.Run(ctx) }()
	if w := <-waits; w != 30*time.Second+time.Millisecond {
		t.Errorf("slept %s; want until the deadline", w)
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	ticks <- now
	select {
	case id := <-expired:
		if id != "run-1" {
			t.Errorf("expired %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline passed unreported")
	}
	if w := <-waits; w != time.Minute {
		t.Errorf("with an empty queue slept %s; want the 1 min default", w)
	}
}

// Offline with no probe, a retry that falls due lets exactly one deferred
// run go, as the trial call that finds out whether the remote is back; the
// others wait for its outcome.
func TestDeferredTrialReleasesOneRun(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := NewLink(LinkOptions{Config: testLinkConfig(), Logger: discardLogger(), Now: clock,
		Backoff: func(int) time.Duration { return time.Second }})
	for range 3 {
		l.Observe(Observation{Failed: true})
	}
	var resubmitted []string
	d, err := NewDeferred(DeferredOptions{Store: store, Link: l, Logger: discardLogger(), Now: clock,
		Resubmit: func(_ context.Context, id string) error { resubmitted = append(resubmitted, id); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	insertRuns(t, store, "run-1", "run-2", "run-3")
	for _, id := range []string{"run-1", "run-2", "run-3"} {
		if err := d.Enqueue(ctx, id, now.Add(time.Hour), "offline"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := d.Drain(ctx); err != nil || len(resubmitted) != 0 {
		t.Fatalf("before the retry is due: resubmitted %v (%v)", resubmitted, err)
	}
	now = now.Add(2 * time.Second)
	if _, _, err := d.Drain(ctx); err != nil || len(resubmitted) != 1 {
		t.Fatalf("with the retry due: resubmitted %v (%v), want exactly one trial", resubmitted, err)
	}
	if left, _ := d.Pending(ctx); len(left) != 2 {
		t.Errorf("%d runs still queued, want 2", len(left))
	}
}

// A run recorded deferred whose queue entry a crash kept from being
// written is queued when the queue starts, bounded from its creation.
func TestDeferredRecoversRunsLeftOutOfTheQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := openStore(t)
	insertRuns(t, store, "run-1")
	d, err := NewDeferred(DeferredOptions{Store: store, Link: offlineLink(), Logger: discardLogger(), MaxAge: time.Hour,
		Resubmit: func(context.Context, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pending, _ := d.Pending(ctx)
		if len(pending) == 1 && pending[0].RunID == "run-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deferred run was not queued: %+v", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

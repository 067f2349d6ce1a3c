package events_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSubscribeSinceHasNoGapOrDuplicate(t *testing.T) {
	b := events.New(nil, 64, quiet)
	for range 10 {
		b.Publish(events.StepStatus, "r1", map[string]int{"x": 1})
	}
	backlog, sub, err := b.Subscribe(context.Background(), 4, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for range 3 {
		b.Publish(events.StepStatus, "r1", nil)
	}
	var seqs []int64
	for _, e := range backlog {
		seqs = append(seqs, e.Seq)
	}
	for range 3 {
		seqs = append(seqs, (<-sub.C).Seq)
	}
	for i, s := range seqs {
		if s != int64(5+i) {
			t.Fatalf("seqs = %v, want 5..13 in order", seqs)
		}
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	b := events.New(nil, 64, quiet)
	_, slow, _ := b.Subscribe(context.Background(), 0, 2, nil)
	_, fast, _ := b.Subscribe(context.Background(), 0, 100, nil)
	done := make(chan struct{})
	go func() {
		for range 50 {
			b.Publish(events.GPUSample, "", nil)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a slow subscriber")
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), events.ErrSlow) {
		t.Errorf("slow got %d events, err %v; want 2 and ErrSlow", n, slow.Err())
	}
	if len(fast.C) != 50 {
		t.Errorf("fast subscriber has %d events, want 50", len(fast.C))
	}
}

func TestFilter(t *testing.T) {
	b := events.New(nil, 64, quiet)
	_, sub, _ := b.Subscribe(context.Background(), 0, 10, func(e events.Event) bool { return e.RunID == "a" })
	b.Publish(events.RunStatus, "b", nil)
	b.Publish(events.RunStatus, "a", nil)
	if e := <-sub.C; e.RunID != "a" || len(sub.C) != 0 {
		t.Errorf("filter let through %+v (+%d)", e, len(sub.C))
	}
}

func TestPersistAndResumeAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentd.db")
	store, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := events.New(store, 16, quiet)
	if err := b.Init(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(rctx) }()
	for range 40 {
		b.Publish(events.StepStatus, "r", map[string]string{"status": "done"})
	}
	cancel()
	wg.Wait()
	store.Close()

	store, err = db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b2 := events.New(store, 16, quiet)
	if err := b2.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if e := b2.Publish(events.RunStatus, "r", nil); e.Seq != 41 {
		t.Errorf("sequence after restart = %d, want 41", e.Seq)
	}
	// since=5 is older than the new ring holds: the rest comes from the store.
	backlog, sub, err := b2.Subscribe(ctx, 5, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if len(backlog) != 36 || backlog[0].Seq != 6 || backlog[len(backlog)-1].Seq != 41 {
		t.Fatalf("backlog: %d events, first %d last %d; want 36 from 6 to 41", len(backlog), backlog[0].Seq, backlog[len(backlog)-1].Seq)
	}
}

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

// memStore is a Store in memory whose reads are slow, so events leave the
// ring while a subscriber reads the store: the window where a resume used
// to lose them.
type memStore struct {
	mu    sync.Mutex
	evs   []events.Event
	delay time.Duration
}

func (m *memStore) AppendEvents(_ context.Context, evs []events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, evs...)
	return nil
}

func (m *memStore) EventsSince(_ context.Context, after int64, limit int) ([]events.Event, error) {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.Event
	for _, e := range m.evs {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) LastEventSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.evs) == 0 {
		return 0, nil
	}
	return m.evs[len(m.evs)-1].Seq, nil
}

// TestResumeOlderThanTheRingWhilePublishing: clients keep resuming from
// since values older than the ring while many goroutines publish; each must
// see every event once, in order.
func TestResumeOlderThanTheRingWhilePublishing(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	store := &memStore{delay: 2 * time.Millisecond}
	b := events.New(store, 32, quiet)
	var run sync.WaitGroup
	run.Go(func() { _ = b.Run(ctx) })
	defer run.Wait()
	defer cancel()
	for range 200 {
		b.Publish(events.StepStatus, "r", nil)
	}

	const publishers, perPublisher = 4, 500
	const total = 200 + publishers*perPublisher
	var pub sync.WaitGroup
	for range publishers {
		pub.Go(func() {
			for range perPublisher {
				b.Emit("r", events.StepStatusData{StepID: "s", Status: "running"})
				time.Sleep(10 * time.Microsecond)
			}
		})
	}

	var clients sync.WaitGroup
	for c := range 4 {
		clients.Go(func() {
			seen := int64(0)
			resumes := 0
			for seen < total {
				// Resume from well behind the ring (it holds 32) every
				// time, as a client back from a long disconnect does.
				since := max(0, seen-int64(40+c*17))
				backlog, sub, err := b.Subscribe(ctx, since, 64, nil)
				if err != nil {
					t.Error(err)
					return
				}
				resumes++
				next := since + 1
				check := func(e events.Event) bool {
					if e.Seq != next {
						t.Errorf("client %d resume %d from %d: got seq %d, want %d", c, resumes, since, e.Seq, next)
						return false
					}
					next++
					seen = max(seen, e.Seq)
					return true
				}
				ok := true
				for _, e := range backlog {
					if ok = check(e); !ok {
						break
					}
				}
				// Read some live events, then drop the connection (or be
				// dropped as slow) and resume.
				for n := 0; ok && n < 50 && seen < total; n++ {
					e, open := <-sub.C
					if !open {
						break
					}
					ok = check(e)
				}
				sub.Close()
				if !ok {
					return
				}
			}
		})
	}
	pub.Wait()
	clients.Wait()
}

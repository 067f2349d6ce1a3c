package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestGroupStopsInReverseOrder(t *testing.T) {
	var mu sync.Mutex
	var stopped []string
	comp := func(name string) Component {
		return ComponentFunc(func(ctx context.Context) error {
			<-ctx.Done()
			mu.Lock()
			stopped = append(stopped, name)
			mu.Unlock()
			return ctx.Err()
		})
	}
	g := &group{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, n := range []string{"store", "bus", "executor", "http"} {
		g.add(n, comp(n))
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- g.run(ctx, 5*time.Second, func() { close(ready) }) }()
	<-ready
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("clean stop returned %v", err)
	}
	if got := stopped; len(got) != 4 || got[0] != "http" || got[3] != "store" {
		t.Fatalf("stop order = %v, want http, executor, bus, store", got)
	}
}

func TestGroupFailureStopsOthers(t *testing.T) {
	g := &group{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	boom := errors.New("boom")
	g.add("steady", ComponentFunc(func(ctx context.Context) error { <-ctx.Done(); return nil }))
	g.add("broken", ComponentFunc(func(ctx context.Context) error { return boom }))
	err := g.run(context.Background(), 5*time.Second, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestGroupStopTimeout(t *testing.T) {
	g := &group{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	hang := make(chan struct{})
	defer close(hang)
	g.add("stubborn", ComponentFunc(func(ctx context.Context) error { <-hang; return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.run(ctx, 50*time.Millisecond, nil); err == nil {
		t.Fatal("hung component did not make run report a timeout")
	}
}

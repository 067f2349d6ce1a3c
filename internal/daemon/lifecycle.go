package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is anything agentd runs for its whole life. Run returns nil when
// ctx is cancelled (a clean stop) and an error when it cannot go on.
type Component interface {
	Run(ctx context.Context) error
}

// ComponentFunc adapts a function to Component.
type ComponentFunc func(ctx context.Context) error

// Run calls f.
func (f ComponentFunc) Run(ctx context.Context) error { return f(ctx) }

type named struct {
	name string
	c    Component
}

// group runs components started in order and stops them in reverse order:
// the HTTP server (started last) stops taking requests before the executor
// and the store beneath it go away. If one fails, all are stopped.
type group struct {
	log   *slog.Logger
	items []named
}

func (g *group) add(name string, c Component) { g.items = append(g.items, named{name, c}) }

type exit struct {
	idx int
	err error
}

func (g *group) run(ctx context.Context, stopTimeout time.Duration, started func()) error {
	cancels := make([]context.CancelFunc, len(g.items))
	done := make([]chan struct{}, len(g.items))
	exits := make(chan exit, len(g.items))
	for i, it := range g.items {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], done[i] = cancel, make(chan struct{})
		go func() {
			defer close(done[i])
			err := it.c.Run(cctx)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			exits <- exit{i, err}
		}()
	}
	if started != nil {
		started()
	}
	var first error
	select {
	case <-ctx.Done():
	case e := <-exits:
		// A component ending before it was asked to is a failure, even
		// without an error: the daemon cannot go on without it.
		first = e.err
		if first == nil {
			first = fmt.Errorf("%s stopped unexpectedly", g.items[e.idx].name)
		}
		first = fmt.Errorf("%s: %w", g.items[e.idx].name, first)
		g.log.Error("component failed; stopping", "component", g.items[e.idx].name, "err", e.err)
	}
	deadline := time.After(stopTimeout)
	for i := len(g.items) - 1; i >= 0; i-- {
		cancels[i]()
		select {
		case <-done[i]:
		case <-deadline:
			g.log.Error("stop timed out; abandoning remaining components (work resumes on restart)", "waiting_for", g.items[i].name)
			return errors.Join(first, fmt.Errorf("stop timed out after %s waiting for %s", stopTimeout, g.items[i].name))
		}
	}
	close(exits)
	var errs []error
	if first != nil {
		errs = append(errs, first)
	}
	for e := range exits {
		if e.err != nil && first == nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.items[e.idx].name, e.err))
		}
	}
	return errors.Join(errs...)
}

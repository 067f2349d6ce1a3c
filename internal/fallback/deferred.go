package fallback

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

// LinkWatcher is what the deferred queue needs of the link monitor.
type LinkWatcher interface {
	State() LinkState
	Changed() <-chan struct{}
	// MayTry: an offline link's retry is due (its half-open state), so
	// one call may go to find out whether the remote is back.
	MayTry() bool
}

var _ LinkWatcher = (*Link)(nil)

// DeferredOptions builds a Deferred queue.
type DeferredOptions struct {
	Store *db.Store
	Link  LinkWatcher
	// Resubmit hands a drained run back to the executor. Required.
	Resubmit func(ctx context.Context, runID string) error
	// Expired is told of runs whose deadline passed in the queue.
	Expired   func(ctx context.Context, run db.DeferredRun)
	MaxAge    time.Duration // deadline for runs queued without one (fallback.deferred_max_age)
	Publisher Publisher
	Logger    *slog.Logger
	Now       func() time.Time
	// After schedules the next deadline check; tests replace it.
	After func(time.Duration) <-chan time.Time
}

// Deferred holds asynchronous runs that need the remote while the link is
// offline. When the link returns they drain once each, earliest deadline
// first; runs whose deadline passes are reported instead.
type Deferred struct {
	o DeferredOptions
	// wake tells Run that a run was queued, whose deadline may come
	// before the one Run is waiting for.
	wake chan struct{}
}

// NewDeferred builds the queue.
func NewDeferred(o DeferredOptions) (*Deferred, error) {
	if o.Store == nil || o.Link == nil || o.Resubmit == nil {
		return nil, fmt.Errorf("deferred queue: store, link and resubmit are required")
	}
	if o.Expired == nil {
		o.Expired = func(context.Context, db.DeferredRun) {}
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.Publisher == nil {
		o.Publisher = nopPublisher{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "fallback.deferred")
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	return &Deferred{o: o, wake: make(chan struct{}, 1)}, nil
}

// Enqueue defers a run (which must exist in the store) until the link
// returns or deadline passes; a zero deadline means now + MaxAge.
func (d *Deferred) Enqueue(ctx context.Context, runID string, deadline time.Time, reason string) error {
	if deadline.IsZero() {
		deadline = d.o.Now().Add(d.o.MaxAge)
	}
	if err := d.o.Store.UpsertDeferred(ctx, db.DeferredRun{RunID: runID, EnqueuedAt: d.o.Now().UTC(), Deadline: deadline, Reason: reason}); err != nil {
		return err
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

// Pending lists the queue in drain order.
func (d *Deferred) Pending(ctx context.Context) ([]db.DeferredRun, error) {
	return d.o.Store.ListDeferred(ctx)
}

// Drain reports expired runs and, if the link is up, resubmits the rest in
// deadline order. Each run is claimed (removed) before it is resubmitted, so
// it leaves the queue exactly once; a failed resubmit is logged and the run
// is queued again for the next drain.
func (d *Deferred) Drain(ctx context.Context) (drained, expired int, err error) {
	runs, err := d.o.Store.ListDeferred(ctx)
	if err != nil {
		return 0, 0, err
	}
	now := d.o.Now()
	online := d.o.Link.State() != LinkOffline
	// Offline with a retry due: one run goes, as the trial that brings the
	// link back (no probe is needed); the rest wait for the outcome.
	trial := !online && d.o.Link.MayTry()
	for _, r := range runs {
		if ctx.Err() != nil {
			return drained, expired, ctx.Err()
		}
		isExpired := now.After(r.Deadline)
		if !isExpired && !online {
			if !trial {
				continue
			}
			trial = false
		}
		ok, err := d.o.Store.ClaimDeferred(ctx, r.RunID)
		if err != nil {
			return drained, expired, err
		}
		if !ok {
			continue
		}
		if isExpired {
			expired++
			d.o.Logger.Warn("deferred run expired", "run", r.RunID, "deadline", r.Deadline)
			emit(d.o.Publisher, r.RunID, events.DeferredExpiredData{Deadline: r.Deadline, Reason: r.Reason})
			d.o.Expired(ctx, r)
			continue
		}
		if err := d.o.Resubmit(ctx, r.RunID); err != nil {
			d.o.Logger.Error("resubmit deferred run", "run", r.RunID, "err", err)
			if err := d.o.Store.UpsertDeferred(context.WithoutCancel(ctx), r); err != nil {
				return drained, expired, err
			}
			continue
		}
		drained++
		emit(d.o.Publisher, r.RunID, events.DeferredDrainedData{Deadline: r.Deadline})
	}
	return drained, expired, nil
}

// Run drains whenever the link changes state and reports expiries as their
// deadlines pass, until ctx ends.
// recover queues the runs recorded deferred whose queue entry a crash kept
// from being written (the run's status is written first), bounded by
// deferred_max_age from their creation: no deferred run is left waiting
// for nothing.
func (d *Deferred) recover(ctx context.Context) {
	runs, err := d.o.Store.DeferredWithoutQueue(ctx)
	if err != nil {
		d.o.Logger.Error("find deferred runs to queue", "err", err)
		return
	}
	for _, r := range runs {
		if err := d.Enqueue(ctx, r.RunID, r.EnqueuedAt.Add(d.o.MaxAge), "deferred before a restart"); err != nil {
			d.o.Logger.Error("queue deferred run", "run", r.RunID, "err", err)
		}
	}
}

func (d *Deferred) Run(ctx context.Context) error {
	d.recover(ctx)
	for {
		// This drain sees every run queued so far.
		select {
		case <-d.wake:
		default:
		}
		changed := d.o.Link.Changed()
		if _, _, err := d.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.o.Logger.Error("drain deferred runs", "err", err)
		}
		wait := time.Minute
		// The queue is in deadline order: wake for the first expiry.
		if runs, err := d.o.Store.ListDeferred(ctx); err == nil && len(runs) > 0 {
			if w := runs[0].Deadline.Sub(d.o.Now()) + time.Millisecond; w < wait {
				wait = max(w, time.Millisecond)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-d.wake:
		case <-d.o.After(wait):
		}
	}
}

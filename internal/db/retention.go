package db

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Retention says how long records are kept.
type Retention struct {
	Runs    time.Duration // finished runs and everything they own
	Events  time.Duration
	Samples time.Duration // raw samples; hourly rollups are kept for Runs
	Ledgers time.Duration // budget and egress ledgers (audit: keep long)
}

// PruneResult counts what a prune removed.
type PruneResult struct {
	Runs, Events, Samples, Ledgers int64
}

// Prune deletes records older than the retention allows. Runs that are not
// finished are never pruned, whatever their age.
func (s *Store) Prune(ctx context.Context, r Retention) (PruneResult, error) {
	now := s.Now()
	var res PruneResult
	exec := func(n *int64, q string, args ...any) error {
		out, err := s.write.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		c, _ := out.RowsAffected()
		*n += c
		return nil
	}
	cut := func(d time.Duration) int64 { return ms(now.Add(-d)) }
	steps := []func() error{
		func() error {
			return exec(&res.Runs, `DELETE FROM runs WHERE status IN ('done','partial','failed','canceled') AND created_at < ?`, cut(r.Runs))
		},
		func() error { return exec(&res.Events, `DELETE FROM events WHERE ts < ?`, cut(r.Events)) },
		func() error {
			return exec(&res.Samples, `DELETE FROM gpu_samples WHERE ts < ? AND resolution_s < 3600`, cut(r.Samples))
		},
		func() error {
			return exec(&res.Samples, `DELETE FROM host_samples WHERE ts < ? AND resolution_s < 3600`, cut(r.Samples))
		},
		func() error {
			return exec(&res.Samples, `DELETE FROM gpu_samples WHERE ts < ?`, cut(r.Runs))
		},
		func() error {
			return exec(&res.Samples, `DELETE FROM host_samples WHERE ts < ?`, cut(r.Runs))
		},
		func() error {
			return exec(&res.Ledgers, `DELETE FROM budget_reservations WHERE created_at < ? AND status <> 'reserved'`, cut(r.Ledgers))
		},
		func() error {
			return exec(&res.Ledgers, `DELETE FROM egress_ledger WHERE created_at < ?`, cut(r.Ledgers))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Pruner runs Prune on an interval.
type Pruner struct {
	Store     *Store
	Retention Retention
	Interval  time.Duration
	Log       *slog.Logger
}

// Run prunes at start and then every Interval until ctx ends.
func (p *Pruner) Run(ctx context.Context) error {
	log := p.Log.With("component", "retention")
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		// Raw samples older than an hour become one row a minute.
		if _, err := p.Store.Downsample(ctx, p.Store.Now().Add(-time.Hour), time.Minute); err != nil && ctx.Err() == nil {
			log.Error("downsample samples", "err", err)
		}
		res, err := p.Store.Prune(ctx, p.Retention)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("prune failed", "err", err)
		case err == nil && res != (PruneResult{}):
			log.Info("pruned old records", "runs", res.Runs, "events", res.Events, "samples", res.Samples, "ledgers", res.Ledgers)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

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

// PruneBatch bounds the rows one prune transaction deletes (runs count
// with everything they own, which cascades). Between batches other writers
// get the database, so a first prune over a large backlog never holds
// writes for seconds.
const PruneBatch = 500

// Prune deletes records older than the retention allows, PruneBatch rows
// per transaction, then checkpoints the WAL so the file shrinks back. Runs
// that are not finished are never pruned, whatever their age.
func (s *Store) Prune(ctx context.Context, r Retention) (PruneResult, error) {
	now := s.Now()
	var res PruneResult
	// batched deletes the rows of table matching cond, a batch at a time.
	batched := func(n *int64, table, cond string, args ...any) error {
		q := `DELETE FROM ` + table + ` WHERE rowid IN (SELECT rowid FROM ` + table + ` WHERE ` + cond + ` LIMIT ?)`
		for {
			out, err := s.write.ExecContext(ctx, q, append(args, s.pruneBatch())...)
			if err != nil {
				return fmt.Errorf("prune %s: %w", table, err)
			}
			c, _ := out.RowsAffected()
			*n += c
			if s.pruneHook != nil {
				s.pruneHook(table, c)
			}
			if c < int64(s.pruneBatch()) {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	cut := func(d time.Duration) int64 { return ms(now.Add(-d)) }
	steps := []func() error{
		func() error {
			return batched(&res.Runs, "runs", `status IN ('done','partial','failed','canceled') AND created_at < ?`, cut(r.Runs))
		},
		func() error { return batched(&res.Events, "events", `ts < ?`, cut(r.Events)) },
		func() error {
			return batched(&res.Samples, "gpu_samples", `ts < ? AND resolution_s < 3600`, cut(r.Samples))
		},
		func() error {
			return batched(&res.Samples, "host_samples", `ts < ? AND resolution_s < 3600`, cut(r.Samples))
		},
		func() error { return batched(&res.Samples, "gpu_samples", `ts < ?`, cut(r.Runs)) },
		func() error { return batched(&res.Samples, "host_samples", `ts < ?`, cut(r.Runs)) },
		func() error {
			return batched(&res.Ledgers, "budget_reservations", `created_at < ? AND status <> 'reserved'`, cut(r.Ledgers))
		},
		func() error { return batched(&res.Ledgers, "egress_ledger", `created_at < ?`, cut(r.Ledgers)) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return res, err
		}
	}
	if res != (PruneResult{}) {
		// Hand the freed pages back: without a checkpoint the WAL keeps the
		// size of everything the prune wrote.
		if _, err := s.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return res, fmt.Errorf("prune: checkpoint: %w", err)
		}
	}
	return res, nil
}

func (s *Store) pruneBatch() int {
	if s.PruneBatch > 0 {
		return s.PruneBatch
	}
	return PruneBatch
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

package db

import (
	"context"
	"database/sql"
	"time"
)

// GPUSample is one GPU's reading; nil fields were not reported.
type GPUSample struct {
	Index    int      `json:"index"`
	Source   string   `json:"source"`
	Name     string   `json:"name"`
	MemTotal *int64   `json:"mem_total,omitempty"`
	MemUsed  *int64   `json:"mem_used,omitempty"`
	UtilPct  *float64 `json:"util_pct,omitempty"`
	TempC    *float64 `json:"temp_c,omitempty"`
	PowerW   *float64 `json:"power_w,omitempty"`
}

// HostSample is the host's reading.
type HostSample struct {
	CPUPct   *float64 `json:"cpu_pct,omitempty"`
	MemTotal int64    `json:"mem_total"`
	MemUsed  int64    `json:"mem_used"`
	Load1    *float64 `json:"load1,omitempty"`
	TempC    *float64 `json:"temp_c,omitempty"`
}

// InsertSamples stores one sampling tick.
func (s *Store) InsertSamples(ctx context.Context, ts time.Time, gpus []GPUSample, host *HostSample) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		for _, g := range gpus {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO gpu_samples(ts, resolution_s, gpu_index, source, name, mem_total, mem_used, util_pct, temp_c, power_w)
				VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?)`, ms(ts), g.Index, g.Source, g.Name, g.MemTotal, g.MemUsed, g.UtilPct, g.TempC, g.PowerW); err != nil {
				return err
			}
		}
		if host != nil {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO host_samples(ts, resolution_s, cpu_pct, mem_total, mem_used, load1, temp_c)
				VALUES (?, 0, ?, ?, ?, ?, ?)`, ms(ts), host.CPUPct, host.MemTotal, host.MemUsed, host.Load1, host.TempC); err != nil {
				return err
			}
		}
		return nil
	})
}

// Downsample folds raw samples older than `before` into rows of `bucket`
// resolution (averages, maxima for memory), then deletes the raw rows, so
// history stays cheap to keep and to chart.
func (s *Store) Downsample(ctx context.Context, before time.Time, bucket time.Duration) (int64, error) {
	b := bucket.Milliseconds()
	res := int64(bucket / time.Second)
	var n int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO gpu_samples(ts, resolution_s, gpu_index, source, name, mem_total, mem_used, util_pct, temp_c, power_w)
			SELECT (ts / ?1) * ?1, ?2, gpu_index, max(source), max(name), max(mem_total), max(mem_used), avg(util_pct), max(temp_c), avg(power_w)
			FROM gpu_samples WHERE resolution_s = 0 AND ts < ?3 GROUP BY ts / ?1, gpu_index`, b, res, ms(before)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO host_samples(ts, resolution_s, cpu_pct, mem_total, mem_used, load1, temp_c)
			SELECT (ts / ?1) * ?1, ?2, avg(cpu_pct), max(mem_total), max(mem_used), avg(load1), max(temp_c)
			FROM host_samples WHERE resolution_s = 0 AND ts < ?3 GROUP BY ts / ?1`, b, res, ms(before)); err != nil {
			return err
		}
		r1, err := tx.ExecContext(ctx, `DELETE FROM gpu_samples WHERE resolution_s = 0 AND ts < ?`, ms(before))
		if err != nil {
			return err
		}
		r2, err := tx.ExecContext(ctx, `DELETE FROM host_samples WHERE resolution_s = 0 AND ts < ?`, ms(before))
		if err != nil {
			return err
		}
		a, _ := r1.RowsAffected()
		c, _ := r2.RowsAffected()
		n = a + c
		return nil
	})
	return n, err
}

// GPUHistory returns a GPU's samples since t at the finest resolution kept.
func (s *Store) GPUHistory(ctx context.Context, since time.Time, limit int) ([]struct {
	TS time.Time `json:"ts"`
	GPUSample
}, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT ts, gpu_index, source, name, mem_total, mem_used, util_pct, temp_c, power_w
		FROM gpu_samples WHERE ts >= ? ORDER BY ts LIMIT ?`, ms(since), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []struct {
		TS time.Time `json:"ts"`
		GPUSample
	}
	for rows.Next() {
		var r struct {
			TS time.Time `json:"ts"`
			GPUSample
		}
		var ts int64
		if err := rows.Scan(&ts, &r.Index, &r.Source, &r.Name, &r.MemTotal, &r.MemUsed, &r.UtilPct, &r.TempC, &r.PowerW); err != nil {
			return nil, err
		}
		r.TS = fromMS(ts)
		out = append(out, r)
	}
	return out, rows.Err()
}

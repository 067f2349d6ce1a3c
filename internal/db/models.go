package db

import (
	"context"
	"fmt"
)

// SaveModelSize records a model's size as Ollama reported it loaded.
func (s *Store) SaveModelSize(ctx context.Context, model, endpoint string, size, sizeVRAM int64) error {
	_, err := s.Exec(ctx, `INSERT INTO model_sizes(model, endpoint, size, size_vram, updated_at) VALUES (?,?,?,?,?)
		ON CONFLICT(model, endpoint) DO UPDATE SET size=excluded.size, size_vram=excluded.size_vram, updated_at=excluded.updated_at`,
		model, endpoint, size, sizeVRAM, ms(s.Now()))
	if err != nil {
		return fmt.Errorf("save size of %s: %w", model, err)
	}
	return nil
}

// ModelSizes returns the largest size learned for each model.
func (s *Store) ModelSizes(ctx context.Context) (map[string]int64, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT model, max(size) FROM model_sizes GROUP BY model")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var m string
		var n int64
		if err := rows.Scan(&m, &n); err != nil {
			return nil, err
		}
		out[m] = n
	}
	return out, rows.Err()
}

// LocalFailures counts earlier runs of requests with this fingerprint that
// the local planner did not carry to a full answer. The router uses it to
// escalate requests of a shape that has failed locally before.
func (s *Store) LocalFailures(ctx context.Context, fingerprint string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM runs
		WHERE (json_extract(meta, '$.fingerprint') = ?1 OR instr(route_reasons, '"fingerprint ' || ?1 || '"') > 0)
		AND route = 'local' AND status IN ('failed', 'partial', 'review')`, fingerprint).Scan(&n)
	return n, err
}

package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// PlanTemplate is a learned plan template as stored: its identity, state
// and the template document (see package plancache).
type PlanTemplate struct {
	ID        string
	Key       string
	State     string
	Data      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PlanTemplates returns every stored template, oldest first.
func (s *Store) PlanTemplates(ctx context.Context) ([]PlanTemplate, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, key, state, data, created_at, updated_at FROM plan_templates ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list plan templates: %w", err)
	}
	defer rows.Close()
	var out []PlanTemplate
	for rows.Next() {
		var t PlanTemplate
		var data string
		var created, updated int64
		if err := rows.Scan(&t.ID, &t.Key, &t.State, &data, &created, &updated); err != nil {
			return nil, fmt.Errorf("read plan template: %w", err)
		}
		t.Data, t.CreatedAt, t.UpdatedAt = json.RawMessage(data), fromMS(created), fromMS(updated)
		out = append(out, t)
	}
	return out, rows.Err()
}

// PutPlanTemplate inserts a template or replaces the one with its id.
func (s *Store) PutPlanTemplate(ctx context.Context, t PlanTemplate) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.Now().UTC()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = s.Now().UTC()
	}
	_, err := s.Exec(ctx, `INSERT INTO plan_templates(id, key, state, data, created_at, updated_at) VALUES (?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET key = excluded.key, state = excluded.state, data = excluded.data, updated_at = excluded.updated_at`,
		t.ID, t.Key, t.State, string(t.Data), ms(t.CreatedAt), ms(t.UpdatedAt))
	if err != nil {
		return fmt.Errorf("store plan template %s: %w", t.ID, err)
	}
	return nil
}

// DeletePlanTemplate removes a template; deleting one that is not there
// is not an error.
func (s *Store) DeletePlanTemplate(ctx context.Context, id string) error {
	if _, err := s.Exec(ctx, `DELETE FROM plan_templates WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete plan template %s: %w", id, err)
	}
	return nil
}

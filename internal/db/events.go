package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/agentd/agentd/internal/events"
)

var _ events.Store = (*Store)(nil)

const insertEventSQL = "INSERT OR IGNORE INTO events(seq, ts, type, run_id, data) VALUES (?, ?, ?, ?, ?)"

// eventRows is how many events one prepared statement inserts: a batch of
// events costs one statement per eventRows events, not one per event.
const eventRows = 32

var insertEventsSQL = "INSERT OR IGNORE INTO events(seq, ts, type, run_id, data) VALUES " +
	strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?),", eventRows), ",")

// AppendEvents persists a batch of events in one transaction.
func (s *Store) AppendEvents(ctx context.Context, evs []events.Event) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		args := make([]any, 0, 5*eventRows)
		for len(evs) > 0 {
			n := min(len(evs), eventRows)
			q := insertEventsSQL
			if n < eventRows {
				q = insertEventSQL
				n = 1
			}
			args = args[:0]
			for _, e := range evs[:n] {
				data := string(e.Data)
				if data == "" {
					data = "{}"
				}
				args = append(args, e.Seq, ms(e.Time), e.Type, e.RunID, data)
			}
			if _, err := s.txExec(ctx, tx, q, args...); err != nil {
				return err
			}
			evs = evs[n:]
		}
		return nil
	})
}

// EventsSince returns up to limit events with seq > after, oldest first.
func (s *Store) EventsSince(ctx context.Context, after int64, limit int) ([]events.Event, error) {
	return s.queryEvents(ctx, "SELECT seq, ts, type, run_id, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
}

// RunEvents returns a run's events, oldest first.
func (s *Store) RunEvents(ctx context.Context, runID string, limit int) ([]events.Event, error) {
	return s.queryEvents(ctx, "SELECT seq, ts, type, run_id, data FROM events WHERE run_id = ? ORDER BY seq LIMIT ?", runID, limit)
}

func (s *Store) queryEvents(ctx context.Context, q string, args ...any) ([]events.Event, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var e events.Event
		var ts int64
		var data string
		if err := rows.Scan(&e.Seq, &ts, &e.Type, &e.RunID, &data); err != nil {
			return nil, err
		}
		e.Time, e.Data = fromMS(ts), json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventSeq is the highest persisted sequence id (0 when none).
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	var v sql.NullInt64
	err := s.write.QueryRowContext(ctx, "SELECT max(seq) FROM events").Scan(&v)
	return v.Int64, err
}

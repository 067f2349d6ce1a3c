package fallback

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

// A provider that bills more than a call's reserved worst case has broken
// the only promise reservations rest on. Caps are then only as hard as its
// honesty, so the gate suspends it: no new call is sent until a person has
// looked and re-enabled it. Only calls already in flight (at most
// fallback.max_in_flight) can overshoot.

// Events about the provider's state.
const (
	EventProviderSuspended = "fallback.provider_suspended"
	EventProviderEnabled   = "fallback.provider_enabled"
)

// ErrSuspended is matched by every *SuspendedError.
var ErrSuspended = errors.New("remote provider suspended")

// SuspendedError refuses a call to a suspended provider.
type SuspendedError struct{ State ProviderState }

func (e *SuspendedError) Error() string {
	return fmt.Sprintf("remote provider %s (%s) is suspended: %s — planning stays local; re-enable it with `agentd fallback enable` once the provider's billing is understood",
		e.State.Provider, e.State.Destination, e.State.Reason)
}

// Is makes errors.Is(err, ErrSuspended) true.
func (e *SuspendedError) Is(target error) bool { return target == ErrSuspended }

// Degrades reports whether a refusal of the remote planner marks the run
// degraded: the remote was wanted and allowed by policy, and budget
// protection (a cap, or a provider suspended for overbilling) kept the plan
// local. A refusal for policy, sensitivity or the link does not degrade.
// Every caller (routing, escalation, replan) asks this one function.
func Degrades(err error) bool {
	return errors.Is(err, ErrCapReached) || errors.Is(err, ErrSuspended)
}

// ProviderState is GET /api/v1/fallback/provider and `agentd fallback
// status`: the same type as the provider.suspended event's, so the two
// never drift apart.
type ProviderState = events.ProviderStateData

// suspension is the provider's suspended flag: held in memory so that the
// check before every call costs no query, written through to the store so
// that it outlives the process.
type suspension struct {
	store             *db.Store
	provider, destKey string
	now               func() time.Time

	mu    sync.Mutex
	state ProviderState
}

func loadSuspension(ctx context.Context, store *db.Store, provider, dest string, now func() time.Time) (*suspension, error) {
	s := &suspension{store: store, provider: provider, destKey: dest, now: now,
		state: ProviderState{Provider: provider, Destination: dest, Enabled: true}}
	var suspended int
	var reason, runID, by string
	var reserved, actual float64
	var at, changed int64
	err := store.Reader().QueryRowContext(ctx, `SELECT suspended, reason, run_id, reserved_usd, actual_usd, suspended_at, changed_at, changed_by
		FROM provider_suspensions WHERE provider = ? AND destination = ?`, provider, dest).
		Scan(&suspended, &reason, &runID, &reserved, &actual, &at, &changed, &by)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read suspension of remote provider %s: %w", provider, err)
	}
	s.state.Suspended = suspended != 0
	s.state.Enabled = !s.state.Suspended
	s.state.Reason, s.state.RunID, s.state.ChangedBy = reason, runID, by
	s.state.ReservedUSD, s.state.ActualUSD = reserved, actual
	if at > 0 {
		s.state.SuspendedAt = time.UnixMilli(at).UTC()
	}
	if changed > 0 {
		s.state.ChangedAt = time.UnixMilli(changed).UTC()
	}
	return s, nil
}

// check refuses a call while suspended.
func (s *suspension) check() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Suspended {
		return &SuspendedError{State: s.state}
	}
	return nil
}

func (s *suspension) snapshot() ProviderState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// suspend flips the flag in memory first, so no call checks it in between,
// then writes it through. It reports whether this call suspended it.
func (s *suspension) suspend(ctx context.Context, reason, runID string, reserved, actual float64) (ProviderState, bool, error) {
	s.mu.Lock()
	if s.state.Suspended {
		st := s.state
		s.mu.Unlock()
		return st, false, nil
	}
	now := s.now().UTC()
	s.state.Suspended, s.state.Enabled = true, false
	s.state.Reason, s.state.RunID, s.state.ReservedUSD, s.state.ActualUSD = reason, runID, reserved, actual
	s.state.SuspendedAt, s.state.ChangedAt, s.state.ChangedBy = now, now, "agentd"
	st := s.state
	s.mu.Unlock()
	return st, true, s.write(ctx, st)
}

// enable lifts a suspension; by names who did it.
func (s *suspension) enable(ctx context.Context, by string) (ProviderState, bool, error) {
	s.mu.Lock()
	if !s.state.Suspended {
		st := s.state
		s.mu.Unlock()
		return st, false, nil
	}
	s.state.Suspended, s.state.Enabled = false, true
	s.state.ChangedAt, s.state.ChangedBy = s.now().UTC(), by
	st := s.state
	s.mu.Unlock()
	return st, true, s.write(ctx, st)
}

func (s *suspension) write(ctx context.Context, st ProviderState) error {
	var at int64
	if !st.SuspendedAt.IsZero() {
		at = st.SuspendedAt.UnixMilli()
	}
	_, err := s.store.Exec(context.WithoutCancel(ctx), `INSERT INTO provider_suspensions
		(provider, destination, suspended, reason, run_id, reserved_usd, actual_usd, suspended_at, changed_at, changed_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (provider, destination) DO UPDATE SET suspended = excluded.suspended, reason = excluded.reason,
		run_id = excluded.run_id, reserved_usd = excluded.reserved_usd, actual_usd = excluded.actual_usd,
		suspended_at = excluded.suspended_at, changed_at = excluded.changed_at, changed_by = excluded.changed_by`,
		st.Provider, st.Destination, boolInt(st.Suspended), st.Reason, st.RunID, st.ReservedUSD, st.ActualUSD,
		at, st.ChangedAt.UnixMilli(), st.ChangedBy)
	if err != nil {
		return fmt.Errorf("record suspension of remote provider %s: %w", st.Provider, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// overbilled says why a call's reported usage broke its reservation, or ""
// when it did not: more output tokens than the max_tokens the request
// carried, or a cost above the reserved worst case.
func overbilled(u Usage, maxTokens int, reservedUSD, actualUSD float64) string {
	switch {
	case u.OutputTokens > maxTokens:
		return "billed " + strconv.Itoa(u.OutputTokens) + " output tokens for a request limited to max_tokens " + strconv.Itoa(maxTokens)
	case nano(actualUSD) > nano(reservedUSD):
		return fmt.Sprintf("billed $%.6f for a call reserved at its worst case of $%.6f", actualUSD, reservedUSD)
	}
	return ""
}

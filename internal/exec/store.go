package exec

import (
	"context"
	"time"

	"github.com/agentd/agentd/internal/run"
)

// Store is what the executor keeps in the database. *db.Store implements it
// (internal/db/exec.go); exec never imports the store itself.
//
// Every state change is written here before it is acted on: a step goes to
// running (and a tool call row to 'started') before the tool runs, and a
// step's result is written before its dependants are scheduled.
type Store interface {
	InsertRun(ctx context.Context, r *run.Run) error
	UpdateRun(ctx context.Context, r *run.Run) error
	GetRun(ctx context.Context, id string) (*run.Run, error)
	// UnfinishedRuns lists runs that are neither terminal nor in review.
	UnfinishedRuns(ctx context.Context) ([]*run.Run, error)

	// SavePlan stores plan version and upserts steps in one transaction.
	SavePlan(ctx context.Context, runID string, version int, source, model string, planJSON []byte,
		attempts int, errs []string, steps []*run.Step) error
	// LatestPlan returns version 0 when the run has no plan yet.
	LatestPlan(ctx context.Context, runID string) (version int, planJSON []byte, err error)
	RunSteps(ctx context.Context, runID string) ([]*run.Step, error)
	UpdateStep(ctx context.Context, st *run.Step) error
	// UpdateStepAndRun commits a step and its run together, so nobody
	// reading the store sees one changed without the other.
	UpdateStepAndRun(ctx context.Context, st *run.Step, r *run.Run) error
	// ResolveReviewItem closes the open review item of a step and writes the
	// changed steps and the run, in one transaction; false when no open item
	// matched.
	ResolveReviewItem(ctx context.Context, runID, stepID, resolution string, steps []*run.Step, r *run.Run) (bool, error)

	StartAttempt(ctx context.Context, runID, stepID string, n int, rung string) (int64, error)
	FinishAttempt(ctx context.Context, id int64, status, class, msg string) error
	// StartStepAttempt writes st and opens its attempt st.Attempts on rung,
	// in one transaction.
	StartStepAttempt(ctx context.Context, st *run.Step, rung string) (int64, error)
	// FinishStepAttempt closes attempt id and writes st, in one transaction.
	FinishStepAttempt(ctx context.Context, id int64, st *run.Step, status, class, msg string) error

	// BeginToolCall writes st and a 'started' tool call in one transaction.
	BeginToolCall(ctx context.Context, st *run.Step, tool string, args []byte, argsHash string) (int64, error)
	FinishToolCall(ctx context.Context, id int64, status, output, errMsg string, exitCode *int) error
	// BeginToolAttempt is BeginToolCall for a tool step, whose attempt is its
	// one call: st, its attempt st.Attempts on rung and the 'started' call,
	// in one transaction.
	BeginToolAttempt(ctx context.Context, st *run.Step, rung, tool string, args []byte, argsHash string) (attemptID, callID int64, err error)
	// FinishToolAttempt closes a tool step's call (status, output, callErr,
	// exitCode) and its attempt (status, class, msg) and writes st, in one
	// transaction.
	FinishToolAttempt(ctx context.Context, st *run.Step, attemptID, callID int64, status, class, msg, output, callErr string, exitCode *int) error
	LastToolCall(ctx context.Context, runID, stepID string) (status, output string, found bool, err error)
	// InterruptToolCalls closes the run's 'started' calls (only id when
	// id > 0) as interrupted, with a finish time.
	InterruptToolCalls(ctx context.Context, runID string, id int64, why string) (int64, error)

	// RequestApproval inserts a pending approval unless one exists and
	// returns the approval as it stands.
	RequestApproval(ctx context.Context, runID, stepID, tool string, args []byte, expiresAt time.Time) (status string, expires time.Time, by, reason string, err error)
	// DecideApproval reports false when there was no pending approval.
	DecideApproval(ctx context.Context, runID, stepID, status, by, reason string) (bool, error)

	AddReviewItem(ctx context.Context, runID, stepID, reason string) error
}

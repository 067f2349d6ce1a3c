package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/agentd/agentd/internal/localplanner"
)

// PlanRequest is one request for the planner benchmark.
type PlanRequest struct {
	Name    string
	Request string
}

// PlanReport is what planning a scenario list cost and how reliably it
// reached a valid plan.
type PlanReport struct {
	Requests int
	// Within is the call limit asked about; ValidWithin counts requests
	// whose valid plan took at most that many planner calls, Valid those
	// that reached one at all.
	Within       int
	ValidWithin  int
	Valid        int
	PlannerCalls int
	PromptTokens int
	OutputTokens int
	// Calls maps a number of planner calls to how many valid plans took
	// that many.
	Calls    map[int]int
	Failures []PlanFailure
}

// PlanFailure is a request that reached no valid plan.
type PlanFailure struct {
	Scenario string
	Errors   []string
}

// ValidRate is ValidWithin over Requests.
func (r PlanReport) ValidRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.ValidWithin) / float64(r.Requests)
}

func (r PlanReport) String() string {
	keys := make([]int, 0, len(r.Calls))
	for k := range r.Calls {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	hist := ""
	for _, k := range keys {
		hist += fmt.Sprintf(" %d:%d", k, r.Calls[k])
	}
	return fmt.Sprintf("%d requests: %d valid within %d calls (%.2f%%), %d valid in all; %d planner calls, %d prompt + %d output tokens; calls per valid plan:%s",
		r.Requests, r.ValidWithin, r.Within, 100*r.ValidRate(), r.Valid, r.PlannerCalls, r.PromptTokens, r.OutputTokens, hist)
}

// RunPlans plans every request with p and reports calls, tokens, and
// whether a valid plan was reached within `within` planner calls. Planning
// failures are counted, not returned; only a cancelled context stops it.
func RunPlans(ctx context.Context, p *localplanner.Planner, reqs []PlanRequest, within int) (PlanReport, error) {
	rep := PlanReport{Within: within, Calls: map[int]int{}}
	for i, sc := range reqs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Requests++
		res, err := p.Plan(ctx, localplanner.Request{Text: sc.Request, RunID: fmt.Sprintf("bench-%d", i)})
		var pe *localplanner.PlanError
		switch {
		case err == nil:
		case errors.As(err, &pe):
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			res = pe.Result
			rep.Failures = append(rep.Failures, PlanFailure{Scenario: sc.Name, Errors: pe.Errors})
		default:
			return rep, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		if res != nil {
			rep.PlannerCalls += res.Attempts
			rep.PromptTokens += res.PromptTokens
			rep.OutputTokens += res.OutputTokens
		}
		if err == nil {
			rep.Valid++
			rep.Calls[res.Attempts]++
			if res.Attempts <= within {
				rep.ValidWithin++
			}
		}
	}
	return rep, nil
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/agentd/agentd/internal/fallback"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/web"
)

// registerAPI mounts the run API, event stream, OpenAI endpoint, metrics and
// dashboard on the server.
func (d *Daemon) registerAPI() error {
	metrics := api.NewMetrics(api.MetricsSource{
		RunCounts: d.Store.CountRunsByStatus,
		Hardware:  func() (any, bool) { s, ok := d.Monitor.Latest(); return s, ok },
	}, d.log)
	for _, c := range d.Telemetry.Collectors() {
		if err := metrics.Registry().Register(c); err != nil {
			return fmt.Errorf("telemetry metrics: %w", err)
		}
	}
	deps := api.Deps{
		Engine: engineAPI{d.Engine}, Runs: runsAPI{d.Store}, Events: d.Bus,
		Ledger: d.Store, Budgets: budgetsAPI{d}, Reviews: reviewsAPI{d}, Residency: residencyAPI{d}, History: historyAPI{d.Store},
		Templates: d.PlanCache,
		Workflows: func() []string {
			names := make([]string, 0, len(d.cfg.Workflows))
			for _, w := range d.cfg.Workflows {
				names = append(names, w.Name)
			}
			return names
		},
		Metrics: metrics, Dashboard: web.FS(),
	}
	if d.Gate != nil {
		deps.Link = linkAPI{d}
	}
	if err := api.RegisterRoutes(d.Server, deps); err != nil {
		return err
	}
	if d.cfg.MCPServer.Enabled {
		if err := api.RegisterMCP(d.Server, deps, api.MCPServeOptions{Wait: d.cfg.MCPServer.Wait.D(), Log: d.log.With("component", "mcp_server")}); err != nil {
			return err
		}
	}
	d.group.add("metrics", ComponentFunc(func(ctx context.Context) error { return metrics.Run(ctx, d.Bus) }))
	return nil
}

type engineAPI struct{ e *exec.Engine }

func (a engineAPI) Submit(ctx context.Context, req api.SubmitRequest) (*run.Run, error) {
	r, err := a.e.Submit(ctx, exec.SubmitRequest{Request: req.Request, Source: req.Source, Workflow: req.Workflow,
		Params: req.Params, Priority: req.Priority, Planner: req.Planner, Sensitive: req.Sensitive, Async: req.Async})
	return r, mapExecErr(err)
}

func (a engineAPI) Wait(ctx context.Context, id string) (*run.Run, error) {
	r, err := a.e.Wait(ctx, id)
	return r, mapExecErr(err)
}

func (a engineAPI) Cancel(ctx context.Context, id, by string) error {
	return mapExecErr(a.e.Cancel(ctx, id, by))
}

func (a engineAPI) Decide(ctx context.Context, runID, stepID string, approve bool, by, reason string) error {
	if approve {
		return mapExecErr(a.e.Approve(ctx, runID, stepID, by, reason))
	}
	return mapExecErr(a.e.Deny(ctx, runID, stepID, by, reason))
}

func mapExecErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, exec.ErrQueueFull):
		return asAPI(api.ErrQueueFull, err)
	case errors.Is(err, exec.ErrRunFinished):
		return asAPI(api.ErrConflict, err)
	case errors.Is(err, exec.ErrNoPendingApproval), errors.Is(err, db.ErrNotFound):
		return asAPI(api.ErrNotFound, err)
	}
	return err
}

type runsAPI struct{ s *db.Store }

func (r runsAPI) ListRuns(ctx context.Context, q api.RunQuery) ([]*run.Run, error) {
	return r.s.ListRuns(ctx, db.RunFilter{Statuses: q.Statuses, Workflow: q.Workflow, Before: q.Before, Limit: q.Limit})
}

func (r runsAPI) RunDetail(ctx context.Context, id string) (*api.RunDetail, error) {
	rr, err := r.s.GetRun(ctx, id)
	if err != nil {
		return nil, mapExecErr(err)
	}
	// Empty lists, not null, for a run that has no plan or calls yet.
	out := &api.RunDetail{Run: rr, Steps: []*run.Step{}, Attempts: []api.Attempt{}, ModelCalls: []api.ModelCall{},
		ToolCalls: []api.ToolCall{}, Approvals: []api.Approval{}}
	if out.PlanVersion, out.Plan, err = r.s.LatestPlan(ctx, id); err != nil {
		return nil, err
	}
	if out.PlanSource, out.PlanModel, err = r.s.PlanInfo(ctx, id); err != nil {
		return nil, err
	}
	if out.Plans, err = r.s.RunPlans(ctx, id); err != nil {
		return nil, err
	}
	if out.Plans == nil {
		out.Plans = []db.PlanRecord{}
	}
	steps, err := r.s.RunSteps(ctx, id)
	if err != nil {
		return nil, err
	}
	out.Steps = append(out.Steps, steps...)
	atts, err := r.s.RunAttempts(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		out.Attempts = append(out.Attempts, api.Attempt(a))
	}
	calls, err := r.s.RunModelCalls(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, c := range calls {
		out.ModelCalls = append(out.ModelCalls, api.ModelCall{CreatedAt: c.CreatedAt, StepID: c.StepID, Purpose: c.Purpose,
			Model: c.Model, Location: c.Location, Tier: c.Tier, PromptTokens: c.PromptTokens, OutputTokens: c.OutputTokens,
			TotalMS: c.TotalMS, CostUSD: c.CostUSD, EnergyWh: c.EnergyWh, Error: c.Error,
			Attempt: c.Attempt, WallMS: c.WallMS, DoneReason: c.DoneReason})
	}
	tcs, err := r.s.RunToolCalls(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, c := range tcs {
		out.ToolCalls = append(out.ToolCalls, api.ToolCall(c))
	}
	aps, err := r.s.RunApprovals(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, a := range aps {
		out.Approvals = append(out.Approvals, api.Approval(a))
	}
	return out, nil
}

func (r runsAPI) PendingApprovals(ctx context.Context) ([]api.Approval, error) {
	aps, err := r.s.PendingApprovals(ctx)
	out := make([]api.Approval, 0, len(aps))
	for _, a := range aps {
		out = append(out, api.Approval(a))
	}
	return out, err
}

type budgetsAPI struct{ d *Daemon }

func (b budgetsAPI) Budgets(ctx context.Context) (api.BudgetReport, error) {
	var rep api.BudgetReport
	now := time.Now()
	n, cost, remote, err := b.d.Store.SavingsTotals(ctx, now.AddDate(0, -1, 0))
	if err != nil {
		return rep, err
	}
	rep.Savings = api.Savings{Runs: n, CostUSD: cost, RemoteOnlyUSD: remote, SavedUSD: remote - cost}
	caps := b.d.cfg.Fallback.Caps
	if b.d.Gate == nil {
		rep.Alerts = []string{"remote fallback is off: nothing is spent and nothing leaves this machine"}
		return rep, nil
	}
	day, month := b.d.Gate.Budget().Windows(now)
	_, ds, ms, err := b.d.Store.BudgetWindows(ctx, "", day, month)
	if err != nil {
		return rep, err
	}
	add := func(name, period, unit string, limit, spent, reserved float64) {
		c := api.BudgetCap{Name: name, Period: period, Unit: unit, Cap: limit, Spent: spent, Reserved: reserved}
		if limit > 0 {
			frac := (spent + reserved) / limit
			for _, t := range []struct {
				f float64
				l int
			}{{1, 100}, {0.8, 80}, {0.5, 50}} {
				if frac >= t.f {
					c.Alert = t.l
					rep.Alerts = append(rep.Alerts, fmt.Sprintf("%s at %d%% of its cap", name, t.l))
					break
				}
			}
		}
		rep.Caps = append(rep.Caps, c)
	}
	add("usd_day", "day", "usd", caps.DayUSD, ds.SpentUSD, ds.ReservedUSD)
	add("usd_month", "month", "usd", caps.MonthUSD, ms.SpentUSD, ms.ReservedUSD)
	add("bytes_day", "day", "bytes", float64(caps.DayBytes), float64(ds.SpentBytes), float64(ds.ReservedBytes))
	add("bytes_month", "month", "bytes", float64(caps.MonthBytes), float64(ms.SpentBytes), float64(ms.ReservedBytes))
	return rep, nil
}

type residencyAPI struct{ d *Daemon }

func (r residencyAPI) LoadedModels(ctx context.Context) ([]api.LoadedModel, error) {
	snap := r.d.Residency.Snapshot()
	var out []api.LoadedModel
	for _, m := range snap.Models {
		if !m.Resident {
			continue
		}
		out = append(out, api.LoadedModel{Name: m.Name, Endpoint: m.Endpoint, SizeBytes: int64(m.SizeBytes), VRAMBytes: int64(m.SizeVRAMBytes)})
	}
	return out, nil
}

type linkAPI struct{ d *Daemon }

func (l linkAPI) Link(ctx context.Context) (api.LinkStatus, error) {
	st := l.d.Gate.Link().Stats()
	return api.LinkStatus{State: string(st.State), RTTMS: float64(st.RTT) / float64(time.Millisecond),
		ThroughputBPS: float64(st.BitsPerSec), LastMeasuredAt: st.LastSeen}, nil
}

type historyAPI struct{ s *db.Store }

func (h historyAPI) GPUHistory(ctx context.Context, since time.Time, maxPoints int) ([]api.GPUPoint, error) {
	rows, err := h.s.GPUHistory(ctx, since, maxPoints)
	out := make([]api.GPUPoint, 0, len(rows))
	for _, r := range rows {
		out = append(out, api.GPUPoint{Time: r.TS, GPU: r.Index, Name: r.Name, MemUsedBytes: r.MemUsed, MemTotalBytes: r.MemTotal, UtilPercent: r.UtilPct})
	}
	return out, err
}

type reviewsAPI struct{ d *Daemon }

func (r reviewsAPI) OpenReviews(ctx context.Context) ([]db.ReviewItem, error) {
	return r.d.Store.OpenReviewItems(ctx)
}

func (r reviewsAPI) ResolveReview(ctx context.Context, runID, stepID, action, by, note string) error {
	err := r.d.Engine.ResolveReview(ctx, runID, stepID, action, by, note)
	switch {
	case errors.Is(err, exec.ErrNoReview):
		return asAPI(api.ErrNotFound, err)
	case errors.Is(err, exec.ErrInvalidReview):
		return asAPI(api.ErrInvalid, err)
	}
	return mapExecErr(err)
}

// ProviderState and EnableProvider serve /api/v1/fallback/provider: a
// provider suspended for billing beyond its reservation stays suspended
// until a person re-enables it.
func (b budgetsAPI) ProviderState() (fallback.ProviderState, error) {
	if b.d.Gate == nil {
		return fallback.ProviderState{}, fallback.ErrDisabled
	}
	return b.d.Gate.ProviderState()
}

func (b budgetsAPI) EnableProvider(ctx context.Context, by string) (fallback.ProviderState, error) {
	if b.d.Gate == nil {
		return fallback.ProviderState{}, fallback.ErrDisabled
	}
	return b.d.Gate.EnableProvider(ctx, by)
}

// apiError gives err the API's class (api.ErrNotFound, ...) for errors.Is,
// keeping err's own message: the class is for the status code, the message
// for the person, and it is not said twice.
type apiError struct{ class, err error }

func asAPI(class, err error) error { return apiError{class: class, err: err} }

func (e apiError) Error() string   { return e.err.Error() }
func (e apiError) Unwrap() []error { return []error{e.class, e.err} }

package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamatest"
	"github.com/agentd/agentd/internal/run"
)

// TestRunFailedInPlanningHasStartAndDuration: a run starts when its
// planning starts, so one whose planning fails (the real tiny model held
// to four output tokens, no repair) ends with a start time and a duration,
// which the dashboard and `agentd runs` show as "took".
func TestRunFailedInPlanningHasStartAndDuration(t *testing.T) {
	srv := ollamatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := startOnOllama(t, ctx, srv, func(cfg *config.Config) {
		cfg.Planner.RepairAttempts = 0
		cfg.Models.Options = map[string]config.ModelOptions{ollamatest.Plain: {NumPredict: 4}}
	})

	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "count the files in /tmp", Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Engine.Wait(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got, err := d.Store.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := d.Store.RunSteps(ctx, r.ID)
	if got.Status != run.Failed || len(steps) != 0 {
		t.Fatalf("run ended %s with %d steps (error %q), want failed in planning", got.Status, len(steps), got.Error)
	}
	switch {
	case got.StartedAt == nil:
		t.Errorf("a run that failed in planning has no started_at (error %q)", got.Error)
	case got.FinishedAt == nil:
		t.Errorf("the failed run has no finished_at")
	case got.StartedAt.Before(got.CreatedAt) || got.FinishedAt.Before(*got.StartedAt):
		t.Errorf("created %v, started %v, finished %v: out of order", got.CreatedAt, *got.StartedAt, *got.FinishedAt)
	}
}

package bench

import (
	"context"
	"testing"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/tools"
)

// fixedPlanner returns the same valid plan every time.
type fixedPlanner struct{ plan string }

func (f fixedPlanner) Chat(context.Context, localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	return localplanner.ChatResponse{Content: f.plan, DoneReason: "stop"}, nil
}

func scenarioCatalog(t *testing.T) scenarios.Catalog {
	t.Helper()
	r, err := scenarios.NewRegistry(config.Default().Tools, tools.Deps{}, scenarios.Tools(scenarios.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return scenarios.Catalog{R: r}
}

// The faulty planner makes its faults at about their rates, and the
// planner repairs them within three calls from its feedback.
func TestFaultyPlannerRepairs(t *testing.T) {
	city, _ := scenarios.Find(scenarios.NameCities)
	fp := scenarios.NewFaultyPlanner(fixedPlanner{scenarios.PlanJSON(city.Plan)}, 3)
	cfg := config.Default()
	p := localplanner.New(fp, scenarioCatalog(t), cfg.Planner, cfg.Models, nil)
	var list []PlanRequest
	for range 300 {
		list = append(list, PlanRequest{Name: city.Name, Request: city.Request})
	}
	rep, err := RunPlans(context.Background(), p, list, 3)
	if err != nil {
		t.Fatal(err)
	}
	inj, _ := fp.Injected()
	for k, rate := range map[string]float64{scenarios.FaultInvalidJSON: 0.1, scenarios.FaultUnknownTool: 0.1, scenarios.FaultBadRef: 0.1, scenarios.FaultTruncated: 0.05} {
		if got := float64(inj[k]) / 300; got < rate*0.5 || got > rate*1.6 {
			t.Errorf("%s injected in %.3f of requests, want about %.2f", k, got, rate)
		}
	}
	if rep.ValidRate() < 0.99 || rep.PlannerCalls <= 300 {
		t.Errorf("report: %s", rep)
	}
}

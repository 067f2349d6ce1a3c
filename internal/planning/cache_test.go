package planning

import (
	"context"
	"testing"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/plancache"
	"github.com/agentd/agentd/internal/run"
)

type memTemplates struct{ rows map[string]db.PlanTemplate }

func (m *memTemplates) PlanTemplates(context.Context) ([]db.PlanTemplate, error) { return nil, nil }
func (m *memTemplates) PutPlanTemplate(_ context.Context, t db.PlanTemplate) error {
	m.rows[t.ID] = t
	return nil
}
func (m *memTemplates) DeletePlanTemplate(context.Context, string) error { return nil }

type calcCatalog struct{}

func (calcCatalog) Has(name string) bool                      { return name == "calc" }
func (calcCatalog) ValidateArgs(string, map[string]any) error { return nil }
func (calcCatalog) List() []plan.ToolInfo                     { return []plan.ToolInfo{{Name: "calc"}} }

// A learned template must not take a request around a sensitive workflow
// the router model might recognise it as (one configured after the
// template was learned): such a request goes to the router.
func TestCacheDefersToANarrowingWorkflow(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cache, err := plancache.Open(ctx, cfg.Planner.Cache, &memTemplates{rows: map[string]db.PlanTemplate{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	taught := &plan.Plan{Answer: "Give it.", Steps: []plan.Step{{ID: "calc", Tool: "calc", Args: map[string]any{"expression": "4200 * 3"}}}}
	for _, req := range []string{"Bonus total is 4200 times 3", "Shipping total is 4200 times 3"} {
		cache.Ended(ctx, plancache.Outcome{RunID: req, Request: req, Status: run.Done, Plan: taught, PlanVersion: 1, PlanSource: "local"})
	}
	service := func(workflows []config.WorkflowConfig) *Service {
		tpl, err := localplanner.NewTemplates(workflows, nil, calcCatalog{}, cfg.Planner, cfg.Models, nil)
		if err != nil {
			t.Fatal(err)
		}
		return New(cfg, Options{Templates: tpl, Catalog: calcCatalog{}, Cache: cache})
	}
	payroll := config.WorkflowConfig{Name: "payroll", Description: "Anything about an employee's pay or bonus", Sensitive: true,
		Steps: []config.WorkflowStep{{ID: "calc", Tool: "calc", Args: map[string]any{"expression": "1"}}}}

	s := service(nil)
	if _, ok, _ := s.fromCache(ctx, exec.PlanRequest{Request: "Bonus total is 5100 times 2"}); !ok {
		t.Fatal("no workflow configured: the learned template should plan the request")
	}
	s = service([]config.WorkflowConfig{payroll})
	if _, ok, _ := s.fromCache(ctx, exec.PlanRequest{Request: "Bonus total is 5100 times 2"}); ok {
		t.Fatal("a request related to a sensitive workflow was planned from the cache, around the router")
	}
	if _, ok, _ := s.fromCache(ctx, exec.PlanRequest{Request: "Shipping total is 5100 times 2"}); !ok {
		t.Fatal("an unrelated request lost the cache")
	}
}

package scenarios

import (
	"testing"
	"time"

	"github.com/agentd/agentd/internal/bench/makespan"
	"github.com/agentd/agentd/internal/config"
)

// The bound for each scenario comes from its plan and script alone, and
// has the shape the scenario needs: the parallel lookups overlap, the
// replan waits for the failed step, a workflow makes no planner call.
func TestScenarioWorkBounds(t *testing.T) {
	models := config.Default().Models
	res, err := Machine(4, 0, 0, models.Planner, models.Standard, models.Fast)
	if err != nil {
		t.Fatal(err)
	}
	bounds := map[string]makespan.Result{}
	for _, sc := range All() {
		w, err := sc.Work(models)
		if err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		b, err := makespan.Bound([]makespan.Run{w}, res)
		if err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		if b.Makespan <= 0 || b.Binding != "path:"+sc.Name {
			t.Errorf("%s: bound %v", sc.Name, b)
		}
		bounds[sc.Name] = b
		if sc.Workflow != "" && w.Before[0].Model != models.Router {
			t.Errorf("%s: a workflow's first call is on %s, want the router model", sc.Name, w.Before[0].Model)
		}
	}
	// similar_cities: four 1.2 s lookups in parallel, not 4.8 s of them.
	cities, _ := Find(NameCities)
	w, _ := cities.Work(models)
	serial := w
	serial.Steps = nil
	prev := ""
	for _, s := range w.Steps {
		if prev != "" {
			s.DependsOn = append(s.DependsOn, prev)
		}
		serial.Steps, prev = append(serial.Steps, s), s.ID
	}
	sb, _ := makespan.Bound([]makespan.Run{serial}, res)
	if sb.Makespan-bounds[NameCities].Makespan < 3*time.Second {
		t.Errorf("cities: parallel bound %v vs the same steps in a chain %v: the lookups should overlap", bounds[NameCities], sb)
	}
	// The replan scenario: the replan call waits for the failed wind step.
	replan, _ := Find(NameReplan)
	rw, _ := replan.Work(models)
	for _, s := range rw.Steps {
		if s.ID == "replan" && (len(s.DependsOn) != 1 || s.DependsOn[0] != "wind") {
			t.Errorf("replan waits for %v, want [wind]", s.DependsOn)
		}
	}
}

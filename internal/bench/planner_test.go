package bench

import (
	"context"
	"slices"
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

// curve plans the cities request n times at budgets 1..6 through the
// faulty planner with the given rates.
func curve(t *testing.T, n int, rates FaultRates, seed uint64) CurveRow {
	t.Helper()
	city, _ := scenarios.Find(scenarios.NameCities)
	cfg := config.Default()
	var list []PlanRequest
	for range n {
		list = append(list, PlanRequest{Name: city.Name, Request: city.Request})
	}
	row, err := PlannerCurve(context.Background(), fixedPlanner{scenarios.PlanJSON(city.Plan)}, scenarioCatalog(t), cfg.Planner, cfg.Models, list, 6, rates, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(row.Points) != 6 {
		t.Fatalf("%d points, want 6", len(row.Points))
	}
	return row
}

// The success curve against the call budget is an outcome, not a given:
// when faults always come back no budget rescues a faulty first reply;
// when the model always heeds feedback that names its fault, one repair
// is enough; in between the curve climbs, and it never falls.
func TestPlannerCurve(t *testing.T) {
	const n = 150
	for _, tc := range []struct {
		name  string
		rates FaultRates
		check func(t *testing.T, row CurveRow)
	}{{
		name:  "faults always recur, feedback never helps",
		rates: FaultRates{Recur: 1, Ignore: 1},
		check: func(t *testing.T, row CurveRow) {
			if row.FaultFree == n || row.FaultFree < n/2 {
				t.Fatalf("%d of %d first replies fault-free: the faults did not happen at their rates", row.FaultFree, n)
			}
			for _, p := range row.Points {
				if p.Valid != row.FaultFree {
					t.Errorf("%d calls: %d valid, want exactly the %d fault-free first replies", p.MaxCalls, p.Valid, row.FaultFree)
				}
				// Every faulty request spends its whole budget.
				if want := row.FaultFree + (n-row.FaultFree)*p.MaxCalls; p.Calls != want {
					t.Errorf("%d calls: %d planner calls, want %d", p.MaxCalls, p.Calls, want)
				}
			}
		},
	}, {
		name:  "faults never recur, feedback always heeded",
		rates: FaultRates{},
		check: func(t *testing.T, row CurveRow) {
			if p := row.Points[0]; p.Valid != row.FaultFree || p.Valid == n {
				t.Errorf("1 call: %d valid, want the %d fault-free first replies (< %d)", p.Valid, row.FaultFree, n)
			}
			for _, p := range row.Points[1:] {
				if p.Valid != n {
					t.Errorf("%d calls: %d of %d valid, want all", p.MaxCalls, p.Valid, n)
				}
			}
		},
	}, {
		name:  "faults recur half the time, feedback ignored 30%",
		rates: FaultRates{Recur: 0.5, Ignore: 0.3},
		check: func(t *testing.T, row CurveRow) {
			first, last := row.Points[0], row.Points[len(row.Points)-1]
			if first.Valid != row.FaultFree || last.Valid <= row.Points[1].Valid || last.Valid == n {
				t.Errorf("valid at 1, 2 and 6 calls: %d, %d, %d of %d (fault-free first replies %d): want a curve that climbs and stops short of all",
					first.Valid, row.Points[1].Valid, last.Valid, n, row.FaultFree)
			}
			if row.Stats.Recurred == 0 || row.Stats.Repeated == 0 || row.Stats.Switched == 0 || row.Stats.Fixed == 0 {
				t.Errorf("stats %+v: every kind of repair reply should occur", row.Stats)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			row := curve(t, n, tc.rates, 42)
			t.Logf("%+v", row.Points)
			for i := 1; i < len(row.Points); i++ {
				if row.Points[i].Valid < row.Points[i-1].Valid {
					t.Errorf("valid plans fell from %d at %d calls to %d at %d", row.Points[i-1].Valid, i, row.Points[i].Valid, i+1)
				}
			}
			tc.check(t, row)
		})
	}
}

// The curve is a function of the seed.
func TestPlannerCurveDeterministic(t *testing.T) {
	rates := FaultRates{Recur: 0.3, Ignore: 0.1}
	a, b := curve(t, 40, rates, 7), curve(t, 40, rates, 7)
	if !slices.Equal(a.Points, b.Points) || a.FaultFree != b.FaultFree {
		t.Errorf("same seed, different curves:\n%+v\n%+v", a.Points, b.Points)
	}
	if c := curve(t, 40, rates, 8); slices.Equal(a.Points, c.Points) {
		t.Errorf("seeds 7 and 8 gave the same curve %+v: is the seed used?", a.Points)
	}
}

func TestParseFaultRates(t *testing.T) {
	got, err := ParseFaultRates("0:0, 0.3:0.1,1")
	if err != nil || !slices.Equal(got, []FaultRates{{0, 0}, {0.3, 0.1}, {1, 0}}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "1.5", "0.3:-1", "0.3:abc"} {
		if _, err := ParseFaultRates(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

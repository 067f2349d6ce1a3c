package makespan

import (
	"testing"
	"time"
)

var res = Resources{
	Models: map[string]Model{
		"planner": {SizeBytes: 8e9, PrefillTPS: 1000, DecodeTPS: 50, Slots: 1},
		"exec":    {SizeBytes: 2e9, PrefillTPS: 4000, DecodeTPS: 100, Slots: 2},
	},
	LoadBytesPerSec: 2e9,
	Resident:        map[string]bool{"planner": true, "exec": true},
}

func TestPathBoundFollowsTheLongestChain(t *testing.T) {
	// plan 1000/100 on the planner: 1 s + 2 s = 3 s; then a (1.2 s tool)
	// and b (tool 0.15 s then an exec call 400/100: 0.1 + 1 s) in
	// parallel; c after both (exec 0/50: 0.5 s); no answer call.
	r := Run{Name: "r", Before: []Call{{"planner", 1000, 100}}, Steps: []Step{
		{ID: "a", Tool: 1200 * time.Millisecond},
		{ID: "b", Tool: 150 * time.Millisecond, Calls: []Call{{"exec", 400, 100}}},
		{ID: "c", DependsOn: []string{"a", "b"}, Calls: []Call{{"exec", 0, 50}}},
	}}
	got, err := Bound([]Run{r}, res)
	if err != nil {
		t.Fatal(err)
	}
	want := 3*time.Second + 1250*time.Millisecond + 500*time.Millisecond
	if got.Makespan != want || got.Binding != "path:r" {
		t.Fatalf("bound = %v, want %v on the path", got, want)
	}
}

func TestModelWorkBindsAMix(t *testing.T) {
	// 10 runs arriving at once, each one planner call of 2 s: one slot, so
	// the planner's work (20 s) binds, not any one path (2 s).
	var runs []Run
	for range 10 {
		runs = append(runs, Run{Name: "r", Before: []Call{{"planner", 0, 100}}})
	}
	got, err := Bound(runs, res)
	if err != nil {
		t.Fatal(err)
	}
	if got.Makespan != 20*time.Second || got.Binding != "model:planner" {
		t.Fatalf("bound = %v, want 20 s set by the planner's work", got)
	}
	// Two slots halve an executor's share.
	runs = runs[:0]
	for range 10 {
		runs = append(runs, Run{Name: "r", Before: []Call{{"exec", 0, 100}}})
	}
	if got, _ := Bound(runs, res); got.Makespan != 5*time.Second {
		t.Fatalf("exec bound = %v, want 10 x 1 s over 2 slots = 5 s", got)
	}
}

func TestColdModelsLoadFirstAndOneAtATime(t *testing.T) {
	cold := res
	cold.Resident = nil                                  // 8e9 at 2e9/s = 4 s, 2e9 = 1 s
	r := Run{Name: "r", Before: []Call{{"exec", 0, 10}}} // 0.1 s
	got, _ := Bound([]Run{r}, cold)
	if got.Makespan != 1100*time.Millisecond {
		t.Fatalf("a cold call = %v, want its load (1 s) before it (0.1 s)", got)
	}
	r.Steps = []Step{{ID: "s", Calls: []Call{{"planner", 0, 5}}}} // 0.1 s
	got, _ = Bound([]Run{r}, cold)
	if got.Makespan != 5*time.Second || got.Binding != "loads" {
		t.Fatalf("two cold models = %v, want both loads one after another (5 s)", got)
	}
}

func TestArrivalsShiftPaths(t *testing.T) {
	late := Run{Name: "late", Arrive: 10 * time.Second, Before: []Call{{"exec", 0, 100}}}
	got, _ := Bound([]Run{{Name: "early", Before: []Call{{"exec", 0, 100}}}, late}, res)
	if got.Makespan != 11*time.Second || got.Binding != "path:late" {
		t.Fatalf("bound = %v, want the late run's arrival + 1 s", got)
	}
	if got.Path[1] != time.Second {
		t.Errorf("late run's own path = %v, want 1 s from its arrival", got.Path[1])
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Bound([]Run{{Name: "r", Before: []Call{{"nope", 1, 1}}}}, res); err == nil {
		t.Error("an unknown model gave no error")
	}
	cyc := Run{Name: "r", Steps: []Step{{ID: "a", DependsOn: []string{"b"}}, {ID: "b", DependsOn: []string{"a"}}}}
	if _, err := Bound([]Run{cyc}, res); err == nil {
		t.Error("a cycle gave no error")
	}
}

func TestModelsThatDoNotFitTogetherAddUp(t *testing.T) {
	small := res
	small.VRAMBytes = 9e9 // 8e9 + 2e9 do not fit together
	runs := []Run{{Name: "a", Before: []Call{{"planner", 0, 100}}}, {Name: "b", Before: []Call{{"exec", 0, 100}}}}
	got, _ := Bound(runs, small)
	if got.Makespan != 2500*time.Millisecond || got.Binding != "exclusive:exec+planner" {
		t.Fatalf("bound = %v, want 2 s + 1 s over exec's 2 slots, one after the other", got)
	}
	small.VRAMBytes = 12e9
	if got, _ := Bound(runs, small); got.Makespan != 2*time.Second {
		t.Fatalf("when they fit, bound = %v, want 2 s (the two overlap)", got)
	}
}

func TestAStreamedStepStartsWhenWritten(t *testing.T) {
	// The plan call is 1 s of prompt and 100 tokens (2 s). Step a is
	// complete after 25 tokens: it may start at 1.5 s, and its 2 s tool
	// ends at 3.5 s, after the plan (3 s); b, written last, starts at 3 s.
	r := Run{Name: "r", Before: []Call{{"planner", 1000, 100}}, Steps: []Step{
		{ID: "a", Tool: 2 * time.Second, Written: 25},
		{ID: "b", Tool: 100 * time.Millisecond},
	}}
	got, err := Bound([]Run{r}, res)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3500 * time.Millisecond; got.Makespan != want {
		t.Fatalf("bound = %v, want %v: a starts when the plan has written it", got, want)
	}
	// A step written by a replan waits only for that much of the replan.
	r = Run{Name: "r", Before: []Call{{"planner", 0, 50}}, Steps: []Step{
		{ID: "replan", Calls: []Call{{"planner", 0, 100}}},
		{ID: "c", DependsOn: []string{"replan"}, Tool: 3 * time.Second, Written: 50, WrittenBy: "replan"},
	}}
	got, err = Bound([]Run{r}, res)
	if err != nil {
		t.Fatal(err)
	}
	// plan 1 s, replan from 1 s; c after 50 of its tokens (2 s) + 3 s.
	if want := 5 * time.Second; got.Makespan != want {
		t.Fatalf("bound = %v, want %v", got, want)
	}
}

package plan

import (
	"fmt"
	"math/rand"
	"regexp"
	"testing"
)

// randomPlan builds plans that are often valid and often subtly not:
// dependencies on later steps, on themselves, on unknown ids, references
// outside depends_on, duplicate ids.
func randomPlan(r *rand.Rand) *Plan {
	pool := []string{"a", "b", "c", "d", "e", "f", "g"}
	n := 1 + r.Intn(6)
	ids := r.Perm(len(pool))[:n]
	p := &Plan{Goal: "g", Answer: "a"}
	for i := 0; i < n; i++ {
		id := pool[ids[i]]
		if r.Intn(30) == 0 {
			id = pool[ids[r.Intn(n)]] // maybe a duplicate
		}
		s := Step{ID: id}
		// Mostly earlier steps, sometimes any step or an unknown one.
		for j := 0; j < r.Intn(3); j++ {
			switch k := r.Intn(10); {
			case k < 7 && i > 0:
				s.DependsOn = append(s.DependsOn, pool[ids[r.Intn(i)]])
			case k < 9:
				s.DependsOn = append(s.DependsOn, pool[ids[r.Intn(n)]])
			default:
				s.DependsOn = append(s.DependsOn, "zz")
			}
		}
		ref := func() string {
			if len(s.DependsOn) > 0 && r.Intn(4) != 0 {
				return fmt.Sprintf("${%s.v}", s.DependsOn[r.Intn(len(s.DependsOn))])
			}
			return fmt.Sprintf("${%s}", pool[r.Intn(len(pool))])
		}
		if r.Intn(2) == 0 {
			s.Tool = "calc"
			expr := "1 + 1"
			if r.Intn(2) == 0 {
				expr = ref() + " * 2"
			}
			s.Args = map[string]any{"expression": expr}
		} else {
			s.Task = "do it"
			if r.Intn(2) == 0 {
				s.Task = "use " + ref()
			}
			s.Tools = []string{"calc"}
		}
		p.Steps = append(p.Steps, s)
	}
	return p
}

var independentRef = regexp.MustCompile(`\$\{([a-z][a-z0-9_]*)`)

// hasCycle checks by transitive closure, independently of Validate's DFS.
func hasCycle(p *Plan) bool {
	n := len(p.Steps)
	idx := map[string]int{}
	for i, s := range p.Steps {
		idx[s.ID] = i
	}
	reach := make([][]bool, n)
	for i := range reach {
		reach[i] = make([]bool, n)
	}
	for i, s := range p.Steps {
		for _, d := range s.DependsOn {
			if j, ok := idx[d]; ok {
				reach[i][j] = true
			}
		}
	}
	for k := 0; k < n; k++ {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if reach[i][k] && reach[k][j] {
					reach[i][j] = true
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		if reach[i][i] {
			return true
		}
	}
	return false
}

func TestValidatedPlansHaveNoDanglingRefsOrCycles(t *testing.T) {
	r := rand.New(rand.NewSource(20261122))
	cat := weatherTools()
	accepted, rejected := 0, 0
	for i := 0; i < 20000; i++ {
		p := randomPlan(r)
		if errs := Validate(p, cat, 12); len(errs) > 0 {
			rejected++
			continue
		}
		accepted++
		ids := map[string]bool{}
		for _, s := range p.Steps {
			if ids[s.ID] {
				t.Fatalf("accepted duplicate id %q: %+v", s.ID, p)
			}
			ids[s.ID] = true
		}
		for _, s := range p.Steps {
			deps := map[string]bool{}
			for _, d := range s.DependsOn {
				if !ids[d] {
					t.Fatalf("accepted dependency on unknown %q: %+v", d, p)
				}
				deps[d] = true
			}
			text := s.Task
			if e, ok := s.Args["expression"].(string); ok {
				text += " " + e
			}
			for _, m := range independentRef.FindAllStringSubmatch(text, -1) {
				if !deps[m[1]] {
					t.Fatalf("accepted dangling reference ${%s} in step %q: %+v", m[1], s.ID, p)
				}
			}
		}
		if hasCycle(p) {
			t.Fatalf("accepted a cycle: %+v", p)
		}
		if _, err := p.TopoOrder(); err != nil {
			t.Fatalf("accepted plan has no order: %v", err)
		}
	}
	// Both sides must be well represented for the property to mean much.
	if accepted < 1000 || rejected < 1000 {
		t.Fatalf("generator is lopsided: %d accepted, %d rejected", accepted, rejected)
	}
	t.Logf("%d accepted, %d rejected", accepted, rejected)
}

// Every cycle the independent checker sees, Validate reports.
func TestValidateFindsEveryCycle(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	cat := weatherTools()
	for i := 0; i < 20000; i++ {
		p := randomPlan(r)
		ids := map[string]bool{}
		for _, s := range p.Steps {
			ids[s.ID] = true
		}
		if len(ids) < len(p.Steps) || !hasCycle(p) {
			continue // with duplicate ids "the" cycle is ambiguous; the duplicate is reported
		}
		found := false
		for _, e := range Validate(p, cat, 12) {
			if e.Field == "depends_on" && (regexp.MustCompile(`cycle|itself`).MatchString(e.Msg)) {
				found = true
			}
		}
		if !found {
			t.Fatalf("cycle not reported: %+v\n%v", p, Errors(Validate(p, cat, 12)))
		}
	}
}

package scenarios

import (
	"strings"
	"testing"
)

func TestArithmeticFindsTheCalculation(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"What is 17% of 2,340?", "(2340 * 17 / 100)"},
		{"what is 0.1+0.2", "0.1+0.2"},
		{"Compute (12.5 * 4 - 3) / 2 please", "(12.5 * 4 - 3) / 2"},
		{"what's 12 times 7?", "12 * 7"},
		{"3x4", "3 * 4"},
		{"1,000,000 divided by 8", "1000000 / 8"},
		{"sqrt(16) + 2^3", "sqrt(16) + 2^3"},
		{"hi there", ""},
		{"I have 3 apples", ""},
		{"call me at 555-1234", "555-1234"}, // a plausible misreading is still a valid calc
	} {
		if got := arithmetic(c.in); got != c.want {
			t.Errorf("arithmetic(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestOpenPlanPicksATool(t *testing.T) {
	for _, c := range []struct {
		in      string
		docs    bool
		tool    string
		isTask  bool
		stepArg string
	}{
		{"What is 17% of 2,340?", true, "calc", false, "expression"},
		{"What time is it in Europe/Paris?", true, "now", false, "timezone"},
		{"How should vaccines be kept cold?", true, "search_docs", false, "query"},
		{"How should vaccines be kept cold?", false, "", true, ""},
		{"hi there", true, "", true, ""},
	} {
		p := openPlan(c.in, c.docs)
		if len(p.Steps) != 1 {
			t.Fatalf("%q: %d steps", c.in, len(p.Steps))
		}
		s := p.Steps[0]
		if c.isTask {
			if s.Task == "" || !strings.Contains(s.Task, c.in) {
				t.Errorf("%q: want a task step carrying the request, got %+v", c.in, s)
			}
			continue
		}
		if s.Tool != c.tool {
			t.Errorf("%q: tool %q, want %q", c.in, s.Tool, c.tool)
		}
		if _, ok := s.Args[c.stepArg]; !ok {
			t.Errorf("%q: args %v lack %q", c.in, s.Args, c.stepArg)
		}
	}
}

// The script's planner must find the request in the prompt the real
// planner builds, past examples, repairs and replans.
func TestOpenRequestFromPlannerPrompt(t *testing.T) {
	req := "What is 17% of 2,340?"
	for _, users := range [][]string{
		{req},
		{"Example request one", "Example two", req},
		{"Example", req, "That plan cannot run. Fix these problems:\n- x\nReply with the whole corrected plan as one JSON object."},
		{"Example", "Request: " + req + "\n\nThis step failed: calculate (tool calc)\nError: boom\n\nPlan only the remaining work."},
	} {
		if got := openRequest(users); got != req {
			t.Errorf("openRequest(%q) = %q", users, got)
		}
	}
}

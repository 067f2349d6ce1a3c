package scenarios

import (
	"fmt"
	"strings"
)

// StepOutput is one step's result as a run recorded it.
type StepOutput struct {
	ID     string
	Tool   string // the tool of a tool step, or of a scratchpad action
	Output string
}

// Score is how much of a scenario's expected result a run reached.
type Score struct {
	StepsOK, StepsTotal int
	FactsOK, FactsTotal int
	Missing             []string // what was not found, for reports
}

// StepAccuracy is StepsOK over StepsTotal (1 when nothing is expected).
func (s Score) StepAccuracy() float64 { return ratio(s.StepsOK, s.StepsTotal) }

// FinalAccuracy is FactsOK over FactsTotal.
func (s Score) FinalAccuracy() float64 { return ratio(s.FactsOK, s.FactsTotal) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func containsAll(s string, facts []string) bool {
	for _, f := range facts {
		if !containsFold(s, f) {
			return false
		}
	}
	return true
}

// Score checks a run's step outputs and final answer against Expect. With
// byTool (runs that have no plan step ids, like the scratchpad loop), a
// tool step's facts may be in the output of any step that called the same
// tool, and a task step's facts must be in the final answer, since such a
// run does that reasoning in its own turns.
func (s Scenario) Score(steps []StepOutput, answer string, byTool bool) Score {
	var sc Score
	byID := map[string]string{}
	for _, st := range steps {
		byID[st.ID] = st.Output
	}
	for _, e := range s.Expect.Steps {
		sc.StepsTotal++
		ok := false
		switch {
		case !byTool:
			out, found := byID[e.Step]
			ok = found && containsAll(out, e.Facts)
		case e.Tool == "":
			ok = containsAll(answer, e.Facts)
		default:
			for _, st := range steps {
				if st.Tool == e.Tool && containsAll(st.Output, e.Facts) {
					ok = true
					break
				}
			}
		}
		if ok {
			sc.StepsOK++
		} else {
			sc.Missing = append(sc.Missing, fmt.Sprintf("step %s: %s", e.Step, strings.Join(e.Facts, ", ")))
		}
	}
	for _, f := range s.Expect.Facts {
		sc.FactsTotal++
		if containsFold(answer, f) {
			sc.FactsOK++
		} else {
			sc.Missing = append(sc.Missing, "answer: "+f)
		}
	}
	return sc
}

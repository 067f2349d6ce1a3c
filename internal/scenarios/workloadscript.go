package scenarios

import (
	"strings"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/ollamasim"
)

// WorkloadScript plays every model for the plan cache workload: the
// planner writes the plan of the request type it recognises, with the
// entities it read (and the same plan on a replan); the router says no
// workflow applies; the executor summarises a ticket from the report in its
// task; the summarizer answers from the step results in its prompt. A
// request it does not recognise gets the simulator's default output.
func WorkloadScript() ollamasim.Script { return workloadScript{} }

type workloadScript struct{}

var _ ollamasim.Script = workloadScript{}

func (workloadScript) Respond(req *api.ChatRequest) (ollamasim.Reply, bool) {
	system, users := "", []string{}
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			system = m.Content
		case "user":
			users = append(users, m.Content)
		}
	}
	last := ""
	if len(users) > 0 {
		last = users[len(users)-1]
	}
	switch {
	case strings.HasPrefix(system, markPlanner):
		p, ok := WorkloadPlanIn(openRequest(users))
		if !ok {
			return ollamasim.Reply{}, false
		}
		return ollamasim.Reply{Content: PlanJSON(p)}, true
	case strings.Contains(system, markClassify):
		return ollamasim.Reply{Content: mustJSON(map[string]string{"workflow": "none"})}, true
	case strings.HasPrefix(system, markSummarizer):
		w, ok := RecogniseWorkload(requestLine(last))
		if !ok {
			return ollamasim.Reply{}, false
		}
		k, _ := kindNamed(w.Kind)
		return ollamasim.Reply{Content: k.answer(w.Entities, completedSteps(last))}, true
	}
	if i := strings.Index(last, "Task: "); i >= 0 {
		if answer := executorAnswer(last[i:]); answer != "" {
			return ollamasim.Reply{Content: answer}, true
		}
	}
	return ollamasim.Reply{}, false
}

// completedSteps reads the step results of a summarizer prompt: the
// "[step_id] output" lines under "Completed steps:" (lines above it list
// what did not complete).
func completedSteps(prompt string) stepResults {
	_, body, ok := strings.Cut(prompt, "Completed steps:\n")
	if !ok {
		return stepResults{}
	}
	res := stepResults{}
	for _, m := range stepResult.FindAllStringSubmatch(body, -1) {
		res[m[1]] = m[2]
	}
	return res
}

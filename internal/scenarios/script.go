package scenarios

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/ollama/ollama/api"
)

// Prompt markers the script recognises. They are the fixed openings of the
// prompts agentd's planner, router, executor and summarizer send (and of
// the sequential baseline's, which reuses the executor's), so the script
// answers by role, whatever the model names in the config.
const (
	markPlanner    = "You are the planner of agentd"
	markReplan     = "This step failed:"
	markClassify   = "Decide whether the user's request is one of these known workflows"
	markExtract    = "Extract the parameters of the workflow"
	markSummarizer = "You write the final answer"
	markScratchpad = "You answer the user's request by working step by step"
	// MarkCallTool opens a baseline step that must go through the model
	// although its arguments are known: "Call the tool NAME with these
	// arguments: {...}".
	MarkCallTool = "Call the tool "
)

var callToolRe = regexp.MustCompile(`Call the tool ([a-z][a-z0-9_]*) with these arguments: (\{.*\})`)

// Script returns the simulator script that plays every model for the
// scenarios: the planner writes each scenario's plan (and replan), the
// router classifies and extracts workflow parameters, executor models
// answer task steps (calling their tools natively first where scripted),
// the summarizer writes the final answer, and the single-model scratchpad
// loop acts like a ReAct agent. Requests it does not recognise get the
// simulator's default output.
func Script() ollamasim.Script { return &script{all: All()} }

type script struct{ all []Scenario }

var _ ollamasim.Script = (*script)(nil)

func (s *script) Respond(req *api.ChatRequest) (ollamasim.Reply, bool) {
	system, users := "", []string{}
	assistants, toolMsgs := 0, 0
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			system = m.Content
		case "user":
			users = append(users, m.Content)
		case "assistant":
			assistants++
		case "tool":
			toolMsgs++
		}
	}
	last := ""
	if len(users) > 0 {
		last = users[len(users)-1]
	}
	sc, found := s.byRequest(users)
	switch {
	case strings.HasPrefix(system, markScratchpad):
		if !found {
			return ollamasim.Reply{}, false
		}
		return ollamasim.Reply{Content: reactTurn(sc, assistants)}, true
	case strings.HasPrefix(system, markPlanner):
		if !found {
			// A request of the newcomer's own: plan it with the demo's tools.
			req := openRequest(users)
			hasDocs := strings.Contains(system, "search_docs")
			for _, u := range users {
				hasDocs = hasDocs || strings.Contains(u, "search_docs")
			}
			return ollamasim.Reply{Content: PlanJSON(openPlan(req, hasDocs))}, true
		}
		replan := false
		for _, u := range users {
			replan = replan || strings.Contains(u, markReplan)
		}
		switch {
		case replan && sc.Replan != nil:
			return ollamasim.Reply{Content: PlanJSON(sc.Replan)}, true
		case sc.Plan != nil:
			return ollamasim.Reply{Content: PlanJSON(sc.Plan)}, true
		}
		return ollamasim.Reply{}, false
	case strings.Contains(system, markClassify):
		name := "none"
		if found && sc.Workflow != "" {
			name = sc.Workflow
		}
		return ollamasim.Reply{Content: mustJSON(map[string]string{"workflow": name})}, true
	case strings.Contains(system, markExtract):
		if !found || sc.Params == nil {
			return ollamasim.Reply{}, false
		}
		return ollamasim.Reply{Content: mustJSON(sc.Params)}, true
	case strings.HasPrefix(system, markSummarizer):
		if !found {
			if answer, ok := openSummary(last); ok {
				return ollamasim.Reply{Content: answer}, true
			}
			return ollamasim.Reply{}, false
		}
		return ollamasim.Reply{Content: sc.Answer}, true
	}
	if m := callToolRe.FindStringSubmatch(last); m != nil && len(req.Tools) > 0 && toolMsgs == 0 {
		var args map[string]any
		if json.Unmarshal([]byte(m[2]), &args) == nil {
			return ollamasim.Reply{ToolCalls: []ollamasim.ToolCallReply{{Name: m[1], Arguments: args}}}, true
		}
	}
	if strings.Contains(last, openTaskMarker) {
		return ollamasim.Reply{Content: openTaskAnswer(last)}, true
	}
	if t, ok := s.task(last); ok {
		if len(t.ToolCalls) > 0 && len(req.Tools) > 0 && toolMsgs == 0 {
			calls := make([]ollamasim.ToolCallReply, len(t.ToolCalls))
			for i, c := range t.ToolCalls {
				calls[i] = ollamasim.ToolCallReply{Name: c.Name, Arguments: c.Args}
			}
			return ollamasim.Reply{ToolCalls: calls}, true
		}
		return ollamasim.Reply{Content: t.Answer}, true
	}
	return ollamasim.Reply{}, false
}

// openRequest is the user's request in the planner's prompt: the last
// user message that is not a repair request, or the "Request:" line of a
// replan message. (The examples before it are user turns too.)
func openRequest(users []string) string {
	for i := len(users) - 1; i >= 0; i-- {
		u := users[i]
		if strings.HasPrefix(u, localplanner.RepairOpening) {
			continue
		}
		if first, _, _ := strings.Cut(u, "\n"); strings.HasPrefix(first, "Request: ") && strings.Contains(u, markReplan) {
			return strings.TrimSpace(strings.TrimPrefix(first, "Request: "))
		}
		return strings.TrimSpace(u)
	}
	return ""
}

// byRequest finds the scenario whose request text appears in a user
// message.
func (s *script) byRequest(users []string) (Scenario, bool) {
	for _, u := range users {
		for _, sc := range s.all {
			if strings.Contains(u, sc.Request) {
				return sc, true
			}
		}
	}
	return Scenario{}, false
}

func (s *script) task(text string) (Task, bool) {
	for _, sc := range s.all {
		for _, t := range sc.Tasks {
			if strings.Contains(text, "Task: "+t.Marker) || strings.Contains(text, t.Marker) && strings.Contains(text, "Task:") {
				return t, true
			}
		}
	}
	return Task{}, false
}

// reactTurn is the scratchpad reply for turn n (0-based): the next tool
// call, then the final answer.
func reactTurn(sc Scenario, n int) string {
	var steps []string
	for _, a := range sc.React {
		steps = append(steps, a.Tool)
	}
	planText := "call " + strings.Join(steps, ", then ") + ", then answer"
	type pad struct {
		Plan     string `json:"plan"`
		Progress string `json:"progress"`
		Next     string `json:"next"`
	}
	if n < len(sc.React) {
		a := sc.React[n]
		return mustJSON(map[string]any{
			"scratchpad": pad{Plan: planText, Progress: fmt.Sprintf("%d of %d tool calls done", n, len(sc.React)), Next: a.Note},
			"action":     "tool", "tool": a.Tool, "args": a.Args,
		})
	}
	return mustJSON(map[string]any{
		"scratchpad": pad{Plan: planText, Progress: "all tool results are in", Next: "answer"},
		"action":     "final", "answer": sc.ReactFinal,
	})
}

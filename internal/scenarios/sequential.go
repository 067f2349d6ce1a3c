package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
)

// The sequential baseline is the naive plan-and-execute loop agentd is
// measured against: the same plan (one planner call, or the workflow
// template), then every step in dependency order sent to the executor
// model one after another — tool steps too, whose arguments the model must
// repeat as a tool call — with the results so far, then the same
// summarizer call. No parallelism, no tool step without a model.

// ChatModel is the model client the baseline uses; *llm.Client is one.
type ChatModel interface {
	Chat(ctx context.Context, req llm.Request) (*llm.Response, error)
}

// Call is one model call a baseline made.
type Call struct {
	Model        string
	Purpose      string
	StepID       string
	PromptTokens int
	OutputTokens int
	// Total is the server's reported duration (simulated on ollamasim).
	Total time.Duration
	Wall  time.Duration
}

// BaselineResult is one sequential run.
type BaselineResult struct {
	Steps  []StepOutput
	Answer string
	Calls  []Call
	Wall   time.Duration
	// Failed lists steps that produced no result, with why.
	Failed []string
}

// Sequential runs scenarios the naive way.
type Sequential struct {
	Chat    ChatModel
	Tools   *tools.Registry
	Models  config.ModelsConfig
	Planner config.PlannerConfig
	// MaxTurns bounds model turns per task step (0 = 6, like agentd).
	MaxTurns int
}

const executorSystem = "You carry out one step of a larger plan. Use only the results given; do not invent facts. " +
	"Call a tool when you need data; when you have what the task asks for, answer briefly and precisely."

const summarizerSystem = "You write the final answer to a user's request from the results of the steps that were run. " +
	"Use only those results. After each fact, cite the step it comes from as [step_id]. " +
	"If something failed, say what is missing; do not guess."

// Run plans (or instantiates) the scenario's plan and runs it step by step.
// Only a cancelled context or an unusable plan is an error; failed steps
// are reported in the result.
func (q *Sequential) Run(ctx context.Context, sc Scenario) (*BaselineResult, error) {
	start := time.Now()
	res := &BaselineResult{}
	p, err := q.plan(ctx, sc, res)
	if err != nil {
		return res, err
	}
	order, err := topoOrder(p)
	if err != nil {
		return res, err
	}
	results := map[string]json.RawMessage{}
	var done []StepOutput
	for _, st := range order {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		out, err := q.step(ctx, sc, st, results, done, res)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %v", st.ID, err))
			continue
		}
		if json.Valid([]byte(out)) {
			results[st.ID] = json.RawMessage(out)
		} else {
			results[st.ID], _ = json.Marshal(out)
		}
		so := StepOutput{ID: st.ID, Tool: st.Tool, Output: out}
		done = append(done, so)
		res.Steps = append(res.Steps, so)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Request: %s\nHow to answer: %s\n", sc.Request, p.Answer)
	if len(res.Failed) > 0 {
		b.WriteString("Did not complete:\n" + strings.Join(res.Failed, "\n") + "\n")
	}
	b.WriteString(renderResults(done))
	resp, err := q.chat(ctx, res, llm.Request{Model: q.Models.Summarizer, Purpose: "synthesize",
		Messages: []api.Message{{Role: "system", Content: summarizerSystem}, {Role: "user", Content: b.String()}}}, "")
	if err != nil {
		return res, fmt.Errorf("summarize: %w", err)
	}
	res.Answer = strings.TrimSpace(resp.Message.Content)
	res.Wall = time.Since(start)
	return res, nil
}

func (q *Sequential) plan(ctx context.Context, sc Scenario, res *BaselineResult) (*plan.Plan, error) {
	if sc.Plan == nil {
		return sc.PlanFor() // a workflow template: no planner call, as in agentd
	}
	list := toolInfos(q.Tools)
	prompt := localplanner.BuildPrompt(localplanner.PromptInput{Request: sc.Request, Tools: list, Examples: q.Planner.Examples,
		MaxSteps: q.Planner.MaxSteps, TokenBudget: q.Planner.PromptTokenBudget})
	format, err := localplanner.PlanSchema(prompt.Tools, q.Planner.MaxSteps)
	if err != nil {
		return nil, err
	}
	resp, err := q.chat(ctx, res, llm.Request{Model: q.Models.Planner, Messages: apiMessages(prompt.Messages), Format: format, Purpose: localplanner.PurposePlan}, "")
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p, err := localplanner.ParsePlan(resp.Message.Content)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return p, nil
}

func (q *Sequential) step(ctx context.Context, sc Scenario, st plan.Step, results map[string]json.RawMessage, done []StepOutput, res *BaselineResult) (string, error) {
	head := fmt.Sprintf("Request: %s\n%s\n", sc.Request, renderResults(done))
	model := q.Models.Fast
	if st.Tier == plan.TierStandard {
		model = q.Models.Standard
	}
	if st.Kind() == plan.KindTool {
		args, err := plan.Bind(st.Args, results)
		if err != nil {
			return "", err
		}
		tl, err := apiTools(q.Tools, []string{st.Tool})
		if err != nil {
			return "", err
		}
		ab, _ := json.Marshal(args)
		msg := head + fmt.Sprintf("Step %s: %s%s with these arguments: %s", st.ID, MarkCallTool, st.Tool, ab)
		resp, err := q.chat(ctx, res, llm.Request{Model: model, Tools: tl, Purpose: "execute",
			Messages: []api.Message{{Role: "system", Content: executorSystem}, {Role: "user", Content: msg}}}, st.ID)
		if err != nil {
			return "", err
		}
		if len(resp.Message.ToolCalls) == 0 {
			return "", fmt.Errorf("model %s answered without calling %s", model, st.Tool)
		}
		tc := resp.Message.ToolCalls[0].Function
		return q.callTool(ctx, tc.Name, tc.Arguments.ToMap())
	}
	task, err := plan.BindText(st.Task, results)
	if err != nil {
		return "", err
	}
	tl, err := apiTools(q.Tools, st.Tools)
	if err != nil {
		return "", err
	}
	user := head + fmt.Sprintf("Step %s: Task: %s", st.ID, task)
	if len(st.Output) > 0 {
		user += "\nAnswer with JSON matching this schema: " + string(st.Output)
	}
	msgs := []api.Message{{Role: "system", Content: executorSystem}, {Role: "user", Content: user}}
	turns := q.MaxTurns
	if turns <= 0 {
		turns = 6
	}
	for range turns {
		req := llm.Request{Model: model, Messages: msgs, Tools: tl, Purpose: "execute"}
		if len(tl) == 0 {
			req.Format = st.Output
		}
		resp, err := q.chat(ctx, res, req, st.ID)
		if err != nil {
			return "", err
		}
		if len(resp.Message.ToolCalls) == 0 {
			return strings.TrimSpace(resp.Message.Content), nil
		}
		msgs = append(msgs, resp.Message)
		for _, c := range resp.Message.ToolCalls {
			out, err := q.callTool(ctx, c.Function.Name, c.Function.Arguments.ToMap())
			if err != nil {
				out = "error: " + err.Error()
			}
			msgs = append(msgs, api.Message{Role: "tool", ToolName: c.Function.Name, Content: out})
		}
	}
	return "", fmt.Errorf("no answer within %d turns", turns)
}

func (q *Sequential) callTool(ctx context.Context, name string, args map[string]any) (string, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return "", err
	}
	r, err := q.Tools.Call(ctx, name, b)
	if err != nil {
		return "", err
	}
	return string(r.Output), nil
}

func (q *Sequential) chat(ctx context.Context, res *BaselineResult, req llm.Request, stepID string) (*llm.Response, error) {
	req.Options = map[string]any{"temperature": 0}
	t := time.Now()
	resp, err := q.Chat.Chat(ctx, req)
	c := Call{Model: req.Model, Purpose: req.Purpose, StepID: stepID, Wall: time.Since(t)}
	if resp != nil {
		c.PromptTokens, c.OutputTokens, c.Total = resp.Usage.PromptTokens, resp.Usage.OutputTokens, resp.Usage.TotalDuration
	}
	res.Calls = append(res.Calls, c)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func renderResults(done []StepOutput) string {
	if len(done) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Completed steps:\n")
	for _, d := range done {
		fmt.Fprintf(&b, "[%s] %s\n", d.ID, d.Output)
	}
	return b.String()
}

func toolInfos(r *tools.Registry) []plan.ToolInfo {
	specs := r.List()
	out := make([]plan.ToolInfo, 0, len(specs))
	for _, s := range specs {
		schema, _ := r.ArgsSchema(s.Name)
		out = append(out, plan.ToolInfo{Name: s.Name, Description: s.Description, ArgsSchema: schema})
	}
	return out
}

func apiTools(r *tools.Registry, names []string) (api.Tools, error) {
	var out api.Tools
	for _, n := range names {
		s, ok := r.Spec(n)
		if !ok {
			return nil, fmt.Errorf("unknown tool %q", n)
		}
		t := api.Tool{Type: "function", Function: api.ToolFunction{Name: n, Description: s.Description}}
		if err := json.Unmarshal(s.ArgsSchema, &t.Function.Parameters); err != nil {
			return nil, fmt.Errorf("tool %s: %w", n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// topoOrder returns the steps in plan.TopoOrder's order: each after its
// dependencies, plan order kept among steps that are free to go.
func topoOrder(p *plan.Plan) ([]plan.Step, error) {
	ids, err := p.TopoOrder()
	if err != nil {
		return nil, err
	}
	out := make([]plan.Step, len(ids))
	for i, id := range ids {
		out[i], _ = p.Step(id)
	}
	return out, nil
}

// CriticalPath returns the longest dependency chain's total duration,
// given each step's duration, and the chain itself.
func CriticalPath(p *plan.Plan, dur map[string]time.Duration) (time.Duration, []string) {
	order, err := topoOrder(p)
	if err != nil {
		return 0, nil
	}
	best := map[string]time.Duration{}
	prev := map[string]string{}
	var end string
	var endD time.Duration
	for _, s := range order {
		var base time.Duration
		for _, d := range s.DependsOn {
			if best[d] > base {
				base, prev[s.ID] = best[d], d
			}
		}
		best[s.ID] = base + dur[s.ID]
		if best[s.ID] >= endD {
			end, endD = s.ID, best[s.ID]
		}
	}
	var chain []string
	for id := end; id != ""; id = prev[id] {
		chain = append([]string{id}, chain...)
	}
	return endD, chain
}

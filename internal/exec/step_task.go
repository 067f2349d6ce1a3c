package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// taskConv is a task step's conversation with its executor model. It lives
// across attempts, so a regenerate sees what went wrong and a retry does
// not repeat tool calls already answered.
type taskConv struct {
	x      *runExec
	st     *run.Step
	spec   plan.Step
	model  string
	tier   string
	msgs   []Message
	tools  map[string]Tool
	specs  []ToolSpec
	native bool
	probed bool
	// answerOnly drops the tools and constrains the reply to the output
	// schema, after an answer failed it: a grammar-constrained reply cannot
	// carry native tool calls, so the schema is enforced only then.
	answerOnly bool
	// numPredict bounds each reply; a reply cut or broken off (cut set)
	// makes the next attempt double it. regen counts regenerations, which
	// the model client turns into other sampling.
	numPredict int
	cut        bool
	regen      int
}

func (x *runExec) newTaskConv(st *run.Step, in stepInput, task string) *taskConv {
	tier := in.spec.Tier
	if tier == "" {
		tier = plan.TierFast
	}
	t := &taskConv{x: x, st: st, spec: in.spec, tier: tier, model: x.e.d.Models.Model(tier), tools: map[string]Tool{}}
	for _, n := range in.spec.Tools {
		if tool, ok := x.e.d.Tools.Lookup(n); ok {
			t.tools[n] = tool
			t.specs = append(t.specs, ToolSpec{Name: n, Description: tool.Description(), Parameters: tool.Schema()})
		}
	}
	budget := x.e.promptChars(t.model)
	system := executorSystemPrompt(len(t.specs) > 0, len(in.spec.Output) > 0)
	user := "Task: " + task
	if len(in.spec.Output) > 0 {
		user += "\nAnswer with JSON matching this schema: " + string(in.spec.Output)
	}
	const head = "Run state:\n"
	state := in.view.render(budget - len(system) - len(head) - len(user) - 1 - toolSpecChars(t.specs))
	t.msgs = []Message{{Role: "system", Content: system}, {Role: "user", Content: head + state + "\n" + user}}
	t.numPredict = x.e.cfg.NumPredict
	if t.numPredict <= 0 {
		t.numPredict = t.bound()
	}
	return t
}

// bound is the output bound of one turn: the step's answer, or a call of
// one of its tools.
func (t *taskConv) bound() int {
	schemas := []json.RawMessage{t.spec.Output}
	for _, s := range t.specs {
		schemas = append(schemas, s.Parameters)
	}
	return outputBound(schemas...)
}

func toolSpecChars(specs []ToolSpec) int {
	n := 0
	for _, s := range specs {
		n += len(s.Name) + len(s.Description) + len(s.Parameters)
	}
	return n
}

func executorSystemPrompt(tools, schema bool) string {
	var b strings.Builder
	b.WriteString("You carry out one step of a larger plan. Use only the results given; do not invent facts.")
	if tools {
		b.WriteString(" Call a tool when you need data; when you have what the task asks for, answer.")
	}
	if schema {
		b.WriteString(" Your answer must be JSON matching the schema given.")
	} else {
		b.WriteString(" Answer briefly and precisely.")
	}
	return b.String()
}

// selectionFormat is the JSON Schema that stands in for native tool calls
// on models without them: either {"tool", "args"} or {"answer"}.
func (t *taskConv) selectionFormat() json.RawMessage {
	names := make([]string, 0, len(t.specs))
	for _, s := range t.specs {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	var answer any = map[string]any{"type": "string"}
	if len(t.spec.Output) > 0 {
		answer = t.spec.Output
	}
	schema := map[string]any{"anyOf": []any{
		map[string]any{"type": "object", "required": []string{"tool", "args"}, "properties": map[string]any{
			"tool": map[string]any{"type": "string", "enum": names}, "args": map[string]any{"type": "object"}}},
		map[string]any{"type": "object", "required": []string{"answer"}, "properties": map[string]any{"answer": answer}},
	}}
	b, _ := json.Marshal(schema)
	return b
}

// attempt runs the tool-call → tool result → model loop until an answer or
// the turn limit. feedback, from a failed attempt, goes back to the model.
func (t *taskConv) attempt(ctx context.Context, feedback string) (string, error) {
	x := t.x
	if !t.probed {
		t.probed = true
		t.native = len(t.specs) > 0 && x.e.d.SupportsTools(ctx, t.model)
	}
	if feedback != "" {
		t.regen++
		if t.cut {
			t.numPredict, t.cut = moreRoom(t.numPredict), false
		}
		if t.native && len(t.spec.Output) > 0 && strings.Contains(feedback, "output schema") {
			t.answerOnly = true
		}
		t.msgs = append(t.msgs, Message{Role: "user", Content: "Your previous reply was rejected: " + feedback +
			"\nCorrect it and try again."})
	}
	for turn := 0; turn < x.e.cfg.MaxTurns; turn++ {
		req := ChatRequest{Model: t.model, Messages: t.msgs, NumPredict: t.numPredict, Regeneration: t.regen,
			RunID: t.st.RunID, StepID: t.st.StepID, Purpose: "execute", Tier: t.tier}
		switch {
		case t.answerOnly:
			req.Format = t.spec.Output
		case t.native:
			// Format would constrain the reply to the answer's schema and
			// leave no room for tool calls; the answer is validated instead.
			req.Tools = t.specs
		case len(t.specs) > 0:
			req.Format = t.selectionFormat()
		default:
			req.Format = t.spec.Output
		}
		resp, err := x.chat(ctx, req)
		if err != nil {
			if t.native && x.e.d.IsNoToolSupport(err) {
				t.native = false
				turn--
				continue
			}
			if x.e.d.IsBadOutput(err) {
				t.cut = true
				return "", &stepError{class: ClassBadOutput, err: err}
			}
			return "", err
		}
		calls, answer, isAnswer, err := t.parse(resp)
		if err != nil {
			t.msgs = append(t.msgs, Message{Role: "assistant", Content: resp.Content})
			return "", err
		}
		if isAnswer {
			if err := t.checkAnswer(answer); err != nil {
				t.msgs = append(t.msgs, Message{Role: "assistant", Content: answer})
				return "", err
			}
			return answer, nil
		}
		mark := len(t.msgs)
		t.msgs = append(t.msgs, Message{Role: "assistant", Content: resp.Content, ToolCalls: calls})
		for _, c := range calls {
			out, err := t.runCall(ctx, c)
			if err != nil {
				// The next attempt starts from before this turn, told why.
				t.msgs = t.msgs[:mark]
				return "", err
			}
			t.msgs = append(t.msgs, Message{Role: "tool", ToolName: c.Name, Content: out})
		}
		t.msgs = trimMessages(t.msgs, x.e.promptChars(t.model))
	}
	return "", classed(ClassTurns, "no answer within %d model turns", x.e.cfg.MaxTurns)
}

// parse reads tool calls or an answer from a response.
func (t *taskConv) parse(resp ChatResponse) (calls []ToolCall, answer string, isAnswer bool, err error) {
	if t.native || t.answerOnly || len(t.specs) == 0 {
		if len(resp.ToolCalls) > 0 {
			return resp.ToolCalls, "", false, nil
		}
		return nil, strings.TrimSpace(resp.Content), true, nil
	}
	var sel struct {
		Tool   string          `json:"tool"`
		Args   map[string]any  `json:"args"`
		Answer json.RawMessage `json:"answer"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(resp.Content)), &sel); err != nil {
		return nil, "", false, classed(ClassBadOutput, "reply is not the JSON asked for: %v", err)
	}
	if sel.Tool != "" {
		return []ToolCall{{Name: sel.Tool, Arguments: sel.Args}}, "", false, nil
	}
	if len(sel.Answer) == 0 {
		return nil, "", false, classed(ClassBadOutput, `reply has neither "tool" nor "answer"`)
	}
	var s string
	if len(t.spec.Output) == 0 && json.Unmarshal(sel.Answer, &s) == nil {
		return nil, s, true, nil
	}
	return nil, string(sel.Answer), true, nil
}

// checkAnswer validates an answer against the step's output schema.
func (t *taskConv) checkAnswer(answer string) error {
	if answer == "" {
		return classed(ClassBadOutput, "empty answer")
	}
	if len(t.spec.Output) == 0 {
		return nil
	}
	if err := t.x.e.val.validateJSON(t.spec.Output, []byte(answer)); err != nil {
		return classed(ClassBadOutput, "answer does not match the output schema: %v", err)
	}
	return nil
}

// runCall checks and runs one tool call the model asked for.
func (t *taskConv) runCall(ctx context.Context, c ToolCall) (string, error) {
	tool, ok := t.tools[c.Name]
	if !ok {
		return "", classed(ClassBadArgs, "tool %q is not available to this step (available: %s)", c.Name,
			strings.Join(slices.Sorted(mapsKeys(t.tools)), ", "))
	}
	if err := t.x.e.val.validateArgs(tool.Schema(), c.Arguments); err != nil {
		return "", classed(ClassBadArgs, "arguments for %s do not match its schema: %v", c.Name, err)
	}
	out, err := t.x.callTool(ctx, t.st, tool, c.Arguments)
	if se, ok := err.(*stepError); ok && se.class == ClassTool {
		// A tool error is news the model can act on (another query,
		// other arguments); the turn limit bounds how long it may try.
		return "error: " + se.Error() + "\n" + out, nil
	}
	return out, err
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// chat makes one model call under the model's limiter, records its usage on
// the run and announces it.
func (x *runExec) chat(ctx context.Context, req ChatRequest) (ChatResponse, error) {
	release, err := x.e.d.Limiter.Acquire(ctx, req.Model)
	if err != nil {
		return ChatResponse{}, fmt.Errorf("wait for model %s: %w", req.Model, err)
	}
	start := time.Now()
	resp, err := x.e.d.Chat.Chat(ctx, req)
	release()
	x.mu.Lock()
	x.r.CostUSD += resp.CostUSD
	x.r.EnergyWh += resp.EnergyWh
	x.mu.Unlock()
	ev := events.ModelCallData{StepID: req.StepID, Model: req.Model, Purpose: req.Purpose, Tier: req.Tier,
		PromptTokens: resp.PromptTokens, OutputTokens: resp.OutputTokens, DoneReason: resp.DoneReason,
		TotalMS: resp.TotalDuration.Milliseconds(), WallMS: time.Since(start).Milliseconds(),
		CostUSD: resp.CostUSD, Location: resp.Where, Where: resp.Where}
	if err != nil {
		ev.Error = err.Error()
	}
	emit(x.e.d.Events, x.r.ID, ev)
	if err != nil {
		return resp, fmt.Errorf("model %s: %w", req.Model, err)
	}
	return resp, nil
}

package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// The scratchpad loop: one small model plans and acts step by step,
// carrying an explicit scratchpad (plan, progress, next action) in every
// reply, under a JSON Schema. No planner, no DAG: it is the simple baseline
// (agentd bench compares plan-and-execute against it) and the mode for
// workflows where a plan up front does not help.

// scratchpadReply is what the model must answer each turn.
type scratchpadReply struct {
	Scratchpad struct {
		Plan     string `json:"plan"`
		Progress string `json:"progress"`
		Next     string `json:"next"`
	} `json:"scratchpad"`
	Action string         `json:"action"` // tool | final
	Tool   string         `json:"tool,omitempty"`
	Args   map[string]any `json:"args,omitempty"`
	Answer string         `json:"answer,omitempty"`
}

const scratchpadStepPrefix = "sp"

func scratchpadFormat(tools []string) json.RawMessage {
	toolSchema := map[string]any{"type": "string"}
	if len(tools) > 0 {
		toolSchema["enum"] = tools
	}
	schema := map[string]any{
		"type":     "object",
		"required": []string{"scratchpad", "action"},
		"properties": map[string]any{
			"scratchpad": map[string]any{"type": "object", "required": []string{"plan", "progress", "next"},
				"properties": map[string]any{"plan": map[string]any{"type": "string"},
					"progress": map[string]any{"type": "string"}, "next": map[string]any{"type": "string"}}},
			"action": map[string]any{"type": "string", "enum": []string{"tool", "final"}},
			"tool":   toolSchema,
			"args":   map[string]any{"type": "object"},
			"answer": map[string]any{"type": "string"},
		},
	}
	b, _ := json.Marshal(schema)
	return b
}

func scratchpadSystem(tools []Tool) string {
	var b strings.Builder
	b.WriteString("You answer the user's request by working step by step. Every reply is one JSON object with your " +
		"scratchpad (plan: the steps you intend; progress: what you have learned so far; next: what you do now) and " +
		`one action: {"action":"tool","tool":NAME,"args":{...}} to call a tool, or {"action":"final","answer":TEXT} ` +
		"when you can answer. Use only tool results for facts. Tools:\n")
	for _, t := range tools {
		fmt.Fprintf(&b, "- %s: %s Arguments schema: %s\n", t.Name(), t.Description(), string(t.Schema()))
	}
	return b.String()
}

// scratchpad runs the loop for x's run. Each tool action is a step row
// (sp1, sp2, ...) holding the model's reply as its spec, written before the
// tool runs, so a resumed run replays the transcript instead of acting
// twice.
func (x *runExec) scratchpad(ctx context.Context) error {
	e := x.e
	if err := x.setStatus(run.Running, ""); err != nil {
		return err
	}
	x.mu.Lock()
	x.r.Route = ModeScratchpad
	x.mu.Unlock()
	model := e.d.Models.Model(RoleScratchpad)
	names := slices.Clone(e.d.Tools.Names())
	slices.Sort(names)
	var tools []Tool
	for _, n := range names {
		if t, ok := e.d.Tools.Lookup(n); ok {
			tools = append(tools, t)
		}
	}
	format := scratchpadFormat(names)
	msgs := []Message{{Role: "system", Content: scratchpadSystem(tools)}, {Role: "user", Content: x.r.Request}}

	version, _, err := e.d.Store.LatestPlan(ctx, x.r.ID)
	if err != nil {
		return err
	}
	if version == 0 {
		x.plan = &plan.Plan{Goal: x.r.Request}
		raw, _ := json.Marshal(x.plan)
		if err := e.d.Store.SavePlan(x.dbctx(), x.r.ID, 1, ModeScratchpad, model, raw, 1, nil, nil); err != nil {
			return err
		}
		x.version = 1
	} else {
		x.plan, x.version = &plan.Plan{Goal: x.r.Request}, version
		if msgs, err = x.replayScratchpad(ctx, msgs); err != nil {
			return err
		}
	}

	turn := len(x.order)
	final := ""
	numPredict, regen := e.cfg.NumPredict, 0
	if numPredict <= 0 {
		schemas := []json.RawMessage{format}
		for _, t := range tools {
			schemas = append(schemas, t.Schema())
		}
		numPredict = outputBound(schemas...)
	}
	for turn < e.cfg.Executor.ScratchpadTurns && x.stopped == "" && ctx.Err() == nil {
		turn++
		resp, err := x.chat(ctx, ChatRequest{Model: model, Messages: msgs, Format: format, NumPredict: numPredict,
			Regeneration: regen, RunID: x.r.ID, Purpose: "scratchpad", Tier: plan.TierFast})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			x.addError()
			if e.d.IsBadOutput(err) && !x.errorsExceeded() {
				// Cut or broken off: the turn again, with room and other
				// sampling; it counts as an error against max_errors.
				regen++
				numPredict = moreRoom(numPredict)
				turn--
				continue
			}
			if e.d.IsTransient(err) && !x.errorsExceeded() {
				turn--
				if !sleepCtx(ctx, x.backoff(1)) {
					break
				}
				continue
			}
			x.stopped = "scratchpad model failed: " + err.Error()
			break
		}
		var reply scratchpadReply
		perr := json.Unmarshal([]byte(strings.TrimSpace(resp.Content)), &reply)
		if perr == nil {
			perr = e.val.validateJSON(format, []byte(resp.Content))
		}
		if perr == nil && reply.Action == "tool" {
			if _, ok := e.d.Tools.Lookup(reply.Tool); !ok {
				perr = fmt.Errorf(`action "tool" needs "tool" set to one of: %s`, strings.Join(names, ", "))
			}
		}
		msgs = append(msgs, Message{Role: "assistant", Content: resp.Content})
		if perr != nil {
			x.addError()
			msgs = append(msgs, Message{Role: "user", Content: "Your reply was rejected: " + oneLine(perr.Error()) +
				". Reply with one JSON object as described."})
			x.checkGuardrail()
			continue
		}
		if reply.Action == "final" {
			final = strings.TrimSpace(reply.Answer)
			if final != "" {
				break
			}
			x.addError()
			msgs = append(msgs, Message{Role: "user", Content: "The final answer is empty. Give the answer."})
			x.checkGuardrail()
			continue
		}
		result := x.scratchpadAct(ctx, turn, resp.Content, reply)
		msgs = append(msgs, Message{Role: "user", Content: result})
		msgs = trimMessages(msgs, e.promptChars(model))
		x.checkGuardrail()
	}
	if cerr := x.canceled(ctx); cerr != nil {
		if x.shuttingDown() {
			return nil
		}
		if _, ok := cerr.(*canceledBy); ok {
			return x.finishCanceled(cerr)
		}
		x.stopped = cerr.Error()
	}
	status := run.Done
	if final == "" {
		if x.stopped == "" {
			x.stopped = fmt.Sprintf("no final answer within %d scratchpad turns", e.cfg.Executor.ScratchpadTurns)
		}
		status = run.Partial
		final = x.synthesize(x.dbctx())
	}
	for _, id := range x.order {
		if x.steps[id].Status == run.StepReview {
			status = run.Review
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.r.Answer = final
	return x.setStatusLocked(status, x.stopped)
}

func (x *runExec) checkGuardrail() {
	if x.stopped == "" && x.errorsExceeded() {
		x.stopped = fmt.Sprintf("max_errors %d reached", x.e.cfg.Executor.MaxErrors)
	}
}

// scratchpadAct runs one tool action and returns the message that reports
// its result (or error) to the model.
func (x *runExec) scratchpadAct(ctx context.Context, turn int, raw string, reply scratchpadReply) string {
	id := scratchpadStepPrefix + strconv.Itoa(turn)
	spec := plan.Step{ID: id, Tool: reply.Tool, Args: reply.Args}
	specJSON, _ := json.Marshal(map[string]any{"step": spec, "reply": json.RawMessage(raw)})
	st := &run.Step{RunID: x.r.ID, StepID: id, PlanVersion: x.version, Kind: plan.KindTool, Tool: reply.Tool,
		Spec: specJSON, Status: run.StepPending, Idempotent: true}
	st.Args, _ = json.Marshal(reply.Args)
	tool, ok := x.e.d.Tools.Lookup(reply.Tool)
	if ok {
		st.Idempotent = tool.Idempotent()
	}
	x.steps[id], x.specs[id] = st, spec
	x.order = append(x.order, id)
	x.setStep(st, run.StepPending, "")
	out, err := x.scratchpadCall(ctx, st, spec, tool, ok)
	if err != nil {
		x.addError()
		return fmt.Sprintf("Tool %s failed: %v", reply.Tool, err)
	}
	return fmt.Sprintf("Result of %s (%s):\n%s", reply.Tool, id, out)
}

func (x *runExec) scratchpadCall(ctx context.Context, st *run.Step, spec plan.Step, tool Tool, known bool) (string, error) {
	fail := func(err error) (string, error) {
		if ctx.Err() != nil && !x.shuttingDown() {
			x.canceledStep(st)
			return "", err
		}
		if !x.shuttingDown() {
			x.setStep(st, run.StepFailed, err.Error())
		}
		return "", err
	}
	if !known {
		return fail(fmt.Errorf("unknown tool %q", spec.Tool))
	}
	if err := x.e.val.validateArgs(tool.Schema(), spec.Args); err != nil {
		return fail(fmt.Errorf("arguments do not match the schema: %v", err))
	}
	if ok, _, msg := x.gate(ctx, st, spec, spec.Args, ""); !ok {
		return fail(fmt.Errorf("%s", msg))
	}
	x.setStep(st, run.StepRunning, "")
	st.Attempts++
	out, err := x.callTool(ctx, st, tool, spec.Args)
	if err != nil {
		return fail(err)
	}
	st.Output = out
	x.setStep(st, run.StepDone, "")
	return out, nil
}

// replayScratchpad rebuilds the transcript of a resumed scratchpad run
// from its step rows, settling the step a crash interrupted by the same
// rules as plan steps.
func (x *runExec) replayScratchpad(ctx context.Context, msgs []Message) ([]Message, error) {
	steps, err := x.e.d.Store.RunSteps(ctx, x.r.ID)
	if err != nil {
		return nil, err
	}
	for _, st := range steps {
		var rec struct {
			Step  plan.Step       `json:"step"`
			Reply json.RawMessage `json:"reply"`
		}
		if err := json.Unmarshal(st.Spec, &rec); err != nil {
			return nil, fmt.Errorf("stored scratchpad step %s: %w", st.StepID, err)
		}
		x.steps[st.StepID], x.specs[st.StepID] = st, rec.Step
		x.order = append(x.order, st.StepID)
		if st.Status == run.StepRunning || st.Status == run.StepWaitingApproval || st.Status == run.StepPending {
			if err := x.recoverSteps(ctx); err != nil {
				return nil, err
			}
			if st.Status == run.StepPending {
				tool, ok := x.e.d.Tools.Lookup(rec.Step.Tool)
				_, _ = x.scratchpadCall(ctx, st, rec.Step, tool, ok)
			}
		}
		msgs = append(msgs, Message{Role: "assistant", Content: string(rec.Reply)})
		switch st.Status {
		case run.StepDone:
			x.seqDone[st.StepID] = len(x.seqDone)
			msgs = append(msgs, Message{Role: "user", Content: fmt.Sprintf("Result of %s (%s):\n%s", st.Tool, st.StepID, st.Output)})
		default:
			msgs = append(msgs, Message{Role: "user", Content: fmt.Sprintf("Tool %s failed: %s", st.Tool, st.Error)})
		}
	}
	return trimMessages(msgs, x.e.promptChars(x.e.d.Models.Model(RoleScratchpad))), nil
}

// trimMessages cuts the oldest long messages (after the system prompt and
// the request) until the conversation fits budget characters.
func trimMessages(msgs []Message, budget int) []Message {
	if budget <= 0 {
		return msgs
	}
	total := 0
	for _, m := range msgs {
		total += len(m.Content)
	}
	for i := 2; i < len(msgs) && total > budget; i++ {
		m := &msgs[i]
		if len(m.Content) < 64 {
			continue
		}
		keep := len(m.Content) - (total - budget)
		if keep < 32 {
			keep = 32
		}
		before := len(m.Content)
		m.Content = capText(m.Content, keep)
		total -= before - len(m.Content)
	}
	return msgs
}

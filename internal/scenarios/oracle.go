package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
	"github.com/ollama/ollama/api"
)

// The oracle plays a perfect model for clients that are not agentd — other
// agent frameworks run against the simulator — knowing nothing of their
// prompts. It reads only what every framework sends: the user's request,
// the tools offered, the tool results already in the conversation, and a
// structured-output schema. So what differs between frameworks run on it
// is their structure (how many calls, how many tokens each, what runs in
// parallel), never the quality of the model's answers.
//
// What it answers, first match wins:
//
//   - a structured-output request (`format`, or /v1 `response_format`) for
//     a scenario: the schema filled with the plan — one string per step of
//     the scenario's plan, each naming its tool call with concrete
//     arguments — or, once every step reports done, with the answer in the
//     schema's response/answer field (a replanner's "Act" union picks its
//     branch the same way); after a failed step, the scenario's replan;
//   - a request whose last user message holds one of those step strings
//     (an executor sub-agent): the step's tool calls, then the step's
//     result, tagged "[done: step]" or "[failed: step]" so a replanner can
//     tell progress the way a model reads a transcript;
//   - tools offered for a scenario's request (a tool-calling agent): the
//     next needed calls — every call whose dependencies have results, at
//     once, as a parallel-capable model does — then the scenario's answer;
//   - the request with nothing else: the scenario's answer.
//
// agentd's own prompts are answered by Script, which SimScript tries first.

// StepDoneTag and StepFailedTag mark an executor's report of a plan step.
const (
	StepDoneTag   = "[done: "
	StepFailedTag = "[failed: "
)

// Oracle returns the scenario oracle alone; requests it does not recognise
// fall through to the simulator's default output.
func Oracle() ollamasim.Script { return newOracle(All()) }

// OracleWith is Oracle with options.
func OracleWith(o OracleOptions) ollamasim.Script {
	or := newOracle(All())
	or.oneCall = o.OneCallPerTurn
	return or
}

// SimScriptWith is SimScript with the oracle's options.
func SimScriptWith(o OracleOptions) ollamasim.Script { return firstOf{Script(), OracleWith(o)} }

// SimScript is agentd's Script first, then the oracle: one simulator serves
// agentd and other frameworks alike.
func SimScript() ollamasim.Script { return firstOf{Script(), Oracle()} }

type firstOf []ollamasim.Script

func (f firstOf) Respond(req *api.ChatRequest) (ollamasim.Reply, bool) {
	for _, s := range f {
		if r, ok := s.Respond(req); ok {
			return r, true
		}
	}
	return ollamasim.Reply{}, false
}

// OracleCall is one tool call the oracle's model makes.
type OracleCall struct {
	Tool  string
	Args  map[string]any
	Level int // dependency wave, from 1: calls of one wave go out together
}

// OracleStep is one plan step as the oracle's planner writes it.
type OracleStep struct {
	ID     string
	Text   string       // what the plan says, naming the calls
	Calls  []OracleCall // tool calls the executor makes for it
	Answer string       // a task step's result (empty for a tool step)
}

type oracleScenario struct {
	sc     Scenario
	calls  []OracleCall // what a tool-calling agent needs, in order
	plan   []OracleStep
	replan []OracleStep // nil: no replan
}

type oracle struct {
	all     []oracleScenario
	oneCall bool
}

// OracleOptions choose how the oracle plays a tool-calling model.
type OracleOptions struct {
	// OneCallPerTurn makes a tool-calling agent's model ask for one call a
	// turn, as classic ReAct prompting does and most small models behave,
	// instead of every call whose inputs are ready at once (a model with
	// parallel function calling at its best).
	OneCallPerTurn bool
}

var _ ollamasim.Script = (*oracle)(nil)

func newOracle(all []Scenario) *oracle {
	o := &oracle{}
	for _, sc := range all {
		o.all = append(o.all, compileOracle(sc))
	}
	return o
}

// OracleCalls is what the oracle's tool-calling agent does for a scenario:
// each call with its wave.
func OracleCalls(sc Scenario) []OracleCall { return compileOracle(sc).calls }

// OraclePlan is the plan the oracle's planner writes for a scenario, and
// its replan after the failing step (nil when none).
func OraclePlan(sc Scenario) (first, replan []OracleStep) {
	c := compileOracle(sc)
	return c.plan, c.replan
}

var refRe = regexp.MustCompile(`\$\{([a-z_][a-z0-9_]*)[^}]*\}`)

func compileOracle(sc Scenario) oracleScenario {
	out := oracleScenario{sc: sc}
	first, err := sc.PlanFor()
	if err != nil {
		return out
	}
	// Waves: a tool step runs one wave after the latest of its
	// dependencies; a task step's reasoning is in the model's head, its
	// own tool calls one wave after its dependencies.
	level := map[string]int{}
	var walk func(p *plan.Plan, base int)
	walk = func(p *plan.Plan, base int) {
		for range p.Steps { // plans are small: relax until stable
			for _, st := range p.Steps {
				l := base
				for _, d := range st.DependsOn {
					l = max(l, level[d])
				}
				if st.Tool != "" {
					l++
				}
				level[st.ID] = l
			}
		}
	}
	walk(first, 0)
	maxFirst := 0
	for _, l := range level {
		maxFirst = max(maxFirst, l)
	}
	var replan *plan.Plan
	if sc.Replan != nil && len(sc.Replan.Steps) > 0 {
		replan = sc.Replan
		walk(replan, maxFirst)
	}
	toolLevel := func(tool string) int {
		for _, p := range []*plan.Plan{first, replan} {
			if p == nil {
				continue
			}
			for _, st := range p.Steps {
				if st.Tool == tool {
					return level[st.ID]
				}
				if t, ok := sc.Tasks[st.ID]; ok && slices.ContainsFunc(t.ToolCalls, func(c ToolCall) bool { return c.Name == tool }) {
					return level[st.ID] + 1
				}
			}
		}
		return 1
	}
	for _, a := range sc.React {
		out.calls = append(out.calls, OracleCall{Tool: a.Tool, Args: a.Args, Level: toolLevel(a.Tool)})
	}
	used := map[int]bool{}
	concrete := func(st plan.Step) map[string]any {
		if !strings.Contains(mustJSON(st.Args), "${") {
			return st.Args
		}
		for i, a := range sc.React {
			if a.Tool == st.Tool && !used[i] {
				used[i] = true
				return a.Args
			}
		}
		return st.Args
	}
	steps := func(p *plan.Plan) []OracleStep {
		var out []OracleStep
		for _, st := range p.Steps {
			os := OracleStep{ID: st.ID}
			switch {
			case st.Tool != "":
				args := concrete(st)
				os.Calls = []OracleCall{{Tool: st.Tool, Args: args, Level: level[st.ID]}}
				os.Text = fmt.Sprintf("Step %s: call %s with %s.", st.ID, st.Tool, mustJSON(args))
			default:
				t := sc.Tasks[st.ID]
				for _, c := range t.ToolCalls {
					os.Calls = append(os.Calls, OracleCall{Tool: c.Name, Args: c.Args, Level: level[st.ID] + 1})
				}
				os.Answer = t.Answer
				task := refRe.ReplaceAllString(st.Task, "the result of step $1")
				os.Text = fmt.Sprintf("Step %s: %s", st.ID, task)
				for _, c := range os.Calls {
					os.Text += fmt.Sprintf(" (call %s with %s)", c.Tool, mustJSON(c.Args))
				}
			}
			out = append(out, os)
		}
		return out
	}
	out.plan = steps(first)
	if replan != nil {
		// The replan keeps the first plan's steps it does not redo.
		if final, err := sc.FinalPlan(); err == nil {
			out.replan = steps(final)
		}
	}
	return out
}

func (o *oracle) Respond(req *api.ChatRequest) (ollamasim.Reply, bool) {
	var users []string
	for _, m := range req.Messages {
		if m.Role == "user" || m.Role == "system" {
			users = append(users, m.Content)
		}
	}
	last := ""
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			last = req.Messages[i].Content
			break
		}
	}
	sc, found := o.byRequest(users)
	if found && hasSchema(req.Format) {
		return ollamasim.Reply{Content: o.structured(sc, req)}, true
	}
	if sc, st, ok := o.stepIn(last); ok {
		return o.execute(sc, st, req), true
	}
	if !found {
		return ollamasim.Reply{}, false
	}
	if len(req.Tools) > 0 {
		return o.agentTurn(sc, req), true
	}
	return ollamasim.Reply{Content: sc.sc.Answer}, true
}

func (o *oracle) byRequest(texts []string) (oracleScenario, bool) {
	for _, t := range texts {
		for _, sc := range o.all {
			if strings.Contains(t, sc.sc.Request) {
				return sc, true
			}
		}
	}
	return oracleScenario{}, false
}

// stepIn finds the plan step an executor is asked to do: of the step
// strings in the text, the one that occurs last (a prompt may list the
// whole plan before naming the step to do).
func (o *oracle) stepIn(text string) (oracleScenario, OracleStep, bool) {
	best, bestAt := -1, -1
	var bsc oracleScenario
	var bst OracleStep
	for _, sc := range o.all {
		for _, st := range slices.Concat(sc.plan, sc.replan) {
			if at := strings.LastIndex(text, st.Text); at >= 0 && at > bestAt {
				best, bestAt, bsc, bst = 1, at, sc, st
			}
		}
	}
	return bsc, bst, best > 0
}

// execute is an executor sub-agent on one step: its calls, then its result.
func (o *oracle) execute(sc oracleScenario, st OracleStep, req *api.ChatRequest) ollamasim.Reply {
	results := toolResults(req.Messages)
	var pending []ollamasim.ToolCallReply
	var outs []string
	failed := false
	for _, c := range st.Calls {
		r, ok := results.take(c)
		if !ok {
			if offered(req, c.Tool) {
				pending = append(pending, ollamasim.ToolCallReply{Name: c.Tool, Arguments: c.Args})
			}
			continue
		}
		outs = append(outs, r)
		failed = failed || isFailure(r)
	}
	if len(pending) > 0 {
		return ollamasim.Reply{ToolCalls: pending}
	}
	switch {
	case failed:
		return ollamasim.Reply{Content: fmt.Sprintf("The step could not be done: %s %s%s]", strings.Join(outs, " "), StepFailedTag, st.ID)}
	case st.Answer != "":
		return ollamasim.Reply{Content: fmt.Sprintf("%s %s%s]", st.Answer, StepDoneTag, st.ID)}
	}
	return ollamasim.Reply{Content: fmt.Sprintf("%s %s%s]", strings.Join(outs, " "), StepDoneTag, st.ID)}
}

// agentTurn is a tool-calling agent's next move: every needed call of the
// earliest wave not yet done, or the answer.
func (o *oracle) agentTurn(sc oracleScenario, req *api.ChatRequest) ollamasim.Reply {
	results := toolResults(req.Messages)
	wave := 0
	var next []ollamasim.ToolCallReply
	for _, c := range sc.calls {
		if _, ok := results.take(c); ok || !offered(req, c.Tool) {
			continue
		}
		if wave == 0 || c.Level < wave {
			wave, next = c.Level, nil
		}
		if c.Level == wave {
			next = append(next, ollamasim.ToolCallReply{Name: c.Tool, Arguments: c.Args})
		}
	}
	if o.oneCall && len(next) > 1 {
		next = next[:1]
	}
	if len(next) > 0 {
		return ollamasim.Reply{ToolCalls: next}
	}
	return ollamasim.Reply{Content: sc.sc.Answer}
}

// structured fills a planner's or replanner's schema: the steps still to
// do, or the answer when none are left.
func (o *oracle) structured(sc oracleScenario, req *api.ChatRequest) string {
	var all strings.Builder
	for _, m := range req.Messages {
		all.WriteString(m.Content)
		all.WriteByte('\n')
	}
	text := all.String()
	steps := sc.plan
	for _, st := range sc.plan {
		if strings.Contains(text, StepFailedTag+st.ID+"]") && sc.replan != nil {
			steps = sc.replan
		}
	}
	var remaining []string
	for _, st := range steps {
		if !strings.Contains(text, StepDoneTag+st.ID+"]") {
			remaining = append(remaining, st.Text)
		}
	}
	var schema map[string]any
	if json.Unmarshal(req.Format, &schema) != nil {
		schema = nil // "json": no schema to follow
	}
	f := filler{steps: remaining, answer: sc.sc.Answer, done: len(remaining) == 0}
	if schema == nil {
		if f.done {
			return mustJSON(map[string]any{"response": f.answer})
		}
		return mustJSON(map[string]any{"steps": f.steps})
	}
	return mustJSON(f.fill(schema, schema, ""))
}

// filler writes a schema instance: arrays named like a plan get the steps,
// strings named like an answer get the answer, a union takes the branch
// that fits (a plan while steps remain, else an answer).
type filler struct {
	steps  []string
	answer string
	done   bool
}

var (
	stepNames   = []string{"steps", "plan", "tasks", "subtasks"}
	answerNames = []string{"response", "answer", "final_answer", "result", "output"}
)

func (f filler) fill(root, s map[string]any, name string) any {
	if ref, ok := s["$ref"].(string); ok {
		if sub := resolveRef(root, ref); sub != nil {
			return f.fill(root, sub, name)
		}
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if branches, ok := s[k].([]any); ok && len(branches) > 0 {
			pick := branches[0]
			for _, b := range branches {
				bm, _ := b.(map[string]any)
				if bm != nil && f.fits(root, bm) {
					pick = b
					break
				}
			}
			bm, _ := pick.(map[string]any)
			return f.fill(root, bm, name)
		}
	}
	typ, _ := s["type"].(string)
	if ts, ok := s["type"].([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	if typ == "" {
		if _, ok := s["properties"]; ok {
			typ = "object"
		}
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		required := map[string]bool{}
		if rs, ok := s["required"].([]any); ok {
			for _, r := range rs {
				if n, ok := r.(string); ok {
					required[n] = true
				}
			}
		}
		for k, v := range props {
			vm, _ := v.(map[string]any)
			isSteps, isAnswer := slices.Contains(stepNames, k), slices.Contains(answerNames, k)
			switch {
			case isSteps && !f.done, isAnswer && f.done, required[k]:
				out[k] = f.fill(root, vm, k)
			case !isSteps && !isAnswer && hasNamed(root, vm):
				out[k] = f.fill(root, vm, k) // a wrapper such as {"action": ...}
			}
		}
		return out
	case "array":
		if slices.Contains(stepNames, name) {
			return f.steps
		}
		return []any{}
	case "string":
		if slices.Contains(answerNames, name) {
			return f.answer
		}
		return ""
	case "number", "integer":
		return 0
	case "boolean":
		return false
	}
	return nil
}

// fits reports whether a union branch holds what is to be written now.
func (f filler) fits(root, s map[string]any) bool {
	if ref, ok := s["$ref"].(string); ok {
		s = resolveRef(root, ref)
	}
	props, _ := s["properties"].(map[string]any)
	for k := range props {
		if f.done && slices.Contains(answerNames, k) || !f.done && slices.Contains(stepNames, k) {
			return true
		}
	}
	return false
}

// hasNamed reports whether a subschema holds a steps or answer field.
func hasNamed(root, s map[string]any) bool {
	b, _ := json.Marshal(s)
	text := string(b)
	if ref, ok := s["$ref"].(string); ok {
		b, _ := json.Marshal(resolveRef(root, ref))
		text = string(b)
	}
	for _, n := range slices.Concat(stepNames, answerNames) {
		if strings.Contains(text, `"`+n+`"`) {
			return true
		}
	}
	return false
}

func resolveRef(root map[string]any, ref string) map[string]any {
	cur := any(root)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	m, _ := cur.(map[string]any)
	return m
}

func hasSchema(f json.RawMessage) bool {
	s := strings.TrimSpace(string(f))
	return s != "" && s != "null" && s != `""`
}

func offered(req *api.ChatRequest, name string) bool {
	return slices.ContainsFunc(req.Tools, func(t api.Tool) bool { return t.Function.Name == name })
}

// isFailure reports whether a tool result says the call failed (the tool
// server's {"error": ...}).
func isFailure(result string) bool {
	var v struct {
		Error string `json:"error"`
	}
	return json.Unmarshal([]byte(result), &v) == nil && v.Error != "" || strings.HasPrefix(strings.TrimSpace(result), "Error")
}

// resultSet holds the tool calls of a conversation that have results,
// keyed by tool and canonical arguments; take consumes one.
type resultSet map[string][]string

func callKey(tool string, args map[string]any) string { return tool + " " + canonicalJSON(args) }

func canonicalJSON(v any) string {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	return mustJSON(x)
}

// toolResults pairs each assistant tool call with the tool message that
// answers it: by tool_call id or tool name where the client sends them,
// else in order.
func toolResults(msgs []api.Message) resultSet {
	type call struct {
		key, id, name string
		done          bool
	}
	var calls []*call
	rs := resultSet{}
	for _, m := range msgs {
		switch m.Role {
		case "assistant":
			for _, tc := range m.ToolCalls {
				calls = append(calls, &call{key: callKey(tc.Function.Name, tc.Function.Arguments.ToMap()), id: tc.ID, name: tc.Function.Name})
			}
		case "tool":
			var c *call
			for _, x := range calls {
				if !x.done && (m.ToolCallID != "" && x.id == m.ToolCallID) {
					c = x
					break
				}
			}
			for _, x := range calls {
				if c == nil && !x.done && (m.ToolName == "" || x.name == m.ToolName) {
					c = x
				}
			}
			if c != nil {
				c.done = true
				rs[c.key] = append(rs[c.key], m.Content)
			}
		}
	}
	return rs
}

func (rs resultSet) take(c OracleCall) (string, bool) {
	k := callKey(c.Tool, c.Args)
	if len(rs[k]) == 0 {
		return "", false
	}
	r := rs[k][0]
	rs[k] = rs[k][1:]
	return r, true
}

// --- the fixture tools over HTTP ---------------------------------------------

// ToolInfo is a tool as GET /tools lists it: what a framework needs to
// declare the same tool (OpenAI function shape).
type ToolInfo struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ToolServer serves the tools the scenarios use — the fixture tools and
// the built-ins they call (calc) — to clients in any language:
//
//	GET  /tools         → [ToolInfo]
//	POST /tools/{name}  JSON arguments → the tool's JSON output, with the
//	                    fixture's simulated latency; a failing tool answers
//	                    200 {"error": "..."} (a result the model reads), bad
//	                    arguments 400, an unknown tool 404.
type ToolServer struct {
	reg   *tools.Registry
	names []string
}

// NewToolServer builds the tools with the given options (TimeScale as the
// simulator's).
func NewToolServer(o Options) (*ToolServer, error) {
	reg, err := NewRegistry(config.Default().Tools, tools.Deps{}, Tools(o))
	if err != nil {
		return nil, err
	}
	ts := &ToolServer{reg: reg}
	seen := map[string]bool{}
	for _, f := range Tools(o) {
		seen[f.Spec().Name] = true
	}
	for _, sc := range All() {
		for _, a := range sc.React {
			seen[a.Tool] = true
		}
	}
	for n := range seen {
		if _, ok := reg.Get(n); ok {
			ts.names = append(ts.names, n)
		}
	}
	slices.Sort(ts.names)
	return ts, nil
}

// Close releases the tools.
func (ts *ToolServer) Close() error { return ts.reg.Close() }

// List returns the served tools.
func (ts *ToolServer) List() []ToolInfo {
	var out []ToolInfo
	for _, n := range ts.names {
		spec, _ := ts.reg.Spec(n)
		out = append(out, ToolInfo{Name: n, Description: spec.Description, Parameters: spec.ArgsSchema})
	}
	return out
}

// Call runs a tool; a failure the tool reports is an error result, not an
// error.
func (ts *ToolServer) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	if !slices.Contains(ts.names, name) {
		return nil, fmt.Errorf("%w: %s", errUnknownTool, name)
	}
	if err := ts.reg.Validate(name, args); err != nil {
		return nil, fmt.Errorf("%w: %v", tools.ErrInvalidArgs, err)
	}
	t, _ := ts.reg.Get(name)
	res, err := t.Call(ctx, args)
	if err != nil {
		if errors.Is(err, tools.ErrInvalidArgs) || ctx.Err() != nil {
			return nil, err
		}
		return json.RawMessage(mustJSON(map[string]string{"error": err.Error()})), nil
	}
	return res.Output, nil
}

var errUnknownTool = errors.New("unknown tool")

// ServeHTTP implements the routes above.
func (ts *ToolServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	name := strings.Trim(strings.TrimPrefix(r.URL.Path, "/tools"), "/")
	switch {
	case name == "" && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(ts.List())
	case name != "" && r.Method == http.MethodPost:
		var args json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil || len(args) == 0 || string(args) == "null" {
			args = json.RawMessage(`{}`)
		}
		out, err := ts.Call(r.Context(), name, args)
		switch {
		case errors.Is(err, errUnknownTool):
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		case err != nil:
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		default:
			_, _ = w.Write(out)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "GET /tools or POST /tools/{name}"})
	}
}

// Handler serves the simulator and the tool server on one address: /tools
// goes to the tools, everything else to the simulator.
func Handler(sim http.Handler, ts *ToolServer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/tools", ts)
	mux.Handle("/tools/", ts)
	mux.Handle("/", sim)
	return mux
}

package localplanner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/plan"
)

// ErrTemplate is wrapped when a workflow template cannot become a valid plan
// for a request: its parameters could not be extracted, or the instantiated
// plan does not validate. The router then plans the request instead.
var ErrTemplate = errors.New("workflow template did not produce a valid plan")

// Workflow modes.
const (
	ModePlan       = "plan"
	ModeScratchpad = "scratchpad"
)

// NoWorkflow is the classifier's answer when no workflow fits.
const NoWorkflow = "none"

var placeholderRe = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Usage is what auxiliary model calls cost.
type Usage struct {
	Calls        int
	PromptTokens int
	OutputTokens int
}

func (u *Usage) add(resp ChatResponse) {
	u.Calls++
	u.PromptTokens += resp.PromptTokens
	u.OutputTokens += resp.OutputTokens
}

// Templates are the known workflows of config: plan templates with
// parameters, recognised by keyword or by the router model, instantiated
// without any planner call.
type Templates struct {
	workflows []*workflow
	model     ChatModel
	modelName string
	catalog   plan.Catalog
	maxSteps  int
	repairs   int
	log       *slog.Logger
}

type workflow struct {
	cfg        config.WorkflowConfig
	keywords   []*regexp.Regexp
	params     *jsonschema.Schema // nil when the workflow takes no parameters
	paramsJSON json.RawMessage
	props      map[string]any
}

// NewTemplates compiles the workflows' keywords and parameter schemas and
// checks that every {{param}} placeholder names a declared parameter. The
// router model (models.Router, else models.Fast) classifies requests and
// extracts parameters.
func NewTemplates(workflows []config.WorkflowConfig, model ChatModel, catalog plan.Catalog, cfg config.PlannerConfig, models config.ModelsConfig, log *slog.Logger) (*Templates, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := models.Router
	if name == "" {
		name = models.Fast
	}
	t := &Templates{model: model, modelName: name, catalog: catalog, maxSteps: cfg.MaxSteps,
		repairs: max(cfg.RepairAttempts, 0), log: log.With("component", "localplanner")}
	for i, wc := range workflows {
		w, err := compileWorkflow(wc)
		if err != nil {
			return nil, fmt.Errorf("workflows[%d] (%s): %w", i, wc.Name, err)
		}
		t.workflows = append(t.workflows, w)
	}
	return t, nil
}

func compileWorkflow(wc config.WorkflowConfig) (*workflow, error) {
	w := &workflow{cfg: wc}
	for _, kw := range wc.Keywords {
		parts := strings.Fields(kw)
		if len(parts) == 0 {
			continue
		}
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`(?i)(?:^|[^\p{L}\p{N}_])` + strings.Join(parts, `\s+`) + `(?:$|[^\p{L}\p{N}_])`)
		if err != nil {
			return nil, fmt.Errorf("keyword %q: %w", kw, err)
		}
		w.keywords = append(w.keywords, re)
	}
	if len(wc.Params) > 0 {
		raw, err := json.Marshal(wc.Params)
		if err != nil {
			return nil, fmt.Errorf("params schema: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
		if err != nil {
			return nil, fmt.Errorf("params schema: %w", err)
		}
		c := jsonschema.NewCompiler()
		url := "mem://workflows/" + wc.Name + "/params.json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("params schema: %w", err)
		}
		if w.params, err = c.Compile(url); err != nil {
			return nil, fmt.Errorf("params schema is not a valid JSON Schema: %w", err)
		}
		w.paramsJSON = raw
		var decoded map[string]any
		_ = json.Unmarshal(raw, &decoded)
		w.props, _ = decoded["properties"].(map[string]any)
	}
	// Every placeholder must name a declared parameter.
	check := func(where, s string) error {
		for _, m := range placeholderRe.FindAllStringSubmatch(s, -1) {
			if _, ok := w.props[m[1]]; !ok {
				return fmt.Errorf("%s uses {{%s}}, which is not a property of the workflow's params schema", where, m[1])
			}
		}
		return nil
	}
	if err := check("answer", wc.Answer); err != nil {
		return nil, err
	}
	if err := check("answer_pattern", wc.AnswerPattern); err != nil {
		return nil, err
	}
	for j, s := range wc.Steps {
		where := fmt.Sprintf("steps[%d]", j)
		if err := check(where+".task", s.Task); err != nil {
			return nil, err
		}
		var firstErr error
		plan.WalkStrings(s.Args, func(str string) {
			if err := check(where+".args", str); err != nil && firstErr == nil {
				firstErr = err
			}
		})
		if firstErr != nil {
			return nil, firstErr
		}
	}
	return w, nil
}

// Len is the number of workflows.
func (t *Templates) Len() int { return len(t.workflows) }

// Workflow returns a workflow's config by name.
func (t *Templates) Workflow(name string) (config.WorkflowConfig, bool) {
	if w := t.find(name); w != nil {
		return w.cfg, true
	}
	return config.WorkflowConfig{}, false
}

func (t *Templates) find(name string) *workflow {
	for _, w := range t.workflows {
		if w.cfg.Name == name {
			return w
		}
	}
	return nil
}

// Match recognises a workflow by its keywords (case-insensitive, whole
// words): the workflow with the most matching keywords wins, the first in
// config on a tie. It returns the workflow's name and the keywords matched.
func (t *Templates) Match(text string) (name string, matched []string, ok bool) {
	best := 0
	for _, w := range t.workflows {
		var hits []string
		for i, re := range w.keywords {
			if re.MatchString(text) {
				hits = append(hits, strings.Join(strings.Fields(w.cfg.Keywords[i]), " "))
			}
		}
		if len(hits) > best {
			best, name, matched = len(hits), w.cfg.Name, hits
		}
	}
	return name, matched, best > 0
}

// classifiable are the workflows the router model may pick: those that can
// run (a template, or scratchpad mode).
func (t *Templates) classifiable() []*workflow {
	var out []*workflow
	for _, w := range t.workflows {
		if len(w.cfg.Steps) > 0 || w.cfg.Mode == ModeScratchpad {
			out = append(out, w)
		}
	}
	return out
}

// Classify asks the router model which workflow, if any, the request is,
// under a JSON Schema enum of workflow names and "none". It returns
// NoWorkflow when none fits or none can be picked.
func (t *Templates) Classify(ctx context.Context, req Request) (string, Usage, error) {
	var u Usage
	cands := t.classifiable()
	if len(cands) == 0 {
		return NoWorkflow, u, nil
	}
	names := make([]any, 0, len(cands)+1)
	var b strings.Builder
	b.WriteString("Decide whether the user's request is one of these known workflows. Reply with one JSON object, {\"workflow\": NAME}, or {\"workflow\": \"none\"} when none of them fits exactly.\n\nWorkflows:\n")
	for _, w := range cands {
		names = append(names, w.cfg.Name)
		fmt.Fprintf(&b, "- %s: %s\n", w.cfg.Name, strings.TrimSpace(w.cfg.Description))
	}
	names = append(names, NoWorkflow)
	format, _ := json.Marshal(obj{
		{"type", "object"},
		{"properties", obj{{"workflow", obj{{"enum", names}}}}},
		{"required", []any{"workflow"}},
		{"additionalProperties", false},
	})
	resp, err := t.model.Chat(ctx, ChatRequest{
		Model: t.modelName, Format: format, NumPredict: 64, Purpose: PurposeClassify, RunID: req.RunID,
		Messages: []Message{{Role: RoleSystem, Content: b.String()}, {Role: RoleUser, Content: req.Text}},
	})
	if err != nil {
		return NoWorkflow, u, fmt.Errorf("classify workflow with %s: %w", t.modelName, err)
	}
	u.add(resp)
	text, err := ExtractJSON(resp.Content)
	var out struct {
		Workflow string `json:"workflow"`
	}
	if err == nil {
		err = json.Unmarshal([]byte(text), &out)
	}
	if err != nil {
		return NoWorkflow, u, fmt.Errorf("classify workflow: reply %q is not {\"workflow\": NAME}: %w", clip(resp.Content, 200), err)
	}
	if out.Workflow == NoWorkflow || t.find(out.Workflow) == nil {
		return NoWorkflow, u, nil
	}
	return out.Workflow, u, nil
}

// Plan instantiates the named workflow for a request: its parameters are
// extracted by the router model under the workflow's params schema (and
// validated, with the problems fed back up to repair_attempts times), then
// substituted into the steps, and the plan is validated like any other. No
// planner call is made.
func (t *Templates) Plan(ctx context.Context, req Request, name string) (*Result, error) {
	w := t.find(name)
	if w == nil {
		return nil, fmt.Errorf("%w: no workflow named %q", ErrTemplate, name)
	}
	res := &Result{Source: SourceTemplate, Workflow: name}
	var params map[string]any
	var u Usage
	var err error
	if len(req.Params) > 0 && w.params != nil {
		params, err = t.checkParams(w, mustJSON(req.Params))
		if err != nil {
			err = fmt.Errorf("the params given do not fit the workflow's params schema: %w", err)
		}
	} else {
		params, u, err = t.extractParams(ctx, req, w)
	}
	res.AuxCalls, res.PromptTokens, res.OutputTokens = u.Calls, u.PromptTokens, u.OutputTokens
	if err != nil {
		return nil, fmt.Errorf("%w: workflow %s: %w", ErrTemplate, name, err)
	}
	pl, err := Instantiate(w.cfg, params, req.Text)
	if err != nil {
		return nil, fmt.Errorf("%w: workflow %s: %w", ErrTemplate, name, err)
	}
	if errs := plan.Validate(pl, t.catalog, t.maxSteps); len(errs) > 0 {
		return nil, fmt.Errorf("%w: workflow %s with params %s: %w", ErrTemplate, name, mustJSON(params), plan.Errors(errs))
	}
	pl.Normalize()
	res.Plan = pl
	return res, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (t *Templates) extractParams(ctx context.Context, req Request, w *workflow) (map[string]any, Usage, error) {
	var u Usage
	if w.params == nil {
		return map[string]any{}, u, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Extract the parameters of the workflow %q (%s) from the user's request. Reply with one JSON object that follows this JSON Schema, taking values from the request only:\n%s",
		w.cfg.Name, strings.TrimSpace(w.cfg.Description), w.paramsJSON)
	base := []Message{{Role: RoleSystem, Content: b.String()}, {Role: RoleUser, Content: req.Text}}
	msgs := base
	var problem error
	for attempt := 0; attempt <= t.repairs; attempt++ {
		resp, err := t.model.Chat(ctx, ChatRequest{
			Model: t.modelName, Messages: msgs, Format: w.paramsJSON, NumPredict: 256, Purpose: PurposeExtract, RunID: req.RunID,
			Regeneration: attempt,
		})
		if err != nil {
			return nil, u, fmt.Errorf("extract parameters with %s: %w", t.modelName, err)
		}
		u.add(resp)
		params, err := t.checkParams(w, resp.Content)
		if err == nil {
			return params, u, nil
		}
		problem = err
		msgs = append(append([]Message(nil), base...),
			Message{Role: RoleAssistant, Content: clip(resp.Content, 2000)},
			Message{Role: RoleUser, Content: "Those parameters are not valid: " + err.Error() + "\nReply with the corrected JSON object."})
	}
	return nil, u, fmt.Errorf("parameters not valid after %d calls: %w", u.Calls, problem)
}

func (t *Templates) checkParams(w *workflow, reply string) (map[string]any, error) {
	text, err := ExtractJSON(reply)
	if err != nil {
		return nil, err
	}
	var params map[string]any
	if err := json.Unmarshal([]byte(text), &params); err != nil || params == nil {
		return nil, fmt.Errorf("the reply is not a JSON object: %v", err)
	}
	// Defaults of the schema fill what the request did not say.
	names := make([]string, 0, len(w.props))
	for n := range w.props {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := params[n]; ok {
			continue
		}
		if ps, ok := w.props[n].(map[string]any); ok {
			if d, ok := ps["default"]; ok {
				params[n] = d
			}
		}
	}
	if err := w.params.Validate(params); err != nil {
		return nil, fmt.Errorf("%s", strings.Join(strings.Fields(err.Error()), " "))
	}
	return params, nil
}

// Instantiate fills a workflow's {{param}} placeholders. A string that is
// exactly one placeholder takes the parameter's value with its JSON type (a
// missing parameter leaves the argument out, for the tool's schema to
// judge); a placeholder inside a longer string becomes text and must have a
// value. ${step} references are left for the executor.
func Instantiate(wc config.WorkflowConfig, params map[string]any, request string) (*plan.Plan, error) {
	p := &plan.Plan{Goal: request, Answer: wc.Answer}
	if p.Answer == "" {
		p.Answer = "Combine the step results into a reply to the request."
	}
	var err error
	if p.Answer, err = fillText(p.Answer, params); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if p.AnswerPattern, err = fillText(wc.AnswerPattern, params); err != nil {
		return nil, fmt.Errorf("answer_pattern: %w", err)
	}
	for j, s := range wc.Steps {
		step := plan.Step{ID: s.ID, Tool: s.Tool, Tier: s.Tier,
			Tools: append([]string(nil), s.Tools...), DependsOn: append([]string(nil), s.DependsOn...)}
		if step.Task, err = fillText(s.Task, params); err != nil {
			return nil, fmt.Errorf("steps[%d] (%s) task: %w", j, s.ID, err)
		}
		if s.Args != nil {
			v, keep, err := fillValue(s.Args, params)
			if err != nil {
				return nil, fmt.Errorf("steps[%d] (%s) args: %w", j, s.ID, err)
			}
			if keep {
				step.Args, _ = v.(map[string]any)
			}
		}
		p.Steps = append(p.Steps, step)
	}
	return p, nil
}

// wholePlaceholder reports whether s is exactly one placeholder.
func wholePlaceholder(s string) (string, bool) {
	m := placeholderRe.FindStringSubmatchIndex(s)
	if m == nil || m[0] != 0 || m[1] != len(s) {
		return "", false
	}
	return s[m[2]:m[3]], true
}

// fillValue substitutes placeholders in v; keep is false when v was a whole
// placeholder for a missing parameter.
func fillValue(v any, params map[string]any) (out any, keep bool, err error) {
	switch v := v.(type) {
	case string:
		if name, ok := wholePlaceholder(v); ok {
			val, found := params[name]
			return val, found, nil
		}
		s, err := fillText(v, params)
		return s, true, err
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			fe, keep, err := fillValue(e, params)
			if err != nil {
				return nil, false, err
			}
			if keep {
				m[k] = fe
			}
		}
		return m, true, nil
	case []any:
		l := make([]any, 0, len(v))
		for _, e := range v {
			fe, keep, err := fillValue(e, params)
			if err != nil {
				return nil, false, err
			}
			if keep {
				l = append(l, fe)
			}
		}
		return l, true, nil
	default:
		return v, true, nil
	}
}

func fillText(s string, params map[string]any) (string, error) {
	var missing []string
	out := placeholderRe.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholderRe.FindStringSubmatch(m)[1]
		v, ok := params[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		if str, ok := v.(string); ok {
			return str
		}
		return mustJSON(v)
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("parameter %s has no value", strings.Join(missing, ", "))
	}
	return out, nil
}

// Related reports whether any workflow shares a content word (name,
// description or keywords, stop words left out) with text. When none does,
// the router skips the classification call: asking the router model to
// match a request to workflows it has nothing in common with costs a model
// call and can only produce a false match.
func (t *Templates) Related(text string) bool {
	return t.related(text, func(*workflow) bool { return true })
}

// RelatedNarrowing reports whether text shares a content word with a
// workflow that narrows what a run may do (sensitive, or planner =
// "local"): the router model might recognise it as that workflow, so such
// a request must go through the router rather than around it (the plan
// cache asks this before it serves a request).
func (t *Templates) RelatedNarrowing(text string) bool {
	return t.related(text, func(w *workflow) bool { return w.cfg.Sensitive || w.cfg.Planner == "local" })
}

func (t *Templates) related(text string, which func(*workflow) bool) bool {
	req := wordSet(text)
	for _, w := range t.workflows {
		if !which(w) {
			continue
		}
		vocab := wordSet(w.cfg.Name + " " + w.cfg.Description + " " + strings.Join(w.cfg.Keywords, " "))
		for word := range req {
			if vocab[word] {
				return true
			}
		}
	}
	return false
}

package localplanner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/plan"
)

// DefaultNumPredict caps planner output when the planner model has no
// num_predict of its own in config.
const DefaultNumPredict = 1024

// maxNumPredict bounds the doubling after truncated replies.
const maxNumPredict = 16384

// ErrNoValidPlan is wrapped by every error the planner returns when it could
// not reach a valid plan: the router then takes the next rung (the remote
// planner, if allowed).
var ErrNoValidPlan = errors.New("local planner produced no valid plan")

// PlanError says why planning failed: the attempts made, the problems met,
// and the model or context error that stopped it, if any.
type PlanError struct {
	Attempts int
	Errors   []string
	Err      error // model or context error; nil when the attempts ran out
	Result   *Result
}

func (e *PlanError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v after %d planner calls: %v", ErrNoValidPlan, e.Attempts, e.Err)
	}
	last := ""
	if n := len(e.Errors); n > 0 {
		last = ": last problem: " + e.Errors[n-1]
	}
	return fmt.Sprintf("%v within %d planner calls%s", ErrNoValidPlan, e.Attempts, last)
}

// Unwrap lets errors.Is find ErrNoValidPlan and the model error.
func (e *PlanError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNoValidPlan, e.Err}
	}
	return []error{ErrNoValidPlan}
}

// Request is a planning request.
type Request struct {
	Text  string
	RunID string
	// Planner is the request's own choice: "local", "remote", or "auto"
	// (or empty) to let the router decide.
	Planner string
	// Sensitive requests never go to the remote planner.
	Sensitive bool
	// Params are a workflow's parameters as the caller gave them: checked
	// against the workflow's params schema and used as they are, with no
	// model call to extract them from the text.
	Params map[string]any
	// OnDraft, when set, receives each planner reply so far while it
	// streams, so independent steps can be prefetched before the plan is
	// finished. A draft is not a plan: it may be repaired or rejected.
	OnDraft func(soFar string)
}

// Result sources.
const (
	SourceLocal    = "local"
	SourceTemplate = "template"
)

// Result is a plan and what it took to get it.
type Result struct {
	Plan     *plan.Plan
	Source   string // SourceLocal or SourceTemplate
	Workflow string // the workflow a template plan came from
	// Attempts counts planner model calls (first try, repairs, retries
	// after truncation); a template plan takes none.
	Attempts int
	// AuxCalls counts other model calls: workflow classification and
	// parameter extraction.
	AuxCalls     int
	PromptTokens int
	OutputTokens int
	// Errors lists the problems met on the way, prefixed by the call that
	// met them; feeding them back is how the plan got repaired.
	Errors []string
	// ToolsShown and ToolsDropped say how the catalog was trimmed to the
	// prompt budget.
	ToolsShown   int
	ToolsDropped int
}

func (r *Result) addUsage(resp ChatResponse) {
	r.PromptTokens += resp.PromptTokens
	r.OutputTokens += resp.OutputTokens
}

// Planner plans requests with the local planner model. It is safe for
// concurrent use.
type Planner struct {
	model      ChatModel
	catalog    Catalog
	cfg        config.PlannerConfig
	modelName  string
	numPredict int
	log        *slog.Logger
	tokens     TokenEstimator // nil: EstimateTokens
}

// Option adjusts a Planner at construction.
type Option func(*Planner)

// WithTokens sizes prompts to planner.prompt_token_budget with est's
// estimate for the planner model instead of EstimateTokens.
func WithTokens(est TokenEstimator) Option { return func(p *Planner) { p.tokens = est } }

// New returns a planner that calls models.Planner through model.
func New(model ChatModel, catalog Catalog, cfg config.PlannerConfig, models config.ModelsConfig, log *slog.Logger, opts ...Option) *Planner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	np := DefaultNumPredict
	if o, ok := models.Options[models.Planner]; ok && o.NumPredict > 0 {
		np = o.NumPredict
	}
	p := &Planner{model: model, catalog: catalog, cfg: cfg, modelName: models.Planner, numPredict: np,
		log: log.With("component", "localplanner")}
	for _, o := range opts {
		o(p)
	}
	return p
}

// promptTokens is the prompt's token estimate for the planner model.
func (p *Planner) promptTokens() func(string) int {
	if p.tokens == nil {
		return nil
	}
	return func(s string) int { return p.tokens.Estimate(p.modelName, s) }
}

// Plan asks the planner model for a plan, validates it, and sends the
// problems back for repair up to repair_attempts times. A reply cut short
// by num_predict is asked again with twice the limit. When no valid plan is
// reached the error wraps ErrNoValidPlan (as a *PlanError).
func (p *Planner) Plan(ctx context.Context, req Request) (*Result, error) {
	prompt := BuildPrompt(PromptInput{
		Request: req.Text, Tools: p.catalog.List(), Examples: p.cfg.Examples,
		MaxSteps: p.cfg.MaxSteps, TokenBudget: p.cfg.PromptTokenBudget, Tokens: p.promptTokens(),
	})
	check := func(pl *plan.Plan) []plan.Error { return plan.Validate(pl, p.catalog, p.cfg.MaxSteps) }
	return p.converse(ctx, req, prompt, PurposePlan, check)
}

// Replan asks for a plan of the remaining work only, after step failed with
// cause. completed maps the ids of steps that already ran to their results;
// the new plan may use them as references but may not repeat them.
func (p *Planner) Replan(ctx context.Context, req Request, prior *plan.Plan, completed map[string]json.RawMessage, failed plan.Step, cause error) (*Result, error) {
	prompt := BuildPrompt(PromptInput{
		Request: req.Text, Tools: p.catalog.List(), Examples: p.cfg.Examples,
		MaxSteps: p.cfg.MaxSteps, TokenBudget: p.cfg.PromptTokenBudget, Tokens: p.promptTokens(),
	})
	prompt.Messages[len(prompt.Messages)-1].Content = replanMessage(req.Text, prior, completed, failed, cause)
	ids := make([]string, 0, len(completed))
	for id := range completed {
		ids = append(ids, id)
	}
	check := func(pl *plan.Plan) []plan.Error {
		return plan.ValidateRemaining(pl, p.catalog, p.cfg.MaxSteps, ids)
	}
	res, err := p.converse(ctx, req, prompt, PurposeReplan, check)
	if err != nil {
		return nil, err
	}
	// Completed steps are not part of the new plan: a dependency on one is
	// already met, and dropping it keeps the plan's graph self-contained
	// for the executor. Their results stay available to references.
	for i, s := range res.Plan.Steps {
		var deps []string
		for _, d := range s.DependsOn {
			if _, done := completed[d]; !done {
				deps = append(deps, d)
			}
		}
		res.Plan.Steps[i].DependsOn = deps
	}
	return res, nil
}

// maxResultChars bounds each completed result shown to the replanner.
const maxResultChars = 400

func replanMessage(request string, prior *plan.Plan, completed map[string]json.RawMessage, failed plan.Step, cause error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Request: %s\n\n", request)
	ids := make([]string, 0, len(completed))
	for id := range completed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		b.WriteString("These steps already ran; use their results with ${id} or ${id.field} and do not repeat them or reuse their ids:\n")
		for _, id := range ids {
			what := ""
			if prior != nil {
				if s, ok := prior.Step(id); ok {
					what = describeStep(s) + " "
				}
			}
			res := string(completed[id])
			if len(res) > maxResultChars {
				res = res[:maxResultChars] + "...(truncated)"
			}
			fmt.Fprintf(&b, "- %s %s-> %s\n", id, what, res)
		}
		b.WriteString("\n")
	}
	causeText := "it failed"
	if cause != nil {
		causeText = cause.Error()
	}
	fmt.Fprintf(&b, "This step failed: %s %s\nError: %s\n\n", failed.ID, describeStep(failed), causeText)
	b.WriteString("Plan only the remaining work, in a way that avoids this failure.")
	return b.String()
}

func describeStep(s plan.Step) string {
	if s.Tool != "" {
		args, _ := json.Marshal(s.Args)
		return fmt.Sprintf("(tool %s, args %s)", s.Tool, args)
	}
	return fmt.Sprintf("(task %q)", s.Task)
}

// converse runs the call, check, repair loop.
func (p *Planner) converse(ctx context.Context, req Request, prompt Prompt, purpose string, check func(*plan.Plan) []plan.Error) (*Result, error) {
	if p.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.cfg.Timeout.D(), fmt.Errorf(
			"planning took longer than planner.timeout (%s) — raise planner.timeout, lower the planner model's num_predict, or use a faster planner model", p.cfg.Timeout.D()))
		defer cancel()
	}
	format, err := PlanSchema(prompt.Tools, p.cfg.MaxSteps)
	if err != nil {
		return nil, &PlanError{Err: err}
	}
	res := &Result{Source: SourceLocal, ToolsShown: len(prompt.Tools), ToolsDropped: prompt.Dropped}
	maxCalls := 1 + max(p.cfg.RepairAttempts, 0)
	numPredict := p.numPredict
	regen := 0
	msgs := prompt.Messages
	call := purpose
	log := p.log.With("run", req.RunID, "purpose", purpose)
	for res.Attempts < maxCalls {
		if err := ctx.Err(); err != nil {
			return nil, &PlanError{Attempts: res.Attempts, Errors: res.Errors, Err: err, Result: res}
		}
		resp, err := p.model.Chat(ctx, ChatRequest{
			Model: p.modelName, Messages: msgs, Format: format, NumPredict: numPredict, Purpose: call, RunID: req.RunID,
			OnDelta: req.OnDraft, Regeneration: regen,
		})
		res.Attempts++
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(cause, context.DeadlineExceeded) {
				// Our own timeout, not the caller's: say which limit.
				err = fmt.Errorf("%w (%w)", cause, err)
			}
			return nil, &PlanError{Attempts: res.Attempts, Errors: res.Errors, Err: fmt.Errorf("planner model %s: %w", p.modelName, err), Result: res}
		}
		res.addUsage(resp)
		if resp.DoneReason == DoneAborted {
			// The same prompt at the same sampling breaks off the same
			// way: ask again with other sampling.
			regen++
			res.Errors = append(res.Errors, fmt.Sprintf("call %d: the reply broke off before it was finished (the model repeated itself until Ollama stopped it)%s", res.Attempts,
				then(res.Attempts < maxCalls, "; asking again with other sampling")))
			log.Info("planner reply broke off", "call", res.Attempts)
			continue
		}
		if resp.DoneReason == DoneLength {
			next := min(numPredict*2, maxNumPredict)
			res.Errors = append(res.Errors, fmt.Sprintf("call %d: reply cut short at %d output tokens%s", res.Attempts, numPredict,
				then(res.Attempts < maxCalls, fmt.Sprintf("; asking again with %d", next))))
			log.Info("planner reply truncated", "num_predict", numPredict, "next", next)
			numPredict = next
			continue
		}
		pl, problems := parseAndCheck(resp.Content, check)
		if len(problems) == 0 {
			pl.Normalize()
			res.Plan = pl
			log.Info("plan ready", "calls", res.Attempts, "steps", len(pl.Steps))
			return res, nil
		}
		for _, pr := range problems {
			res.Errors = append(res.Errors, fmt.Sprintf("call %d: %s", res.Attempts, pr))
		}
		log.Info("plan rejected", "call", res.Attempts, "problems", len(problems))
		// Only the last reply and its problems are kept: a small model's
		// context is better spent on the current draft than on history.
		msgs = append(append([]Message(nil), prompt.Messages...),
			Message{Role: RoleAssistant, Content: clip(resp.Content, 6000)},
			Message{Role: RoleUser, Content: repairMessage(problems)})
		call = PurposeRepair
	}
	return nil, &PlanError{Attempts: res.Attempts, Errors: res.Errors, Result: res}
}

// then is s when cond holds: the "what happens next" of a message that is
// also the last word when no call is left.
func then(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

func parseAndCheck(content string, check func(*plan.Plan) []plan.Error) (*plan.Plan, []string) {
	pl, err := ParsePlan(content)
	if err != nil {
		return nil, []string{err.Error()}
	}
	errs := check(pl)
	if len(errs) == 0 {
		return pl, nil
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return pl, out
}

// repairMessage feeds validation problems back to the model.
// RepairOpening opens every repair message the planner sends after an
// invalid plan (the demo's simulated planner tells them from requests).
const RepairOpening = "That plan cannot run."

func repairMessage(problems []string) string {
	var b strings.Builder
	b.WriteString(RepairOpening + " Fix these problems:\n")
	for _, p := range problems {
		b.WriteString("- ")
		b.WriteString(p)
		b.WriteString("\n")
	}
	b.WriteString("Reply with the whole corrected plan as one JSON object.")
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

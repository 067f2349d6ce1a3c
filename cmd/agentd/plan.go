package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
)

func init() {
	register("plan", `plan "REQUEST": show the plan agentd would run, without running it`, (*Main).planCmd)
}

const planUsage = `usage: agentd plan [--json] [--workflow W] [--planner local|remote|auto] [--sensitive] [--config FILE] "REQUEST"`

const planHelp = `Routes and plans REQUEST as the daemon would and shows the decision and the
plan. Nothing is run, no state is written, the remote planner is never called.

Exit status: 0 with a plan (or a route that needs none); 1 when no plan was
made (Ollama down, a model missing, no valid plan within the repair
attempts); 2 for a bad command line or config. On failure stderr says what
failed and what to do next.

With --json, stdout holds exactly one JSON object once the command line is
valid, on failure too: then "error" is the message stderr shows, "plan" is
null, "planner_calls" counts the planner calls made and "problems" lists
what was wrong with the plans they returned. Check "error", not only the
exit status.`

// planOutput is `agentd plan --json`: the router's decision and the plan,
// or with Error set, why there is none.
type planOutput struct {
	Request       string     `json:"request"`
	Route         string     `json:"route"`
	Workflow      string     `json:"workflow,omitempty"`
	Planner       string     `json:"planner"`
	Sensitive     bool       `json:"sensitive"`
	Score         float64    `json:"score"`
	LocalFailures int        `json:"local_failures"`
	Fingerprint   string     `json:"fingerprint"`
	Reasons       []string   `json:"reasons"`
	Notes         []string   `json:"notes,omitempty"`
	Source        string     `json:"source,omitempty"`
	PlannerCalls  int        `json:"planner_calls"`
	PromptTokens  int        `json:"prompt_tokens"`
	OutputTokens  int        `json:"output_tokens"`
	Problems      []string   `json:"problems,omitempty"`
	Plan          *plan.Plan `json:"plan"`
	Error         string     `json:"error,omitempty"`
}

func (m *Main) planCmd(ctx context.Context, args []string) error {
	fs, cfgPath := m.flags("plan")
	asJSON := fs.Bool("json", false, `print the decision and the plan as one JSON object; on failure it has "error" set and "plan" null`)
	workflow := fs.String("workflow", "", "plan with this workflow's template")
	planner := fs.String("planner", "auto", "local, remote or auto (as a submitted run would ask)")
	sensitive := fs.Bool("sensitive", false, "mark the request sensitive (never sent remote)")
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "%s\n\n%s\n\nFlags:\n", planUsage, planHelp)
		fs.PrintDefaults()
	}
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("%s", planUsage)
	}
	text := strings.TrimSpace(strings.Join(pos, " "))
	if text == "" && *workflow == "" {
		return usagef("the request is empty; %s", planUsage)
	}
	switch *planner {
	case "auto", "local", "remote":
	default:
		return usagef("--planner is %q; use local, remote or auto", *planner)
	}
	out := planOutput{Request: text, Sensitive: *sensitive, Reasons: []string{}}
	// fail returns err for the caller to print on stderr; with --json the
	// failure is also the one object on stdout.
	fail := func(err error) error {
		if *asJSON {
			out.Plan, out.Error = nil, err.Error()
			if werr := writePlanJSON(m.Stdout, out); werr != nil {
				return errors.Join(err, werr)
			}
		}
		return err
	}
	cfg, _, err := m.loadConfig(*cfgPath)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	p, err := daemon.NewPlanner(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	defer p.Close()

	pv, perr := p.Plan(ctx, text, *workflow, *planner, *sensitive)
	out = planOutput{
		Request: text, Route: string(pv.Decision.Route), Workflow: pv.Decision.Workflow,
		Planner: string(pv.Decision.Planner), Sensitive: pv.Decision.Sensitive || *sensitive,
		Score: pv.Decision.Score, LocalFailures: pv.Decision.LocalFailures, Fingerprint: pv.Decision.Fingerprint,
		Reasons: nonNilStrings(pv.Decision.Reasons), Notes: pv.Notes,
	}
	if r := pv.Result; r != nil {
		out.Source, out.PlannerCalls, out.Plan = r.Source, r.Attempts, r.Plan
		out.PromptTokens, out.OutputTokens, out.Problems = r.PromptTokens, r.OutputTokens, r.Errors
	}
	if *asJSON {
		if perr != nil {
			return fail(operatorError(perr))
		}
		return writePlanJSON(m.Stdout, out)
	}
	if perr != nil {
		out.Plan, out.Error = nil, operatorError(perr).Error()
	}
	printPlan(m.Stdout, out, func(name string) string {
		t, ok := p.Tool(name)
		switch {
		case !ok:
			return ""
		case t.Approval:
			return "needs approval"
		case !t.Idempotent:
			return "not idempotent"
		}
		return ""
	})
	if perr != nil {
		return operatorError(perr)
	}
	return nil
}

func writePlanJSON(w io.Writer, out planOutput) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// operatorError brings the model client's own message (which says what to
// do: `ollama serve`, `ollama pull NAME`) to the front of a planning error.
func operatorError(err error) error {
	// A model call that failed is the cause, whatever the planner made of
	// it: rewording the request would not help, the message says what does.
	var le *llm.Error
	if errors.As(err, &le) && le.Class != llm.ClassCanceled {
		return errors.New(le.Message)
	}
	if errors.Is(err, localplanner.ErrNoValidPlan) {
		return fmt.Errorf("%w — try rewording the request, raising planner.repair_attempts, or a stronger models.planner", err)
	}
	return err
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// printPlan renders the decision and the plan as a tree: each step sits
// under the dependency it waits on last, its other dependencies named.
// note returns a warning to show next to a tool (approval, idempotency).
func printPlan(w io.Writer, o planOutput, note func(string) string) {
	fmt.Fprintf(w, "Request:  %s\n", o.Request)
	route := o.Route
	if o.Workflow != "" {
		route += " (workflow " + o.Workflow + ")"
	}
	if o.Route != o.Planner && o.Planner != "" {
		route += ", planner " + o.Planner
	}
	fmt.Fprintf(w, "Route:    %s   complexity %.2f", route, o.Score)
	if o.Sensitive {
		fmt.Fprint(w, ", sensitive")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Why:")
	for _, r := range o.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	for _, n := range o.Notes {
		fmt.Fprintf(w, "Note:     %s\n", n)
	}
	if o.Error != "" {
		fmt.Fprintln(w, "No plan.")
		for _, p := range o.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
		return
	}
	if o.Plan == nil {
		fmt.Fprintln(w, "No plan:  this route runs without one (scratchpad: the model decides each tool call as it goes)")
		return
	}
	calls := fmt.Sprintf("%d planner calls", o.PlannerCalls)
	if o.PlannerCalls == 1 {
		calls = "1 planner call"
	}
	fmt.Fprintf(w, "Plan:     %s (%s, %s, %d steps)\n", o.Plan.Goal, o.Source, calls, len(o.Plan.Steps))
	if len(o.Problems) > 0 {
		fmt.Fprintln(w, "Repaired: problems met on the way:")
		for _, p := range o.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	printSteps(w, o.Plan, note)
	if o.Plan.Answer != "" {
		fmt.Fprintf(w, "Answer:   %s\n", o.Plan.Answer)
	}
	fmt.Fprintln(w, "Nothing was run.")
}

func printSteps(w io.Writer, p *plan.Plan, note func(string) string) {
	index := map[string]int{}
	for i, s := range p.Steps {
		index[s.ID] = i
	}
	// A step hangs under its dependency that comes last in plan order
	// (validated plans are topologically ordered by Normalize).
	parent := map[string]string{}
	children := map[string][]string{}
	var roots []string
	for _, s := range p.Steps {
		best := ""
		for _, d := range s.DependsOn {
			if _, ok := index[d]; ok && (best == "" || index[d] > index[best]) {
				best = d
			}
		}
		if best == "" {
			roots = append(roots, s.ID)
			continue
		}
		parent[s.ID] = best
		children[best] = append(children[best], s.ID)
	}
	var walk func(id, prefix string, last bool)
	walk = func(id, prefix string, last bool) {
		s := p.Steps[index[id]]
		branch, cont := "├─ ", "│  "
		if last {
			branch, cont = "└─ ", "   "
		}
		head := fmt.Sprintf("%s [%s]", s.ID, s.Kind())
		if s.Kind() == plan.KindTool {
			head += " tool " + s.Tool
			if n := note(s.Tool); n != "" {
				head += " (" + n + ")"
			}
		} else {
			tier := s.Tier
			if tier == "" {
				tier = plan.TierFast
			}
			head += " tier " + tier
		}
		fmt.Fprintf(w, "%s%s%s\n", prefix, branch, head)
		body := prefix + cont + "   "
		if extra := slices.DeleteFunc(slices.Clone(s.DependsOn), func(d string) bool { return d == parent[id] }); len(extra) > 0 {
			fmt.Fprintf(w, "%salso after: %s\n", body, strings.Join(extra, ", "))
		}
		if s.Kind() == plan.KindTool {
			b, _ := json.Marshal(s.Args)
			fmt.Fprintf(w, "%sargs: %s\n", body, b)
		} else {
			fmt.Fprintf(w, "%stask: %s\n", body, s.Task)
			if len(s.Tools) > 0 {
				names := make([]string, len(s.Tools))
				for i, t := range s.Tools {
					names[i] = t
					if n := note(t); n != "" {
						names[i] += " (" + n + ")"
					}
				}
				fmt.Fprintf(w, "%stools: %s\n", body, strings.Join(names, ", "))
			}
			if len(s.Output) > 0 {
				fmt.Fprintf(w, "%soutput schema: %s\n", body, s.Output)
			}
		}
		kids := children[id]
		for i, k := range kids {
			walk(k, prefix+cont, i == len(kids)-1)
		}
	}
	for i, r := range roots {
		walk(r, "", i == len(roots)-1)
	}
}

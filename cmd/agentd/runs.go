package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/api"
	agentrun "github.com/agentd/agentd/internal/run"
)

func init() {
	register("submit", `submit "REQUEST": start a run on the running agentd (--wait to wait for its answer)`, (*Main).submitCmd)
	register("runs", "list recent runs (--status S, --limit N)", (*Main).runsCmd)
	register("run", "run ID: a run's steps, tool calls, errors and answer", (*Main).runCmd)
	register("approvals", "list steps waiting for a person's approval", (*Main).approvalsCmd)
	register("approve", "approve RUN STEP: let a step that needs approval run", (*Main).approveCmd)
	register("deny", "deny RUN STEP: refuse a step that needs approval", (*Main).denyCmd)
	register("cancel", "cancel RUN: stop a run", (*Main).cancelCmd)
}

func printIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

const submitUsage = `usage: agentd submit [--workflow W] [--planner local|remote|auto] [--sensitive] [--priority N] [--async] [--wait] [--json] "REQUEST"`

func (m *Main) submitCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("submit")
	workflow := fs.String("workflow", "", "run this workflow (its template plans the run)")
	planner := fs.String("planner", "auto", "local, remote or auto")
	sensitive := fs.Bool("sensitive", false, "the request is sensitive: it never leaves this machine")
	priority := fs.Int("priority", 0, "-100 to 100; higher runs first")
	async := fs.Bool("async", false, "the run may wait in the deferred queue for the link to come back")
	wait := fs.Bool("wait", false, "wait for the run to finish and print its answer")
	asJSON := fs.Bool("json", false, "print the run as JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	text := strings.TrimSpace(strings.Join(pos, " "))
	if text == "" && *workflow == "" {
		if len(pos) > 0 { // a request was given, and it is blank
			return usagef("the request is empty: write what agentd should do, in quotes (agentd submit \"What is 17%% of 2,340?\"), or name a workflow with --workflow\n%s", submitUsage)
		}
		return usagef("%s", submitUsage)
	}
	switch *planner {
	case "auto", "local", "remote":
	default:
		return usagef("--planner is %q; use local, remote or auto", *planner)
	}
	c, err := m.client(cf)
	if err != nil {
		return err
	}
	body := map[string]any{"request": text, "workflow": *workflow, "planner": *planner,
		"sensitive": *sensitive, "priority": *priority, "async": *async}
	if *wait {
		body["wait"] = true
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, httpTimeout)
		defer cancel()
	}
	var r agentrun.Run
	if err := c.do(ctx, "POST", "/api/v1/runs", body, &r); err != nil {
		return err
	}
	if *asJSON {
		if err := printIndentedJSON(m.Stdout, &r); err != nil {
			return err
		}
	} else if !*wait {
		fmt.Fprintf(m.Stdout, "%s %s\n", r.ID, r.Status)
		return nil
	} else {
		fmt.Fprintf(m.Stdout, "run %s %s\n", r.ID, r.Status)
		if r.Answer != "" {
			fmt.Fprintf(m.Stdout, "\n%s\n", r.Answer)
		}
	}
	if !*wait {
		return nil
	}
	switch {
	case r.Status == agentrun.Done:
		return nil
	case !r.Status.Terminal() && r.Status != agentrun.Review:
		fmt.Fprintf(m.Stderr, "agentd submit: run %s is still %s — follow it with `agentd run %s`\n", r.ID, r.Status, r.ID)
	case r.Status == agentrun.Review:
		fmt.Fprintf(m.Stderr, "agentd submit: run %s waits for a person's review: %s — see `agentd run %s`\n", r.ID, r.Error, r.ID)
	default:
		fmt.Fprintf(m.Stderr, "agentd submit: run %s ended %s: %s — see `agentd run %s`\n", r.ID, r.Status, r.Error, r.ID)
	}
	return errSilent
}

func (m *Main) runsCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("runs")
	status := fs.String("status", "", "only runs in these statuses, comma-separated (queued, running, review, done, failed, ...)")
	limit := fs.Int("limit", 20, "how many runs, newest first (1 to 200)")
	workflow := fs.String("workflow", "", "only runs of this workflow")
	asJSON := fs.Bool("json", false, "print the runs as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; usage: agentd runs [--status S] [--limit N] [--workflow W] [--json]", fs.Arg(0))
	}
	if *limit < 1 || *limit > 200 {
		return usagef("--limit is %d; use 1 to 200", *limit)
	}
	c, err := m.client(cf)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *status != "" {
		q.Set("status", *status)
	}
	if *workflow != "" {
		q.Set("workflow", *workflow)
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	var page api.RunPage
	if err := c.do(ctx, "GET", "/api/v1/runs?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	if *asJSON {
		return printIndentedJSON(m.Stdout, page.Runs)
	}
	if len(page.Runs) == 0 {
		fmt.Fprintln(m.Stdout, "no runs")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCREATED\tTOOK\tROUTE\tREQUEST")
	for _, r := range page.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, statusLabel(r), r.CreatedAt.Local().Format("2006-01-02 15:04:05"),
			took(r), dash(r.Route), clipText(oneLine(r.Request), 60))
	}
	return tw.Flush()
}

func statusLabel(r *agentrun.Run) string {
	s := string(r.Status)
	if r.Degraded {
		s += "*"
	}
	return s
}

func took(r *agentrun.Run) string {
	if r.StartedAt == nil {
		return "-"
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(*r.StartedAt).Round(100 * time.Millisecond).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// compactJSON prints JSON the API indented on one line.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return oneLine(string(raw))
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (m *Main) runCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("run")
	asJSON := fs.Bool("json", false, "print everything the API returns as JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: agentd run [--json] ID   (list ids with `agentd runs`)")
	}
	var d api.RunDetail
	if err := m.call(ctx, cf, "GET", "/api/v1/runs/"+url.PathEscape(pos[0]), nil, &d); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return fmt.Errorf("agentd has no run %s (404) — list runs with `agentd runs`", pos[0])
		}
		return err
	}
	if *asJSON {
		return printIndentedJSON(m.Stdout, &d)
	}
	printRun(m.Stdout, &d)
	return nil
}

func printRun(w io.Writer, d *api.RunDetail) {
	r := d.Run
	fmt.Fprintf(w, "Run:      %s\n", r.ID)
	fmt.Fprintf(w, "Status:   %s", r.Status)
	if r.Degraded {
		fmt.Fprint(w, " (degraded: the remote planner was wanted but not used)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Request:  %s\n", oneLine(r.Request))
	fmt.Fprintf(w, "Created:  %s   took %s   source %s\n", r.CreatedAt.Local().Format(time.RFC3339), took(r), r.Source)
	if r.Workflow != "" {
		fmt.Fprintf(w, "Workflow: %s\n", r.Workflow)
	}
	if r.Route != "" {
		fmt.Fprintf(w, "Route:    %s (planner %s)", r.Route, r.Planner)
		if d.PlanSource != "" {
			fmt.Fprintf(w, ", plan v%d from %s", d.PlanVersion, d.PlanSource)
			if d.PlanModel != "" {
				fmt.Fprintf(w, " (%s)", d.PlanModel)
			}
		}
		fmt.Fprintln(w)
	}
	for _, reason := range r.RouteReasons {
		fmt.Fprintf(w, "  - %s\n", reason)
	}
	if r.CostUSD > 0 || r.EnergyWh > 0 {
		fmt.Fprintf(w, "Cost:     $%.4f, %.2f Wh\n", r.CostUSD, r.EnergyWh)
	}
	if len(d.Steps) > 0 {
		fmt.Fprintln(w, "\nSteps:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tKIND\tTOOL\tSTATUS\tTRIES\tAFTER\tERROR")
		for _, s := range d.Steps {
			tool := s.Tool
			if s.Kind != "tool" {
				tool = dash(s.Tier)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.StepID, s.Kind, dash(tool), s.Status, s.Attempts,
				dash(strings.Join(s.DependsOn, ",")), clipText(oneLine(s.Error), 80))
		}
		_ = tw.Flush()
	}
	if len(d.ToolCalls) > 0 {
		fmt.Fprintln(w, "\nTool calls:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range d.ToolCalls {
			dur := "-"
			if t.FinishedAt != nil {
				dur = t.FinishedAt.Sub(t.StartedAt).Round(time.Millisecond).String()
			}
			msg := t.Error
			if msg == "" {
				msg = t.Output
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.StepID, t.Tool, t.Status, dur, clipText(oneLine(msg), 70))
		}
		_ = tw.Flush()
	}
	pending := false
	for _, a := range d.Approvals {
		if a.Status == "pending" {
			if !pending {
				fmt.Fprintln(w, "\nWaiting for approval:")
				pending = true
			}
			fmt.Fprintf(w, "  %s: tool %s %s (expires %s)\n    agentd approve %s %s   |   agentd deny %s %s --reason \"...\"\n",
				a.StepID, a.Tool, compactJSON(a.Args), a.ExpiresAt.Local().Format("15:04:05"), r.ID, a.StepID, r.ID, a.StepID)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "\nError:    %s\n", r.Error)
	}
	if r.Answer != "" {
		fmt.Fprintf(w, "\nAnswer:\n%s\n", r.Answer)
	}
}

func (m *Main) approvalsCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("approvals")
	asJSON := fs.Bool("json", false, "print the approvals as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Approvals []api.Approval `json:"approvals"`
	}
	if err := m.call(ctx, cf, "GET", "/api/v1/approvals", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printIndentedJSON(m.Stdout, out.Approvals)
	}
	if len(out.Approvals) == 0 {
		fmt.Fprintln(m.Stdout, "nothing waits for approval")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTEP\tTOOL\tEXPIRES\tARGS\tREQUEST")
	for _, a := range out.Approvals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.RunID, a.StepID, a.Tool, a.ExpiresAt.Local().Format("15:04:05"),
			clipText(compactJSON(a.Args), 40), clipText(oneLine(a.Request), 40))
	}
	return tw.Flush()
}

func (m *Main) approveCmd(ctx context.Context, args []string) error {
	return m.decide(ctx, "approve", args)
}

func (m *Main) denyCmd(ctx context.Context, args []string) error { return m.decide(ctx, "deny", args) }

func (m *Main) decide(ctx context.Context, decision string, args []string) error {
	fs, cf := m.clientFlagSet(decision)
	reason := fs.String("reason", "", "why (kept with the decision)")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("usage: agentd %s [--reason R] RUN STEP   (see what waits with `agentd approvals`)", decision)
	}
	path := "/api/v1/approvals/" + url.PathEscape(pos[0]) + "/" + url.PathEscape(pos[1])
	if err := m.call(ctx, cf, "POST", path, map[string]string{"decision": decision, "reason": *reason}, nil); err != nil {
		switch statusOf(err) {
		case http.StatusNotFound:
			return fmt.Errorf("step %s of run %s is not waiting for approval (404: %v) — see what waits with `agentd approvals`", pos[1], pos[0], apiReason(err))
		case http.StatusConflict:
			return fmt.Errorf("step %s of run %s cannot be decided now (409: %v)", pos[1], pos[0], apiReason(err))
		}
		return err
	}
	verb := "approved"
	if decision == "deny" {
		verb = "denied"
	}
	fmt.Fprintf(m.Stdout, "%s step %s of run %s\n", verb, pos[1], pos[0])
	return nil
}

func (m *Main) cancelCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("cancel")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: agentd cancel RUN")
	}
	var out struct {
		Run *agentrun.Run `json:"run"`
	}
	if err := m.call(ctx, cf, "POST", "/api/v1/runs/"+url.PathEscape(pos[0])+"/cancel", nil, &out); err != nil {
		switch statusOf(err) {
		case http.StatusNotFound:
			return fmt.Errorf("agentd has no run %s (404) — list runs with `agentd runs`", pos[0])
		case http.StatusConflict:
			return fmt.Errorf("run %s cannot be canceled (409: %v)", pos[0], apiReason(err))
		}
		return err
	}
	status := "canceled"
	if out.Run != nil {
		status = string(out.Run.Status)
	}
	fmt.Fprintf(m.Stdout, "canceled run %s (status %s)\n", pos[0], status)
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/plancache"
)

func init() {
	register("templates", "templates [show|approve|disable|pin|unpin|delete|edit] ID: the plan templates agentd learned from its runs", (*Main).templatesCmd)
}

const templatesUsage = "usage: agentd templates [--json]                      list the learned plan templates\n" +
	"       agentd templates show ID [--json]              everything about one\n" +
	"       agentd templates approve|disable|pin|unpin ID  change its standing\n" +
	"       agentd templates delete ID                     forget it (it may be learned again)\n" +
	"       agentd templates edit ID --file edit.json      change name, phrasings, answer, answer_pattern or steps"

// templateActs are the verbs that POST to /api/v1/templates/{id}/VERB, with
// what the result means for the operator.
var templateActs = map[string]string{
	"approve": "it plans matching requests now",
	"disable": "matching requests go to the planner until someone approves it again",
	"pin":     "failures do not demote or retire it, and a full cache does not evict it",
	"unpin":   "it may be retired after failures in a row, or evicted when the cache is full",
}

func (m *Main) templatesCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("templates")
	asJSON := fs.Bool("json", false, "print what the API returns as JSON")
	file := fs.String("file", "", "edit: the edit as JSON (plancache.Edit; - reads standard input)")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || (len(pos) == 1 && pos[0] == "list") {
		return m.listTemplates(ctx, cf, *asJSON)
	}
	verb := pos[0]
	if len(pos) != 2 {
		return usagef("%s", templatesUsage)
	}
	id := pos[1]
	path := "/api/v1/templates/" + url.PathEscape(id)
	var v api.TemplateView
	switch {
	case verb == "show":
		err = m.call(ctx, cf, "GET", path, nil, &v)
	case templateActs[verb] != "":
		err = m.call(ctx, cf, "POST", path+"/"+verb, nil, &v)
	case verb == "edit":
		var edit json.RawMessage
		if edit, err = m.readEdit(*file); err != nil {
			return err
		}
		err = m.call(ctx, cf, "PATCH", path, edit, &v)
	case verb == "delete":
		if err := m.call(ctx, cf, "DELETE", path, nil, nil); err != nil {
			return templateCallError(err, id)
		}
		fmt.Fprintf(m.Stdout, "deleted template %s: the next request of its kind is planned, and may teach it again\n", id)
		return nil
	default:
		return usagef("unknown verb %q\n%s", verb, templatesUsage)
	}
	if err != nil {
		return templateCallError(err, id)
	}
	switch {
	case *asJSON:
		return printIndentedJSON(m.Stdout, v)
	case verb == "show":
		printTemplate(m.Stdout, v)
	case verb == "edit":
		fmt.Fprintf(m.Stdout, "edited template %s (%s), now %s\n", v.ID, v.Name, v.State)
		if v.State == plancache.Pending {
			fmt.Fprintf(m.Stdout, "it plans nothing until approved: agentd templates approve %s\n", v.ID)
		}
	default:
		fmt.Fprintf(m.Stdout, "%s template %s (%s), now %s%s: %s\n", pastTense(verb), v.ID, v.Name, v.State, pinnedMark(v.Pinned), templateActs[verb])
	}
	return nil
}

// readEdit reads an edit file: it must be JSON; the daemon checks the
// rest and says what is wrong.
func (m *Main) readEdit(path string) (json.RawMessage, error) {
	var b []byte
	var err error
	switch path {
	case "":
		return nil, usagef("edit needs --file edit.json, e.g. {\"phrasings\": [\"Stock check for SKU {{sku}} in the {{warehouse}} warehouse\"]}\n%s", templatesUsage)
	case "-":
		b, err = io.ReadAll(m.Stdin)
	default:
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the edit: %w", err)
	}
	if !json.Valid(b) {
		return nil, usagef("%s is not JSON: write an object with one or more of name, phrasings, answer, answer_pattern, steps", path)
	}
	return json.RawMessage(b), nil
}

// templateCallError says what to do about a refused template call.
func templateCallError(err error, id string) error {
	var e *apiError
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case e.Status == http.StatusNotFound && e.Code == "not_configured":
		return errors.New(e.Message)
	case e.Status == http.StatusNotFound:
		return fmt.Errorf("agentd has no template %s (404) — list them with `agentd templates`", id)
	case e.Status == http.StatusBadRequest:
		return usagef("%s", e.Message)
	}
	return err
}

func (m *Main) listTemplates(ctx context.Context, cf clientFlags, asJSON bool) error {
	var out struct {
		Templates []api.TemplateView `json:"templates"`
	}
	if err := m.call(ctx, cf, "GET", "/api/v1/templates", nil, &out); err != nil {
		return templateCallError(err, "")
	}
	if asJSON {
		return printIndentedJSON(m.Stdout, out.Templates)
	}
	if len(out.Templates) == 0 {
		fmt.Fprintln(m.Stdout, "no learned templates yet: agentd learns one from each kind of request whose run ends done")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tPINNED\tSUCCESS\tUSES\tPHRASINGS\tSOURCE")
	pending := 0
	for _, t := range out.Templates {
		if t.State == plancache.Pending {
			pending++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", t.ID, t.Name, t.State, yesNo(t.Pinned), successRate(t),
			t.Uses, len(t.Phrasings), t.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pending > 0 {
		fmt.Fprintf(m.Stdout, "\n%d wait for approval: look with `agentd templates show ID`, then `agentd templates approve ID`\n", pending)
	}
	return nil
}

// successRate is the template's share of runs that ended done, or "-"
// before it has any.
func successRate(t api.TemplateView) string {
	if t.Learned+t.Uses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*t.SuccessRate)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func pinnedMark(pinned bool) string {
	if pinned {
		return ", pinned"
	}
	return ""
}

func pastTense(verb string) string {
	switch verb {
	case "approve":
		return "approved"
	case "disable":
		return "disabled"
	case "pin":
		return "pinned"
	case "unpin":
		return "unpinned"
	}
	return verb
}

// printTemplate prints everything about a template a person needs to
// decide on it.
func printTemplate(w io.Writer, t api.TemplateView) {
	fmt.Fprintf(w, "Template:  %s (%s)\n", t.ID, t.Name)
	fmt.Fprintf(w, "State:     %s%s", t.State, pinnedMark(t.Pinned))
	if t.ApprovedBy != "" {
		fmt.Fprintf(w, ", approved by %s", t.ApprovedBy)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Record:    learned from %d run(s) of the %s planner; planned %d (%d done, %d failed); success %s",
		t.Learned, t.Source, t.Uses, t.Successes, t.Failures, successRate(t))
	if t.FailStreak > 0 {
		fmt.Fprintf(w, "; %d failure(s) in a row", t.FailStreak)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Created:   %s   updated %s", stamp(t.CreatedAt), stamp(t.UpdatedAt))
	if !t.LastUsedAt.IsZero() {
		fmt.Fprintf(w, "   last used %s", stamp(t.LastUsedAt))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\nPhrasings:")
	for _, p := range t.Phrasings {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	if len(t.Params) > 0 {
		fmt.Fprintln(w, "\nParams:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tKIND\tWORDS\tEXAMPLE")
		for _, p := range t.Params {
			fmt.Fprintf(tw, "  %s\t%s\t%d-%d\t%s\n", p.Name, p.Kind, p.MinWords, p.MaxWords, dash(p.Example))
		}
		_ = tw.Flush()
	}
	printTemplateSteps(w, t)
	fmt.Fprintf(w, "\nAnswer:          %s\n", dash(oneLine(t.Workflow.Answer)))
	pattern := t.Workflow.AnswerPattern
	if pattern == "" {
		pattern = "none (confirmed once two runs with different values end on the same answer)"
	}
	fmt.Fprintf(w, "Answer pattern:  %s\n", pattern)
	if t.LastError != "" {
		fmt.Fprintf(w, "Last error:      %s\n", oneLine(t.LastError))
	}
	if len(t.Examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RUN\tAT\tPARAMS\tREQUEST")
		for _, e := range t.Examples {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.RunID, stamp(e.At), paramList(e.Params), clipText(oneLine(e.Request), 60))
		}
		_ = tw.Flush()
	}
	switch t.State {
	case plancache.Pending, plancache.Retired, plancache.Disabled:
		fmt.Fprintf(w, "\nit plans nothing until approved: agentd templates approve %s\n", t.ID)
	}
}

func printTemplateSteps(w io.Writer, t api.TemplateView) {
	if len(t.Workflow.Steps) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSteps:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tDOES\tAFTER")
	for _, s := range t.Workflow.Steps {
		does := "task: " + clipText(oneLine(s.Task), 70)
		if s.Tool != "" {
			args, _ := json.Marshal(s.Args)
			does = "tool " + s.Tool + " " + string(args)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.ID, does, dash(strings.Join(s.DependsOn, ",")))
	}
	_ = tw.Flush()
}

// paramList writes k=v pairs in name order.
func paramList(params map[string]any) string {
	if len(params) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(params))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, params[k])
	}
	return strings.Join(parts, ", ")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

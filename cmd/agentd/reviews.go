package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/agentd/agentd/internal/db"
)

func init() {
	register("reviews", "list steps in the human review queue (a crash or the failure ladder put them there)", (*Main).reviewsCmd)
	register("resolve", "resolve RUN STEP --action retry|done|fail [--note N]: decide a step in review; its run resumes", (*Main).resolveCmd)
}

func (m *Main) reviewsCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("reviews")
	asJSON := fs.Bool("json", false, "print the review items as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Reviews []db.ReviewItem `json:"reviews"`
	}
	if err := m.call(ctx, cf, "GET", "/api/v1/reviews", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printIndentedJSON(m.Stdout, out.Reviews)
	}
	if len(out.Reviews) == 0 {
		fmt.Fprintln(m.Stdout, "the review queue is empty")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTEP\tTOOL\tSINCE\tREASON\tREQUEST")
	for _, it := range out.Reviews {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.RunID, it.StepID, it.Tool, it.CreatedAt.Local().Format("Jan 2 15:04"),
			clipText(oneLine(it.Reason), 60), clipText(oneLine(it.Request), 40))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, "\ndecide with: agentd resolve RUN STEP --action retry|done|fail [--note \"what you found\"]")
	return nil
}

func (m *Main) resolveCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("resolve")
	action := fs.String("action", "", "retry (it did not take effect: run it again), done (it took effect: --note is its result) or fail (give it up)")
	note := fs.String("note", "", "what you found; with --action done it becomes the step's result")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || *action == "" {
		return usagef("usage: agentd resolve --action retry|done|fail [--note N] RUN STEP   (see the queue with `agentd reviews`)")
	}
	path := "/api/v1/reviews/" + url.PathEscape(pos[0]) + "/" + url.PathEscape(pos[1])
	if err := m.call(ctx, cf, "POST", path, map[string]string{"action": *action, "note": *note}, nil); err != nil {
		switch statusOf(err) {
		case http.StatusNotFound:
			return fmt.Errorf("step %s of run %s is not in the review queue (404: %v) — see it with `agentd reviews`", pos[1], pos[0], apiReason(err))
		case http.StatusBadRequest:
			return usagef("%v", apiReason(err))
		}
		return err
	}
	fmt.Fprintf(m.Stdout, "resolved step %s of run %s (%s); the run resumes\n", pos[1], pos[0], *action)
	return nil
}

package exec

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

var citation = regexp.MustCompile(`\[([A-Za-z0-9_\-]+)\]`)

// synthesize writes the final answer: a summarizer model call given the
// plan's answer instruction and the condensed results, citing the steps it
// rests on as [step_id]. If the model fails or cites nothing it was given,
// a deterministic answer lists the results. Whatever did not complete is
// always said at the end.
func (x *runExec) synthesize(ctx context.Context) string {
	var done []stateEntry
	var failed []string
	for _, id := range x.order {
		st := x.steps[id]
		switch {
		case st.Status == run.StepDone:
			done = append(done, stateEntry{id: id, order: x.seqDone[id], text: st.Output})
		case st.Status == run.StepSkipped && (strings.HasPrefix(st.Error, "superseded by plan") ||
			strings.HasPrefix(st.Error, "not in plan")):
		default:
			failed = append(failed, fmt.Sprintf("[%s] %s: %s", id, st.Status, st.Error))
		}
	}
	answer := ""
	if len(failed) == 0 && x.stopped == "" {
		answer = x.fromPattern()
	}
	if answer == "" && len(done) > 0 {
		answer = x.summarize(ctx, done, failed)
	}
	if answer == "" {
		answer = fallbackAnswer(done)
	}
	if len(failed) > 0 || x.stopped != "" {
		var b strings.Builder
		b.WriteString(answer)
		b.WriteString("\n\nIncomplete — this answer is partial:\n")
		if x.stopped != "" {
			fmt.Fprintf(&b, "- run stopped: %s\n", x.stopped)
		}
		for _, f := range failed {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		answer = strings.TrimRight(b.String(), "\n")
	}
	return answer
}

// fromPattern writes the answer from the plan's answer pattern (a
// template's) with no model call: its ${step.path} references filled from
// the results. "" when there is no pattern or a reference does not
// resolve; the summarizer then writes the answer.
func (x *runExec) fromPattern() string {
	if x.plan == nil || x.plan.AnswerPattern == "" {
		return ""
	}
	text, err := plan.BindText(x.plan.AnswerPattern, resultsJSON(x.outputs()))
	if err != nil {
		x.log.Info("answer pattern did not fill; asking the summarizer", "err", err)
		return ""
	}
	return strings.TrimSpace(text)
}

func (x *runExec) summarize(ctx context.Context, done []stateEntry, failed []string) string {
	model := x.e.d.Models.Model(RoleSummarizer)
	instr := ""
	if x.plan != nil {
		instr = x.plan.Answer
	}
	if instr == "" {
		instr = "Answer the request from the step results."
	}
	system := "You write the final answer to a user's request from the results of the steps that were run. " +
		"Use only those results. After each fact, cite the step it comes from as [step_id]. " +
		"If something failed, say what is missing; do not guess."
	head := fmt.Sprintf("Request: %s\nHow to answer: %s\n", x.r.Request, instr)
	if len(failed) > 0 {
		head += "Did not complete:\n" + strings.Join(failed, "\n") + "\n"
	}
	budget := x.e.promptChars(model) - len(system) - len(head)
	results := runStateView{completed: done}.renderResults(budget)
	req := ChatRequest{Model: model, Purpose: "synthesize", RunID: x.r.ID, NumPredict: x.e.cfg.NumPredict,
		Messages: []Message{{Role: "system", Content: system}, {Role: "user", Content: head + results}}}
	if req.NumPredict <= 0 {
		req.NumPredict = synthTokens
	}
	resp, err := x.chat(ctx, req)
	if err != nil && x.e.d.IsBadOutput(err) && ctx.Err() == nil {
		// Cut or broken off: once more with room and other sampling.
		x.log.Info("summarizer reply cut or broken off; asking once more", "err", err)
		req.NumPredict, req.Regeneration = moreRoom(req.NumPredict), 1
		resp, err = x.chat(ctx, req)
	}
	if err != nil {
		x.log.Warn("summarizer failed; answering from the step results", "err", err)
		return ""
	}
	text := strings.TrimSpace(resp.Content)
	if text == "" {
		return ""
	}
	ids := map[string]bool{}
	for _, d := range done {
		ids[d.id] = true
	}
	cited := false
	for _, m := range citation.FindAllStringSubmatch(text, -1) {
		if ids[m[1]] {
			cited = true
		}
	}
	if !cited {
		var refs []string
		for _, d := range done {
			refs = append(refs, "["+d.id+"]")
		}
		text += "\n\nSources: " + strings.Join(refs, " ")
	}
	return text
}

// fallbackAnswer lists the step results when no model wrote the answer.
func fallbackAnswer(done []stateEntry) string {
	if len(done) == 0 {
		return "No step completed, so there is no result to report."
	}
	var b strings.Builder
	b.WriteString("Results:\n")
	for _, d := range done {
		fmt.Fprintf(&b, "- [%s] %s\n", d.id, oneLine(capText(d.text, 2000)))
	}
	return strings.TrimRight(b.String(), "\n")
}

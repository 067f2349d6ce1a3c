package scenarios

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
)

// Open requests: whatever a newcomer types into the demo that no scenario
// scripts. The simulated planner answers them the way a capable planner
// would with the demo's tools: arithmetic goes to calc, the date and time
// to now, questions about the reference documents to search_docs, and
// anything else to one task step whose executor says plainly that it is a
// simulated model. The summarizer then answers from the step results, so
// "What is 17% of 2,340?" comes back as 397.8, computed by calc.

// Step ids of open plans.
const (
	openCalc   = "calculate"
	openClock  = "clock"
	openDocs   = "docs"
	openAnswer = "answer"
)

// openTaskMarker opens the task text of an open plan's answer step, so the
// executor's script recognises it.
const openTaskMarker = "Answer the user's request directly: "

var (
	thousands  = regexp.MustCompile(`(\d),(\d{3})\b`)
	percentOf  = regexp.MustCompile(`(?i)(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\s+(\d+(?:\.\d+)?)`)
	percentRaw = regexp.MustCompile(`(?i)\d+(?:\.\d+)?\s*(?:%|percent)\s+of\s+\d[\d,]*(?:\.\d+)?`)
	wordOps    = strings.NewReplacer(" plus ", " + ", " minus ", " - ", " times ", " * ", " multiplied by ", " * ", " divided by ", " / ", " over ", " / ", " to the power of ", " ^ ")
	byX        = regexp.MustCompile(`(\d)\s*[x×]\s*(\d)`)
	exprRun    = regexp.MustCompile(`(?:sqrt|abs|round|floor|ceil|min|max|[\d\s.+\-*/^%(),])+`)
	timeWords  = regexp.MustCompile(`(?i)\b(time|date|today|tomorrow|weekday|what day|clock|now)\b`)
	docsWords  = regexp.MustCompile(`(?i)\b(docs?|documents?|manuals?|notes?|guides?|policy|policies|handbook|according to|vaccines?|cold chain|refrigerators?|fridges?|generators?|solar|excursions?)\b`)
	ianaZone   = regexp.MustCompile(`\b([A-Z][a-z]+/[A-Z][A-Za-z_]+)\b`)
	stepResult = regexp.MustCompile(`(?m)^\[([A-Za-z0-9_\-]+)\] (.*)$`)
)

// arithmetic finds the calculation a request asks for, as a calc
// expression, or "" when it asks for none.
func arithmetic(request string) string {
	text := " " + strings.ToLower(request) + " "
	for thousands.MatchString(text) {
		text = thousands.ReplaceAllString(text, "$1$2")
	}
	text = percentOf.ReplaceAllString(text, "($2 * $1 / 100)")
	text = wordOps.Replace(text)
	text = byX.ReplaceAllString(text, "$1 * $2")
	best := ""
	for _, m := range exprRun.FindAllString(text, -1) {
		m = strings.Trim(strings.TrimSpace(m), ",.")
		if !strings.ContainsAny(m, "+-*/^") && !strings.Contains(m, "(") {
			continue // a lone number is not a calculation
		}
		if !strings.ContainsAny(m, "0123456789") {
			continue
		}
		if _, err := tools.Evaluate(m); err == nil && len(m) > len(best) {
			best = m
		}
	}
	return best
}

// openPlan is the simulated planner's plan for a request no scenario
// scripts. hasDocs says whether search_docs is among the offered tools.
func openPlan(request string, hasDocs bool) *plan.Plan {
	switch expr := arithmetic(request); {
	case expr != "":
		return &plan.Plan{Goal: "Compute " + expr, Answer: "State the result of the calculation, citing the step.",
			Steps: []plan.Step{{ID: openCalc, Tool: "calc", Args: map[string]any{"expression": expr}}}}
	case timeWords.MatchString(request):
		args := map[string]any{}
		if z := ianaZone.FindString(request); z != "" {
			args["timezone"] = z
		}
		return &plan.Plan{Goal: "Tell the current date and time", Answer: "Give the date, weekday and time, citing the step.",
			Steps: []plan.Step{{ID: openClock, Tool: "now", Args: args}}}
	case hasDocs && docsWords.MatchString(request):
		return &plan.Plan{Goal: "Answer from the reference documents", Answer: "Answer from the best passages, naming their documents.",
			Steps: []plan.Step{{ID: openDocs, Tool: "search_docs", Args: map[string]any{"query": request}}}}
	}
	return &plan.Plan{Goal: "Answer the request", Answer: "Answer the request from the step's result.",
		Steps: []plan.Step{{ID: openAnswer, Task: openTaskMarker + request, Tier: plan.TierFast}}}
}

// openTaskAnswer is the simulated executor's answer to an open task step.
func openTaskAnswer(task string) string {
	request := task
	if i := strings.Index(task, openTaskMarker); i >= 0 {
		request = strings.TrimSpace(task[i+len(openTaskMarker):])
	}
	return fmt.Sprintf("This is the agentd demo, so this answer comes from a simulated model, not a real one: "+
		"it planned your request %q, ran it as a task step and wrote this reply. "+
		"Arithmetic (\"What is 17%% of 2,340?\"), the date and time, and questions about the demo's reference documents "+
		"(\"How should vaccines be kept cold?\") are answered with real tools; for real answers to anything else, "+
		"run agentd with Ollama and its models (make run).", request)
}

// openSummary is the simulated summarizer's answer for an open request,
// written from the step results in its prompt. ok is false when there are
// none it understands.
func openSummary(prompt string) (string, bool) {
	results := map[string]string{}
	for _, m := range stepResult.FindAllStringSubmatch(prompt, -1) {
		results[m[1]] = m[2]
	}
	if r, ok := results[openCalc]; ok {
		var out struct {
			Expression string          `json:"expression"`
			Result     json.RawMessage `json:"result"`
		}
		if json.Unmarshal([]byte(r), &out) == nil && len(out.Result) > 0 {
			if m := percentRaw.FindString(requestLine(prompt)); m != "" {
				return fmt.Sprintf("%s is %s [%s] (computed as %s).", m, out.Result, openCalc, out.Expression), true
			}
			return fmt.Sprintf("%s = %s [%s]", out.Expression, out.Result, openCalc), true
		}
	}
	if r, ok := results[openClock]; ok {
		var out struct{ Clock, Date, Weekday, Timezone string }
		if json.Unmarshal([]byte(r), &out) == nil && out.Date != "" {
			return fmt.Sprintf("It is %s on %s, %s (%s) [%s].", out.Clock, out.Weekday, out.Date, out.Timezone, openClock), true
		}
	}
	if r, ok := results[openDocs]; ok {
		var out struct {
			Results []struct {
				Path string `json:"path"`
				Text string `json:"text"`
			} `json:"results"`
			Note string `json:"note"`
		}
		if json.Unmarshal([]byte(r), &out) == nil {
			if len(out.Results) == 0 {
				return fmt.Sprintf("The documents have nothing on this yet (%s) [%s].", strings.TrimSuffix(out.Note, "."), openDocs), true
			}
			top := out.Results[0]
			text := top.Text
			if strings.HasPrefix(text, "#") { // the document's title: it is named already
				_, text, _ = strings.Cut(text, "\n")
			}
			text = strings.Join(strings.Fields(text), " ")
			if len(text) > 400 {
				text = text[:400] + "…"
			}
			return fmt.Sprintf("From %s: %s [%s]", filepath.Base(top.Path), text, openDocs), true
		}
	}
	if r, ok := results[openAnswer]; ok {
		return r + " [" + openAnswer + "]", true
	}
	return "", false
}

// requestLine is the request in the summarizer's prompt ("Request: ...").
func requestLine(prompt string) string {
	for _, line := range strings.Split(prompt, "\n") {
		if r, ok := strings.CutPrefix(line, "Request: "); ok {
			return r
		}
	}
	return ""
}

// WriteDocs copies the demo's reference documents (markdown notes on the
// vaccine cold chain, solar refrigerators and generators) into dir, for
// search_docs to index.
func WriteDocs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names, err := fs.Glob(docsFS, "testdata/docs/*.md")
	if err != nil {
		return err
	}
	for _, name := range names {
		b, err := docsFS.ReadFile(name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

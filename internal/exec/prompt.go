package exec

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Executor prompts stay within executor.prompt_token_budget: a small
// model's context is the scarce resource, and overshooting makes Ollama
// silently drop the start. The budget is spent in bytes of text, at the
// bytes per token measured for the model the prompt goes to
// (Deps.BytesPerToken), or charsPerToken until it has been measured.
const charsPerToken = 4

// promptChars is executor.prompt_token_budget in bytes of text for model.
func (e *Engine) promptChars(model string) int {
	r := float64(charsPerToken)
	if e.d.BytesPerToken != nil {
		if m := e.d.BytesPerToken(model); m > 0 {
			r = m
		}
	}
	return int(float64(e.cfg.Executor.PromptTokenBudget) * r)
}

// capText cuts s to at most max bytes (when max leaves room for the
// marker), ending with a marker that says how much was cut.
func capText(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	keep := max - len(cutMarker(len(s)))
	if keep < 0 {
		keep = 0
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + cutMarker(len(s)-keep)
}

func cutMarker(n int) string { return fmt.Sprintf("\n…[cut %d bytes]", n) }

// stateEntry is one step in the run state shown to models.
type stateEntry struct {
	id     string
	order  int // completion order: older results are cut first
	status string
	text   string
}

// runState is the condensed state of a run that every executor prompt
// carries (DESIGN): goal, completed steps with their results, pending
// steps, error count.
type runStateView struct {
	goal      string
	completed []stateEntry
	pending   []string
	failed    []stateEntry
	errors    int
}

// renderResults writes only the completed results within budget.
func (v runStateView) renderResults(budget int) string {
	return runStateView{completed: v.completed}.renderBody(budget)
}

// render writes the state in at most budget characters. When it does not
// fit, the oldest and largest results are cut first, each with a marker, so
// the newest results (most likely the inputs of this step) survive whole.
func (v runStateView) render(budget int) string {
	return v.renderBody(budget)
}

func (v runStateView) renderBody(budget int) string {
	entries := append([]stateEntry(nil), v.completed...)
	head := func() string {
		if v.goal == "" && len(v.pending) == 0 && len(v.failed) == 0 && v.errors == 0 {
			return ""
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Goal: %s\n", v.goal)
		if len(v.pending) > 0 {
			fmt.Fprintf(&b, "Pending steps: %s\n", strings.Join(v.pending, ", "))
		}
		for _, f := range v.failed {
			fmt.Fprintf(&b, "Failed step [%s]: %s\n", f.id, f.text)
		}
		fmt.Fprintf(&b, "Errors so far: %d\n", v.errors)
		return b.String()
	}()
	body := func() string {
		if len(entries) == 0 {
			return ""
		}
		var b strings.Builder
		b.WriteString("Completed steps:\n")
		for _, e := range entries {
			fmt.Fprintf(&b, "[%s] %s\n", e.id, e.text)
		}
		return b.String()
	}
	total := func() int { return len(head) + len(body()) }
	if budget <= 0 || total() <= budget {
		return head + body()
	}
	// Cut candidates: oldest first, then largest.
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ea, eb := entries[idx[a]], entries[idx[b]]
		if ea.order != eb.order {
			return ea.order < eb.order
		}
		return len(ea.text) > len(eb.text)
	})
	for _, i := range idx {
		over := total() - budget
		if over <= 0 {
			break
		}
		keep := len(entries[i].text) - over - 24
		if keep < 0 {
			keep = 0
		}
		entries[i].text = capText(entries[i].text, keep)
	}
	out := head + body()
	if len(out) > budget {
		out = capText(out, budget)
	}
	return out
}

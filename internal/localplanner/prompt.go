package localplanner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/plan"
)

// EstimateTokens is the default token estimate: about four bytes a token,
// which is close for English prompts and JSON on large BPE vocabularies and
// far off for others; a planner given a TokenEstimator (WithTokens) uses
// what the model's own counts measured instead.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }

// TokenEstimator estimates how many tokens model counts in text; the model
// client's estimator, calibrated on the counts Ollama reports, implements
// it.
type TokenEstimator interface {
	Estimate(model, text string) int
}

// PromptInput is what a planning prompt is built from.
type PromptInput struct {
	Request  string
	Tools    []plan.ToolInfo
	Examples []config.PlanExample
	MaxSteps int
	// TokenBudget bounds the whole prompt; 0 means no bound.
	TokenBudget int
	// Tokens estimates a text's tokens for the model the prompt goes to;
	// nil means EstimateTokens.
	Tokens func(text string) int
}

// Prompt is a built planning prompt.
type Prompt struct {
	Messages []Message
	// Tools are the tools shown, in the order shown; the plan schema is
	// built from these alone so the model cannot pick a tool it never saw.
	Tools    []plan.ToolInfo
	Dropped  int // tools left out to fit the budget
	Examples int // few-shot examples included
	Tokens   int // estimated prompt tokens
}

const systemTemplate = `You are the planner of agentd. Turn the user's request into a plan: a small set of steps that tools and small models carry out, then an answer that combines their results.

Reply with one JSON object and nothing else:
{"goal": "what the user wants",
 "steps": [
   {"id": "first_step", "tool": "TOOL_NAME", "args": {"ARG": "VALUE"}},
   {"id": "second_step", "task": "instruction for a small model, using ${first_step.FIELD}", "tools": ["TOOL_NAME"], "tier": "fast", "depends_on": ["first_step"]}
 ],
 "answer": "how to combine the step results into the final reply"}

Rules:
- A tool step gives the tool and all of its args; it runs with no model call. Prefer tool steps.
- A task step is an instruction for a small model that may call only the tools it lists (an empty list is allowed). Use tier "fast", or "standard" only for hard reasoning.
- Step ids are unique, lower_snake_case, and say what the step produces.
- To use an earlier step's result write ${step_id} or ${step_id.field} (${step_id.list.0} for a list item), and list that step in depends_on.
- Steps that do not depend on each other run in parallel. Never depend on a step that depends on you.
- Use at most %d steps and only the tools below, with the argument names shown.

Tools (name(arguments): description; ? marks an optional argument):
%s`

// BuildPrompt renders the planning prompt: the system prompt with the plan
// format, the rules and the tool catalog, the few-shot examples as
// user/assistant turns, and the request.
//
// While the whole catalog fits the budget, tools are listed by name, so the
// system prompt is the same for every request and the model server can
// reuse its cached prefix. When it does not fit, tools are ranked by lexical
// overlap with the request and the least relevant are left out until it
// does (at least one tool stays); examples are then dropped from the end
// if the prompt is still too long.
func BuildPrompt(in PromptInput) Prompt {
	tools := sortedTools(in.Tools)
	lines := make([]string, len(tools))
	for i, t := range tools {
		lines[i] = ToolLine(t)
	}
	examples := renderExamples(in.Examples)
	request := in.Request
	estimate := in.Tokens
	if estimate == nil {
		estimate = EstimateTokens
	}
	cost := func(lines []string, examples []Message) int {
		n := estimate(systemTemplate) + estimate(request) + 8
		for _, l := range lines {
			n += estimate(l) + 1
		}
		for _, m := range examples {
			n += estimate(m.Content) + 4
		}
		return n
	}
	dropped := 0
	if in.TokenBudget > 0 && cost(lines, examples) > in.TokenBudget {
		order := rankTools(request, tools)
		ranked := make([]plan.ToolInfo, len(order))
		rankedLines := make([]string, len(order))
		for i, j := range order {
			ranked[i], rankedLines[i] = tools[j], lines[j]
		}
		keep := len(ranked)
		for keep > 1 && cost(rankedLines[:keep], examples) > in.TokenBudget {
			keep--
		}
		// Examples that use a dropped tool go, and their room goes back to
		// tools.
		examples = examplesUsing(examples, ranked[:keep])
		for keep < len(ranked) && cost(rankedLines[:keep+1], examples) <= in.TokenBudget {
			keep++
		}
		dropped = len(ranked) - keep
		tools, lines = ranked[:keep], rankedLines[:keep]
		for len(examples) > 0 && cost(lines, examples) > in.TokenBudget {
			examples = examples[:len(examples)-2]
		}
	}
	examples = examplesUsing(examples, tools)
	if len(lines) == 0 {
		lines = []string{"(no tools: use task steps with an empty tools list)"}
	}
	msgs := []Message{{Role: RoleSystem, Content: fmt.Sprintf(systemTemplate, maxStepsOr(in.MaxSteps), strings.Join(lines, "\n"))}}
	msgs = append(msgs, examples...)
	msgs = append(msgs, Message{Role: RoleUser, Content: request})
	tokens := 0
	for _, m := range msgs {
		tokens += estimate(m.Content) + 4
	}
	return Prompt{Messages: msgs, Tools: tools, Dropped: dropped, Examples: len(examples) / 2, Tokens: tokens}
}

func maxStepsOr(n int) int {
	if n <= 0 {
		return 12
	}
	return n
}

func renderExamples(examples []config.PlanExample) []Message {
	var out []Message
	for _, ex := range examples {
		planText := strings.TrimSpace(ex.Plan)
		var b bytes.Buffer
		if json.Compact(&b, []byte(planText)) == nil {
			planText = b.String()
		}
		out = append(out, Message{Role: RoleUser, Content: ex.Request}, Message{Role: RoleAssistant, Content: planText})
	}
	return out
}

// examplesUsing keeps the example pairs whose plans use only the shown
// tools: an example with a tool the model cannot pick teaches it to fail.
func examplesUsing(examples []Message, tools []plan.ToolInfo) []Message {
	shown := map[string]bool{}
	for _, t := range tools {
		shown[t.Name] = true
	}
	var out []Message
	for i := 0; i+1 < len(examples); i += 2 {
		var p plan.Plan
		ok := json.Unmarshal([]byte(examples[i+1].Content), &p) == nil
		for _, s := range p.Steps {
			if s.Tool != "" && !shown[s.Tool] {
				ok = false
			}
			for _, t := range s.Tools {
				if !shown[t] {
					ok = false
				}
			}
		}
		if ok {
			out = append(out, examples[i], examples[i+1])
		}
	}
	return out
}

// ToolLine is a tool's one-line entry in the catalog:
// "get_weather(city: string, units?: "c"|"f"): Current weather for a city."
func ToolLine(t plan.ToolInfo) string {
	desc := strings.TrimSpace(t.Description)
	if i := strings.IndexByte(desc, '\n'); i >= 0 {
		desc = strings.TrimSpace(desc[:i])
	}
	if len(desc) > 200 {
		desc = strings.TrimSpace(desc[:197]) + "..."
	}
	return fmt.Sprintf("%s(%s): %s", t.Name, argsSummary(t.ArgsSchema), desc)
}

func argsSummary(schema map[string]any) string {
	props, _ := schema["properties"].(map[string]any)
	required := map[string]bool{}
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if s, ok := r.(string); ok {
				required[s] = true
			}
		}
	}
	if req, ok := schema["required"].([]string); ok {
		for _, s := range req {
			required[s] = true
		}
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if required[names[i]] != required[names[j]] {
			return required[names[i]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		opt := "?"
		if required[n] {
			opt = ""
		}
		ps, _ := props[n].(map[string]any)
		parts[i] = fmt.Sprintf("%s%s: %s", n, opt, typeSummary(ps, 0))
	}
	return strings.Join(parts, ", ")
}

func typeSummary(s map[string]any, depth int) string {
	if s == nil || depth > 3 {
		return "any"
	}
	if c, ok := s["const"]; ok {
		b, _ := json.Marshal(c)
		return string(b)
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		vals := make([]string, len(enum))
		for i, e := range enum {
			b, _ := json.Marshal(e)
			vals[i] = string(b)
		}
		return strings.Join(vals, "|")
	}
	switch t := s["type"].(type) {
	case string:
		if t == "array" {
			items, _ := s["items"].(map[string]any)
			return typeSummary(items, depth+1) + "[]"
		}
		return t
	case []any:
		var ts []string
		for _, e := range t {
			if str, ok := e.(string); ok {
				ts = append(ts, str)
			}
		}
		return strings.Join(ts, "|")
	}
	return "any"
}

// rankTools orders tools by how many of the request's words their name,
// description and argument names share, most first; ties keep name order.
func rankTools(request string, tools []plan.ToolInfo) []int {
	want := wordSet(request)
	score := make([]int, len(tools))
	for i, t := range tools {
		for w := range wordSet(toolText(t)) {
			if want[w] {
				score[i]++
			}
		}
	}
	order := make([]int, len(tools))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
	return order
}

// toolText is the text a tool is known by: its name, description and
// argument names.
func toolText(t plan.ToolInfo) string {
	text := t.Name + " " + t.Description
	if props, ok := t.ArgsSchema["properties"].(map[string]any); ok {
		for n := range props {
			text += " " + n
		}
	}
	return text
}

// words splits text into lower-case words of letters and digits; "get_weather"
// is two words.
func words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), notWordRune)
}

// notWordRune reports whether r separates words: neither a letter nor a digit.
func notWordRune(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }

// wordSet is the set of words in text, without stop words and one-letter
// words, with a crude plural folding so "cities" meets "city".
func wordSet(text string) map[string]bool {
	set := map[string]bool{}
	for _, w := range words(text) {
		if len(w) < 2 || stopWords[w] {
			continue
		}
		set[stem(w)] = true
	}
	return set
}

func stem(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss"):
		return w[:len(w)-1]
	}
	return w
}

// IsStopWord reports whether w (lower case) is a word that says nothing
// about a request's subject: request ranking and workflow relatedness
// skip it, and the plan cache never makes it a parameter.
func IsStopWord(w string) bool { return stopWords[w] }

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a all an and any are as at be but by can could do does for from get give has have how i if in into is it its
		me my not of on or our please say should show so some tell than that the their them then there these this those to us was we what
		when where which who why will with would you your`) {
		m[w] = true
	}
	return m
}()

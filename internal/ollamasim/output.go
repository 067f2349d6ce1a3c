package ollamasim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/ollama/ollama/api"
)

// output is what the simulated model produced for one request, before it
// is split into stream chunks.
type output struct {
	content    string
	thinking   string
	toolCalls  []api.ToolCall
	doneReason string
	// loop, when set, is the token the model repeats after content until
	// the server aborts the completion (repeatLimit times in a row); an
	// aborted output has no done_reason and no final chunk.
	loop string
}

// repeatLimit is how many identical tokens in a row Ollama's runner lets
// through before it aborts the completion (llm/server.go: the 31st repeat
// of a token, its 32nd occurrence, is never sent).
const repeatLimit = 31

// aborted reports whether the server gives up on this output.
func (o output) aborted() bool { return o.loop != "" }

// evalTokens is the output's token count: visible text, reasoning, the
// JSON of any tool calls and the repeated tokens of a loop.
func (o output) evalTokens() int {
	n := countTokens(o.content) + countTokens(o.thinking)
	for _, tc := range o.toolCalls {
		n += countTokens(tc.Function.Name) + countTokens(tc.Function.Arguments.String())
	}
	if o.aborted() {
		n += repeatLimit
	}
	return n
}

// allContent is the visible text a client collects, loop included.
func (o output) allContent() string {
	return o.content + strings.Repeat(o.loop, repeatLimit)
}

// withRepeatAbort turns o into a model stuck on its last token: the last
// token of the content (a newline if there is none) repeats until the
// server aborts. Tool calls the model would have written after the loop
// never come.
func withRepeatAbort(o output) output {
	toks := splitTokens(o.content)
	o.loop = "\n"
	if n := len(toks); n > 0 {
		o.loop = toks[n-1]
		o.content = strings.Join(toks[:n-1], "")
	}
	o.toolCalls = nil
	o.doneReason = ""
	return o
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// requestRand is seeded from the server seed and the request content, so a
// given request always yields the same output, whatever the traffic order.
func requestRand(seed uint64, req *api.ChatRequest) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00", normalizeName(req.Model))
	for _, m := range req.Messages {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00", m.Role, m.Content, len(m.ToolCalls))
	}
	h.Write(req.Format)
	for _, t := range req.Tools {
		fmt.Fprintf(h, "%s\x00", t.Function.Name)
	}
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// fillerWords make default replies look like prose of varying length.
var fillerWords = strings.Fields(`the result shows a clear answer based on available data and
	careful review of each step which confirms that values are consistent with expected ranges
	so the plan can proceed while noting minor uncertainty about sources timing and scope`)

func filler(rng *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = fillerWords[rng.IntN(len(fillerWords))]
	}
	return strings.Join(w, " ")
}

func snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

const toolCallIDChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// toolCallID imitates Ollama's "call_" + 8 random [a-z0-9] ids.
func toolCallID(rng *rand.Rand) string {
	b := make([]byte, 8)
	for i := range b {
		b[i] = toolCallIDChars[rng.IntN(len(toolCallIDChars))]
	}
	return "call_" + string(b)
}

// generator produces default and scripted outputs.
type generator struct {
	seed   uint64
	script Script
}

// produce returns the model's output for req: the Script's reply when it
// matches, the default behaviour otherwise.
func (g *generator) produce(m *Model, req *api.ChatRequest) (output, error) {
	rng := requestRand(g.seed, req)
	var out output
	if r, ok := g.scripted(req); ok {
		o, err := g.fromReply(rng, req, r)
		if err != nil {
			return output{}, err
		}
		out = o
	} else {
		o, err := g.defaultOutput(rng, m, req)
		if err != nil {
			return output{}, err
		}
		out = o
	}
	if out.doneReason == "" && !out.aborted() {
		out.doneReason = "stop"
	}
	return out, nil
}

func (g *generator) scripted(req *api.ChatRequest) (Reply, bool) {
	if g.script == nil {
		return Reply{}, false
	}
	return g.script.Respond(req)
}

func (g *generator) fromReply(rng *rand.Rand, req *api.ChatRequest, r Reply) (output, error) {
	out := output{content: r.Content, thinking: r.Thinking, doneReason: r.DoneReason}
	if r.RepeatAbort {
		return withRepeatAbort(out), nil
	}
	for i, tc := range r.ToolCalls {
		args := tc.Arguments
		if args == nil {
			if tool, ok := findTool(req.Tools, tc.Name); ok {
				generated, err := toolArguments(tool, fillerWords[rng.IntN(len(fillerWords))])
				if err != nil {
					return output{}, err
				}
				args = generated
			}
		}
		out.toolCalls = append(out.toolCalls, newToolCall(rng, i, tc.Name, args))
	}
	return out, nil
}

// defaultOutput is the behaviour of a cooperative model: call the first
// offered tool until a tool result is in the conversation, honour
// `format`, otherwise answer in prose.
func (g *generator) defaultOutput(rng *rand.Rand, m *Model, req *api.ChatRequest) (output, error) {
	var out output
	if m.Has(CapThinking) && (req.Think == nil || req.Think.Bool()) {
		out.thinking = "Let me work out what is being asked: " + snippet(lastContent(req.Messages, "user"), 60) + " " + filler(rng, 8+rng.IntN(8)) + "."
	}
	toolResult := lastContent(req.Messages, "tool")
	haveToolResult := hasRole(req.Messages, "tool")
	if len(req.Tools) > 0 && m.Has(CapTools) && !haveToolResult {
		tool := req.Tools[0]
		args, err := toolArguments(tool, fillerWords[rng.IntN(len(fillerWords))])
		if err != nil {
			return output{}, err
		}
		out.toolCalls = []api.ToolCall{newToolCall(rng, 0, tool.Function.Name, args)}
		return out, nil
	}
	var text string
	if haveToolResult {
		text = "Based on the tool result (" + snippet(toolResult, 80) + "), " + filler(rng, 10+rng.IntN(20)) + "."
	} else {
		text = "Simulated answer from " + normalizeName(req.Model) + " to \"" + snippet(lastContent(req.Messages, "user"), 60) + "\": " + filler(rng, 12+rng.IntN(28)) + "."
	}
	switch {
	case !hasFormat(req.Format):
		out.content = text
	case strings.TrimSpace(string(req.Format)) == `"json"`:
		b, _ := json.Marshal(map[string]string{"response": text})
		out.content = string(b)
	default:
		b, err := generateInstanceJSON(req.Format, fillerWords[rng.IntN(len(fillerWords))])
		if err != nil {
			// A schema llama.cpp accepts but the instance generator cannot
			// satisfy (deep recursion): answer as Ollama does for a schema
			// it cannot use.
			return output{}, &httpError{http.StatusInternalServerError, msgInvalidSchema}
		}
		out.content = string(b)
	}
	return out, nil
}

func lastContent(msgs []api.Message, role string) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == role {
			return msgs[i].Content
		}
	}
	return ""
}

func hasRole(msgs []api.Message, role string) bool {
	for _, m := range msgs {
		if m.Role == role {
			return true
		}
	}
	return false
}

func findTool(tools api.Tools, name string) (api.Tool, bool) {
	for _, t := range tools {
		if t.Function.Name == name {
			return t, true
		}
	}
	return api.Tool{}, false
}

// toolSchema returns the tool's parameter schema as decoded JSON.
func toolSchema(tool api.Tool) (map[string]any, error) {
	raw, err := json.Marshal(tool.Function.Parameters)
	if err != nil {
		return nil, fmt.Errorf("encode parameters of tool %q: %w", tool.Function.Name, err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		return nil, fmt.Errorf("decode parameters of tool %q: %w", tool.Function.Name, err)
	}
	if schema["type"] == "" {
		schema["type"] = "object"
	}
	return schema, nil
}

// toolArguments generates schema-valid arguments for tool.
func toolArguments(tool api.Tool, word string) (map[string]any, error) {
	schema, err := toolSchema(tool)
	if err != nil {
		return nil, err
	}
	v, err := generateInstance(schema, word)
	if err != nil {
		return nil, fmt.Errorf("arguments for tool %q: %w", tool.Function.Name, err)
	}
	args, ok := v.(map[string]any)
	if !ok {
		args = map[string]any{}
	}
	return args, nil
}

func newToolCall(rng *rand.Rand, index int, name string, args map[string]any) api.ToolCall {
	a := api.NewToolCallFunctionArguments()
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		a.Set(k, args[k])
	}
	return api.ToolCall{ID: toolCallID(rng), Function: api.ToolCallFunction{Index: index, Name: name, Arguments: a}}
}

// truncateOutput keeps the first maxTokens tokens of the output and marks
// it done_reason "length". A tool call that does not fit degrades to the
// partial text the model had emitted, as Ollama's parser leaves it.
func truncateOutput(o output, maxTokens int) output {
	if maxTokens < 0 {
		maxTokens = 0
	}
	if o.aborted() {
		// The limit comes before the abort: the loop is just text.
		o.content = o.allContent()
		o.loop = ""
	}
	if len(o.toolCalls) > 0 {
		var b strings.Builder
		for _, tc := range o.toolCalls {
			fmt.Fprintf(&b, `<tool_call>{"name": %q, "arguments": %s}`, tc.Function.Name, tc.Function.Arguments.String())
		}
		o.content = b.String()
		o.toolCalls = nil
	}
	thinkTokens := countTokens(o.thinking)
	if thinkTokens >= maxTokens {
		o.thinking = cutTokens(o.thinking, maxTokens)
		o.content = ""
	} else {
		o.content = cutTokens(o.content, maxTokens-thinkTokens)
	}
	o.doneReason = "length"
	return o
}

// cutTokens keeps the first n tokens (4 runes each) of s.
func cutTokens(s string, n int) string {
	r := []rune(s)
	if len(r) <= n*4 {
		return s
	}
	return string(r[:n*4])
}

package ollamasim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/ollamatest"
)

// TestDifferential sends the same wire-level requests to a real Ollama
// (v0.17.4 with the tiny random-weight models, from ollamatest) and to the
// simulator serving models of the same names, and fails on any difference
// a client can observe once the noise (generated text, durations,
// timestamps, digests, token counts) is replaced by placeholders. The real
// server is the truth: a difference is a simulator bug.
//
// Run it with AGENTD_TEST_OLLAMA_BIN=../shared/ollama/ollama (from the
// repository root): go test ./internal/ollamasim -run Differential
func TestDifferential(t *testing.T) {
	// /api/ps shows the whole server: on the server every test package
	// shares, another package's call (keep_alive 0, another num_ctx) shows
	// in it.
	ollama, simURL := realAndSim(t)

	for _, c := range differentialCases() {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				observe(t, ollama.URL, *c.before)
				observe(t, simURL, *c.before)
			}
			want := observe(t, ollama.URL, c)
			if c.check != nil {
				c.check(t, want)
			}
			if e := c.real; e != nil && (want.Status != e.status || want.errorText() != e.err) {
				t.Errorf("the real server no longer answers as measured: got %d %q, want %d %q (update the simulator and this case)",
					want.Status, want.errorText(), e.status, e.err)
			}
			got := observe(t, simURL, c)
			if testing.Verbose() {
				rb, _ := json.Marshal(want.tree())
				sb, _ := json.Marshal(got.tree())
				t.Logf("real %s\nsim  %s", rb, sb)
			}
			var diffs []string
			diffTrees("", want.tree(), got.tree(), &diffs)
			if len(diffs) > 0 {
				t.Errorf("%s %s %s\nsimulator differs from the real server:\n  %s", method(c), c.path, c.body, strings.Join(diffs, "\n  "))
			}
		})
	}
}

// realAndSim starts the two servers a comparison needs: a real Ollama
// (a private one when one can be started, so that no other test package's
// request lands between two of these; the shared one otherwise, a user's
// own) and a simulator serving the same models (differentialConfig).
func realAndSim(t *testing.T) (*ollamatest.Server, string) {
	t.Helper()
	ollama := ollamatest.Shared(t)
	if os.Getenv(ollamatest.EnvBin) != "" {
		ollama = ollamatest.Start(t)
	}
	sim := ollamasim.New(differentialConfig())
	simURL, err := sim.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return ollama, simURL
}

// expiresIn replaces each model's expires_at by expires_in, how far ahead
// it is in whole minutes (5 for the default keep_alive), after project.
func expiresIn(project func(any) any) func(any) any {
	return func(v any) any {
		v = project(v)
		m, _ := v.(map[string]any)
		list, _ := m["models"].([]any)
		for _, e := range list {
			em, _ := e.(map[string]any)
			if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(em["expires_at"])); err == nil {
				delete(em, "expires_at")
				em["expires_in"] = fmt.Sprintf("%.0f minutes", time.Until(at).Minutes())
			}
		}
		return v
	}
}

func method(c wireCase) string {
	if c.method == "" {
		return http.MethodPost
	}
	return c.method
}

// repeatPrompt is a prompt on which the tiny model, decoding greedily,
// emits the same token at once and keeps emitting it, so the real server
// aborts after 31 of them (llm/server.go's token repeat limit). The
// simulator is scripted to loop on the same prompt.
const repeatPrompt = "a"

// differentialConfig is a simulator serving the real server's two models
// as a CPU-only machine (size_vram 0), the loop scripted for repeatPrompt.
func differentialConfig() ollamasim.Config {
	model := func(name string, caps ...string) ollamasim.Model {
		return ollamasim.Model{Name: name, Size: 442_602, ParameterSize: "109K", QuantizationLevel: "unknown",
			Family: "llama", ContextLength: 2048, EmbeddingLength: 64, Capabilities: caps,
			PrefillTPS: 5000, DecodeTPS: 1000, Parameters: ollamatest.ShowParameters()}
	}
	return ollamasim.Config{
		Models: []ollamasim.Model{
			model(ollamatest.Plain, ollamasim.CapCompletion),
			model(ollamatest.Tools, ollamasim.CapCompletion, ollamasim.CapTools),
		},
		VRAM:   -1,
		Seed:   1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Script: ollamasim.NewRules(ollamasim.Rule{
			Match:   regexp.MustCompile("^" + repeatPrompt + "$"),
			Replies: []ollamasim.Reply{{Content: "[", RepeatAbort: true}},
		}),
	}
}

// Measured answers of the real server.
var (
	runnerStopped = &expectation{http.StatusInternalServerError, ollamasim.MsgRunnerStopped}
	invalidSchema = &expectation{http.StatusInternalServerError, "invalid JSON schema in format"}
	accepted      = &expectation{http.StatusOK, ""}
)

func differentialCases() []wireCase {
	// Every native request that runs the model carries num_thread 1: the
	// tiny model is fastest on one thread, and a runner's options must stay
	// the same from request to request or Ollama reloads it.
	const opts = `"num_thread":1`
	chat := func(model, content, extra string) string {
		return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]%s}`, model, content, extra)
	}
	plain, tools := ollamatest.Plain, ollamatest.Tools
	weather := `[{"type":"function","function":{"name":"get_weather","description":"weather","parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}}}]`

	cases := []wireCase{
		// Service endpoints.
		{name: "version", method: http.MethodGet, path: "/api/version"},
		{name: "tags", method: http.MethodGet, path: "/api/tags", project: onlyModels(plain+":latest", tools+":latest")},
		{name: "show plain", path: "/api/show", body: `{"model":"tiny"}`},
		{name: "show tools", path: "/api/show", body: `{"model":"tiny-tools"}`},
		{name: "show by name", path: "/api/show", body: `{"name":"tiny"}`},

		// Errors, their wording and status.
		{name: "chat unknown model", path: "/api/chat", body: chat("nope", "hello", ""),
			real: &expectation{404, "model 'nope' not found"}},
		{name: "chat unknown model not streamed", path: "/api/chat", body: chat("nope", "hello", `,"stream":false`)},
		{name: "generate unknown model", path: "/api/generate", body: `{"model":"nope","prompt":"hello"}`},
		{name: "embed unknown model", path: "/api/embed", body: `{"model":"nope","input":"hello"}`,
			real: &expectation{404, `model "nope" not found, try pulling it first`}},
		{name: "show unknown model", path: "/api/show", body: `{"model":"nope"}`},
		{name: "chat tools to a model without tools", path: "/api/chat", body: chat(plain, "hello", `,"tools":`+weather),
			real: &expectation{400, "registry.ollama.ai/library/tiny:latest does not support tools"}},
		{name: "chat tools to a model without tools not streamed", path: "/api/chat", body: chat(plain, "hello", `,"stream":false,"tools":`+weather)},
		{name: "chat malformed body", path: "/api/chat", body: `{"model":"tiny",`},
		{name: "chat empty body", path: "/api/chat", body: ``},
		{name: "chat messages of the wrong type", path: "/api/chat", body: `{"model":"tiny","messages":"hello"}`},
		{name: "chat no model", path: "/api/chat", body: `{"messages":[{"role":"user","content":"hello"}]}`},
		{name: "generate no model", path: "/api/generate", body: `{"prompt":"hello"}`},
		{name: "generate malformed body", path: "/api/generate", body: `{"model":`},
		{name: "embed malformed body", path: "/api/embed", body: `{"model":`},
		{name: "embed empty body", path: "/api/embed", body: ``},
		{name: "embed no model", path: "/api/embed", body: `{"input":"hello"}`},
		{name: "embed input of the wrong type", path: "/api/embed", body: `{"model":"tiny","input":[1,2]}`},
		{name: "show empty body", path: "/api/show", body: ``},
		{name: "show no model", path: "/api/show", body: `{}`},

		{name: "chat think on a model without thinking", path: "/api/chat", body: chat(plain, "hello", `,"think":true`)},
		{name: "chat top_logprobs out of range", path: "/api/chat", body: chat(plain, "hello", `,"top_logprobs":21`)},
		{name: "chat invalid model name", path: "/api/chat", body: chat("a b", "hello", "")},
		{name: "generate invalid model name", path: "/api/generate", body: `{"model":"a b","prompt":"hello"}`},
		{name: "show invalid model name", path: "/api/show", body: `{"model":"a b"}`},
		{name: "embed invalid model name", path: "/api/embed", body: `{"model":"a b","input":"hello"}`},
		{name: "generate top_logprobs out of range", path: "/api/generate", body: `{"model":"tiny","prompt":"hello","top_logprobs":-1}`},
		{name: "root", method: http.MethodGet, path: "/"},

		// Loading: no messages (or an empty list) only loads the model.
		{name: "chat empty messages loads", path: "/api/chat", body: `{"model":"tiny","messages":[],"options":{` + opts + `}}`},
		{name: "chat no messages loads", path: "/api/chat", body: `{"model":"tiny","options":{` + opts + `}}`},
		{name: "generate no prompt loads", path: "/api/generate", body: `{"model":"tiny","options":{` + opts + `}}`},
		{name: "ps with num_ctx", method: http.MethodGet, path: "/api/ps", project: expiresIn(onlyModels(plain + ":latest")),
			before: &wireCase{path: "/api/generate", body: `{"model":"tiny","keep_alive":"10m","options":{"num_ctx":1024,` + opts + `}}`}},
		{name: "chat with the full model name", path: "/api/chat", exact: []string{"eval_count"},
			body: chat("registry.ollama.ai/library/tiny:latest", "hello", `,"stream":false,"options":{"num_predict":4,"seed":1,`+opts+`}`)},
		{name: "chat format json", path: "/api/chat", exact: []string{"eval_count"},
			body: chat(plain, "hello", `,"stream":false,"format":"json","options":{"num_predict":4,"seed":1,`+opts+`}`)},
		{name: "generate raw has no context", path: "/api/generate", exact: []string{"eval_count"},
			body: `{"model":"tiny","prompt":"hello","raw":true,"stream":false,"options":{"num_predict":4,"seed":1,` + opts + `}}`},
		{name: "chat unload", path: "/api/chat", body: `{"model":"tiny","keep_alive":0}`},
		{name: "ps", method: http.MethodGet, path: "/api/ps", project: expiresIn(onlyModels(plain + ":latest")),
			before: &wireCase{path: "/api/generate", body: `{"model":"tiny","options":{` + opts + `}}`},
			check: func(t *testing.T, o observation) {
				if m, _ := o.Body.(map[string]any); m == nil || len(m["models"].([]any)) != 1 {
					t.Fatalf("the real server should list tiny as loaded: %v", o.Body)
				}
			}},

		// format that is not "json" or a schema object.
		{name: "format a string", path: "/api/chat", body: chat(plain, "hello", `,"format":"xml","options":{`+opts+`}`),
			real: &expectation{500, `invalid format: "\"xml\""; expected "json" or a valid JSON Schema object`}},
		{name: "format a string not streamed", path: "/api/chat", body: chat(plain, "hello", `,"format":"xml","stream":false,"options":{`+opts+`}`)},
		{name: "format a number", path: "/api/chat", body: chat(plain, "hello", `,"format":123,"stream":false,"options":{`+opts+`}`)},
		{name: "format an array", path: "/api/generate", body: `{"model":"tiny","prompt":"hello","format":[1],"options":{` + opts + `}}`},
		{name: "format null is no format", path: "/api/chat", body: chat(plain, "hello", `,"format":null,"stream":false,"options":{"num_predict":4,`+opts+`}`),
			exact: []string{"eval_count"}},

		// Stream endings.
		{name: "chat stream ends with stop", path: "/api/chat",
			body: chat(plain, "hello", `,"format":{"type":"boolean"},"options":{"seed":1,`+opts+`}`)},
		{name: "chat not streamed ends with stop", path: "/api/chat",
			body: chat(plain, "hello", `,"format":{"type":"boolean"},"stream":false,"options":{"seed":1,`+opts+`}`)},
		{name: "chat stream cut by num_predict", path: "/api/chat", exact: []string{"eval_count"},
			body: chat(plain, "hello", `,"options":{"num_predict":8,"seed":1,`+opts+`}`)},
		{name: "chat not streamed cut by num_predict", path: "/api/chat", exact: []string{"eval_count"},
			body: chat(plain, "hello", `,"stream":false,"options":{"num_predict":8,"seed":1,`+opts+`}`)},
		{name: "generate stream cut by num_predict", path: "/api/generate", exact: []string{"eval_count"},
			body: `{"model":"tiny","prompt":"hello","options":{"num_predict":8,"seed":1,` + opts + `}}`},
		{name: "generate not streamed cut by num_predict", path: "/api/generate", exact: []string{"eval_count"},
			body: `{"model":"tiny","prompt":"hello","stream":false,"options":{"num_predict":8,"seed":1,` + opts + `}}`},
		{name: "chat stream repeat abort", path: "/api/chat",
			body: chat(plain, repeatPrompt, `,"options":{"temperature":0,"repeat_penalty":1,`+opts+`}`)},
		{name: "chat not streamed repeat abort", path: "/api/chat",
			body: chat(plain, repeatPrompt, `,"stream":false,"options":{"temperature":0,"repeat_penalty":1,`+opts+`}`)},
		{name: "generate stream repeat abort", path: "/api/generate",
			body: `{"model":"tiny","prompt":"` + repeatPrompt + `","options":{"temperature":0,"repeat_penalty":1,` + opts + `}}`},
		{name: "generate not streamed repeat abort", path: "/api/generate",
			body: `{"model":"tiny","prompt":"` + repeatPrompt + `","stream":false,"options":{"temperature":0,"repeat_penalty":1,` + opts + `}}`},
		{name: "chat tools accepted by a tools model", path: "/api/chat", outcome: true,
			body: chat(tools, "hello", `,"stream":false,"tools":`+weather+`,"options":{"num_predict":4,`+opts+`}`)},

		// Embeddings.
		{name: "embed one input", path: "/api/embed", body: `{"model":"tiny","input":"hello world","options":{` + opts + `}}`},
		{name: "embed two inputs", path: "/api/embed", body: `{"model":"tiny","input":["hello","world"],"options":{` + opts + `}}`},
		{name: "embed with dimensions", path: "/api/embed", body: `{"model":"tiny","input":"hello","dimensions":8,"options":{` + opts + `}}`},
		{name: "embed empty input loads", path: "/api/embed", body: `{"model":"tiny","input":"","options":{` + opts + `}}`},
		{name: "embed no input loads", path: "/api/embed", body: `{"model":"tiny","options":{` + opts + `}}`},
	}
	cases = append(cases, grammarCases(chat, opts)...)
	return append(cases, openAICases()...)
}

// grammarCases are JSON schemas llama.cpp's grammar converter rejects
// ("invalid JSON schema in format") or whose grammar makes the runner
// crash (repetitions above 2000, escapes GBNF does not know), and near
// misses it accepts.
func grammarCases(chat func(model, content, extra string) string, opts string) []wireCase {
	schemas := []struct {
		name   string
		schema string
		real   *expectation
	}{
		{"maxLength 2000", `{"type":"string","maxLength":2000}`, accepted},
		{"maxLength 2001", `{"type":"string","maxLength":2001}`, runnerStopped},
		{"minLength 2001", `{"type":"string","minLength":2001}`, runnerStopped},
		{"maxItems 2001", `{"type":"array","items":{"type":"integer"},"maxItems":2001}`, accepted},
		{"maxItems 3000", `{"type":"array","items":{"type":"integer"},"maxItems":3000}`, runnerStopped},
		{"maxItems 3000 without items", `{"type":"array","maxItems":3000}`, accepted},
		{"minItems 2002", `{"type":"array","items":{"type":"integer"},"minItems":2002}`, runnerStopped},
		{"nested maxLength 2001", `{"type":"object","properties":{"a":{"type":"string","maxLength":2001}}}`, runnerStopped},
		{"additionalProperties maxLength 3000", `{"type":"object","additionalProperties":{"type":"string","maxLength":3000}}`, runnerStopped},
		{"anyOf branch maxLength 3000", `{"anyOf":[{"type":"string","maxLength":3000},{"type":"integer"}]}`, runnerStopped},
		{"enum wins over maxLength", `{"type":"string","enum":["a","b"],"maxLength":3000}`, accepted},
		{"pattern repetition 2001", `{"type":"string","pattern":"^[a-z]{1,2001}$"}`, runnerStopped},
		{"anchored pattern", `{"type":"string","pattern":"^[a-z]+$"}`, accepted},
		{"unanchored pattern", `{"type":"string","pattern":"[a-z]+"}`, invalidSchema},
		{"pattern without $", `{"type":"string","pattern":"^[a-z]+"}`, invalidSchema},
		{"nested unanchored pattern", `{"type":"object","properties":{"a":{"type":"string","pattern":"abc"}},"required":["a"]}`, invalidSchema},
		{`pattern \d`, `{"type":"string","pattern":"^\\d+$"}`, runnerStopped},
		{`pattern [\d]`, `{"type":"string","pattern":"^[\\d]+$"}`, runnerStopped},
		{`pattern \-`, `{"type":"string","pattern":"^a\\-b$"}`, runnerStopped},
		{`pattern \.`, `{"type":"string","pattern":"^a\\.b$"}`, accepted},
		{"pattern bad repetition", `{"type":"string","pattern":"^a{2,x}$"}`, invalidSchema},
		{"not", `{"not":{"type":"string"}}`, invalidSchema},
		{"not beside a type", `{"type":"string","not":{"const":"a"}}`, accepted},
		{"unknown type", `{"type":"date"}`, invalidSchema},
		{"no type and no keyword", `{"description":"x"}`, invalidSchema},
		{"boolean subschema", `{"type":"object","properties":{"a":true}}`, invalidSchema},
		{"format not a string", `{"type":"string","format":5}`, invalidSchema},
		{"minLength not a number", `{"type":"string","minLength":"3"}`, invalidSchema},
		{"ref to a missing definition", `{"type":"object","properties":{"a":{"$ref":"#/$defs/missing"}}}`, invalidSchema},
		{"ref to the root", `{"$ref":"#"}`, invalidSchema},
		{"ref to a definition", `{"type":"object","properties":{"x":{"$ref":"#/$defs/a"}},"$defs":{"a":{"type":"string"}}}`, accepted},
		{"unused bad definition", `{"$defs":{"a":{"type":"string","pattern":"zz"}},"type":"object","properties":{"x":{"type":"integer"}}}`, accepted},
		{"empty schema", `{}`, accepted},
		{"type list", `{"type":["string","null"]}`, accepted},
	}
	var cases []wireCase
	for _, s := range schemas {
		cases = append(cases, wireCase{name: "grammar " + s.name, path: "/api/chat", outcome: true, real: s.real,
			body: chat(ollamatest.Plain, "hello", `,"stream":false,"format":`+s.schema+`,"options":{"num_predict":4,`+opts+`}`)})
	}
	// The same rejections as they reach a streaming client, and through
	// generate: an error before any chunk is a plain JSON error.
	cases = append(cases,
		wireCase{name: "grammar crash streamed", path: "/api/chat", real: runnerStopped,
			body: chat(ollamatest.Plain, "hello", `,"format":{"type":"string","maxLength":2001},"options":{`+opts+`}`)},
		wireCase{name: "grammar invalid streamed", path: "/api/chat", real: invalidSchema,
			body: chat(ollamatest.Plain, "hello", `,"format":{"type":"string","pattern":"[a-z]+"},"options":{`+opts+`}`)},
		wireCase{name: "grammar invalid generate", path: "/api/generate", real: invalidSchema,
			body: `{"model":"tiny","prompt":"hello","format":{"not":{}},"options":{` + opts + `}}`},
		wireCase{name: "grammar crash generate not streamed", path: "/api/generate", real: runnerStopped,
			body: `{"model":"tiny","prompt":"hello","stream":false,"format":{"type":"string","minLength":3000},"options":{` + opts + `}}`},
		wireCase{name: "grammar invalid schema with no messages still loads", path: "/api/chat",
			body: `{"model":"tiny","format":{"not":{}},"options":{` + opts + `}}`},
	)
	return cases
}

// openAICases go through Ollama's OpenAI-compatible endpoint. It cannot
// pass num_thread, so the runner reloads with default options: they come
// last, after every native case.
func openAICases() []wireCase {
	v1 := func(extra string) string {
		return `{"model":"tiny","messages":[{"role":"user","content":"hello"}]` + extra + `}`
	}
	boolean := `,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"boolean"}}}`
	return []wireCase{
		{name: "openai not streamed", path: "/v1/chat/completions", body: v1(boolean + `,"seed":1`)},
		{name: "openai streamed", path: "/v1/chat/completions", body: v1(boolean + `,"seed":1,"stream":true`)},
		{name: "openai streamed with usage", path: "/v1/chat/completions", body: v1(boolean + `,"seed":1,"stream":true,"stream_options":{"include_usage":true}`)},
		{name: "openai max_tokens", path: "/v1/chat/completions", body: v1(`,"seed":1,"max_tokens":8`), exact: []string{"completion_tokens"}},
		{name: "openai max_tokens streamed", path: "/v1/chat/completions", body: v1(`,"seed":1,"max_tokens":8,"stream":true`)},
		{name: "openai repeat abort", path: "/v1/chat/completions",
			body: `{"model":"tiny","messages":[{"role":"user","content":"` + repeatPrompt + `"}],"temperature":0}`},
		{name: "openai repeat abort streamed", path: "/v1/chat/completions",
			body: `{"model":"tiny","messages":[{"role":"user","content":"` + repeatPrompt + `"}],"temperature":0,"stream":true}`},
		{name: "openai unknown model", path: "/v1/chat/completions", body: `{"model":"nope","messages":[{"role":"user","content":"hello"}]}`},
		{name: "openai unknown model streamed", path: "/v1/chat/completions", body: `{"model":"nope","messages":[{"role":"user","content":"hello"}],"stream":true}`},
		{name: "openai empty messages", path: "/v1/chat/completions", body: `{"model":"tiny","messages":[]}`},
		{name: "openai malformed body", path: "/v1/chat/completions", body: `{"model":"tiny",`},
		{name: "openai empty body", path: "/v1/chat/completions", body: ``},
		{name: "openai tools to a model without tools", path: "/v1/chat/completions",
			body: v1(`,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]`)},
		{name: "openai invalid schema", path: "/v1/chat/completions",
			body: v1(`,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"[a-z]+"}}}`)},
		{name: "openai invalid schema streamed", path: "/v1/chat/completions",
			body: v1(`,"stream":true,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"[a-z]+"}}}`)},
		{name: "openai grammar crash", path: "/v1/chat/completions",
			body: v1(`,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","maxLength":2001}}}`)},
	}
}

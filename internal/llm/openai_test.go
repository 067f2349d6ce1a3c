package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

// fakeOpenAI is an OpenAI-compatible server whose answer to each chat call
// is set by the test; it keeps the request bodies and headers it got.
type fakeOpenAI struct {
	srv *httptest.Server

	mu      sync.Mutex
	bodies  []map[string]any
	auth    []string
	answers []func(w http.ResponseWriter)
	models  []string
}

func newFakeOpenAI(t *testing.T, answers ...func(w http.ResponseWriter)) *fakeOpenAI {
	f := &fakeOpenAI{answers: answers, models: []string{"m"}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r.URL.Path {
		case "/v1/models":
			data := []map[string]any{}
			for _, m := range f.models {
				data = append(data, map[string]any{"id": m, "object": "model"})
			}
			writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
		case "/v1/chat/completions":
			var body map[string]any
			raw, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Errorf("request body: %v", err)
			}
			f.bodies = append(f.bodies, body)
			f.auth = append(f.auth, r.Header.Get("Authorization"))
			if len(f.answers) == 0 {
				t.Errorf("unexpected chat call %d", len(f.bodies))
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			a := f.answers[0]
			if len(f.answers) > 1 {
				f.answers = f.answers[1:]
			}
			a(w)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenAI) URL() string { return f.srv.URL + "/v1" }

func (f *fakeOpenAI) chats() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.bodies...)
}

// sse writes events as a streaming chat completion, then [DONE].
func sse(events ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

func delta(content string) string {
	return fmt.Sprintf(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":%q},"finish_reason":null}]}`, content)
}

func finish(reason string) string {
	return fmt.Sprintf(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":%q}]}`, reason)
}

func usageEvent(prompt, completion int) string {
	return fmt.Sprintf(`{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, prompt, completion, prompt+completion)
}

func status(code int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func openaiClient(t *testing.T, url string, opts ...Option) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := config.OllamaConfig{
		Endpoints:      []config.EndpointConfig{{Name: "oai", URL: url, Kind: config.KindOpenAI, Models: []string{"m"}, ParallelSlots: 1}},
		RequestTimeout: config.Duration(30 * time.Second),
		MaxRetries:     2,
	}
	c, err := New(cfg, config.ModelsConfig{}, slog.New(slog.DiscardHandler),
		append([]Option{WithRecorder(rec), WithBackoff(func(int) time.Duration { return 0 })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func TestOpenAIStreamedContent(t *testing.T) {
	f := newFakeOpenAI(t, sse(delta("The "), delta("result "), delta("is 51."), finish("stop"), usageEvent(20, 3)))
	c, rec := openaiClient(t, f.URL())
	var chunks int
	resp, err := c.Chat(t.Context(), Request{Model: "m", Messages: userMsg("hi"),
		OnChunk: func(api.ChatResponse) error { chunks++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content != "The result is 51." || resp.DoneReason != "stop" || resp.Message.Role != "assistant" {
		t.Errorf("resp = %+v", resp)
	}
	if chunks != 4 {
		t.Errorf("chunks = %d, want 3 of text and the final one", chunks)
	}
	us := rec.all()
	if len(us) != 1 || us[0].PromptTokens != 20 || us[0].OutputTokens != 3 || us[0].Endpoint != "oai" || us[0].Where != WhereLocal || us[0].ErrorClass != "" {
		t.Errorf("usage = %+v", us)
	}
	body := f.chats()[0]
	if body["stream"] != true || fmt.Sprint(body["stream_options"]) != "map[include_usage:true]" || body["model"] != "m" {
		t.Errorf("body = %v", body)
	}
	if _, ok := body["keep_alive"]; ok {
		t.Errorf("body has Ollama's keep_alive: %v", body)
	}
}

// The request carries the conversation with its tool calls tied to their
// results, the tools, the schema as response_format, max_tokens for
// num_predict, the sampling options and the key.
func TestOpenAIRequestBody(t *testing.T) {
	t.Setenv("AGENTD_TEST_OAI_KEY", "sk-test")
	f := newFakeOpenAI(t, sse(delta("{}"), finish("stop")))
	rec := &recorder{}

	c, err := New(config.OllamaConfig{Endpoints: []config.EndpointConfig{{Name: "oai", URL: f.URL(), Kind: config.KindOpenAI,
		Models: []string{"m"}, APIKeyEnv: "AGENTD_TEST_OAI_KEY"}}}, config.ModelsConfig{}, nil, WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	args := api.NewToolCallFunctionArguments()
	args.Set("path", "/tmp/a")
	var tool api.Tool
	if err := json.Unmarshal([]byte(`{"type":"function","function":{"name":"read_file","description":"reads","parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}}`), &tool); err != nil {
		t.Fatal(err)
	}
	schema := json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`)
	_, err = c.Chat(t.Context(), Request{Model: "m", Format: schema, Tools: api.Tools{tool}, NumPredict: 64,
		Options: map[string]any{"temperature": 0.2, "seed": 7, "stop": []any{"END"}, "num_ctx": 9999},
		Messages: []api.Message{
			{Role: "user", Content: "read it"},
			{Role: "assistant", ToolCalls: []api.ToolCall{{Function: api.ToolCallFunction{Name: "read_file", Arguments: args}}}},
			{Role: "tool", ToolName: "read_file", Content: "contents"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	body := f.chats()[0]
	rf, _ := json.Marshal(body["response_format"])
	if want := `{"json_schema":{"name":"response","schema":{"properties":{"answer":{"type":"string"}},"required":["answer"],"type":"object"},"strict":true},"type":"json_schema"}`; string(rf) != want {
		t.Errorf("response_format = %s\nwant %s", rf, want)
	}
	if body["max_tokens"] != 64.0 || body["temperature"] != 0.2 || body["seed"] != 7.0 || fmt.Sprint(body["stop"]) != "[END]" {
		t.Errorf("options: %v", body)
	}
	if _, ok := body["num_ctx"]; ok {
		t.Errorf("an Ollama load option was sent: %v", body)
	}
	tools, _ := json.Marshal(body["tools"])
	if !strings.Contains(string(tools), `"function":{"description":"reads","name":"read_file","parameters":{"properties":{"path":{"type":"string"}},"required":["path"],"type":"object"}}`) ||
		!strings.Contains(string(tools), `"type":"function"`) {
		t.Errorf("tools = %s", tools)
	}
	msgs := body["messages"].([]any)
	call := msgs[1].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)
	fn := call["function"].(map[string]any)
	if fn["name"] != "read_file" || fn["arguments"] != `{"path":"/tmp/a"}` || call["type"] != "function" || call["id"] == "" {
		t.Errorf("assistant tool call = %v", call)
	}
	if result := msgs[2].(map[string]any); result["role"] != "tool" || result["tool_call_id"] != call["id"] {
		t.Errorf("tool result = %v, want tied to call %v", result, call["id"])
	}
	f.mu.Lock()
	if f.auth[0] != "Bearer sk-test" {
		t.Errorf("Authorization = %q", f.auth[0])
	}
	f.mu.Unlock()
	// format "json" asks for any JSON object.
	if _, err := c.Chat(t.Context(), Request{Model: "m", Messages: userMsg("x"), Format: json.RawMessage(`"json"`)}); err != nil {
		t.Fatal(err)
	}
	if rf := f.chats()[1]["response_format"]; fmt.Sprint(rf) != "map[type:json_object]" {
		t.Errorf("response_format for \"json\" = %v", rf)
	}
}

// Tool calls stream in pieces by index; several in one reply come back
// whole and in order.
func TestOpenAIToolCalls(t *testing.T) {
	f := newFakeOpenAI(t, sse(
		`{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read_file","arguments":""}}]},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":"}}]},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"list_dir","arguments":"{\"dir\":\"/\"}"}}]},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"/a\"}"}}]},"finish_reason":null}]}`,
		finish("tool_calls"), usageEvent(30, 12)))
	c, rec := openaiClient(t, f.URL())
	resp, err := c.Chat(t.Context(), Request{Model: "m", Messages: userMsg("go")})
	if err != nil {
		t.Fatal(err)
	}
	tcs := resp.Message.ToolCalls
	if len(tcs) != 2 || resp.DoneReason != "stop" {
		t.Fatalf("tool calls = %+v, done = %q", tcs, resp.DoneReason)
	}
	if p, _ := tcs[0].Function.Arguments.Get("path"); tcs[0].ID != "call_a" || tcs[0].Function.Name != "read_file" || p != "/a" {
		t.Errorf("first call = %+v", tcs[0])
	}
	if d, _ := tcs[1].Function.Arguments.Get("dir"); tcs[1].ID != "call_b" || tcs[1].Function.Name != "list_dir" || d != "/" || tcs[1].Function.Index != 1 {
		t.Errorf("second call = %+v", tcs[1])
	}
	if u := rec.all()[0]; u.OutputTokens != 12 || u.PromptTokens != 30 {
		t.Errorf("usage = %+v", u)
	}
}

// finish_reason "length" is the cut at the output limit: the Ollama path's
// truncated class, with the partial reply.
func TestOpenAILengthCut(t *testing.T) {
	f := newFakeOpenAI(t, sse(delta("a b c d"), finish("length"), usageEvent(5, 4)))
	c, rec := openaiClient(t, f.URL())
	_, err := c.Chat(t.Context(), Request{Model: "m", Messages: userMsg("x"), NumPredict: 4})
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassTruncated || !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want truncated", err)
	}
	if e.Partial == nil || e.Partial.Message.Content != "a b c d" || e.Partial.Usage.OutputTokens != 4 || !strings.Contains(e.Message, "num_predict 4") {
		t.Errorf("error = %+v, partial = %+v", e, e.Partial)
	}
	if u := rec.all(); len(u) != 1 || u[0].ErrorClass != ClassTruncated || u[0].DoneReason != "length" {
		t.Errorf("usage = %+v", u)
	}
	if f.chats()[0]["max_tokens"] != 4.0 {
		t.Errorf("max_tokens = %v", f.chats()[0]["max_tokens"])
	}
}

// Failures answer with the same classes as Ollama's: busy is retried, a
// missing model is not, a 5xx is transient and a 4xx a refusal.
func TestOpenAIErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []func(http.ResponseWriter)
		class    Class
		attempts int
		says     string
	}{
		{"429 then ok", []func(http.ResponseWriter){status(429, `{"error":{"message":"rate limited","type":"rate_limit"}}`), sse(delta("ok"), finish("stop"))}, "", 2, ""},
		{"503 throughout", []func(http.ResponseWriter){status(503, `{"error":{"message":"server overloaded"}}`)}, ClassBusy, 3, "busy"},
		{"404 model", []func(http.ResponseWriter){status(404, `{"error":{"message":"The model 'm' does not exist.","type":"NotFoundError","code":404}}`)}, ClassModelNotFound, 1, "does not exist"},
		{"500 transient", []func(http.ResponseWriter){status(500, `{"error":"engine hiccup"}`), sse(delta("ok"), finish("stop"))}, "", 2, ""},
		{"400 refused", []func(http.ResponseWriter){status(400, `{"error":{"message":"'messages' must be non-empty"}}`)}, ClassOther, 1, "must be non-empty"},
		{"401 key", []func(http.ResponseWriter){status(401, ``)}, ClassOther, 1, "api_key_env"},
		{"no tools", []func(http.ResponseWriter){status(400, `{"error":{"message":"registry.ollama.ai/library/tiny:latest does not support tools"}}`)}, ClassNoToolSupport, 1, "tool calling"},
		{"error mid-stream", []func(http.ResponseWriter){sse(delta("par"), `{"error":{"message":"decode failed"}}`)}, ClassMidStream, 1, "decode failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOpenAI(t, tc.answers...)
			c, rec := openaiClient(t, f.URL())
			_, err := c.Chat(t.Context(), Request{Model: "m", Messages: userMsg("x")})
			if got := ClassOf(err); got != tc.class {
				t.Fatalf("class = %q (%v), want %q", got, err, tc.class)
			}
			if len(f.chats()) != tc.attempts || len(rec.all()) != tc.attempts {
				t.Errorf("sent %d, recorded %d, want %d attempts", len(f.chats()), len(rec.all()), tc.attempts)
			}
			if err != nil && !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

// A stream that breaks off before [DONE] and its finish is not a reply;
// with the server still up it is the aborted class, as on Ollama.
func TestOpenAIBrokenStream(t *testing.T) {
	f := newFakeOpenAI(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", delta("half"))
	})
	c, _ := openaiClient(t, f.URL())
	_, err := c.Chat(t.Context(), Request{Model: "m", Messages: userMsg("x")})
	if ClassOf(err) != ClassAborted {
		t.Fatalf("err = %v, want aborted", err)
	}
}

// Calls are routed by the configured models; residency calls are refused
// for an OpenAI-compatible endpoint, and its status says it is external.
func TestOpenAIRoutingAndResidency(t *testing.T) {
	f := newFakeOpenAI(t, sse(delta("from openai"), finish("stop")))
	fo := newFake(t)
	c2, err := New(config.OllamaConfig{Endpoints: []config.EndpointConfig{
		{Name: "ollama", URL: fo.URL()},
		{Name: "oai", URL: f.URL(), Kind: config.KindOpenAI, Models: []string{"served:7b"}},
	}}, config.ModelsConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c2.Chat(t.Context(), Request{Model: "served:7b", Messages: userMsg("x")})
	if err != nil || resp.Message.Content != "from openai" || resp.Usage.Endpoint != "oai" {
		t.Fatalf("resp = %+v, %v", resp, err)
	}
	if fo.count("/api/chat") != 0 {
		t.Errorf("the Ollama endpoint got the call")
	}
	if _, err := c2.PS(t.Context(), "oai"); err == nil || !strings.Contains(err.Error(), "OpenAI-compatible") {
		t.Errorf("PS on the openai endpoint = %v", err)
	}
	eps := c2.Endpoints()
	if eps[0].External || !eps[1].External {
		t.Errorf("endpoints = %+v", eps)
	}
	if ok, err := c2.SupportsTools(t.Context(), "served:7b"); !ok || err != nil {
		t.Errorf("SupportsTools = %v, %v", ok, err)
	}
}

func TestOpenAICheckServedModels(t *testing.T) {
	f := newFakeOpenAI(t)
	c, err := New(config.OllamaConfig{Endpoints: []config.EndpointConfig{
		{Name: "oai", URL: f.URL(), Kind: config.KindOpenAI, Models: []string{"m", "missing"}}}}, config.ModelsConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.CheckServedModels(t.Context())
	if len(p) != 1 || !strings.Contains(p[0], "missing") {
		t.Errorf("problems = %q", p)
	}
}

func TestOpenAIKeyEnvUnset(t *testing.T) {
	_, err := New(config.OllamaConfig{Endpoints: []config.EndpointConfig{{Name: "oai", URL: "http://127.0.0.1:1/v1",
		Kind: config.KindOpenAI, Models: []string{"m"}, APIKeyEnv: "AGENTD_TEST_SURELY_UNSET"}}}, config.ModelsConfig{}, nil)
	if err == nil || !strings.Contains(err.Error(), "api_key_env") {
		t.Errorf("err = %v", err)
	}
}

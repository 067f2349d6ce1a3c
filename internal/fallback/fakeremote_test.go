package fallback

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

// fakeRemote is a remote model API on 127.0.0.1 that records every byte it
// receives and answers in the OpenAI, Anthropic and Ollama shapes, or fails
// as told.
type fakeRemote struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []recorded
	// Behaviour, set under mu.
	delay     time.Duration
	throttle  int // response bytes per second; 0 = unthrottled
	failCode  int // answer this HTTP status...
	failLeft  int // ...this many times (-1 = always)
	reset     bool
	hang      bool
	planFor   func(user string) string
	onRequest func(path string, body []byte)
	probeBody int
	truncate  bool // answer as if max_tokens cut the output off
}

type recorded struct {
	Path   string
	Header http.Header
	Body   []byte
}

func newFakeRemote(t *testing.T) *fakeRemote {
	t.Helper()
	f := &fakeRemote{probeBody: 16 << 10}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "openai") })
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "anthropic") })
	mux.HandleFunc("POST /api/chat", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "ollama") })
	mux.HandleFunc("GET /probe", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n, failing := f.probeBody, f.reset
		f.mu.Unlock()
		if failing {
			f.resetConn(w)
			return
		}
		f.write(w, http.StatusOK, []byte(strings.Repeat("x", n)))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRemote) set(fn func(f *fakeRemote)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeRemote) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeRemote) serve(w http.ResponseWriter, r *http.Request, shape string) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	delay, failCode, reset, hang, planFor, onRequest, truncate := f.delay, 0, f.reset, f.hang, f.planFor, f.onRequest, f.truncate
	if f.failLeft != 0 {
		failCode = f.failCode
		if f.failLeft > 0 {
			f.failLeft--
		}
	}
	f.mu.Unlock()
	if onRequest != nil {
		onRequest(r.URL.Path, body)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case hang:
		<-r.Context().Done()
		return
	case reset:
		f.resetConn(w)
		return
	case failCode != 0:
		f.write(w, failCode, errorBody(shape, failCode))
		return
	}
	user := userMessage(shape, body)
	content := fmt.Sprintf(`{"goal":%q,"steps":[{"id":"s1","tool":"notify","args":{"text":%q}}],"answer":"done"}`, user, user)
	if planFor != nil {
		content = planFor(user)
	}
	in, out := len(body)/4, len(content)/4
	var resp any
	switch shape {
	case "openai":
		resp = map[string]any{"id": "chatcmpl-1", "object": "chat.completion",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}}
	case "anthropic":
		resp = map[string]any{"id": "msg_1", "type": "message", "role": "assistant",
			"content":     []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "submit_plan", "input": json.RawMessage(content)}},
			"stop_reason": "tool_use", "usage": map[string]any{"input_tokens": in, "output_tokens": out}}
	case "ollama":
		resp = map[string]any{"model": "m", "message": map[string]any{"role": "assistant", "content": content},
			"done": true, "done_reason": "stop", "prompt_eval_count": in, "eval_count": out}
	}
	if truncate {
		m := resp.(map[string]any)
		switch shape {
		case "openai":
			m["choices"].([]any)[0].(map[string]any)["finish_reason"] = "length"
		case "anthropic":
			m["stop_reason"] = "max_tokens"
		case "ollama":
			m["done_reason"] = "length"
		}
	}
	b, _ := json.Marshal(resp)
	f.write(w, http.StatusOK, b)
}

func errorBody(shape string, code int) []byte {
	msg := map[int]string{429: "Rate limit reached", 500: "internal server error", 401: "invalid x-api-key"}[code]
	switch shape {
	case "anthropic":
		b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": "api_error", "message": msg}})
		return b
	case "ollama":
		b, _ := json.Marshal(map[string]any{"error": msg})
		return b
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "error"}})
	return b
}

func userMessage(shape string, body []byte) string {
	var v struct {
		Messages []chatMessage `json:"messages"`
	}
	_ = json.Unmarshal(body, &v)
	for _, m := range v.Messages {
		if m.Role == "user" {
			return m.Content
		}
	}
	return ""
}

// write sends b, throttled to f.throttle bytes a second when set.
func (f *fakeRemote) write(w http.ResponseWriter, code int, b []byte) {
	f.mu.Lock()
	rate := f.throttle
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(code)
	if rate <= 0 {
		_, _ = w.Write(b)
		return
	}
	chunk := max(rate/20, 1) // every 50 ms
	fl := w.(http.Flusher)
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		fl.Flush()
		b = b[n:]
		if len(b) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// resetConn drops the connection with a TCP reset.
func (f *fakeRemote) resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Test fixtures shared by the package's tests.

const testModel = "test-model"

func openStore(t *testing.T) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testConfig is fallback config pointed at the fake remote, with a model
// priced at $1 per million input tokens and $4 per million output tokens.
func testConfig(f *fakeRemote, provider string) config.FallbackConfig {
	c := config.Default().Fallback
	c.Enabled = true
	c.Provider = provider
	c.BaseURL = f.srv.URL
	if provider == "openai" {
		c.BaseURL += "/v1"
	}
	c.Model = testModel
	c.MaxTokens = 1000
	c.Timeout = config.Duration(5 * time.Second)
	c.Prices = map[string]config.PriceConfig{testModel: {InputPerMTok: 1, OutputPerMTok: 4}}
	c.Caps = config.CapsConfig{}
	c.Alerts = config.AlertsConfig{}
	c.Link.ProbeURL = f.srv.URL + "/probe"
	return c
}

func newTestGate(t *testing.T, store *db.Store, cfg config.FallbackConfig, pub Publisher) *Gate {
	t.Helper()
	prov, err := NewProvider(cfg, ProviderOptions{Key: "sk-test-key-1234567890abcdef", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGate(context.Background(), GateOptions{Config: cfg, Store: store, Provider: prov, Publisher: pub, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recordingPublisher keeps every event.
type recordingPublisher struct {
	mu     sync.Mutex
	events []publishedEvent
}

type publishedEvent struct {
	Type, RunID string
	Data        any
}

func (p *recordingPublisher) Emit(runID string, data events.Payload) events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, publishedEvent{data.EventType(), runID, data})
	return events.Event{Type: data.EventType(), RunID: runID}
}

func (p *recordingPublisher) ofType(typ string) []publishedEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []publishedEvent
	for _, e := range p.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

const testSchema = `{"type":"object","properties":{"goal":{"type":"string"},"steps":{"type":"array"},"answer":{"type":"string"}},"required":["goal","steps"]}`

package llm

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"

	"github.com/agentd/agentd/internal/config"
)

// fakeOllama is a real HTTP server on 127.0.0.1 that speaks Ollama's wire
// format, with a scripted /api/chat.
type fakeOllama struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	calls     map[string]int
	chatBody  []map[string]any // every /api/chat body, decoded loosely
	embedBody []map[string]any

	// chat answers /api/chat; n counts the chat calls from 1.
	chat  func(w http.ResponseWriter, r *http.Request, n int)
	ps    []api.ProcessModelResponse
	tags  []api.ListModelResponse
	caps  map[string][]model.Capability
	embed func(w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T) *fakeOllama {
	t.Helper()
	f := &fakeOllama{t: t, calls: map[string]int{}, caps: map[string][]model.Capability{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOllama) URL() string { return f.srv.URL }

func (f *fakeOllama) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeOllama) lastChat() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.chatBody) == 0 {
		f.t.Fatal("no /api/chat request received")
	}
	return f.chatBody[len(f.chatBody)-1]
}

func (f *fakeOllama) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var decoded map[string]any
	_ = json.Unmarshal(body, &decoded)
	f.mu.Lock()
	f.calls[r.URL.Path]++
	n := f.calls[r.URL.Path]
	switch r.URL.Path {
	case "/api/chat":
		f.chatBody = append(f.chatBody, decoded)
	case "/api/embed":
		f.embedBody = append(f.embedBody, decoded)
	}
	chat, ps, tags, embed := f.chat, f.ps, f.tags, f.embed
	caps, hasCaps := f.caps[str(decoded["model"])]
	f.mu.Unlock()

	switch r.URL.Path {
	case "/api/chat":
		if chat == nil {
			writeChunks(w, done("ok", "stop"))
			return
		}
		chat(w, r, n)
	case "/api/ps":
		writeJSON(w, http.StatusOK, api.ProcessResponse{Models: orEmpty(ps)})
	case "/api/tags":
		writeJSON(w, http.StatusOK, api.ListResponse{Models: orEmpty(tags)})
	case "/api/show":
		if !hasCaps {
			writeError(w, http.StatusNotFound, "model '"+str(decoded["model"])+"' not found")
			return
		}
		writeJSON(w, http.StatusOK, api.ShowResponse{Capabilities: caps, ModelInfo: map[string]any{}})
	case "/api/embed":
		embed(w, r)
	case "/api/version":
		writeJSON(w, http.StatusOK, map[string]string{"version": "0.17.4"})
	default:
		http.NotFound(w, r)
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers the way Ollama's handlers do: a status and
// {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeChunks streams NDJSON chunks, flushing each.
func writeChunks(w http.ResponseWriter, chunks ...any) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	for _, c := range chunks {
		_ = json.NewEncoder(w).Encode(c)
		w.(http.Flusher).Flush()
	}
}

// part is a content chunk; done is the final chunk with metrics.
func part(content string) api.ChatResponse {
	return api.ChatResponse{Model: "m", CreatedAt: time.Unix(0, 0).UTC(), Message: api.Message{Role: "assistant", Content: content}}
}

func done(content, reason string) api.ChatResponse {
	c := part(content)
	c.Done, c.DoneReason = true, reason
	c.Metrics = api.Metrics{
		TotalDuration: 900 * time.Millisecond, LoadDuration: 300 * time.Millisecond,
		PromptEvalCount: 42, PromptEvalDuration: 100 * time.Millisecond,
		EvalCount: 7, EvalDuration: 400 * time.Millisecond,
	}
	return c
}

// hangUp closes the connection without an HTTP answer.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// deadURL is an address on 127.0.0.1 where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// recorder keeps every Usage it is given.
type recorder struct {
	mu     sync.Mutex
	usages []Usage
}

func (r *recorder) RecordModelCall(_ context.Context, u Usage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.usages = append(r.usages, u)
	return nil
}

func (r *recorder) all() []Usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Usage(nil), r.usages...)
}

var _ Recorder = (*recorder)(nil)

// waits records the backoff the client asked for instead of sleeping.
type waits struct {
	mu      sync.Mutex
	retries []int
}

func (w *waits) backoff(retry int) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retries = append(w.retries, retry)
	return 0
}

func (w *waits) got() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.retries...)
}

type endpointURL struct{ name, url string }

// newClient builds a client over the given endpoints with three retries and
// no sleeping.
func newClient(t *testing.T, eps []endpointURL, models config.ModelsConfig, opts ...Option) *Client {
	t.Helper()
	cfg := config.OllamaConfig{
		RequestTimeout: config.Duration(30 * time.Second),
		ConnectTimeout: config.Duration(2 * time.Second),
		MaxRetries:     3,
		RetryBackoff:   config.Duration(time.Millisecond),
	}
	for _, e := range eps {
		cfg.Endpoints = append(cfg.Endpoints, config.EndpointConfig{Name: e.name, URL: e.url, ParallelSlots: 1})
	}
	c, err := New(cfg, models, slog.New(slog.DiscardHandler), append([]Option{WithBackoff(func(int) time.Duration { return 0 })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func single(f *fakeOllama) []endpointURL { return []endpointURL{{"local", f.URL()}} }

func userMsg(s string) []api.Message { return []api.Message{{Role: "user", Content: s}} }

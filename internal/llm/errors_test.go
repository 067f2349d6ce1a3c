package llm

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

// Ollama's own wording (server/routes.go, server/sched.go, llm/server.go).
const (
	msgNotFound   = `model "qwen3:8b" not found, try pulling it first`
	msgNoTools    = "registry.ollama.ai/library/qwen3:8b does not support tools"
	msgBusy       = "server busy, please try again.  maximum pending requests exceeded"
	msgSystemMem  = "model requires more system memory (9.1 GiB) than is available (4.0 GiB)"
	msgCUDAMemory = "cudaMalloc failed: out of memory"
)

func TestChatErrorClasses(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		class    Class
		sentinel error
		attempts int    // requests the server saw: 1 + retries
		message  string // exact operator message; "{url}" is the server's URL
	}{
		{"model not pulled", 404, msgNotFound, ClassModelNotFound, ErrModelNotFound, 1,
			"model qwen3:8b is not pulled on endpoint local — run `ollama pull qwen3:8b`"},
		{"no tool support", 400, msgNoTools, ClassNoToolSupport, ErrNoToolSupport, 1,
			"model qwen3:8b does not support tool calling — fall back to schema-constrained tool selection or use a model with the tools capability"},
		{"busy is retried, then reported", 503, msgBusy, ClassBusy, ErrBusy, 4,
			"ollama at {url} is busy (its request queue is full) — lower agentd's concurrency or raise OLLAMA_MAX_QUEUE / OLLAMA_NUM_PARALLEL on that server"},
		{"system memory", 500, msgSystemMem, ClassOutOfMemory, ErrOutOfMemory, 1,
			"model qwen3:8b does not fit in memory on endpoint local — use a smaller model or quantization, lower num_ctx in models.options, or unload other models"},
		{"gpu memory", 500, msgCUDAMemory, ClassOutOfMemory, ErrOutOfMemory, 1,
			"model qwen3:8b does not fit in memory on endpoint local — use a smaller model or quantization, lower num_ctx in models.options, or unload other models"},
		{"bad gateway is transient", 502, "upstream gone", ClassTransient, ErrTransient, 4,
			"a proxy in front of ollama at {url} answered 502 — check that the server behind it is up"},
		{"other server error", 500, "template: bad", ClassOther, ErrOther, 1,
			"ollama at {url} answered 500 to chat qwen3:8b: template: bad"},
		{"unauthorized", 401, "unauthorized", ClassOther, ErrOther, 1,
			"chat at {url} answered 401 unauthorized — agentd sends no credentials; check that ollama.endpoints points at an Ollama server and not at a proxy that requires sign-in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.chat = func(w http.ResponseWriter, r *http.Request, n int) { writeError(w, tt.status, tt.body) }
			rec := &recorder{}
			c := newClient(t, single(f), config.ModelsConfig{}, WithRecorder(rec))
			_, err := c.Chat(context.Background(), Request{Model: "qwen3:8b", Messages: userMsg("x")})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Class != tt.class || !errors.Is(err, tt.sentinel) {
				t.Errorf("class = %s, want %s", e.Class, tt.class)
			}
			if want := strings.ReplaceAll(tt.message, "{url}", f.URL()); e.Message != want {
				t.Errorf("message =\n%s\nwant\n%s", e.Message, want)
			}
			if e.Status != tt.status || e.Endpoint != "local" || e.Model != "qwen3:8b" {
				t.Errorf("status %d endpoint %q model %q", e.Status, e.Endpoint, e.Model)
			}
			if got := f.count("/api/chat"); got != tt.attempts || e.Attempts != tt.attempts {
				t.Errorf("server saw %d requests, error says %d attempts, want %d", got, e.Attempts, tt.attempts)
			}
			// One record per request the server saw, numbered, each with
			// the failure it met.
			recs := rec.all()
			if len(recs) != tt.attempts {
				t.Fatalf("recorded %d calls, want one per attempt (%d): %+v", len(recs), tt.attempts, recs)
			}
			for i, r := range recs {
				if r.ErrorClass != tt.class || r.Attempt != i+1 {
					t.Errorf("record %d: attempt %d class %s, want attempt %d class %s", i, r.Attempt, r.ErrorClass, i+1, tt.class)
				}
			}
		})
	}
}

func TestChatUnreachable(t *testing.T) {
	url := deadURL(t)
	c := newClient(t, []endpointURL{{"local", url}}, config.ModelsConfig{})
	_, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want unreachable", err)
	}
	var e *Error
	errors.As(err, &e)
	if want := "ollama not reachable at " + url + " — is `ollama serve` running?"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Error() = %q should keep the cause", err.Error())
	}
	if st := c.Endpoints(); st[0].Healthy || st[0].LastError == "" {
		t.Errorf("endpoint status = %+v, want unhealthy with the error", st[0])
	}
}

func TestChatRetries(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(t *testing.T, w http.ResponseWriter)
		onChunk bool
		want    Class // "" for success
		calls   int
		retries []int
	}{
		{"503 twice then success", func(t *testing.T, w http.ResponseWriter) { writeError(w, 503, msgBusy) }, false, "", 3, []int{1, 2}},
		{"connection closed before an answer", hangUp, false, "", 3, []int{1, 2}},
		// The server is still up: it ended the generation itself (the
		// repeated-token abort). Asking the same again gets the same.
		{"stream ended before the final chunk by a server still up is aborted, not retried",
			func(t *testing.T, w http.ResponseWriter) { writeChunks(w, part("par")) }, false, ClassAborted, 1, nil},
		{"aborted after chunks reached the caller",
			func(t *testing.T, w http.ResponseWriter) { writeChunks(w, part("par")) }, true, ClassAborted, 1, nil},
		{"empty 503 body", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(503) }, false, "", 3, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 2 {
					tt.fail(t, w)
					return
				}
				writeChunks(w, part("fine"), done("", "stop"))
			}
			w := &waits{}
			c := newClient(t, single(f), config.ModelsConfig{}, WithBackoff(w.backoff))
			req := Request{Model: "m", Messages: userMsg("x")}
			if tt.onChunk {
				req.OnChunk = func(api.ChatResponse) error { return nil }
			}
			resp, err := c.Chat(context.Background(), req)
			if ClassOf(err) != tt.want {
				t.Fatalf("err = %v (class %q), want class %q", err, ClassOf(err), tt.want)
			}
			if tt.want == "" && (resp.Message.Content != "fine" || resp.Usage.Attempts != tt.calls) {
				t.Errorf("response %q after %d attempts", resp.Message.Content, resp.Usage.Attempts)
			}
			if got := f.count("/api/chat"); got != tt.calls {
				t.Errorf("server saw %d requests, want %d", got, tt.calls)
			}
			if got := w.got(); !slices.Equal(got, tt.retries) {
				t.Errorf("backoff asked for retries %v, want %v", got, tt.retries)
			}
		})
	}
}

func TestRetryWaitRespectsContext(t *testing.T) {
	f := newFake(t)
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) { writeError(w, 503, msgBusy) }
	c := newClient(t, single(f), config.ModelsConfig{}, WithBackoff(func(int) time.Duration { return time.Hour }))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Chat(ctx, Request{Model: "m", Messages: userMsg("x")})
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want canceled by the deadline", err)
	}
	if time.Since(start) > 3*time.Second || f.count("/api/chat") != 1 {
		t.Errorf("took %s and %d requests, want a prompt return after 1", time.Since(start), f.count("/api/chat"))
	}
}

func TestRequestTimeoutIsTransientAndNotRetried(t *testing.T) {
	f := newFake(t)
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		writeChunks(w, part("slow"))
		<-r.Context().Done()
	}
	cfg := config.OllamaConfig{
		Endpoints:      []config.EndpointConfig{{Name: "local", URL: f.URL()}},
		RequestTimeout: config.Duration(100 * time.Millisecond),
		MaxRetries:     3,
	}
	c, err := New(cfg, config.ModelsConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
	if !errors.Is(err, ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want transient timeout", err)
	}
	if !strings.Contains(err.Error(), "did not finish within 100ms — raise ollama.request_timeout") {
		t.Errorf("message = %q", err.Error())
	}
	if f.count("/api/chat") != 1 {
		t.Errorf("%d requests, want 1", f.count("/api/chat"))
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		err  error
		want Class
	}{
		{nil, ""},
		{errors.New("plain"), ClassOther},
		{&Error{Class: ClassBusy}, ClassBusy},
		{errors.Join(errors.New("ctx"), &Error{Class: ClassTruncated}), ClassTruncated},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("ClassOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if errors.Is(&Error{Class: ClassBusy}, ErrTransient) {
		t.Error("a busy error must not match ErrTransient")
	}
}

func TestBackoff(t *testing.T) {
	base := 500 * time.Millisecond
	tests := []struct {
		retry    int
		j        float64
		min, max time.Duration
	}{
		{0, 0.5, 0, 0},
		{1, 0, 250 * time.Millisecond, 250 * time.Millisecond},
		{1, 0.999, 250 * time.Millisecond, 500 * time.Millisecond},
		{3, 0, time.Second, time.Second},
		{3, 0.999, time.Second, 2 * time.Second},
		{20, 0.999, 15 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		got := Backoff(base, tt.retry, tt.j)
		if got < tt.min || got > tt.max {
			t.Errorf("Backoff(%s, %d, %v) = %s, want within [%s, %s]", base, tt.retry, tt.j, got, tt.min, tt.max)
		}
	}
	if Backoff(0, 3, 0.5) != 0 {
		t.Error("zero base must not wait")
	}
}

package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

func TestChatStreamsAndRecordsUsage(t *testing.T) {
	f := newFake(t)
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		writeChunks(w, part("Hel"), part("lo"), done("", "stop"))
	}
	rec := &recorder{}
	c := newClient(t, single(f), config.ModelsConfig{}, WithRecorder(rec))

	var chunks []string
	resp, err := c.Chat(context.Background(), Request{
		Model: "qwen3:8b", Messages: userMsg("hi"),
		RunID: "run-1", StepID: "s2", Purpose: "task",
		OnChunk: func(ch api.ChatResponse) error { chunks = append(chunks, ch.Message.Content); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chunks, "|"); got != "Hel|lo|" {
		t.Errorf("chunks = %q, want %q", got, "Hel|lo|")
	}
	if resp.Message.Content != "Hello" || resp.Message.Role != "assistant" || resp.DoneReason != "stop" {
		t.Errorf("response = %+v", resp)
	}
	u := resp.Usage
	want := Usage{
		RunID: "run-1", StepID: "s2", Purpose: "task", Op: "chat", Model: "qwen3:8b", Where: WhereLocal,
		Endpoint: "local", URL: f.URL(), PromptTokens: 42, OutputTokens: 7,
		LoadDuration: 300 * time.Millisecond, PromptEvalDuration: 100 * time.Millisecond,
		EvalDuration: 400 * time.Millisecond, TotalDuration: 900 * time.Millisecond,
		DoneReason: "stop", Attempt: 1, Attempts: 1, Started: u.Started, Wall: u.Wall,
	}
	if u != want {
		t.Errorf("usage =\n%+v\nwant\n%+v", u, want)
	}
	if u.Started.IsZero() || u.Wall <= 0 {
		t.Errorf("usage has no start or wall time: %+v", u)
	}
	recs := rec.all()
	if len(recs) != 1 || recs[0] != u {
		t.Errorf("recorded %+v, want exactly the response's usage", recs)
	}
}

func TestChatToolCallsAndThinkingAccumulate(t *testing.T) {
	f := newFake(t)
	args := api.NewToolCallFunctionArguments()
	args.Set("city", "Oslo")
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		think := part("")
		think.Message.Thinking = "need weather"
		call := part("")
		call.Message.ToolCalls = []api.ToolCall{{Function: api.ToolCallFunction{Name: "get_weather", Arguments: args}}}
		writeChunks(w, think, call, done("", "stop"))
	}
	c := newClient(t, single(f), config.ModelsConfig{})
	resp, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("weather?")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Thinking != "need weather" {
		t.Errorf("thinking = %q", resp.Message.Thinking)
	}
	if len(resp.Message.ToolCalls) != 1 || resp.Message.ToolCalls[0].Function.Name != "get_weather" {
		t.Fatalf("tool calls = %+v", resp.Message.ToolCalls)
	}
	if v, _ := resp.Message.ToolCalls[0].Function.Arguments.Get("city"); v != "Oslo" {
		t.Errorf("argument city = %v", v)
	}
}

type fixedKeepAlive time.Duration

func (k fixedKeepAlive) KeepAliveFor(string) time.Duration { return time.Duration(k) }

func TestChatRequestBody(t *testing.T) {
	models := config.ModelsConfig{
		KeepAlive: config.Duration(30 * time.Minute),
		Options: map[string]config.ModelOptions{
			"qwen3:8b": {NumCtx: 8192, NumPredict: 512, Temperature: 0.2},
			"gemma3":   {NumCtx: 4096},
		},
	}
	schema := json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}}}`)
	tools := api.Tools{{Type: "function", Function: api.ToolFunction{Name: "read_file"}}}
	tests := []struct {
		name    string
		policy  KeepAlivePolicy
		req     Request
		options map[string]any // exactly the options expected in the body
		keep    any            // expected keep_alive, nil when absent
	}{
		{
			name:    "fixed options from config",
			req:     Request{Model: "qwen3:8b"},
			options: map[string]any{"num_ctx": 8192.0, "num_predict": 512.0, "temperature": 0.2},
			keep:    "30m0s",
		},
		{
			name: "per-call cannot change num_ctx but may change num_predict and sampling",
			req: Request{Model: "qwen3:8b", NumPredict: 100,
				Options: map[string]any{"num_ctx": 2048, "num_gpu": 1, "temperature": 0.7, "top_p": 0.9}},
			options: map[string]any{"num_ctx": 8192.0, "num_predict": 100.0, "temperature": 0.7, "top_p": 0.9},
			keep:    "30m0s",
		},
		{
			name:    "untagged config name matches :latest, policy sets keep_alive",
			policy:  fixedKeepAlive(-1),
			req:     Request{Model: "gemma3:latest"},
			options: map[string]any{"num_ctx": 4096.0},
			keep:    -1.0,
		},
		{
			name:    "explicit keep_alive wins over the policy",
			policy:  fixedKeepAlive(time.Hour),
			req:     Request{Model: "other", KeepAlive: 5 * time.Minute, Options: map[string]any{"num_ctx": 99}},
			options: map[string]any{},
			keep:    "5m0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var opts []Option
			if tt.policy != nil {
				opts = append(opts, WithKeepAlive(tt.policy))
			}
			c := newClient(t, single(f), models, opts...)
			tt.req.Messages = userMsg("hi")
			tt.req.Format = schema
			tt.req.Tools = tools
			if _, err := c.Chat(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			body := f.lastChat()
			got, _ := json.Marshal(body["options"])
			want, _ := json.Marshal(tt.options)
			if string(got) != string(want) {
				t.Errorf("options = %s, want %s", got, want)
			}
			if body["keep_alive"] != tt.keep {
				t.Errorf("keep_alive = %v, want %v", body["keep_alive"], tt.keep)
			}
			if body["stream"] != true {
				t.Errorf("stream = %v, want true", body["stream"])
			}
			if f, _ := json.Marshal(body["format"]); string(f) != `{"properties":{"a":{"type":"string"}},"type":"object"}` {
				t.Errorf("format = %s", f)
			}
			if tl, _ := body["tools"].([]any); len(tl) != 1 {
				t.Errorf("tools = %v", body["tools"])
			}
		})
	}
}

func TestChatCallbackErrorStopsTheCall(t *testing.T) {
	f := newFake(t)
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		writeChunks(w, part("a"), part("b"), done("", "stop"))
	}
	c := newClient(t, single(f), config.ModelsConfig{})
	stop := errors.New("enough")
	seen := 0
	_, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x"),
		OnChunk: func(api.ChatResponse) error { seen++; return stop }})
	if !errors.Is(err, stop) || ClassOf(err) != ClassOther {
		t.Fatalf("err = %v (class %s), want the callback's error, class other", err, ClassOf(err))
	}
	if seen != 1 || f.count("/api/chat") != 1 {
		t.Errorf("callback saw %d chunks over %d requests, want 1 and 1", seen, f.count("/api/chat"))
	}
}

func TestChatCancelMidStream(t *testing.T) {
	f := newFake(t)
	serverSawCancel := make(chan struct{})
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		writeChunks(w, part("first"))
		select {
		case <-r.Context().Done():
			close(serverSawCancel)
		case <-time.After(10 * time.Second):
		}
	}
	rec := &recorder{}
	c := newClient(t, single(f), config.ModelsConfig{}, WithRecorder(rec))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	_, err := c.Chat(ctx, Request{Model: "m", Messages: userMsg("x"),
		OnChunk: func(api.ChatResponse) error { cancel(); return nil }})
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Chat returned after %s, want promptly", elapsed)
	}
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled wrapping context.Canceled", err)
	}
	if want := "chat m on endpoint local was canceled by the caller (context canceled)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	select {
	case <-serverSawCancel:
	case <-time.After(3 * time.Second):
		t.Fatal("server never saw its request context canceled")
	}
	if f.count("/api/chat") != 1 {
		t.Errorf("%d chat requests, want 1 (no retry after cancel)", f.count("/api/chat"))
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].ErrorClass != ClassCanceled {
		t.Errorf("recorded %+v, want one canceled call", recs)
	}
}

func TestChatTruncated(t *testing.T) {
	models := config.ModelsConfig{Options: map[string]config.ModelOptions{"m": {NumPredict: 64}}}
	t.Run("error carries the partial reply", func(t *testing.T) {
		f := newFake(t)
		f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
			writeChunks(w, part(`{"goal": "cut`), done("", "length"))
		}
		rec := &recorder{}
		c := newClient(t, single(f), models, WithRecorder(rec))
		resp, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
		if resp != nil || !errors.Is(err, ErrTruncated) {
			t.Fatalf("resp %v, err %v, want truncated", resp, err)
		}
		var e *Error
		errors.As(err, &e)
		if e.Partial == nil || e.Partial.Message.Content != `{"goal": "cut` || e.Partial.Usage.DoneReason != "length" {
			t.Errorf("partial = %+v", e.Partial)
		}
		if want := "model m stopped at its output limit (num_predict 64, produced 7 tokens) on endpoint local"; !strings.HasPrefix(e.Message, want) {
			t.Errorf("message = %q, want prefix %q", e.Message, want)
		}
		if f.count("/api/chat") != 1 {
			t.Errorf("%d requests, want 1", f.count("/api/chat"))
		}
		if recs := rec.all(); len(recs) != 1 || recs[0].ErrorClass != ClassTruncated || recs[0].OutputTokens != 7 {
			t.Errorf("recorded %+v", recs)
		}
	})
	t.Run("a regeneration changes the sampling", func(t *testing.T) {
		f := newFake(t)
		f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
			writeChunks(w, part("again"), done("", "stop"))
		}
		c := newClient(t, single(f), models)
		if _, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x"), Regeneration: 1,
			Options: map[string]any{"temperature": 0}}); err != nil {
			t.Fatal(err)
		}
		opts, _ := f.lastChat()["options"].(map[string]any)
		if opts["temperature"] == 0.0 || opts["seed"] != 1.0 || opts["repeat_penalty"] == nil {
			t.Errorf("options of a regeneration = %v, want temperature above 0, seed 1 and a repeat penalty", opts)
		}
		if f.count("/api/chat") != 1 {
			t.Errorf("%d requests, want 1: the client never asks again by itself", f.count("/api/chat"))
		}
	})
}

func TestChatMidStreamError(t *testing.T) {
	const runnerStopped = "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details"
	f := newFake(t)
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		writeChunks(w, part("half an ans"), map[string]string{"error": runnerStopped})
	}
	c := newClient(t, single(f), config.ModelsConfig{})
	_, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
	if !errors.Is(err, ErrMidStream) {
		t.Fatalf("err = %v (class %s), want mid-stream", err, ClassOf(err))
	}
	var e *Error
	errors.As(err, &e)
	if !strings.Contains(e.Message, runnerStopped) || !strings.Contains(e.Message, f.URL()) {
		t.Errorf("message %q should quote Ollama and name the URL", e.Message)
	}
	if e.Partial == nil || e.Partial.Message.Content != "half an ans" {
		t.Errorf("partial = %+v", e.Partial)
	}
	if f.count("/api/chat") != 1 {
		t.Errorf("%d requests, want 1: mid-stream errors are not retried", f.count("/api/chat"))
	}
}

func TestChatNeedsModel(t *testing.T) {
	f := newFake(t)
	c := newClient(t, single(f), config.ModelsConfig{})
	_, err := c.Chat(context.Background(), Request{Messages: userMsg("x")})
	if ClassOf(err) != ClassOther || f.count("/api/chat") != 0 {
		t.Errorf("err = %v after %d requests, want a local error and no request", err, f.count("/api/chat"))
	}
}

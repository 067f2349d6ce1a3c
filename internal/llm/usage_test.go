package llm

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

func TestUsageLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	u := Usage{RunID: "r1", Purpose: "plan", Op: "chat", Model: "gemma3:12b", Where: WhereLocal, Endpoint: "local",
		PromptTokens: 10, OutputTokens: 5, EvalDuration: time.Second, DoneReason: "stop", Attempts: 1}
	log.Info("call", "usage", u)
	out := buf.String()
	for _, want := range []string{"usage.model=gemma3:12b", "usage.endpoint=local", "usage.where=local",
		"usage.prompt_tokens=10", "usage.output_tokens=5", "usage.eval=1s", "usage.done_reason=stop", "usage.run=r1", "usage.purpose=plan"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "usage.step=") || strings.Contains(out, "error_class") {
		t.Errorf("empty fields logged: %q", out)
	}
}

func TestPromptsNeverLoggedAtInfo(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f := newFake(t)
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeError(w, 503, msgBusy)
			return
		}
		writeChunks(w, part("SECRET-ANSWER"), done("", "length"))
	}
	cfg := config.OllamaConfig{Endpoints: []config.EndpointConfig{{Name: "local", URL: f.URL()}}, MaxRetries: 1}
	c, err := New(cfg, config.ModelsConfig{}, log, WithBackoff(func(int) time.Duration { return 0 }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("SECRET-PROMPT")})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, "component=llm") || !strings.Contains(out, "retrying model call") {
		t.Errorf("expected component-tagged retry log, got %q", out)
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("content logged at info: %q", out)
	}
}

type failingRecorder struct{ calls int }

func (f *failingRecorder) RecordModelCall(ctx context.Context, u Usage) error {
	f.calls++
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("disk full")
}

func TestRecorderFailureDoesNotFailTheCall(t *testing.T) {
	f := newFake(t)
	rec := &failingRecorder{}
	c := newClient(t, single(f), config.ModelsConfig{}, WithRecorder(rec))
	if _, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")}); err != nil {
		t.Fatalf("a recorder failure failed the call: %v", err)
	}
	if rec.calls != 1 {
		t.Errorf("recorder called %d times", rec.calls)
	}
}

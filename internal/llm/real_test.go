package llm

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamatest"
)

// Conformance tests against the real Ollama server (see internal/ollamatest):
// what the tiny model says is noise, but errors, grammars and stream endings
// are the real thing.

func TestMain(m *testing.M) { ollamatest.Main(m) }

func realClient(t *testing.T, url string, opts ...Option) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	// A shared 2-core machine can slow the tiny model a hundredfold; the
	// bound is for hangs, not speed.
	cfg := config.OllamaConfig{
		Endpoints:      []config.EndpointConfig{{Name: "real", URL: url}},
		RequestTimeout: config.Duration(5 * time.Minute),
		ConnectTimeout: config.Duration(2 * time.Second),
		MaxRetries:     3,
		RetryBackoff:   config.Duration(10 * time.Millisecond),
	}
	c, err := New(cfg, config.ModelsConfig{}, nil, append([]Option{WithRecorder(rec)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// badOutput is what noise from the tiny model may legitimately end in.
func badOutput(err error) bool { return errors.Is(err, ErrTruncated) || errors.Is(err, ErrAborted) }

// TestRealGrammarSafeSchemas sends, as "format", each JSON Schema construct
// that breaks llama.cpp's grammar conversion when sent as it is (measured:
// a runner crash, the whole server killed, or "invalid JSON schema"). Sent
// through the client they all decode, and the server stays up.
func TestRealGrammarSafeSchemas(t *testing.T) {
	srv := ollamatest.Shared(t)
	c, _ := realClient(t, srv.URL)
	schemas := map[string]string{
		"maxLength 4096 (the files tools' path)": `{"type":"object","properties":{"path":{"type":"string","maxLength":4096}},"required":["path"]}`,
		"minLength 3000":                         `{"type":"string","minLength":3000}`,
		"maxItems 3000":                          `{"type":"array","items":{"type":"string"},"maxItems":3000}`,
		"pattern with \\d":                       `{"type":"string","pattern":"^\\d{3}-\\d{4}$"}`,
		"pattern with a lookahead":               `{"type":"string","pattern":"^(?=a)[a-z]+$"}`,
		"unanchored pattern":                     `{"type":"string","pattern":"[a-z]+"}`,
		"not":                                    `{"not":{"type":"string"}}`,
		"unknown type":                           `{"type":"foo"}`,
		"missing $ref":                           `{"type":"object","properties":{"a":{"$ref":"#/$defs/nope"}}}`,
		"huge repetition in pattern":             `{"type":"string","pattern":"^a{1,5000}$"}`,
		"the plan's id and reference patterns": `{"type":"object","properties":{"id":{"type":"string","pattern":"^[a-z][a-z0-9_]*$"},` +
			`"ref":{"type":"string","pattern":"^\\$\\{[a-z][a-z0-9_]*(\\.[A-Za-z0-9_-]+)*\\}$"}},"required":["id","ref"]}`,
		"a pattern with \\d rewritten, a negated class": `{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]-\\d+$"},` +
			`"word":{"type":"string","pattern":"^[^ ]+$"}},"required":["sku","word"]}`,
	}
	for name, schema := range schemas {
		t.Run(name, func(t *testing.T) {
			_, err := c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("x"), Format: json.RawMessage(schema),
				NumPredict: 32, Options: map[string]any{"temperature": 0.7, "seed": 1}})
			if err != nil && !badOutput(err) {
				t.Fatalf("schema %s: %v", schema, err)
			}
			if !srv.Up() {
				t.Fatal("the server died")
			}
		})
	}
	// What the grammar keeps, it enforces.
	resp, err := c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("x"), NumPredict: 64,
		Format:  json.RawMessage(`{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"}},"required":["code"]}`),
		Options: map[string]any{"temperature": 0.7, "seed": 4}})
	if err == nil {
		var out struct{ Code string }
		if jerr := json.Unmarshal([]byte(resp.Message.Content), &out); jerr != nil || !regexp.MustCompile(`^[A-Z]{2}-[0-9]{3}$`).MatchString(out.Code) {
			t.Errorf("reply %q does not follow the pattern the grammar kept (%v)", resp.Message.Content, jerr)
		}
	} else if !badOutput(err) {
		t.Errorf("pattern kept: %v", err)
	}
	if log := srv.LogText(); strings.Contains(log, "failed to parse grammar") {
		t.Errorf("a grammar reached llama.cpp that it could not parse; server log:\n%s", tail(log, 2000))
	}
}

// TestRealRepeatAbort: at temperature 0 the tiny model repeats one token
// until Ollama aborts the generation and ends the stream with no final
// chunk, while staying up. That is bad output, not a lost connection: one
// request, class aborted, the partial reply kept, nothing retried.
func TestRealRepeatAbort(t *testing.T) {
	srv := ollamatest.Shared(t)
	c, rec := realClient(t, srv.URL)
	_, err := c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("hello"),
		Options: map[string]any{"temperature": 0}, RunID: "r", StepID: "s"})
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v (class %s), want aborted", err, ClassOf(err))
	}
	var e *Error
	errors.As(err, &e)
	if e.Partial == nil || e.Partial.Message.Content == "" || e.Partial.Usage.OutputTokens == 0 {
		t.Errorf("the partial reply or its token count was lost: %+v", e.Partial)
	}
	if !strings.Contains(e.Message, "broke off its reply") {
		t.Errorf("message %q does not say what happened", e.Message)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].ErrorClass != ClassAborted || recs[0].RunID != "r" || recs[0].OutputTokens == 0 || recs[0].Wall == 0 {
		t.Errorf("records = %+v, want one aborted call on run r", recs)
	}
	// Asked again with other sampling, the model gets past it.
	_, err = c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("hello"), NumPredict: 48,
		Options: map[string]any{"temperature": 0}, Regeneration: 1})
	if err != nil && !errors.Is(err, ErrTruncated) {
		t.Errorf("regeneration: %v, want an answer or a cut at num_predict", err)
	}
}

func TestRealNumPredictCut(t *testing.T) {
	srv := ollamatest.Shared(t)
	c, _ := realClient(t, srv.URL)
	_, err := c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("x"), NumPredict: 8,
		Options: map[string]any{"temperature": 0.8, "seed": 3}})
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassTruncated {
		t.Fatalf("err = %v, want truncated", err)
	}
	if e.Partial == nil || e.Partial.Usage.OutputTokens != 8 || e.Partial.DoneReason != "length" {
		t.Errorf("partial = %+v, want 8 output tokens cut at length", e.Partial)
	}
}

func TestRealErrors(t *testing.T) {
	srv := ollamatest.Shared(t)
	c, _ := realClient(t, srv.URL)
	_, err := c.Chat(t.Context(), Request{Model: "nope", Messages: userMsg("x")})
	if !errors.Is(err, ErrModelNotFound) || !strings.Contains(err.Error(), "ollama pull nope") {
		t.Errorf("missing model: %v", err)
	}
	tools := api.Tools{{Type: "function", Function: api.ToolFunction{Name: "f", Description: "d"}}}
	_, err = c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("x"), Tools: tools})
	if !errors.Is(err, ErrNoToolSupport) {
		t.Errorf("tools to a model without them: %v", err)
	}
	ok, err := c.SupportsTools(t.Context(), ollamatest.Tools)
	if err != nil || !ok {
		t.Errorf("SupportsTools(%s) = %v, %v", ollamatest.Tools, ok, err)
	}
	_, err = c.Chat(t.Context(), Request{Model: ollamatest.Tools, Messages: userMsg("x"), Tools: tools, NumPredict: 16,
		Options: map[string]any{"temperature": 0.7, "seed": 2}})
	if err != nil && !badOutput(err) {
		t.Errorf("tools to a tools model: %v", err)
	}
	vecs, u, err := c.Embed(t.Context(), ollamatest.Plain, []string{"a", "b c"})
	if err != nil || len(vecs) != 2 || len(vecs[0]) == 0 || u.PromptTokens == 0 {
		t.Errorf("embed: %d vectors, usage %+v, err %v", len(vecs), u, err)
	}
}

// TestRealServerKilledMidStream: a server that dies in the middle of a reply
// is a lost connection, not an aborted generation; and once it is back the
// same client works again, with no restart of agentd.
func TestRealServerKilledMidStream(t *testing.T) {
	srv := ollamatest.Start(t)
	c, _ := realClient(t, srv.URL, WithBackoff(func(int) time.Duration { return 10 * time.Millisecond }))
	killed := make(chan struct{})
	var chunks int
	// The grammar holds the reply open for 900 characters at least (the
	// model cannot stop early), and the kill comes at its first chunk.
	_, err := c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("x"), NumPredict: 4000,
		Format:  json.RawMessage(`{"type":"object","properties":{"story":{"type":"string","minLength":900}},"required":["story"]}`),
		Options: map[string]any{"temperature": 1.0, "seed": 5, "repeat_penalty": 1.5},
		OnChunk: func(api.ChatResponse) error {
			chunks++
			if chunks == 1 {
				srv.Kill()
				close(killed)
			}
			return nil
		}})
	select {
	case <-killed:
	default:
		t.Fatalf("the reply ended before it could be interrupted: %v", err)
	}
	if err == nil || errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v (class %s), want a lost server, not an aborted generation", err, ClassOf(err))
	}
	if c := ClassOf(err); c != ClassTransient && c != ClassUnreachable {
		t.Errorf("class = %s, want transient or unreachable", c)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		_, lastErr = c.Chat(ctx, Request{Model: ollamatest.Plain, Messages: userMsg("x"), NumPredict: 8,
			Options: map[string]any{"temperature": 0.8, "seed": 1}})
		if lastErr == nil || badOutput(lastErr) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the client did not recover after the server came back: %v", lastErr)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

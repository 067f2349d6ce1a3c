package ollamasim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

func TestFaultClasses(t *testing.T) {
	tools := api.Tools{weatherTool()}
	schema := `{"type":"object","required":["answer"],"properties":{"answer":{"type":"string"}}}`
	tests := []struct {
		class FaultClass
		req   api.ChatRequest
		check func(t *testing.T, r api.ChatResponse, err error)
	}{
		{FaultInvalidJSON, api.ChatRequest{Format: json.RawMessage(schema)}, func(t *testing.T, r api.ChatResponse, err error) {
			if err != nil || json.Valid([]byte(r.Message.Content)) {
				t.Fatalf("err=%v content %q should be invalid JSON", err, r.Message.Content)
			}
		}},
		{FaultUnknownTool, api.ChatRequest{Tools: tools}, func(t *testing.T, r api.ChatResponse, err error) {
			if err != nil || len(r.Message.ToolCalls) != 1 || r.Message.ToolCalls[0].Function.Name == "get_weather" {
				t.Fatalf("err=%v tool calls %+v should name a tool that was not offered", err, r.Message.ToolCalls)
			}
		}},
		{FaultWrongArguments, api.ChatRequest{Tools: tools}, func(t *testing.T, r api.ChatResponse, err error) {
			if err != nil || len(r.Message.ToolCalls) != 1 || r.Message.ToolCalls[0].Function.Name != "get_weather" {
				t.Fatalf("err=%v tool calls %+v", err, r.Message.ToolCalls)
			}
			if validateJSON(compileSchema(t, weatherArgsSchema), r.Message.ToolCalls[0].Function.Arguments.String()) == nil {
				t.Fatalf("arguments %s should violate the schema", r.Message.ToolCalls[0].Function.Arguments.String())
			}
		}},
		{FaultTruncation, api.ChatRequest{}, func(t *testing.T, r api.ChatResponse, err error) {
			if err != nil || r.DoneReason != "length" || r.Message.Content == "" {
				t.Fatalf("err=%v done_reason=%q content=%q", err, r.DoneReason, r.Message.Content)
			}
		}},
		{FaultBusy, api.ChatRequest{}, func(t *testing.T, r api.ChatResponse, err error) {
			se := statusError(t, err)
			if se.StatusCode != http.StatusServiceUnavailable || se.ErrorMessage != MsgMaxQueue {
				t.Fatalf("got %d %q", se.StatusCode, se.ErrorMessage)
			}
		}},
		{FaultMidStream, api.ChatRequest{}, func(t *testing.T, r api.ChatResponse, err error) {
			se := statusError(t, err) // non-streaming: Ollama answers 500
			if se.StatusCode != http.StatusInternalServerError || se.ErrorMessage != MsgRunnerStopped {
				t.Fatalf("got %d %q", se.StatusCode, se.ErrorMessage)
			}
		}},
		{FaultRepeatAbort, api.ChatRequest{}, func(t *testing.T, r api.ChatResponse, err error) {
			// Non-streaming: HTTP 200 with the text so far and done false.
			if err != nil || r.Done || r.DoneReason != "" || r.EvalCount != 0 || len([]rune(r.Message.Content)) < repeatLimit {
				t.Fatalf("err=%v response %+v should be an aborted reply", err, r)
			}
		}},
		{FaultTimeout, api.ChatRequest{}, func(t *testing.T, r api.ChatResponse, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want the client's deadline to end the request, got %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.class), func(t *testing.T) {
			s, c := startSim(t, Config{Seed: 5, Faults: []Fault{{Class: tt.class, Probability: 1}}})
			req := tt.req
			req.Model = "qwen3:8b"
			req.Messages = userMsg("go")
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			r, err := chatOnce(t, ctx, c, &req)
			tt.check(t, r, err)
			if got := s.Stats().FaultsInjected[tt.class]; got != 1 {
				t.Fatalf("fault counted %d times", got)
			}
			// Turning the fault off restores normal behaviour.
			s.SetFault(Fault{Class: tt.class, Probability: 0})
			if _, err := chatOnce(t, t.Context(), c, &req); err != nil {
				t.Fatalf("after clearing the fault: %v", err)
			}
		})
	}
}

func TestMidStreamErrorWhileStreaming(t *testing.T) {
	_, c := startSim(t, Config{Faults: []Fault{{Class: FaultMidStream, Probability: 1}}})
	chunks := 0
	err := c.Chat(t.Context(), &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("stream please")}, func(r api.ChatResponse) error {
		chunks++
		if r.Done {
			t.Error("a failing stream must not send a done chunk")
		}
		return nil
	})
	if chunks == 0 || err == nil || err.Error() != MsgRunnerStopped {
		t.Fatalf("chunks=%d err=%v; want some chunks then %q", chunks, err, MsgRunnerStopped)
	}
	var se api.StatusError
	if errors.As(err, &se) {
		t.Fatal("a mid-stream error arrives after a 200, so it is not a StatusError")
	}
}

func TestFaultRestrictedToModel(t *testing.T) {
	_, c := startSim(t, Config{Faults: []Fault{{Class: FaultBusy, Probability: 1, Model: "qwen3:8b"}}})
	if _, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("x")}); err != nil {
		t.Fatalf("other model hit by fault: %v", err)
	}
	if _, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("x")}); err == nil {
		t.Fatal("target model not hit")
	}
}

func TestFaultDrawsAreSeeded(t *testing.T) {
	pattern := func(seed uint64) string {
		_, c := startSim(t, Config{Seed: seed, Faults: []Fault{{Class: FaultBusy, Probability: 0.5}}})
		out := make([]byte, 24)
		for i := range out {
			out[i] = '.'
			if _, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("x")}); err != nil {
				out[i] = 'X'
			}
		}
		return string(out)
	}
	a, b, other := pattern(9), pattern(9), pattern(10)
	if a != b {
		t.Fatalf("same seed, different faults: %s vs %s", a, b)
	}
	if a == other {
		t.Fatalf("different seeds gave the same 24 draws: %s", a)
	}
	hits := 0
	for _, ch := range a {
		if ch == 'X' {
			hits++
		}
	}
	if hits == 0 || hits == len(a) {
		t.Fatalf("probability 0.5 gave %s", a)
	}
}

// TestRepeatAbortStream checks the ending Ollama gives a completion it
// aborts because the model repeats a token: the same token 31 times, no
// final chunk, and a clean end of the response (the official client
// returns no error, so a caller must notice the missing done itself).
func TestRepeatAbortStream(t *testing.T) {
	script := NewRules(Rule{Contains: "loop", Replies: []Reply{{Content: "one two three", RepeatAbort: true}}})
	_, c := startSim(t, Config{Script: script})
	var chunks []api.ChatResponse
	err := c.Chat(t.Context(), &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("loop please")}, func(r api.ChatResponse) error {
		chunks = append(chunks, r)
		return nil
	})
	if err != nil {
		t.Fatalf("an aborted stream ends cleanly, got %v", err)
	}
	if len(chunks) < repeatLimit {
		t.Fatalf("%d chunks", len(chunks))
	}
	tail := chunks[len(chunks)-repeatLimit:]
	for i, ch := range tail {
		if ch.Done || ch.DoneReason != "" || ch.Message.Content != tail[0].Message.Content {
			t.Fatalf("tail chunk %d = %+v; want %d identical chunks with done false", i, ch, repeatLimit)
		}
	}
	var text strings.Builder
	for _, ch := range chunks {
		text.WriteString(ch.Message.Content)
	}
	if !strings.HasPrefix(text.String(), "one two ") {
		t.Fatalf("text %q", text.String())
	}

	// A num_predict below the loop's end wins: the reply is cut instead.
	r := mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("loop please"), Options: map[string]any{"num_predict": 4}})
	if !r.Done || r.DoneReason != "length" || r.EvalCount != 4 {
		t.Fatalf("with num_predict 4: %+v", r)
	}
}

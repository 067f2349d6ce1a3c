package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
)

func (env *testEnv) openai(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(env.url+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func TestOpenAIChatCompletion(t *testing.T) {
	env := newTestEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c := env.openai(env.token)
	resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "agentd:triage",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("be brief"),
			openai.UserMessage("first question"),
			openai.AssistantMessage("first answer"),
			openai.UserMessage("what is six times seven?"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "The answer is 42." || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices %+v", resp.Choices)
	}
	if resp.Object != "chat.completion" || resp.Model != "agentd:triage" || !strings.HasPrefix(resp.ID, "chatcmpl-run") {
		t.Errorf("completion %s %s %s", resp.Object, resp.Model, resp.ID)
	}
	// Two task steps, each 120 prompt + 30 output tokens in the fake.
	if resp.Usage.PromptTokens != 240 || resp.Usage.CompletionTokens != 60 || resp.Usage.TotalTokens != 300 {
		t.Errorf("usage %+v", resp.Usage)
	}
	sub := env.engine.submitted[0]
	if sub.Request != "what is six times seven?" || sub.Workflow != "triage" || sub.Source != "openai" {
		t.Errorf("engine got %+v", sub)
	}
}

func TestOpenAIStreaming(t *testing.T) {
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.SSEKeepalive = 20 * time.Millisecond })
	env.engine.stepDelay = 30 * time.Millisecond
	env.engine.answer = strings.Repeat("Forty-two is the answer to the question. ", 5)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c := env.openai(env.token)
	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "agentd",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("the question")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		ch := stream.Current()
		if ch.Object != "chat.completion.chunk" {
			t.Errorf("chunk object %q", ch.Object)
		}
		acc.AddChunk(ch)
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != env.engine.answer {
		t.Errorf("streamed content %q", got)
	}
	if chunks < 4 {
		t.Errorf("%d chunks: the answer should come in several", chunks)
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Usage.TotalTokens != 300 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
}

func TestOpenAIStreamSendsProgressComments(t *testing.T) {
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.SSEKeepalive = 10 * time.Millisecond })
	env.engine.stepDelay = 40 * time.Millisecond
	req, _ := http.NewRequest("POST", env.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"agentd","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`))
	req.Header.Set("Authorization", "Bearer "+env.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	out := b.String()
	for _, want := range []string{": keepalive run run001", ": step fetch running", ": step summarize done", "data: [DONE]"} {
		if !strings.Contains(out, want) {
			t.Errorf("stream lacks %q:\n%s", want, out)
		}
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	if env.engine.submitted[0].Request != "hi" {
		t.Errorf("content parts: request %q", env.engine.submitted[0].Request)
	}
}

func TestOpenAIModels(t *testing.T) {
	env := newTestEnv(t)
	c := env.openai(env.token)
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"agentd", "agentd:triage", "agentd:report"}) {
		t.Errorf("models %v", ids)
	}
	m, err := c.Models.Get(t.Context(), "agentd:report")
	if err != nil || m.ID != "agentd:report" {
		t.Errorf("get model: %+v %v", m, err)
	}
}

func TestOpenAIErrors(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	user := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}
	cases := []struct {
		name   string
		key    string
		params openai.ChatCompletionNewParams
		setup  func()
		status int
		code   string
	}{
		{"bad key", "wrong-key", openai.ChatCompletionNewParams{Model: "agentd", Messages: user}, nil, 401, "invalid_api_key"},
		{"unknown model", env.token, openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: user}, nil, 404, "model_not_found"},
		{"unknown workflow", env.token, openai.ChatCompletionNewParams{Model: "agentd:nope", Messages: user}, nil, 404, "model_not_found"},
		{"no user message", env.token, openai.ChatCompletionNewParams{Model: "agentd",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("s")}}, nil, 400, "missing_user_message"},
		{"too large", env.token, openai.ChatCompletionNewParams{Model: "agentd",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("a", 70<<10))}}, nil, 413, "request_too_large"},
		{"queue full", env.token, openai.ChatCompletionNewParams{Model: "agentd", Messages: user},
			func() { env.engine.mu.Lock(); env.engine.full = true; env.engine.mu.Unlock() }, 503, "queue_full"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			client := env.openai(c.key)
			_, err := client.Chat.Completions.New(ctx, c.params)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v, want an API error", err)
			}
			if apiErr.StatusCode != c.status || apiErr.Code != c.code || apiErr.Message == "" || apiErr.Type == "" {
				t.Errorf("got %d code=%q type=%q msg=%q; want %d %q", apiErr.StatusCode, apiErr.Code, apiErr.Type, apiErr.Message, c.status, c.code)
			}
		})
	}
}

func TestOpenAIClientHangupCancelsTheRun(t *testing.T) {
	env := newTestEnv(t)
	env.engine.stepDelay = time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	client := env.openai(env.token)
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "agentd", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("slow")}})
	if err == nil {
		t.Fatal("a run that never ends answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		env.engine.mu.Lock()
		n := len(env.engine.canceled)
		env.engine.mu.Unlock()
		if n == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("run not canceled after the client hung up: %v", env.engine.canceled)
}

func TestOpenAIShutdownLeavesTheRunAlone(t *testing.T) {
	env := newTestEnv(t)
	env.engine.stepDelay = time.Hour
	errc := make(chan error, 1)
	go func() {
		client := env.openai(env.token)
		_, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
			Model: "agentd", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("long")}})
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		env.engine.mu.Lock()
		n := len(env.engine.submitted)
		env.engine.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	env.stop()
	if err := <-errc; err == nil {
		t.Error("a run that never ends answered")
	}
	env.engine.mu.Lock()
	defer env.engine.mu.Unlock()
	if len(env.engine.submitted) != 1 || len(env.engine.canceled) != 0 {
		t.Errorf("submitted %d, canceled %v: shutdown must not cancel runs", len(env.engine.submitted), env.engine.canceled)
	}
}

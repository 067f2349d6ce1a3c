package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// openaiBackend speaks the OpenAI chat completions API that llama.cpp's
// server, vLLM, LM Studio, LocalAI and Ollama's /v1 serve. Its base URL is
// where the API's paths begin, by convention ending in /v1, as in
// "http://127.0.0.1:8000/v1".
//
// It is written against net/http rather than an OpenAI SDK: the protocol
// agentd needs is one streamed POST, and writing it here keeps the stream
// on the same pooled line buffers and the same 8 MB line cap as the
// Ollama path, and its failures in the same api.StatusError values that
// classify already reads.
type openaiBackend struct {
	base   *url.URL
	httpc  *http.Client
	apiKey string // sent as a bearer token when set
}

// openaiToolCall is a tool call as OpenAI writes it: arguments are a JSON
// string, and in a stream each call arrives in pieces keyed by Index.
type openaiToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type openaiMessage struct {
	Role       string           `json:"role"`
	Content    string           `json:"content"`
	ToolCalls  []openaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
}

type openaiResponseFormat struct {
	Type       string            `json:"type"` // "json_schema" or "json_object"
	JSONSchema *openaiJSONSchema `json:"json_schema,omitempty"`
}

type openaiJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

type openaiStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type openaiRequest struct {
	Model            string                `json:"model"`
	Messages         []openaiMessage       `json:"messages"`
	Tools            api.Tools             `json:"tools,omitempty"` // api.Tool marshals to OpenAI's shape
	ResponseFormat   *openaiResponseFormat `json:"response_format,omitempty"`
	MaxTokens        int                   `json:"max_tokens,omitempty"`
	Temperature      *float64              `json:"temperature,omitempty"`
	TopP             *float64              `json:"top_p,omitempty"`
	Seed             *int                  `json:"seed,omitempty"`
	PresencePenalty  *float64              `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64              `json:"frequency_penalty,omitempty"`
	Stop             []string              `json:"stop,omitempty"`
	Stream           bool                  `json:"stream"`
	StreamOptions    *openaiStreamOptions  `json:"stream_options,omitempty"`
}

// openaiRequestFrom maps agentd's chat request. Options that have no
// OpenAI name (num_ctx, repeat_penalty, ...) are left out: such servers fix
// them when they load the model.
func openaiRequestFrom(req *api.ChatRequest) openaiRequest {
	r := openaiRequest{Model: req.Model, Tools: req.Tools, Stream: true,
		// Without it the stream carries no token counts.
		StreamOptions: &openaiStreamOptions{IncludeUsage: true}}
	r.Messages = openaiMessages(req.Messages)
	switch f := bytes.TrimSpace(req.Format); {
	case len(f) == 0 || string(f) == "null":
	case string(f) == `"json"`:
		r.ResponseFormat = &openaiResponseFormat{Type: "json_object"}
	default:
		r.ResponseFormat = &openaiResponseFormat{Type: "json_schema",
			JSONSchema: &openaiJSONSchema{Name: "response", Schema: json.RawMessage(f), Strict: true}}
	}
	o := req.Options
	if n, ok := number(o["num_predict"]); ok && n > 0 {
		r.MaxTokens = int(n)
	}
	r.Temperature = optFloat(o, "temperature")
	r.TopP = optFloat(o, "top_p")
	r.PresencePenalty = optFloat(o, "presence_penalty")
	r.FrequencyPenalty = optFloat(o, "frequency_penalty")
	if n, ok := number(o["seed"]); ok {
		s := int(n)
		r.Seed = &s
	}
	switch s := o["stop"].(type) {
	case string:
		r.Stop = []string{s}
	case []string:
		r.Stop = s
	case []any:
		for _, v := range s {
			if str, ok := v.(string); ok {
				r.Stop = append(r.Stop, str)
			}
		}
	}
	return r
}

// openaiMessages maps the conversation. OpenAI ties each tool result to its
// call by id, which Ollama's messages may lack: a call without one gets
// one, and a result without one takes the id of the earliest unanswered
// call of the same tool (or the earliest unanswered call).
func openaiMessages(msgs []api.Message) []openaiMessage {
	out := make([]openaiMessage, 0, len(msgs))
	type pending struct{ id, name string }
	var open []pending
	for i, m := range msgs {
		om := openaiMessage{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
		for j, tc := range m.ToolCalls {
			c := openaiToolCall{ID: tc.ID, Type: "function"}
			if c.ID == "" {
				c.ID = fmt.Sprintf("call_%d_%d", i, j)
			}
			c.Function.Name = tc.Function.Name
			args, err := json.Marshal(tc.Function.Arguments)
			if err != nil || string(args) == "null" {
				args = []byte("{}")
			}
			c.Function.Arguments = string(args)
			om.ToolCalls = append(om.ToolCalls, c)
			open = append(open, pending{c.ID, c.Function.Name})
		}
		if m.Role == "tool" && len(open) > 0 {
			k := 0
			for j, p := range open {
				if om.ToolCallID == p.id || (om.ToolCallID == "" && p.name == m.ToolName) {
					k = j
					break
				}
			}
			if om.ToolCallID == "" {
				om.ToolCallID = open[k].id
			}
			open = append(open[:k], open[k+1:]...)
		}
		out = append(out, om)
	}
	return out
}

func optFloat(o map[string]any, k string) *float64 {
	if n, ok := number(o[k]); ok {
		return &n
	}
	return nil
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// openaiChunk is one streamed chat.completion.chunk.
type openaiChunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
			// Reasoning models' thoughts: llama.cpp and vLLM say
			// reasoning_content, Ollama's /v1 says reasoning.
			ReasoningContent string           `json:"reasoning_content"`
			Reasoning        string           `json:"reasoning"`
			ToolCalls        []openaiToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// chat streams /chat/completions and hands fn the reply in Ollama's chunk
// shape, so everything above (accumulation, OnChunk, the done_reason
// "length" check, usage records) is the one the Ollama path has. Tool
// calls arrive in pieces and are handed over whole, in one chunk, when the
// reply ends; the last chunk carries finish_reason as done_reason and the
// usage as Ollama's counts.
func (b *openaiBackend) chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error {
	resp, err := b.do(ctx, http.MethodPost, "chat/completions", openaiRequestFrom(req), "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	sc, release := lineScanner(resp.Body)
	defer release()

	var (
		calls        []openaiToolCall // by stream index
		finish       string
		finished     bool
		usage        *[2]int
		outputChunks int
	)
	final := func() error {
		if len(calls) > 0 {
			tcs := make([]api.ToolCall, 0, len(calls))
			for i, c := range calls {
				tc := api.ToolCall{ID: c.ID}
				tc.Function.Index, tc.Function.Name = i, c.Function.Name
				if a := strings.TrimSpace(c.Function.Arguments); a != "" {
					if err := json.Unmarshal([]byte(a), &tc.Function.Arguments); err != nil {
						return fmt.Errorf("tool call %s: arguments are not a JSON object: %.200q", c.Function.Name, a)
					}
				}
				tcs = append(tcs, tc)
			}
			if err := fn(api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant", ToolCalls: tcs}}); err != nil {
				return err
			}
		}
		last := api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant"}, Done: true, DoneReason: doneReason(finish)}
		if usage != nil {
			last.PromptEvalCount, last.EvalCount = usage[0], usage[1]
		} else {
			// A server that ignores include_usage: about a token a chunk.
			last.EvalCount = outputChunks
		}
		return fn(last)
	}
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue // blank separators, ": keep-alive" comments, "event:" lines
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			return final()
		}
		var chunk openaiChunk
		if err := json.Unmarshal(data, &chunk); err != nil {
			return fmt.Errorf("unreadable stream chunk: %.200q", data)
		}
		if msg := openaiErrorText(chunk.Error); msg != "" {
			return errors.New(msg)
		}
		if chunk.Usage != nil {
			usage = &[2]int{chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens}
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue // agentd asks for one choice
			}
			d := ch.Delta
			for _, tc := range d.ToolCalls {
				i := len(calls)
				if tc.Index != nil {
					i = *tc.Index
				}
				for len(calls) <= i {
					calls = append(calls, openaiToolCall{})
				}
				c := &calls[i]
				if tc.ID != "" {
					c.ID = tc.ID
				}
				if tc.Function.Name != "" {
					c.Function.Name = tc.Function.Name
				}
				c.Function.Arguments += tc.Function.Arguments
			}
			thinking := d.ReasoningContent + d.Reasoning
			if d.Content != "" || thinking != "" {
				outputChunks++
				if err := fn(api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant", Content: d.Content, Thinking: thinking}}); err != nil {
					return err
				}
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				finish, finished = *ch.FinishReason, true
			}
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("a streamed line is longer than %d MB", maxStreamLine>>20)
	}
	if finished && ctx.Err() == nil {
		// Some servers end the body after the finish without "[DONE]".
		return final()
	}
	// Broken off: like api.Client, end quietly; the caller sees no final
	// chunk and finds out whether the server is still up.
	return nil
}

// doneReason maps finish_reason to Ollama's done_reason: "length" is the
// output cap in both; a reply that ends in tool calls is a normal stop, as
// Ollama reports it.
func doneReason(finish string) string {
	switch finish {
	case "", "tool_calls", "function_call":
		return "stop"
	}
	return finish
}

// do sends one request and returns a 2xx answer; any other status becomes
// the api.StatusError classify reads for Ollama's answers too.
func (b *openaiBackend) do(ctx context.Context, method, path string, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, b.base.JoinPath(path).String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("Accept", accept)
	hreq.Header.Set("User-Agent", userAgent())
	if b.apiKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+b.apiKey)
	}
	resp, err := b.httpc.Do(hreq)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < http.StatusBadRequest {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	msg := openaiErrorText(data)
	if msg == "" {
		msg = strings.TrimSpace(string(data))
	}
	if msg == "" {
		msg = resp.Status
	}
	return nil, api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: msg}
}

// openaiErrorText finds the message in an error body: OpenAI's
// {"error": {"message": ...}}, or the {"error": "..."} some servers write.
func openaiErrorText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var wrapped struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Error) > 0 {
		raw = wrapped.Error
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Message
	}
	return ""
}

// show answers what an OpenAI-compatible server cannot be asked: it has no
// /api/show. Tools are assumed; a server or model without them refuses the
// call ("does not support tools"), which the client remembers and the
// executor falls back from.
func (b *openaiBackend) show(ctx context.Context, name string) (*api.ShowResponse, error) {
	return &api.ShowResponse{Capabilities: []model.Capability{model.CapabilityCompletion, model.CapabilityTools}}, nil
}

func (b *openaiBackend) embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	resp, err := b.do(ctx, http.MethodPost, "embeddings", map[string]any{"model": req.Model, "input": req.Input}, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStreamLine)).Decode(&v); err != nil {
		return nil, fmt.Errorf("unreadable embeddings answer: %w", err)
	}
	out := &api.EmbedResponse{Model: req.Model, Embeddings: make([][]float32, len(v.Data)), PromptEvalCount: v.Usage.PromptTokens}
	for i, d := range v.Data {
		if d.Index >= 0 && d.Index < len(v.Data) {
			i = d.Index
		}
		out.Embeddings[i] = d.Embedding
	}
	return out, nil
}

// alive: any answer from /models means the server is up.
func (b *openaiBackend) alive(ctx context.Context) error {
	_, err := b.models(ctx)
	var status api.StatusError
	if errors.As(err, &status) {
		return nil
	}
	return err
}

// models lists what the server says it serves (/models).
func (b *openaiBackend) models(ctx context.Context) ([]string, error) {
	resp, err := b.do(ctx, http.MethodGet, "models", nil, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return nil, fmt.Errorf("unreadable models answer: %w", err)
	}
	ids := make([]string, len(v.Data))
	for i, d := range v.Data {
		ids[i] = d.ID
	}
	return ids, nil
}

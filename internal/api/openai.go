package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// The OpenAI-compatible surface lets existing clients (openai SDKs, chat
// UIs) use agentd as if it were a model: "agentd" plans freely,
// "agentd:<workflow>" runs a configured workflow. A chat completion is one
// run; its answer is the assistant message.

const modelPrefix = "agentd"

// openAIError is OpenAI's error shape.
type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

func writeOpenAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	var e openAIError
	e.Error.Message, e.Error.Type, e.Error.Code = msg, typ, code
	WriteJSON(w, status, e)
}

// handleOpenAI registers an authenticated handler whose errors, including
// auth and size errors, are in OpenAI's shape, so its clients show them.
func (s *Server) handleOpenAI(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AuthRequired && !s.Authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd"`)
			writeOpenAIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
				"missing or wrong API key: use agentd's token (print it with `agentd token`) as the API key")
			return
		}
		if r.ContentLength > s.cfg.MaxRequestBytes {
			writeOpenAIError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
				fmt.Sprintf("request body is %d bytes; the limit is %d (server.max_request_bytes)", r.ContentLength, s.cfg.MaxRequestBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
		h.ServeHTTP(w, r)
	}))
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text is a message's text: a string, or the text parts of an array.
func (m chatMessage) text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			if p.Type == "text" {
				if b.Len() > 0 {
					b.WriteString("\n")
				}
				b.WriteString(p.Text)
			}
		}
		return b.String()
	}
	return ""
}

type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User string `json:"user"`
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      *chatOutMsg `json:"message,omitempty"`
	Delta        *chatOutMsg `json:"delta,omitempty"`
	FinishReason *string     `json:"finish_reason"`
	Logprobs     *struct{}   `json:"logprobs"`
}

type chatOutMsg struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
	Refusal any    `json:"refusal,omitempty"`
}

// chatRunInfo names the run behind a completion; clients that know agentd
// read it, others ignore it.
type chatRunInfo struct {
	RunID    string `json:"run_id"`
	Status   string `json:"status"`
	Degraded bool   `json:"degraded"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []chatChoice `json:"choices"`
	Usage             *chatUsage   `json:"usage,omitempty"`
	Agentd            *chatRunInfo `json:"agentd,omitempty"`
}

// workflowFor maps a model name to a workflow: "" for plain agentd.
func (rt *routes) workflowFor(model string) (string, bool) {
	if model == modelPrefix {
		return "", true
	}
	wf, ok := strings.CutPrefix(model, modelPrefix+":")
	if !ok || wf == "" {
		return "", false
	}
	return wf, slices.Contains(rt.d.Workflows(), wf)
}

func (rt *routes) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeOpenAIError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
				fmt.Sprintf("request body is over the limit of %d bytes (server.max_request_bytes)", tooBig.Limit))
			return
		}
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "the body is not a chat completion request: "+err.Error())
		return
	}
	wf, ok := rt.workflowFor(req.Model)
	if !ok {
		writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("the model %q does not exist; use %q or %q:<workflow> (GET /v1/models lists them)", req.Model, modelPrefix, modelPrefix))
		return
	}
	var request string
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			request = strings.TrimSpace(req.Messages[i].text())
			break
		}
	}
	if request == "" {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", "missing_user_message",
			"messages hold no user message with text; the last user message is agentd's request")
		return
	}
	// Progress comes from the run's events from its submission on: events
	// published before the stream subscribes are replayed, not lost.
	since := rt.d.Events.LastSeq()
	rn, err := rt.d.Engine.Submit(r.Context(), SubmitRequest{Request: request, Workflow: wf, Planner: "auto", Source: "openai"})
	if err != nil {
		rt.openAIEngineError(w, err)
		return
	}
	id := "chatcmpl-" + rn.ID
	created := rt.d.Now().Unix()
	// A client that hangs up will never read the answer: stop the run
	// rather than spend the GPU on it. A daemon that is stopping leaves it
	// alone, for crash resume to finish after the restart.
	defer func() {
		if r.Context().Err() != nil && !rt.s.stopping() {
			_ = rt.d.Engine.Cancel(context.WithoutCancel(r.Context()), rn.ID, "openai")
		}
	}()
	if !req.Stream {
		done, err := rt.d.Engine.Wait(r.Context(), rn.ID)
		if err != nil {
			if r.Context().Err() == nil {
				rt.openAIEngineError(w, err)
			}
			return
		}
		answer, ok := rt.answerOf(w, done)
		if !ok {
			return
		}
		usage := rt.usageOf(r.Context(), done.ID)
		WriteJSON(w, http.StatusOK, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: req.Model,
			Choices: []chatChoice{{Index: 0, Message: &chatOutMsg{Role: "assistant", Content: answer}, FinishReason: ptr("stop")}},
			Usage:   &usage,
			Agentd:  &chatRunInfo{RunID: done.ID, Status: string(done.Status), Degraded: done.Degraded},
		})
		return
	}
	rt.streamCompletion(w, r, req, rn, id, created, since)
}

// answerOf is a finished run's answer; a run with none answers an error.
func (rt *routes) answerOf(w http.ResponseWriter, rn *run.Run) (string, bool) {
	if rn.Answer != "" {
		return rn.Answer, true
	}
	msg := fmt.Sprintf("run %s ended %s with no answer", rn.ID, rn.Status)
	if rn.Error != "" {
		msg += ": " + rn.Error
	}
	writeOpenAIError(w, http.StatusInternalServerError, "server_error", "run_"+string(rn.Status), msg+" — see /api/v1/runs/"+rn.ID)
	return "", false
}

// usageOf sums the run's model calls' tokens.
func (rt *routes) usageOf(ctx context.Context, runID string) chatUsage {
	var u chatUsage
	d, err := rt.d.Runs.RunDetail(ctx, runID)
	if err != nil {
		return u
	}
	for _, c := range d.ModelCalls {
		u.PromptTokens += c.PromptTokens
		u.CompletionTokens += c.OutputTokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func (rt *routes) openAIEngineError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrQueueFull):
		w.Header().Set("Retry-After", strconv.Itoa(rt.d.RetryAfter))
		writeOpenAIError(w, http.StatusServiceUnavailable, "server_error", "queue_full",
			fmt.Sprintf("agentd's run queue is full; retry in %d s", rt.d.RetryAfter))
	case errors.Is(err, ErrInvalid):
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
	case errors.Is(err, ErrNotFound):
		writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "not_found", err.Error())
	default:
		rt.s.log.Error("chat completion", "err", err)
		writeOpenAIError(w, http.StatusInternalServerError, "server_error", "internal", err.Error()+" — see agentd's log")
	}
}

// streamChunkRunes is how much of the answer one chunk carries.
const streamChunkRunes = 48

// streamCompletion answers as server-sent events. While the run executes
// it sends SSE comment lines (without the blank line that would end an
// event: some SDKs, openai-go among them, fail on an event holding only
// comments) (ignored by clients, but they keep proxies and
// idle timeouts from closing the stream, and a person with curl sees the
// steps progress); the answer is streamed in chunks once ready, because
// agentd's answer is synthesized at the end, not token by token.
// since is the event sequence before the run was submitted.
func (rt *routes) streamCompletion(w http.ResponseWriter, r *http.Request, req chatRequest, rn *run.Run, id string, created int64, since int64) {
	fl, _ := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta *chatOutMsg, finish *string, usage *chatUsage) {
		c := chatCompletion{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model, Choices: []chatChoice{}}
		if delta != nil || finish != nil {
			if delta == nil {
				delta = &chatOutMsg{}
			}
			c.Choices = append(c.Choices, chatChoice{Index: 0, Delta: delta, FinishReason: finish})
		}
		c.Usage = usage
		b, _ := json.Marshal(c)
		fmt.Fprintf(w, "data: %s\n\n", b)
		flush()
	}
	chunk(&chatOutMsg{Role: "assistant", Content: ""}, nil, nil)
	fmt.Fprintf(w, ": agentd run %s %s\n", rn.ID, rn.Status)
	flush()

	// Progress comments come from the run's step events.
	var progress <-chan events.Event
	var backlog []events.Event // published between submission and this subscription
	if past, sub, err := rt.d.Events.Subscribe(r.Context(), since, 64, func(e events.Event) bool {
		return e.RunID == rn.ID && (e.Type == events.StepStatus || e.Type == events.RunStatus)
	}); err == nil {
		defer sub.Close()
		progress, backlog = sub.C, past
	}
	type result struct {
		rn  *run.Run
		err error
	}
	resc := make(chan result, 1)
	go func() {
		d, err := rt.d.Engine.Wait(r.Context(), rn.ID)
		resc <- result{d, err}
	}()
	tick := time.NewTicker(rt.d.SSEKeepalive)
	defer tick.Stop()
	comment := func(e events.Event) {
		if st, ok := events.Decode[events.StepStatusData](e); ok && st.StepID != "" {
			fmt.Fprintf(w, ": step %s %s\n", sanitizeComment(st.StepID), sanitizeComment(st.Status))
		} else if rs, ok := events.Decode[events.RunStatusData](e); ok {
			fmt.Fprintf(w, ": run %s %s\n", rn.ID, sanitizeComment(rs.Status))
		} else {
			return
		}
		flush()
	}
	for _, e := range backlog {
		comment(e)
	}
	var res result
wait:
	for {
		select {
		case res = <-resc:
			break wait
		case <-tick.C:
			fmt.Fprintf(w, ": keepalive run %s\n", rn.ID)
			flush()
		case e, ok := <-progress:
			if !ok {
				progress = nil // dropped as slow: keepalives carry on
				continue
			}
			comment(e)
		}
	}
	// The last transitions were published before Wait returned: show them.
	for drained := false; !drained && progress != nil; {
		select {
		case e, ok := <-progress:
			if !ok {
				drained = true
				continue
			}
			comment(e)
		default:
			drained = true
		}
	}
	if res.err != nil || res.rn.Answer == "" {
		if r.Context().Err() != nil {
			return
		}
		var e openAIError
		e.Error.Type, e.Error.Code = "server_error", "run_failed"
		if res.err != nil {
			e.Error.Message = res.err.Error()
		} else {
			e.Error.Message = fmt.Sprintf("run %s ended %s with no answer: %s — see /api/v1/runs/%s", res.rn.ID, res.rn.Status, res.rn.Error, res.rn.ID)
		}
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "data: %s\n\n", b)
		flush()
		return
	}
	runes := []rune(res.rn.Answer)
	for i := 0; i < len(runes); i += streamChunkRunes {
		chunk(&chatOutMsg{Content: string(runes[i:min(i+streamChunkRunes, len(runes))])}, nil, nil)
	}
	chunk(nil, ptr("stop"), nil)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		u := rt.usageOf(r.Context(), res.rn.ID)
		chunk(nil, nil, &u)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	flush()
}

// sanitizeComment keeps an SSE comment on one line.
func sanitizeComment(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (rt *routes) modelList() []modelEntry {
	out := []modelEntry{{ID: modelPrefix, Object: "model", OwnedBy: "agentd"}}
	for _, wf := range rt.d.Workflows() {
		out = append(out, modelEntry{ID: modelPrefix + ":" + wf, Object: "model", OwnedBy: "agentd"})
	}
	return out
}

func (rt *routes) models(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]any{"object": "list", "data": rt.modelList()})
}

func (rt *routes) model(w http.ResponseWriter, r *http.Request) {
	for _, m := range rt.modelList() {
		if m.ID == r.PathValue("id") {
			WriteJSON(w, http.StatusOK, m)
			return
		}
	}
	writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
		fmt.Sprintf("the model %q does not exist", r.PathValue("id")))
}

func ptr[T any](v T) *T { return &v }

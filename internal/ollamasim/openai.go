package ollamasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"
)

// handleOpenAIChat serves POST /v1/chat/completions the way Ollama does
// (middleware/openai.go ChatMiddleware): the request is converted to an
// /api/chat request with Ollama's own openai package, the chat handler
// runs, and what it writes is rewritten as chat.completion objects or
// chat.completion.chunk server-sent events. So every /api/chat behaviour
// (errors, grammar limits, faults, the repeat abort) shows through with
// Ollama's quirks: handler errors keep their status but all read
// "api_error"; an aborted stream ends without finish_reason or [DONE].
func (s *Server) handleOpenAIChat(w http.ResponseWriter, r *http.Request) {
	var req openai.ChatCompletionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, openai.NewError(http.StatusBadRequest, err.Error()))
		return
	}
	if len(req.Messages) == 0 {
		writeJSON(w, http.StatusBadRequest, openai.NewError(http.StatusBadRequest, "[] is too short - 'messages'"))
		return
	}
	chatReq, err := openai.FromChatRequest(req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, openai.NewError(http.StatusBadRequest, err.Error()))
		return
	}
	var body bytes.Buffer
	if err := json.NewEncoder(&body).Encode(chatReq); err != nil {
		writeJSON(w, http.StatusInternalServerError, openai.NewError(http.StatusInternalServerError, err.Error()))
		return
	}
	inner := r.Clone(r.Context())
	inner.Body = io.NopCloser(&body)
	inner.ContentLength = int64(body.Len())
	cw := &openAIChatWriter{
		w:      w,
		stream: req.Stream,
		opts:   req.StreamOptions,
		id:     fmt.Sprintf("chatcmpl-%d", s.openAIIDs.Add(1)%999),
		now:    s.cfg.Now,
	}
	s.handleChat(cw, inner)
}

// openAIChatWriter is Ollama's middleware.ChatWriter: it receives the
// chat handler's status and JSON writes (one value per Write) and sends
// their OpenAI form instead.
type openAIChatWriter struct {
	w            http.ResponseWriter
	stream       bool
	opts         *openai.StreamOptions
	id           string
	now          func() time.Time
	status       int
	wroteHeader  bool
	toolCallSent bool
}

var (
	_ http.ResponseWriter = (*openAIChatWriter)(nil)
	_ http.Flusher        = (*openAIChatWriter)(nil)
)

func (cw *openAIChatWriter) Header() http.Header { return cw.w.Header() }

// WriteHeader holds the status until the first body write, as gin does,
// so that Write can still set the content type.
func (cw *openAIChatWriter) WriteHeader(code int) {
	if cw.status == 0 {
		cw.status = code
	}
}

func (cw *openAIChatWriter) Flush() {
	if f, ok := cw.w.(http.Flusher); ok && cw.wroteHeader {
		f.Flush()
	}
}

func (cw *openAIChatWriter) Write(data []byte) (int, error) {
	if cw.status == 0 {
		cw.status = http.StatusOK
	}
	if cw.status != http.StatusOK {
		return cw.writeError(data)
	}
	return cw.writeResponse(data)
}

func (cw *openAIChatWriter) send(contentType string, b []byte) error {
	if !cw.wroteHeader {
		cw.w.Header().Set("Content-Type", contentType)
		cw.w.WriteHeader(cw.status)
		cw.wroteHeader = true
	}
	_, err := cw.w.Write(b)
	return err
}

// writeError rewrites {"error": "..."} as an OpenAI error object; the type
// is always "api_error" (Ollama builds it for status 500 whatever the
// handler's status was).
func (cw *openAIChatWriter) writeError(data []byte) (int, error) {
	var serr api.StatusError
	if err := json.Unmarshal(data, &serr); err != nil {
		return 0, err
	}
	b, err := json.Marshal(openai.NewError(http.StatusInternalServerError, serr.Error()))
	if err != nil {
		return 0, err
	}
	if err := cw.send("application/json", append(b, '\n')); err != nil {
		return 0, err
	}
	return len(data), nil
}

func (cw *openAIChatWriter) writeResponse(data []byte) (int, error) {
	var resp api.ChatResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return 0, err
	}
	if !cw.stream {
		b, err := json.Marshal(openai.ToChatCompletion(cw.id, resp))
		if err != nil {
			return 0, err
		}
		if err := cw.send("application/json", append(b, '\n')); err != nil {
			return 0, err
		}
		return len(data), nil
	}
	chunk := openai.ToChunk(cw.id, resp, cw.toolCallSent)
	chunk.Created = cw.now().Unix()
	if !cw.toolCallSent && len(chunk.Choices) > 0 && len(chunk.Choices[0].Delta.ToolCalls) > 0 {
		cw.toolCallSent = true
	}
	events := [][]byte{}
	b, err := json.Marshal(chunk)
	if err != nil {
		return 0, err
	}
	events = append(events, b)
	if resp.Done {
		if cw.opts != nil && cw.opts.IncludeUsage {
			u := openai.ToUsage(resp)
			chunk.Usage = &u
			chunk.Choices = []openai.ChunkChoice{}
			b, err := json.Marshal(chunk)
			if err != nil {
				return 0, err
			}
			events = append(events, b)
		}
		events = append(events, []byte("[DONE]"))
	}
	for _, ev := range events {
		if err := cw.send("text/event-stream", fmt.Appendf(nil, "data: %s\n\n", ev)); err != nil {
			return 0, err
		}
	}
	return len(data), nil
}

package ollamasim

import (
	"net/http"

	"github.com/ollama/ollama/api"
)

// handleChat serves POST /api/chat with ChatHandler's checks in Ollama's
// order: body, model name, model exists, unload request, thinking,
// completion and tools capabilities, then scheduling and generation.
func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req api.ChatRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > 20 {
		writeError(w, errTopLogprobs)
		return
	}
	s.stats.request()
	m, ok := s.lookupModel(w, req.Model, errModelRequired)
	if !ok {
		return
	}
	now := s.cfg.Now().UTC()
	if len(req.Messages) == 0 && req.KeepAlive != nil && req.KeepAlive.Duration == 0 {
		s.sched.expire(m.Name)
		writeJSON(w, http.StatusOK, api.ChatResponse{Model: req.Model, CreatedAt: now, Message: api.Message{Role: "assistant"}, Done: true, DoneReason: "unload"})
		return
	}
	if !m.Has(CapThinking) && req.Think != nil && req.Think.Bool() {
		writeError(w, errDoesNotSupportThinking(req.Model))
		return
	}
	if !m.Has(CapCompletion) {
		writeError(w, errDoesNotSupportChat(req.Model))
		return
	}
	if len(req.Tools) > 0 && !m.Has(CapTools) {
		writeError(w, errDoesNotSupport(req.Model, CapTools))
		return
	}
	inf := s.admit(r.Context(), w, m, &req)
	if inf == nil {
		return
	}
	if len(req.Messages) == 0 {
		inf.lease.release()
		writeJSON(w, http.StatusOK, api.ChatResponse{Model: req.Model, CreatedAt: s.cfg.Now().UTC(), Message: api.Message{Role: "assistant"}, Done: true, DoneReason: "load"})
		return
	}
	s.deliver(r.Context(), w, inf, wantsStream(req.Stream), func(p piece, final bool) any {
		resp := api.ChatResponse{
			Model:     req.Model,
			CreatedAt: s.cfg.Now().UTC(),
			Message:   api.Message{Role: "assistant", Content: p.content, Thinking: p.thinking, ToolCalls: p.toolCalls},
			Done:      final,
		}
		if final {
			resp.DoneReason = inf.out.doneReason
			resp.Metrics = inf.metrics()
		}
		return resp
	})
}

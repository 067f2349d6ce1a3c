package ollamasim

import (
	"net/http"

	"github.com/ollama/ollama/api"
)

// handleGenerate serves POST /api/generate. An empty prompt only loads the
// model (done_reason "load"); an empty prompt with keep_alive 0 unloads it
// (done_reason "unload"), exactly as Ollama does. The prompt is presented
// to the Script and generator as a chat with an optional system message.
func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	var req api.GenerateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > 20 {
		writeError(w, errTopLogprobs)
		return
	}
	s.stats.request()
	// GenerateHandler calls an unparseable name (even "") not found.
	m, ok := s.lookupModel(w, req.Model, errModelNotFound(req.Model))
	if !ok {
		return
	}
	if req.Prompt == "" && req.KeepAlive != nil && req.KeepAlive.Duration == 0 {
		s.sched.expire(m.Name)
		writeJSON(w, http.StatusOK, api.GenerateResponse{Model: req.Model, CreatedAt: s.cfg.Now().UTC(), Done: true, DoneReason: "unload"})
		return
	}
	if !m.Has(CapThinking) && req.Think != nil && req.Think.Bool() {
		writeError(w, errDoesNotSupportThinking(req.Model))
		return
	}
	if !m.Has(CapCompletion) {
		writeError(w, errDoesNotSupportGenerate(req.Model))
		return
	}
	chat := api.ChatRequest{Model: req.Model, Format: req.Format, KeepAlive: req.KeepAlive, Options: req.Options, Think: req.Think, Stream: req.Stream}
	if req.System != "" {
		chat.Messages = append(chat.Messages, api.Message{Role: "system", Content: req.System})
	}
	if req.Prompt != "" {
		chat.Messages = append(chat.Messages, api.Message{Role: "user", Content: req.Prompt})
	}
	if req.Prompt == "" {
		chat.Messages = nil // load only, even with a system prompt
	}
	inf := s.admit(r.Context(), w, m, &chat)
	if inf == nil {
		return
	}
	if req.Prompt == "" {
		inf.lease.release()
		writeJSON(w, http.StatusOK, api.GenerateResponse{Model: req.Model, CreatedAt: s.cfg.Now().UTC(), Done: true, DoneReason: "load"})
		return
	}
	s.deliver(r.Context(), w, inf, wantsStream(req.Stream), func(p piece, final bool) any {
		resp := api.GenerateResponse{
			Model:     req.Model,
			CreatedAt: s.cfg.Now().UTC(),
			Response:  p.content,
			Thinking:  p.thinking,
			ToolCalls: p.toolCalls,
			Done:      final,
		}
		if final {
			resp.DoneReason = inf.out.doneReason
			resp.Metrics = inf.metrics()
			if !req.Raw {
				resp.Context = contextTokens(req.System+req.Prompt+inf.out.allContent(), inf.timing.promptTokens+inf.timing.evalTokens)
			}
		}
		return resp
	})
}

// contextTokens stands for the token ids Ollama returns as a generate
// reply's "context" (the prompt and reply tokenized, for a client to send
// back): n ids derived from the text, stable for the same text.
func contextTokens(text string, n int) []int {
	ids := make([]int, n)
	h := fnv64(text)
	for i := range ids {
		h = h*6364136223846793005 + 1442695040888963407
		ids[i] = int(h>>33) % 32000
	}
	return ids
}

package ollamasim

import (
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"unicode"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// handleEmbed serves POST /api/embed. Like Ollama it accepts any model
// (no capability check) and answers a missing model with the scheduler's
// "try pulling it first" wording; an empty input only loads the model.
func (s *Server) handleEmbed(w http.ResponseWriter, r *http.Request) {
	var req api.EmbedRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	s.stats.request()
	var inputs []string
	switch in := req.Input.(type) {
	case string:
		if in != "" {
			inputs = append(inputs, in)
		}
	case []any:
		for _, v := range in {
			str, ok := v.(string)
			if !ok {
				writeError(w, &httpError{http.StatusBadRequest, "invalid input type"})
				return
			}
			inputs = append(inputs, str)
		}
	case nil:
	default:
		writeError(w, &httpError{http.StatusBadRequest, "invalid input type"})
		return
	}
	if !validName(req.Model) {
		// The scheduler parses the name's printed form again, so an empty
		// name shows its missing part ("library/!MISSING!:latest").
		writeError(w, errUnqualifiedName(model.ParseName(req.Model).String()))
		return
	}
	m, ok := s.catalog.lookup(req.Model)
	if !ok {
		writeError(w, errNotFoundTryPulling(req.Model))
		return
	}
	if s.faults.roll(FaultBusy, m.Name) {
		s.stats.fault(FaultBusy)
		writeError(w, errMaxQueue)
		return
	}
	l, err := s.sched.acquire(r.Context(), m, s.numCtxOf(m, req.Options), s.keepAliveOf(req.KeepAlive))
	if err != nil {
		writeError(w, err)
		return
	}
	defer l.release()
	if len(inputs) == 0 {
		writeJSON(w, http.StatusOK, api.EmbedResponse{Model: req.Model, Embeddings: [][]float32{}})
		return
	}
	dims := m.EmbeddingLength
	if dims <= 0 {
		dims = 768
	}
	if req.Dimensions > 0 && req.Dimensions < dims {
		dims = req.Dimensions
	}
	tokens := 0
	out := make([][]float32, len(inputs))
	for i, text := range inputs {
		out[i] = embed(text, dims)
		tokens += countTokens(text)
	}
	t := newTiming(m, tokens, 0, l.gpuFraction, s.cfg.CPUSlowdown)
	if err := s.sleeper.sleep(r.Context(), t.prefill); err != nil {
		return
	}
	s.stats.served(m.Name, t.prefill, tokens, 0)
	writeJSON(w, http.StatusOK, api.EmbedResponse{
		Model:           req.Model,
		Embeddings:      out,
		TotalDuration:   l.loadDuration + t.prefill,
		LoadDuration:    l.loadDuration,
		PromptEvalCount: tokens,
	})
}

// embed is a hashed bag of words: every lower-cased word adds ±1 to a
// bucket chosen by its hash, and its character trigrams add ±0.5, so texts
// sharing words (or word stems) point in similar directions. The result is
// L2-normalised like Ollama's embeddings; empty text gives a zero vector.
func embed(text string, dims int) []float32 {
	v := make([]float64, dims)
	add := func(feature string, weight float64) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		sum := h.Sum64()
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		v[sum%uint64(dims)] += sign * weight
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range words {
		add("w:"+w, 1)
		padded := []rune("^" + w + "$")
		for i := 0; i+3 <= len(padded); i++ {
			add("t:"+string(padded[i:i+3]), 0.5)
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	out := make([]float32, dims)
	for i, x := range v {
		if norm > 0 {
			out[i] = float32(x / norm)
		}
	}
	return out
}

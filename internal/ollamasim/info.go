package ollamasim

import (
	"cmp"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// modifiedAt is the fixed "pulled at" time of every catalog model, so
// /api/tags output is reproducible.
var modifiedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// handleRoot answers the liveness probe clients use (`HEAD /`).
func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "Ollama is running")
	}
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

func details(m *Model) api.ModelDetails {
	return api.ModelDetails{
		Format:            "gguf",
		Family:            m.Family,
		Families:          []string{m.Family},
		ParameterSize:     m.ParameterSize,
		QuantizationLevel: m.QuantizationLevel,
	}
}

// handleTags lists the catalog as `ollama list` would: every catalog model
// counts as pulled.
func (s *Server) handleTags(w http.ResponseWriter, r *http.Request) {
	models := make([]api.ListModelResponse, 0, len(s.catalog))
	for _, m := range s.catalog {
		models = append(models, api.ListModelResponse{
			Name:       m.Name,
			Model:      m.Name,
			ModifiedAt: modifiedAt,
			Size:       m.Size,
			Digest:     m.digest(),
			Details:    details(m),
		})
	}
	slices.SortFunc(models, func(a, b api.ListModelResponse) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, api.ListResponse{Models: models})
}

// handlePS lists loaded models, longest remaining keep_alive first, with
// size_vram < size for partially offloaded ones.
func (s *Server) handlePS(w http.ResponseWriter, r *http.Request) {
	snap := s.sched.snapshot()
	models := make([]api.ProcessModelResponse, 0, len(snap))
	for _, ri := range snap {
		models = append(models, api.ProcessModelResponse{
			Name:          ri.model.Name,
			Model:         ri.model.Name,
			Size:          ri.size,
			SizeVRAM:      ri.sizeVRAM,
			Digest:        ri.model.digest(),
			Details:       details(ri.model),
			ExpiresAt:     ri.expiresAt,
			ContextLength: ri.numCtx,
		})
	}
	writeJSON(w, http.StatusOK, api.ProcessResponse{Models: models})
}

// handleShow serves POST /api/show with the fields agentd reads:
// capabilities, details, and model_info's context length.
func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	var req api.ShowRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := cmp.Or(req.Model, req.Name)
	badName := errUnqualifiedName(name)
	if name == "" {
		badName = errModelRequired
	}
	m, ok := s.lookupModel(w, name, badName)
	if !ok {
		return
	}
	caps := make([]model.Capability, len(m.Capabilities))
	for i, c := range m.Capabilities {
		caps[i] = model.Capability(c)
	}
	info := map[string]any{
		"general.architecture":           m.Family,
		"general.parameter_count":        parameterCount(m.ParameterSize),
		"general.file_type":              fileType(m.QuantizationLevel),
		m.Family + ".context_length":     m.ContextLength,
		m.Family + ".embedding_length":   m.EmbeddingLength,
		"ollamasim.decode_tokens_per_s":  m.DecodeTPS,
		"ollamasim.prefill_tokens_per_s": m.PrefillTPS,
		"ollamasim.size_bytes":           m.Size,
	}
	writeJSON(w, http.StatusOK, api.ShowResponse{
		Modelfile:    "FROM " + m.Name + "\n",
		Parameters:   m.Parameters,
		Template:     "{{ .Prompt }}",
		Details:      details(m),
		ModelInfo:    info,
		Capabilities: caps,
		ModifiedAt:   modifiedAt,
	})
}

// fileTypes maps quantization names to the GGUF general.file_type number
// (llama.cpp's llama_ftype) that /api/show reports in model_info.
var fileTypes = map[string]int{"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
	"Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
	"Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25, "IQ4_XS": 30, "BF16": 32}

// fileType is the GGUF file type for a quantization name; 0 (all F32) for
// a name it does not know, as for Ollama's "unknown".
func fileType(quantization string) int {
	return fileTypes[strings.ToUpper(quantization)]
}

// parameterCount turns "8.2B" / "137M" into a number, 0 if unparsable.
func parameterCount(size string) int64 {
	mult := 1.0
	switch {
	case strings.HasSuffix(size, "B"):
		mult = 1e9
	case strings.HasSuffix(size, "M"):
		mult = 1e6
	case strings.HasSuffix(size, "K"):
		mult = 1e3
	}
	f, err := strconv.ParseFloat(strings.TrimRight(size, "BMK"), 64)
	if err != nil {
		return 0
	}
	return int64(f * mult)
}

package ollamasim

import (
	"strings"

	"github.com/ollama/ollama/types/model"
)

// Capability names exactly as Ollama reports them in /api/show.
const (
	CapCompletion = "completion"
	CapTools      = "tools"
	CapEmbedding  = "embedding"
	CapVision     = "vision"
	CapThinking   = "thinking"
)

// Model is one entry of the simulator's catalog. Sizes and speeds drive the
// scheduler and latency model, so agentd's VRAM policy sees realistic numbers.
type Model struct {
	// Name with tag, as `ollama list` shows it ("qwen3:8b"). A bare name
	// in a request resolves to NAME:latest, so list both forms if needed.
	Name string
	// Size is the bytes the model occupies on disk and, once loaded, in
	// VRAM (KV cache growth with num_ctx is not modelled).
	Size              int64
	ParameterSize     string // "8.2B", as in /api/show details
	QuantizationLevel string // "Q4_K_M"
	Family            string // GGUF architecture ("qwen3", "gemma3")
	ContextLength     int    // trained context, reported as <family>.context_length
	EmbeddingLength   int    // vector size for /api/embed
	Capabilities      []string
	// Parameters is what /api/show reports as "parameters", the model's
	// PARAMETER lines ("temperature 0.8\ntop_k 40"); empty means none, and
	// /api/show then omits the field, as Ollama does.
	Parameters string
	// PrefillTPS and DecodeTPS are tokens per second when fully on GPU.
	PrefillTPS float64
	DecodeTPS  float64
}

// Has reports whether the model advertises capability c.
func (m *Model) Has(c string) bool {
	for _, x := range m.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// digest is a stable fake sha256 for the model, used by /api/tags and pull.
func (m *Model) digest() string {
	return sha256Hex("ollamasim/" + m.Name)
}

const (
	kb = 1000
	mb = 1000 * kb
	gb = 1000 * mb
)

// DefaultModels is the documented default catalog. Sizes are the Ollama
// library's Q4_K_M downloads (what `ollama list` shows); speeds are rough
// figures for a 24 GB consumer GPU (RTX 4090 class) and only need to be
// plausible relative to each other. gemma3 has no "tools" capability in
// Ollama (its template has no tool section), which makes it the stock
// example of a model that rejects tool requests. See README.md.
func DefaultModels() []Model {
	cc := []string{CapCompletion}
	ct := []string{CapCompletion, CapTools}
	models := []Model{
		{Name: "gemma3:12b", Size: 8_100 * mb, ParameterSize: "12.2B", QuantizationLevel: "Q4_K_M", Family: "gemma3", ContextLength: 131072, EmbeddingLength: 3840, Capabilities: append(cc, CapVision), PrefillTPS: 1500, DecodeTPS: 55},
		{Name: "gemma3:4b", Size: 3_300 * mb, ParameterSize: "4.3B", QuantizationLevel: "Q4_K_M", Family: "gemma3", ContextLength: 131072, EmbeddingLength: 2560, Capabilities: append(cc, CapVision), PrefillTPS: 3500, DecodeTPS: 120},
		{Name: "granite4:tiny-h", Size: 4_200 * mb, ParameterSize: "6.9B", QuantizationLevel: "Q4_K_M", Family: "granitehybrid", ContextLength: 131072, EmbeddingLength: 1536, Capabilities: ct, PrefillTPS: 4000, DecodeTPS: 140},
		{Name: "granite4:micro", Size: 2_100 * mb, ParameterSize: "3.4B", QuantizationLevel: "Q4_K_M", Family: "granite", ContextLength: 131072, EmbeddingLength: 2560, Capabilities: ct, PrefillTPS: 4500, DecodeTPS: 150},
		{Name: "qwen3:8b", Size: 5_200 * mb, ParameterSize: "8.2B", QuantizationLevel: "Q4_K_M", Family: "qwen3", ContextLength: 40960, EmbeddingLength: 4096, Capabilities: append(ct, CapThinking), PrefillTPS: 2500, DecodeTPS: 90},
		{Name: "qwen3:1.7b", Size: 1_400 * mb, ParameterSize: "2.0B", QuantizationLevel: "Q4_K_M", Family: "qwen3", ContextLength: 40960, EmbeddingLength: 2048, Capabilities: append(ct, CapThinking), PrefillTPS: 6000, DecodeTPS: 200},
		{Name: "llama3.2:3b", Size: 2_000 * mb, ParameterSize: "3.2B", QuantizationLevel: "Q4_K_M", Family: "llama", ContextLength: 131072, EmbeddingLength: 3072, Capabilities: ct, PrefillTPS: 4500, DecodeTPS: 150},
		{Name: "llama3.1:8b", Size: 4_900 * mb, ParameterSize: "8.0B", QuantizationLevel: "Q4_K_M", Family: "llama", ContextLength: 131072, EmbeddingLength: 4096, Capabilities: ct, PrefillTPS: 2500, DecodeTPS: 95},
		{Name: "phi4-mini:latest", Size: 2_500 * mb, ParameterSize: "3.8B", QuantizationLevel: "Q4_K_M", Family: "phi3", ContextLength: 131072, EmbeddingLength: 3072, Capabilities: ct, PrefillTPS: 4000, DecodeTPS: 130},
		{Name: "nomic-embed-text:latest", Size: 274 * mb, ParameterSize: "137M", QuantizationLevel: "F16", Family: "nomic-bert", ContextLength: 2048, EmbeddingLength: 768, Capabilities: []string{CapEmbedding}, PrefillTPS: 20000, DecodeTPS: 1},
	}
	for i := range models {
		models[i].Parameters = "temperature 0.8\ntop_k 40\ntop_p 0.9"
		if !models[i].Has(CapCompletion) {
			models[i].Parameters = "num_ctx 8192" // nomic-embed-text's Modelfile
		}
	}
	return models
}

// registryPrefix is how Ollama spells a fully qualified library model in
// capability errors ("registry.ollama.ai/library/gemma3:4b does not support tools").
const registryPrefix = "registry.ollama.ai/library/"

// normalizeName maps the ways a client may spell a model onto the catalog
// key: a missing tag means ":latest" and the default registry prefix is
// dropped, as Ollama's model.ParseName does.
func normalizeName(name string) string {
	n := strings.TrimSpace(name)
	n = strings.TrimPrefix(n, registryPrefix)
	if n == "" {
		return ""
	}
	if !strings.Contains(n[strings.LastIndex(n, "/")+1:], ":") {
		n += ":latest"
	}
	return n
}

// validName reports whether Ollama can parse name as a model name at all
// (types/model.ParseName: every part present and well formed once the
// defaults are filled in); an empty name is not.
func validName(name string) bool {
	return model.ParseName(name).IsValid()
}

// fullName is the fully qualified name Ollama prints in capability errors.
func fullName(name string) string {
	return registryPrefix + normalizeName(name)
}

// catalog indexes models by normalized name. It is immutable after New.
type catalog map[string]*Model

func newCatalog(models []Model) catalog {
	c := make(catalog, len(models))
	for i := range models {
		m := models[i]
		m.Name = normalizeName(m.Name)
		c[m.Name] = &m
	}
	return c
}

func (c catalog) lookup(name string) (*Model, bool) {
	m, ok := c[normalizeName(name)]
	return m, ok
}

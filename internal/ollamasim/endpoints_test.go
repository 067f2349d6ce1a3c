package ollamasim

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
)

func TestRootAndVersion(t *testing.T) {
	s, c := startSim(t, Config{})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequestWithContext(t.Context(), method, s.URL()+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "Ollama is running"
		if method == http.MethodHead {
			want = ""
		}
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("%s / = %d %q", method, resp.StatusCode, body)
		}
	}
	if err := c.Heartbeat(t.Context()); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	v, err := c.Version(t.Context())
	if err != nil || v != DefaultVersion {
		t.Fatalf("version %q, %v", v, err)
	}
}

func TestTagsAndShow(t *testing.T) {
	_, c := startSim(t, Config{})
	list, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != len(DefaultModels()) {
		t.Fatalf("%d models listed", len(list.Models))
	}
	for _, m := range list.Models {
		if m.Size <= 0 || len(m.Digest) != 64 || m.Details.Family == "" {
			t.Errorf("incomplete entry %+v", m)
		}
	}
	tests := []struct {
		model    string
		caps     []string
		ctxKey   string
		ctxValue float64
	}{
		{"gemma3:4b", []string{"completion", "vision"}, "gemma3.context_length", 131072},
		{"qwen3:8b", []string{"completion", "tools", "thinking"}, "qwen3.context_length", 40960},
		{"nomic-embed-text", []string{"embedding"}, "nomic-bert.context_length", 2048},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			r, err := c.Show(t.Context(), &api.ShowRequest{Model: tt.model})
			if err != nil {
				t.Fatal(err)
			}
			var caps []string
			for _, c := range r.Capabilities {
				caps = append(caps, string(c))
			}
			if strings.Join(caps, ",") != strings.Join(tt.caps, ",") {
				t.Errorf("capabilities %v, want %v", caps, tt.caps)
			}
			if r.ModelInfo[tt.ctxKey] != tt.ctxValue {
				t.Errorf("model_info[%s] = %v", tt.ctxKey, r.ModelInfo[tt.ctxKey])
			}
			if r.Details.ParameterSize == "" || r.Details.QuantizationLevel == "" || r.Parameters == "" {
				t.Errorf("details %+v parameters %q", r.Details, r.Parameters)
			}
		})
	}
}

func TestPull(t *testing.T) {
	_, c := startSim(t, Config{})
	var statuses []string
	var last api.ProgressResponse
	layersDone := 0
	err := c.Pull(t.Context(), &api.PullRequest{Model: "llama3.2:3b"}, func(p api.ProgressResponse) error {
		if len(statuses) == 0 || statuses[len(statuses)-1] != p.Status {
			statuses = append(statuses, p.Status)
		}
		if p.Total > 0 && p.Completed == p.Total {
			layersDone++
		}
		if p.Completed > p.Total {
			t.Errorf("completed %d > total %d", p.Completed, p.Total)
		}
		last = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if statuses[0] != "pulling manifest" || !strings.HasPrefix(statuses[1], "pulling ") || len(statuses[1]) != len("pulling ")+12 {
		t.Fatalf("statuses %v", statuses)
	}
	tail := strings.Join(statuses[len(statuses)-3:], "|")
	if tail != "verifying sha256 digest|writing manifest|success" || last.Status != "success" || layersDone != 4 {
		t.Fatalf("statuses %v, %d layers completed", statuses, layersDone)
	}

	err = c.Pull(t.Context(), &api.PullRequest{Model: "no-such-model"}, func(api.ProgressResponse) error { return nil })
	if err == nil || err.Error() != "pull model manifest: file does not exist" {
		t.Fatalf("unknown model pull: %v", err)
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func TestEmbed(t *testing.T) {
	s, c := startSim(t, Config{})
	r, err := c.Embed(t.Context(), &api.EmbedRequest{Model: "nomic-embed-text", Input: []string{
		"the weather in Austin is hot today",
		"today the weather is hot in Austin, Texas",
		"quarterly invoice totals for the finance team",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Embeddings) != 3 || len(r.Embeddings[0]) != 768 || r.PromptEvalCount == 0 {
		t.Fatalf("got %d vectors of %d dims, %d tokens", len(r.Embeddings), len(r.Embeddings[0]), r.PromptEvalCount)
	}
	for i, v := range r.Embeddings {
		if n := cosine(v, v); math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d not unit length", i)
		}
	}
	similar, different := cosine(r.Embeddings[0], r.Embeddings[1]), cosine(r.Embeddings[0], r.Embeddings[2])
	if similar < 0.6 || different > 0.3 || similar <= different {
		t.Fatalf("similar=%.3f different=%.3f", similar, different)
	}
	again, err := c.Embed(t.Context(), &api.EmbedRequest{Model: "nomic-embed-text", Input: "the weather in Austin is hot today", Dimensions: 256})
	if err != nil || len(again.Embeddings[0]) != 256 {
		t.Fatalf("dimensions: %v", err)
	}
	if s.Stats().Models["nomic-embed-text:latest"].Loads != 1 {
		t.Fatal("embedding model should load once")
	}
}

func TestGenerate(t *testing.T) {
	_, c := startSim(t, Config{Seed: 4})
	var text strings.Builder
	var final api.GenerateResponse
	chunks := 0
	err := c.Generate(t.Context(), &api.GenerateRequest{Model: "phi4-mini", System: "be brief", Prompt: "name a colour"}, func(r api.GenerateResponse) error {
		chunks++
		text.WriteString(r.Response)
		final = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chunks < 3 || !final.Done || final.DoneReason != "stop" || final.EvalCount != countTokens(text.String()) || !strings.Contains(text.String(), "name a colour") || len(final.Context) == 0 {
		t.Fatalf("chunks=%d final=%+v text=%q", chunks, final, text.String())
	}
}

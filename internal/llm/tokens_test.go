package llm

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

func TestTokensDefaultUntilTrusted(t *testing.T) {
	tk := NewTokens()
	if got := tk.BytesPerToken("qwen3:8b"); got != DefaultBytesPerToken {
		t.Fatalf("unknown model: %v bytes/token, want the default %v", got, DefaultBytesPerToken)
	}
	if got := tk.Estimate("qwen3:8b", strings.Repeat("x", 401)); got != 101 {
		t.Errorf("estimate of 401 bytes = %d, want 101 (4 bytes a token, rounded up)", got)
	}
	for i := 1; i <= minSamples; i++ {
		if !tk.Observe("qwen3:8b", 3000, 1000, 0) {
			t.Fatalf("sample %d not used", i)
		}
		c := tk.Calibration("qwen3:8b")
		if want := i >= minSamples; c.Trusted != want {
			t.Fatalf("after %d samples trusted = %v, want %v", i, c.Trusted, want)
		}
		if !c.Trusted && c.BytesPerToken != DefaultBytesPerToken {
			t.Fatalf("untrusted ratio %v, want the default", c.BytesPerToken)
		}
	}
	if got := tk.BytesPerToken("qwen3:8b"); got != 3 {
		t.Errorf("calibrated ratio %v, want 3", got)
	}
	// "qwen3:8b" and its spelling with the registry prefix are one model;
	// another model is not calibrated by it.
	if got := tk.BytesPerToken("registry.ollama.ai/library/QWEN3:8b"); got != 3 {
		t.Errorf("same model, other spelling: %v", got)
	}
	if got := tk.BytesPerToken("llama3.2"); got != DefaultBytesPerToken {
		t.Errorf("other model: %v, want the default", got)
	}
	if got := tk.Estimate("qwen3:8b", strings.Repeat("x", 301)); got != 101 {
		t.Errorf("estimate of 301 bytes at 3 a token = %d, want 101", got)
	}
}

func TestTokensRejectsCountsThatAreNotThePrompts(t *testing.T) {
	tests := []struct {
		name          string
		bytes, tokens int
		numCtx        int
	}{
		{"no count", 4000, 0, 0},
		{"prompt too small for the template not to decide", 200, 50, 0},
		{"cached prefix not counted", 8000, 12, 0},
		{"more tokens than bytes twice over", 1000, 2100, 0},
		{"filled the configured context", 30000, 4096, 4096},
		{"close to the configured context", 30000, 8000, 8192},
		{"cut to an unknown context: a power of two", 9000, 2048, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := NewTokens()
			if tk.Observe("m", tt.bytes, tt.tokens, tt.numCtx) {
				t.Errorf("sample %d bytes / %d tokens (num_ctx %d) was used", tt.bytes, tt.tokens, tt.numCtx)
			}
			if c := tk.Calibration("m"); c.Samples != 0 {
				t.Errorf("calibration %+v after a rejected sample", c)
			}
		})
	}
	// A power of two within a known, larger context is a whole prompt.
	if !NewTokens().Observe("m", 8000, 2048, 32768) {
		t.Error("2048 tokens within a 32768 context was rejected")
	}
}

func TestTokensRatioOfTotalsClampedAndDecayed(t *testing.T) {
	tk := NewTokens()
	// Big and small prompts: the ratio of totals weighs the big one,
	// where the template's tokens matter least.
	tk.Observe("m", 12000, 3000, 0) // 4.0
	tk.Observe("m", 300, 100, 0)    // 3.0
	tk.Observe("m", 3000, 1000, 0)  // 3.0
	want := (12000*sampleDecay*sampleDecay + 300*sampleDecay + 3000) / (3000*sampleDecay*sampleDecay + 100*sampleDecay + 1000)
	if got := tk.BytesPerToken("m"); math.Abs(got-want) > 1e-9 {
		t.Errorf("ratio %v, want %v", got, want)
	}

	// A byte-level vocabulary counts a token for each byte plus the
	// template's: the ratio stays at the floor of one.
	bytes := NewTokens()
	for range minSamples {
		bytes.Observe("tiny", 1000, 1040, 0)
	}
	if got := bytes.BytesPerToken("tiny"); got != minBytesPerToken {
		t.Errorf("byte-level ratio %v, want the floor %v", got, minBytesPerToken)
	}
	wide := NewTokens()
	for range minSamples {
		wide.Observe("m", 12000, 1000, 0)
	}
	if got := wide.BytesPerToken("m"); got != maxBytesPerToken {
		t.Errorf("ratio 12 clamped to %v, want %v", got, maxBytesPerToken)
	}
}

func TestTokensIgnoresOutliersThenRemeasures(t *testing.T) {
	tk := NewTokens()
	for range minSamples {
		tk.Observe("m", 4000, 1000, 0)
	}
	// A cut prompt: 10000 bytes counted as 1000 tokens, ratio 10 against 4.
	for i := 1; i < resetAfterOutlier; i++ {
		if tk.Observe("m", 10000, 1000, 0) {
			t.Fatalf("outlier %d was used", i)
		}
	}
	if got := tk.BytesPerToken("m"); got != 4 {
		t.Fatalf("ratio moved to %v after outliers", got)
	}
	// One sample in line ends the run of outliers.
	tk.Observe("m", 4000, 1000, 0)
	for i := 1; i < resetAfterOutlier; i++ {
		tk.Observe("m", 1000, 900, 0)
	}
	if got := tk.BytesPerToken("m"); got != 4 {
		t.Fatalf("ratio moved to %v after non-consecutive outliers", got)
	}
	// Eight in a row: the model under this name is another one now.
	tk.Observe("m", 1000, 900, 0)
	c := tk.Calibration("m")
	if c.Samples != 1 || c.Trusted || c.BytesPerToken != DefaultBytesPerToken {
		t.Fatalf("after %d outliers in a row: %+v, want measuring again from one sample", resetAfterOutlier, c)
	}
	tk.Observe("m", 1000, 900, 0)
	tk.Observe("m", 1000, 900, 0)
	if got := tk.BytesPerToken("m"); math.Abs(got-1000.0/900) > 1e-9 {
		t.Errorf("re-measured ratio %v, want %v", got, 1000.0/900)
	}
}

func TestTokensConcurrentUse(t *testing.T) {
	tk := NewTokens()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model := []string{"a", "b"}[g%2]
			for range 200 {
				tk.Observe(model, 3000, 1000, 0)
				_ = tk.Estimate(model, "some text to size")
				_ = tk.Calibration(model)
			}
		}()
	}
	wg.Wait()
	for _, m := range []string{"a", "b"} {
		if c := tk.Calibration(m); c.Samples != 800 || math.Abs(c.BytesPerToken-3) > 1e-9 {
			t.Errorf("%s: %+v, want 800 samples at 3 bytes a token", m, c)
		}
	}
}

func TestPromptBytes(t *testing.T) {
	msgs := []api.Message{
		{Role: "system", Content: "0123456789"},
		{Role: "assistant", Content: "ab", ToolCalls: []api.ToolCall{{Function: api.ToolCallFunction{Name: "calc"}}}},
	}
	n, ok := promptBytes(msgs, nil)
	b, _ := json.Marshal(msgs[1].ToolCalls[0].Function)
	call := len(b)
	if !ok || n != 12+call {
		t.Errorf("promptBytes = %d, %v; want %d (contents and the tool call as JSON)", n, ok, 12+call)
	}
	tools := api.Tools{{Type: "function", Function: api.ToolFunction{Name: "calc", Description: "Evaluate arithmetic."}}}
	if m, _ := promptBytes(msgs, tools); m <= n {
		t.Errorf("tools offered add nothing: %d", m)
	}
	if _, ok := promptBytes([]api.Message{{Role: "user", Content: "what is this", Images: []api.ImageData{[]byte{1}}}}, nil); ok {
		t.Error("a prompt with an image was measured")
	}
}

// TestChatCalibratesTokens: every chat call feeds its prompt count to the
// client's estimator; a num_ctx from config marks counts that filled it.
func TestChatCalibratesTokens(t *testing.T) {
	f := newFake(t)
	counts := []int{1000, 1000, 1000, 8192}
	f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		c := done("ok", "stop")
		c.PromptEvalCount = counts[n-1]
		writeChunks(w, c)
	}
	models := config.ModelsConfig{Options: map[string]config.ModelOptions{"qwen3:8b": {NumCtx: 8192}}}
	c := newClient(t, single(f), models)
	prompt := strings.Repeat("abc ", 750) // 3000 bytes
	for range counts {
		if _, err := c.Chat(context.Background(), Request{Model: "qwen3:8b", Messages: userMsg(prompt)}); err != nil {
			t.Fatal(err)
		}
	}
	got := c.Tokens().Calibration("qwen3:8b")
	if !got.Trusted || got.BytesPerToken != 3 || got.Samples != 3 || got.Rejected != 1 {
		t.Errorf("calibration %+v, want 3 bytes a token from 3 samples, the one that filled num_ctx rejected", got)
	}
	shared := NewTokens()
	c2 := newClient(t, single(f), models, WithTokens(shared))
	if c2.Tokens() != shared {
		t.Error("WithTokens did not set the estimator")
	}
}

package ollamasim_test

import (
	"fmt"
	"testing"

	"github.com/agentd/agentd/internal/ollamasim"
)

// TestGrammarLimits holds the simulator to the grammar decisions measured
// on the real server (the differential test's table, with the answers
// Ollama v0.17.4 gave), without needing a real server.
func TestGrammarLimits(t *testing.T) {
	sim := ollamasim.New(differentialConfig())
	url, err := sim.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	chat := func(model, content, extra string) string {
		return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]%s}`, model, content, extra)
	}
	for _, c := range grammarCases(chat, `"num_thread":1`) {
		if c.real == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			o := observe(t, url, c)
			if o.Status != c.real.status || o.errorText() != c.real.err {
				t.Fatalf("%s\ngot %d %q, want %d %q", c.body, o.Status, o.errorText(), c.real.status, c.real.err)
			}
		})
	}
}

package ollamasim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/ollamatest"
)

// TestPromptCacheLikeTheRealServer replays one sequence of prompts on a
// real Ollama and on the simulator and checks that both spare the prefill
// of a prompt whose prefix the slot already holds, and only then: a prompt
// sent again, a new request after the same long prefix and a conversation
// that grows by a turn prefill fast; another prompt in between evicts the
// one-slot cache, and the first prompt is slow again. Both count the
// prompt whole every time (0.17.4 reports cached tokens in
// prompt_eval_count). Measured on 0.17.4 with the tiny model: 564 ms cold,
// 1.4 ms again, 34 ms with a new tail, 12 ms for the next turn.
func TestPromptCacheLikeTheRealServer(t *testing.T) {
	// A private server where possible: on the shared one, another
	// package's request can take the slot between two of these.
	ollama, simURL := realAndSim(t)

	var words []string
	for i := range 50 {
		words = append(words, fmt.Sprintf("word%d the planner", i))
	}
	prefix := strings.Join(words, " ")
	user := func(s string) map[string]string { return map[string]string{"role": "user", "content": s} }
	steps := []struct {
		name string
		msgs []map[string]string
		fast bool
	}{
		{"cold", []map[string]string{user(prefix + " first question about cities")}, false},
		{"again", []map[string]string{user(prefix + " first question about cities")}, true},
		{"new tail", []map[string]string{user(prefix + " a different request about boats")}, true},
		{"other prompt", []map[string]string{user(strings.Repeat("x ", 500) + "about boats")}, false},
		{"first prefix after eviction", []map[string]string{user(prefix + " third one")}, false},
		{"next turn", []map[string]string{user(prefix + " third one"), {"role": "assistant", "content": "ok"}, user("more")}, true},
	}
	for _, srv := range []struct{ name, url string }{{"real", ollama.URL}, {"simulator", simURL}} {
		var cold time.Duration
		for i, st := range steps {
			count, took := promptEval(t, srv.url, st.msgs)
			if i == 0 {
				cold = took
				continue
			}
			if st.fast != (took < cold/4) {
				t.Errorf("%s, %s: prompt_eval_duration %v against %v cold; want cached: %v", srv.name, st.name, took, cold, st.fast)
			}
			if count < 100 {
				t.Errorf("%s, %s: prompt_eval_count %d: the cached part must be counted too", srv.name, st.name, count)
			}
		}
	}
}

func promptEval(t *testing.T, url string, msgs []map[string]string) (int, time.Duration) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": ollamatest.Plain, "stream": false, "messages": msgs,
		"options": map[string]any{"num_predict": 2, "num_thread": 1, "seed": 1}})
	resp, err := http.Post(url+"/api/chat", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		PromptEvalCount    int           `json:"prompt_eval_count"`
		PromptEvalDuration time.Duration `json:"prompt_eval_duration"`
		Error              string        `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %q %v", url, resp.StatusCode, out.Error, err)
	}
	return out.PromptEvalCount, out.PromptEvalDuration
}

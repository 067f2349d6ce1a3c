package ollamasim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/agentd/agentd/internal/ollamatest"
)

// TestFormatIsNotPrompt holds the simulator to what the real server does
// with a structured-output schema: it becomes a grammar, not prompt text,
// so prompt_eval_count is the same with and without it. (The simulator
// used to count the schema as prompt tokens, which charged every planner
// call about a thousand tokens the real server never prefills.)
func TestFormatIsNotPrompt(t *testing.T) {
	ollama, simURL := realAndSim(t)

	schema := `{"type":"object","properties":{"goal":{"type":"string"},"steps":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"tool":{"type":"string","enum":["get_weather","lookup_city"]},"args":{"type":"object"}},"required":["id"]}},"answer":{"type":"string"}},"required":["goal","steps","answer"]}`
	count := func(url, format string) int {
		t.Helper()
		body := fmt.Sprintf(`{"model":%q,"stream":false,"messages":[{"role":"user","content":"Compare the weather in Paris and Lyon."}],"options":{"num_predict":2,"seed":1,"num_thread":1}%s}`,
			ollamatest.Plain, format)
		resp, err := http.Post(url+"/api/chat", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			PromptEvalCount int    `json:"prompt_eval_count"`
			Error           string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %q %v", url, resp.StatusCode, out.Error, err)
		}
		return out.PromptEvalCount
	}
	for _, srv := range []struct{ name, url string }{{"real", ollama.URL}, {"simulator", simURL}} {
		plain := count(srv.url, "")
		// A fresh prompt each time would defeat the check (a cached
		// prompt is counted whole on 0.17.4, so order does not matter).
		withSchema := count(srv.url, `,"format":`+schema)
		withJSON := count(srv.url, `,"format":"json"`)
		if plain == 0 || withSchema != plain || withJSON != plain {
			t.Errorf("%s: prompt_eval_count %d plain, %d with a schema, %d with format json; want all equal and > 0",
				srv.name, plain, withSchema, withJSON)
		}
	}
}

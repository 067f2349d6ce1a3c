package llm

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

// streamServer answers /api/chat with a short stream: three chunks, then
// the final one.
func streamServer(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, tok := range []string{"The ", "result ", "is 51."} {
			fmt.Fprintf(w, `{"model":"m","message":{"role":"assistant","content":%q},"done":false}`+"\n", tok)
		}
		fmt.Fprintln(w, `{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":20,"eval_count":3}`)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func streamClient(tb testing.TB, url string) *Client {
	c, err := New(config.OllamaConfig{Endpoints: []config.EndpointConfig{{Name: "x", URL: url}}}, config.ModelsConfig{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// The pooled stream reads what api.Client reads, and maps an error
// answer the same way (the classification tests go through it too).
func TestChatStreamMatchesAPIClient(t *testing.T) {
	srv := streamServer(t)
	c := streamClient(t, srv.URL)
	resp, err := c.Chat(context.Background(), Request{Model: "m", Messages: []api.Message{{Role: "user", Content: "hi"}}})
	if err != nil || resp.Message.Content != "The result is 51." || resp.Usage.OutputTokens != 3 || resp.DoneReason != "stop" {
		t.Fatalf("resp = %+v, %v", resp, err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error":"model \"m\" not found, try pulling it first"}`)
	}))
	defer bad.Close()
	ep := streamClient(t, bad.URL).endpoints[0]
	err = ep.chat(context.Background(), &api.ChatRequest{Model: "m"}, func(api.ChatResponse) error { return nil })
	want := ep.api.Chat(context.Background(), &api.ChatRequest{Model: "m"}, func(api.ChatResponse) error { return nil })
	if fmt.Sprintf("%#v", err) != fmt.Sprintf("%#v", want) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("error = %#v, api.Client's = %#v", err, want)
	}
}

// BenchmarkChatCall is one short streamed call through the client: its
// bytes per call are what each model call costs the process (api.Client
// alone allocated an 8 MB line buffer per call).
func BenchmarkChatCall(b *testing.B) {
	srv := streamServer(b)
	c := streamClient(b, srv.URL)
	req := Request{Model: "m", Messages: []api.Message{{Role: "user", Content: "What is 17 times 3?"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

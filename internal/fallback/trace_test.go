package fallback

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestRemoteCallSpan: each remote planning call is a "chat <model>" span
// with the provider, model, tokens, cost and bytes, and never the request
// or the reply text (the redacted request still leaves the machine only
// as the ledger records it).
func TestRemoteCallSpan(t *testing.T) {
	f := newFakeRemote(t)
	cfg := testConfig(f, "ollama")
	prov, err := NewProvider(cfg, ProviderOptions{Key: "sk-test-key-1234567890abcdef", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	g, err := NewGate(context.Background(), GateOptions{Config: cfg, Store: openStore(t), Provider: prov, Logger: discardLogger(),
		Tracer: tp.Tracer("test")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.PlanRemote(t.Context(), PlanRequest{RunID: "r1", UserRequest: "call +47 912 34 567 about the pump", Schema: []byte(testSchema)}); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "chat "+testModel {
		t.Fatalf("spans %v", spans)
	}
	attrs := map[string]string{}
	for _, a := range spans[0].Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
		if strings.Contains(a.Value.Emit(), "pump") || strings.Contains(a.Value.Emit(), "912") {
			t.Errorf("attribute %s carries request text: %s", a.Key, a.Value.Emit())
		}
	}
	if attrs["gen_ai.provider.name"] != "ollama" || attrs["gen_ai.request.model"] != testModel || attrs["agentd.run.id"] != "r1" ||
		attrs["gen_ai.usage.input_tokens"] == "0" || attrs["agentd.bytes_out"] == "0" || attrs["agentd.remote"] != "true" {
		t.Fatalf("attributes %v", attrs)
	}
}

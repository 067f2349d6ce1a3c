package telemetry

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/telemetry/genai"
	"github.com/agentd/agentd/internal/telemetry/otlptest"
)

func TestSpansReachReceiverWithoutContentUnlessAsked(t *testing.T) {
	const secret = "the quarterly numbers for ACME"
	for _, content := range []bool{false, true} {
		t.Run(map[bool]string{false: "content off", true: "content on"}[content], func(t *testing.T) {
			rcv := otlptest.Start()
			defer rcv.Close()
			tr, err := New(Options{Config: config.TelemetryConfig{Traces: true, OTLPEndpoint: rcv.URL,
				IncludeContent: content, SampleRatio: 1}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, run := tr.Tracer().Start(context.Background(), "invoke_agent agentd",
				// What the executor does: content only when allowed.
				withContent(tr.IncludeContent(), genai.OperationName.String(genai.OpInvokeAgent), genai.AgentName.String(genai.Agent))...)
			_, chat := tr.Tracer().Start(ctx, "chat granite4:tiny-h")
			chat.SetAttributes(genai.ProviderName.String("ollama"), genai.UsageInputTokens.Int(12))
			chat.End()
			run.End()
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Spans()
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2", len(spans))
			}
			byName := map[string]*tracepb.Span{}
			for _, s := range spans {
				byName[s.Name] = s
			}
			root, child := byName["invoke_agent agentd"], byName["chat granite4:tiny-h"]
			if root == nil || child == nil {
				t.Fatalf("span names = %v", byName)
			}
			if string(child.ParentSpanId) != string(root.SpanId) {
				t.Error("chat span is not the run span's child")
			}
			if v, _ := otlptest.Attr(root, "gen_ai.agent.name"); v.GetStringValue() != "agentd" {
				t.Errorf("gen_ai.agent.name = %v", v)
			}
			if v, _ := otlptest.Attr(child, "gen_ai.usage.input_tokens"); v.GetIntValue() != 12 {
				t.Errorf("gen_ai.usage.input_tokens = %v", v)
			}
			v, ok := otlptest.Attr(root, "gen_ai.input.messages")
			if got := ok && strings.Contains(v.GetStringValue(), secret); got != content {
				t.Errorf("prompt text on the span = %v, want %v", got, content)
			}
			for _, s := range spans {
				for _, kv := range s.Attributes {
					if !content && strings.Contains(kv.GetValue().GetStringValue(), secret) {
						t.Errorf("span %s carries prompt text in %s", s.Name, kv.Key)
					}
				}
			}
			sent, reqs := tr.Sent()
			if got, _ := rcv.Received(); sent != got || reqs < 1 {
				t.Errorf("counted %d bytes in %d requests; the receiver got %d bytes", sent, reqs, got)
			}
		})
	}
}

// withContent is the executor's rule in small: the request text goes on
// the span only when content is allowed.
func withContent(content bool, kv ...attribute.KeyValue) []trace.SpanStartOption {
	if content {
		kv = append(kv, genai.InputMessages.String(genai.Messages(genai.Text("user", "Summarise "+"the quarterly numbers for ACME"))))
	}
	return []trace.SpanStartOption{trace.WithAttributes(kv...)}
}

func TestOffIsNoop(t *testing.T) {
	tr, err := New(Options{Config: config.Default().Telemetry})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(context.Background(), "x")
	if span.SpanContext().IsValid() || tr.Enabled() {
		t.Error("traces off still makes real spans")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// fakeLedger is the egress ledger in memory.
type fakeLedger struct {
	mu   sync.Mutex
	rows []string
}

func (l *fakeLedger) Sent(_ context.Context, host string, n int64, sha string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= 0 || len(sha) != 64 {
		return 0, io.ErrUnexpectedEOF
	}
	l.rows = append(l.rows, host+" sent")
	return int64(len(l.rows)), nil
}

func (l *fakeLedger) Finished(_ context.Context, id, _ int64, status string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows[id-1] = strings.Replace(l.rows[id-1], "sent", status, 1)
	return nil
}

func TestEgressRecordedOnlyOffLoopback(t *testing.T) {
	rcv := otlptest.Start()
	defer rcv.Close()
	for _, tt := range []struct {
		name, endpoint string
		want           int
	}{
		{"loopback", rcv.URL, 0},
		// .invalid resolves nowhere: the request fails, and the ledger
		// still holds it, as failed.
		{"off machine", "http://collector.invalid:4318", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLedger{}
			tr, err := New(Options{Config: config.TelemetryConfig{Traces: true, OTLPEndpoint: tt.endpoint, Insecure: true, SampleRatio: 1},
				Ledger: l})
			if err != nil {
				t.Fatal(err)
			}
			_, s := tr.Tracer().Start(context.Background(), "x")
			s.End()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = tr.ForceFlush(ctx)
			_ = tr.Shutdown(ctx)
			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.rows) < tt.want || (tt.want == 0 && len(l.rows) != 0) {
				t.Fatalf("ledger rows = %v, want %d", l.rows, tt.want)
			}
			if tt.want > 0 && l.rows[0] != "collector.invalid failed" {
				t.Errorf("ledger row = %q", l.rows[0])
			}
		})
	}
}

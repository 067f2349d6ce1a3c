package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/telemetry/otlptest"
)

// TestTraceOfARun: with traces on and a local OTLP receiver, one request
// through the whole daemon on the simulator exports a run span whose trace
// holds the planning span (with the planner's model call under it), the
// tool's span and the summarizer's model call, with the GenAI attributes
// and no prompt text; the run's trace id in the API is that trace's.
func TestTraceOfARun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rcv := otlptest.Start()
	defer rcv.Close()
	const request = "What is 17 times 3?"
	d := startOnSimulatorWith(t, ctx, sumSimulator(), func(cfg *config.Config) {
		cfg.Telemetry = config.TelemetryConfig{Traces: true, OTLPEndpoint: rcv.URL, SampleRatio: 1}
	})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: request, Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	final, err := d.Engine.Wait(wctx, r.ID)
	if err != nil || final.Status != run.Done {
		t.Fatalf("run = %+v, %v", final, err)
	}
	if err := d.Telemetry.ForceFlush(wctx); err != nil {
		t.Fatal(err)
	}

	spans := rcv.Spans()
	var root *tracepb.Span
	for _, s := range spans {
		if s.Name == "invoke_agent agentd" {
			root = s
		}
	}
	if root == nil {
		t.Fatalf("no run span among %d spans", len(spans))
	}
	if v, _ := otlptest.Attr(root, "agentd.run.id"); v.GetStringValue() != r.ID {
		t.Errorf("run span's run id = %v, want %s", v, r.ID)
	}
	if v, _ := otlptest.Attr(root, "agentd.run.status"); v.GetStringValue() != "done" {
		t.Errorf("run span's status = %v", v)
	}
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		if string(s.TraceId) == string(root.TraceId) {
			byID[string(s.SpanId)] = s
		}
	}
	parent := func(s *tracepb.Span) string {
		if p := byID[string(s.ParentSpanId)]; p != nil {
			return p.Name
		}
		return ""
	}
	var plans, tools, chats int
	for _, s := range byID {
		switch {
		case s.Name == "plan agentd":
			plans++
			if parent(s) != root.Name {
				t.Errorf("planning span's parent = %q", parent(s))
			}
		case s.Name == "execute_tool calc":
			tools++
			if parent(s) != root.Name {
				t.Errorf("tool span's parent = %q", parent(s))
			}
			if v, _ := otlptest.Attr(s, "gen_ai.tool.name"); v.GetStringValue() != "calc" {
				t.Errorf("gen_ai.tool.name = %v", v)
			}
		case strings.HasPrefix(s.Name, "chat "):
			chats++
			if p := parent(s); p != root.Name && p != "plan agentd" {
				t.Errorf("model call span %s's parent = %q", s.Name, p)
			}
			if v, _ := otlptest.Attr(s, "gen_ai.provider.name"); v.GetStringValue() != "ollama" {
				t.Errorf("%s: gen_ai.provider.name = %v", s.Name, v)
			}
			if v, _ := otlptest.Attr(s, "gen_ai.usage.input_tokens"); v.GetIntValue() <= 0 {
				t.Errorf("%s: gen_ai.usage.input_tokens = %v", s.Name, v)
			}
		}
		for _, kv := range s.Attributes {
			if strings.Contains(kv.GetValue().GetStringValue(), request) || strings.Contains(kv.GetValue().GetStringValue(), "result is 51") {
				t.Errorf("span %s carries text in %s with include_content off", s.Name, kv.Key)
			}
		}
	}
	if plans != 1 || tools != 1 || chats < 2 {
		t.Errorf("spans in the run's trace: %d planning, %d tool, %d model calls; want 1, 1, at least 2", plans, tools, chats)
	}

	// The API's run carries the trace id.
	tok, err := os.ReadFile(d.paths.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.Addr().String()+"/api/v1/runs/"+r.ID, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var detail struct {
		Run struct {
			TraceID string `json:"trace_id"`
		} `json:"run"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&detail); err != nil {
		t.Fatal(err)
	}
	if want := hexID(root.TraceId); detail.Run.TraceID != want {
		t.Errorf("API run trace_id = %q, want the run span's %q", detail.Run.TraceID, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// BenchmarkRunTraces is the added time per run with trace export on,
// against a local OTLP receiver, beside the same runs with traces off; it
// reports the spans exported per run. (A figure, not a test: no timing is
// asserted.)
func BenchmarkRunTraces(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rcv := otlptest.Start()
			defer rcv.Close()
			d := startOnSimulatorWith(b, ctx, sumSimulator(), func(cfg *config.Config) {
				cfg.Planner.Cache.Enabled = false // every run plans, as a first run does
				if on {
					cfg.Telemetry = config.TelemetryConfig{Traces: true, OTLPEndpoint: rcv.URL, SampleRatio: 1}
				}
			})
			done := make(chan struct{})
			go func() { _ = d.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "What is 17 times 3?", Source: "api"})
				if err != nil {
					b.Fatal(err)
				}
				if final, err := d.Engine.Wait(ctx, r.ID); err != nil || final.Status != run.Done {
					b.Fatalf("run = %+v, %v", final, err)
				}
			}
			b.StopTimer()
			_ = d.Telemetry.ForceFlush(ctx)
			bytes, _ := rcv.Received()
			b.ReportMetric(float64(len(rcv.Spans()))/float64(b.N), "spans/run")
			b.ReportMetric(float64(bytes)/float64(b.N), "otlp-bytes/run")
		})
	}
}

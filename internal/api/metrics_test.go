package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

func TestMetricsScrape(t *testing.T) {
	var m *Metrics
	env := newTestEnv(t, func(_ *Config, d *Deps) {
		m = NewMetrics(MetricsSource{
			RunCounts: func(context.Context) (map[run.Status]int, error) {
				return map[run.Status]int{run.Done: 3, run.Running: 1}, nil
			},
			Hardware: func() (any, bool) {
				return json.RawMessage(`{"gpus":[{"index":0,"name":"RTX 4000","memory_total_bytes":20000000000,"memory_used_bytes":9000000000,"utilization_percent":55}],
					"host":{"memory_used_percent":41.5,"cpu_percent":12.5}}`), true
			},
		}, quiet)
		d.Metrics = m
	})
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	since := env.bus.LastSeq() // count every event from here, however late Run subscribes
	go func() { runDone <- m.RunSince(ctx, env.bus, since) }()
	defer func() { cancel(); <-runDone }()

	resp, b := env.do("POST", "/api/v1/runs", `{"request":"x","wait":true}`, true)
	if resp.StatusCode != 201 {
		t.Fatal(string(b))
	}
	env.bus.Emit("", events.BudgetChangedData{USD: 0.01, Model: "claude", Caps: []events.BudgetCapData{
		{Name: "usd_day", Period: "day", Unit: "usd", Cap: 5, Spent: 2.5, Reserved: 0.5, Alert: 50},
		{Name: "bytes_month", Period: "month", Unit: "bytes", Cap: 1e9, Spent: 2e8}}})
	env.bus.Emit("r", events.BudgetAlertData{Kind: "threshold", Cap: "month_usd", Period: "2026-05", Threshold: 0.8, Spent: 8, Limit: 10})
	env.bus.Emit("", events.LinkStateData{From: "online", To: "constrained", State: "constrained", RTTMS: 600, BitsPerSec: 400000, ThroughputBPS: 50000})
	env.bus.Emit("r", events.ModelCallData{Model: "claude", Location: "remote", Where: "remote", PromptTokens: 900, OutputTokens: 100, CostUSD: 0.01, TotalMS: 2500})
	env.bus.Emit("r", events.ModelCallData{Model: "gpt-x", Where: "remote", PromptTokens: 1}) // where alone, as the first release sent
	env.bus.Emit("", events.ModelResidencyData{Models: []events.ResidentModel{{Name: "qwen3:8b", VRAMBytes: 6e9}}})
	env.bus.Emit("", events.ThresholdData{Type: events.VRAMHigh, Metric: "vram_used_percent", Value: 95, High: 90, Low: 80, Level: "high"})
	env.bus.Publish(events.ModelCall, "r", "not an object") // tolerated
	env.bus.Publish("test.marker", "", nil)

	var text string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, b := env.do("GET", "/metrics", "", true)
		text = string(b)
		if strings.Contains(text, `agentd_events_total{type="test.marker"} 1`) {
			// A scrape gathers metric families one by one while events are
			// observed, so the one that saw the marker may predate part of
			// an earlier event. Every event before the marker is observed
			// by now: scrape once more.
			_, b := env.do("GET", "/metrics", "", true)
			text = string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`agentd_runs{status="done"} 3`,
		`agentd_runs{status="running"} 1`,
		`agentd_runs{status="failed"} 0`,
		`agentd_run_status_changes_total{status="done"} 1`,
		// The fake engine sends no step timings: the step latency is
		// tested on the real executor (internal/exec).
		`agentd_step_status_changes_total{status="done"} 5`,
		`agentd_model_calls_total{location="local",model="qwen3:4b"} 2`,
		`agentd_model_tokens_total{direction="prompt",location="local",model="qwen3:4b"} 240`,
		`agentd_model_tokens_total{direction="output",location="remote",model="claude"} 100`,
		`agentd_model_cost_usd_total{location="remote",model="claude"} 0.01`,
		`agentd_budget_spent{cap="usd_day",period="day",unit="usd"} 2.5`,
		`agentd_budget_reserved{cap="usd_day",period="day",unit="usd"} 0.5`,
		`agentd_budget_cap{cap="bytes_month",period="month",unit="bytes"} 1e+09`,
		`agentd_budget_alert_level{cap="usd_day",period="day",unit="usd"} 50`,
		`agentd_budget_alert_level{cap="month_usd",period="month",unit="usd"} 80`,
		`agentd_model_calls_total{location="remote",model="gpt-x"} 1`,
		`agentd_link_throughput_bytes_per_second 50000`,
		`agentd_gpu_vram_used_bytes{gpu="0",name="RTX 4000"} 9e+09`,
		`agentd_gpu_vram_total_bytes{gpu="0",name="RTX 4000"} 2e+10`,
		`agentd_host_cpu_percent 12.5`,
		`agentd_link_state{state="constrained"} 1`,
		`agentd_link_state{state="online"} 0`,
		`agentd_link_rtt_seconds 0.6`,
		`agentd_model_vram_bytes{model="qwen3:8b"} 6e+09`,
		`agentd_threshold_events_total{level="high",metric="vram_used_percent"} 1`,
		`agentd_events_total{type="model.call"} 5`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestMetricsRegistryIsNotGlobal(t *testing.T) {
	a, b := NewMetrics(MetricsSource{}, nil), NewMetrics(MetricsSource{}, nil)
	a.Observe(events.Event{Type: events.RunStatus, Data: json.RawMessage(`{"status":"done"}`)})
	count := func(m *Metrics) int {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "agentd_run_status_changes_total" {
				return len(f.GetMetric())
			}
		}
		return 0
	}
	if count(a) != 1 || count(b) != 0 {
		t.Errorf("registries share state: a has %d series, b has %d", count(a), count(b))
	}
}

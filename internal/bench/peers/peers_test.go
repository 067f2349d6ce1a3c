package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/scenarios"
)

// TestReActHarness runs LangGraph.js's prebuilt ReAct agent on one
// scenario against the in-process simulator. It needs the harnesses'
// packages: CI installs them (`npm ci` in bench/peers, see .ci/run).
func TestReActHarness(t *testing.T) {
	sc, _ := scenarios.Find(scenarios.NameCities)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Frameworks: []string{"langgraph-react"}, Scenarios: []scenarios.Scenario{sc}, SkipAgentd: true})
	if errors.Is(err, ErrNoModules) {
		t.Fatalf("%v\n(the peer harnesses need their npm packages: run `cd bench/peers && npm ci`; CI does it in .ci/run)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rep.Rows))
	}
	row := rep.Rows[0]
	if row.Status != "done" {
		t.Fatalf("status %s: %s", row.Status, row.Err)
	}
	// A perfect model makes the ten independent lookups in one turn, then
	// answers: two model calls, ten tool calls.
	if row.Calls != 2 || row.ToolCalls != 10 || row.PromptTokens == 0 || row.OutputTokens == 0 {
		t.Fatalf("calls %d, tool calls %d, tokens %d/%d; want 2 calls, 10 tool calls, tokens counted", row.Calls, row.ToolCalls, row.PromptTokens, row.OutputTokens)
	}
	var b bytes.Buffer
	rep.Markdown(&b)
	if !strings.Contains(b.String(), "| similar_cities | langgraph-react | done |") || !strings.Contains(b.String(), "@langchain/langgraph ") {
		t.Fatalf("markdown:\n%s", b.String())
	}
}

func TestMarkdownRatios(t *testing.T) {
	rep := &Report{TimeScale: 0.5, PriceName: "m", Rows: []Row{
		{Scenario: "s", Framework: "agentd", Status: "done", Wall: 2 * time.Second, Calls: 3, PromptTokens: 1000, OutputTokens: 100},
		{Scenario: "s", Framework: "p", Status: "done", Wall: 5 * time.Second, Calls: 9, PromptTokens: 4000, OutputTokens: 300},
	}}
	var b bytes.Buffer
	rep.Markdown(&b)
	if !strings.Contains(b.String(), "| s | p | done | 5.00 s | 9 | 4.0k/300 | 0.00000 | 2.50x | 4.00x |") {
		t.Fatalf("markdown:\n%s", b.String())
	}
}

func TestMarkdownLearnedAgainstTheFastestPeer(t *testing.T) {
	rep := &Report{TimeScale: 0.5, PriceName: "m", Rows: []Row{
		{Scenario: "s", Framework: "agentd", Status: "done", Wall: 10 * time.Second, PromptTokens: 1000},
		{Scenario: "s", Framework: "agentd-learned", Status: "done", Wall: time.Second, PromptTokens: 500},
		{Scenario: "s", Framework: "slow", Status: "done", Wall: 8 * time.Second, PromptTokens: 9000},
		{Scenario: "s", Framework: "fast", Status: "done", Wall: 4 * time.Second, PromptTokens: 2000},
		{Scenario: "s", Framework: "fastest-but-wrong", Status: "failed", Wall: time.Second, PromptTokens: 100},
	}}
	var b bytes.Buffer
	rep.Markdown(&b)
	if !strings.Contains(b.String(), "- s: fast 4.00 s / agentd-learned 1.00 s = 4.00x faster; prompt tokens 2.0k / 500 = 4.00x fewer") {
		t.Fatalf("markdown:\n%s", b.String())
	}
}

// TestPeersReport is the full comparison, run on demand:
//
//	AGENTD_PEERS_REPORT=0.5 go test ./internal/bench/peers -run TestPeersReport -v -timeout 30m
//
// (the value is the time scale); it prints the markdown table.
func TestPeersReport(t *testing.T) {
	v := os.Getenv("AGENTD_PEERS_REPORT")
	if v == "" {
		t.Skip("set AGENTD_PEERS_REPORT=<time scale> to run the full comparison")
	}
	scale, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("AGENTD_PEERS_REPORT=%q: want a time scale such as 0.5", v)
	}
	o := Options{TimeScale: scale}
	// AGENTD_PEERS_AGENTD: a JSON file of agentd's rows ([Row]) measured
	// elsewhere, instead of running the suite here.
	if f := os.Getenv("AGENTD_PEERS_AGENTD"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &o.AgentdRows); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.Markdown(&b)
	t.Log("\n" + b.String())
}

package localplanner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentd/agentd/internal/plan"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// testCatalog is a small tool registry validating with jsonschema/v6, like
// the real one in internal/tools.
type testCatalog struct {
	tools   []plan.ToolInfo
	schemas map[string]*jsonschema.Schema
}

var _ Catalog = (*testCatalog)(nil)

func newTestCatalog(tools ...plan.ToolInfo) *testCatalog {
	c := &testCatalog{tools: tools, schemas: map[string]*jsonschema.Schema{}}
	comp := jsonschema.NewCompiler()
	for _, t := range tools {
		url := "mem://tools/" + t.Name + ".json"
		if err := comp.AddResource(url, t.ArgsSchema); err != nil {
			panic(err)
		}
		c.schemas[t.Name] = comp.MustCompile(url)
	}
	return c
}

func (c *testCatalog) Has(name string) bool { _, ok := c.schemas[name]; return ok }

func (c *testCatalog) ValidateArgs(name string, args map[string]any) error {
	s, ok := c.schemas[name]
	if !ok {
		return fmt.Errorf("unknown tool %q", name)
	}
	return s.Validate(map[string]any(args))
}

func (c *testCatalog) List() []plan.ToolInfo { return c.tools }

func weatherTools() *testCatalog {
	return newTestCatalog(
		plan.ToolInfo{Name: "get_weather", Description: "Current weather and July mean temperature for a city.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"city"},
			"properties": map[string]any{
				"city":  map[string]any{"type": "string", "minLength": 1},
				"units": map[string]any{"enum": []any{"c", "f"}},
			},
		}},
		plan.ToolInfo{Name: "search_cities", Description: "Find cities matching a query.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"query"},
			"properties": map[string]any{
				"query": map[string]any{"type": "string"},
				"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 50},
			},
		}},
		plan.ToolInfo{Name: "calc", Description: "Evaluate an arithmetic expression.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"expression"},
			"properties": map[string]any{"expression": map[string]any{"type": "string"}},
		}},
	)
}

// bigCatalog adds n filler tools to the weather tools.
func bigCatalog(n int) *testCatalog {
	tools := weatherTools().tools
	topics := []string{"invoice", "ticket", "sensor", "pump", "shipment", "patient", "ledger", "crew", "engine", "stock"}
	verbs := []string{"list", "read", "update", "count", "archive"}
	for i := 0; i < n; i++ {
		topic, verb := topics[i%len(topics)], verbs[(i/len(topics))%len(verbs)]
		name := fmt.Sprintf("%s_%s_%d", verb, topic, i)
		tools = append(tools, plan.ToolInfo{Name: name, Description: fmt.Sprintf("%s %s records from the site database.", strings.ToUpper(verb[:1])+verb[1:], topic),
			ArgsSchema: map[string]any{"type": "object", "additionalProperties": false, "required": []any{"id"},
				"properties": map[string]any{"id": map[string]any{"type": "string"}, "limit": map[string]any{"type": "integer"}}}})
	}
	return newTestCatalog(tools...)
}

// scriptedModel answers chat calls from a script, one reply per call, and
// records the requests.
type scriptedModel struct {
	mu      sync.Mutex
	replies []ChatResponse
	errs    []error
	calls   []ChatRequest
}

func (m *scriptedModel) Chat(ctx context.Context, req ChatRequest) (ChatResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, req)
	i := len(m.calls) - 1
	if i < len(m.errs) && m.errs[i] != nil {
		return ChatResponse{}, m.errs[i]
	}
	if i >= len(m.replies) {
		return ChatResponse{}, errors.New("scripted model: no reply scripted for this call")
	}
	r := m.replies[i]
	if r.DoneReason == "" {
		r.DoneReason = "stop"
	}
	if r.PromptTokens == 0 {
		for _, msg := range req.Messages {
			r.PromptTokens += EstimateTokens(msg.Content)
		}
	}
	if r.OutputTokens == 0 {
		r.OutputTokens = EstimateTokens(r.Content)
	}
	return r, nil
}

func reply(s string) ChatResponse { return ChatResponse{Content: s} }

// renderMessages is the golden form of a conversation.
func renderMessages(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "===== %s\n%s\n", m.Role, m.Content)
	}
	return b.String()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

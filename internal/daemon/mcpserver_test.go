package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentd/agentd/internal/config"
)

// bearer adds the API token to every request of an MCP client.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// An MCP client (a desktop or IDE agent) hands a request to a running
// daemon through /mcp with the API token, and is refused without it.
func TestMCPServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startOnSimulatorWith(t, ctx, sumSimulator(), func(c *config.Config) {
		c.MCPServer.Enabled = true
		c.Workflows = append(c.Workflows, config.WorkflowConfig{Name: "sum_up", Description: "Add numbers.",
			Steps: []config.WorkflowStep{{ID: "s", Tool: "calc", Args: map[string]any{"expression": "1+1"}}}})
	})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	tok, err := os.ReadFile(d.paths.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + d.Server.Addr().String() + "/mcp"
	client := mcp.NewClient(&mcp.Implementation{Name: "ide", Version: "1"}, nil)

	// Without the token: refused before any MCP is spoken.
	if _, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil); err == nil {
		t.Fatal("connected without the token")
	} else if !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Fatalf("without the token: %v, want a 401", err)
	}

	hc := &http.Client{Transport: bearer{token: strings.TrimSpace(string(tok)), next: http.DefaultTransport}}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"get_run", "list_workflows", "submit_run"}; !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}

	call := func(name string, args any, out any) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError {
			t.Fatalf("%s reported an error: %+v", name, res.Content)
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %s: %v", name, b, err)
		}
	}
	var wf struct{ Workflows []string }
	call("list_workflows", map[string]any{}, &wf)
	if !slices.Contains(wf.Workflows, "sum_up") {
		t.Fatalf("workflows = %v", wf.Workflows)
	}

	var submitted struct{ ID, Status, Answer string }
	call("submit_run", map[string]any{"request": "What is 17 times 3?"}, &submitted)
	if submitted.ID == "" || submitted.Status != "done" || !strings.Contains(submitted.Answer, "51") {
		t.Fatalf("submit_run = %+v", submitted)
	}
	var got struct {
		ID, Status, Answer string
		Steps              []struct{ ID, Tool, Status string }
	}
	call("get_run", map[string]any{"id": submitted.ID}, &got)
	if got.Status != "done" || !strings.Contains(got.Answer, "51") || len(got.Steps) != 1 || got.Steps[0].Tool != "calc" || got.Steps[0].Status != "done" {
		t.Fatalf("get_run = %+v", got)
	}
	r, err := d.Store.GetRun(ctx, submitted.ID)
	if err != nil || r.Source != "mcp" {
		t.Fatalf("run source = %+v, %v", r, err)
	}
}

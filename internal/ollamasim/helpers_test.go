package ollamasim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// startSim serves cfg on a real 127.0.0.1 listener and returns the official
// client pointed at it.
func startSim(t *testing.T, cfg Config) (*Server, *api.Client) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(cfg)
	u, err := s.Start(t.Context())
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	base, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse %q: %v", u, err)
	}
	return s, api.NewClient(base, http.DefaultClient)
}

// fakeClock is an injectable clock for keep_alive tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func boolPtr(b bool) *bool { return &b }

func userMsg(s string) []api.Message { return []api.Message{{Role: "user", Content: s}} }

// chatOnce runs a non-streaming chat and returns the response.
func chatOnce(t *testing.T, ctx context.Context, c *api.Client, req *api.ChatRequest) (api.ChatResponse, error) {
	t.Helper()
	req.Stream = boolPtr(false)
	var out api.ChatResponse
	err := c.Chat(ctx, req, func(r api.ChatResponse) error {
		out = r
		return nil
	})
	return out, err
}

// mustChat is chatOnce that fails the test on error.
func mustChat(t *testing.T, c *api.Client, req *api.ChatRequest) api.ChatResponse {
	t.Helper()
	r, err := chatOnce(t, t.Context(), c, req)
	if err != nil {
		t.Fatalf("chat %s: %v", req.Model, err)
	}
	return r
}

// statusError extracts the api.StatusError the client returns for HTTP errors.
func statusError(t *testing.T, err error) api.StatusError {
	t.Helper()
	var se api.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not an api.StatusError", err, err)
	}
	return se
}

// compileSchema compiles a JSON Schema document for validating outputs.
func compileSchema(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatalf("add schema: %v", err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// validateJSON parses text and validates it against sch.
func validateJSON(sch *jsonschema.Schema, text string) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// weatherTool is a typical agent tool with required and enum arguments.
func weatherTool() api.Tool {
	props := api.NewToolPropertiesMap()
	props.Set("city", api.ToolProperty{Type: api.PropertyType{"string"}, Description: "City name"})
	props.Set("unit", api.ToolProperty{Type: api.PropertyType{"string"}, Enum: []any{"celsius", "fahrenheit"}})
	return api.Tool{Type: "function", Function: api.ToolFunction{
		Name:        "get_weather",
		Description: "Current weather for a city",
		Parameters:  api.ToolFunctionParameters{Type: "object", Required: []string{"city", "unit"}, Properties: props},
	}}
}

const weatherArgsSchema = `{"type":"object","required":["city","unit"],"additionalProperties":false,
 "properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}}}`

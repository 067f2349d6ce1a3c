package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
)

// faultyPlanner is a fake planner model that writes the right plan for the
// benchmark's requests but injects faults at fixed, seeded rates: invalid
// JSON, an unknown tool, a reference outside depends_on, and truncation
// (the reply needs more than the first num_predict). Given the validation
// errors it repairs its plan, but only if the errors name the problem it
// made: the test checks the planner's feedback, not just its loop.
type faultyPlanner struct {
	mu       sync.Mutex
	rng      *rand.Rand
	base     int // the planner's first num_predict
	injected map[string]int
	pending  map[string]string // request -> fault the model made last
	// words are what a repair message must say for the fake to fix each
	// fault.
	words map[string]string
}

const (
	faultJSON      = "invalid_json"
	faultTool      = "unknown_tool"
	faultRef       = "bad_reference"
	faultTruncated = "truncated"
)

func newFaultyPlanner(seed int64, base int) *faultyPlanner {
	return &faultyPlanner{rng: rand.New(rand.NewSource(seed)), base: base, injected: map[string]int{}, pending: map[string]string{},
		words: map[string]string{faultJSON: "invalid JSON", faultTool: "does not exist", faultRef: "to depends_on"}}
}

var cityRe = regexp.MustCompile(`\b(?:in|as|for) ([A-Z][a-z]+)`)

func (f *faultyPlanner) Chat(_ context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := req.Messages[len(req.Messages)-1].Content
	request := last
	repair := strings.HasPrefix(last, "That plan cannot run")
	if repair {
		request = req.Messages[len(req.Messages)-3].Content
	}
	good := f.correctPlan(request)
	content := good
	fault := ""
	switch r := f.rng.Float64(); {
	case repair:
		// Fix the problem if the feedback names it; otherwise repeat it.
		if prev := f.pending[request]; prev != "" && !strings.Contains(last, f.words[prev]) {
			fault = prev
		} else if r < 0.05 {
			fault = faultTruncated
		}
	case r < 0.10:
		fault = faultJSON
	case r < 0.20:
		fault = faultTool
	case r < 0.30:
		fault = faultRef
	case r < 0.35:
		fault = faultTruncated
	}
	done := "stop"
	switch fault {
	case faultJSON:
		content = strings.Replace(good, `"steps":[`, `"steps":[,`, 1)
	case faultTool:
		content = strings.Replace(good, `"tool":"get_weather"`, `"tool":"weather_lookup"`, 1)
	case faultRef:
		content = strings.Replace(good, `,"depends_on":["weather"]`, ``, 1)
	case faultTruncated:
		// The reply wanted more tokens than the first limit allows.
		if req.NumPredict < 2*f.base {
			content, done = good[:len(good)/2], localplanner.DoneLength
		} else {
			fault = ""
		}
	}
	if fault != "" {
		f.injected[fault]++
	}
	f.pending[request] = fault
	if done == "stop" && f.rng.Intn(5) == 0 {
		content = "Here is the plan:\n```json\n" + content + "\n```"
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += localplanner.EstimateTokens(m.Content)
	}
	return localplanner.ChatResponse{Content: content, DoneReason: done, PromptTokens: prompt, OutputTokens: localplanner.EstimateTokens(content)}, nil
}

func (f *faultyPlanner) correctPlan(request string) string {
	city := "Austin"
	if m := cityRe.FindStringSubmatch(request); m != nil {
		city = m[1]
	}
	weather := map[string]any{"id": "weather", "tool": "get_weather", "args": map[string]any{"city": city}}
	steps := []any{weather}
	switch {
	case strings.Contains(request, "as hot as"):
		steps = append(steps,
			map[string]any{"id": "similar", "tool": "search_cities", "args": map[string]any{"query": "July mean near ${weather.july_mean_c} C", "limit": 5}, "depends_on": []any{"weather"}},
			map[string]any{"id": "pick", "task": "Pick the three closest of ${similar}", "tools": []any{}, "tier": "fast", "depends_on": []any{"similar"}})
	case strings.Contains(request, "Fahrenheit"):
		steps = append(steps, map[string]any{"id": "convert", "tool": "calc", "args": map[string]any{"expression": "${weather.july_mean_c} * 9 / 5 + 32"}, "depends_on": []any{"weather"}})
	default:
		steps = append(steps, map[string]any{"id": "summary", "task": "Describe ${weather} in one sentence", "tools": []any{}, "tier": "fast", "depends_on": []any{"weather"}})
	}
	b, _ := json.Marshal(map[string]any{"goal": request, "steps": steps, "answer": "Reply with the result."})
	// Keys in schema order would be nicer, but the planner must not care.
	return string(b)
}

func benchScenarios(n int, seed int64) []PlanRequest {
	r := rand.New(rand.NewSource(seed))
	cities := []string{"Austin", "Reno", "Boise", "Oslo", "Perth", "Lima", "Quito", "Hobart", "Tucson", "Fresno"}
	forms := []string{"What is the weather in %s?", "Which cities are as hot as %s in July?", "What is the July mean in %s in Fahrenheit?"}
	out := make([]PlanRequest, n)
	for i := range out {
		out[i] = PlanRequest{Name: fmt.Sprintf("s%03d", i), Request: fmt.Sprintf(forms[r.Intn(len(forms))], cities[r.Intn(len(cities))])}
	}
	return out
}

func TestBenchFaultRepair(t *testing.T) {
	const requests = 600
	cfg := testPlannerConfig()
	cfg.RepairAttempts = 2 // three planner calls in all
	models := testModels()
	model := newFaultyPlanner(42, models.Options[models.Planner].NumPredict)
	p := localplanner.New(model, weatherTools(), cfg, models, nil)
	rep, err := RunPlans(context.Background(), p, benchScenarios(requests, 7), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rep)
	t.Logf("faults injected: %v", model.injected)
	if rep.Requests != requests {
		t.Fatalf("requests = %d", rep.Requests)
	}
	if rate := rep.ValidRate(); rate < 0.99 {
		t.Fatalf("valid within 3 calls: %.2f%%, want at least 99%%; failures: %+v", 100*rate, rep.Failures)
	}
	// The faults must really have happened, at about their rates, or the
	// figure above means nothing.
	for fault, rate := range map[string]float64{faultJSON: 0.10, faultTool: 0.10, faultRef: 0.10, faultTruncated: 0.05} {
		got := float64(model.injected[fault]) / requests
		if got < rate*0.6 {
			t.Errorf("%s injected in %.3f of requests, want about %.2f", fault, got, rate)
		}
	}
	if first := float64(rep.Calls[1]) / requests; first > 0.75 || first < 0.55 {
		t.Errorf("%.2f valid at the first call, want about 0.65", first)
	}
	if rep.PlannerCalls <= requests || rep.PromptTokens == 0 || rep.OutputTokens == 0 {
		t.Errorf("usage not counted: %+v", rep)
	}
}

// Without useful feedback the same fake cannot repair: the figure above is
// owed to the error messages.
func TestBenchWithoutFeedbackFails(t *testing.T) {
	cfg := testPlannerConfig()
	models := testModels()
	model := newFaultyPlanner(42, models.Options[models.Planner].NumPredict)
	for k := range model.words {
		model.words[k] = "(never said)"
	}
	p := localplanner.New(model, weatherTools(), cfg, models, nil)
	rep, err := RunPlans(context.Background(), p, benchScenarios(300, 7), 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ValidRate() > 0.9 {
		t.Fatalf("valid rate %.2f without feedback; the fake is too forgiving", rep.ValidRate())
	}
	if len(rep.Failures) == 0 || len(rep.Failures[0].Errors) == 0 {
		t.Fatal("failures must carry their errors")
	}
}

func TestRunBenchCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := localplanner.New(newFaultyPlanner(1, 512), weatherTools(), testPlannerConfig(), testModels(), nil)
	if _, err := RunPlans(ctx, p, benchScenarios(3, 1), 3); err == nil {
		t.Fatal("want the context error")
	}
}

// The planner's configuration and models in these tests, as the planner's
// own tests set them.
func testPlannerConfig() config.PlannerConfig {
	return config.PlannerConfig{Mode: "auto", MaxSteps: 12, RepairAttempts: 2, Timeout: config.Duration(time.Minute),
		PromptTokenBudget: 3000, Complexity: config.ComplexityConfig{EscalateScore: 0.7}, ClassifyWorkflows: "always"}
}

func testModels() config.ModelsConfig {
	return config.ModelsConfig{Router: "granite4:tiny-h", Planner: "gemma3:12b", Fast: "granite4:tiny-h",
		Options: map[string]config.ModelOptions{"gemma3:12b": {NumPredict: 512}}}
}

// testCatalog is a three-tool registry validating with jsonschema/v6, like
// the real one in internal/tools.
type testCatalog struct {
	tools   []plan.ToolInfo
	schemas map[string]*jsonschema.Schema
}

var _ localplanner.Catalog = (*testCatalog)(nil)

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
	c := &testCatalog{schemas: map[string]*jsonschema.Schema{}, tools: []plan.ToolInfo{
		{Name: "get_weather", Description: "Current weather and July mean temperature for a city.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"city"},
			"properties": map[string]any{
				"city":  map[string]any{"type": "string", "minLength": 1},
				"units": map[string]any{"enum": []any{"c", "f"}},
			},
		}},
		{Name: "search_cities", Description: "Find cities matching a query.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"query"},
			"properties": map[string]any{
				"query": map[string]any{"type": "string"},
				"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 50},
			},
		}},
		{Name: "calc", Description: "Evaluate an arithmetic expression.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"expression"},
			"properties": map[string]any{"expression": map[string]any{"type": "string"}},
		}},
	}}
	comp := jsonschema.NewCompiler()
	for _, t := range c.tools {
		url := "mem://tools/" + t.Name + ".json"
		if err := comp.AddResource(url, t.ArgsSchema); err != nil {
			panic(err)
		}
		c.schemas[t.Name] = comp.MustCompile(url)
	}
	return c
}

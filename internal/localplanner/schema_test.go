package localplanner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compilePlanSchema(t *testing.T, raw json.RawMessage) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://plan.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://plan.json")
	if err != nil {
		t.Fatalf("plan schema does not compile: %v", err)
	}
	return s
}

func TestPlanSchemaGolden(t *testing.T) {
	raw, err := PlanSchema(weatherTools().List(), 12)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	golden(t, "schema.golden", out.String()+"\n")
	// Property order is part of the contract: a constrained model writes
	// keys in schema order and must name the tool before its args.
	s := string(raw)
	if strings.Index(s, `"tool":{"const":"calc"}`) > strings.Index(s, `"expression"`) {
		t.Error("tool must come before args in each tool step")
	}
}

func TestPlanSchemaAccepts(t *testing.T) {
	raw, err := PlanSchema(weatherTools().List(), 3)
	if err != nil {
		t.Fatal(err)
	}
	s := compilePlanSchema(t, raw)
	tests := []struct {
		name string
		plan string
		ok   bool
	}{
		{"design example", `{"goal":"g","steps":[{"id":"austin_weather","tool":"get_weather","args":{"city":"Austin, TX"}},
			{"id":"hot_cities","task":"near ${austin_weather.july_mean_c}","tools":["search_cities"],"tier":"fast","depends_on":["austin_weather"]}],"answer":"a"}`, true},
		{"reference for an integer", `{"goal":"g","steps":[{"id":"n","task":"count","tools":[],"tier":"fast"},{"id":"s","tool":"search_cities","args":{"query":"x","limit":"${n.count}"},"depends_on":["n"]}],"answer":"a"}`, true},
		{"reference for an enum", `{"goal":"g","steps":[{"id":"w","tool":"get_weather","args":{"city":"x","units":"${u}"}}],"answer":"a"}`, true},
		{"text for an integer", `{"goal":"g","steps":[{"id":"s","tool":"search_cities","args":{"query":"x","limit":"ten"}}],"answer":"a"}`, false},
		{"unknown tool", `{"goal":"g","steps":[{"id":"s","tool":"browse","args":{}}],"answer":"a"}`, false},
		{"args of another tool", `{"goal":"g","steps":[{"id":"s","tool":"calc","args":{"city":"x"}}],"answer":"a"}`, false},
		{"unknown task tool", `{"goal":"g","steps":[{"id":"s","task":"x","tools":["browse"],"tier":"fast"}],"answer":"a"}`, false},
		{"bad tier", `{"goal":"g","steps":[{"id":"s","task":"x","tools":[],"tier":"big"}],"answer":"a"}`, false},
		{"bad id", `{"goal":"g","steps":[{"id":"Step 1","task":"x","tools":[],"tier":"fast"}],"answer":"a"}`, false},
		{"extra property", `{"goal":"g","steps":[{"id":"s","task":"x","tools":[],"tier":"fast","why":"."}],"answer":"a"}`, false},
		{"both kinds", `{"goal":"g","steps":[{"id":"s","task":"x","tool":"calc","args":{"expression":"1"},"tools":[],"tier":"fast"}],"answer":"a"}`, false},
		{"no steps", `{"goal":"g","steps":[],"answer":"a"}`, false},
		{"too many steps", `{"goal":"g","steps":[{"id":"a","task":"x","tools":[],"tier":"fast"},{"id":"b","task":"x","tools":[],"tier":"fast"},{"id":"c","task":"x","tools":[],"tier":"fast"},{"id":"d","task":"x","tools":[],"tier":"fast"}],"answer":"a"}`, false},
		{"missing answer", `{"goal":"g","steps":[{"id":"a","task":"x","tools":[],"tier":"fast"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.plan))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(doc)
			if (err == nil) != tt.ok {
				t.Fatalf("valid = %v, want %v: %v", err == nil, tt.ok, err)
			}
		})
	}
}

func TestPlanSchemaNoTools(t *testing.T) {
	raw, err := PlanSchema(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := compilePlanSchema(t, raw)
	doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"goal":"g","steps":[{"id":"a","task":"think","tools":[],"tier":"standard"}],"answer":"a"}`))
	if err := s.Validate(doc); err != nil {
		t.Fatalf("a task-only plan must fit an empty catalog: %v", err)
	}
}

func TestPlanSchemaRejectsUnmarshalable(t *testing.T) {
	tools := weatherTools().List()
	tools[0].ArgsSchema = map[string]any{"type": "object", "bad": func() {}}
	if _, err := PlanSchema(tools, 3); err == nil {
		t.Fatal("want an error for a schema that does not marshal")
	}
}

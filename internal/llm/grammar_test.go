package llm

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestGrammarSafe(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not a schema", `"json"`, `"json"`},
		{"empty", ``, ``},
		{"invalid JSON is left for Ollama to report", `{"type":`, `{"type":`},
		{"small bounds stay", `{"type":"string","minLength":1,"maxLength":64}`, `{"type":"string","minLength":1,"maxLength":64}`},
		{"bounds over the grammar limit go", `{"type":"string","maxLength":4096,"minLength":3000}`, `{"type":"string"}`},
		{"large maxItems goes", `{"type":"array","items":{"type":"string"},"maxItems":3000,"minItems":2}`,
			`{"type":"array","items":{"type":"string"},"minItems":2}`},
		{"\\d becomes a class", `{"type":"string","pattern":"^\\d{3}-[\\d]{4}$"}`, `{"type":"string","pattern":"^[0-9]{3}-[0-9]{4}$"}`},
		{"the plan's id and reference patterns stay", `{"pattern":"^\\$\\{[a-z][a-z0-9_]*(\\.[A-Za-z0-9_-]+)*\\}$"}`,
			`{"pattern":"^\\$\\{[a-z][a-z0-9_]*(\\.[A-Za-z0-9_-]+)*\\}$"}`},
		{"unanchored patterns go", `{"type":"string","pattern":"[a-z]+"}`, `{"type":"string"}`},
		{"lookarounds go", `{"type":"string","pattern":"^(?=a)[a-z]+$"}`, `{"type":"string"}`},
		{"escapes the grammar lacks go", `{"type":"string","pattern":"^\\s+\\b$"}`, `{"type":"string"}`},
		{"large pattern bounds go", `{"type":"string","pattern":"^a{1,5000}$"}`, `{"type":"string"}`},
		{"formats the grammar lacks go", `{"type":"object","properties":{"a":{"type":"string","format":"email"},"b":{"type":"string","format":"date-time"}}}`,
			`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string","format":"date-time"}}}`},
		{"not, if and friends go", `{"not":{"type":"string"},"if":{},"then":{},"patternProperties":{"^x":{}},"propertyNames":{"pattern":"^a"},"uniqueItems":true,"multipleOf":3,"description":"d","title":"t","default":1}`, `{}`},
		{"unknown types go", `{"type":"foo"}`, `{}`},
		{"type lists keep known types", `{"type":["string","foo","null"]}`, `{"type":["string","null"]}`},
		{"a local ref that resolves stays", `{"$defs":{"x":{"type":"string","maxLength":5000}},"properties":{"a":{"$ref":"#/$defs/x"}}}`,
			`{"$defs":{"x":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/x"}}}`},
		{"missing and remote refs become any value", `{"properties":{"a":{"$ref":"#/$defs/nope"},"b":{"$ref":"https://example.com/s.json"}}}`,
			`{"properties":{"a":{},"b":{}}}`},
		{"tuple items become prefixItems", `{"type":"array","items":[{"type":"string"},{"type":"integer"}]}`,
			`{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}`},
		{"nested in anyOf and additionalProperties", `{"anyOf":[{"type":"string","maxLength":9999},{"type":"object","additionalProperties":{"type":"string","pattern":"x"}}]}`,
			`{"anyOf":[{"type":"string"},{"type":"object","additionalProperties":{"type":"string"}}]}`},
		{"boolean exclusive bounds (draft-04) go", `{"type":"integer","minimum":1,"exclusiveMinimum":true}`, `{"type":"integer","minimum":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := GrammarSafe(json.RawMessage(tt.in))
			if !json.Valid([]byte(tt.want)) || tt.want[0] != '{' {
				if string(got) != tt.want {
					t.Errorf("GrammarSafe(%s) = %s, want it unchanged", tt.in, got)
				}
				return
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("output %s: %v", got, err)
			}
			_ = json.Unmarshal([]byte(tt.want), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("GrammarSafe(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// A constrained model writes properties in schema order (the plan schema
// names a step's tool before its arguments), so the order must survive.
func TestGrammarSafeKeepsPropertyOrder(t *testing.T) {
	in := `{"type":"object","properties":{"id":{"type":"string"},"tool":{"const":"calc"},"args":{"type":"object"},"depends_on":{"type":"array"}},"required":["id","tool","args"]}`
	got := string(GrammarSafe(json.RawMessage(in)))
	if got != in {
		t.Errorf("GrammarSafe changed a safe schema:\n got %s\nwant %s", got, in)
	}
}

package ollamasim

import (
	"strings"
	"testing"
)

func TestGenerateInstanceValidates(t *testing.T) {
	tests := []struct {
		name   string
		schema string
	}{
		{"plain string bounds", `{"type":"string","minLength":30,"maxLength":40}`},
		{"integer exclusive bounds", `{"type":"integer","exclusiveMinimum":10,"maximum":20}`},
		{"negative maximum", `{"type":"number","maximum":-3}`},
		{"formats", `{"type":"object","required":["a","b","c"],"properties":{"a":{"type":"string","format":"date-time"},"b":{"type":"string","format":"email"},"c":{"type":"string","format":"uuid"}}}`},
		{"unique enum items", `{"type":"array","minItems":3,"uniqueItems":true,"items":{"enum":["x","y","z"]}}`},
		{"unique strings", `{"type":"array","minItems":3,"uniqueItems":true,"items":{"type":"string"}}`},
		{"prefixItems", `{"type":"array","prefixItems":[{"type":"integer"},{"type":"boolean"}]}`},
		{"minProperties", `{"type":"object","minProperties":2,"properties":{"b":{"type":"string"},"a":{"type":"integer"},"c":{"type":"null"}}}`},
		{"allOf merge", `{"allOf":[{"type":"object","required":["a"],"properties":{"a":{"type":"string"}}},{"required":["b"],"properties":{"b":{"type":"integer","minimum":3}}}]}`},
		{"recursive ref with optional child", `{"$defs":{"node":{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`},
		{"definitions", `{"definitions":{"x":{"type":"string","const":"k"}},"type":"object","required":["x"],"properties":{"x":{"$ref":"#/definitions/x"}}}`},
		{"nullable type list", `{"type":["null","string"],"minLength":2}`},
		{"additionalProperties schema", `{"type":"object","required":["extra"],"additionalProperties":{"type":"integer"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := generateInstanceJSON([]byte(tt.schema), "word")
			if err != nil {
				t.Fatal(err)
			}
			if err := validateJSON(compileSchema(t, tt.schema), string(out)); err != nil {
				t.Fatalf("%s does not validate: %v", out, err)
			}
		})
	}
}

func TestGenerateInstanceErrors(t *testing.T) {
	tests := []struct {
		name, schema, want string
	}{
		{"infinite recursion", `{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, "deeper than"},
		{"remote ref", `{"$ref":"https://example.com/s.json"}`, "only local references"},
		{"missing ref", `{"$ref":"#/$defs/none"}`, "not found"},
		{"false schema", `false`, "no value is valid"},
		{"not JSON", `{`, "parse schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := generateInstanceJSON([]byte(tt.schema), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

package ollamasim

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// maxSchemaDepth bounds $ref recursion so a self-referencing schema yields
// an error instead of a stack overflow.
const maxSchemaDepth = 32

// instanceGenerator builds the smallest useful JSON value that validates
// against a JSON Schema: objects carry exactly their required properties,
// arrays have minItems elements, enum/const pick the first allowed value,
// anyOf/oneOf take their first branch, allOf merges object branches, and
// $ref follows "#", "#/$defs/..." and "#/definitions/...". A model
// constrained by Ollama's `format` always returns schema-valid JSON, so
// this is what a well-behaved local model looks like to agentd.
//
// Not supported (documented limits): pattern, multipleOf, not,
// if/then/else, dependentRequired and remote $refs. Strings honour
// minLength/maxLength and common formats.
type instanceGenerator struct {
	root any
	word string // filler for free strings, varies with the seed
}

// generateInstance returns a value valid against schema (decoded JSON).
func generateInstance(schema any, word string) (any, error) {
	if word == "" {
		word = "example"
	}
	g := &instanceGenerator{root: schema, word: word}
	return g.gen(schema, 0, "")
}

// generateInstanceJSON is generateInstance for a raw schema document.
func generateInstanceJSON(raw []byte, word string) ([]byte, error) {
	var schema any
	if err := json.Unmarshal(raw, &schema); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	v, err := generateInstance(schema, word)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode instance: %w", err)
	}
	return out, nil
}

func (g *instanceGenerator) gen(s any, depth int, name string) (any, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("schema nesting deeper than %d (recursive $ref?)", maxSchemaDepth)
	}
	switch v := s.(type) {
	case nil:
		return map[string]any{}, nil
	case bool:
		if !v {
			return nil, fmt.Errorf("schema %q is false: no value is valid", name)
		}
		return map[string]any{}, nil
	case map[string]any:
		return g.genObjectSchema(v, depth, name)
	default:
		return nil, fmt.Errorf("schema %q has unexpected type %T", name, s)
	}
}

func (g *instanceGenerator) genObjectSchema(s map[string]any, depth int, name string) (any, error) {
	if ref, ok := s["$ref"].(string); ok {
		target, err := g.resolve(ref)
		if err != nil {
			return nil, err
		}
		return g.gen(target, depth+1, name)
	}
	if c, ok := s["const"]; ok {
		return c, nil
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[0], nil
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if branches, ok := s[key].([]any); ok && len(branches) > 0 {
			return g.gen(branches[0], depth+1, name)
		}
	}
	if branches, ok := s["allOf"].([]any); ok && len(branches) > 0 {
		return g.genAllOf(s, branches, depth, name)
	}
	switch schemaType(s) {
	case "object":
		return g.genObject(s, depth, name)
	case "array":
		return g.genArray(s, depth, name)
	case "string":
		return g.genString(s, name), nil
	case "integer":
		return math.Round(g.genNumber(s, true)), nil
	case "number":
		return g.genNumber(s, false), nil
	case "boolean":
		return true, nil
	case "null":
		return nil, nil
	default:
		return map[string]any{}, nil
	}
}

// schemaType returns the declared type, the first non-null one of a type
// list, or one inferred from the keywords present.
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if str, ok := x.(string); ok && str != "null" {
				return str
			}
		}
		if len(t) > 0 {
			return "null"
		}
	}
	switch {
	case s["properties"] != nil || s["required"] != nil || s["additionalProperties"] != nil:
		return "object"
	case s["items"] != nil || s["prefixItems"] != nil || s["minItems"] != nil:
		return "array"
	case s["minLength"] != nil || s["maxLength"] != nil || s["format"] != nil || s["pattern"] != nil:
		return "string"
	case s["minimum"] != nil || s["maximum"] != nil:
		return "number"
	}
	return ""
}

func (g *instanceGenerator) genAllOf(s map[string]any, branches []any, depth int, name string) (any, error) {
	merged := map[string]any{}
	for k, v := range s {
		if k != "allOf" {
			merged[k] = v
		}
	}
	var out map[string]any
	for _, b := range append([]any{merged}, branches...) {
		v, err := g.gen(b, depth+1, name)
		if err != nil {
			return nil, err
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return v, nil // non-object allOf: the first branch decides
		}
		if out == nil {
			out = map[string]any{}
		}
		for k, x := range obj {
			out[k] = x
		}
	}
	return out, nil
}

func (g *instanceGenerator) genObject(s map[string]any, depth int, name string) (any, error) {
	props, _ := s["properties"].(map[string]any)
	out := map[string]any{}
	required := stringList(s["required"])
	minProps := intKeyword(s, "minProperties", 0)
	// Fill optional properties (in name order) only to reach minProperties.
	var optional []string
	for k := range props {
		if !contains(required, k) {
			optional = append(optional, k)
		}
	}
	sort.Strings(optional)
	keys := append([]string(nil), required...)
	for i := 0; len(keys) < minProps && i < len(optional); i++ {
		keys = append(keys, optional[i])
	}
	for _, k := range keys {
		sub, ok := props[k]
		if !ok {
			sub = s["additionalProperties"]
			if b, isBool := sub.(bool); sub == nil || (isBool && b) {
				sub = map[string]any{"type": "string"}
			}
		}
		v, err := g.gen(sub, depth+1, k)
		if err != nil {
			return nil, fmt.Errorf("property %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func (g *instanceGenerator) genArray(s map[string]any, depth int, name string) (any, error) {
	out := []any{}
	if prefix, ok := s["prefixItems"].([]any); ok {
		for i, p := range prefix {
			v, err := g.gen(p, depth+1, fmt.Sprintf("%s[%d]", name, i))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	n := intKeyword(s, "minItems", 0)
	unique, _ := s["uniqueItems"].(bool)
	items := s["items"]
	if items == nil {
		items = map[string]any{"type": "string"}
	}
	for i := len(out); i < n; i++ {
		v, err := g.gen(items, depth+1, fmt.Sprintf("%s[%d]", name, i))
		if err != nil {
			return nil, err
		}
		if unique && i > 0 {
			v = distinct(v, i, items)
		}
		out = append(out, v)
	}
	return out, nil
}

// distinct varies the i-th element of a uniqueItems array: the i-th enum
// value, a suffixed string or an offset number.
func distinct(v any, i int, items any) any {
	if m, ok := items.(map[string]any); ok {
		if enum, ok := m["enum"].([]any); ok && len(enum) > i {
			return enum[i]
		}
	}
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%s-%d", x, i+1)
	case float64:
		return x + float64(i)
	}
	return v
}

func (g *instanceGenerator) genString(s map[string]any, name string) string {
	var str string
	switch s["format"] {
	case "date-time":
		str = "2026-01-01T00:00:00Z"
	case "date":
		str = "2026-01-01"
	case "time":
		str = "00:00:00Z"
	case "email":
		str = "user@example.com"
	case "uri", "url":
		str = "https://example.com/"
	case "uuid":
		str = "00000000-0000-4000-8000-000000000000"
	case "ipv4":
		str = "192.0.2.1"
	case "hostname":
		str = "example.com"
	default:
		str = g.word
		if name != "" {
			str = name + " " + g.word
		}
	}
	if minLen := intKeyword(s, "minLength", 0); len(str) < minLen {
		str += strings.Repeat("x", minLen-len(str))
	}
	if maxLen := intKeyword(s, "maxLength", -1); maxLen >= 0 && len(str) > maxLen {
		str = str[:maxLen]
	}
	return str
}

// genNumber picks 1 when allowed (a plausible count or id), otherwise the
// closest value inside the bounds.
func (g *instanceGenerator) genNumber(s map[string]any, integer bool) float64 {
	step := 0.5
	if integer {
		step = 1
	}
	v := 1.0
	if min, ok := numKeyword(s, "minimum"); ok && v < min {
		v = min
	}
	if min, ok := numKeyword(s, "exclusiveMinimum"); ok && v <= min {
		v = min + step
	}
	if max, ok := numKeyword(s, "maximum"); ok && v > max {
		v = max
	}
	if max, ok := numKeyword(s, "exclusiveMaximum"); ok && v >= max {
		v = max - step
	}
	if integer {
		v = math.Ceil(v)
	}
	return v
}

// resolve follows a local JSON pointer ("#", "#/$defs/x", "#/definitions/x").
func (g *instanceGenerator) resolve(ref string) (any, error) {
	if ref == "#" {
		return g.root, nil
	}
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("unsupported $ref %q: only local references", ref)
	}
	cur := g.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not an object", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q: %q not found", ref, part)
		}
	}
	return cur, nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func intKeyword(s map[string]any, key string, def int) int {
	if f, ok := s[key].(float64); ok {
		return int(f)
	}
	return def
}

func numKeyword(s map[string]any, key string) (float64, bool) {
	f, ok := s[key].(float64)
	return f, ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

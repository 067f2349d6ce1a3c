package llm

import (
	"encoding/json"
	"strings"
)

// Ollama turns a JSON Schema in "format" into a llama.cpp grammar. That
// conversion supports a subset of JSON Schema, and some of what it does
// not support does not fail cleanly: on Ollama v0.17.4, measured against
// the real server,
//   - a repetition bound above 2000 (maxLength, minLength, maxItems) makes
//     the grammar parser refuse it and the model runner die (HTTP 500
//     "model runner has unexpectedly stopped");
//   - a "pattern" with \d or other escapes it lacks kills the runner, one
//     with a lookahead kills the whole server, and an unanchored one is
//     "invalid JSON schema in format";
//   - "not", an unknown "type" or a "$ref" to a missing definition are
//     "invalid JSON schema in format".
//
// So the schema sent is a grammar-safe copy of the one asked for: only the
// keywords that turn into grammar safely are kept, with bounds small enough
// for the grammar parser. What the copy cannot express stays in the
// caller's own validation of the decoded reply against the full schema
// (plan validation, step output and tool argument checks): the grammar
// narrows what the model can say, the validator decides what is accepted.

// grammarMaxRepeat is the largest repetition bound kept: llama.cpp refuses
// more than 2000 repetitions, and each bound unrolls into nested rules, so
// bounds stay well below that. A larger bound is dropped, not clamped:
// clamping would forbid replies the full schema allows.
const grammarMaxRepeat = 1000

// grammarFormats are the string formats llama.cpp has grammars for.
var grammarFormats = map[string]bool{"date": true, "time": true, "date-time": true, "uuid": true}

var grammarTypes = map[string]bool{"string": true, "number": true, "integer": true, "boolean": true,
	"object": true, "array": true, "null": true}

// GrammarSafe returns a copy of a JSON Schema "format" that Ollama can turn
// into a grammar without failing or killing its runner. A format that is
// not a JSON object (empty, "json") is returned as it is, and so is one
// that does not parse: Ollama's own error is the clearest report of that.
func GrammarSafe(format json.RawMessage) json.RawMessage {
	trimmed := strings.TrimSpace(string(format))
	if !strings.HasPrefix(trimmed, "{") {
		return format
	}
	var root map[string]any
	if err := json.Unmarshal(format, &root); err != nil {
		return format
	}
	s := grammarSanitizer{root: root}
	out, err := json.Marshal(s.schema(root))
	if err != nil {
		return format
	}
	return out
}

type grammarSanitizer struct{ root map[string]any }

func (g grammarSanitizer) schema(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		if b, isBool := v.(bool); isBool {
			if b {
				return map[string]any{}
			}
			return false
		}
		return map[string]any{}
	}
	out := map[string]any{}
	if ref, ok := m["$ref"].(string); ok {
		if g.resolves(ref) {
			out["$ref"] = ref
		}
		// Any other keyword beside $ref is ignored by the converter;
		// an unresolvable ref becomes "any value", checked afterwards.
		return out
	}
	for k, val := range m {
		switch k {
		case "type":
			if t := grammarType(val); t != nil {
				out[k] = t
			}
		case "properties", "$defs", "definitions":
			if props, ok := val.(map[string]any); ok {
				clean := make(map[string]any, len(props))
				for name, p := range props {
					clean[name] = g.schema(p)
				}
				out[k] = clean
			}
		case "required":
			if names, ok := val.([]any); ok {
				out[k] = names
			}
		case "additionalProperties":
			out[k] = g.schema(val)
		case "items":
			if tuple, ok := val.([]any); ok { // draft-04 tuple form
				out["prefixItems"] = g.list(tuple)
			} else {
				out[k] = g.schema(val)
			}
		case "prefixItems", "anyOf", "oneOf", "allOf":
			if list, ok := val.([]any); ok && len(list) > 0 {
				out[k] = g.list(list)
			}
		case "enum":
			if list, ok := val.([]any); ok && len(list) > 0 {
				out[k] = list
			}
		case "const":
			out[k] = val
		case "minLength", "maxLength", "minItems", "maxItems":
			if n, ok := val.(float64); ok && n >= 0 && n <= grammarMaxRepeat && n == float64(int64(n)) {
				out[k] = val
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			if _, ok := val.(float64); ok {
				out[k] = val
			}
		case "format":
			if f, ok := val.(string); ok && grammarFormats[f] {
				out[k] = f
			}
		}
	}
	return out
}

func (g grammarSanitizer) list(in []any) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = g.schema(s)
	}
	return out
}

// resolves reports whether ref names a definition inside the root schema
// ("#/$defs/x" or "#/definitions/x"); remote refs are never fetched.
func (g grammarSanitizer) resolves(ref string) bool {
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		name, ok := strings.CutPrefix(ref, prefix)
		if !ok || strings.Contains(name, "/") {
			continue
		}
		defs, _ := g.root[strings.TrimSuffix(strings.TrimPrefix(prefix, "#/"), "/")].(map[string]any)
		_, found := defs[name]
		return found
	}
	return false
}

func grammarType(v any) any {
	switch t := v.(type) {
	case string:
		if grammarTypes[t] {
			return t
		}
	case []any:
		var keep []any
		for _, x := range t {
			if s, ok := x.(string); ok && grammarTypes[s] {
				keep = append(keep, s)
			}
		}
		if len(keep) > 0 {
			return keep
		}
	}
	return nil
}

package exec

import (
	"encoding/json"
)

// Output bounds. Every executor call sends a num_predict derived from what
// it must produce, so a model that rambles or loops is stopped by Ollama
// instead of running until the step timeout. A reply cut at its bound is
// bad output: the step regenerates once with twice the room (see the
// regenerate rung), so a bound that was too tight costs one call, not the
// step.
const (
	answerTokens    = 512  // a free-text step answer: a few sentences
	synthTokens     = 1024 // the final answer to the request
	minOutputTokens = 64
	// maxOutputTokens caps both the derived bounds and their doubling.
	maxOutputTokens = 8192
)

// outputBound is the num_predict for a reply that must be an instance of
// one of schemas, or free text when a schema is empty. The grammar Ollama
// builds from a schema lets the model put whitespace between tokens, so
// the estimate of the instance is doubled.
func outputBound(schemas ...json.RawMessage) int {
	n := 0
	for _, s := range schemas {
		if len(s) == 0 {
			n = max(n, answerTokens)
			continue
		}
		var v any
		if err := json.Unmarshal(s, &v); err != nil {
			n = max(n, answerTokens)
			continue
		}
		n = max(n, 2*instanceTokens(v, 0)+32)
	}
	return min(max(n, minOutputTokens), maxOutputTokens)
}

// moreRoom is the bound after a reply was cut or broke off at n.
func moreRoom(n int) int { return min(2*max(n, minOutputTokens), maxOutputTokens) }

// instanceTokens estimates the tokens of a typical large instance of a JSON
// Schema, at about three characters a token.
func instanceTokens(v any, depth int) int {
	s, ok := v.(map[string]any)
	if !ok || depth > 8 {
		return 48
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		longest := 0
		for _, e := range enum {
			b, _ := json.Marshal(e)
			longest = max(longest, len(b))
		}
		return longest/3 + 2
	}
	if c, ok := s["const"]; ok {
		b, _ := json.Marshal(c)
		return len(b)/3 + 2
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[k].([]any); ok {
			n := 0
			for _, a := range alts {
				n = max(n, instanceTokens(a, depth+1))
			}
			return n
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		n := 0
		for _, a := range all {
			n += instanceTokens(a, depth+1)
		}
		return n
	}
	typ, _ := s["type"].(string)
	if list, ok := s["type"].([]any); ok && len(list) > 0 {
		typ, _ = list[0].(string)
	}
	switch typ {
	case "integer", "number":
		return 6
	case "boolean", "null":
		return 2
	case "string":
		if ml, ok := s["maxLength"].(float64); ok && ml > 0 {
			return min(int(ml)/3+2, 1024)
		}
		return 48
	case "array":
		items := 8
		if mi, ok := s["maxItems"].(float64); ok && mi > 0 {
			items = min(int(mi), 32)
		}
		return 2 + items*(instanceTokens(s["items"], depth+1)+1)
	}
	props, ok := s["properties"].(map[string]any)
	if !ok {
		if typ == "object" {
			return 96 // a free-form object: the arguments of some tool
		}
		return 48
	}
	n := 2
	for k, p := range props {
		n += len(k)/3 + 3 + instanceTokens(p, depth+1)
	}
	return n
}

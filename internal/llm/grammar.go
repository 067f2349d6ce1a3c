package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Ollama turns a JSON Schema in "format" into a llama.cpp grammar. That
// conversion supports a subset of JSON Schema, and some of what it does
// not support does not fail cleanly: on Ollama v0.17.4, measured against
// the real server,
//   - a repetition bound above 2000 (maxLength, minLength, maxItems) makes
//     the grammar parser refuse it and the model runner die (HTTP 500
//     "model runner has unexpectedly stopped");
//   - a "pattern" with \d or another escape it lacks kills the runner, one
//     with a lookahead kills the whole server, and an unanchored one is
//     "invalid JSON schema in format";
//   - "not", an unknown "type" or a "$ref" to a missing definition are
//     "invalid JSON schema in format".
//
// So the schema sent is a grammar-safe copy of the one asked for: only the
// keywords that turn into grammar safely are kept, with bounds small enough
// for the grammar parser, patterns rewritten into the regular-expression
// subset llama.cpp reads (or dropped), and the order of properties kept (a
// constrained model writes properties in schema order, so the plan schema
// puts a step's tool before its arguments). What the copy cannot express
// stays in the caller's own validation of the decoded reply against the
// full schema (plan validation, step output and tool argument checks): the
// grammar narrows what the model can say, the validator decides what is
// accepted.

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
	if !bytes.HasPrefix(bytes.TrimSpace(format), []byte("{")) {
		return format
	}
	v, err := decodeOrdered(format)
	root, ok := v.(*orderedObject)
	if err != nil || !ok {
		return format
	}
	out, err := json.Marshal(grammarSanitizer{root: root}.schema(root))
	if err != nil {
		return format
	}
	return out
}

type grammarSanitizer struct{ root *orderedObject }

func (g grammarSanitizer) schema(v any) any {
	m, ok := v.(*orderedObject)
	if !ok {
		if b, isBool := v.(bool); isBool && !b {
			return false
		}
		return &orderedObject{}
	}
	out := &orderedObject{}
	if ref, ok := m.get("$ref").(string); ok {
		if g.resolves(ref) {
			out.set("$ref", ref)
		}
		// Keywords beside $ref are ignored by the converter; an
		// unresolvable ref becomes "any value", checked afterwards.
		return out
	}
	for _, k := range m.keys {
		val := m.vals[k]
		switch k {
		case "type":
			if t := grammarType(val); t != nil {
				out.set(k, t)
			}
		case "properties", "$defs", "definitions":
			if props, ok := val.(*orderedObject); ok {
				clean := &orderedObject{}
				for _, name := range props.keys {
					clean.set(name, g.schema(props.vals[name]))
				}
				out.set(k, clean)
			}
		case "required":
			if names, ok := val.([]any); ok {
				out.set(k, names)
			}
		case "additionalProperties":
			out.set(k, g.schema(val))
		case "items":
			if tuple, ok := val.([]any); ok { // draft-04 tuple form
				out.set("prefixItems", g.list(tuple))
			} else {
				out.set(k, g.schema(val))
			}
		case "prefixItems", "anyOf", "oneOf", "allOf":
			if list, ok := val.([]any); ok && len(list) > 0 {
				out.set(k, g.list(list))
			}
		case "enum":
			if list, ok := val.([]any); ok && len(list) > 0 {
				out.set(k, list)
			}
		case "const":
			out.set(k, val)
		case "minLength", "maxLength", "minItems", "maxItems":
			if n, ok := val.(json.Number); ok {
				if i, err := n.Int64(); err == nil && i >= 0 && i <= grammarMaxRepeat {
					out.set(k, n)
				}
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			if n, ok := val.(json.Number); ok {
				out.set(k, n)
			}
		case "format":
			if f, ok := val.(string); ok && grammarFormats[f] {
				out.set(k, f)
			}
		case "pattern":
			if p, ok := val.(string); ok {
				if safe, ok := grammarPattern(p); ok {
					out.set(k, safe)
				}
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
	for _, section := range []string{"$defs", "definitions"} {
		name, ok := strings.CutPrefix(ref, "#/"+section+"/")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		defs, _ := g.root.get(section).(*orderedObject)
		return defs != nil && defs.has(name)
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

// grammarPattern rewrites a regular expression into the subset llama.cpp
// turns into grammar: anchored at both ends; literals, escaped punctuation,
// character classes, groups, alternation and quantifiers with small bounds.
// \d and \w become their classes. Anything else (lookarounds, \s, \b, back
// references, flags, large bounds) makes it report false: the pattern is
// dropped and enforced only by validation after decoding.
func grammarPattern(p string) (string, bool) {
	if len(p) < 2 || p[0] != '^' || !strings.HasSuffix(p, "$") || strings.HasSuffix(p, `\$`) {
		return "", false
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", false
			}
			i++
			e := p[i]
			switch {
			case e == 'd' && inClass:
				b.WriteString("0-9")
			case e == 'd':
				b.WriteString("[0-9]")
			case e == 'w' && inClass:
				b.WriteString("a-zA-Z0-9_")
			case e == 'w':
				b.WriteString("[a-zA-Z0-9_]")
			case strings.IndexByte(`.-\/$^{}()[]|*+?`, e) >= 0:
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				return "", false
			}
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' { // a negated class is fine
				i++
				b.WriteByte('^')
			}
		case c == '(':
			if i+1 < len(p) && p[i+1] == '?' {
				return "", false
			}
			b.WriteByte(c)
		case c == '{':
			end := strings.IndexByte(p[i:], '}')
			if end < 0 {
				return "", false
			}
			for _, n := range strings.Split(p[i+1:i+end], ",") {
				if n == "" {
					continue
				}
				v, err := strconv.Atoi(n)
				if err != nil || v > grammarMaxRepeat {
					return "", false
				}
			}
			b.WriteString(p[i : i+end+1])
			i += end
		case c == '^' && i > 0, c == '$' && i < len(p)-1:
			return "", false // anchors inside the pattern
		default:
			b.WriteByte(c)
		}
	}
	if inClass {
		return "", false
	}
	return b.String(), true
}

// orderedObject is a JSON object that keeps its keys in document order.
type orderedObject struct {
	keys []string
	vals map[string]any
}

func (o *orderedObject) set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *orderedObject) get(k string) any { return o.vals[k] }

func (o *orderedObject) has(k string) bool { _, ok := o.vals[k]; return ok }

func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeOrdered parses JSON with objects as *orderedObject and numbers as
// json.Number, so nothing about the schema changes but what is removed.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the schema")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &orderedObject{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			_, err := dec.Token() // '}'
			return o, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token() // ']'
			return list, err
		}
		return nil, errors.New("unexpected delimiter")
	default:
		return t, nil
	}
}

package ollamasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Ollama turns a `format` schema into a llama.cpp grammar before it runs
// the model, and both steps have limits a client meets as errors:
//
//   - a format that is neither "json" nor an object: 500 `invalid format:
//     "…"; expected "json" or a valid JSON Schema object` (llm/server.go);
//   - a schema llama.cpp's converter (common/json-schema-to-grammar.cpp)
//     rejects: 500 `invalid JSON schema in format`;
//   - a schema it converts into a grammar the runner cannot parse
//     (src/llama-grammar.cpp): a repetition above 2000 (maxLength,
//     minLength, maxItems, minItems, {m,n} in a pattern) or an escape GBNF
//     does not know (\d, \-, … in a pattern): the runner crashes and the
//     request gets 500 MsgRunnerStopped.
//
// checkFormat reproduces those decisions by walking the schema the way the
// converter does, in its order, without building the grammar; the
// differential test holds each case against the real server.

// maxGrammarRepetition is llama-grammar.cpp's MAX_REPETITION_THRESHOLD.
const maxGrammarRepetition = 2000

// msgInvalidSchema is llm/server.go's error when the converter fails.
const msgInvalidSchema = "invalid JSON schema in format"

// checkFormat returns the error Ollama answers for a request's format, or
// nil when the model can run with it.
func checkFormat(format json.RawMessage) *httpError {
	switch string(format) {
	case "", "null", `""`, `"json"`:
		return nil
	}
	if format[0] != '{' {
		return &httpError{http.StatusInternalServerError,
			fmt.Sprintf(`invalid format: %q; expected "json" or a valid JSON Schema object`, []byte(format))}
	}
	dec := json.NewDecoder(bytes.NewReader(format))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return &httpError{http.StatusInternalServerError, msgInvalidSchema}
	}
	g := &grammarCheck{root: root, refs: map[string]any{}, visited: map[string]bool{}}
	g.resolveRefs(root)
	g.visit(root, 0)
	switch {
	case g.invalid:
		return &httpError{http.StatusInternalServerError, msgInvalidSchema}
	case g.crash:
		return &httpError{http.StatusInternalServerError, MsgRunnerStopped}
	}
	return nil
}

// grammarCheck is one walk over a schema. invalid records a converter
// error (which wins: the grammar is never built), crash a grammar the
// runner would fail to parse.
type grammarCheck struct {
	root    any
	refs    map[string]any  // resolved local $refs, as the converter's _refs
	visited map[string]bool // $refs already visited (the converter's rule cache)
	invalid bool
	crash   bool
}

// maxWalkDepth stops a walk through nested allOf $refs that would recurse
// forever (the converter itself would overflow its stack).
const maxWalkDepth = 64

// resolveRefs is the converter's resolve_refs: every "$ref" in the
// document, used or not, must be a local "#/…" pointer to something that
// exists ("#" alone is not supported); an https ref would be fetched, and
// the converter has no fetcher, so one with a fragment fails.
func (g *grammarCheck) resolveRefs(n any) {
	switch x := n.(type) {
	case []any:
		for _, e := range x {
			g.resolveRefs(e)
		}
	case map[string]any:
		raw, ok := x["$ref"]
		if !ok {
			for _, v := range x {
				g.resolveRefs(v)
			}
			return
		}
		ref, ok := raw.(string)
		if !ok {
			g.invalid = true
			return
		}
		if _, done := g.refs[ref]; done {
			return
		}
		var target any
		switch {
		case strings.HasPrefix(ref, "https://"):
			if i := strings.IndexByte(ref, '#'); i < 0 || i == len(ref)-1 {
				return
			}
			target = nil
		case strings.HasPrefix(ref, "#/"):
			target = g.root
		default:
			g.invalid = true // Unsupported ref
			return
		}
		pointer := ref[strings.IndexByte(ref, '#')+1:]
		for _, sel := range strings.Split(pointer, "/")[1:] {
			switch t := target.(type) {
			case map[string]any:
				next, ok := t[sel]
				if !ok {
					g.invalid = true
					return
				}
				target = next
			case []any:
				i, err := strconv.ParseUint(leadingDigits(sel), 10, 64)
				if err != nil || i >= uint64(len(t)) {
					g.invalid = true
					return
				}
				target = t[i]
			default:
				g.invalid = true
				return
			}
		}
		g.refs[ref] = target
	}
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// visit follows the converter's visit: the first branch that applies
// decides, in this order.
func (g *grammarCheck) visit(schema any, depth int) {
	if depth > maxWalkDepth {
		return
	}
	obj, _ := schema.(map[string]any)
	has := func(k string) bool { _, ok := obj[k]; return ok }
	typ := obj["type"] // nil when absent
	typeIs := func(names ...string) bool {
		for _, n := range names {
			if n == "" && typ == nil {
				return true
			}
			if s, ok := typ.(string); ok && s == n && n != "" {
				return true
			}
		}
		return false
	}
	format := ""
	if has("format") {
		s, ok := obj["format"].(string)
		if !ok {
			g.invalid = true // get<std::string>() throws
			return
		}
		format = s
	}

	switch {
	case has("$ref"):
		ref, _ := obj["$ref"].(string)
		if g.visited[ref] {
			return
		}
		g.visited[ref] = true
		g.visit(g.refs[ref], depth+1)
	case has("oneOf") || has("anyOf"):
		alts, ok := obj["oneOf"]
		if !ok {
			alts = obj["anyOf"]
		}
		list, ok := alts.([]any)
		if !ok {
			g.invalid = true
			return
		}
		for _, a := range list {
			g.visit(a, depth+1)
		}
	case isArray(typ):
		for _, t := range typ.([]any) {
			alt := make(map[string]any, len(obj))
			for k, v := range obj {
				alt[k] = v
			}
			alt["type"] = t
			g.visit(alt, depth+1)
		}
	case has("const"), has("enum"):
	case typeIs("", "object") && (has("properties") || (has("additionalProperties") && obj["additionalProperties"] != true)):
		g.visitProperties(obj["properties"], depth)
		switch ap := obj["additionalProperties"].(type) {
		case map[string]any:
			g.visit(ap, depth+1)
		}
	case typeIs("", "object", "string") && has("allOf"):
		g.visitAllOf(obj["allOf"], depth)
	case typeIs("", "array") && (has("items") || has("prefixItems")):
		items, ok := obj["items"]
		if !ok {
			items = obj["prefixItems"]
		}
		if tuple, ok := items.([]any); ok {
			for _, it := range tuple {
				g.visit(it, depth+1)
			}
			return
		}
		g.visit(items, depth+1)
		minItems, maxItems, hasMax := int64(0), int64(math.MaxInt32), false
		if has("minItems") {
			if minItems, ok = cppInt(obj["minItems"]); !ok {
				g.invalid = true
				return
			}
		}
		if n, ok := obj["maxItems"].(json.Number); ok && isIntegerLiteral(n) {
			maxItems, _ = cppInt(n)
			hasMax = maxItems != math.MaxInt32
		}
		g.repetition(minItems, maxItems, hasMax, true)
	case typeIs("", "string") && has("pattern"):
		p, ok := obj["pattern"].(string)
		if !ok {
			g.invalid = true
			return
		}
		g.visitPattern(p)
	case typeIs("", "string") && uuidFormat.MatchString(format):
	case typeIs("", "string") && (format == "date" || format == "time" || format == "date-time"):
	case typeIs("string") && (has("minLength") || has("maxLength")):
		minLen, maxLen, hasMax := int64(0), int64(math.MaxInt32), false
		var ok bool
		if has("minLength") {
			if minLen, ok = cppInt(obj["minLength"]); !ok {
				g.invalid = true
				return
			}
		}
		if has("maxLength") {
			if maxLen, ok = cppInt(obj["maxLength"]); !ok {
				g.invalid = true
				return
			}
			hasMax = maxLen != math.MaxInt32
		}
		g.repetition(minLen, maxLen, hasMax, false)
	case typeIs("integer") && (has("minimum") || has("exclusiveMinimum") || has("maximum") || has("exclusiveMaximum")):
		for _, pair := range [][2]string{{"minimum", "exclusiveMinimum"}, {"maximum", "exclusiveMaximum"}} {
			k := pair[0]
			if !has(k) {
				k = pair[1]
			}
			if v, present := obj[k]; present {
				if _, ok := cppInt(v); !ok {
					g.invalid = true
					return
				}
			}
		}
	case isEmpty(schema) || typeIs("object"):
	default:
		s, ok := typ.(string)
		if !ok || !primitiveTypes[s] {
			g.invalid = true // Unrecognized schema
		}
	}
}

// primitiveTypes are the converter's PRIMITIVE_RULES: the type names it
// accepts, its internal rule names included.
var primitiveTypes = map[string]bool{"boolean": true, "decimal-part": true, "integral-part": true, "number": true,
	"integer": true, "value": true, "object": true, "array": true, "uuid": true, "char": true, "string": true, "null": true}

var uuidFormat = regexp.MustCompile(`^uuid[1-5]?$`)

// visitProperties visits each property schema (the converter iterates
// whatever "properties" holds: an object's values, an array's elements).
func (g *grammarCheck) visitProperties(props any, depth int) {
	switch p := props.(type) {
	case map[string]any:
		for _, v := range p {
			g.visit(v, depth+1)
		}
	case []any:
		for _, v := range p {
			g.visit(v, depth+1)
		}
	case nil:
	default:
		g.visit(p, depth+1)
	}
}

// visitAllOf merges the components as the converter does: their
// properties (through $refs, anyOf members optional), or, when every
// component lists enum values and some are common, just those values.
func (g *grammarCheck) visitAllOf(allOf any, depth int) {
	comps, _ := allOf.([]any)
	var props []any
	enumCount := map[string]int{}
	var add func(c any, d int)
	add = func(c any, d int) {
		m, _ := c.(map[string]any)
		if d > maxWalkDepth || m == nil {
			return
		}
		if ref, ok := m["$ref"].(string); ok {
			add(g.refs[ref], d+1)
			return
		}
		if p, ok := m["properties"].(map[string]any); ok {
			for _, v := range p {
				props = append(props, v)
			}
			return
		}
		if e, ok := m["enum"].([]any); ok {
			for _, v := range e {
				b, _ := json.Marshal(v)
				enumCount[string(b)]++
			}
		}
	}
	for _, c := range comps {
		if m, ok := c.(map[string]any); ok {
			if alts, ok := m["anyOf"].([]any); ok {
				for _, a := range alts {
					add(a, depth+1)
				}
				continue
			}
		}
		add(c, depth+1)
	}
	for _, n := range enumCount {
		if n == len(comps) {
			return // an enum intersection: no property is visited
		}
	}
	for _, p := range props {
		g.visit(p, depth+1)
	}
}

// repetition is build_repetition: it records a crash when the grammar it
// writes holds a {min,max} the runner refuses. With a separator (arrays)
// the repetition is of the items after the first.
func (g *grammarCheck) repetition(minN, maxN int64, hasMax, separated bool) {
	if maxN == 0 || (minN == 0 && maxN == 1) {
		return
	}
	if separated {
		if minN > 0 {
			minN--
		}
		if hasMax {
			maxN--
		}
		g.repetition(minN, maxN, hasMax, false)
		return
	}
	if !hasMax && (minN == 0 || minN == 1) {
		return // written as * or +
	}
	if minN < 0 || minN > maxGrammarRepetition || (hasMax && (maxN < 0 || maxN > maxGrammarRepetition)) {
		g.crash = true
	}
}

// visitPattern is _visit_pattern: the pattern must be anchored (^…$),
// square and curly brackets must close and {m,n} must hold numbers (else
// the converter fails); a {m,n} above the repetition limit and an escape
// GBNF does not know (anything but \x \u \U \t \r \n \\ \" \[ \] once the
// converter has unescaped regexp metacharacters outside brackets) crash
// the runner. Patterns on which the converter's behaviour is undefined (a
// quantifier with nothing before it) or on which it never returns (a
// stray ] or }) count as invalid here.
func (g *grammarCheck) visitPattern(p string) {
	if p == "" || p[0] != '^' || p[len(p)-1] != '$' || len(p) < 2 {
		g.invalid = true
		return
	}
	w := &patternWalk{g: g, sub: p[1 : len(p)-1]}
	w.transform()
}

// patternWalk is the converter's transform over a pattern without ^ and $.
type patternWalk struct {
	g   *grammarCheck
	sub string
	i   int
}

// transform reads one group: up to its closing parenthesis, or the end. A
// ) with no ( before it ends the walk early, as it ends the converter's.
func (w *patternWalk) transform() {
	items := 0
	for w.i < len(w.sub) {
		switch c := w.sub[w.i]; c {
		case '.', '|':
			items++
			w.i++
		case '(':
			w.i++
			w.transform()
			items++
		case ')':
			w.i++
			return
		case '[':
			w.i++
			for w.i < len(w.sub) && w.sub[w.i] != ']' {
				if w.sub[w.i] == '\\' {
					w.g.checkEscape(w.sub[w.i+1:])
					w.i += 2
				} else {
					w.i++
				}
			}
			if w.i >= len(w.sub) {
				w.g.invalid = true // Unbalanced square brackets
			}
			w.i++
			items++
		case '*', '+', '?':
			if items == 0 {
				w.g.invalid = true
			}
			w.i++
		case '{':
			j := strings.IndexByte(w.sub[w.i:], '}')
			if j < 0 || items == 0 {
				w.g.invalid = true // Unbalanced curly brackets
				return
			}
			w.g.curly(w.sub[w.i+1 : w.i+j])
			w.i += j + 1
		default:
			if !w.literal() {
				w.g.invalid = true
				return
			}
			items++
		}
	}
}

// literal consumes a run of literal characters as the converter does,
// checking the escapes it passes on to GBNF; false if it cannot move.
func (w *patternWalk) literal() bool {
	const nonLiteral = "|.()[]{}*+?"
	const unescaped = "^$.[]()|{}*+?"
	start := w.i
	for w.i < len(w.sub) {
		c, last := w.sub[w.i], w.i == len(w.sub)-1
		switch {
		case c == '\\' && !last:
			if strings.IndexByte(unescaped, w.sub[w.i+1]) < 0 {
				w.g.checkEscape(w.sub[w.i+1:])
			}
			w.i += 2
		case c == '\\':
			w.g.crash = true // a lone backslash escapes the literal's closing quote
			w.i++
		case c == '"':
			w.i++
		case strings.IndexByte(nonLiteral, c) < 0 &&
			(last || w.i == start || w.sub[w.i+1] == '.' || strings.IndexByte(nonLiteral, w.sub[w.i+1]) < 0):
			w.i++
		default:
			return w.i > start
		}
	}
	return w.i > start
}

// curly checks the inside of a {m,n} repetition.
func (g *grammarCheck) curly(inner string) {
	nums := strings.Split(inner, ",")
	minN, maxN, hasMax := int64(0), int64(math.MaxInt32), false
	parse := func(s string) (int64, bool) {
		t := strings.TrimLeft(s, " \t\n\r\f\v")
		sign := ""
		if t != "" && (t[0] == '+' || t[0] == '-') {
			sign, t = t[:1], t[1:]
		}
		d := leadingDigits(t)
		n, err := strconv.ParseInt(sign+d, 10, 32)
		return n, d != "" && err == nil
	}
	var ok bool
	switch len(nums) {
	case 1:
		if minN, ok = parse(nums[0]); !ok {
			g.invalid = true
			return
		}
		maxN, hasMax = minN, true
	case 2:
		if nums[0] != "" {
			if minN, ok = parse(nums[0]); !ok {
				g.invalid = true
				return
			}
		}
		if nums[1] != "" {
			if maxN, ok = parse(nums[1]); !ok {
				g.invalid = true
				return
			}
			hasMax = maxN != math.MaxInt32
		}
	default:
		g.invalid = true // Wrong number of values in curly brackets
	}
	g.repetition(minN, maxN, hasMax, false)
}

// checkEscape checks the character after a backslash the grammar will
// see, as GBNF's parse_char reads it.
func (g *grammarCheck) checkEscape(rest string) {
	if rest == "" {
		g.crash = true
		return
	}
	hexDigits := map[byte]int{'x': 2, 'u': 4, 'U': 8}
	switch c := rest[0]; {
	case hexDigits[c] > 0:
		n := hexDigits[c]
		if len(rest) < 1+n {
			g.crash = true
			return
		}
		for _, h := range rest[1 : 1+n] {
			if !strings.ContainsRune("0123456789abcdefABCDEF", h) {
				g.crash = true
				return
			}
		}
	case strings.IndexByte(`trn\"[]`, c) >= 0:
	default:
		g.crash = true // unknown escape
	}
}

// cppInt is nlohmann's get<int>: numbers (truncated) and booleans convert,
// anything else throws.
func cppInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		f, err := x.Float64()
		return int64(f), err == nil
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// isIntegerLiteral reports whether nlohmann parses n as an integer.
func isIntegerLiteral(n json.Number) bool {
	return !strings.ContainsAny(string(n), ".eE")
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

// isEmpty is nlohmann's empty(): null, {} and [].
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

package plan

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A reference is how one step uses another's result: "${step_id}" is the
// whole result, "${step_id.a.b}" a field inside it, "${step_id.items.0}" an
// element of a list. A string that is exactly one reference takes the
// referenced value with its JSON type; a reference inside a longer string is
// replaced by its text.
var (
	refAnywhere = regexp.MustCompile(`\$\{([^{}]*)\}`)
	refBody     = regexp.MustCompile(`^(` + idSyntax + `)(` + pathSyntax + `)$`)
)

// The grammar of step ids and reference paths, shared by the parser, the
// id check (IDPattern) and the planner's JSON Schema (RefPattern).
const (
	idSyntax   = `[a-z][a-z0-9_]*`
	pathSyntax = `(\.[A-Za-z0-9_-]+)*`
)

// RefPattern is the pattern of a string that is exactly one reference.
const RefPattern = `^\$\{` + idSyntax + pathSyntax + `\}$`

// Ref is one parsed reference.
type Ref struct {
	Step string   // id of the step whose result is used
	Path []string // field names or list indexes inside that result
	Raw  string   // the reference as written, "${a.b}"
}

func (r Ref) String() string { return r.Raw }

func parseRefBody(raw, body string) (Ref, bool) {
	m := refBody.FindStringSubmatch(body)
	if m == nil {
		return Ref{}, false
	}
	r := Ref{Step: m[1], Raw: raw}
	if m[2] != "" {
		r.Path = strings.Split(m[2][1:], ".")
	}
	return r, true
}

// ParseRefs returns the well-formed references in s, and the malformed ones
// ("${Weather}", "${a..b}", "${}") as written.
func ParseRefs(s string) (refs []Ref, malformed []string) {
	for _, m := range refAnywhere.FindAllStringSubmatch(s, -1) {
		if r, ok := parseRefBody(m[0], m[1]); ok {
			refs = append(refs, r)
		} else {
			malformed = append(malformed, m[0])
		}
	}
	return refs, malformed
}

// WholeRef reports whether s is exactly one well-formed reference.
func WholeRef(s string) (Ref, bool) {
	if !strings.HasPrefix(s, "${") || !strings.HasSuffix(s, "}") || strings.Count(s, "${") != 1 {
		return Ref{}, false
	}
	return parseRefBody(s, s[2:len(s)-1])
}

// WalkStrings calls fn for every string inside v (maps, lists, nested).
func WalkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case map[string]any:
		for _, e := range v {
			WalkStrings(e, fn)
		}
	case []any:
		for _, e := range v {
			WalkStrings(e, fn)
		}
	}
}

// binder fills references from step results, decoding each result once.
type binder struct {
	results map[string]json.RawMessage
	decoded map[string]any
}

// Bind returns a copy of args with every reference filled from results,
// which maps step ids to their JSON results. A string that is exactly one
// reference becomes the referenced value with its JSON type (number, object,
// list...); a reference inside a longer string becomes text (strings as they
// are, other values as compact JSON). A missing result or path is an error
// naming the reference.
func Bind(args map[string]any, results map[string]json.RawMessage) (map[string]any, error) {
	b := &binder{results: results, decoded: map[string]any{}}
	out, err := b.bind(args)
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	return m, nil
}

// BindText fills the references in a task's text; every reference becomes
// text.
func BindText(s string, results map[string]json.RawMessage) (string, error) {
	b := &binder{results: results, decoded: map[string]any{}}
	return b.text(s)
}

// Resolve returns the value one reference points at.
func Resolve(r Ref, results map[string]json.RawMessage) (any, error) {
	b := &binder{results: results, decoded: map[string]any{}}
	return b.resolve(r)
}

func (b *binder) bind(v any) (any, error) {
	switch v := v.(type) {
	case string:
		if r, ok := WholeRef(v); ok {
			return b.resolve(r)
		}
		return b.text(v)
	case map[string]any:
		if v == nil {
			return map[string]any(nil), nil
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			be, err := b.bind(e)
			if err != nil {
				return nil, err
			}
			out[k] = be
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			be, err := b.bind(e)
			if err != nil {
				return nil, err
			}
			out[i] = be
		}
		return out, nil
	default:
		return v, nil
	}
}

func (b *binder) text(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var firstErr error
	out := refAnywhere.ReplaceAllStringFunc(s, func(raw string) string {
		r, ok := parseRefBody(raw, raw[2:len(raw)-1])
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("reference %s is malformed: write ${step_id} or ${step_id.field}", raw)
			}
			return raw
		}
		v, err := b.resolve(r)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return raw
		}
		return textOf(v)
	})
	if firstErr != nil {
		return "", firstErr
	}
	return out, nil
}

// textOf renders a value for use inside a longer string.
func textOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return "null"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

func (b *binder) resolve(r Ref) (any, error) {
	v, ok := b.decoded[r.Step]
	if !ok {
		raw, found := b.results[r.Step]
		if !found {
			return nil, fmt.Errorf("reference %s: step %q has no result yet", r.Raw, r.Step)
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("reference %s: result of step %q is not JSON: %w", r.Raw, r.Step, err)
		}
		b.decoded[r.Step] = v
	}
	for i, seg := range r.Path {
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[seg]
			if !ok {
				return nil, fmt.Errorf("reference %s: result of step %q has no field %q", r.Raw, r.Step, strings.Join(r.Path[:i+1], "."))
			}
			v = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(cur) {
				return nil, fmt.Errorf("reference %s: %q is not an index of a list of %d items in the result of step %q", r.Raw, seg, len(cur), r.Step)
			}
			v = cur[n]
		default:
			where := "the result of step " + strconv.Quote(r.Step)
			if i > 0 {
				where = strconv.Quote(strings.Join(r.Path[:i], ".")) + " in " + where
			}
			return nil, fmt.Errorf("reference %s: %s is a %s and has no field %q", r.Raw, where, jsonKind(cur), seg)
		}
	}
	return v, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

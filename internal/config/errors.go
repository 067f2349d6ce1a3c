package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Problem is one thing wrong in a config file and the line it is written on.
type Problem struct {
	File string
	Line int // 0: the file does not write the key; its default is at fault
	// Err names the key path itself: a *FieldError, *ValueError or
	// *UnknownKeyError.
	Err error
}

func (p *Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", p.File, p.Line, p.Err)
	}
	return fmt.Sprintf("%s: %v", p.File, p.Err)
}

// Unwrap reaches the sentinel: errors.Is(err, ErrInvalid) or ErrUnknownKey.
func (p *Problem) Unwrap() error { return p.Err }

// Problems is every problem found in one file, in the order of its lines, so
// a person can fix them all in one pass.
type Problems []*Problem

func (ps Problems) Error() string {
	if len(ps) == 1 {
		return ps[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in %s:", len(ps), ps[0].File)
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every problem.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// cover reports whether p is about a key already listed, or about a key
// inside or around one: the same mistake seen twice.
func (ps Problems) cover(p *Problem) bool {
	k, ok := p.Err.(keyed)
	if !ok {
		return false
	}
	path := canonicalKey(k.keyPath())
	for _, q := range ps {
		qk, ok := q.Err.(keyed)
		if !ok {
			continue
		}
		if qp := canonicalKey(qk.keyPath()); within(qp, path) || within(path, qp) {
			return true
		}
	}
	return false
}

// within reports whether key path inner is outer or lies under it.
func within(inner, outer string) bool {
	rest, ok := strings.CutPrefix(inner, outer)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// sortByLine orders problems by line; those with no line (defaults) last.
func (ps Problems) sortByLine() {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
}

// ValueError is a value that cannot be read as its key's type: a string
// where a whole number belongs, or a duration that does not parse.
type ValueError struct {
	Path   string
	Reason string // "must be a whole number, got the string \"four\""
}

func (e *ValueError) Error() string { return e.Path + ": " + e.Reason }

// Unwrap lets callers test errors.Is(err, ErrInvalid).
func (e *ValueError) Unwrap() error { return ErrInvalid }

// UnknownKeyError is a key agentd does not know.
type UnknownKeyError struct {
	Path    string
	Suggest string // a known key spelled nearly the same, or ""
}

func (e *UnknownKeyError) Error() string {
	hint := ""
	if e.Suggest != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", e.Suggest)
	}
	return fmt.Sprintf("%s: unknown key%s — remove it or check its spelling against `agentd config example`", e.Path, hint)
}

// Unwrap lets callers test errors.Is(err, ErrUnknownKey).
func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }

// SyntaxError is a file that is not valid TOML. It is reported alone: past
// it the parser cannot tell keys from values.
type SyntaxError struct {
	File         string
	Line, Column int // 0 when the parser gave no position
	Msg          string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: not valid TOML: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s: not valid TOML: %s", e.File, e.Msg)
}

// Unwrap lets callers test errors.Is(err, ErrSyntax).
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// keyed is an error about one key, so its line can be found.
type keyed interface{ keyPath() string }

var (
	_ keyed = (*FieldError)(nil)
	_ keyed = (*ValueError)(nil)
	_ keyed = (*UnknownKeyError)(nil)
)

func (e *ValueError) keyPath() string      { return e.Path }
func (e *UnknownKeyError) keyPath() string { return e.Path }

// goTypeWords rewrites go-toml's "cannot decode TOML string into struct
// field config.ExecutorConfig.MaxConcurrentRuns of type int" in TOML's
// words. It is the fallback for a refusal the shape check did not foresee.
var goTypeWords = regexp.MustCompile(`cannot decode TOML ([a-z ]+?) into .* of type (\S+)`)

func goToTOMLWords(msg string) string {
	msg = strings.TrimPrefix(msg, "toml: ")
	m := goTypeWords.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	var w string
	switch goType := strings.TrimPrefix(m[2], "*"); {
	case strings.HasPrefix(goType, "[]"):
		w = "a list"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "."):
		w = "a table"
	case strings.HasPrefix(goType, "int"):
		w = "a whole number"
	case strings.HasPrefix(goType, "uint"):
		w = "a whole number, zero or more"
	case strings.HasPrefix(goType, "float"):
		w = "a number"
	case goType == "string":
		w = "a string"
	case goType == "bool":
		w = "true or false"
	default:
		w = "another type of value"
	}
	return fmt.Sprintf("must be %s, got a TOML %s", w, m[1])
}

// shapeChecker walks a document decoded as plain TOML values alongside the
// Config type it is meant for, and records every unknown key and every value
// of the wrong type, removing each from the document so the rest still
// decodes. go-toml stops at its first problem; this finds them all. Whether
// a value fits its key is decided by go-toml itself, one value at a time, so
// the two never disagree about what is allowed.
type shapeChecker struct {
	errs []error
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func isText(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textUnmarshaler) }

// table checks the keys of one TOML table against struct type t.
func (c *shapeChecker) table(path string, t reflect.Type, doc map[string]any) {
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fieldFor(t, k)
		if !ok {
			c.errs = append(c.errs, &UnknownKeyError{Path: joinKey(path, k), Suggest: suggestKey(t, k)})
			delete(doc, k)
			continue
		}
		if !c.value(joinKey(path, k), f.Type, doc[k]) {
			delete(doc, k)
		}
	}
}

// value checks v against type t and reports whether v may stay in the
// document: tables keep their good keys, a list goes as a whole when any of
// its elements is wrong.
func (c *shapeChecker) value(path string, t reflect.Type, v any) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isText(t) {
		return c.leaf(path, t, v)
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return c.wrongType(path, t, v)
		}
		c.table(path, t, m)
		return true
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return c.wrongType(path, t, v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !c.value(joinKey(path, k), t.Elem(), m[k]) {
				delete(m, k)
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			return c.wrongType(path, t, v)
		}
		keep := true
		for i, ev := range list {
			keep = c.value(indexKey(path, i), t.Elem(), ev) && keep
		}
		return keep
	case reflect.Interface:
		return true
	}
	return c.leaf(path, t, v)
}

// leaf asks go-toml whether v decodes into a t.
func (c *shapeChecker) leaf(path string, t reflect.Type, v any) bool {
	holder := reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: `toml:"v"`}})
	b, err := toml.Marshal(map[string]any{"v": v})
	if err == nil {
		err = toml.Unmarshal(b, reflect.New(holder).Interface())
	}
	if err == nil {
		return true
	}
	// Durations and sizes explain themselves better than a type can.
	if s, ok := v.(string); ok && isText(t) {
		if terr := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); terr != nil {
			c.errs = append(c.errs, &ValueError{Path: path, Reason: terr.Error()})
			return false
		}
	}
	return c.wrongType(path, t, v)
}

func (c *shapeChecker) wrongType(path string, t reflect.Type, v any) bool {
	c.errs = append(c.errs, &ValueError{Path: path, Reason: fmt.Sprintf("must be %s, got %s", want(t, false), got(v))})
	return false
}

// fieldFor finds the field a TOML key decodes into, the way go-toml does:
// the exact name first, then any casing.
func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	var folded reflect.StructField
	found := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" || !f.IsExported() {
			continue
		}
		if name == key {
			return f, true
		}
		if !found && strings.EqualFold(name, key) {
			folded, found = f, true
		}
	}
	return folded, found
}

func tomlName(f reflect.StructField) string {
	tag := strings.Split(f.Tag.Get("toml"), ",")[0]
	switch tag {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return tag
}

// suggestKey returns the key of t spelled most like key, when one is close
// enough to be a likely typo.
func suggestKey(t reflect.Type, key string) string {
	best, bestD := "", 3
	for i := 0; i < t.NumField(); i++ {
		name := tomlName(t.Field(i))
		if name == "" {
			continue
		}
		if d := editDistance(strings.ToLower(key), name); d < bestD && d <= len(name)/3+1 {
			best, bestD = name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// want says in TOML's words what a key of type t holds.
func want(t reflect.Type, plural bool) string {
	one, many := wantWords(t)
	if plural {
		return many
	}
	return one
}

func wantWords(t reflect.Type) (one, many string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[Duration]():
		return `a duration, like "90s", "5m", "2h30m" or "7d"`, `durations, like "90s"`
	case reflect.TypeFor[ByteSize]():
		return `a size in bytes or a string with a unit, like 1024, "512MiB" or "8GiB"`, `sizes, like "512MiB"`
	}
	if isText(t) {
		return "a string", "strings"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number", "whole numbers"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, zero or more", "whole numbers, zero or more"
	case reflect.Float32, reflect.Float64:
		return "a number", "numbers"
	case reflect.String:
		return "a string", "strings"
	case reflect.Bool:
		return "true or false", "true or false values"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Interface {
			return "a list", "lists"
		}
		return "a list of " + want(t.Elem(), true), "lists"
	case reflect.Map, reflect.Struct:
		return "a table", "tables"
	}
	return "a value", "values"
}

// got describes a decoded TOML value in TOML's words.
func got(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return "the string " + strconv.Quote(x)
	case int64:
		return fmt.Sprintf("the whole number %d", x)
	case float64:
		switch {
		case math.IsInf(x, 0), math.IsNaN(x):
			return fmt.Sprintf("the number %v", x)
		case x == math.Trunc(x) && math.Abs(x) < 1e15:
			return fmt.Sprintf("the number %.1f", x)
		}
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time:
		return "the date and time " + x.Format(time.RFC3339)
	case toml.LocalDate:
		return "the date " + x.String()
	case toml.LocalTime:
		return "the time of day " + x.String()
	case toml.LocalDateTime:
		return "the date and time " + x.String()
	}
	return fmt.Sprintf("%v", v)
}

package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// check runs Check on body and returns its problems, failing the test when
// the error is anything else.
func check(t *testing.T, body string) Problems {
	t.Helper()
	_, err := Check(strings.NewReader(body), "agentd.conf")
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v (%T), want Problems", err, err)
	}
	return ps
}

func TestCheckListsEveryProblemByLine(t *testing.T) {
	body := `# an operator's file with four mistakes
[executor]
max_concurrent_runs = "four"
step_timeout = "5 mins"

[fallback.caps]
day_usd = -1.0

[logging]
levle = "debug"
`
	ps := check(t, body)
	want := []struct {
		line    int
		is      error
		mention []string
	}{
		{3, ErrInvalid, []string{"executor.max_concurrent_runs", `must be a whole number, got the string "four"`}},
		{4, ErrInvalid, []string{"executor.step_timeout", `"5 mins"`, `"5m"`}},
		{7, ErrInvalid, []string{"fallback.caps.day_usd = -1", "zero or more"}},
		{10, ErrUnknownKey, []string{"logging.levle", "did you mean level", "agentd config example"}},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i, w := range want {
		p := ps[i]
		if p.Line != w.line || !errors.Is(p, w.is) {
			t.Errorf("problem %d = line %d %v, want line %d %v", i, p.Line, p, w.line, w.is)
		}
		if prefix := fmt.Sprintf("agentd.conf:%d: ", w.line); !strings.HasPrefix(p.Error(), prefix) {
			t.Errorf("problem %d %q does not start with %q", i, p, prefix)
		}
		for _, m := range w.mention {
			if !strings.Contains(p.Error(), m) {
				t.Errorf("problem %d %q does not mention %q", i, p, m)
			}
		}
	}
	// One per line, after a line that counts them.
	lines := strings.Split(ps.Error(), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "4 problems in agentd.conf") {
		t.Errorf("message:\n%s", ps.Error())
	}
	var fe *FieldError
	if !errors.As(error(ps), &fe) || fe.Path != "fallback.caps.day_usd" {
		t.Errorf("errors.As FieldError = %v", fe)
	}
}

func TestCheckArrayOfTablesPaths(t *testing.T) {
	body := `[[ollama.endpoints]]
name = "a"
url = "http://127.0.0.1:11434"

[[ollama.endpoints]]
name = "b"
url = "ftp://gpu2"
parallel_slots = "two"

[[workflows]]
name = "w"
[[workflows.steps]]
id = "a"
tool = "calc"
[[workflows.steps]]
id = "b"
task = "sum up"
tier = 3
`
	ps := check(t, body)
	want := map[string]int{
		"ollama.endpoints[1].url":            7,
		"ollama.endpoints[1].parallel_slots": 8,
		"workflows[0].steps[1].tier":         18,
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for _, p := range ps {
		path := p.Err.(keyed).keyPath()
		if line, ok := want[path]; !ok || line != p.Line {
			t.Errorf("%v: path %q line %d, want one of %v", p, path, p.Line, want)
		}
	}
}

func TestCheckDefaultHasNoLine(t *testing.T) {
	ps := check(t, "[server]\nlisten = \"0.0.0.0:8484\"\nlog = 1\n")
	if len(ps) != 2 {
		t.Fatalf("problems: %v", ps)
	}
	// The unknown key is written on line 3; server.tls_cert is not written
	// at all, so it has no line and comes last.
	if ps[0].Line != 3 || ps[1].Line != 0 || !strings.HasPrefix(ps[1].Error(), "agentd.conf: server.tls_cert") {
		t.Errorf("problems: %v", ps)
	}
}

func TestCheckMissingKeyOfListElementPointsAtElement(t *testing.T) {
	ps := check(t, "[logging]\nlevel = \"info\"\n\n[[tools.command]]\nname = \"lookup\"\n")
	if len(ps) != 1 || ps[0].Line != 4 || !strings.Contains(ps[0].Error(), "tools.command[0].argv") {
		t.Errorf("problems: %v", ps)
	}
}

func TestSyntaxErrorStaysSingle(t *testing.T) {
	_, err := Check(strings.NewReader("[server]\nlisten = 127.0.0.1\nauth = nope\n"), "agentd.conf")
	var se *SyntaxError
	if !errors.Is(err, ErrSyntax) || !errors.As(err, &se) || se.Line != 2 {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "agentd.conf:2:") {
		t.Errorf("err = %q", err)
	}
}

func TestKeyLines(t *testing.T) {
	doc := `# comment = 1
top.dotted = 1 # trailing
"quoted.key" = 2
[a]
s = """
not_a_key = 3
"""
list = [
  "x",
  # comment inside
  "y",
]
[a.'b c']
k = 'v'
[[arr]]
n = 1
[[arr]]
n = 2
[arr.sub]
m = 3
[[arr.items]]
i = 1
inline = { p = 1,
  q = [ { r = 1 } ] }
`
	lines := readKeyLines([]byte(doc))
	for path, want := range map[string]int{
		"top.dotted":                    2,
		`"quoted.key"`:                  3,
		"a":                             4,
		"a.s":                           5,
		"a.list[0]":                     9,
		"a.list[1]":                     11,
		`a."b c".k`:                     14,
		"arr[0].n":                      16,
		"arr[1]":                        17,
		"arr[1].n":                      18,
		"arr[1].sub.m":                  20,
		"arr[1].items[0].i":             22,
		"arr[1].items[0].inline.q[0].r": 24,
	} {
		if got := lines.find(path); got != want {
			t.Errorf("line of %s = %d, want %d", path, got, want)
		}
	}
	if got := lines.find("a.not_a_key"); got != 0 {
		t.Errorf("a key inside a multi-line string was read as a key, line %d", got)
	}
	if got := lines.find(`models.options."x"`); got != 0 {
		t.Errorf("unwritten key has line %d", got)
	}
}

// Any value of any type under any key: the message is in TOML's words, with
// the file, the line and the key, and never Go's.
func TestNoGoIdentifiersInMessages(t *testing.T) {
	bad := []string{`"four"`, `-4`, `1.5`, `2.0`, `true`, `[1, "x"]`, `["a", "b"]`, `{ a = 1 }`,
		`1979-05-27`, `07:32:00`, `1979-05-27T07:32:00Z`, `"5 mins"`, `"lots"`, `""`, `-inf`, `[]`, `[{ x = 1 }]`}
	leaves := configLeaves(reflect.TypeFor[Config](), "", nil)
	if len(leaves) < 100 {
		t.Fatalf("only %d leaf keys found", len(leaves))
	}
	for _, leaf := range leaves {
		for _, v := range bad {
			body := leaf.doc + " = " + v + "\n"
			_, err := Check(strings.NewReader(body), "agentd.conf")
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("%s = %s: err = %v, want ErrInvalid or ErrUnknownKey", leaf.path, v, err)
				continue
			}
			msg := err.Error()
			for _, goWord := range []string{"config.", "struct field", " of type ", "toml:", "map[", "interface", "int64", "float64", "[]string", "%!"} {
				if strings.Contains(msg, goWord) {
					t.Errorf("%s = %s: message speaks Go (%q):\n%s", leaf.path, v, goWord, msg)
				}
			}
			var ps Problems
			errors.As(err, &ps)
			for _, p := range ps {
				if ve, ok := p.Err.(*ValueError); ok && (p.Line == 0 || !strings.HasPrefix(canonicalKey(ve.Path), leaf.path)) {
					t.Errorf("%s = %s: %v: want the key's line and path", leaf.path, v, p)
				}
			}
		}
	}
}

type leafKey struct{ path, doc string }

// configLeaves lists every key that holds a value, with the TOML that
// reaches it: table headers, then the key, ready for " = value".
func configLeaves(t reflect.Type, path string, headers []string) []leafKey {
	var out []leafKey
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		p := joinKey(path, name)
		ft := f.Type
		switch {
		case isText(ft):
		case ft.Kind() == reflect.Struct:
			out = append(out, configLeaves(ft, p, append(headers[:len(headers):len(headers)], "["+tomlPath(p)+"]"))...)
			continue
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, configLeaves(ft.Elem(), indexKey(p, 0), append(headers[:len(headers):len(headers)], "[["+tomlPath(p)+"]]"))...)
			continue
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, configLeaves(ft.Elem(), joinKey(p, "m"), append(headers[:len(headers):len(headers)], "["+tomlPath(p)+".m]"))...)
			continue
		}
		out = append(out, leafKey{path: p, doc: strings.Join(headers, "\n") + "\n" + name})
	}
	return out
}

// tomlPath drops the indices from a key path, as a [[header]] writes it.
func tomlPath(p string) string {
	var parts []string
	for _, part := range splitKey(p) {
		if !isIndex(part) {
			parts = append(parts, part)
		}
	}
	return joinParts(parts)
}

package plan

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseRefs(t *testing.T) {
	tests := []struct {
		in        string
		refs      []string
		malformed []string
	}{
		{"no refs", nil, nil},
		{"${a}", []string{"a"}, nil},
		{"x ${a.b.c} and ${d_2.list.0}", []string{"a.b.c", "d_2.list.0"}, nil},
		{"${Weather} ${} ${a..b} ${a.}", nil, []string{"${Weather}", "${}", "${a..b}", "${a.}"}},
		{"${a.july-mean}", []string{"a.july-mean"}, nil},
	}
	for _, tt := range tests {
		refs, bad := ParseRefs(tt.in)
		var got []string
		for _, r := range refs {
			got = append(got, strings.Join(append([]string{r.Step}, r.Path...), "."))
		}
		if !reflect.DeepEqual(got, tt.refs) || !reflect.DeepEqual(bad, tt.malformed) {
			t.Errorf("ParseRefs(%q) = %v, %v; want %v, %v", tt.in, got, bad, tt.refs, tt.malformed)
		}
	}
}

func TestWholeRef(t *testing.T) {
	for in, want := range map[string]bool{"${a}": true, "${a.b}": true, " ${a}": false, "${a}${b}": false, "${A}": false, "x": false, "${a} ": false} {
		if _, ok := WholeRef(in); ok != want {
			t.Errorf("WholeRef(%q) = %v, want %v", in, ok, want)
		}
	}
}

func TestBind(t *testing.T) {
	results := map[string]json.RawMessage{
		"w":    json.RawMessage(`{"city":"Austin","july_mean_c":29.5,"tags":["hot","dry"],"nested":{"a":{"b":true}},"none":null}`),
		"n":    json.RawMessage(`42`),
		"s":    json.RawMessage(`"plain text"`),
		"list": json.RawMessage(`[{"name":"x"},{"name":"y"}]`),
		"bad":  json.RawMessage(`not json`),
	}
	tests := []struct {
		name string
		args string
		want string
		err  string
	}{
		{"no refs", `{"a":"b","n":1}`, `{"a":"b","n":1}`, ""},
		{"whole keeps type", `{"t":"${w.july_mean_c}","all":"${n}","tags":"${w.tags}","b":"${w.nested.a.b}","z":"${w.none}"}`,
			`{"t":29.5,"all":42,"tags":["hot","dry"],"b":true,"z":null}`, ""},
		{"embedded becomes text", `{"q":"cities near ${w.july_mean_c} C in ${w.city}, ${s}; tags ${w.tags}; ${w.none}"}`,
			`{"q":"cities near 29.5 C in Austin, plain text; tags [\"hot\",\"dry\"]; null"}`, ""},
		{"list index", `{"first":"${list.0.name}","second":"${list.1}"}`, `{"first":"x","second":{"name":"y"}}`, ""},
		{"nested args", `{"o":{"l":["${n}","${w.city}!"]}}`, `{"o":{"l":[42,"Austin!"]}}`, ""},
		{"missing step", `{"a":"${zz}"}`, "", `step "zz" has no result`},
		{"missing field", `{"a":"${w.nope}"}`, "", `has no field "nope"`},
		{"bad index", `{"a":"${list.7}"}`, "", "not an index"},
		{"field of scalar", `{"a":"x ${n.k}"}`, "", "is a number and has no field"},
		{"not json", `{"a":"${bad}"}`, "", "not JSON"},
		{"malformed in text", `{"a":"x ${Bad}"}`, "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args map[string]any
			if err := json.Unmarshal([]byte(tt.args), &args); err != nil {
				t.Fatal(err)
			}
			before, _ := json.Marshal(args)
			got, err := Bind(args, results)
			if after, _ := json.Marshal(args); string(after) != string(before) {
				t.Fatalf("Bind modified its input: %s", after)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestBindText(t *testing.T) {
	results := map[string]json.RawMessage{"w": json.RawMessage(`{"c":"Austin","t":30}`)}
	got, err := BindText("Weather in ${w.c}: ${w.t} C (${w})", results)
	if err != nil || got != `Weather in Austin: 30 C ({"c":"Austin","t":30})` {
		t.Fatalf("got %q, %v", got, err)
	}
	if v, err := Resolve(Ref{Step: "w", Path: []string{"t"}, Raw: "${w.t}"}, results); err != nil || v != 30.0 {
		t.Fatalf("Resolve = %v, %v", v, err)
	}
}

// RefPattern goes to the planner's JSON Schema; it must accept exactly the
// strings WholeRef parses.
func TestRefPatternAgreesWithWholeRef(t *testing.T) {
	re := regexp.MustCompile(RefPattern)
	for _, s := range []string{"${a}", "${a.b}", "${step_1.items.0}", "${a.b-c.D_e}", "${A}", "${a..b}", "${}", "${1a}", "${a.}", "x${a}", "${a}x", "${a}${b}", "${a.b c}"} {
		_, whole := WholeRef(s)
		if got := re.MatchString(s); got != whole {
			t.Errorf("%q: RefPattern matches %v, WholeRef %v", s, got, whole)
		}
	}
}

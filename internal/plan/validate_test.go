package plan

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustPlan(t testing.TB, s string) *Plan {
	t.Helper()
	var p Plan
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("bad test plan: %v\n%s", err, s)
	}
	return &p
}

func TestValidate(t *testing.T) {
	type want struct{ step, field, text string }
	tests := []struct {
		name string
		plan string
		max  int
		want []want
	}{
		{"design example", `{"goal":"g","steps":[
			{"id":"austin_weather","tool":"get_weather","args":{"city":"Austin, TX"}},
			{"id":"hot_cities","task":"List cities within 2 C of ${austin_weather.july_mean_c}","tools":["search_cities"],"tier":"fast","depends_on":["austin_weather"]}],"answer":"a"}`, 12, nil},
		{"no steps", `{"goal":"g","steps":[],"answer":"a"}`, 12, []want{{"", "steps", "no steps"}}},
		{"too many steps", `{"steps":[{"id":"a","task":"x"},{"id":"b","task":"y"},{"id":"c","task":"z"}]}`, 2, []want{{"", "steps", "3 steps but at most 2"}}},
		{"missing id", `{"steps":[{"task":"x"}]}`, 12, []want{{"steps[0]", "id", "id is missing"}}},
		{"bad id", `{"steps":[{"id":"Get-Weather","task":"x"}]}`, 12, []want{{"steps[0]", "id", `such as "get_weather"`}}},
		{"duplicate id", `{"steps":[{"id":"a","task":"x"},{"id":"a","task":"y"}]}`, 12, []want{{`"a"`, "id", "more than one step"}}},
		{"both tool and task", `{"steps":[{"id":"a","tool":"calc","args":{"expression":"1"},"task":"x"}]}`, 12, []want{{`"a"`, "tool", "both tool and task"}}},
		{"neither", `{"steps":[{"id":"a"}]}`, 12, []want{{`"a"`, "task", "neither tool nor task"}}},
		{"unknown tool", `{"steps":[{"id":"a","tool":"get_wether","args":{"city":"x"}}]}`, 12, []want{{`"a"`, "tool", `tool "get_wether" does not exist: use one of: calc, get_weather, search_cities`}}},
		{"unknown task tool", `{"steps":[{"id":"a","task":"x","tools":["calc","browse"]}]}`, 12, []want{{`"a"`, "tools", `"browse"`}}},
		{"tools on tool step", `{"steps":[{"id":"a","tool":"calc","args":{"expression":"1"},"tools":["calc"]}]}`, 12, []want{{`"a"`, "tools", "task steps only"}}},
		{"bad tier", `{"steps":[{"id":"a","task":"x","tier":"large"}]}`, 12, []want{{`"a"`, "tier", `tier "large"`}}},
		{"bad output", `{"steps":[{"id":"a","task":"x","output":[1]}]}`, 12, []want{{`"a"`, "output", "JSON Schema object"}}},
		{"missing required arg", `{"steps":[{"id":"a","tool":"get_weather","args":{}}]}`, 12, []want{{`"a"`, "args", "args do not fit tool get_weather"}}},
		{"nil args", `{"steps":[{"id":"a","tool":"get_weather"}]}`, 12, []want{{`"a"`, "args", "get_weather"}}},
		{"wrong arg type", `{"steps":[{"id":"a","tool":"search_cities","args":{"query":"x","limit":"ten"}}]}`, 12, []want{{`"a"`, "args", "search_cities"}}},
		{"reference in number field", `{"steps":[{"id":"n","task":"count"},
			{"id":"a","tool":"search_cities","args":{"query":"x","limit":"${n.count}","near":"${n.where}","tags":["${n}"]},"depends_on":["n"]}]}`, 12, nil},
		{"reference in enum field", `{"steps":[{"id":"u","task":"pick units"},{"id":"a","tool":"get_weather","args":{"city":"x","units":"${u}"},"depends_on":["u"]}]}`, 12, nil},
		{"embedded reference in number field", `{"steps":[{"id":"n","task":"count"},{"id":"a","tool":"search_cities","args":{"query":"x","limit":"${n} items"},"depends_on":["n"]}]}`, 12, []want{{`"a"`, "args", "search_cities"}}},
		{"reference not in depends_on", `{"steps":[{"id":"w","tool":"get_weather","args":{"city":"x"}},{"id":"a","tool":"calc","args":{"expression":"${w.t} * 2"}}]}`, 12, []want{{`"a"`, "depends_on", `add "w" to depends_on`}}},
		{"reference in task not in depends_on", `{"steps":[{"id":"w","task":"x"},{"id":"a","task":"use ${w}"}]}`, 12, []want{{`"a"`, "depends_on", `add "w"`}}},
		{"reference to unknown step", `{"steps":[{"id":"a","tool":"calc","args":{"expression":"${nope.x}"}}]}`, 12, []want{{`"a"`, "args", `no step "nope"`}}},
		{"reference to itself", `{"steps":[{"id":"a","task":"use ${a}"}]}`, 12, []want{{`"a"`, "args", "its own result"}}},
		{"malformed reference", `{"steps":[{"id":"a","task":"use ${Weather}"}]}`, 12, []want{{`"a"`, "args", "${Weather} is malformed"}}},
		{"unknown dependency", `{"steps":[{"id":"a","task":"x","depends_on":["b"]}]}`, 12, []want{{`"a"`, "depends_on", `"b", which is not a step`}}},
		{"self dependency", `{"steps":[{"id":"a","task":"x","depends_on":["a"]}]}`, 12, []want{{`"a"`, "depends_on", "depends on itself"}}},
		{"cycle", `{"steps":[{"id":"a","task":"x","depends_on":["c"]},{"id":"b","task":"y","depends_on":["a"]},{"id":"c","task":"z","depends_on":["b"]}]}`, 12,
			[]want{{`"a"`, "depends_on", "cycle a -> c -> b -> a"}}},
		{"answer unknown ref", `{"steps":[{"id":"a","task":"x"}],"answer":"say ${b}"}`, 12, []want{{"", "answer", `no step "b"`}}},
	}
	cat := weatherTools()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Validate(mustPlan(t, tt.plan), cat, tt.max)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), Errors(errs))
			}
			for i, w := range tt.want {
				e := errs[i]
				if e.Step != w.step || e.Field != w.field || !strings.Contains(e.Msg, w.text) {
					t.Errorf("error %d = %+v, want step %s field %s containing %q", i, e, w.step, w.field, w.text)
				}
			}
		})
	}
}

func TestValidateWithoutSchemas(t *testing.T) {
	// Without argument schemas a whole reference is validated as the string
	// it is: fine for a string field, an error for an integer field.
	cat := bareCatalog{weatherTools()}
	ok := mustPlan(t, `{"steps":[{"id":"w","task":"x"},{"id":"a","tool":"get_weather","args":{"city":"${w.city}"},"depends_on":["w"]}]}`)
	if errs := Validate(ok, cat, 12); errs != nil {
		t.Fatalf("unexpected errors: %v", Errors(errs))
	}
	bad := mustPlan(t, `{"steps":[{"id":"w","task":"x"},{"id":"a","tool":"get_weather","args":{"city":"x","units":"c","extra":1}}]}`)
	errs := Validate(bad, cat, 12)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "get_weather") {
		t.Fatalf("errors = %v", Errors(errs))
	}
	if strings.Contains(Errors(Validate(mustPlan(t, `{"steps":[{"id":"a","tool":"nope"}]}`), cat, 12)).Error(), "use one of:") {
		t.Error("a catalog without List cannot list tool names")
	}
}

func TestValidateRemaining(t *testing.T) {
	cat := weatherTools()
	p := mustPlan(t, `{"steps":[{"id":"b","tool":"calc","args":{"expression":"${a.x} + 1"}},{"id":"c","task":"use ${b}","depends_on":["b","a"]}],"answer":"${a} and ${c}"}`)
	if errs := ValidateRemaining(p, cat, 12, []string{"a"}); errs != nil {
		t.Fatalf("unexpected errors: %v", Errors(errs))
	}
	if errs := Validate(p, cat, 12); len(errs) == 0 {
		t.Fatal("plain Validate must reject references to steps outside the plan")
	}
	reuse := mustPlan(t, `{"steps":[{"id":"a","task":"again"}]}`)
	errs := ValidateRemaining(reuse, cat, 12, []string{"a"})
	if len(errs) != 1 || errs[0].Field != "id" {
		t.Fatalf("errors = %v", Errors(errs))
	}
}

func TestValidateNil(t *testing.T) {
	if errs := Validate(nil, weatherTools(), 12); len(errs) != 1 {
		t.Fatalf("errors = %v", errs)
	}
	if errs := Validate(mustPlan(t, `{"steps":[{"id":"a","tool":"calc"}]}`), nil, 0); len(errs) != 1 {
		t.Fatalf("nil catalog: errors = %v", errs)
	}
}

func TestTopoOrder(t *testing.T) {
	tests := []struct {
		name string
		plan string
		want []string
		err  string
	}{
		{"keeps plan order", `{"steps":[{"id":"a"},{"id":"b"},{"id":"c"}]}`, []string{"a", "b", "c"}, ""},
		{"moves dependencies first", `{"steps":[{"id":"c","depends_on":["a","b"]},{"id":"a"},{"id":"b","depends_on":["a","a"]}]}`, []string{"a", "b", "c"}, ""},
		{"cycle", `{"steps":[{"id":"a","depends_on":["b"]},{"id":"b","depends_on":["a"]},{"id":"c"}]}`, nil, "cycle"},
		{"unknown", `{"steps":[{"id":"a","depends_on":["z"]}]}`, nil, "unknown step"},
		{"duplicate", `{"steps":[{"id":"a"},{"id":"a"}]}`, nil, "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustPlan(t, tt.plan).TopoOrder()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if tt.err == "cycle" && !errors.Is(err, ErrCycle) {
					t.Fatalf("err %v does not wrap ErrCycle", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReady(t *testing.T) {
	p := mustPlan(t, `{"steps":[{"id":"a"},{"id":"b"},{"id":"c","depends_on":["a","b"]},{"id":"d","depends_on":["c"]}]}`)
	ids := func(ss []Step) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	tests := []struct {
		done map[string]bool
		want []string
	}{
		{map[string]bool{}, []string{"a", "b"}},
		{map[string]bool{"a": true}, []string{"b"}},
		{map[string]bool{"a": true, "b": true}, []string{"c"}},
		{map[string]bool{"a": true, "b": true, "c": true, "d": true}, nil},
	}
	for _, tt := range tests {
		if got := ids(p.Ready(tt.done)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Ready(%v) = %v, want %v", tt.done, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	p := mustPlan(t, `{"steps":[{"id":"a","tool":"calc"},{"id":"b","task":"x"},{"id":"c","task":"y","tier":"standard"}]}`)
	p.Normalize()
	if p.Steps[0].Tier != "" || p.Steps[1].Tier != TierFast || p.Steps[2].Tier != TierStandard {
		t.Fatalf("tiers = %q %q %q", p.Steps[0].Tier, p.Steps[1].Tier, p.Steps[2].Tier)
	}
}

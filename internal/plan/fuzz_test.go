package plan

import (
	"encoding/json"
	"testing"
)

// FuzzValidate feeds arbitrary bytes through json.Unmarshal into a Plan and
// then through everything that reads plans: none of it may panic.
func FuzzValidate(f *testing.F) {
	seeds := []string{
		`{"goal":"g","steps":[{"id":"austin_weather","tool":"get_weather","args":{"city":"Austin, TX"}},{"id":"hot","task":"near ${austin_weather.july_mean_c}","tools":["search_cities"],"tier":"fast","depends_on":["austin_weather"]}],"answer":"a"}`,
		`{"steps":[{"id":"a","task":"x","depends_on":["c"]},{"id":"b","task":"y","depends_on":["a"]},{"id":"c","task":"z","depends_on":["b"]}]}`,
		`{"steps":[{"id":"n","task":"count"},{"id":"a","tool":"search_cities","args":{"query":"x","limit":"${n.count}","near":{"lat":"${n}"},"tags":["${n.0}"]},"depends_on":["n","n"]}]}`,
		`{"steps":[{"id":"a","tool":"calc","args":{"expression":"${a}"},"depends_on":["a"],"output":{"type":"object"}}],"answer":"${q} ${}"}`,
		`{"steps":[{},{"id":""},{"id":"A"},{"tool":"x","task":"y","tier":"huge","tools":[""]}]}`,
		`{"steps":null}`,
		`[]`,
		`{"steps":[{"id":"a","args":{"x":[[[[{"y":"${b.c.d}"}]]]]}}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	cat := weatherTools()
	results := map[string]json.RawMessage{"a": json.RawMessage(`{"b":[1,{"c":"d"}]}`), "n": json.RawMessage(`3`)}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Plan
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		errs := Validate(&p, cat, 12)
		_ = Errors(errs).Error()
		_ = ValidateRemaining(&p, bareCatalog{cat}, 0, []string{"n"})
		order, err := p.TopoOrder()
		if len(errs) == 0 && err != nil {
			t.Fatalf("Validate accepted a plan TopoOrder rejects: %v", err)
		}
		if err == nil && len(order) != len(p.Steps) {
			t.Fatalf("TopoOrder returned %d of %d steps", len(order), len(p.Steps))
		}
		_ = p.Ready(map[string]bool{"a": true})
		for _, s := range p.Steps {
			_, _ = Bind(s.Args, results)
			_, _ = BindText(s.Task, results)
		}
		p.Normalize()
	})
}

package plancache

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/agentd/agentd/internal/localplanner"
)

// answerPattern reads a reply pattern out of a run's answer: each
// parameter's value becomes {{name}} and each value of a tool step's
// result found in it becomes ${step.path}. What is left is the answer's
// own language. One run cannot tell language that depends on the values
// ("in stock" against "out of stock") from language that does not, so a
// pattern is used only once a second run with other values reads the same
// (see Cache.confirmPattern).
//
// Only a plan of one tool step whose result holds no true/false value
// gets a pattern: an answer that rests on two results may compare them
// ("Austin is warmer than Denver"), and which value lands in which place
// then depends on the values — two runs where the same side won confirm a
// pattern that is wrong the day the other side wins (the cache bench
// served 37 such wrong answers before this rule). A true/false in the
// result ("in_stock") likewise usually picks the wording. "" when no
// pattern may be read, or the answer already holds placeholder syntax.
func answerPattern(answer string, written map[string]string, outputs map[string]string, steps int) string {
	if answer == "" || strings.Contains(answer, "{{") || strings.Contains(answer, "${") {
		return ""
	}
	if steps != 1 || len(outputs) != 1 {
		return ""
	}
	for _, out := range outputs {
		if hasBool(out) {
			return ""
		}
	}
	type rep struct{ value, with string }
	var reps []rep
	seen := map[string]bool{}
	add := func(value, with string) {
		if len(value) < 2 && !isDigits(value) || seen[value] || localplanner.IsStopWord(strings.ToLower(value)) {
			return
		}
		seen[value] = true
		reps = append(reps, rep{value, with})
	}
	for _, n := range slices.Sorted(maps.Keys(written)) {
		add(written[n], "{{"+n+"}}")
	}
	for _, id := range slices.Sorted(maps.Keys(outputs)) {
		var v any
		if err := json.Unmarshal([]byte(outputs[id]), &v); err != nil {
			v = outputs[id]
		}
		walkLeaves(v, id, "", func(path, _ string, v any) {
			switch v := v.(type) {
			case string:
				// Long text is language, not a value to refer to.
				if t := strings.TrimSpace(v); t != "" && len(t) <= 200 {
					add(t, "${"+path+"}")
				}
			case float64:
				add(strconv.FormatFloat(v, 'f', -1, 64), "${"+path+"}")
			}
			// true/false rarely appear as such in prose: left as language.
		})
	}
	// Longest first, so "2340.5" goes before "2340".
	sort.SliceStable(reps, func(i, j int) bool { return len(reps[i].value) > len(reps[j].value) })
	out := answer
	for _, r := range reps {
		out = replaceOutsidePlaceholders(out, r.value, r.with)
	}
	return out
}

// hasBool reports whether a tool's JSON result holds a true/false value.
func hasBool(out string) bool {
	var v any
	if json.Unmarshal([]byte(out), &v) != nil {
		return false
	}
	found := false
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case bool:
			found = true
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return found
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// replaceOutsidePlaceholders replaces whole-word (or whole-number)
// occurrences of value in s, leaving the placeholders already put in.
func replaceOutsidePlaceholders(s, value, with string) string {
	number := isNumberText(value)
	var b strings.Builder
	for {
		loc := nextPlaceholder(s)
		end := len(s)
		if loc != nil {
			end = loc[0]
		}
		b.WriteString(replaceWord(s[:end], value, with, number))
		if loc == nil {
			return b.String()
		}
		b.WriteString(s[loc[0]:loc[1]])
		s = s[loc[1]:]
	}
}

func isNumberText(s string) bool { return numberRe.FindString(s) == s }

// nextPlaceholder finds the first {{name}} or ${ref} in s.
func nextPlaceholder(s string) []int {
	a := placeholderRe.FindStringIndex(s)
	b := refRe.FindStringIndex(s)
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a[0] < b[0]:
		return a
	}
	return b
}

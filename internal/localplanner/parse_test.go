package localplanner

import (
	"errors"
	"strings"
	"testing"
)

func TestExtractJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"bare", `{"a":1}`, `{"a":1}`, nil},
		{"code fence", "```json\n{\"a\": {\"b\": 2}}\n```", `{"a": {"b": 2}}`, nil},
		{"leading text", `Here is the plan: {"a":1} Hope it helps {"b":2}`, `{"a":1}`, nil},
		{"braces in strings", `{"t":"use } and { and \"}\" here"} tail`, `{"t":"use } and { and \"}\" here"}`, nil},
		{"escaped backslash before quote", `{"t":"c:\\"} x`, `{"t":"c:\\"}`, nil},
		{"no object", `I cannot help with that.`, "", ErrNoJSON},
		{"truncated", `{"goal":"g","steps":[{"id":"a"`, "", ErrUnterminatedJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExtractJSON(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("ExtractJSON = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParsePlan(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"fenced plan", "Sure!\n```json\n{\"goal\":\"g\",\"steps\":[{\"id\":\"a\",\"task\":\"x\"}],\"answer\":\"y\"}\n```", ""},
		{"args as string", `{"goal":"g","steps":[{"id":"a","tool":"calc","args":"1+1"}],"answer":"y"}`, "steps.args must be an object, not string"},
		{"steps as object", `{"goal":"g","steps":{"id":"a"},"answer":"y"}`, "steps must be a list, not object"},
		{"syntax", `{"goal":"g",,}`, "invalid JSON at byte"},
		{"nothing", `no`, "holds no JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePlan(tt.in)
			if tt.err == "" {
				if err != nil || p == nil || len(p.Steps) != 1 {
					t.Fatalf("ParsePlan = %+v, %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

// FuzzParsePlan: whatever a model writes, parsing and validating it must
// not panic.
func FuzzParsePlan(f *testing.F) {
	for _, s := range []string{goodPlan, "```json\n" + goodPlan + "\n```", `{"a":"\"}`, `{{{{`, `}{`, `text {"steps":[{"id":"x","tool":"calc","args":{"expression":"${x}"}}]} more`} {
		f.Add(s)
	}
	cat := weatherTools()
	f.Fuzz(func(t *testing.T, reply string) {
		if text, err := ExtractJSON(reply); err == nil && (len(text) < 2 || text[0] != '{' || text[len(text)-1] != '}') {
			t.Fatalf("ExtractJSON returned %q", text)
		}
		if p, err := ParsePlan(reply); err == nil {
			_ = validatePlan(p, cat)
		}
	})
}

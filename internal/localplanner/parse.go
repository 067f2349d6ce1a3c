package localplanner

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentd/agentd/internal/plan"
)

// ErrNoJSON and ErrUnterminatedJSON are the ways a reply can fail to hold a
// JSON object at all.
var (
	ErrNoJSON           = errors.New("the reply holds no JSON object")
	ErrUnterminatedJSON = errors.New("the reply ends before its JSON object is complete")
)

// ExtractJSON returns the first complete JSON object in a model's reply,
// tolerating what small models wrap around it: code fences, a sentence
// before, commentary after. Braces inside strings are not counted.
func ExtractJSON(reply string) (string, error) {
	start := strings.IndexByte(reply, '{')
	if start < 0 {
		return "", ErrNoJSON
	}
	depth, inString, escaped := 0, false, false
	for i := start; i < len(reply); i++ {
		c := reply[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return reply[start : i+1], nil
			}
		}
	}
	return "", ErrUnterminatedJSON
}

// ParsePlan extracts and decodes a plan from a model's reply. Its errors are
// worded to be sent back to the model.
func ParsePlan(reply string) (*plan.Plan, error) {
	text, err := ExtractJSON(reply)
	if err != nil {
		return nil, fmt.Errorf("%w: reply with one JSON object with goal, steps and answer", err)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		return nil, fmt.Errorf("the reply is not a valid plan object: %s; reply with one JSON object with goal, steps and answer, where args is an object", describeJSONError(err))
	}
	// Only a template may write the reply without a summarizer; a
	// planner's (local or remote) pattern is dropped.
	p.AnswerPattern = ""
	return &p, nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = "the plan"
		}
		return fmt.Sprintf("%s must be %s, not %s", field, jsonTypeName(typ.Type.Kind().String()), typ.Value)
	}
	return err.Error()
}

func jsonTypeName(kind string) string {
	switch kind {
	case "map", "struct":
		return "an object"
	case "slice":
		return "a list"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a " + kind
}

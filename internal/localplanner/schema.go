package localplanner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/agentd/agentd/internal/plan"
)

// RefPattern is the JSON Schema pattern of a string that is exactly one
// step reference, "${step_id}" or "${step_id.field.0}".
const RefPattern = plan.RefPattern

// PlanSchema returns the JSON Schema of a plan that may use only the given
// tools, for Ollama's format parameter. A constrained decoder can then emit
// only structurally valid plans: strict objects, one step object per tool
// whose tool is a const and whose args follow that tool's schema, a task
// step whose tools are an enum of the tool names, ids by pattern, at most
// maxSteps steps.
//
// A tool argument that is not a plain string may also be a whole
// reference string (RefPattern), so that "${step.count}" can stand in for a
// number; plain string arguments accept references as they are. Properties
// are emitted in a fixed, meaningful order (id, then tool, then args...),
// because a grammar-constrained model writes them in schema order and
// should name the tool before its arguments.
func PlanSchema(tools []plan.ToolInfo, maxSteps int) (json.RawMessage, error) {
	tools = sortedTools(tools)
	names := make([]any, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	id := obj{{"type", "string"}, {"pattern", plan.IDPattern}}
	dependsOn := obj{{"type", "array"}, {"items", id}}

	var variants []any
	for _, t := range tools {
		variants = append(variants, obj{
			{"type", "object"},
			{"properties", obj{
				{"id", id},
				{"tool", obj{{"const", t.Name}}},
				{"args", relaxArgs(t.ArgsSchema)},
				{"depends_on", dependsOn},
			}},
			{"required", []any{"id", "tool", "args"}},
			{"additionalProperties", false},
		})
	}
	toolList := obj{{"type", "array"}, {"items", obj{{"enum", names}}}}
	if len(names) == 0 {
		toolList = obj{{"type", "array"}, {"maxItems", 0}}
	}
	variants = append(variants, obj{
		{"type", "object"},
		{"properties", obj{
			{"id", id},
			{"task", obj{{"type", "string"}, {"minLength", 1}}},
			{"tools", toolList},
			{"tier", obj{{"enum", []any{plan.TierFast, plan.TierStandard}}}},
			{"depends_on", dependsOn},
		}},
		{"required", []any{"id", "task", "tools", "tier"}},
		{"additionalProperties", false},
	})
	steps := obj{{"type", "array"}, {"minItems", 1}}
	if maxSteps > 0 {
		steps = append(steps, kv{"maxItems", maxSteps})
	}
	steps = append(steps, kv{"items", obj{{"anyOf", variants}}})
	schema := obj{
		{"type", "object"},
		{"properties", obj{
			{"goal", obj{{"type", "string"}}},
			{"steps", steps},
			{"answer", obj{{"type", "string"}}},
		}},
		{"required", []any{"goal", "steps", "answer"}},
		{"additionalProperties", false},
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("plan schema: a tool's argument schema does not marshal to JSON: %w", err)
	}
	return b, nil
}

func sortedTools(tools []plan.ToolInfo) []plan.ToolInfo {
	out := append([]plan.ToolInfo(nil), tools...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// relaxArgs copies a tool's argument schema, letting every argument that a
// reference string would not satisfy also be a whole reference.
func relaxArgs(schema map[string]any) any {
	if schema == nil {
		return obj{{"type", "object"}}
	}
	return relaxObject(schema)
}

func relaxObject(s map[string]any) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		out[k] = v
	}
	if props, ok := s["properties"].(map[string]any); ok {
		np := make(map[string]any, len(props))
		for k, v := range props {
			if ps, ok := v.(map[string]any); ok {
				np[k] = relaxValue(ps)
			} else {
				np[k] = v
			}
		}
		out["properties"] = np
	}
	if items, ok := s["items"].(map[string]any); ok {
		out["items"] = relaxValue(items)
	}
	return out
}

var refString = map[string]any{"type": "string", "pattern": RefPattern}

func relaxValue(s map[string]any) map[string]any {
	inner := relaxObject(s)
	if acceptsRefText(s) {
		return inner
	}
	return map[string]any{"anyOf": []any{inner, refString}}
}

// acceptsRefText reports whether a reference string already satisfies s: a
// plain string with no enum, const, pattern or format.
func acceptsRefText(s map[string]any) bool {
	if t, _ := s["type"].(string); t != "string" {
		return false
	}
	for _, k := range []string{"enum", "const", "pattern", "format", "maxLength"} {
		if _, ok := s[k]; ok {
			return false
		}
	}
	return true
}

// obj is a JSON object that keeps its key order when marshalled.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.k)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// IDPattern is what a step id must match.
const IDPattern = `^` + idSyntax + `$`

var idRe = regexp.MustCompile(IDPattern)

// Catalog is what validation needs from the tool registry.
type Catalog interface {
	Has(name string) bool
	// ValidateArgs checks args against the tool's argument schema.
	ValidateArgs(name string, args map[string]any) error
}

// ToolInfo describes a tool to a planner: its name, what it does, and the
// JSON Schema of its arguments.
type ToolInfo struct {
	Name        string
	Description string
	ArgsSchema  map[string]any
}

// Lister is optionally implemented by a Catalog. When it is, Validate uses
// the argument schemas to check reference-valued arguments by type, and
// lists the known tools in its errors.
type Lister interface {
	List() []ToolInfo
}

// Error is one problem in a plan, worded so that it can be sent back to the
// model that wrote the plan: it names the step and says what to change.
type Error struct {
	Step  string // the step's id, "steps[i]" when it has no usable id, "" for the whole plan
	Field string // "id", "tool", "args", "tools", "tier", "depends_on", "task", "output", "answer", "steps"
	Msg   string
}

func (e Error) Error() string {
	if e.Step == "" {
		return e.Msg
	}
	return fmt.Sprintf("step %s: %s", e.Step, e.Msg)
}

// Errors is a list of plan errors, one per line.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = "- " + e.Error()
	}
	return strings.Join(lines, "\n")
}

// ErrCycle is wrapped by TopoOrder when the steps' dependencies form a cycle.
var ErrCycle = errors.New("plan steps form a dependency cycle")

// Validate checks a plan against the rules of DESIGN.md and returns every
// problem found; nil means the plan can run.
//
// References in tool arguments are checked by the tool's schema as far as
// possible before the referenced results exist: when the catalog is also a
// Lister, an argument whose whole value is a reference is replaced, for
// validation only, by a placeholder of the type the schema expects there
// (the first const/enum value, a number inside minimum/maximum, false, [],
// {}); a string-typed field keeps the reference text. Without a schema the
// reference string is validated as it is. References embedded in longer
// strings are text and are validated as strings. The real values are
// checked again when the executor binds them.
func Validate(p *Plan, catalog Catalog, maxSteps int) []Error {
	return validate(p, catalog, maxSteps, nil)
}

// ValidateRemaining validates a replanned plan for the remaining work:
// completed holds the ids of steps that already ran. The new plan may refer
// to their results (without listing them in depends_on, since they are
// done), but may not reuse their ids.
func ValidateRemaining(p *Plan, catalog Catalog, maxSteps int, completed []string) []Error {
	done := make(map[string]bool, len(completed))
	for _, id := range completed {
		done[id] = true
	}
	return validate(p, catalog, maxSteps, done)
}

type checker struct {
	p        *Plan
	catalog  Catalog
	schemas  map[string]map[string]any
	names    []string
	done     map[string]bool
	ids      map[string]int // id -> index of its first step
	errs     []Error
	labelled []string
}

func validate(p *Plan, catalog Catalog, maxSteps int, done map[string]bool) []Error {
	if p == nil {
		return []Error{{Field: "steps", Msg: "the plan is empty: reply with a JSON object with goal, steps and answer"}}
	}
	c := &checker{p: p, catalog: catalog, done: done, ids: map[string]int{}}
	if l, ok := catalog.(Lister); ok {
		c.schemas = map[string]map[string]any{}
		for _, t := range l.List() {
			c.schemas[t.Name] = t.ArgsSchema
			c.names = append(c.names, t.Name)
		}
		sort.Strings(c.names)
	}
	if len(p.Steps) == 0 {
		c.add("", "steps", "the plan has no steps: add at least one step")
	}
	if maxSteps > 0 && len(p.Steps) > maxSteps {
		c.add("", "steps", fmt.Sprintf("the plan has %d steps but at most %d are allowed: merge steps or drop those the answer does not need", len(p.Steps), maxSteps))
	}
	c.labelled = make([]string, len(p.Steps))
	for i, s := range p.Steps {
		c.labelled[i] = fmt.Sprintf("steps[%d]", i)
		switch {
		case s.ID == "":
			c.add(c.labelled[i], "id", fmt.Sprintf("id is missing: give the step a lower_snake_case id such as %q", fmt.Sprintf("step_%d", i+1)))
			continue
		case !idRe.MatchString(s.ID):
			c.add(c.labelled[i], "id", fmt.Sprintf("id %q is not valid: use lower_snake_case starting with a letter, such as %q", s.ID, suggestID(s.ID, i)))
			continue
		}
		c.labelled[i] = strconv.Quote(s.ID)
		if _, dup := c.ids[s.ID]; dup {
			c.add(c.labelled[i], "id", fmt.Sprintf("id %q is used by more than one step: give each step its own id", s.ID))
			continue
		}
		if c.done[s.ID] {
			c.add(c.labelled[i], "id", fmt.Sprintf("id %q is a step that already ran: give the new step another id", s.ID))
		}
		c.ids[s.ID] = i
	}
	for i, s := range p.Steps {
		c.step(i, s)
	}
	for _, r := range c.refs(p.Answer) {
		if _, ok := c.ids[r.Step]; !ok && !c.done[r.Step] {
			c.add("", "answer", fmt.Sprintf("answer uses %s but there is no step %q: refer only to step ids of this plan", r.Raw, r.Step))
		}
	}
	for _, r := range c.refs(p.AnswerPattern) {
		if _, ok := c.ids[r.Step]; !ok && !c.done[r.Step] {
			c.add("", "answer_pattern", fmt.Sprintf("answer pattern uses %s but there is no step %q", r.Raw, r.Step))
		}
	}
	c.cycles()
	return c.errs
}

func (c *checker) add(step, field, msg string) {
	c.errs = append(c.errs, Error{Step: step, Field: field, Msg: msg})
}

func (c *checker) knownTools() string {
	if len(c.names) == 0 {
		return "use one of the tools listed in the prompt"
	}
	names := c.names
	if len(names) > 30 {
		names = names[:30]
	}
	return "use one of: " + strings.Join(names, ", ")
}

func (c *checker) step(i int, s Step) {
	label := c.labelled[i]
	hasTool, hasTask := s.Tool != "", strings.TrimSpace(s.Task) != ""
	switch {
	case hasTool && hasTask:
		c.add(label, "tool", "has both tool and task: a step is either a tool step (tool and args) or a task step (task and tools); split it into two steps")
	case !hasTool && !hasTask:
		c.add(label, "task", "has neither tool nor task: give a tool with its args, or a task with the tools it may use")
	case hasTool:
		c.toolStep(label, s)
	default:
		c.taskStep(label, s)
	}
	deps := map[string]bool{}
	for _, d := range s.DependsOn {
		switch _, known := c.ids[d]; {
		case d == s.ID && d != "":
			c.add(label, "depends_on", fmt.Sprintf("depends on itself: remove %q from depends_on", d))
		case c.done[d]:
			// A completed step's result is available; depending on it is harmless.
		case !known:
			c.add(label, "depends_on", fmt.Sprintf("depends on %q, which is not a step of this plan: %s", d, c.knownIDs(s.ID)))
		}
		deps[d] = true
	}
	var texts []string
	WalkStrings(map[string]any(s.Args), func(str string) { texts = append(texts, str) })
	texts = append(texts, s.Task)
	seen := map[string]bool{}
	for _, t := range texts {
		refs, bad := ParseRefs(t)
		for _, raw := range bad {
			if !seen[raw] {
				seen[raw] = true
				c.add(label, "args", fmt.Sprintf("reference %s is malformed: write ${step_id} or ${step_id.field} with a lower_snake_case step id", raw))
			}
		}
		for _, r := range refs {
			if seen[r.Raw] {
				continue
			}
			seen[r.Raw] = true
			_, known := c.ids[r.Step]
			switch {
			case r.Step == s.ID:
				c.add(label, "args", fmt.Sprintf("uses %s, its own result: a step can only use results of the steps it depends on", r.Raw))
			case c.done[r.Step]:
			case !known:
				c.add(label, "args", fmt.Sprintf("uses %s but there is no step %q: %s", r.Raw, r.Step, c.knownIDs(s.ID)))
			case !deps[r.Step]:
				c.add(label, "depends_on", fmt.Sprintf("uses %s but %q is not in depends_on: add %q to depends_on", r.Raw, r.Step, r.Step))
			}
		}
	}
}

func (c *checker) knownIDs(self string) string {
	var ids []string
	for id := range c.ids {
		if id != self {
			ids = append(ids, id)
		}
	}
	for id := range c.done {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "there are no other steps to refer to"
	}
	sort.Strings(ids)
	return "refer to one of: " + strings.Join(ids, ", ")
}

func (c *checker) refs(s string) []Ref {
	r, _ := ParseRefs(s)
	return r
}

func (c *checker) toolStep(label string, s Step) {
	if len(s.Tools) > 0 || s.Tier != "" {
		c.add(label, "tools", "tools and tier belong to task steps only: remove them from this tool step")
	}
	if len(s.Output) > 0 {
		c.add(label, "output", "output belongs to task steps only: remove it from this tool step")
	}
	if c.catalog == nil || !c.catalog.Has(s.Tool) {
		c.add(label, "tool", fmt.Sprintf("tool %q does not exist: %s", s.Tool, c.knownTools()))
		return
	}
	args := s.Args
	if args == nil {
		args = map[string]any{}
	}
	checked, _ := placeholders(args, c.schemas[s.Tool]).(map[string]any)
	if err := c.catalog.ValidateArgs(s.Tool, checked); err != nil {
		c.add(label, "args", fmt.Sprintf("args do not fit tool %s: %s; fix the args to match the tool's argument schema", s.Tool, oneLine(err.Error())))
	}
}

func (c *checker) taskStep(label string, s Step) {
	for _, t := range s.Tools {
		if c.catalog == nil || !c.catalog.Has(t) {
			c.add(label, "tools", fmt.Sprintf("lists tool %q, which does not exist: %s", t, c.knownTools()))
		}
	}
	if s.Tier != "" && s.Tier != TierFast && s.Tier != TierStandard {
		c.add(label, "tier", fmt.Sprintf("tier %q is not valid: use %q (the default) or %q for harder reasoning", s.Tier, TierFast, TierStandard))
	}
	if len(s.Output) > 0 {
		var m map[string]any
		if err := json.Unmarshal(s.Output, &m); err != nil || m == nil {
			c.add(label, "output", "output must be a JSON Schema object, such as {\"type\": \"object\", ...}")
		}
	}
}

// cycles reports each dependency cycle once, as a path.
func (c *checker) cycles() {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		color[id] = grey
		stack = append(stack, id)
		for _, d := range c.p.Steps[c.ids[id]].DependsOn {
			if _, ok := c.ids[d]; !ok {
				continue
			}
			switch color[d] {
			case white:
				visit(d)
			case grey:
				start := len(stack) - 1
				for stack[start] != d {
					start--
				}
				cyc := append(append([]string{}, stack[start:]...), d)
				key := cycleKey(cyc[:len(cyc)-1])
				if !reported[key] {
					reported[key] = true
					if len(cyc) == 2 {
						break // a self-dependency, reported with the step
					}
					c.add(strconv.Quote(d), "depends_on", fmt.Sprintf("steps form a cycle %s: each step must depend only on steps that can finish before it; remove one of these dependencies", strings.Join(cyc, " -> ")))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
	}
	for _, s := range c.p.Steps {
		if _, ok := c.ids[s.ID]; ok && color[s.ID] == white {
			visit(s.ID)
		}
	}
}

// cycleKey names a cycle independently of where it was entered.
func cycleKey(ids []string) string {
	min := 0
	for i := range ids {
		if ids[i] < ids[min] {
			min = i
		}
	}
	return strings.Join(append(append([]string{}, ids[min:]...), ids[:min]...), ">")
}

func suggestID(id string, i int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9' && b.Len() > 0:
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	s := strings.TrimSuffix(b.String(), "_")
	if s == "" || len(s) > 40 {
		return fmt.Sprintf("step_%d", i+1)
	}
	return s
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// placeholders returns a copy of v in which every string that is exactly one
// reference is replaced by a value of the type schema expects there.
func placeholders(v any, schema map[string]any) any {
	switch v := v.(type) {
	case string:
		if _, ok := WholeRef(v); ok && schema != nil {
			if p, ok := placeholderFor(schema, 0); ok {
				return p
			}
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = placeholders(e, propertySchema(schema, k))
		}
		return out
	case []any:
		out := make([]any, len(v))
		items, _ := schema["items"].(map[string]any)
		for i, e := range v {
			out[i] = placeholders(e, items)
		}
		return out
	default:
		return v
	}
}

func propertySchema(schema map[string]any, key string) map[string]any {
	if props, ok := schema["properties"].(map[string]any); ok {
		if s, ok := props[key].(map[string]any); ok {
			return s
		}
	}
	s, _ := schema["additionalProperties"].(map[string]any)
	return s
}

// placeholderFor picks a value that satisfies schema's type; ok is false
// when the reference text itself should be validated (string fields).
func placeholderFor(schema map[string]any, depth int) (any, bool) {
	if depth > 8 {
		return nil, false
	}
	if v, ok := schema["const"]; ok {
		return v, true
	}
	if enum, ok := schema["enum"].([]any); ok && len(enum) > 0 {
		return enum[0], true
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := schema[key].([]any); ok {
			for _, a := range alts {
				if as, ok := a.(map[string]any); ok {
					if p, ok := placeholderFor(as, depth+1); ok {
						return p, true
					}
				}
			}
		}
	}
	typ := ""
	switch t := schema["type"].(type) {
	case string:
		typ = t
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && s != "null" {
				typ = s
				break
			}
		}
	}
	switch typ {
	case "integer":
		return math.Ceil(numberWithin(schema)), true
	case "number":
		return numberWithin(schema), true
	case "boolean":
		return false, true
	case "array":
		return []any{}, true
	case "object":
		return map[string]any{}, true
	case "null":
		return nil, true
	}
	return nil, false
}

func numberWithin(schema map[string]any) float64 {
	num := func(k string) (float64, bool) {
		switch n := schema[k].(type) {
		case float64:
			return n, true
		case int:
			return float64(n), true
		case int64:
			return float64(n), true
		case json.Number:
			f, err := n.Float64()
			return f, err == nil
		}
		return 0, false
	}
	if v, ok := num("minimum"); ok {
		return v
	}
	if v, ok := num("exclusiveMinimum"); ok {
		return v + 1
	}
	if v, ok := num("maximum"); ok && v < 0 {
		return v
	}
	if v, ok := num("exclusiveMaximum"); ok && v <= 0 {
		return v - 1
	}
	return 0
}

// TopoOrder returns the step ids in an order where every step comes after
// its dependencies; among steps that could go in either order, plan order
// is kept. It fails on a cycle or a dependency on an unknown step.
func (p *Plan) TopoOrder() ([]string, error) {
	index := make(map[string]int, len(p.Steps))
	for i, s := range p.Steps {
		if _, dup := index[s.ID]; dup {
			return nil, fmt.Errorf("topological order: step id %q is used twice", s.ID)
		}
		index[s.ID] = i
	}
	indegree := make([]int, len(p.Steps))
	dependents := make([][]int, len(p.Steps))
	for i, s := range p.Steps {
		seen := map[string]bool{}
		for _, d := range s.DependsOn {
			j, ok := index[d]
			if !ok {
				return nil, fmt.Errorf("topological order: step %q depends on unknown step %q", s.ID, d)
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			indegree[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	var order []string
	placed := make([]bool, len(p.Steps))
	for len(order) < len(p.Steps) {
		next := -1
		for i := range p.Steps {
			if !placed[i] && indegree[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			var left []string
			for i, s := range p.Steps {
				if !placed[i] {
					left = append(left, s.ID)
				}
			}
			return nil, fmt.Errorf("topological order: %w among %s", ErrCycle, strings.Join(left, ", "))
		}
		placed[next] = true
		order = append(order, p.Steps[next].ID)
		for _, j := range dependents[next] {
			indegree[j]--
		}
	}
	return order, nil
}

// Ready returns, in plan order, the steps not in done whose dependencies are
// all in done: the steps that can start now.
func (p *Plan) Ready(done map[string]bool) []Step {
	var ready []Step
	for _, s := range p.Steps {
		if done[s.ID] {
			continue
		}
		ok := true
		for _, d := range s.DependsOn {
			if !done[d] {
				ok = false
				break
			}
		}
		if ok {
			ready = append(ready, s)
		}
	}
	return ready
}

// Normalize fills defaults a valid plan may leave out: the tier of task
// steps is fast unless given.
func (p *Plan) Normalize() {
	for i := range p.Steps {
		if p.Steps[i].Kind() == KindTask && p.Steps[i].Tier == "" {
			p.Steps[i].Tier = TierFast
		}
	}
}

package exec

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentd/agentd/internal/plan"
)

// Step results are text; references (${id}, ${id.path}) read them as JSON
// when they are JSON and as a JSON string otherwise, then plan.Bind fills
// tool arguments and plan.BindText a task's instruction.
func resultsJSON(outputs map[string]string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(outputs))
	for id, o := range outputs {
		if json.Valid([]byte(o)) {
			out[id] = json.RawMessage(o)
		} else {
			out[id], _ = json.Marshal(o)
		}
	}
	return out
}

// catalog lets plan.Validate check plans against the executor's tools.
type catalog struct {
	tools Tools
	val   *validator
}

var _ plan.Catalog = catalog{}

func (c catalog) Has(name string) bool {
	_, ok := c.tools.Lookup(name)
	return ok
}

func (c catalog) ValidateArgs(name string, args map[string]any) error {
	t, ok := c.tools.Lookup(name)
	if !ok {
		return fmt.Errorf("unknown tool %q", name)
	}
	return c.val.validateArgs(t.Schema(), args)
}

func (c catalog) List() []plan.ToolInfo {
	var out []plan.ToolInfo
	for _, n := range c.tools.Names() {
		t, ok := c.tools.Lookup(n)
		if !ok {
			continue
		}
		var schema map[string]any
		_ = json.Unmarshal(t.Schema(), &schema)
		out = append(out, plan.ToolInfo{Name: n, Description: t.Description(), ArgsSchema: schema})
	}
	return out
}

// planErrors joins validation errors into one error (nil when none).
func planErrors(errs []plan.Error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.New(plan.Errors(errs).Error())
}

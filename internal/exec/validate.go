package exec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validator checks values against JSON Schemas: tool arguments before a call,
// step outputs against their declared schema. Compiled schemas are cached
// by their text, since plans repeat the same few tools.
type validator struct {
	mu    sync.Mutex
	cache map[string]*jsonschema.Schema
}

func newValidator() *validator { return &validator{cache: map[string]*jsonschema.Schema{}} }

func (v *validator) compile(schema json.RawMessage) (*jsonschema.Schema, error) {
	key := string(schema)
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[key]; ok {
		return s, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://schema.json", doc); err != nil {
		return nil, fmt.Errorf("load schema: %w", err)
	}
	s, err := c.Compile("mem://schema.json")
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	if len(v.cache) > 1024 {
		clear(v.cache)
	}
	v.cache[key] = s
	return s, nil
}

// validateJSON checks a JSON document against schema. An empty schema
// accepts anything.
func (v *validator) validateJSON(schema json.RawMessage, doc []byte) error {
	if len(bytes.TrimSpace(schema)) == 0 {
		return nil
	}
	s, err := v.compile(schema)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%s", oneLine(err.Error()))
	}
	return nil
}

// validateArgs checks tool arguments against the tool's schema.
func (v *validator) validateArgs(schema json.RawMessage, args map[string]any) error {
	if args == nil {
		args = map[string]any{}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("arguments are not JSON: %w", err)
	}
	return v.validateJSON(schema, b)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

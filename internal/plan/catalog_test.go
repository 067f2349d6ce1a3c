package plan

import (
	"fmt"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// testCatalog is a small tool registry for tests, validating with the same
// JSON Schema library the real registry uses.
type testCatalog struct {
	tools   []ToolInfo
	schemas map[string]*jsonschema.Schema
}

func newTestCatalog(tools ...ToolInfo) *testCatalog {
	c := &testCatalog{tools: tools, schemas: map[string]*jsonschema.Schema{}}
	comp := jsonschema.NewCompiler()
	for _, t := range tools {
		url := "mem://tools/" + t.Name + ".json"
		if err := comp.AddResource(url, t.ArgsSchema); err != nil {
			panic(err)
		}
		c.schemas[t.Name] = comp.MustCompile(url)
	}
	sort.Slice(c.tools, func(i, j int) bool { return c.tools[i].Name < c.tools[j].Name })
	return c
}

func (c *testCatalog) Has(name string) bool { _, ok := c.schemas[name]; return ok }

func (c *testCatalog) ValidateArgs(name string, args map[string]any) error {
	s, ok := c.schemas[name]
	if !ok {
		return fmt.Errorf("unknown tool %q", name)
	}
	return s.Validate(map[string]any(args))
}

func (c *testCatalog) List() []ToolInfo { return c.tools }

// bareCatalog hides List, to test validation without argument schemas.
type bareCatalog struct{ c *testCatalog }

func (b bareCatalog) Has(name string) bool { return b.c.Has(name) }
func (b bareCatalog) ValidateArgs(name string, args map[string]any) error {
	return b.c.ValidateArgs(name, args)
}

var (
	_ Catalog = (*testCatalog)(nil)
	_ Lister  = (*testCatalog)(nil)
	_ Catalog = bareCatalog{}
)

func weatherTools() *testCatalog {
	return newTestCatalog(
		ToolInfo{Name: "get_weather", Description: "Current weather and climate normals for a city.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"city"},
			"properties": map[string]any{
				"city":  map[string]any{"type": "string", "minLength": 1},
				"units": map[string]any{"enum": []any{"c", "f"}},
			},
		}},
		ToolInfo{Name: "search_cities", Description: "Find cities matching a query.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"query"},
			"properties": map[string]any{
				"query": map[string]any{"type": "string"},
				"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 50},
				"near":  map[string]any{"type": "object", "properties": map[string]any{"lat": map[string]any{"type": "number"}, "lon": map[string]any{"type": "number"}}},
				"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			},
		}},
		ToolInfo{Name: "calc", Description: "Evaluate an arithmetic expression.", ArgsSchema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"expression"},
			"properties": map[string]any{"expression": map[string]any{"type": "string"}},
		}},
	)
}

package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// maxProblems keeps an argument error short enough for a small model's context.
const maxProblems = 8

// compileSchema compiles a tool's argument schema once. The schema must
// describe an object. References to anything outside the schema itself are
// refused: a schema from config must not make agentd read files or fetch URLs.
// It returns the schema re-encoded compactly.
func compileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage(`{"type":"object"}`)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("argument schema is not valid JSON: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok || obj["type"] != "object" {
		return nil, nil, fmt.Errorf("argument schema must describe an object: set \"type\" to \"object\" and list the arguments under \"properties\"")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no file:, no http:
	loc := "mem://agentd/tools/" + name + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, nil, fmt.Errorf("argument schema: %w", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, nil, fmt.Errorf("argument schema does not compile: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, nil, fmt.Errorf("argument schema: %w", err)
	}
	return sch, buf.Bytes(), nil
}

// schemaFromMap turns a schema decoded from TOML into JSON. TOML integers
// arrive as int64, which JSON encodes as numbers like any other.
func schemaFromMap(m map[string]any) (json.RawMessage, error) {
	if len(m) == 0 {
		return json.RawMessage(`{"type":"object"}`), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func validateArgs(e *entry, args json.RawMessage) error {
	if len(bytes.TrimSpace(args)) == 0 || string(bytes.TrimSpace(args)) == "null" {
		args = json.RawMessage(`{}`)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return &ArgsError{Tool: e.spec.Name, Problems: []string{"args: not valid JSON (" + err.Error() + "); send one JSON object"}}
	}
	err = e.schema.Validate(v)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &ArgsError{Tool: e.spec.Name, Problems: []string{"args: " + err.Error()}}
	}
	var problems []string
	collectProblems(ve, &problems)
	slices.Sort(problems)
	problems = slices.Compact(problems)
	if len(problems) == 0 {
		problems = []string{"args: do not match the schema"}
	}
	if len(problems) > maxProblems {
		n := len(problems) - maxProblems
		problems = append(problems[:maxProblems], fmt.Sprintf("(%d more)", n))
	}
	return &ArgsError{Tool: e.spec.Name, Problems: problems}
}

func collectProblems(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectProblems(c, out)
		}
		return
	}
	loc := argsPath(ve.InstanceLocation)
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, argsPath(append(slices.Clone(ve.InstanceLocation), m))+": missing property")
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, argsPath(append(slices.Clone(ve.InstanceLocation), p))+": unknown property, remove it")
		}
	case *kind.Type:
		*out = append(*out, fmt.Sprintf("%s: is %s, must be %s", loc, k.Got, strings.Join(k.Want, " or ")))
	case *kind.FalseSchema:
		*out = append(*out, loc+": not allowed here, remove it")
	default:
		*out = append(*out, loc+": "+ve.ErrorKind.LocalizedString(printer))
	}
}

// argsPath renders an instance location as args.a.b[2].c.
func argsPath(tokens []string) string {
	var sb strings.Builder
	sb.WriteString("args")
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			sb.WriteString("[" + t + "]")
			continue
		}
		sb.WriteString("." + t)
	}
	return sb.String()
}

package localplanner

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the planner free of the concrete model client, the
// store and the tool registry: it declares the interfaces it needs.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/agentd/agentd/internal/config": true,
		"github.com/agentd/agentd/internal/plan":   true,
		"github.com/santhosh-tekuri/jsonschema/v6": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, ".") && !allowed[path] {
				t.Errorf("%s imports %s; localplanner may import only %v and the standard library", name, path, allowed)
			}
		}
	}
}

package exec

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/events"
)

var _ Publisher = (*events.Bus)(nil)

// DESIGN: exec never imports the concrete model client or the store, nor
// the packages it is composed with; it declares the interfaces it needs.
func TestImportsStayClean(t *testing.T) {
	forbidden := []string{"internal/db", "internal/llm", "internal/tools", "internal/localplanner",
		"internal/fallback", "internal/vram", "internal/api", "internal/daemon", "ollama/ollama"}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if strings.Contains(path, bad) {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
}

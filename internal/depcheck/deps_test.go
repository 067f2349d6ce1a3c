package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/agentd/agentd"

// Test and benchmark instruments. They may import production packages;
// no production package may import them.
var instruments = []string{
	module + "/internal/bench",              // every benchmark (and its subpackages)
	module + "/internal/scenarios",          // scenario fixtures, scripts, fault injection
	module + "/internal/ollamasim",          // the Ollama simulator
	module + "/internal/ollamatest",         // a real Ollama for tests
	module + "/internal/telemetry/otlptest", // a local OTLP trace receiver
}

// mainPkg is the composition of subcommands; it may import anything (the
// demo and `agentd bench` link the instruments) and nothing may import it.
const mainPkg = module + "/cmd/agentd"

// knownViolations are production imports of an instrument that exist today
// and are owed a fix; each names why it is tolerated. The test fails when
// one disappears, so the list only shrinks.
var knownViolations = map[string]string{}

// pkg is the part of `go list -json` the rules read.
type pkg struct {
	ImportPath   string
	Standard     bool
	Module       *struct{ Path string }
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// listPackages runs `go list -json` on the module's packages and on
// everything the binary links.
func listPackages(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var list []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.Module != nil && p.Module.Path == module {
			list = append(list, p)
		}
	}
	return list
}

func isInstrument(path string) bool {
	return slices.ContainsFunc(instruments, func(i string) bool { return path == i || strings.HasPrefix(path, i+"/") })
}

// production reports whether a package ships in the daemon: every package
// of the module except the instruments and the main package.
func production(path string) bool { return path != mainPkg && !isInstrument(path) }

// TestDependencyDirections checks, over every package of the module and
// every package the binary links:
//   - no production package imports an instrument (simulator, scenarios,
//     benchmarks, the real-Ollama test helper), outside knownViolations;
//   - internal/ollamatest is imported by tests only;
//   - nothing imports cmd/agentd.
func TestDependencyDirections(t *testing.T) {
	seen := map[string]pkg{}
	for _, p := range listPackages(t, "../../...") {
		seen[p.ImportPath] = p
	}
	// The binary's own graph, in case it links a module package that
	// ./... does not list (it should not: this is a guard on the guard).
	linked := listPackages(t, "-deps", "../../cmd/agentd")
	for _, p := range linked {
		seen[p.ImportPath] = p
	}
	if _, ok := seen[mainPkg]; !ok || len(seen) < 10 {
		t.Fatalf("go list found %d packages and no %s: run from the module", len(seen), mainPkg)
	}
	var bad []string
	used := map[string]bool{}
	paths := make([]string, 0, len(seen))
	for path := range seen {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		p := seen[path]
		for _, imp := range p.Imports {
			edge := path + " -> " + imp
			switch {
			case imp == mainPkg:
				bad = append(bad, edge+": nothing may import the main package")
			case imp == module+"/internal/ollamatest":
				bad = append(bad, edge+": internal/ollamatest is for tests only (import it from a _test.go file)")
			case production(path) && isInstrument(imp):
				if _, ok := knownViolations[edge]; ok {
					used[edge] = true
					continue
				}
				bad = append(bad, edge+": production code must not import a test or benchmark instrument")
			}
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			if imp == mainPkg {
				bad = append(bad, path+" (test) -> "+imp+": nothing may import the main package")
			}
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	for edge, why := range knownViolations {
		if !used[edge] {
			t.Errorf("known violation %s (%s) no longer exists: remove it from knownViolations", edge, why)
		}
	}
}

// The rule must see the edges it is about: the simulator, scenarios and
// benchmarks are in the module and the main package links the benchmarks.
func TestDependencyRuleSeesTheInstruments(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range listPackages(t, "-deps", "../../cmd/agentd") {
		seen[p.ImportPath] = true
	}
	for _, want := range []string{module + "/internal/ollamasim", module + "/internal/scenarios", module + "/internal/bench", module + "/internal/daemon"} {
		if !seen[want] {
			t.Errorf("%s is not in the binary's graph: the rule above checks nothing about it", want)
		}
	}
}

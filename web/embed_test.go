package web

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestEveryReferencedFileIsEmbedded follows index.html's links and every
// module's imports: a missing file would only show as a blank page.
func TestEveryReferencedFileIsEmbedded(t *testing.T) {
	files := FS()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`(?:src|href)="/([^"]+)"`)
	imp := regexp.MustCompile(`(?m)^import [^;]*? from "(\./[^"]+)";`)
	queue := []string{}
	for _, m := range ref.FindAllStringSubmatch(string(index), -1) {
		queue = append(queue, m[1])
	}
	if len(queue) < 2 {
		t.Fatalf("index.html references %v; want the stylesheet and the app module", queue)
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		b, err := fs.ReadFile(files, p)
		if err != nil {
			t.Errorf("referenced but not embedded: %s", p)
			continue
		}
		if strings.HasSuffix(p, ".js") {
			for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
				queue = append(queue, path.Join(path.Dir(p), m[1]))
			}
			if strings.Contains(string(b), "innerHTML") {
				t.Errorf("%s uses innerHTML: build nodes with dom.js so data never runs as markup", p)
			}
		}
	}
	for _, want := range []string{"js/app.js", "js/api.js", "js/dom.js", "js/charts.js", "js/dag.js", "js/planning.js", "js/templates.js", "style.css"} {
		if !seen[want] {
			t.Errorf("%s is not reachable from index.html", want)
		}
	}
}

// TestNoNetworkFetches: the dashboard runs on offline sites, so nothing
// may come from a CDN.
func TestNoNetworkFetches(t *testing.T) {
	err := fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS(), p)
		if err != nil {
			return err
		}
		if m := regexp.MustCompile(`(?:src|href|from|url\()\s*=?\s*["']?https?://`).Find(b); m != nil {
			t.Errorf("%s loads from the network: %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

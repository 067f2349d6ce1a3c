package tools

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/db"
)

// bagOfWords is a deterministic embedder: each word adds 1 to a dimension
// picked by its hash, so texts sharing words point the same way.
type bagOfWords struct {
	mu     sync.Mutex
	calls  int
	inputs int
	fail   error
}

func (b *bagOfWords) Embed(_ context.Context, model string, inputs []string) ([][]float32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.inputs += len(inputs)
	if b.fail != nil {
		return nil, b.fail
	}
	out := make([][]float32, len(inputs))
	for i, in := range inputs {
		v := make([]float32, 64)
		for _, w := range strings.FieldsFunc(strings.ToLower(in), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%64]++
		}
		out[i] = v
	}
	return out, nil
}

func (b *bagOfWords) count() (calls, inputs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls, b.inputs
}

func TestChunkText(t *testing.T) {
	para := func(words int, w string) string { return strings.TrimSpace(strings.Repeat(w+" ", words)) }
	t.Run("short text is one chunk", func(t *testing.T) {
		got := ChunkText("  Hello there.\n\nSecond paragraph.  ", 200, 20)
		if len(got) != 1 || got[0] != "Hello there.\n\nSecond paragraph." {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("cuts between paragraphs", func(t *testing.T) {
		text := para(10, "alpha") + "\n\n" + para(10, "bravo") + "\n\n" + para(10, "charlie")
		got := ChunkText(text, 130, 0)
		if len(got) != 2 || got[0] != para(10, "alpha")+"\n\n"+para(10, "bravo") || got[1] != para(10, "charlie") {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("cuts between sentences with sentence overlap", func(t *testing.T) {
		var sents []string
		for i := range 12 {
			sents = append(sents, "Sentence number "+string(rune('a'+i))+" is here.")
		}
		got := ChunkText(strings.Join(sents, " "), 100, 30)
		if len(got) < 3 {
			t.Fatalf("got %d chunks: %q", len(got), got)
		}
		for i, c := range got {
			if n := utf8.RuneCountInString(c); n > 100 {
				t.Errorf("chunk %d has %d chars", i, n)
			}
			if !strings.HasPrefix(c, "Sentence") || !strings.HasSuffix(c, ".") {
				t.Errorf("chunk %d is not cut at sentences: %q", i, c)
			}
			if i > 0 {
				prevLast := got[i-1][strings.LastIndex(got[i-1], "Sentence"):]
				if !strings.HasPrefix(c, prevLast) {
					t.Errorf("chunk %d does not start with the previous chunk's last sentence %q: %q", i, prevLast, c)
				}
			}
		}
		all := strings.Join(got, " ")
		for _, s := range sents {
			if !strings.Contains(all, s) {
				t.Errorf("lost %q", s)
			}
		}
	})
	t.Run("long run of words is cut between words", func(t *testing.T) {
		text := para(200, "wörd") // 999 runes, no sentence ends
		got := ChunkText(text, 100, 20)
		for i, c := range got {
			if n := utf8.RuneCountInString(c); n > 100 || n == 0 {
				t.Errorf("chunk %d has %d chars", i, n)
			}
			for _, w := range strings.Fields(c) {
				if w != "wörd" {
					t.Fatalf("chunk %d split a word: %q", i, w)
				}
			}
		}
		if len(got) < 10 {
			t.Fatalf("got %d chunks", len(got))
		}
	})
	t.Run("one huge word is hard cut", func(t *testing.T) {
		got := ChunkText(strings.Repeat("x", 250), 100, 10)
		if len(got) < 3 {
			t.Fatalf("got %q", got)
		}
		for _, c := range got {
			if len(c) > 100 {
				t.Fatalf("chunk of %d", len(c))
			}
		}
	})
	if got := ChunkText("", 100, 10); len(got) != 0 {
		t.Fatalf("empty text: %q", got)
	}
}

type docsEnv struct {
	dir   string
	store *db.Store
	emb   *bagOfWords
	ix    *Indexer
	tool  *SearchDocs
}

func newDocsEnv(t *testing.T) *docsEnv {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dir := t.TempDir()
	emb := &bagOfWords{}
	ix, err := NewIndexer(store, emb, DocsOptions{
		Folders: []string{dir}, Extensions: []string{".md", "TXT"}, ChunkChars: 200, ChunkOverlap: 40,
		ReindexEvery: 20 * time.Millisecond, TopK: 2, Model: "fake-embed",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &docsEnv{dir: dir, store: store, emb: emb, ix: ix, tool: NewSearchDocs(ix)}
}

func (e *docsEnv) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *docsEnv) index(t *testing.T, want IndexStats) {
	t.Helper()
	got, err := e.ix.IndexOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("index stats = %+v, want %+v", got, want)
	}
}

func (e *docsEnv) search(t *testing.T, q string) []docHit {
	t.Helper()
	res, err := e.tool.Call(context.Background(), json.RawMessage(`{"query":"`+q+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Results []docHit }
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	return out.Results
}

const (
	pumpDoc = "Pump maintenance\n\nThe bilge pump needs maintenance every 500 hours. Check the pump impeller and the pump seals."
	cookDoc = "Galley notes\n\nBake bread at 220 degrees. Knead the dough for ten minutes and let the dough rest."
	engDoc  = "Engine room\n\nThe engine oil is changed every 250 hours. Record oil pressure at each watch."
)

func TestIndexAndSearch(t *testing.T) {
	e := newDocsEnv(t)
	pump := e.write(t, "manuals/pump.md", pumpDoc)
	cook := e.write(t, "galley.TXT", cookDoc)
	e.write(t, "scan.pdf", "pump pump pump")
	e.write(t, ".git/notes.md", "pump pump pump")
	outside := filepath.Join(t.TempDir(), "secret.md")
	os.WriteFile(outside, []byte("pump secret"), 0o644)
	os.Symlink(outside, filepath.Join(e.dir, "link.md"))

	// Before indexing: no results, and a note saying why.
	res, err := e.tool.Call(context.Background(), json.RawMessage(`{"query":"pump"}`))
	if err != nil || !strings.Contains(string(res.Output), "no documents are indexed yet") {
		t.Fatalf("empty index: %s, %v", res.Output, err)
	}

	e.index(t, IndexStats{Indexed: 2})
	hits := e.search(t, "pump maintenance")
	if len(hits) != 2 || hits[0].Path != pump || hits[0].Score <= hits[1].Score || !strings.Contains(hits[0].Text, "bilge pump") {
		t.Fatalf("hits = %+v", hits)
	}
	if hits := e.search(t, "bread dough"); hits[0].Path != cook {
		t.Fatalf("bread: %+v", hits)
	}

	// Nothing changed: nothing is embedded again.
	calls, _ := e.emb.count()
	e.index(t, IndexStats{Unchanged: 2})
	if c, _ := e.emb.count(); c != calls {
		t.Fatalf("unchanged files were embedded again (%d calls)", c-calls)
	}

	// A changed file is re-indexed; so is a same-mtime rewrite of another size.
	old, _ := os.Stat(cook)
	e.write(t, "galley.TXT", engDoc)
	os.Chtimes(cook, old.ModTime(), old.ModTime())
	e.index(t, IndexStats{Indexed: 1, Unchanged: 1})
	if hits := e.search(t, "engine oil"); hits[0].Path != cook {
		t.Fatalf("after rewrite: %+v", hits)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(pump, later, later)
	e.index(t, IndexStats{Indexed: 1, Unchanged: 1})

	// A deleted file leaves the index.
	os.Remove(pump)
	e.index(t, IndexStats{Unchanged: 1, Removed: 1})
	for _, h := range e.search(t, "pump maintenance") {
		if h.Path == pump {
			t.Fatalf("deleted file still found: %+v", h)
		}
	}
	files, err := e.store.DocFiles(context.Background())
	if err != nil || len(files) != 1 || files[0].Path != cook || files[0].Model != "fake-embed" {
		t.Fatalf("DocFiles = %+v, %v", files, err)
	}
}

func TestIndexFailuresAndModelChange(t *testing.T) {
	e := newDocsEnv(t)
	e.write(t, "a.md", pumpDoc)
	e.emb.fail = errors.New("ollama not reachable")
	st, err := e.ix.IndexOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ollama not reachable") || st.Failed != 1 {
		t.Fatalf("failing embedder: %+v, %v", st, err)
	}
	e.emb.fail = nil
	e.index(t, IndexStats{Indexed: 1})

	// A new embedding model means every file is embedded again.
	e.ix.o.Model = "other-embed"
	e.index(t, IndexStats{Indexed: 1})
}

func TestIndexerRun(t *testing.T) {
	e := newDocsEnv(t)
	e.write(t, "a.md", pumpDoc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ix.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	added := false
	for {
		files, _ := e.store.DocFiles(context.Background())
		if len(files) == 1 && !added {
			e.write(t, "b.md", cookDoc) // picked up on a later tick
			added = true
		}
		if len(files) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("indexer did not pick up files: %+v", files)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v on cancel, want nil", err)
	}
}

func TestNewIndexerErrors(t *testing.T) {
	e := newDocsEnv(t)
	tests := []struct {
		store DocStore
		emb   Embedder
		o     DocsOptions
		want  string
	}{
		{nil, e.emb, DocsOptions{Model: "m", ChunkChars: 100}, "database"},
		{e.store, nil, DocsOptions{Model: "m", ChunkChars: 100}, "models.embedding"},
		{e.store, e.emb, DocsOptions{ChunkChars: 100}, "models.embedding"},
		{e.store, e.emb, DocsOptions{Model: "m", ChunkChars: 100, ChunkOverlap: 100}, "tools.docs.chunk_overlap"},
	}
	for _, tt := range tests {
		if _, err := NewIndexer(tt.store, tt.emb, tt.o, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewIndexer = %v, want %q", err, tt.want)
		}
	}
}

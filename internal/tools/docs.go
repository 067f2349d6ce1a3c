package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/db"
)

// Embedder turns texts into vectors. The model client is adapted to it.
type Embedder interface {
	Embed(ctx context.Context, model string, inputs []string) ([][]float32, error)
}

// DocStore keeps the document index; *db.Store implements it.
type DocStore interface {
	DocFiles(ctx context.Context) ([]db.DocFile, error)
	ReplaceDocChunks(ctx context.Context, path string, mtime int64, model string, chunks []db.DocChunk) error
	DeleteDocChunks(ctx context.Context, path string) error
	ScanDocChunks(ctx context.Context, model string, fn func(db.DocChunk) error) error
}

var _ DocStore = (*db.Store)(nil)

// Bounds of indexing and search.
const (
	defaultMaxDocBytes = 8 << 20
	embedBatch         = 16
	maxTopK            = 20
)

// DocsOptions configures the document index and search_docs.
type DocsOptions struct {
	Folders      []string
	Extensions   []string // with the dot: ".md"
	ChunkChars   int
	ChunkOverlap int
	ReindexEvery time.Duration
	TopK         int
	Model        string // embedding model
	MaxFileBytes int64  // larger files are skipped; 0 means 8 MiB
}

// Indexer keeps doc_chunks in step with the configured folders: new and
// changed files (modification time or size) are chunked and embedded, files
// gone from disk are removed. The table stores mtime only; sizes seen since
// start are remembered in memory, so a same-mtime rewrite is caught too.
type Indexer struct {
	store DocStore
	emb   Embedder
	o     DocsOptions
	log   *slog.Logger

	mu    sync.Mutex // one pass at a time
	sizes map[string]int64
}

// IndexStats counts what one pass did.
type IndexStats struct {
	Indexed, Unchanged, Removed, Skipped, Failed int
}

// NewIndexer checks the options; errors name the config key.
func NewIndexer(store DocStore, emb Embedder, o DocsOptions, log *slog.Logger) (*Indexer, error) {
	if store == nil {
		return nil, errors.New("tools.docs.folders: search_docs needs the database store")
	}
	if emb == nil || o.Model == "" {
		return nil, errors.New("tools.docs.folders: search_docs needs an embedding model — set models.embedding (e.g. \"nomic-embed-text\") and `ollama pull` it")
	}
	if o.ChunkChars < 1 {
		return nil, fmt.Errorf("tools.docs.chunk_chars: %d must be positive", o.ChunkChars)
	}
	if o.ChunkOverlap < 0 || o.ChunkOverlap >= o.ChunkChars {
		return nil, fmt.Errorf("tools.docs.chunk_overlap: %d must be zero or more and less than chunk_chars", o.ChunkOverlap)
	}
	if o.ReindexEvery <= 0 {
		o.ReindexEvery = 5 * time.Minute
	}
	if o.TopK <= 0 {
		o.TopK = 5
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = defaultMaxDocBytes
	}
	o.Folders, o.Extensions = slices.Clone(o.Folders), slices.Clone(o.Extensions)
	if len(o.Extensions) == 0 {
		o.Extensions = []string{".md", ".txt"}
	}
	for i, e := range o.Extensions {
		e = strings.ToLower(e)
		if !strings.HasPrefix(e, ".") {
			e = "." + e
		}
		o.Extensions[i] = e
	}
	for i, f := range o.Folders {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("tools.docs.folders[%d] %q: %w", i, f, err)
		}
		o.Folders[i] = filepath.Clean(abs)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indexer{store: store, emb: emb, o: o, log: log.With("component", "docs"), sizes: map[string]int64{}}, nil
}

// Run indexes now and then every ReindexEvery until ctx ends. A failed pass
// is logged and retried at the next tick; cancellation is a clean exit.
func (ix *Indexer) Run(ctx context.Context) error {
	t := time.NewTicker(ix.o.ReindexEvery)
	defer t.Stop()
	for {
		st, err := ix.IndexOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			ix.log.Warn("document index pass failed", "error", err, "indexed", st.Indexed, "failed", st.Failed)
		} else if st.Indexed+st.Removed > 0 {
			ix.log.Info("document index updated", "indexed", st.Indexed, "removed", st.Removed, "unchanged", st.Unchanged, "skipped", st.Skipped)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type seenFile struct {
	mtime int64
	size  int64
}

// IndexOnce brings the index up to date once. Per-file failures are counted
// and joined into the error; the other files are still indexed.
func (ix *Indexer) IndexOnce(ctx context.Context) (IndexStats, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var st IndexStats
	indexed, err := ix.store.DocFiles(ctx)
	if err != nil {
		return st, err
	}
	known := map[string]db.DocFile{}
	for _, f := range indexed {
		known[f.Path] = f
	}
	seen := map[string]seenFile{}
	var unreadable []string // folders we could not walk: keep their entries
	var errs []error
	for _, folder := range ix.o.Folders {
		err := filepath.WalkDir(folder, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == folder {
					return err
				}
				ix.log.Warn("skip unreadable path", "path", p, "error", err)
				if d != nil && d.IsDir() {
					unreadable = append(unreadable, p)
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if p != folder && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir // .git and friends
				}
				return nil
			}
			// Symlinks are not followed: they could lead out of the folder.
			if !d.Type().IsRegular() || !slices.Contains(ix.o.Extensions, strings.ToLower(filepath.Ext(p))) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			seen[p] = seenFile{mtime: info.ModTime().UnixNano(), size: info.Size()}
			return nil
		})
		if err != nil {
			unreadable = append(unreadable, folder)
			errs = append(errs, fmt.Errorf("walk %s: %w", folder, err))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(seen)) {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		f := seen[p]
		k, ok := known[p]
		lastSize, sizeKnown := ix.sizes[p]
		if ok && k.MTime == f.mtime && k.Model == ix.o.Model && (!sizeKnown || lastSize == f.size) {
			ix.sizes[p] = f.size
			st.Unchanged++
			continue
		}
		if f.size > ix.o.MaxFileBytes {
			ix.log.Info("skip large document", "path", p, "bytes", f.size, "limit", ix.o.MaxFileBytes)
			st.Skipped++
			if ok {
				if err := ix.store.DeleteDocChunks(ctx, p); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		if err := ix.indexFile(ctx, p, f); err != nil {
			st.Failed++
			errs = append(errs, err)
			continue
		}
		ix.sizes[p] = f.size
		st.Indexed++
	}
	for _, k := range indexed {
		if _, ok := seen[k.Path]; ok || underAny(k.Path, unreadable) {
			continue
		}
		if err := ix.store.DeleteDocChunks(ctx, k.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(ix.sizes, k.Path)
		st.Removed++
	}
	return st, errors.Join(errs...)
}

func (ix *Indexer) indexFile(ctx context.Context, path string, f seenFile) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !utf8.Valid(data) {
		ix.log.Debug("skip document that is not UTF-8 text", "path", path)
		return ix.store.ReplaceDocChunks(ctx, path, f.mtime, ix.o.Model, nil)
	}
	texts := ChunkText(string(data), ix.o.ChunkChars, ix.o.ChunkOverlap)
	chunks := make([]db.DocChunk, 0, len(texts))
	for start := 0; start < len(texts); start += embedBatch {
		batch := texts[start:min(start+embedBatch, len(texts))]
		vecs, err := ix.emb.Embed(ctx, ix.o.Model, batch)
		if err != nil {
			return fmt.Errorf("embed %s: %w", path, err)
		}
		if len(vecs) != len(batch) {
			return fmt.Errorf("embed %s: got %d vectors for %d chunks", path, len(vecs), len(batch))
		}
		for i, v := range vecs {
			chunks = append(chunks, db.DocChunk{Path: path, Chunk: start + i, Content: batch[i], Embedding: v})
		}
	}
	return ix.store.ReplaceDocChunks(ctx, path, f.mtime, ix.o.Model, chunks)
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// SearchDocs is the search_docs tool.
type SearchDocs struct {
	store DocStore
	emb   Embedder
	o     DocsOptions
}

var _ Tool = (*SearchDocs)(nil)

// NewSearchDocs returns search_docs over the index that ix maintains.
func NewSearchDocs(ix *Indexer) *SearchDocs {
	return &SearchDocs{store: ix.store, emb: ix.emb, o: ix.o}
}

// Spec implements Tool.
func (s *SearchDocs) Spec() Spec {
	return Spec{
		Name: "search_docs",
		Description: "Search the site's local documents by meaning and get the most relevant passages, each with its file path and a score " +
			"from -1 to 1 (higher is closer). Write the query as a short description of what you are looking for, e.g. \"pump maintenance interval\".",
		ArgsSchema: json.RawMessage(fmt.Sprintf(`{"type":"object","properties":{`+
			`"query":{"type":"string","minLength":2,"maxLength":1000,"description":"What to look for, in plain words."},`+
			`"top_k":{"type":"integer","minimum":1,"maximum":%d,"description":"How many passages to return; default %d."}},`+
			`"required":["query"],"additionalProperties":false}`, maxTopK, s.o.TopK)),
		Idempotent:  true,
		Timeout:     time.Minute,
		Concurrency: 2,
	}
}

type docHit struct {
	Path  string  `json:"path"`
	Chunk int     `json:"chunk"`
	Score float64 `json:"score"`
	Text  string  `json:"text"`
}

// Call implements Tool.
func (s *SearchDocs) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		Query string `json:"query"`
		TopK  int    `json:"top_k"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	if strings.TrimSpace(a.Query) == "" {
		return Result{}, fmt.Errorf("%w: args.query is empty; say what to look for", ErrInvalidArgs)
	}
	k := a.TopK
	if k <= 0 {
		k = s.o.TopK
	}
	k = min(k, maxTopK)
	vecs, err := s.emb.Embed(ctx, s.o.Model, []string{a.Query})
	if err != nil {
		return Result{}, fmt.Errorf("embed the query: %w", err)
	}
	if len(vecs) != 1 {
		return Result{}, fmt.Errorf("embed the query: got %d vectors for 1 input", len(vecs))
	}
	hits, scanned, err := topK(ctx, s.store, s.o.Model, vecs[0], k)
	if err != nil {
		return Result{}, err
	}
	out := map[string]any{"query": a.Query, "results": hits}
	if scanned == 0 {
		out["note"] = "no documents are indexed yet; indexing may still be running, or the document folders are empty"
	}
	return marshalResult(out)
}

// topK scans the index once, keeping the k best chunks by cosine similarity.
func topK(ctx context.Context, store DocStore, model string, q []float32, k int) ([]docHit, int, error) {
	qn := norm(q)
	hits := make([]docHit, 0, k+1)
	scanned := 0
	err := store.ScanDocChunks(ctx, model, func(c db.DocChunk) error {
		scanned++
		if len(c.Embedding) != len(q) || qn == 0 {
			return nil
		}
		cn := norm(c.Embedding)
		if cn == 0 {
			return nil
		}
		var dot float64
		for i := range q {
			dot += float64(q[i]) * float64(c.Embedding[i])
		}
		score := dot / (qn * cn)
		if len(hits) == k && score <= hits[k-1].Score {
			return nil
		}
		h := docHit{Path: c.Path, Chunk: c.Chunk, Score: score, Text: c.Content}
		i, _ := slices.BinarySearchFunc(hits, score, func(h docHit, s float64) int {
			switch {
			case h.Score > s:
				return -1
			case h.Score < s:
				return 1
			}
			return -1 // equal scores: first seen first
		})
		hits = slices.Insert(hits, i, h)
		if len(hits) > k {
			hits = hits[:k]
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	for i := range hits {
		hits[i].Score = math.Round(hits[i].Score*1e4) / 1e4
	}
	return hits, scanned, nil
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

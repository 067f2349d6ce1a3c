package db

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestEmbeddingEncoding(t *testing.T) {
	v := []float32{0, 1, -1.5, math.MaxFloat32, float32(math.Inf(-1)), 3.25e-20}
	b := EncodeEmbedding(v)
	if len(b) != 4*len(v) || b[4] != 0x00 || b[7] != 0x3f { // 1.0 = 0x3f800000, little-endian
		t.Fatalf("encoding = % x", b)
	}
	got, err := DecodeEmbedding(b)
	if err != nil || !slices.Equal(got, v) {
		t.Fatalf("round trip = %v, %v", got, err)
	}
	if _, err := DecodeEmbedding([]byte{1, 2, 3}); err == nil {
		t.Fatal("odd-sized blob decoded")
	}
}

func TestDocChunks(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	chunks := []DocChunk{
		{Chunk: 0, Content: "first", Embedding: []float32{1, 0}},
		{Chunk: 1, Content: "second", Embedding: []float32{0, 1}},
	}
	if err := s.ReplaceDocChunks(ctx, "/docs/a.md", 111, "embed-a", chunks); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceDocChunks(ctx, "/docs/b.md", 222, "embed-b", chunks[:1]); err != nil {
		t.Fatal(err)
	}
	files, err := s.DocFiles(ctx)
	want := []DocFile{{Path: "/docs/a.md", MTime: 111, Model: "embed-a", Chunks: 2}, {Path: "/docs/b.md", MTime: 222, Model: "embed-b", Chunks: 1}}
	if err != nil || !slices.Equal(files, want) {
		t.Fatalf("DocFiles = %+v, %v", files, err)
	}

	// Replacing drops the old chunks.
	if err := s.ReplaceDocChunks(ctx, "/docs/a.md", 333, "embed-a", []DocChunk{{Chunk: 0, Content: "new", Embedding: []float32{2, 2}}}); err != nil {
		t.Fatal(err)
	}
	var got []DocChunk
	err = s.ScanDocChunks(ctx, "embed-a", func(c DocChunk) error { got = append(got, c); return nil })
	if err != nil || len(got) != 1 || got[0].Content != "new" || got[0].Path != "/docs/a.md" || !slices.Equal(got[0].Embedding, []float32{2, 2}) {
		t.Fatalf("scan = %+v, %v", got, err)
	}

	// fn's error stops the scan and comes back.
	stop := errors.New("stop")
	if err := s.ScanDocChunks(ctx, "embed-b", func(DocChunk) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("scan error = %v", err)
	}

	if err := s.DeleteDocChunks(ctx, "/docs/a.md"); err != nil {
		t.Fatal(err)
	}
	files, _ = s.DocFiles(ctx)
	if len(files) != 1 || files[0].Path != "/docs/b.md" {
		t.Fatalf("after delete: %+v", files)
	}
}

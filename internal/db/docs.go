package db

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
)

// DocFile summarizes what is indexed for one document in doc_chunks.
type DocFile struct {
	Path string
	// MTime is the file's modification time in Unix nanoseconds when it was
	// indexed.
	MTime  int64
	Model  string
	Chunks int
}

// DocChunk is one indexed piece of a document.
type DocChunk struct {
	Path      string
	Chunk     int
	Content   string
	Embedding []float32
}

// DocFiles lists the indexed documents.
func (s *Store) DocFiles(ctx context.Context) ([]DocFile, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT path, max(mtime), min(model), count(*) FROM doc_chunks GROUP BY path ORDER BY path`)
	if err != nil {
		return nil, fmt.Errorf("list indexed documents: %w", err)
	}
	defer rows.Close()
	var out []DocFile
	for rows.Next() {
		var f DocFile
		if err := rows.Scan(&f.Path, &f.MTime, &f.Model, &f.Chunks); err != nil {
			return nil, fmt.Errorf("list indexed documents: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// ReplaceDocChunks replaces every chunk of path with chunks, in one
// transaction, so a search never sees half a document.
func (s *Store) ReplaceDocChunks(ctx context.Context, path string, mtime int64, model string, chunks []DocChunk) error {
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM doc_chunks WHERE path = ?`, path); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO doc_chunks(path, mtime, chunk, content, model, embedding) VALUES (?,?,?,?,?,?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range chunks {
			if _, err := stmt.ExecContext(ctx, path, mtime, c.Chunk, c.Content, model, EncodeEmbedding(c.Embedding)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store chunks of %s: %w", path, err)
	}
	return nil
}

// DeleteDocChunks removes a document from the index.
func (s *Store) DeleteDocChunks(ctx context.Context, path string) error {
	if _, err := s.Exec(ctx, `DELETE FROM doc_chunks WHERE path = ?`, path); err != nil {
		return fmt.Errorf("remove %s from the document index: %w", path, err)
	}
	return nil
}

// ScanDocChunks calls fn for every chunk embedded with model, in path and
// chunk order, streaming so that the whole index never sits in memory.
func (s *Store) ScanDocChunks(ctx context.Context, model string, fn func(DocChunk) error) error {
	rows, err := s.read.QueryContext(ctx, `SELECT path, chunk, content, embedding FROM doc_chunks WHERE model = ? ORDER BY path, chunk`, model)
	if err != nil {
		return fmt.Errorf("read document index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c DocChunk
		var blob []byte
		if err := rows.Scan(&c.Path, &c.Chunk, &c.Content, &blob); err != nil {
			return fmt.Errorf("read document index: %w", err)
		}
		if c.Embedding, err = DecodeEmbedding(blob); err != nil {
			return fmt.Errorf("read chunk %d of %s: %w", c.Chunk, c.Path, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EncodeEmbedding stores a vector as little-endian float32s.
func EncodeEmbedding(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// DecodeEmbedding reads a vector stored by EncodeEmbedding.
func DecodeEmbedding(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("embedding blob of %d bytes is not a whole number of float32s", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

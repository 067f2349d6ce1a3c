package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds of list_dir.
const (
	defaultListLimit = 200
	maxListLimit     = 1000
	maxListScan      = 10000 // entries read from one directory before giving up on sorting them all
)

// FileRoots confines read_file and list_dir to configured folders. A path is
// allowed only if its real path (symlinks resolved) lies inside a root's real
// path; the file is then opened through os.Root, which refuses to leave the
// root even if a symlink is swapped in between the check and the open.
type FileRoots struct {
	roots    []string // real, absolute
	maxBytes int64
	// AllowHardLinks lets regular files with more than one link be opened
	// (tools.files.allow_hard_links). Off by default: a hard link inside a
	// root may name a file outside it, and no path check can tell.
	AllowHardLinks bool
}

// NewFileRoots checks that each root exists and is a directory. The error
// names the config key.
func NewFileRoots(roots []string, maxBytes int64) (*FileRoots, error) {
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	fr := &FileRoots{maxBytes: maxBytes}
	for i, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("tools.files.roots[%d] %q: %w", i, r, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("tools.files.roots[%d] %q: %w — create the folder or remove it from the list", i, r, err)
		}
		st, err := os.Stat(real)
		if err != nil || !st.IsDir() {
			return nil, fmt.Errorf("tools.files.roots[%d] %q is not a directory", i, r)
		}
		fr.roots = append(fr.roots, real)
	}
	return fr, nil
}

// Roots returns the real paths of the roots.
func (fr *FileRoots) Roots() []string { return slices.Clone(fr.roots) }

// resolve maps a path from a model to (root, path relative to root). Absolute
// paths must be inside a root; relative ones are looked up in each root in
// order.
func (fr *FileRoots) resolve(p string) (root, rel string, err error) {
	if strings.TrimSpace(p) == "" {
		return "", "", fmt.Errorf("%w: args.path is empty; give a path inside one of %s", ErrInvalidArgs, strings.Join(fr.roots, ", "))
	}
	if strings.ContainsRune(p, 0) {
		return "", "", fmt.Errorf("%w: args.path contains a NUL byte", ErrInvalidArgs)
	}
	var candidates []string
	if filepath.IsAbs(p) {
		candidates = []string{filepath.Clean(p)}
	} else {
		for _, r := range fr.roots {
			candidates = append(candidates, filepath.Join(r, p))
		}
	}
	var real string
	for _, c := range candidates {
		if r, err := filepath.EvalSymlinks(c); err == nil {
			real = r
			break
		}
	}
	if real == "" {
		// Nothing exists under that name. Say "outside" if it lexically is,
		// so probing for files outside the roots learns nothing.
		if filepath.IsAbs(p) && fr.rootOf(filepath.Clean(p)) == "" {
			return "", "", fr.outside(p)
		}
		return "", "", fmt.Errorf("%w: %q does not exist; use list_dir to see what is there", ErrInvalidArgs, p)
	}
	root = fr.rootOf(real)
	if root == "" {
		return "", "", fr.outside(p)
	}
	rel, err = filepath.Rel(root, real)
	if err != nil {
		return "", "", fr.outside(p)
	}
	return root, rel, nil
}

func (fr *FileRoots) outside(p string) error {
	return fmt.Errorf("%w: %q is outside the folders this tool may read (%s)", ErrRefused, p, strings.Join(fr.roots, ", "))
}

// rootOf returns the root containing the real path p, or "".
func (fr *FileRoots) rootOf(p string) string {
	for _, r := range fr.roots {
		rel, err := filepath.Rel(r, p)
		if err != nil {
			continue
		}
		if rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))) {
			return r
		}
	}
	return ""
}

// open opens p inside the roots and returns it with its file info (from
// the open file) and its real path.
func (fr *FileRoots) open(p string) (*os.File, fs.FileInfo, string, error) {
	root, rel, err := fr.resolve(p)
	if err != nil {
		return nil, nil, "", err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, "", fmt.Errorf("open root %s: %w", root, err)
	}
	defer r.Close()
	// Stat before opening: opening a FIFO or a device could block or worse.
	st, err := r.Stat(rel)
	if err != nil {
		if strings.Contains(err.Error(), "escapes") {
			return nil, nil, "", fmt.Errorf("%w: %q: %v", ErrRefused, p, err)
		}
		return nil, nil, "", fmt.Errorf("stat %q: %w", p, err)
	}
	if !st.Mode().IsRegular() && !st.IsDir() {
		return nil, nil, "", fmt.Errorf("%w: %q is not a regular file or folder", ErrRefused, p)
	}
	f, err := r.Open(rel)
	if err != nil {
		if strings.Contains(err.Error(), "escapes") || errors.Is(err, os.ErrPermission) {
			return nil, nil, "", fmt.Errorf("%w: %q: %v", ErrRefused, p, err)
		}
		return nil, nil, "", fmt.Errorf("open %q: %w", p, err)
	}
	// What was opened, not what the path named a moment before.
	if st, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, "", fmt.Errorf("stat %q: %w", p, err)
	}
	if n := linkCount(st); st.Mode().IsRegular() && n > 1 && !fr.AllowHardLinks {
		f.Close()
		return nil, nil, "", fmt.Errorf("%w: %q has %d hard links, and one may lie outside the allowed folders; set tools.files.allow_hard_links = true if every link to files in these roots is trusted", ErrRefused, p, n)
	}
	return f, st, filepath.Join(root, rel), nil
}

// ReadFile is the read_file tool.
type ReadFile struct{ fr *FileRoots }

// ListDir is the list_dir tool.
type ListDir struct{ fr *FileRoots }

var (
	_ Tool = ReadFile{}
	_ Tool = ListDir{}
)

// NewReadFile returns read_file over fr.
func NewReadFile(fr *FileRoots) ReadFile { return ReadFile{fr} }

// NewListDir returns list_dir over fr.
func NewListDir(fr *FileRoots) ListDir { return ListDir{fr} }

// Spec implements Tool.
func (t ReadFile) Spec() Spec {
	return Spec{
		Name: "read_file",
		Description: fmt.Sprintf("Read a text file from the allowed folders (%s). Give a path relative to a folder or an absolute path inside one. "+
			"Returns content (at most %d bytes per call), size, and when the file is longer truncated=true and next_offset: call again with offset=next_offset to read on.",
			strings.Join(t.fr.roots, ", "), t.fr.maxBytes),
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"path":{"type":"string","minLength":1,"maxLength":4096,"description":"File path, e.g. \"reports/2024.txt\"."},` +
			`"offset":{"type":"integer","minimum":0,"description":"Byte offset to start reading at; default 0."}},` +
			`"required":["path"],"additionalProperties":false}`),
		Idempotent: true,
	}
}

// Call implements Tool.
func (t ReadFile) Call(_ context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		Path   string `json:"path"`
		Offset int64  `json:"offset"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	f, st, real, err := t.fr.open(a.Path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	if st.IsDir() {
		return Result{}, fmt.Errorf("%w: %q is a directory; use list_dir", ErrInvalidArgs, a.Path)
	}
	if !st.Mode().IsRegular() {
		return Result{}, fmt.Errorf("%w: %q is not a regular file", ErrRefused, a.Path)
	}
	if a.Offset < 0 || (a.Offset > st.Size()) {
		return Result{}, fmt.Errorf("%w: args.offset %d is past the end of the file (%d bytes)", ErrInvalidArgs, a.Offset, st.Size())
	}
	buf := make([]byte, t.fr.maxBytes+1)
	n, err := f.ReadAt(buf, a.Offset)
	if err != nil && err != io.EOF {
		return Result{}, fmt.Errorf("read %q: %w", a.Path, err)
	}
	data := buf[:n]
	truncated := int64(n) > t.fr.maxBytes
	if truncated {
		data = data[:t.fr.maxBytes]
		// Cut on a character boundary.
		for i := 0; i < utf8.UTFMax && len(data) > 0 && !utf8.Valid(data); i++ {
			data = data[:len(data)-1]
		}
	}
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return Result{}, fmt.Errorf("%w: %q is a binary file; read_file returns text only", ErrInvalidArgs, a.Path)
	}
	out := map[string]any{
		"path":      real,
		"size":      st.Size(),
		"offset":    a.Offset,
		"content":   string(data),
		"truncated": truncated,
	}
	if truncated {
		out["next_offset"] = a.Offset + int64(len(data))
	}
	return marshalResult(out)
}

// Spec implements Tool.
func (t ListDir) Spec() Spec {
	return Spec{
		Name: "list_dir",
		Description: fmt.Sprintf("List a folder inside the allowed folders (%s). Omit path to list the allowed folders themselves. "+
			"Returns entries with name, kind (file, dir, symlink, other) and size in bytes, sorted by name.", strings.Join(t.fr.roots, ", ")),
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"path":{"type":"string","maxLength":4096,"description":"Folder path, relative to an allowed folder or absolute inside one."},` +
			`"limit":{"type":"integer","minimum":1,"maximum":1000,"description":"Most entries to return; default 200."}},` +
			`"additionalProperties":false}`),
		Idempotent: true,
	}
}

type dirEntry struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Size int64  `json:"size"`
}

// Call implements Tool.
func (t ListDir) Call(_ context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		Path  string `json:"path"`
		Limit int    `json:"limit"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	if a.Limit <= 0 {
		a.Limit = defaultListLimit
	}
	a.Limit = min(a.Limit, maxListLimit)
	if strings.TrimSpace(a.Path) == "" {
		entries := make([]dirEntry, 0, len(t.fr.roots))
		for _, r := range t.fr.roots {
			entries = append(entries, dirEntry{Name: r, Kind: "dir"})
		}
		return marshalResult(map[string]any{"path": "", "entries": entries, "total": len(entries), "truncated": false})
	}
	f, st, real, err := t.fr.open(a.Path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	if !st.IsDir() {
		return Result{}, fmt.Errorf("%w: %q is a file; use read_file", ErrInvalidArgs, a.Path)
	}
	var des []fs.DirEntry
	complete := false
	for len(des) < maxListScan {
		batch, err := f.ReadDir(256)
		des = append(des, batch...)
		if err == io.EOF || (err == nil && len(batch) == 0) {
			complete = true
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("list %q: %w", a.Path, err)
		}
	}
	slices.SortFunc(des, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
	total := len(des)
	truncated := !complete || total > a.Limit
	des = des[:min(total, a.Limit)]
	entries := make([]dirEntry, 0, len(des))
	for _, d := range des {
		e := dirEntry{Name: d.Name()}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			e.Kind = "symlink"
		case d.IsDir():
			e.Kind = "dir"
		case d.Type().IsRegular():
			e.Kind = "file"
			if info, err := d.Info(); err == nil {
				e.Size = info.Size()
			}
		default:
			e.Kind = "other"
		}
		entries = append(entries, e)
	}
	out := map[string]any{"path": real, "entries": entries, "truncated": truncated}
	if complete {
		out["total"] = total
	}
	return marshalResult(out)
}

func marshalResult(v any) (Result, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Result{}, fmt.Errorf("encode result: %w", err)
	}
	return Result{Output: b}, nil
}

package tools

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fileTree builds:
//
//	outside/secret.txt
//	root/notes.txt, root/sub/deep.txt, root/big.txt, root/bin.dat
//	root/link-in -> notes.txt           (allowed: stays inside)
//	root/link-out -> ../outside/secret.txt
//	root/dir-out -> ../outside
//	root/abs-out -> /etc/hostname (absolute)
//	root/fifo (named pipe)
func fileTree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(root, "notes.txt"):        "hello notes",
		filepath.Join(root, "sub", "deep.txt"):  "deep",
		filepath.Join(root, "big.txt"):          strings.Repeat("é", 60), // 120 bytes
		filepath.Join(root, "bin.dat"):          "\x00\x01\x02",
		filepath.Join(outside, "secret.txt"):    "TOP SECRET",
		filepath.Join(root, "sub", "other.txt"): "o",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-in":  "notes.txt",
		"link-out": "../outside/secret.txt",
		"dir-out":  "../outside",
		"abs-out":  filepath.Join(outside, "secret.txt"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func TestReadFile(t *testing.T) {
	root, outside := fileTree(t)
	fr, err := NewFileRoots([]string{root}, 50)
	if err != nil {
		t.Fatal(err)
	}
	rf := NewReadFile(fr)

	out, err := call(t, rf, `{"path":"notes.txt"}`)
	if err != nil || out["content"] != "hello notes" || out["truncated"] != false || out["size"] != 11.0 {
		t.Fatalf("relative: %v, %v", out, err)
	}
	out, err = call(t, rf, `{"path":"`+filepath.Join(root, "sub", "deep.txt")+`"}`)
	if err != nil || out["content"] != "deep" {
		t.Fatalf("absolute: %v, %v", out, err)
	}
	out, err = call(t, rf, `{"path":"link-in"}`)
	if err != nil || out["content"] != "hello notes" {
		t.Fatalf("symlink inside the root: %v, %v", out, err)
	}
	out, err = call(t, rf, `{"path":"sub/../notes.txt"}`)
	if err != nil || out["content"] != "hello notes" {
		t.Fatalf("dot-dot staying inside: %v, %v", out, err)
	}

	// Truncation on a character boundary, then reading on.
	out, err = call(t, rf, `{"path":"big.txt"}`)
	if err != nil || out["truncated"] != true || out["next_offset"] != 50.0 || out["content"] != strings.Repeat("é", 25) {
		t.Fatalf("truncated: %v, %v", out, err)
	}
	out, err = call(t, rf, `{"path":"big.txt","offset":100}`)
	if err != nil || out["truncated"] != false || out["content"] != strings.Repeat("é", 10) {
		t.Fatalf("offset: %v, %v", out, err)
	}

	refused := []struct{ name, path string }{
		{"symlink to a file outside", "link-out"},
		{"symlinked dir outside", "dir-out/secret.txt"},
		{"absolute symlink outside", "abs-out"},
		{"dot-dot", "../outside/secret.txt"},
		{"deep dot-dot", "sub/../../outside/secret.txt"},
		{"absolute outside", filepath.Join(outside, "secret.txt")},
		{"absolute outside, missing", "/nonexistent/x"},
		{"system file", "/etc/passwd"},
		{"fifo", "fifo"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			out, err := call(t, rf, `{"path":"`+tt.path+`"}`)
			wantErr(t, err, ErrRefused)
			if strings.Contains(err.Error(), "TOP SECRET") || out != nil {
				t.Fatalf("leaked: %v", out)
			}
		})
	}
	invalid := []struct{ name, args, want string }{
		{"missing", `{"path":"nope.txt"}`, "does not exist"},
		{"directory", `{"path":"sub"}`, "use list_dir"},
		{"binary", `{"path":"bin.dat"}`, "binary"},
		{"offset past end", `{"path":"notes.txt","offset":99}`, "past the end"},
		{"empty", `{"path":""}`, "empty"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(t, rf, tt.args)
			wantErr(t, err, ErrInvalidArgs, tt.want)
		})
	}
}

func TestListDir(t *testing.T) {
	root, _ := fileTree(t)
	fr, err := NewFileRoots([]string{root}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ld := NewListDir(fr)
	out, err := call(t, ld, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if es := out["entries"].([]any); len(es) != 1 || es[0].(map[string]any)["name"] != fr.Roots()[0] {
		t.Fatalf("roots: %v", out)
	}
	out, err = call(t, ld, `{"path":"."}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range out["entries"].([]any) {
		m := e.(map[string]any)
		got = append(got, m["name"].(string)+":"+m["kind"].(string))
		if m["name"] == "notes.txt" && m["size"] != 11.0 {
			t.Errorf("notes.txt size = %v", m["size"])
		}
	}
	want := "abs-out:symlink big.txt:file bin.dat:file dir-out:symlink fifo:other link-in:symlink link-out:symlink notes.txt:file sub:dir"
	if strings.Join(got, " ") != want || out["total"] != 9.0 || out["truncated"] != false {
		t.Fatalf("entries = %v (total %v)\nwant %s", got, out["total"], want)
	}
	out, err = call(t, ld, `{"path":".","limit":2}`)
	if err != nil || len(out["entries"].([]any)) != 2 || out["truncated"] != true || out["total"] != 9.0 {
		t.Fatalf("limit: %v, %v", out, err)
	}
	for _, p := range []string{"dir-out", "..", "/etc", "sub/../../outside"} {
		_, err := call(t, ld, `{"path":"`+p+`"}`)
		wantErr(t, err, ErrRefused, "outside")
	}
	_, err = call(t, ld, `{"path":"notes.txt"}`)
	wantErr(t, err, ErrInvalidArgs, "use read_file")
}

func TestNewFileRootsErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	for _, roots := range [][]string{{"/nonexistent/agentd"}, {f}} {
		if _, err := NewFileRoots(roots, 0); err == nil || !strings.Contains(err.Error(), "tools.files.roots[0]") {
			t.Errorf("NewFileRoots(%v) = %v", roots, err)
		}
	}
}

// A hard link inside a root to a file outside it passes every path check;
// only the link count betrays it.
func TestReadFileRefusesHardLinks(t *testing.T) {
	root, outside := fileTree(t)
	if err := os.Link(filepath.Join(outside, "secret.txt"), filepath.Join(root, "innocent.txt")); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	fr, err := NewFileRoots([]string{root}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out, err := call(t, NewReadFile(fr), `{"path":"innocent.txt"}`)
	wantErr(t, err, ErrRefused, "2 hard links", "tools.files.allow_hard_links")
	if out != nil || strings.Contains(err.Error(), "TOP SECRET") {
		t.Fatalf("leaked: %v", out)
	}
	// A file with one link still reads.
	if out, err := call(t, NewReadFile(fr), `{"path":"notes.txt"}`); err != nil || out["content"] != "hello notes" {
		t.Fatalf("single link: %v, %v", out, err)
	}
	// The operator may allow them.
	fr.AllowHardLinks = true
	out, err = call(t, NewReadFile(fr), `{"path":"innocent.txt"}`)
	if err != nil || !strings.Contains(out["content"].(string), "TOP SECRET") {
		t.Fatalf("allowed: %v, %v", out, err)
	}
}

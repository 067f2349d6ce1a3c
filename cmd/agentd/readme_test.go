package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReadmeFirstAnswer does what the README tells a newcomer with no
// Ollama: on a fresh copy of the repository (the files a clone has), it
// runs the two lines of "A first answer without Ollama" as written — make
// demo in one terminal, the submit in another — and checks the answer. It
// reports the time from the copy to the answer: the README's figure.
//
// The only differences from a person's machine: HOME and the XDG
// directories point into the test's temporary directory, and ARGS gives
// the demo a free port, so a running agentd or another test cannot
// collide. Go's module and build caches are this machine's, unless
// AGENTD_README_COLD=1 starts them empty, as on a fresh machine.
func TestReadmeFirstAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo from a fresh copy; not in -short")
	}
	for _, tool := range []string{"git", "make", "go", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH: the README's commands need it", tool)
		}
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not in a git checkout: %v", err)
	}
	src := strings.TrimSpace(string(root))
	readme, err := os.ReadFile(filepath.Join(src, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	demo, submit := readmeDemoLines(t, string(readme))

	began := time.Now()
	dir := freshCopy(t, src)
	copied := time.Since(began)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "XDG_STATE_HOME="+filepath.Join(home, "state"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"ARGS=--listen 127.0.0.1:0", "AGENTD_CONFIG=", "AGENTD_TOKEN=", "AGENTD_ADDR=")
	// HOME moved, so Go's caches would move with it: keep this machine's
	// unless asked for a fresh machine's (empty build cache, every module
	// downloaded from the proxy).
	if os.Getenv("AGENTD_README_COLD") == "1" {
		env = append(env, "GOPATH="+filepath.Join(home, "go"), "GOCACHE="+filepath.Join(home, "gocache"), "GOMODCACHE=", "GOFLAGS=-modcacherw")
	} else {
		for _, v := range []string{"GOPATH", "GOCACHE", "GOMODCACHE"} {
			out, err := exec.Command("go", "env", v).Output()
			if err != nil {
				t.Fatal(err)
			}
			env = append(env, v+"="+strings.TrimSpace(string(out)))
		}
	}
	if err := os.MkdirAll(filepath.Join(home, "run"), 0o700); err != nil {
		t.Fatal(err)
	}

	// Terminal 1.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	term1 := exec.CommandContext(ctx, "bash", "-c", demo)
	term1.Dir, term1.Env = dir, env
	term1.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	term1.Cancel = func() error { return syscall.Kill(-term1.Process.Pid, syscall.SIGTERM) }
	term1.WaitDelay = 20 * time.Second
	out, err := term1.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errBuf syncBuffer
	term1.Stderr = &errBuf
	if err := term1.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	var banner syncBuffer
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			banner.Write(append(sc.Bytes(), '\n'))
			if !once && strings.HasPrefix(sc.Text(), "dashboard:") {
				once = true
				close(ready)
			}
		}
		stopped <- term1.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-term1.Process.Pid, syscall.SIGTERM)
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-term1.Process.Pid, syscall.SIGKILL)
			t.Error("make demo did not stop within 30 s of SIGTERM")
		}
	})
	select {
	case <-ready:
	case err := <-stopped:
		t.Fatalf("%q exited before serving (%v):\n%s\n%s", demo, err, banner.String(), errBuf.String())
	case <-time.After(8 * time.Minute):
		t.Fatalf("%q printed no dashboard line in 8 minutes:\n%s\n%s", demo, banner.String(), errBuf.String())
	}
	built := time.Since(began)

	// Terminal 2, as soon as terminal 1 says where the dashboard is.
	term2 := exec.CommandContext(ctx, "bash", "-c", submit)
	term2.Dir, term2.Env = dir, env
	answer, err := term2.CombinedOutput()
	total := time.Since(began)
	if err != nil {
		t.Fatalf("%q failed (%v):\n%s\nterminal 1:\n%s\n%s", submit, err, answer, banner.String(), errBuf.String())
	}
	if !bytes.Contains(answer, []byte("397.8")) || !bytes.Contains(answer, []byte("done")) {
		t.Fatalf("%q answered without 397.8 or not done:\n%s", submit, answer)
	}
	t.Logf("fresh copy to first answer: %.1f s (copy %.1f s, make demo until serving %.1f s, the run %.1f s)",
		total.Seconds(), copied.Seconds(), built.Seconds(), (total - built).Seconds())
	t.Logf("answer:\n%s", answer)
}

// readmeDemoLines finds the two commands of the README's first-answer
// section: the make demo line and the submit line, comments removed.
func readmeDemoLines(t *testing.T, readme string) (demo, submit string) {
	t.Helper()
	sec := regexp.MustCompile("(?s)## A first answer without Ollama.*?```sh\n(.*?)```").FindStringSubmatch(readme)
	if sec == nil {
		t.Fatal(`README.md has no "## A first answer without Ollama" section with a sh block`)
	}
	var lines []string
	for _, l := range strings.Split(sec[1], "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || lines[0] != "make demo" {
		t.Fatalf("the README's first-answer block should be `make demo` and one command to ask, got %q", lines)
	}
	return lines[0], lines[1]
}

// freshCopy copies what a clone of the working tree holds (tracked files
// and new ones git does not ignore), so nothing built here is reused.
func freshCopy(t *testing.T, src string) string {
	t.Helper()
	list, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "agentd")
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		st, err := os.Lstat(from)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(from)
		if err != nil {
			t.Fatal(err)
		}
		o, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(o, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A clone has a .git; make reads the commit from it.
	if err := exec.Command("git", "-C", dst, "init", "-q").Run(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// TestSimServesOllamaAndTools starts `agentd sim` on a free port, reads
// its URL from the first line it prints, and checks it answers as Ollama
// (/api/tags) and serves the scenario tools (/tools), then stops cleanly.
func TestSimServesOllamaAndTools(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	m := &Main{Stdout: pw, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	code := make(chan int, 1)
	go func() {
		code <- m.Run(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--time-scale", "0"})
		pw.Close()
	}()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	var first string
	select {
	case first = <-line:
	case <-time.After(30 * time.Second):
		t.Fatal("agentd sim printed no URL in 30 s")
	}
	u := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(first)
	if u == "" {
		t.Fatalf("no URL in %q", first)
	}
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(u + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var tags struct{ Models []struct{ Name string } }
	get("/api/tags", &tags)
	if len(tags.Models) == 0 {
		t.Fatal("/api/tags lists no models")
	}
	var tools []struct {
		Name       string
		Parameters map[string]any
	}
	get("/tools", &tools)
	names := map[string]bool{}
	for _, tl := range tools {
		names[tl.Name] = tl.Parameters != nil
	}
	for _, want := range []string{"get_climate", "confirm_order", "calc"} {
		if !names[want] {
			t.Errorf("/tools lacks %s (with its schema): %v", want, names)
		}
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Fatalf("exit code %d after cancel, want 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agentd sim did not stop on cancel")
	}
}

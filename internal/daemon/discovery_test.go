package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestDiscoveryFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	rec := Discovery{URL: "http://127.0.0.1:8484", TokenFile: dir + "/api.token", PID: os.Getpid(), Demo: true, StateDir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- publishDiscovery(dir, rec, slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx) }()

	var got *Discovery
	for deadline := time.Now().Add(5 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got, _ = ReadDiscovery(dir)
	}
	if got == nil || got.URL != rec.URL || got.TokenFile != rec.TokenFile || !got.Demo {
		t.Fatalf("discovery = %+v, want %+v", got, rec)
	}
	st, err := os.Stat(DiscoveryPath(dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("discovery file mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := os.Stat(DiscoveryPath(dir)); !os.IsNotExist(err) {
		t.Errorf("discovery file left after a clean stop: %v", err)
	}
}

// A file left by a daemon that was killed names a dead pid: ignored.
func TestDiscoveryOfADeadDaemonIsIgnored(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteDiscovery(dir, Discovery{URL: "http://127.0.0.1:1", PID: cmd.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	if d, ok := ReadDiscovery(dir); ok {
		t.Errorf("stale discovery accepted: %+v", d)
	}
	if _, ok := ReadDiscovery(t.TempDir()); ok {
		t.Error("no file, yet a discovery")
	}
}

func TestLoopbackAddr(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0:8484": "127.0.0.1:8484", "[::]:8484": "127.0.0.1:8484", "10.0.0.5:80": "10.0.0.5:80", "[::1]:9": "[::1]:9"} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopbackAddr(a); got != want {
			t.Errorf("loopbackAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

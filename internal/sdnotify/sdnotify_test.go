package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
)

func TestNotifyReachesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	sent, err := Notify(Ready)
	if err != nil || !sent {
		t.Fatalf("Notify = %v, %v", sent, err)
	}
	buf := make([]byte, 64)
	n, _, err := ln.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("socket got %q, %v", buf[:n], err)
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("Notify = %v, %v; want false, nil", sent, err)
	}
}

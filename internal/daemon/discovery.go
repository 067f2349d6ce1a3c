package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DiscoveryFileName is the file, in the state directory, where a running
// agentd says where it answers and where its token is, so the CLI on the
// same machine (`agentd token`, `submit`, `runs`) talks to the daemon that
// is actually running, a demo included, without being told.
const DiscoveryFileName = "daemon.json"

// Discovery is the content of the discovery file.
type Discovery struct {
	URL       string    `json:"url"`        // http://127.0.0.1:8484, wildcard hosts made loopback
	TokenFile string    `json:"token_file"` // the daemon's API token file
	PID       int       `json:"pid"`
	Demo      bool      `json:"demo"`
	StateDir  string    `json:"state_dir"`
	Started   time.Time `json:"started"`
}

// DiscoveryPath is the discovery file of the daemon whose state is in dir.
// It lives beside the token it points at: whoever may read the token may
// read it, and a daemon in a test's temporary state dir touches nothing
// of the user's.
func DiscoveryPath(stateDir string) string { return filepath.Join(stateDir, DiscoveryFileName) }

// ReadDiscovery returns the discovery file in stateDir when the daemon that
// wrote it is still alive. A missing, unreadable or stale file is not an
// error: the CLI then falls back to the config.
func ReadDiscovery(stateDir string) (*Discovery, bool) {
	b, err := os.ReadFile(DiscoveryPath(stateDir))
	if err != nil {
		return nil, false
	}
	var d Discovery
	if json.Unmarshal(b, &d) != nil || d.URL == "" || !processAlive(d.PID) {
		return nil, false
	}
	return &d, true
}

// processAlive reports whether pid exists; one of another user's processes
// (EPERM) exists too.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// WriteDiscovery writes d atomically with mode 0600.
func WriteDiscovery(stateDir string, d Discovery) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	path := DiscoveryPath(stateDir)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeDiscovery removes the file if it is still d's (a second daemon on the
// same state dir cannot have started, but a rewrite by hand is left alone).
func removeDiscovery(stateDir string, d Discovery) {
	cur, ok := ReadDiscovery(stateDir)
	if ok && (cur.PID != d.PID || cur.URL != d.URL) {
		return
	}
	_ = os.Remove(DiscoveryPath(stateDir))
}

// discovery is the component that publishes the daemon's address and token
// while it serves: added after the HTTP server, it is written once the
// listener is bound and removed first on a clean stop.
func (d *Daemon) discovery() Component {
	scheme := "http"
	if d.cfg.Server.TLSCert != "" {
		scheme = "https"
	}
	rec := Discovery{URL: scheme + "://" + loopbackAddr(d.Server.Addr()), TokenFile: d.paths.TokenFile,
		PID: os.Getpid(), Demo: d.opts.Demo, StateDir: d.paths.StateDir, Started: d.started}
	return publishDiscovery(d.paths.StateDir, rec, d.log.With("component", "discovery"))
}

// publishDiscovery writes rec into stateDir, waits for ctx to end, then
// removes it.
func publishDiscovery(stateDir string, rec Discovery, log *slog.Logger) Component {
	return ComponentFunc(func(ctx context.Context) error {
		if err := WriteDiscovery(stateDir, rec); err != nil {
			// The daemon serves on; only the CLI's shortcut is lost.
			log.Warn("cannot write the discovery file: `agentd token` and the API commands fall back to the config", "path", DiscoveryPath(stateDir), "err", err)
		}
		<-ctx.Done()
		removeDiscovery(stateDir, rec)
		return nil
	})
}

// loopbackAddr turns a listener address into one a local client can dial:
// a wildcard host means this machine's loopback.
func loopbackAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

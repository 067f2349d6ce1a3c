package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/ollamatest"
	"github.com/agentd/agentd/packaging/systemdunit"
)

var agentdBin string

// TestMain builds the real binary once; the tests run it as a child process.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentd-bin")
	if err != nil {
		panic(err)
	}
	agentdBin = filepath.Join(dir, "agentd")
	out, err := exec.Command("go", "build", "-o", agentdBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build agentd: %v\n%s", err, out)
		os.Exit(1)
	}
	// ollamatest.Main also stops the shared real Ollama after the tests.
	ollamatest.Main(testRun(func() int { defer os.RemoveAll(dir); return m.Run() }))
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseConfig points agentd at a private state dir and port, with nothing
// real behind its Ollama endpoint.
func baseConfig(t *testing.T, addr string) (string, string) {
	state := t.TempDir()
	return writeConfig(t, fmt.Sprintf(`
[server]
listen = %q
shutdown_timeout = "10s"
[storage]
state_dir = %q
[vram]
probe = "none"
[[ollama.endpoints]]
name = "local"
url = "http://127.0.0.1:1"
parallel_slots = 1
max_queue = 4
`, addr, state)), state
}

func run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(agentdBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

type daemonProc struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
	addr string
}

func startDaemon(t *testing.T, cfg, addr string) *daemonProc {
	t.Helper()
	cmd := exec.Command(agentdBin, "serve", "--config", cfg)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, logs: logs, addr: addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("agentd never became ready; logs:\n%s", logs)
	return nil
}

func TestServeStatusAuthAndCleanStop(t *testing.T) {
	addr := freePort(t)
	cfg, state := baseConfig(t, addr)
	d := startDaemon(t, cfg, addr)

	token, err := os.ReadFile(filepath.Join(state, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(state, "api.token")); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %o, want 600", st.Mode().Perm())
	}
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status without token = %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Database struct{ OK bool } `json:"database"`
		Ollama   []struct {
			Reachable bool   `json:"reachable"`
			Error     string `json:"error"`
		} `json:"ollama"`
		UptimeSeconds float64 `json:"uptime_seconds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !st.Database.OK || len(st.Ollama) != 1 || st.Ollama[0].Reachable || !strings.Contains(st.Ollama[0].Error, "ollama serve") {
		t.Errorf("status = %+v", st)
	}

	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, d.logs)
		}
	case <-time.After(12 * time.Second):
		t.Fatalf("agentd did not stop within 10s of SIGTERM\n%s", d.logs)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("stop took %s", time.Since(start))
	}
	if !strings.Contains(d.logs.String(), "agentd stopped") {
		t.Errorf("no clean stop in logs:\n%s", d.logs)
	}
	// Once, in words: the dashboard, the token command, and with no Ollama
	// the two ways on.
	for _, want := range []string{
		"agentd is starting: dashboard http://" + addr + "/\n",
		"agentd token`",
		"no Ollama answers at http://127.0.0.1:1, so runs wait for one. Two ways on:",
		"ollama pull gemma3:12b",
		"`agentd demo`",
	} {
		if strings.Count(d.logs.String(), want) != 1 {
			t.Errorf("start banner: want %q once in:\n%s", want, d.logs)
		}
	}
}

// The unit `agentd install` writes is the packaged unit, byte for byte, for
// the packaged layout: every hardening directive included.
func TestInstalledUnitIsThePackagedUnit(t *testing.T) {
	sc, err := serviceConfig("/usr/bin/agentd", "/etc/agentd/config.toml", "agentd")
	if err != nil {
		t.Fatal(err)
	}
	unit, _ := sc.Option["SystemdScript"].(string)
	if unit != systemdunit.Packaged {
		t.Errorf("agentd install would write:\n%s\nthe package ships:\n%s", unit, systemdunit.Packaged)
	}
	for _, directive := range []string{"ProtectClock=yes", "ProtectHostname=yes", "ProtectKernelLogs=yes", "RestrictNamespaces=yes",
		"RestrictRealtime=yes", "SystemCallArchitectures=native", "LimitNOFILE=65536", "ProtectSystem=strict", "NoNewPrivileges=yes"} {
		if !strings.Contains(unit, "\n"+directive+"\n") {
			t.Errorf("installed unit lacks %s", directive)
		}
	}
	// kardianos renders SystemdScript as a template: nothing in it may be
	// taken for one.
	if strings.Contains(unit, "{{") {
		t.Error("the unit contains {{, which kardianos would render")
	}
}

func TestSecondDaemonAndBusyPortAreOneLine(t *testing.T) {
	addr := freePort(t)
	cfg, _ := baseConfig(t, addr)
	startDaemon(t, cfg, addr)

	// Same state dir: the database lock names the holder.
	out, code := run(t, nil, "serve", "--config", cfg)
	if code != 1 || !strings.Contains(out, "another agentd") || !strings.Contains(out, "pid") || !strings.Contains(out, "storage.state_dir") {
		t.Errorf("second daemon: code %d, output:\n%s", code, out)
	}
	// Other state dir, same port: the port and the key are named.
	cfg2, _ := baseConfig(t, addr)
	out, code = run(t, nil, "serve", "--config", cfg2)
	_, port, _ := net.SplitHostPort(addr)
	if code != 1 || !strings.Contains(out, "port "+port+" is already in use") || !strings.Contains(out, "server.listen") {
		t.Errorf("busy port: code %d, output:\n%s", code, out)
	}
}

func TestBadConfigAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		code       int
		want       []string
	}{
		{"malformed", "[server]\nlisten = 127.0.0.1\n", 2, []string{"config.toml:2"}},
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n", 2, []string{"server.lisen", "config.toml:3"}},
		{"negative budget", "[fallback.caps]\nday_usd = -5.0\n", 2, []string{"fallback.caps.day_usd", "zero or more"}},
		{"bad duration", "[executor]\nstep_timeout = \"5 mins\"\n", 2, []string{"executor.step_timeout", "\"5m\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, tt.body)
			for _, args := range [][]string{{"config", "check", cfg}, {"serve", "--config", cfg}} {
				out, code := run(t, nil, args...)
				if code != tt.code {
					t.Errorf("%v: exit %d, want %d\n%s", args, code, tt.code, out)
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("%v: output does not mention %q:\n%s", args, w, out)
					}
				}
			}
		})
	}
}

func TestUnwritableStateDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root writes anywhere; use a path under a regular file instead.
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("[storage]\nstate_dir = %q\n[server]\nlisten = %q\n", filepath.Join(f, "state"), freePort(t)))
	out, code := run(t, nil, "serve", "--config", cfg)
	if code != 1 || !strings.Contains(out, filepath.Join(f, "state")) || !strings.Contains(out, "storage.state_dir") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n > 0 {
		t.Errorf("want one line, got %d:\n%s", n+1, out)
	}
}

func TestConfigExampleRoundTrips(t *testing.T) {
	out, code := run(t, nil, "config", "example")
	if code != 0 || !strings.Contains(out, "[fallback.caps]") {
		t.Fatalf("config example: %d", code)
	}
	cfg := writeConfig(t, out)
	if out, code := run(t, nil, "config", "check", cfg); code != 0 {
		t.Errorf("example does not check: %s", out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	out, code := run(t, nil, "version", "--json")
	var v struct{ Version, Go string }
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.Go == "" {
		t.Errorf("version --json: %d %q", code, out)
	}
	out, code = run(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(out, "agentd help") {
		t.Errorf("unknown command: %d %q", code, out)
	}
}

func TestTokenRotateIsPickedUpLive(t *testing.T) {
	addr := freePort(t)
	cfg, state := baseConfig(t, addr)
	startDaemon(t, cfg, addr)
	old, _ := os.ReadFile(filepath.Join(state, "api.token"))
	out, code := run(t, nil, "token", "--rotate", "--config", cfg)
	if code != 0 || strings.TrimSpace(out) == strings.TrimSpace(string(old)) {
		t.Fatalf("rotate: %d %q", code, out)
	}
	newTok := strings.TrimSpace(out)
	ok := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+newTok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok = true
				break
			}
		}
	}
	if !ok {
		t.Fatal("rotated token never accepted by the running daemon")
	}
}

func TestDBBackupWhileRunning(t *testing.T) {
	addr := freePort(t)
	cfg, _ := baseConfig(t, addr)
	startDaemon(t, cfg, addr)
	dst := filepath.Join(t.TempDir(), "backup.db")
	out, code := run(t, nil, "db", "backup", "--config", cfg, dst)
	if code != 0 {
		t.Fatalf("backup: %d %s", code, out)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(bufio.NewReader(f), head); err != nil || string(head[:15]) != "SQLite format 3" {
		t.Errorf("backup is not an SQLite file: %q", head)
	}
	_ = context.Background
}

// A state file agentd may not open names the command that fixes it; other
// errors pass unchanged.
func TestPermissionErrorsSayTheFix(t *testing.T) {
	dir := t.TempDir()
	denied := &os.PathError{Op: "open", Path: filepath.Join(dir, "agentd.db.lock"), Err: syscall.EACCES}
	got := explainStateAccess(denied, dir).Error()
	if !strings.Contains(got, "fix with `sudo chown -R ") || !strings.HasSuffix(got, " "+dir+"`") || !errors.Is(explainStateAccess(denied, dir), os.ErrPermission) {
		t.Errorf("permission error: %s", got)
	}
	readonly := fmt.Errorf("persist: attempt to write a readonly database (8) in %s", dir)
	if got := explainStateAccess(readonly, dir).Error(); !strings.Contains(got, "sudo chown -R") {
		t.Errorf("SQLite's readonly database: %s", got)
	}
	for _, err := range []error{
		&os.PathError{Op: "open", Path: filepath.Join(dir, "x"), Err: syscall.ENOTDIR},
		&os.PathError{Op: "open", Path: "/etc/agentd/tls.key", Err: syscall.EACCES}, // not the state dir
	} {
		if got := explainStateAccess(err, dir); got != err {
			t.Errorf("explainStateAccess(%v) = %v, want it unchanged", err, got)
		}
	}
	tok := tokenAccessError(&os.PathError{Op: "open", Path: filepath.Join(dir, "api.token"), Err: syscall.EACCES}, filepath.Join(dir, "api.token"))
	if !strings.Contains(tok.Error(), "permission denied") || !strings.Contains(tok.Error(), "agentd token`") {
		t.Errorf("token permission error: %v", tok)
	}
}

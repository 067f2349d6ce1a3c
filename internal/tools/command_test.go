package tools

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newEchotool(t *testing.T, o CommandOptions) *Command {
	t.Helper()
	if o.Name == "" {
		o.Name = "echotool"
	}
	o.Argv = append([]string{echotoolPath}, o.Argv...)
	c, err := NewCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err = strconv.Atoi(string(b)); err == nil && pid > 0 {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCommandOutput(t *testing.T) {
	ctx := context.Background()
	res, err := newEchotool(t, CommandOptions{Argv: []string{"echo"}}).Call(ctx, json.RawMessage(`{"city": "Oslo", "n": [1, 2]}`))
	if err != nil || string(res.Output) != `{"city":"Oslo","n":[1,2]}` || res.ExitCode != 0 {
		t.Fatalf("echo = %s, %d, %v", res.Output, res.ExitCode, err)
	}
	res, err = newEchotool(t, CommandOptions{Argv: []string{"text"}}).Call(ctx, json.RawMessage(`{}`))
	if err != nil || string(res.Output) != `{"text":"plain words, not JSON"}` {
		t.Fatalf("text = %s, %v", res.Output, err)
	}
	_, err = newEchotool(t, CommandOptions{Argv: []string{"binary"}}).Call(ctx, json.RawMessage(`{}`))
	wantErr(t, err, ErrFailed, "binary output")

	res, err = newEchotool(t, CommandOptions{Argv: []string{"fail"}}).Call(ctx, json.RawMessage(`{}`))
	wantErr(t, err, ErrFailed, "exited with status 3", "boom: the input had no city")
	if res.ExitCode != 3 {
		t.Fatalf("exit code = %d", res.ExitCode)
	}

	dir := t.TempDir()
	res, err = newEchotool(t, CommandOptions{Argv: []string{"pwd"}, Dir: dir}).Call(ctx, json.RawMessage(`{}`))
	var pwd struct{ Dir string }
	if err != nil || json.Unmarshal(res.Output, &pwd) != nil {
		t.Fatalf("pwd = %s, %v", res.Output, err)
	}
	want, _ := filepath.EvalSymlinks(dir)
	if got, _ := filepath.EvalSymlinks(pwd.Dir); got != want {
		t.Fatalf("working dir = %s, want %s", got, want)
	}
}

func TestCommandEnvironmentAllowlist(t *testing.T) {
	t.Setenv("AGENTD_TEST_SECRET", "hunter2")
	t.Setenv("AGENTD_TEST_PASSED", "visible")
	t.Setenv("AGENTD_REMOTE_API_KEY", "sk-live-should-never-leak")
	c := newEchotool(t, CommandOptions{Argv: []string{"env"}, Env: []string{"AGENTD_TEST_PASSED", "AGENTD_TEST_UNSET"}})
	res, err := c.Call(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal(res.Output, &env); err != nil {
		t.Fatalf("env output %s: %v", res.Output, err)
	}
	slices.Sort(env)
	if len(env) != 2 || env[0] != "AGENTD_TEST_PASSED=visible" || env[1] != "PATH="+os.Getenv("PATH") {
		t.Fatalf("child environment = %q, want only PATH and AGENTD_TEST_PASSED", env)
	}
	if strings.Contains(string(res.Output), "hunter2") || strings.Contains(string(res.Output), "sk-live") {
		t.Fatal("a secret leaked into the child's environment")
	}
}

func TestCommandTimeoutKillsTheGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	c := newEchotool(t, CommandOptions{Argv: []string{"grandchild", pidfile}, Timeout: 500 * time.Millisecond})
	start := time.Now()
	_, err := c.Call(context.Background(), json.RawMessage(`{}`))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish within 500ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("call took %s", d)
	}
	waitDead(t, readPid(t, pidfile))
}

func TestCommandStragglersDieAfterExit(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	c := newEchotool(t, CommandOptions{Argv: []string{"grandchild", pidfile, "exit"}, Timeout: 30 * time.Second})
	start := time.Now()
	res, err := c.Call(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("call waited %s for a grandchild holding stdout", d)
	}
	var out struct{ Grandchild int }
	if err := json.Unmarshal(res.Output, &out); err != nil || out.Grandchild == 0 {
		t.Fatalf("output %s: %v", res.Output, err)
	}
	waitDead(t, out.Grandchild)
}

func TestCommandOutputCap(t *testing.T) {
	c := newEchotool(t, CommandOptions{Argv: []string{"flood"}, OutputCap: 64 << 10, ConfigKey: "tools.command[0]"})
	start := time.Now()
	_, err := c.Call(context.Background(), json.RawMessage(`{}`))
	wantErr(t, err, ErrTooLarge, "more than 65536 bytes", "tools.command[0].output_cap")
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("flood took %s to stop", d)
	}
}

func TestCommandCancel(t *testing.T) {
	c := newEchotool(t, CommandOptions{Argv: []string{"sleep"}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Call(ctx, json.RawMessage(`{}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewCommandErrors(t *testing.T) {
	tests := []struct {
		o    CommandOptions
		want string
	}{
		{CommandOptions{Name: "x", ConfigKey: "tools.command[1]"}, "tools.command[1].argv"},
		{CommandOptions{Name: "x", Argv: []string{"/nonexistent/prog"}, ConfigKey: "tools.command[1]"}, "tools.command[1].argv[0]"},
		{CommandOptions{Name: "x", Argv: []string{echotoolPath}, Dir: "/nonexistent", ConfigKey: "tools.command[1]"}, "tools.command[1].dir"},
		{CommandOptions{Name: "x", Argv: []string{echotoolPath}, Env: []string{"A=B"}, ConfigKey: "tools.command[1]"}, "tools.command[1].env"},
	}
	for _, tt := range tests {
		if _, err := NewCommand(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewCommand(%+v) = %v, want %q", tt.o, err, tt.want)
		}
	}
}

// A grandchild that calls setsid leaves the tool's process group; the
// timeout kills it all the same, and, with the daemon as subreaper, it is
// reaped rather than left a zombie.
func TestCommandTimeoutKillsASetsidGrandchild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("descendants outside the process group are found through /proc (Linux)")
	}
	if err := BecomeSubreaper(); err != nil {
		t.Fatalf("become subreaper: %v", err)
	}
	for _, how := range []string{"timeout", "cancel"} {
		t.Run(how, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			c := newEchotool(t, CommandOptions{Argv: []string{"setsid-grandchild", pidfile}, Timeout: 700 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if how == "cancel" {
				c.o.Timeout = time.Minute
				go func() { readPid(t, pidfile); cancel() }()
			}
			_, err := c.Call(ctx, json.RawMessage(`{}`))
			if err == nil {
				t.Fatal("the call succeeded")
			}
			pid := readPid(t, pidfile)
			waitDead(t, pid)
			// Reaped: no zombie left under this process.
			deadline := time.Now().Add(3 * time.Second)
			for {
				if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("grandchild %d is a zombie nobody reaped", pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

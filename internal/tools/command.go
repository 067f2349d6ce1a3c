package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults and bounds of command tools.
const (
	defaultCommandTimeout   = 30 * time.Second
	defaultCommandOutputCap = 1 << 20
	stderrTail              = 2048
	// pipeGrace is how long output is still read after the process group was
	// killed; only a process that escaped the group (setsid) can hold a pipe
	// open past the kill, and it is not waited for longer than this.
	pipeGrace = 2 * time.Second
)

// CommandOptions declares a command tool.
type CommandOptions struct {
	Name        string
	Description string
	Argv        []string
	ArgsSchema  json.RawMessage
	Timeout     time.Duration
	OutputCap   int64
	// Env names the variables passed through from agentd's environment, in
	// addition to PATH. Nothing else is passed.
	Env         []string
	Dir         string
	Idempotent  bool
	Approval    Approval
	Concurrency int
	// ConfigKey names the config entry in errors ("tools.command[2]").
	ConfigKey string
	// LookupEnv reads agentd's environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	Logger    *slog.Logger
}

// Command runs a program for each call: argv exec, never a shell. The call's
// JSON arguments go to its stdin; it answers on stdout. JSON output is
// returned as is; any other text is wrapped as {"text": "..."}. The child
// runs in its own process group, which is killed as a whole on timeout,
// on output overflow, and after the child exits (no stragglers survive a
// call). Its environment holds PATH and the listed variables only.
type Command struct {
	o   CommandOptions
	log *slog.Logger
}

var _ Tool = (*Command)(nil)

// NewCommand checks the declaration; errors name the config key.
func NewCommand(o CommandOptions) (*Command, error) {
	key := o.ConfigKey
	if key == "" {
		key = "command tool " + o.Name
	}
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, fmt.Errorf("%s.argv: must name a program and its arguments, like [\"/usr/local/bin/lookup\", \"--json\"]", key)
	}
	if _, err := exec.LookPath(o.Argv[0]); err != nil {
		return nil, fmt.Errorf("%s.argv[0]: program %q not found or not executable: %w — use an absolute path", key, o.Argv[0], err)
	}
	if o.Dir != "" {
		if st, err := os.Stat(o.Dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s.dir: %q is not a directory", key, o.Dir)
		}
	}
	for _, name := range o.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return nil, fmt.Errorf("%s.env: %q is not a variable name", key, name)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultCommandTimeout
	}
	if o.OutputCap <= 0 {
		o.OutputCap = defaultCommandOutputCap
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Description == "" {
		o.Description = "Run the " + o.Name + " program."
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Command{o: o, log: log.With("component", "tools", "tool", o.Name)}, nil
}

// Spec implements Tool.
func (c *Command) Spec() Spec {
	return Spec{
		Name:        c.o.Name,
		Description: c.o.Description,
		ArgsSchema:  c.o.ArgsSchema,
		Idempotent:  c.o.Idempotent,
		Approval:    c.o.Approval,
		Timeout:     c.o.Timeout + pipeGrace + time.Second,
		Concurrency: c.o.Concurrency,
	}
}

// Call implements Tool.
func (c *Command) Call(parent context.Context, args json.RawMessage) (Result, error) {
	ctx, cancel := context.WithTimeout(parent, c.o.Timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, c.o.Argv[0], c.o.Argv[1:]...)
	cmd.Env = childEnv(c.o.Env, c.o.LookupEnv)
	cmd.Dir = c.o.Dir
	cmd.Cancel = func() error { return killTree(cmd.Process.Pid, true) }
	cmd.WaitDelay = pipeGrace
	pipes, err := startChild(cmd)
	if err != nil {
		return Result{}, fmt.Errorf("command %s: %w", c.o.Name, err)
	}
	stdinW, stdoutR, stderrR := pipes.stdin, pipes.stdout, pipes.stderr
	defer stdoutR.Close()
	defer stderrR.Close()
	pid := cmd.Process.Pid
	// Unblocks the writer below if the call ends with the input unread.
	defer stdinW.Close()

	go func() {
		// A child that does not read its input gets EPIPE here; that is its
		// business, not an error of the call.
		_, _ = stdinW.Write(args)
		stdinW.Close()
	}()

	var (
		stdout   bytes.Buffer
		overflow bool
		tail     tailBuffer
		wg       sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, _ := io.Copy(&stdout, io.LimitReader(stdoutR, c.o.OutputCap+1))
		if n > c.o.OutputCap {
			overflow = true
			cancel() // kills the process group through cmd.Cancel
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(&tail, stderrR)
	}()

	waitErr := cmd.Wait()
	// Stragglers (grandchildren still in the group, or descending from it)
	// die with the call.
	if err := killTree(pid, false); err != nil {
		c.log.Warn("kill the tool's processes", "pid", pid, "error", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(pipeGrace):
		// Something outside the group holds the pipes; stop reading.
		stdoutR.Close()
		stderrR.Close()
		<-done
		c.log.Warn("output pipes held open by a process outside the tool's process group", "pid", pid)
	}

	res := Result{}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case overflow:
		return res, fmt.Errorf("%w: command %s wrote more than %d bytes and was stopped (raise %s.output_cap, or make it print less)",
			ErrTooLarge, c.o.Name, c.o.OutputCap, c.key())
	case ctx.Err() == context.DeadlineExceeded && parent.Err() == nil:
		return res, fmt.Errorf("command %s did not finish within %s and was killed: %w", c.o.Name, c.o.Timeout, context.DeadlineExceeded)
	case parent.Err() != nil:
		return res, fmt.Errorf("command %s: %w", c.o.Name, parent.Err())
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		msg := strings.TrimSpace(tail.String())
		if msg == "" {
			msg = "(no error output)"
		}
		return res, fmt.Errorf("%w: command %s exited with status %d: %s", ErrFailed, c.o.Name, res.ExitCode, msg)
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return res, fmt.Errorf("command %s: %w", c.o.Name, waitErr)
	}
	out, err := commandOutput(stdout.Bytes())
	if err != nil {
		return res, fmt.Errorf("command %s: %w", c.o.Name, err)
	}
	res.Output = out
	c.log.Debug("command finished", "pid", pid, "stdout_bytes", stdout.Len(), "stderr_bytes", tail.total)
	return res, nil
}

func (c *Command) key() string {
	if c.o.ConfigKey != "" {
		return c.o.ConfigKey
	}
	return "the tool's"
}

// commandOutput returns JSON stdout compacted, and wraps any other text as
// {"text": ...} so every result is JSON.
func commandOutput(b []byte) (json.RawMessage, error) {
	if out, ok := compactJSON(b); ok {
		return out, nil
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: the program wrote binary output; it must print JSON or text", ErrFailed)
	}
	return json.Marshal(map[string]string{"text": string(b)})
}

// compactJSON returns b without insignificant space, and false when b is
// not one valid JSON value. Command, MCP and HTTP tools pass on JSON output
// through it.
func compactJSON(b []byte) (json.RawMessage, bool) {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct {
	buf   []byte
	total int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.total += len(p)
	t.buf = append(t.buf, p...)
	if len(t.buf) > stderrTail {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-stderrTail:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := string(t.buf)
	if t.total > len(t.buf) {
		// Start on a character boundary.
		for i := 0; i < utf8.UTFMax && len(s) > 0 && !utf8.RuneStart(s[0]); i++ {
			s = s[1:]
		}
		return "…" + s
	}
	return s
}

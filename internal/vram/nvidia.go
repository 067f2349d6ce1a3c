package vram

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// nvidiaQuery is the field list passed to nvidia-smi. ParseNVIDIACSV depends
// on this order; change both together.
const nvidiaQuery = "index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw,power.limit"

const nvidiaFieldCount = 10

// Defaults for NVIDIA. A healthy nvidia-smi answers in well under a second;
// one stuck in the driver can hang forever, so it gets a hard deadline.
const (
	DefaultNVIDIATimeout   = 5 * time.Second
	DefaultNVIDIAWaitDelay = time.Second
)

// NVIDIA probes NVIDIA GPUs by running nvidia-smi. The zero value is ready to
// use; LookPath and Run are test seams.
type NVIDIA struct {
	// Path is the binary to run, looked up in PATH unless it has a slash.
	// Empty means "nvidia-smi".
	Path string
	// Timeout bounds one run of nvidia-smi; zero means DefaultNVIDIATimeout.
	Timeout time.Duration
	// WaitDelay bounds how long we wait for the pipes after the child is
	// killed (a grandchild may hold them open); zero means DefaultNVIDIAWaitDelay.
	WaitDelay time.Duration

	// LookPath resolves the binary; nil means exec.LookPath.
	LookPath func(file string) (string, error)
	// Run executes the resolved binary and returns its stdout and stderr;
	// nil means running it as a real child process. Run must honour ctx.
	Run func(ctx context.Context, path string, args ...string) (stdout, stderr []byte, err error)
}

var _ Prober = (*NVIDIA)(nil)

// nvidiaArgs are the arguments for one query, kept in one place so tests can
// check what production code runs.
func nvidiaArgs() []string {
	return []string{"--query-gpu=" + nvidiaQuery, "--format=csv,noheader,nounits"}
}

// Probe runs nvidia-smi once and parses its CSV.
func (n *NVIDIA) Probe(ctx context.Context) ([]GPU, error) {
	name := n.Path
	if name == "" {
		name = "nvidia-smi"
	}
	lookPath := n.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	path, err := lookPath(name)
	if err != nil {
		return nil, &unavailableError{msg: fmt.Sprintf("%s not found in PATH — install the NVIDIA driver or set vram.probe = \"none\"", name)}
	}

	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultNVIDIATimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	run := n.Run
	if run == nil {
		run = n.runChild
	}
	stdout, stderr, err := run(runCtx, path, nvidiaArgs()...)
	if err != nil {
		// The parent's cancellation is not a GPU problem; say so plainly.
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nvidia-smi: %w", ctx.Err())
		}
		if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("nvidia-smi did not answer within %s and was killed — the NVIDIA driver may be hung; run `nvidia-smi` by hand to check", timeout)
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return nil, fmt.Errorf("nvidia-smi exited with status %d: %s", exitErr.ExitCode(), childOutput(stderr, stdout))
		}
		return nil, fmt.Errorf("run nvidia-smi: %w", err)
	}
	gpus, err := ParseNVIDIACSV(bytes.NewReader(stdout))
	if err != nil {
		return gpus, fmt.Errorf("parse nvidia-smi output: %w", err)
	}
	return gpus, nil
}

// runChild runs nvidia-smi directly (never through a shell). WaitDelay makes
// Wait return even when a hung child, or one of its children, keeps the
// output pipes open after the kill.
func (n *NVIDIA) runChild(ctx context.Context, path string, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = n.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = DefaultNVIDIAWaitDelay
	}
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// childOutput picks what to show from a failed run: stderr, or stdout when
// stderr is empty (nvidia-smi prints some failures on stdout), trimmed and
// cut to a length that fits a log line.
func childOutput(stderr, stdout []byte) string {
	out := strings.TrimSpace(string(stderr))
	if out == "" {
		out = strings.TrimSpace(string(stdout))
	}
	if out == "" {
		return "(no output)"
	}
	const max = 512
	if len(out) > max {
		out = out[:max] + "…"
	}
	return out
}

// ParseNVIDIACSV parses the output of
// nvidia-smi --query-gpu=<nvidiaQuery> --format=csv,noheader,nounits.
// Memory is reported in MiB and converted to bytes. Values nvidia-smi cannot
// give ("[N/A]", "[Not Supported]", ...) become nil. A malformed line is
// skipped and reported in the error, while the GPUs from good lines are
// still returned.
func ParseNVIDIACSV(r io.Reader) ([]GPU, error) {
	var (
		gpus []GPU
		errs []error
	)
	sc := bufio.NewScanner(r)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		g, err := parseNVIDIALine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", lineNo, err))
			continue
		}
		gpus = append(gpus, g)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return gpus, errors.Join(errs...)
}

func parseNVIDIALine(line string) (GPU, error) {
	fields := strings.Split(line, ",")
	if len(fields) != nvidiaFieldCount {
		return GPU{}, fmt.Errorf("want %d comma-separated fields, got %d: %q", nvidiaFieldCount, len(fields), line)
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	g := GPU{Source: SourceNVIDIA, UUID: unknownToEmpty(fields[1]), Name: unknownToEmpty(fields[2])}
	idx, err := strconv.Atoi(fields[0])
	if err != nil {
		return GPU{}, fmt.Errorf("index %q is not a number", fields[0])
	}
	g.Index = idx

	const mib = 1 << 20
	mem := []struct {
		name string
		dst  **uint64
		s    string
	}{
		{"memory.total", &g.MemoryTotalBytes, fields[3]},
		{"memory.used", &g.MemoryUsedBytes, fields[4]},
		{"memory.free", &g.MemoryFreeBytes, fields[5]},
	}
	for _, m := range mem {
		v, err := parseOptionalFloat(m.s)
		if err != nil {
			return GPU{}, fmt.Errorf("%s: %w", m.name, err)
		}
		if v != nil {
			if *v < 0 {
				return GPU{}, fmt.Errorf("%s: negative value %q", m.name, m.s)
			}
			b := uint64(*v * mib)
			*m.dst = &b
		}
	}
	floats := []struct {
		name string
		dst  **float64
		s    string
	}{
		{"utilization.gpu", &g.UtilizationPercent, fields[6]},
		{"temperature.gpu", &g.TemperatureC, fields[7]},
		{"power.draw", &g.PowerDrawW, fields[8]},
		{"power.limit", &g.PowerLimitW, fields[9]},
	}
	for _, f := range floats {
		v, err := parseOptionalFloat(f.s)
		if err != nil {
			return GPU{}, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = v
	}
	return g, nil
}

// isUnknown reports nvidia-smi's ways of saying it has no value. They come
// bracketed ("[N/A]", "[Not Supported]", "[Unknown Error]", "[Insufficient
// Permissions]", "[GPU requires reset]") and, in some versions, bare "N/A".
func isUnknown(s string) bool {
	return s == "" || s == "N/A" || (strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"))
}

func unknownToEmpty(s string) string {
	if isUnknown(s) {
		return ""
	}
	return s
}

func parseOptionalFloat(s string) (*float64, error) {
	if isUnknown(s) {
		return nil, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	return &v, nil
}

package vram

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const mib = 1 << 20

// TestParseNVIDIAGolden runs every fixture in testdata/nvidia through the
// parser and compares with its .golden.json. A new recording from real
// hardware only needs to be dropped in as NAME.csv and the test run once
// with -update (then reviewed).
func TestParseNVIDIAGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "nvidia", "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 nvidia fixtures, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			gpus, err := ParseNVIDIACSV(fh)
			res := probeResult{GPUs: gpus}
			if err != nil {
				res.Error = err.Error()
			}
			checkGolden(t, strings.TrimSuffix(f, ".csv")+".golden.json", res)
		})
	}
}

// TestParseNVIDIAFields pins the semantics the golden files rely on, so a
// careless -update cannot bless a wrong conversion.
func TestParseNVIDIAFields(t *testing.T) {
	tests := []struct {
		fixture  string
		wantGPUs int
		wantErr  string
		check    func(t *testing.T, gpus []GPU)
	}{
		{
			fixture: "single.csv", wantGPUs: 1,
			check: func(t *testing.T, g []GPU) {
				wantEq(t, "source", g[0].Source, SourceNVIDIA)
				wantEq(t, "name", g[0].Name, "NVIDIA GeForce RTX 4090")
				wantEq(t, "uuid", g[0].UUID, "GPU-5f0c2a8e-1b7d-4c3e-9a61-3e2f4d5c6b7a")
				wantPtr(t, "total", g[0].MemoryTotalBytes, 24564*mib)
				wantPtr(t, "used", g[0].MemoryUsedBytes, 1187*mib)
				wantPtr(t, "free", g[0].MemoryFreeBytes, 22989*mib)
				wantPtr(t, "util", g[0].UtilizationPercent, 3)
				wantPtr(t, "temp", g[0].TemperatureC, 41)
				wantPtr(t, "power", g[0].PowerDrawW, 28.54)
				wantPtr(t, "limit", g[0].PowerLimitW, 450)
			},
		},
		{
			fixture: "multi.csv", wantGPUs: 3,
			check: func(t *testing.T, g []GPU) {
				for i := range g {
					wantEq(t, "index", g[i].Index, i)
				}
				wantPtr(t, "gpu1 used", g[1].MemoryUsedBytes, 0) // a real zero stays a known zero
				wantPtr(t, "gpu2 used", g[2].MemoryUsedBytes, 75000*mib)
				pct, ok := g[2].VRAMUsedPercent()
				if !ok || pct < 91.5 || pct > 91.6 {
					t.Errorf("gpu2 VRAMUsedPercent = %v, %v; want ~91.55, true", pct, ok)
				}
			},
		},
		{
			fixture: "na_fields.csv", wantGPUs: 1,
			check: func(t *testing.T, g []GPU) {
				wantNil(t, "power draw", g[0].PowerDrawW)
				wantNil(t, "power limit", g[0].PowerLimitW)
				wantPtr(t, "temp", g[0].TemperatureC, 55)
			},
		},
		{
			fixture: "not_supported.csv", wantGPUs: 1,
			check: func(t *testing.T, g []GPU) {
				wantNil(t, "total", g[0].MemoryTotalBytes)
				wantNil(t, "used", g[0].MemoryUsedBytes)
				wantNil(t, "free", g[0].MemoryFreeBytes)
				wantNil(t, "util", g[0].UtilizationPercent)
				wantPtr(t, "temp", g[0].TemperatureC, 48)
				if _, ok := g[0].FreeBytes(); ok {
					t.Error("FreeBytes ok = true for unknown memory")
				}
				if _, ok := g[0].VRAMUsedPercent(); ok {
					t.Error("VRAMUsedPercent ok = true for unknown memory")
				}
			},
		},
		{
			fixture: "garbage_line.csv", wantGPUs: 1,
			wantErr: "line 2: want 10 comma-separated fields",
			check: func(t *testing.T, g []GPU) {
				wantEq(t, "kept gpu", g[0].Name, "Tesla T4")
			},
		},
		{
			fixture: "garbage_line.csv", wantGPUs: 1,
			wantErr: `line 3: memory.total: "lots" is not a number`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "nvidia", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			gpus, err := ParseNVIDIACSV(f)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(gpus) != tt.wantGPUs {
				t.Fatalf("got %d GPUs, want %d", len(gpus), tt.wantGPUs)
			}
			if tt.check != nil {
				tt.check(t, gpus)
			}
		})
	}
}

// TestNVIDIAProbeInjected covers the error paths through the Run and
// LookPath seams, without child processes.
func TestNVIDIAProbeInjected(t *testing.T) {
	single, err := os.ReadFile(filepath.Join("testdata", "nvidia", "single.csv"))
	if err != nil {
		t.Fatal(err)
	}
	found := func(string) (string, error) { return "/usr/bin/nvidia-smi", nil }
	tests := []struct {
		name     string
		lookPath func(string) (string, error)
		run      func(ctx context.Context, path string, args ...string) ([]byte, []byte, error)
		wantGPUs int
		wantErr  string
		wantIs   error
	}{
		{
			name:     "ok",
			lookPath: found,
			run: func(_ context.Context, path string, args ...string) ([]byte, []byte, error) {
				if path != "/usr/bin/nvidia-smi" || len(args) != 2 || args[0] != "--query-gpu="+nvidiaQuery || args[1] != "--format=csv,noheader,nounits" {
					return nil, nil, errors.New("unexpected command line")
				}
				return single, nil, nil
			},
			wantGPUs: 1,
		},
		{
			name:     "binary missing",
			lookPath: func(string) (string, error) { return "", exec.ErrNotFound },
			wantErr:  `nvidia-smi not found in PATH — install the NVIDIA driver or set vram.probe = "none"`,
			wantIs:   ErrUnavailable,
		},
		{
			name:     "hang is cut by timeout",
			lookPath: found,
			run: func(ctx context.Context, _ string, _ ...string) ([]byte, []byte, error) {
				<-ctx.Done()
				return nil, nil, ctx.Err()
			},
			wantErr: "nvidia-smi did not answer within 50ms and was killed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &NVIDIA{LookPath: tt.lookPath, Run: tt.run, Timeout: 50 * time.Millisecond}
			gpus, err := n.Probe(context.Background())
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if len(gpus) != tt.wantGPUs {
				t.Errorf("got %d GPUs, want %d", len(gpus), tt.wantGPUs)
			}
		})
	}
}

// TestNVIDIAProbeChildProcess runs a real child process: a fake nvidia-smi
// shell script (tests may use sh; production never does) that prints a
// fixture, fails, or hangs. It proves the arguments, the stderr in errors,
// and that a hang is killed by the deadline even when a grandchild holds the
// output pipe open.
func TestNVIDIAProbeChildProcess(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatalf("these tests need /bin/sh: %v", err)
	}
	fixture, err := filepath.Abs(filepath.Join("testdata", "nvidia", "multi.csv"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		script   string
		wantGPUs int
		wantErr  string
	}{
		{
			name: "prints fixture",
			script: `[ "$1" = "--query-gpu=` + nvidiaQuery + `" ] && [ "$2" = "--format=csv,noheader,nounits" ] || { echo "bad args: $*" >&2; exit 2; }
cat '` + fixture + `'`,
			wantGPUs: 3,
		},
		{
			name:    "non-zero exit with stderr",
			script:  "echo '  NVIDIA-SMI has failed because it couldn'\\''t communicate with the NVIDIA driver.  ' >&2\nexit 9",
			wantErr: "nvidia-smi exited with status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
		},
		{
			name:    "hang",
			script:  "exec sleep 1000",
			wantErr: "did not answer within 200ms and was killed",
		},
		{
			// sh is killed, but the backgrounded sleep inherited stdout and
			// would keep Wait blocked forever without WaitDelay.
			name:    "hang with grandchild holding stdout",
			script:  "sleep 30 &\necho $! > \"$0.pid\"\nwait",
			wantErr: "did not answer within 200ms and was killed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nvidia-smi")
			if err := os.WriteFile(path, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killFromPIDFile(t, path+".pid") })
			n := &NVIDIA{Path: path, Timeout: 200 * time.Millisecond, WaitDelay: 100 * time.Millisecond}
			start := time.Now()
			gpus, err := n.Probe(context.Background())
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Probe took %s; the deadline did not hold", elapsed)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(gpus) != tt.wantGPUs {
				t.Errorf("got %d GPUs, want %d", len(gpus), tt.wantGPUs)
			}
		})
	}
}

// killFromPIDFile ends the grandchild a hang script left behind, by its id.
func killFromPIDFile(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return // the script wrote none
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Errorf("bad pid file %s: %q", pidFile, b)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func wantEq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantPtr[T uint64 | float64](t *testing.T, what string, got *T, want T) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = unknown, want %v", what, want)
		return
	}
	if *got != want {
		t.Errorf("%s = %v, want %v", what, *got, want)
	}
}

func wantNil[T any](t *testing.T, what string, got *T) {
	t.Helper()
	if got != nil {
		t.Errorf("%s = %v, want unknown", what, *got)
	}
}

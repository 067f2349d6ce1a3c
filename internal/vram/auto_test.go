package vram

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

// scriptedProber returns its results in turn and counts calls.
type scriptedProber struct {
	results []proberResult
	calls   int
}

type proberResult struct {
	gpus []GPU
	err  error
}

func (s *scriptedProber) Probe(context.Context) ([]GPU, error) {
	r := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	return r.gpus, r.err
}

func TestNoneProbe(t *testing.T) {
	gpus, err := None{}.Probe(context.Background())
	if err != nil || gpus == nil || len(gpus) != 0 {
		t.Fatalf("None.Probe = %v, %v; want empty non-nil list and no error", gpus, err)
	}
}

func TestAuto(t *testing.T) {
	absent := &unavailableError{msg: "absent"}
	nv := []GPU{{Source: SourceNVIDIA, Name: "nv"}}
	am := []GPU{{Source: SourceAMD, Name: "amd"}}
	tests := []struct {
		name       string
		nvidia     []proberResult
		amd        []proberResult
		probes     int
		wantSource string
		wantName   string // of the first GPU after the last probe, "" for none
		wantErr    string
		wantCalls  [3]int // nvidia, amd, none
	}{
		{
			name:   "nvidia works and is remembered",
			nvidia: []proberResult{{gpus: nv}}, amd: []proberResult{{gpus: am}},
			probes: 3, wantSource: SourceNVIDIA, wantName: "nv", wantCalls: [3]int{3, 0, 0},
		},
		{
			name:   "falls through to amd",
			nvidia: []proberResult{{err: absent}}, amd: []proberResult{{gpus: am}},
			probes: 3, wantSource: SourceAMD, wantName: "amd", wantCalls: [3]int{1, 3, 0},
		},
		{
			name:   "nothing present settles on none",
			nvidia: []proberResult{{err: absent}}, amd: []proberResult{{err: absent}},
			probes: 2, wantSource: SourceNone, wantCalls: [3]int{1, 1, 2},
		},
		{
			name:   "present but failing nvidia is reported, not hidden as none",
			nvidia: []proberResult{{err: errors.New("nvidia-smi exited with status 9")}, {gpus: nv}}, amd: []proberResult{{err: absent}},
			probes: 1, wantSource: "", wantErr: "probe nvidia: nvidia-smi exited with status 9", wantCalls: [3]int{1, 1, 1},
		},
		{
			name:   "failing nvidia does not hide a working amd",
			nvidia: []proberResult{{err: errors.New("nvidia-smi exited with status 9")}}, amd: []proberResult{{gpus: am}},
			probes: 2, wantSource: SourceAMD, wantName: "amd", wantCalls: [3]int{1, 2, 0},
		},
		{
			name:   "recovers after a failing first probe",
			nvidia: []proberResult{{err: errors.New("exit 9")}, {gpus: nv}}, amd: []proberResult{{err: absent}},
			probes: 2, wantSource: SourceNVIDIA, wantName: "nv", wantCalls: [3]int{2, 1, 1},
		},
		{
			name:   "partial result counts as working",
			nvidia: []proberResult{{gpus: nv, err: errors.New("line 2: bad")}}, amd: []proberResult{{gpus: am}},
			probes: 1, wantSource: SourceNVIDIA, wantName: "nv", wantErr: "line 2: bad", wantCalls: [3]int{1, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a, none := &scriptedProber{results: tt.nvidia}, &scriptedProber{results: tt.amd}, &scriptedProber{results: []proberResult{{gpus: []GPU{}}}}
			auto := &Auto{Probers: []NamedProber{{SourceNVIDIA, n}, {SourceAMD, a}, {SourceNone, none}}}
			var (
				gpus []GPU
				err  error
			)
			for range tt.probes {
				gpus, err = auto.Probe(context.Background())
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			wantEq(t, "source", auto.Source(), tt.wantSource)
			name := ""
			if len(gpus) > 0 {
				name = gpus[0].Name
			}
			wantEq(t, "first gpu", name, tt.wantName)
			wantEq(t, "calls", [3]int{n.calls, a.calls, none.calls}, tt.wantCalls)
		})
	}
}

func TestNewProber(t *testing.T) {
	tests := []struct {
		source  string
		want    string
		wantErr bool
	}{
		{"auto", "*vram.Auto", false},
		{"", "*vram.Auto", false},
		{"nvidia", "*vram.NVIDIA", false},
		{"amd", "*vram.AMD", false},
		{"none", "vram.None", false},
		{"intel", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			p, err := NewProber(config.VRAMConfig{Probe: tt.source, SysfsRoot: "/"})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "must be one of auto, nvidia, amd, none") {
					t.Fatalf("error = %v, want the allowed values named", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantEq(t, "type", typeName(p), tt.want)
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

// vram.nvidia_smi and vram.probe_timeout reach the NVIDIA probe when auto
// finds it, not only when the config names it.
func TestNewProberAutoKeepsNvidiaSettings(t *testing.T) {
	p, err := NewProber(config.VRAMConfig{Probe: "auto", NvidiaSMI: "/opt/nvidia/bin/nvidia-smi", ProbeTimeout: config.Duration(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	nv, ok := p.(*Auto).Probers[0].Prober.(*NVIDIA)
	if !ok || nv.Path != "/opt/nvidia/bin/nvidia-smi" || nv.Timeout != 3*time.Second {
		t.Errorf("auto's NVIDIA probe = %+v, want the configured path and timeout", nv)
	}
}

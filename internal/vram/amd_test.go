package vram

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAMDProbeGolden reads every fixture tree under testdata/amd and pins
// the result in testdata/amd/NAME.golden.json (regenerate with -update).
func TestAMDProbeGolden(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "amd"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			a := &AMD{Root: filepath.Join("testdata", "amd", e.Name())}
			gpus, err := a.Probe(context.Background())
			res := probeResult{GPUs: gpus}
			if err != nil {
				res.Error = strings.ReplaceAll(err.Error(), filepath.Join("testdata", "amd", e.Name()), "ROOT")
			}
			checkGolden(t, filepath.Join("testdata", "amd", e.Name()+".golden.json"), res)
		})
	}
	if n < 4 {
		t.Fatalf("want at least 4 AMD fixture trees, found %d", n)
	}
}

func TestAMDProbe(t *testing.T) {
	tests := []struct {
		tree    string
		wantErr error
		check   func(t *testing.T, g []GPU)
	}{
		{
			tree: "one_card",
			check: func(t *testing.T, g []GPU) {
				if len(g) != 1 {
					t.Fatalf("got %d GPUs, want 1 (the DP-1 connector is not a card)", len(g))
				}
				wantEq(t, "source", g[0].Source, SourceAMD)
				wantEq(t, "name", g[0].Name, "AMD Radeon RX 7900 XTX")
				wantEq(t, "uuid", g[0].UUID, "3c5e1a2b4d6f7081")
				wantPtr(t, "total", g[0].MemoryTotalBytes, 25753026560)
				wantPtr(t, "used", g[0].MemoryUsedBytes, 1367343104)
				wantPtr(t, "free", g[0].MemoryFreeBytes, 25753026560-1367343104)
				wantPtr(t, "busy", g[0].UtilizationPercent, 7)
				wantPtr(t, "temp", g[0].TemperatureC, 43)
				wantPtr(t, "power", g[0].PowerDrawW, 21)
				wantPtr(t, "cap", g[0].PowerLimitW, 327)
			},
		},
		{
			tree: "two_cards",
			check: func(t *testing.T, g []GPU) {
				if len(g) != 2 {
					t.Fatalf("got %d GPUs, want 2", len(g))
				}
				wantEq(t, "card0 index", g[0].Index, 0)
				wantEq(t, "card1 index", g[1].Index, 1)
				wantPtr(t, "card0 temp", g[0].TemperatureC, 88.5)
				wantEq(t, "card1 name falls back to device id", g[1].Name, "AMD GPU 0x164e")
				wantNil(t, "card1 power", g[1].PowerDrawW)
				wantEq(t, "card1 id", g[1].ID(), "amd:1")
			},
		},
		{
			tree: "no_vram_files",
			check: func(t *testing.T, g []GPU) {
				if len(g) != 1 {
					t.Fatalf("got %d GPUs, want 1", len(g))
				}
				wantNil(t, "total", g[0].MemoryTotalBytes)
				wantNil(t, "used", g[0].MemoryUsedBytes)
				wantNil(t, "free", g[0].MemoryFreeBytes)
				wantNil(t, "busy", g[0].UtilizationPercent)
				wantPtr(t, "temp", g[0].TemperatureC, 51)
			},
		},
		{
			tree: "mixed_vendors",
			check: func(t *testing.T, g []GPU) {
				if len(g) != 1 {
					t.Fatalf("got %d GPUs, want only the AMD one", len(g))
				}
				wantEq(t, "index", g[0].Index, 2)
				wantEq(t, "name", g[0].Name, "AMD Radeon PRO W7600")
			},
		},
		{tree: "no_amd", wantErr: ErrUnavailable},
		{tree: "does_not_exist", wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			gpus, err := (&AMD{Root: filepath.Join("testdata", "amd", tt.tree)}).Probe(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, gpus)
			}
		})
	}
}
